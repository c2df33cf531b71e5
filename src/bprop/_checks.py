"""Input checks shared by the public entry points.

Every public function validates what the user hands it *here*, at the boundary, so that a
mistake surfaces as one clear ValueError or TypeError naming the offending value, instead of a
numpy traceback ten frames deep or, worse, a silently broadcast result.
"""

from __future__ import annotations

import numpy as np

from .backend import kernels as _kernels
from .backend.devices import array_module, on_device, to_numpy

FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}


class ComplexInputError(TypeError, ValueError):
    """Complex numbers where real ones are needed. A TypeError (the kind of value is wrong);
    also a ValueError, which is what scikit-learn's conventions expect for complex data."""


def refuse_complex(values, name: str) -> None:
    """Raise :class:`ComplexInputError` naming ``name`` when ``values`` (an array, a sequence
    or a scalar) holds complex numbers: NumPy would otherwise drop the imaginary part with no
    more than a warning, and train on other data than the ones given."""
    if isinstance(values, (complex, np.complexfloating)) or (
            getattr(getattr(values, "dtype", None), "kind", None) == "c"):
        raise ComplexInputError(
            f"{name} holds complex numbers (Complex data not supported); give real values, "
            f"for example {name}.real or abs({name})")


def as_float_dtype(dtype) -> np.dtype:
    """Return ``np.dtype`` for "float32"/"float64" (or the numpy types), else raise ValueError."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.type not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return resolved


def as_array(values, name: str, dtype: np.dtype | None = None) -> np.ndarray:
    """Convert ``values`` to a numeric numpy array, raising TypeError for non-numeric data.
    An array on a device (CuPy's) stays there, checked the same way. Complex numbers are a
    :class:`ComplexInputError` (a TypeError)."""
    refuse_complex(values, name)
    if type(values) is not np.ndarray and on_device(values):
        if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
            raise TypeError(f"{name} must hold numbers, got an array of dtype {values.dtype}")
        return values if dtype is None else values.astype(dtype, copy=False)
    try:
        array = np.asarray(values)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"{name} could not be turned into an array: {error}") from None
    refuse_complex(array, name)  # (a list of Python complex numbers)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == bool
    ):
        raise TypeError(
            f"{name} must hold numbers, got an array of dtype {array.dtype}; "
            "encode text labels or features as numbers first"
        )
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    return array


def refuse_complex_data(values, name: str) -> None:
    """:func:`refuse_complex` for data in any form scikit-learn takes (arrays, sparse
    matrices, data frames, nested lists), before they are converted: NumPy's conversion
    would drop the imaginary part, and scikit-learn's calls complex data a ValueError."""
    if values is None:
        return
    refuse_complex(values, name)
    dtypes = getattr(values, "dtypes", None)  # (a data frame: a dtype per column)
    if dtypes is not None and not hasattr(values, "dtype"):
        if any(getattr(dtype, "kind", None) == "c" for dtype in dtypes):
            refuse_complex(np.zeros(1, complex), name)
    elif isinstance(values, (list, tuple)):
        try:
            converted = np.asarray(values)
        except (ValueError, TypeError):  # (ragged: the caller's conversion says so)
            return
        refuse_complex(converted, name)


def all_finite(array: np.ndarray) -> bool:
    """Whether every element is finite. The compiled test (``_fused.c``) makes one pass;
    without it, a dot product (one BLAS pass, no temporary) settles the usual case: it is
    finite only if every element is; if it is not (NaN, infinity, or just an overflow of huge
    values), the elements are looked at one by one."""
    if type(array) is not np.ndarray and on_device(array):
        return bool(finite_flag(array))  # (a transfer of one flag: for the boundary's checks)
    compiled = _kernels.compiled("all_finite", array)
    if compiled is not None:
        return compiled(array)
    flat = array.reshape(-1)
    return bool(np.isfinite(np.dot(flat, flat)) or np.isfinite(flat).all())


def finite_flag(array):
    """Whether every element is finite, as a flag that stays where ``array`` is: a Python bool
    for a NumPy array (:func:`all_finite`), a 0-d boolean array on a device, read only when the
    caller chooses to (reading it waits for the device)."""
    if type(array) is np.ndarray:
        return all_finite(array)
    compiled = _kernels.compiled("all_finite", array)
    if compiled is not None:
        return compiled(array)
    return array_module(array).isfinite(array).all()


def check_finite(array: np.ndarray, name: str) -> None:
    """Raise ValueError if ``array`` holds NaN or infinity, saying where the first one is."""
    if array.dtype.kind != "f":
        return
    # In slices of about a million values, so that checking a whole dataset does not need a
    # second, boolean copy of it in memory.
    rows = max(1, (1 << 20) // max(1, array[:1].size)) if array.ndim else 1
    for start in range(0, max(len(array), 1) if array.ndim else 1, rows):
        part = array[start:start + rows] if array.ndim else array
        if not np.isfinite(part).all():
            break
    else:
        return
    finite = np.isfinite(array)
    if not finite.all():
        bad = np.argwhere(~finite)
        where = tuple(int(i) for i in bad[0])
        raise ValueError(
            f"{name} contains {len(bad)} NaN or infinite value(s), the first at index {where}; "
            "remove or impute them before training"
        )


def as_features(X, name: str, dtype: np.dtype, n_features: int | None = None,
                expected_by: str = "the model's first layer",
                check_values: bool = True) -> np.ndarray:
    """Validate a 2-D feature matrix of shape (n_samples, n_features) and cast it to ``dtype``.

    With ``check_values=False`` NaN and infinity are left for the caller to look for (as
    inference does, a slice at a time, while the slice is in the processor's cache)."""
    array = as_array(X, name)
    if array.ndim == 1:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got shape {array.shape}; "
            f"use {name}.reshape(-1, 1) for a single feature or {name}.reshape(1, -1) "
            "for a single sample"
        )
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} has no samples (shape {array.shape})")
    if n_features is not None and array.shape[1] != n_features:
        raise ValueError(
            f"{name} has {array.shape[1]} features per sample but {expected_by} "
            f"expects {n_features}"
        )
    if check_values:
        check_finite(array, name)
    with np.errstate(over="ignore"):
        cast = array.astype(dtype, copy=False)
    if cast is not array and cast.dtype.kind == "f" and not np.isfinite(cast).all():
        check_finite(array, name)  # NaN or infinity given, unless the cast overflowed
        raise ValueError(
            f"{name} has values too large for {np.dtype(dtype).name} (largest magnitude "
            f"{np.abs(array).max():.3g}); scale the data or use dtype='float64'"
        )
    return cast


