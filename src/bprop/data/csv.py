"""Load a table of numbers from a CSV file, with a target column and clear errors."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._checks import as_float_dtype

MISSING = {"", "na", "nan", "n/a", "null", "none", "?"}


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
             dtype="float64") -> CSVData:
    """Read a CSV file of numeric features and one target column.

    Parameters
    ----------
    path : the file.
    target : the target column, by name (needs a header) or index (negative counts from the
        end); default: the last column.
    delimiter : the field separator.
    header : True if the first row names the columns, False if not, ``"auto"`` to decide:
        the first row is a header if it has text where the second row has a number.
    dtype : the dtype of ``X``, "float64" or "float32".

    Feature columns must be numeric; a missing value (empty, NA, NaN, ?), an infinite value or
    text in a feature column is an error naming its line and column. A target column of text is
    encoded as integers, in sorted order of the labels, with the mapping kept in ``classes``.
    A last column that is empty on every line (a trailing delimiter) is ignored.

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
    if not path.is_file():
        raise FileNotFoundError(f"no such CSV file: {path}")
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            numbered = list(_numbered(csv.reader(file, delimiter=delimiter)))
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text ({error}); re-save it as UTF-8") from None
    except csv.Error as error:
        raise ValueError(f"{path} is not a readable CSV file: {error}") from None
    if not numbered:
        raise ValueError(f"{path} is empty")
    if all(row and not row[-1].strip() for _, row in numbered):
        numbered = [(line, row[:-1]) for line, row in numbered]  # a trailing delimiter
    if header == "auto":
        second = numbered[1][1] if len(numbered) > 1 else None
        header = _looks_like_header(numbered[0][1], second)
    names = [c.strip() for c in numbered[0][1]] if header else None
    body = numbered[1:] if header else numbered
    if not body:
        raise ValueError(f"{path} has a header but no data rows")
    n_columns = len(numbered[0][1])
    if n_columns < 2:
        raise ValueError(f"{path} has only one column; a CSV for training needs features and a "
                         f"target. Is the delimiter {delimiter!r} right?")
    names = names or [f"column {j}" for j in range(n_columns)]
    for line, row in body:
        if len(row) != n_columns:
            raise ValueError(f"{path}, line {line}: {len(row)} fields, but the "
                             f"{'header' if header else 'first row'} has {n_columns}")
    target_index = _column_index(target, names, bool(header), path)
    feature_columns = [j for j in range(n_columns) if j != target_index]
    X = np.empty((len(body), len(feature_columns)), dtype=dtype)
    for i, (line, row) in enumerate(body):
        for k, j in enumerate(feature_columns):
            X[i, k] = _number(row[j], path, line, names[j])
    y, classes = _target([row[target_index] for _, row in body], [line for line, _ in body],
                         path, names[target_index])
    return CSVData(X, y, [names[j] for j in feature_columns], names[target_index], classes)


def load_features(path, delimiter: str = ",", dtype="float64") -> np.ndarray:
    """Read a CSV file of feature columns only (new samples to predict), with or without a
    header line; bad cells are reported by line and column as in :func:`load_csv`.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "new.csv"
    >>> _ = path.write_text("a,b\\n1,2\\n3,4\\n")
    >>> load_features(path).tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such CSV file: {path}")
    with path.open(newline="", encoding="utf-8-sig") as file:
        rows = list(_numbered(csv.reader(file, delimiter=delimiter)))
    if not rows:
        raise ValueError(f"{path} is empty")
    names = [f"column {j}" for j in range(len(rows[0][1]))]
    if not all(_is_number(cell) for cell in rows[0][1]):
        names = [c.strip() for c in rows[0][1]]
        rows = rows[1:]
    X = np.empty((len(rows), len(names)), dtype=as_float_dtype(dtype))
    for i, (line, row) in enumerate(rows):
        if len(row) != len(names):
            raise ValueError(f"{path}, line {line}: {len(row)} fields, expected {len(names)}")
        for j, cell in enumerate(row):
            X[i, j] = _number(cell, path, line, names[j])
    return X


def _numbered(reader):
    """(first line number, row) for each non-blank row; a quoted field may span lines."""
    first_line = 1
    for row in reader:
        if any(cell.strip() for cell in row):
            yield first_line, row
        first_line = reader.line_num + 1


def _looks_like_header(first: list[str], second: list[str] | None) -> bool:
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
        raise ValueError(f"{path}, line {line}, column {column!r}: missing value {text!r}; "
                         "fill in or drop such rows first")
    try:
        value = float(cell)
    except ValueError:
        raise ValueError(f"{path}, line {line}, column {column!r}: {text!r} is not a number; "
                         "feature columns must be numeric") from None
    if not math.isfinite(value):
        raise ValueError(f"{path}, line {line}, column {column!r}: {text!r} is not finite")
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
            raise ValueError(f"{path}, line {line}, column {column!r}: missing target value")
    if all(_is_number(c) for c in stripped):
        values = np.array([float(c) for c in stripped])
        for value, line in zip(values, lines, strict=True):
            if not math.isfinite(value):
                raise ValueError(f"{path}, line {line}, column {column!r}: the target "
                                 f"{value} is not finite")
        # Whole numbers are class labels or counts: keep them exact as integers.
        if np.all(values == np.round(values)) and np.abs(values).max() < 2**53:
            return values.astype(np.int64), None
        return values, None
    classes = sorted(set(stripped))
    codes = {label: i for i, label in enumerate(classes)}
    return np.array([codes[c] for c in stripped], dtype=np.int64), classes
