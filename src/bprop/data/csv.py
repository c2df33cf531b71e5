"""Load a table of numbers from a CSV file, with a target column and clear errors.

Two readers share the rules. A file that is numeric after its header (with perhaps a column of
text labels as the target) goes through NumPy's C parser (:func:`numpy.loadtxt`), in about the
time and memory NumPy itself needs. Anything else, and every file that the fast reader
refuses, is read by the careful reader, row by row with the :mod:`csv` module: it accepts what
the fast reader cannot (a trailing delimiter, blank rows of delimiters, a target of numbers and
text mixed) and it explains a failure by its line and column. The tests prove that both give
the same arrays wherever both apply.
"""

from __future__ import annotations

import codecs
import csv
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._checks import all_finite, as_float_dtype

MISSING = {"", "na", "nan", "n/a", "null", "none", "?"}
# Rows moved at a time when the target column is cut out of the parsed table in place: the
# temporary copy stays under a megabyte however long the file.
_BLOCK_ROWS = 1 << 12


class CSVError(ValueError):
    """A CSV file that cannot be read as asked. The message names the file, and the line and
    column where there is one; they are also kept as attributes.

    Attributes
    ----------
    path : the file.
    line : the line (counted from 1) where the trouble starts, or None.
    column : the column's name (``"column 2"`` without a header), or None.
    """

    def __init__(self, message: str, path: Path, line: int | None = None,
                 column: str | None = None) -> None:
        super().__init__(message)
        self.path, self.line, self.column = path, line, column


