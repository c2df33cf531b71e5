import numpy as np
import pytest

from bprop.data import load_csv


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_header_target_by_name_and_text_labels(tmp_path):
    path = write(tmp_path, "a,label,b\n1,cat,2\n3,dog,4\n5,cat,6\n")
    data = load_csv(path, target="label")
    X, y = data
    np.testing.assert_array_equal(X, [[1, 2], [3, 4], [5, 6]])
    assert y.tolist() == [0, 1, 0] and data.classes == ["cat", "dog"]
    assert data.feature_names == ["a", "b"] and data.target_name == "label"
    assert np.array(data.classes)[y].tolist() == ["cat", "dog", "cat"]


def test_no_header_numeric_target_by_index_and_delimiter(tmp_path):
    path = write(tmp_path, "1.5;2;0\n3;4.25;1\n\n")  # a blank line is ignored
    data = load_csv(path, target=-1, delimiter=";")
    assert data.X.tolist() == [[1.5, 2.0], [3.0, 4.25]] and data.y.tolist() == [0, 1]
    assert data.y.dtype == np.int64 and data.classes is None
    assert data.feature_names == ["column 0", "column 1"]
    first = load_csv(path, target=0, delimiter=";", header=False)
    assert first.y.tolist() == [1.5, 3.0] and first.y.dtype == np.float64


def test_header_detection_can_be_forced(tmp_path):
    path = write(tmp_path, "1,2,3\n4,5,6\n")
    assert len(load_csv(path).X) == 2
    assert len(load_csv(path, header=True).X) == 1


@pytest.mark.parametrize("text, message", [
    ("a,b,y\n1,2,0\n3,,1\n", "line 3, column 'b': missing value ''"),
    ("a,b,y\n1,NA,0\n", "line 2, column 'a'|line 2, column 'b': missing value 'NA'"),
    ("a,b,y\n1,2,0\n3,x7,1\n", "line 3, column 'b': 'x7' is not a number"),
    ("a,b,y\n1,2,0\n3,4\n", "line 3: 2 fields, but the header has 3"),
    ("a,b,y\n1,2,\n", "line 2, column 'y': missing target value"),
    ("a,b,y\n", "has a header but no data rows"),
    ("", "is empty"),
])
def test_bad_cells_are_reported_with_line_and_column(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_csv(write(tmp_path, text))


def test_target_errors(tmp_path):
    path = write(tmp_path, "a,b\n1,2\n")
    with pytest.raises(ValueError, match="no column 'c'; its columns are \\['a', 'b'\\]"):
        load_csv(path, target="c")
    with pytest.raises(ValueError, match="out of range for 2 columns"):
        load_csv(path, target=5)
    with pytest.raises(ValueError, match="has no header"):
        load_csv(write(tmp_path, "1,2\n", "plain.csv"), target="b")
    with pytest.raises(FileNotFoundError, match="no such CSV file"):
        load_csv(tmp_path / "absent.csv")


def test_fit_on_a_loaded_csv(tmp_path):
    import bprop as bp

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    labels = np.where(X[:, 0] > 0, "yes", "no")
    lines = ["x1,x2,answer"] + [f"{a},{b},{c}" for (a, b), c in zip(X, labels, strict=True)]
    data = load_csv(write(tmp_path, "\n".join(lines)), target="answer")
    model = bp.Sequential([bp.Dense(2, 2)], seed=0)
    model.fit(data.X, data.y, loss="cross_entropy", optimizer=bp.SGD(0.5), epochs=50)
    assert model.evaluate(data.X, data.y)["accuracy"] > 0.95


def test_a_headerless_file_with_text_labels_keeps_its_first_row(tmp_path):
    data = load_csv(write(tmp_path, "5.1,3.5,setosa\n6.2,2.9,virginica\n4.9,3.0,setosa\n"))
    assert len(data.X) == 3 and data.classes == ["setosa", "virginica"]
    assert data.y.tolist() == [0, 1, 0] and data.target_name == "column 2"


def test_a_trailing_delimiter_is_ignored(tmp_path):
    data = load_csv(write(tmp_path, "a,b,y,\n1,2,0,\n3,4,1,\n"), target="y")
    assert data.X.tolist() == [[1, 2], [3, 4]] and data.feature_names == ["a", "b"]


@pytest.mark.parametrize("text, kwargs, message", [
    ("a;b;y\n1;2;0\n", {}, "only one column.*Is the delimiter ',' right"),
    ("a,b,y\n1,inf,0\n", {}, "line 2, column 'b': 'inf' is not finite"),
    ("a,b,y\n1,2,1e400\n", {}, "line 2, column 'y': the target inf is not finite"),
    ("a,b,y\n1,2,0\n", {"dtype": "int32"}, "dtype must be 'float32' or 'float64'"),
    ("a,b,y\n1,2,0\n", {"header": "no"}, "header must be True, False or 'auto'"),
    ('a,b,y\n1,2,"two\nlines"\n3,x,1\n', {}, "line 4, column 'b'"),  # quoted newline
])
def test_more_bad_files(tmp_path, text, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_csv(write(tmp_path, text), **kwargs)


def test_large_whole_numbers_stay_floats_and_non_utf8_is_reported(tmp_path):
    data = load_csv(write(tmp_path, "a,y\n1,1e20\n2,3\n"))
    assert data.y.dtype == np.float64 and data.y[0] == 1e20
    path = tmp_path / "latin.csv"
    path.write_bytes("a,y\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="latin.csv is not UTF-8 text"):
        load_csv(path)


def test_features_only_files_for_prediction(tmp_path):
    from bprop.data import load_features

    path = write(tmp_path, 'a,b\n"1",2\n3,4\n')
    assert load_features(path).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert load_features(write(tmp_path, "1;2\n", "plain.csv"), delimiter=";").tolist() == [
        [1.0, 2.0]]
    with pytest.raises(ValueError, match="line 3, column 'b': 'x' is not a number"):
        load_features(write(tmp_path, "a,b\n1,2\n3,x\n", "bad.csv"))
