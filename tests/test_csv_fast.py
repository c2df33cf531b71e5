"""The fast CSV reader (NumPy's C parser) against the careful one (the csv module, row by row):
the same arrays wherever the fast one applies, the careful one's errors wherever it does not,
and errors that name the file instead of a traceback."""

import csv
import tracemalloc

import numpy as np
import pytest

from bprop.data import load_csv, load_features
from bprop.data.csv import (
    CSVError,
    _careful_features,
    _careful_table,
    _codec,
    _fast_features,
    _fast_table,
)

UTF8 = _codec("utf-8")


def numbers(rows=40, columns=4, seed=0):
    """Cells of a random table with awkward values: signs, exponents, long fractions."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((rows, columns)) * 10.0 ** rng.integers(-8, 8, (rows, columns))
    cells = [[repr(float(v)) for v in row] for row in values]
    cells[0][0], cells[1][0], cells[2][0] = "1e5", "-.5", "+3."
    return cells


def write(tmp_path, lines, name="data.csv", end="\n", prefix=""):
    path = tmp_path / name
    with path.open("w", newline="", encoding="utf-8") as file:
        file.write(prefix + end.join(lines) + end)
    return path


def same_table(a, b):
    assert a.X.dtype == b.X.dtype and a.X.shape == b.X.shape
    assert a.X.tobytes() == b.X.tobytes()  # bit for bit, negative zeros included
    assert a.y.dtype == b.y.dtype and np.array_equal(a.y, b.y)
    assert (a.feature_names, a.target_name, a.classes) == (b.feature_names, b.target_name,
                                                           b.classes)


def both_tables(path, target=-1, delimiter=",", header="auto", dtype="float64"):
    """The fast reader's table (it must have taken the file), checked against the careful
    reader's, and what load_csv returns."""
    args = (path, target, delimiter, header, np.dtype(dtype), UTF8)
    fast = _fast_table(*args)
    assert fast is not None, "the fast reader declined the file"
    same_table(fast, _careful_table(*args))
    loaded = load_csv(path, target=target, delimiter=delimiter, header=header, dtype=dtype)
    same_table(loaded, fast)
    return loaded


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("target", [-1, 0, 2])
def test_numeric_files_with_and_without_header(tmp_path, dtype, target):
    cells = numbers()
    with_header = write(tmp_path, ["a,b,c,d"] + [",".join(row) for row in cells], "h.csv")
    data = both_tables(with_header, target=target, dtype=dtype)
    assert data.X.shape == (40, 3) and data.X.dtype == np.dtype(dtype)
    assert data.X.flags.c_contiguous
    plain = write(tmp_path, [",".join(row) for row in cells], "plain.csv")
    data = both_tables(plain, target=target, dtype=dtype)
    assert data.feature_names[0] == ("column 1" if target == 0 else "column 0")


def test_whole_number_targets_become_integers_in_both_readers(tmp_path):
    rows = [f"{i * 0.5},{i % 3}" for i in range(30)]
    data = both_tables(write(tmp_path, ["x,k"] + rows))
    assert data.y.dtype == np.int64 and data.y.tolist() == [i % 3 for i in range(30)]
    data = both_tables(write(tmp_path, ["x,k"] + [f"{i},{i / 4}" for i in range(30)], "f.csv"))
    assert data.y.dtype == np.float64


@pytest.mark.parametrize("target", ["kind", 0, 1])
def test_a_text_target(tmp_path, target):
    rng = np.random.default_rng(1)
    labels = [" dog", "cat ", "bird", '"a, quoted one"', "10", "Éclair", "cat"]
    cells = numbers(60, 2, seed=2)
    lines = []
    for row in cells:
        label = labels[rng.integers(len(labels))]
        # The first data row's label must be text for the fast reader to read labels.
        label = label if lines else "cat"
        lines.append(",".join([label, *row] if target == 0 else [row[0], label, row[1]]))
    header = "kind,a,b" if target == 0 else "a,kind,b"
    data = both_tables(write(tmp_path, [header] + lines), target=target if target else "kind")
    assert data.target_name == "kind" and data.classes == sorted(data.classes)
    assert "a, quoted one" in data.classes and "10" in data.classes
    assert data.y.dtype == np.int64 and data.y.max() == len(data.classes) - 1