def check_same_length(X: np.ndarray, y: np.ndarray, x_name: str = "X", y_name: str = "y") -> None:
    if np.ndim(y) == 0:
        raise ValueError(f"{y_name} must hold one target per sample, got the scalar {y!r}")
    if len(X) != len(y):
        raise ValueError(
            f"{x_name} and {y_name} have different numbers of samples: "
            f"{len(X)} and {len(y)}"
        )


def check_positive_int(value, name: str) -> int:
    refuse_complex(value, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_positive_float(value, name: str, allow_zero: bool = False) -> float:
    refuse_complex(value, name)
    if isinstance(value, (bool, str, bytes)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not np.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return number


def check_real(value, name: str, low: float | None = None, high: float | None = None, *,
               low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float, refused with a ValueError naming ``name`` unless it is a real,
    finite number within ``low`` .. ``high`` (``*_open``: the bound itself excluded); complex
    numbers are a :class:`ComplexInputError` (a TypeError)."""
    refuse_complex(value, name)
    number = None
    if not isinstance(value, (bool, np.bool_, str, bytes)) and isinstance(
            value, (int, float, np.integer, np.floating)):
        number = float(value)
    in_range = number is not None and np.isfinite(number) and not (
        (low is not None and (number < low or (low_open and number == low)))
        or (high is not None and (number > high or (high_open and number == high))))
    if not in_range:
        left = "" if low is None else f"{'(' if low_open else '['}{low:g}, "
        right = "" if high is None else f"{high:g}{')' if high_open else ']'}"
        where = (f"in {left}{right}" if low is not None and high is not None
                 else f"a finite number {'>' if low_open else '>='} {low:g}" if low is not None
                 else f"a finite number {'<' if high_open else '<='} {high:g}"
                 if high is not None else "a finite number")
        raise ValueError(f"{name} must be {where}, got {value!r}")
    return number


def check_int(value, name: str, low: int = 1) -> int:
    """``value`` as an int, refused with a ValueError naming ``name`` unless it is a whole
    number (an int or a NumPy integer, never a float such as 2.5 or 2.0, nor a bool) of at
    least ``low``; complex numbers are a :class:`ComplexInputError` (a TypeError)."""
    refuse_complex(value, name)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < low:
        kind = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(value)


def check_bool(value, name: str) -> bool:
    """``value`` as a bool: True, False (or NumPy's), else a ValueError naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_sample_weight(sample_weight, n_samples: int, dtype=np.float64,
                        name: str = "sample_weight") -> np.ndarray | None:
    """Validate per-sample weights for ``n_samples`` samples: None (every sample weighs 1,
    returned as None) or a 1-D array of shape (n_samples,) of finite, non-negative numbers
    that are not all zero, returned in host memory as ``dtype``. A weight scales its sample's
    share of the loss (and of the gradient): an integer weight k counts the sample k times,
    a weight 0 leaves it out."""
    if sample_weight is None:
        return None
    if type(sample_weight) is not np.ndarray and on_device(sample_weight):
        sample_weight = to_numpy(sample_weight)  # (checked, and kept, on the host)
    weights = as_array(sample_weight, name)
    if weights.ndim != 1:
        raise ValueError(f"{name} must be 1-D, one weight per sample (shape ({n_samples},)), "
                         f"got shape {weights.shape}")
    if len(weights) != n_samples:
        raise ValueError(f"{name} has {len(weights)} weights but there are {n_samples} "
                         "samples; give one weight per sample")
    weights = weights.astype(dtype, copy=False)
    check_finite(weights, name)
    if weights.size and weights.min() < 0:
        raise ValueError(f"{name} must be >= 0, got {float(weights.min())!r} at index "
                         f"{int(np.argmin(weights))}")
    if not weights.any():
        raise ValueError(f"{name} is zero for every sample; at least one sample must weigh "
                         "more than 0")
    return weights


def check_seed(seed, name: str = "seed") -> int | np.random.Generator | None:
    """A seed for ``np.random.default_rng``: None, a non-negative integer, or a Generator
    (``name`` is the argument's, for the message)."""
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{name} must be None or a non-negative integer, got {seed!r}")
    return int(seed)


def check_choice(value, name: str, choices) -> str:
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"unknown {name} {value!r}; choose one of {options}")
    return value