@dataclass
class CSVData:
    """What :func:`load_csv` returns. Unpacks as ``X, y = load_csv(...)``.

    Attributes
    ----------
    X : float array (n_samples, n_features)
    y : the target: integers 0..k-1 if the column held text labels (see ``classes``),
        otherwise floats (or integers, if every value is whole).
    feature_names : names of the feature columns (``"column 0"`` ... without a header).
    target_name : name of the target column.
    classes : for a text target, the original labels; ``classes[i]`` is encoded as ``i``.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target_name: str
    classes: list[str] | None = field(default=None)

    def __iter__(self):
        return iter((self.X, self.y))


def load_csv(path, target=-1, delimiter: str = ",", header: bool | str = "auto",
             dtype="float64", encoding: str = "utf-8") -> CSVData:
    """Read a CSV file of numeric features and one target column.

    Parameters
    ----------
    path : the file.
    target : the target column, by name (needs a header) or index (negative counts from the
        end); default: the last column.
    delimiter : the field separator.
    header : True if the first row names the columns, False if not, ``"auto"`` to decide:
        the first row is a header if it has text where the second row has a number.
    dtype : the dtype of ``X``, "float32" or "float64".
    encoding : the file's text encoding; a UTF-8 byte order mark is skipped.

    Returns
    -------
    CSVData
        ``X`` of shape (n_rows, n_columns - 1), ``y`` of shape (n_rows,), and the names.

    Notes
    -----
    Feature columns must be numeric; a missing value (empty, NA, NaN, ?), an infinite value or
    text in a feature column is a :class:`CSVError` naming its line and column. A target column
    of text is encoded as integers, in sorted order of the labels, with the mapping kept in
    ``classes``. A last column that is empty on every line (a trailing delimiter) is ignored.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "iris.csv"
    >>> _ = path.write_text("length,width,species\\n5.1,3.5,setosa\\n6.2,2.9,virginica\\n")
    >>> data = load_csv(path, target="species")
    >>> data.X.tolist(), data.y.tolist(), data.classes
    ([[5.1, 3.5], [6.2, 2.9]], [0, 1], ['setosa', 'virginica'])
    """
    path = Path(path)
    dtype = as_float_dtype(dtype)
    if header not in (True, False, "auto"):
        raise ValueError(f"header must be True, False or 'auto', got {header!r}")
    encoding = _codec(encoding)
    if not path.is_file():
        raise FileNotFoundError(f"no such CSV file: {path}")
    table = _fast_table(path, target, delimiter, header, dtype, encoding)
    if table is None:
        table = _careful_table(path, target, delimiter, header, dtype, encoding)
    return table


def load_features(path, delimiter: str = ",", dtype="float64",
                  encoding: str = "utf-8") -> np.ndarray:
    """Read a CSV file of feature columns only (new samples to predict), with or without a
    header line; bad cells are reported by line and column as in :func:`load_csv`.

    Returns
    -------
    ndarray
        Floats, of shape (n_rows, n_columns).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "new.csv"
    >>> _ = path.write_text("a,b\\n1,2\\n3,4\\n")
    >>> load_features(path).tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """
    path = Path(path)
    dtype = as_float_dtype(dtype)
    encoding = _codec(encoding)
    if not path.is_file():
        raise FileNotFoundError(f"no such CSV file: {path}")
    X = _fast_features(path, delimiter, dtype, encoding)
    if X is None:
        X = _careful_features(path, delimiter, dtype, encoding)
    return X


# The fast reader: NumPy's C parser, or None where the careful reader must decide.

def _fast_table(path: Path, target, delimiter: str, header, dtype: np.dtype,
                encoding: str) -> CSVData | None:
    if not _fast_delimiter(delimiter):
        return None
    head = _head(path, delimiter, encoding)
    if len(head) < 2:
        return None  # at most one row: too small to matter, and the careful reader explains it
    (_, first, first_end), (_, second, _) = head
    if not first[-1].strip() or len(first) < 2 or len(second) != len(first):
        # A trailing delimiter is dropped only when every row has one, which the careful
        # reader checks; a single column or a short row is an error it words.
        return None
    if header == "auto":
        header = looks_like_header(first, second)
    names = [c.strip() for c in first] if header else [f"column {j}" for j in range(len(first))]
    target_index = _column_index(target, names, bool(header), path)
    label = (second if header else first)[target_index].strip()
    if label.lower() in MISSING:
        return None
    labels: dict[str, int] = {}
    converters = None
    if not _is_number(label):  # text labels: numbered as they come, sorted at the end
        limit = csv.field_size_limit()

        def number_label(cell: str) -> int:
            text = cell.strip()
            if len(cell) > limit or text.lower() in MISSING:
                raise ValueError("for the careful reader to explain")
            return labels.setdefault(text, len(labels))

        converters = {target_index: number_label}
    table = _parse(path, delimiter, encoding, first_end if header else 0, converters)
    if table is None or table.shape[1] != len(names) or not all_finite(table):
        return None
    if labels:
        rank = np.empty(len(labels), dtype=np.int64)
        classes = sorted(labels)
        rank[[labels[c] for c in classes]] = np.arange(len(classes))
        y = rank[table[:, target_index].astype(np.int64)]
    else:
        y, classes = _numeric_target(table[:, target_index].copy()), None
    X = _without_column(table, target_index).astype(dtype, copy=False)
    features = [name for j, name in enumerate(names) if j != target_index]
    return CSVData(X, y, features, names[target_index], classes)


def _fast_features(path: Path, delimiter: str, dtype: np.dtype,
                   encoding: str) -> np.ndarray | None:
    if not _fast_delimiter(delimiter):
        return None
    head = _head(path, delimiter, encoding)
    if len(head) < 2:
        return None
    _, first, first_end = head[0]
    has_header = looks_like_header(first)
    X = _parse(path, delimiter, encoding, first_end if has_header else 0, None)
    if X is None or X.shape[1] != len(first) or not all_finite(X):
        return None
    return X.astype(dtype, copy=False)


def _fast_delimiter(delimiter: str) -> bool:
    # A space or a quote as delimiter means something else to NumPy's parser than to csv's;
    # anything that is not one character is for the csv module to refuse.
    return isinstance(delimiter, str) and len(delimiter) == 1 and delimiter not in ' "\r\n'


def _head(path: Path, delimiter: str, encoding: str) -> list[tuple[int, list[str], int]]:
    """The first two non-blank rows, each as (first line, row, lines read through its end)."""
    rows = []
    with _reading(path, encoding) as file:
        # readline, not the file's own iterator, so that a row's last line is known exactly.
        reader = csv.reader(iter(file.readline, ""), delimiter=delimiter)
        for line, row in _numbered(reader, path):
            rows.append((line, row, reader.line_num))
            if len(rows) == 2:
                break
    return rows


def _parse(path: Path, delimiter: str, encoding: str, skip_lines: int,
           converters) -> np.ndarray | None:
    """The file after its first ``skip_lines`` lines as float64 (n_rows, n_columns), or None
    if NumPy's parser refuses it."""
    with _reading(path, encoding) as file:
        for _ in range(skip_lines):
            file.readline()
        try:
            return np.loadtxt(file, dtype=np.float64, delimiter=delimiter, comments=None,
                              quotechar='"', ndmin=2, converters=converters)
        except UnicodeDecodeError:
            raise  # _reading words it
        except ValueError:
            return None