def test_headerless_text_target(tmp_path):
    lines = [f"{a},{b},{'yes' if a > b else 'no'}" for a, b in numbers(50, 2, seed=3)]
    data = both_tables(write(tmp_path, lines))
    assert data.classes == ["no", "yes"] and data.target_name == "column 2"


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_line_ends_quotes_spaces_blank_lines_and_a_byte_order_mark(tmp_path, end):
    cells = numbers(20, 3, seed=4)
    lines = ['"first\nname",b,y', ""] + [f' {a} ,"{b}",{c}' for a, b, c in cells]
    lines.insert(5, "")
    path = write(tmp_path, lines, end=end, prefix="\ufeff" if end == "\n" else "\n\n")
    data = both_tables(path)
    assert data.feature_names == ["first\nname", "b"] and len(data.X) == 20


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters_and_forced_headers(tmp_path, delimiter):
    cells = numbers(10, 3, seed=5)
    path = write(tmp_path, [delimiter.join(row) for row in cells])
    both_tables(path, delimiter=delimiter, header=False)
    data = both_tables(path, delimiter=delimiter, header=True)  # the first row as names
    assert len(data.X) == 9 and data.feature_names == cells[0][:2]


def test_one_data_row(tmp_path):
    data = both_tables(write(tmp_path, ["a,b,y", "1.5,2,cat"]), dtype="float32")
    assert data.X.tolist() == [[1.5, 2.0]] and data.classes == ["cat"]


@pytest.mark.parametrize("lines", [
    ["a,b,y", "1,2,0", "3,4,1", "5,,0"],         # a missing value on the last line
    ["a,b,y", "1,2,0", "3,NA,1"],
    ["a,b,y", "1,2,0", "3,nan,1"],               # NumPy reads NaN; the careful reader refuses
    ["a,b,y", "1,2,0", "3,-inf,1"],
    ["a,b,y", "1,2,0", "3,x7,1"],
    ["a,b,y", "1,2,0", "3,4"],
    ["a,b,y", "1,2,0", "3,4,5,6"],
    ["a,b,y", "1,2,0", "3,4,"],                   # a missing target
    ["a,b,y", "1,2,cat", "3,4,NA"],              # a missing text label
    ["a,b,y", "1,2,cat", "3,4,5,6"],
    ["a,b,y", "1,2,cat", "3,oops,dog"],
    ["a,b,y", "1,2,0", "3,4,1e400"],
    ["a,b,y", "1,2,0", "3,4,nan"],
    ["a,b,y", "1,2,0", "# a comment,4,1"],       # no comments in NumPy's parser either
])
def test_what_the_fast_reader_refuses_fails_as_before(tmp_path, lines):
    path = write(tmp_path, lines)
    args = (path, -1, ",", "auto", np.dtype("float64"), UTF8)
    assert _fast_table(*args) is None
    with pytest.raises(CSVError) as careful:
        _careful_table(*args)
    assert f"{path}, line " in str(careful.value)
    with pytest.raises(CSVError) as loaded:
        load_csv(path)
    assert str(loaded.value) == str(careful.value)
    assert loaded.value.line == careful.value.line == len(lines)


@pytest.mark.parametrize("lines, target", [
    (["a,b,y,", "1,2,0,", "3,4,1,"], "y"),        # a trailing delimiter
    (["a,b,y", "1,2,0", ",,", "3,4,1"], -1),      # a row of delimiters only
    (["a,b,y", "1,2,0", "3,4,cat"], -1),          # numbers, then text: all labels
    (["a,b,y", "1,2,0", "3,4,1_000"], -1),        # Python reads the underscore, NumPy not
])
def test_what_only_the_careful_reader_accepts(tmp_path, lines, target):
    path = write(tmp_path, lines)
    args = (path, target, ",", "auto", np.dtype("float64"), UTF8)
    assert _fast_table(*args) is None
    same_table(load_csv(path, target=target), _careful_table(*args))


@pytest.mark.parametrize("lines", [
    ["a,b", "1,2", "3,4.5"],
    ["1,2", "3,4.5", "", "-1e-300,7"],
    ['"x","y"', '"1","2"'],
])
def test_features_only(tmp_path, lines):
    path = write(tmp_path, lines)
    for dtype in ("float64", "float32"):
        fast = _fast_features(path, ",", np.dtype(dtype), UTF8)
        careful = _careful_features(path, ",", np.dtype(dtype), UTF8)
        assert fast is not None and fast.dtype == careful.dtype == np.dtype(dtype)
        assert fast.tobytes() == careful.tobytes() and fast.shape == careful.shape
        assert load_features(path, dtype=dtype).tobytes() == careful.tobytes()


def test_rows_longer_than_the_header_everywhere(tmp_path):
    path = write(tmp_path, ["a,b,y", "1,2,0,5", "3,4,1,6"])  # NumPy's parser sees no fault
    assert _fast_table(path, -1, ",", "auto", np.dtype("float64"), UTF8) is None
    with pytest.raises(CSVError, match="line 2: 4 fields, but the header has 3"):
        load_csv(path)


def test_a_short_first_data_row(tmp_path):
    path = write(tmp_path, ["a,b,y", "1,2", "3,4,5"])
    with pytest.raises(CSVError, match="line 2: 2 fields, but the header has 3"):
        load_csv(path)


def test_a_file_too_large_for_memory_is_named(tmp_path, monkeypatch):
    path = write(tmp_path, ["a,b,y", "1,2,0", "3,4,1"])

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(np, "loadtxt", no_memory)
    for read in (load_csv, load_features):
        with pytest.raises(CSVError) as error:
            read(path)
        assert str(error.value).startswith(f"{path} (18 bytes) does not fit in the memory")


def test_features_only_errors_as_before(tmp_path):
    path = write(tmp_path, ["a,b", "1,2", "3,x"])
    assert _fast_features(path, ",", np.dtype("float64"), UTF8) is None
    with pytest.raises(CSVError, match="line 3, column 'b': 'x' is not a number"):
        load_features(path)
    with pytest.raises(CSVError, match="line 3: 1 fields, expected 2"):
        load_features(write(tmp_path, ["a,b", "1,2", "3"], "short.csv"))


def test_a_target_name_that_is_not_there_is_named_at_once(tmp_path):
    path = write(tmp_path, ["a,b,y", "1,2,0", "3,4"])  # also a short row: the name comes first
    for reader in (_fast_table, _careful_table):
        with pytest.raises(ValueError, match=r"no column 'z'; its columns are \['a', 'b', 'y'\]"):
            reader(path, "z", ",", "auto", np.dtype("float64"), UTF8)


# Errors that used to be tracebacks or to say the wrong thing.

def long_field(tmp_path, target):
    path = tmp_path / f"long-{target}.csv"
    path.write_text(f"a,b,y\n1,2,{target}\n4,5," + "x" * 200_000 + "\n7,8,9\n")
    return path


@pytest.mark.parametrize("target", ["0", "cat"])
def test_a_field_over_the_limit(tmp_path, target):
    path = long_field(tmp_path, target)
    for read in (load_csv, load_features):
        with pytest.raises(CSVError) as error:
            read(path)
        message = str(error.value)
        assert message.startswith(f"{path}, line 3: a field is longer than "
                                  f"{csv.field_size_limit()} characters")
        assert "\n" not in message and error.value.line == 3 and error.value.path == path


def test_an_unclosed_quote_is_found_on_its_line(tmp_path):
    path = tmp_path / "quote.csv"
    path.write_text('a,b,y\n1,2,3\n4,"5,6\n' + "7,8,9\n" * 30_000)
    with pytest.raises(CSVError, match=r"quote.csv, line 3: a field is longer.*quote \(\"\)"):
        load_csv(path)


def latin1_file(tmp_path, rows_before=2):
    path = tmp_path / "latin.csv"
    body = "".join(f"{i},{i + 1},{i % 2}\n" for i in range(rows_before))
    path.write_bytes(b"a,b,y\n" + body.encode() + "1,2,caf\xe9\n".encode("latin-1"))
    return path, rows_before + 2