def _without_column(table: np.ndarray, column: int) -> np.ndarray:
    """``table`` (n, m), C-contiguous and owning its memory, without one column, in place:
    the rows move down block by block, then the memory shrinks to (n, m - 1). A copy would
    double the peak memory of a large file."""
    n, m = table.shape
    keep = [j for j in range(m) if j != column]
    if not table.flags.c_contiguous:  # reshape would copy, and the moves would be lost
        return np.ascontiguousarray(table[:, keep])
    flat = table.reshape(-1)
    for start in range(0, n, _BLOCK_ROWS):
        stop = min(n, start + _BLOCK_ROWS)
        # The fancy index copies the block before it is written, and a block's new place
        # never reaches beyond its old one, so no row is overwritten before it has moved.
        flat[start * (m - 1):stop * (m - 1)] = table[start:stop, keep].reshape(-1)
    del flat
    try:
        table.resize((n, m - 1), refcheck=False)
    except ValueError:  # memory NumPy does not own: keep a view of the moved rows
        return table.reshape(-1)[:n * (m - 1)].reshape(n, m - 1)
    return table


# The careful reader: the csv module, row by row.

def _careful_table(path: Path, target, delimiter: str, header, dtype: np.dtype,
                   encoding: str) -> CSVData:
    with _reading(path, encoding) as file:
        numbered = list(_numbered(csv.reader(file, delimiter=delimiter), path))
    if not numbered:
        raise CSVError(f"{path} is empty", path)
    if all(row and not row[-1].strip() for _, row in numbered):
        numbered = [(line, row[:-1]) for line, row in numbered]  # a trailing delimiter
    if header == "auto":
        second = numbered[1][1] if len(numbered) > 1 else None
        header = looks_like_header(numbered[0][1], second)
    names = [c.strip() for c in numbered[0][1]] if header else None
    body = numbered[1:] if header else numbered
    if not body:
        raise CSVError(f"{path} has a header but no data rows", path)
    n_columns = len(numbered[0][1])
    if n_columns < 2:
        raise CSVError(f"{path} has only one column; a CSV for training needs features and a "
                       f"target. Is the delimiter {delimiter!r} right?", path)
    names = names or [f"column {j}" for j in range(n_columns)]
    # The target is checked before the rows, as the fast reader does: a wrong name is found
    # on the first line, whatever the rest of the file holds.
    target_index = _column_index(target, names, bool(header), path)
    for line, row in body:
        if len(row) != n_columns:
            raise CSVError(f"{path}, line {line}: {len(row)} fields, but the "
                           f"{'header' if header else 'first row'} has {n_columns}", path, line)
    feature_columns = [j for j in range(n_columns) if j != target_index]
    X = np.empty((len(body), len(feature_columns)), dtype=dtype)
    for i, (line, row) in enumerate(body):
        for k, j in enumerate(feature_columns):
            X[i, k] = _number(row[j], path, line, names[j])
    y, classes = _target([row[target_index] for _, row in body], [line for line, _ in body],
                         path, names[target_index])
    return CSVData(X, y, [names[j] for j in feature_columns], names[target_index], classes)


def _careful_features(path: Path, delimiter: str, dtype: np.dtype,
                      encoding: str) -> np.ndarray:
    with _reading(path, encoding) as file:
        rows = list(_numbered(csv.reader(file, delimiter=delimiter), path))
    if not rows:
        raise CSVError(f"{path} is empty", path)
    names = [f"column {j}" for j in range(len(rows[0][1]))]
    if looks_like_header(rows[0][1]):
        names = [c.strip() for c in rows[0][1]]
        rows = rows[1:]
    X = np.empty((len(rows), len(names)), dtype=dtype)
    for i, (line, row) in enumerate(rows):
        if len(row) != len(names):
            raise CSVError(f"{path}, line {line}: {len(row)} fields, expected {len(names)}",
                           path, line)
        for j, cell in enumerate(row):
            X[i, j] = _number(cell, path, line, names[j])
    return X


# Shared by both readers.

def _codec(encoding: str) -> str:
    """The codec to open files with: a UTF-8 byte order mark is skipped, not read as text."""
    try:
        name = codecs.lookup(encoding).name
    except (LookupError, TypeError):
        raise ValueError(f"unknown text encoding {encoding!r}; give one such as 'utf-8' or "
                         "'latin-1'") from None
    return "utf-8-sig" if name in ("utf-8", "utf-8-sig") else name


@contextmanager
def _reading(path: Path, encoding: str):
    """The file open as text, with its decoding errors turned into a :class:`CSVError`."""
    try:
        with path.open(newline="", encoding=encoding) as file:
            yield file
    except UnicodeDecodeError:
        raise _encoding_error(path, encoding) from None
    except MemoryError:
        raise CSVError(f"{path} ({path.stat().st_size:,} bytes) does not fit in the memory "
                       "left; load fewer rows or columns at a time", path) from None