@pytest.mark.parametrize("rows_before", [2, 120_000])  # the second passes 1 MiB
def test_a_latin1_file_names_the_file_the_line_and_what_to_do(tmp_path, rows_before):
    path, line = latin1_file(tmp_path, rows_before)
    for read in (load_csv, load_features):
        with pytest.raises(CSVError) as error:
            read(path)
        message = str(error.value)
        assert message.startswith(f"{path} is not UTF-8 text (line {line} has the byte 0xe9)")
        assert "re-save it as UTF-8" in message and "encoding='latin-1'" in message
        assert "target" not in message and error.value.line == line
    data = load_csv(path, encoding="latin-1")
    assert data.classes[-1] == "caf\xe9" and len(data.X) == rows_before + 1


def test_a_character_cut_by_a_block_boundary_is_not_an_error(tmp_path):
    # A smiley is four bytes: three end the first 1 MiB block in which the error is sought, one
    # starts the next, and a bad byte and a newline follow; the line is that of the bad byte.
    smiley = "\N{GRINNING FACE}".encode()
    start = b"a,b,y\n1,2," + b"7" * ((1 << 20) - 13) + smiley[:3]
    assert len(start) == 1 << 20
    data = start + smiley[3:] + b"\n1,2,3\n1,2,\xff\n4,5,6\n"
    path = tmp_path / "cut.csv"
    path.write_bytes(data)
    with pytest.raises(CSVError, match=r"cut.csv is not UTF-8 text \(line 4 has the byte 0xff"):
        load_csv(path)


def test_a_file_cut_inside_a_character_and_other_encodings(tmp_path):
    path = tmp_path / "cut.csv"
    path.write_bytes("a,b\n1,\xe9".encode()[:-1])
    with pytest.raises(CSVError, match=r"not UTF-8 text \(it ends inside a character\)"):
        load_features(path)
    wide = tmp_path / "wide.csv"
    wide.write_bytes("a,b,y\n1,2,3\n4,5,6\n".encode("utf-16"))
    assert load_csv(wide, encoding="utf-16").X.tolist() == [[1, 2], [4, 5]]
    with pytest.raises(CSVError, match="is not UTF-8 text"):
        load_csv(wide)
    with pytest.raises(ValueError, match="unknown text encoding 'klingon'"):
        load_csv(wide, encoding="klingon")


# Memory: the fast reader holds the parsed table and little else.

def peak_bytes(function):
    tracemalloc.start()
    try:
        result = function()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def numeric_file(path, rows, columns=11):
    values = np.random.default_rng(6).standard_normal((rows, columns))
    np.savetxt(path, values, delimiter=",", fmt="%.6g", comments="",
               header=",".join(f"f{j}" for j in range(columns)))
    return path


def test_the_fast_reader_needs_about_the_memory_numpy_needs(tmp_path):
    path = numeric_file(tmp_path / "big.csv", 50_000)
    numpy_peak, expected = peak_bytes(lambda: np.loadtxt(path, delimiter=",", skiprows=1))
    table_peak, table = peak_bytes(lambda: load_csv(path))
    features_peak, features = peak_bytes(lambda: load_features(path))
    np.testing.assert_array_equal(table.X, expected[:, :-1])
    np.testing.assert_array_equal(features, expected)
    # The target: at most twice NumPy's own peak. A copy of the whole table on the
    # way, or Python lists of the rows, would exceed it.
    assert table_peak < 2 * numpy_peak, (table_peak, numpy_peak)
    assert features_peak < 2 * numpy_peak, (features_peak, numpy_peak)


def test_the_careful_reader_would_fail_that_bound(tmp_path):
    path = numeric_file(tmp_path / "small.csv", 5_000)
    numpy_peak, _ = peak_bytes(lambda: np.loadtxt(path, delimiter=",", skiprows=1))
    careful_peak, _ = peak_bytes(lambda: _careful_table(path, -1, ",", "auto",
                                                        np.dtype("float64"), UTF8))
    assert careful_peak > 4 * numpy_peak