def _encoding_error(path: Path, encoding: str) -> CSVError:
    """Name the line and the byte that cannot be decoded, found by decoding the file again
    in blocks (the error that the text layer raises knows neither)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line, bad, truncated = 1, None, False
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            pending = len(decoder.getstate()[0])  # bytes of a character cut by the last block
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                line += block.count(b"\n", 0, max(0, error.start - pending))
                bad = " ".join(f"0x{byte:02x}" for byte in error.object[error.start:error.end])
                break
            line += block.count(b"\n")
        else:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                truncated = True
    # Lines can be counted in the bytes only where a newline is the byte 0x0a.
    if encoding not in ("utf-8-sig", "ascii"):
        line = None
    if bad is None:
        where = " (it ends inside a character)" if truncated else ""
    elif line is None:
        where = f" (it has the byte {bad})"
    else:
        where = f" (line {line} has the byte {bad})"
    if encoding == "utf-8-sig":
        message = (f"{path} is not UTF-8 text{where}; re-save it as UTF-8, or give its "
                   "encoding (in Python: encoding='latin-1', or 'cp1252' for many files from "
                   "Windows)")
    else:
        message = f"{path} is not {encoding} text{where}; give the encoding it was saved in"
    return CSVError(message, path, line if bad is not None else None)


def _numbered(reader, path: Path):
    """(first line number, row) for each non-blank row; a quoted field may span lines."""
    first_line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            if "field larger than field limit" in str(error):
                raise CSVError(
                    f"{path}, line {first_line}: a field is longer than "
                    f"{csv.field_size_limit()} characters, the most a CSV cell may hold; if a "
                    'quote (") opened there is never closed, close it, otherwise shorten the '
                    "field", path, first_line) from None
            raise CSVError(f"{path}, line {first_line}: not readable as CSV: {error}", path,
                           first_line) from None
        if any(cell.strip() for cell in row):
            yield first_line, row
        first_line = reader.line_num + 1


def looks_like_header(first: list[str], second: list[str] | None = None) -> bool:
    """Whether a file's first row (its cells, stripped) is a header: it has text where the
    second row has a number; a file of one row, when that row is not all numbers."""
    if second is None:
        return not all(_is_number(cell) for cell in first)
    return any(not _is_number(a) and _is_number(b) for a, b in zip(first, second, strict=False))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(text: str, path: Path, line: int, column: str) -> float:
    cell = text.strip()
    if cell.lower() in MISSING:
        raise CSVError(f"{path}, line {line}, column {column!r}: missing value {text!r}; "
                       "fill in or drop such rows first", path, line, column)
    try:
        value = float(cell)
    except ValueError:
        raise CSVError(f"{path}, line {line}, column {column!r}: {text!r} is not a number; "
                       "feature columns must be numeric", path, line, column) from None
    if not math.isfinite(value):
        raise CSVError(f"{path}, line {line}, column {column!r}: {text!r} is not finite",
                       path, line, column)
    return value


def _column_index(target, names: list[str], has_header: bool, path: Path) -> int:
    if isinstance(target, str):
        if not has_header:
            raise ValueError(f"target={target!r} is a column name, but {path} has no header; "
                             "give the column's index instead")
        if target not in names:
            raise ValueError(f"{path} has no column {target!r}; its columns are {names}")
        return names.index(target)
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        raise TypeError(f"target must be a column name or index, got {target!r}")
    if not -len(names) <= target < len(names):
        raise ValueError(f"target column {target} is out of range for {len(names)} columns")
    return int(target) % len(names)


def _target(cells: list[str], lines: list[int], path: Path, column: str):
    stripped = [c.strip() for c in cells]
    for cell, line in zip(stripped, lines, strict=True):
        if cell.lower() in MISSING:
            raise CSVError(f"{path}, line {line}, column {column!r}: missing target value",
                           path, line, column)
    if all(_is_number(c) for c in stripped):
        values = np.array([float(c) for c in stripped])
        for value, line in zip(values, lines, strict=True):
            if not math.isfinite(value):
                raise CSVError(f"{path}, line {line}, column {column!r}: the target "
                               f"{value} is not finite", path, line, column)
        return _numeric_target(values), None
    classes = sorted(set(stripped))
    codes = {label: i for i, label in enumerate(classes)}
    return np.array([codes[c] for c in stripped], dtype=np.int64), classes


def _numeric_target(values: np.ndarray) -> np.ndarray:
    """Finite float64 targets, as int64 when every one is whole: class labels or counts, kept
    exact."""
    if np.all(values == np.round(values)) and np.abs(values).max() < 2**53:
        return values.astype(np.int64)
    return values
