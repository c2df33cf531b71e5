"""Seeded toy datasets from the classic backpropagation tutorials.

Each function returns ``(X, y)`` with ``X`` of shape (n_samples, n_features) and draws its
randomness only from a generator seeded by ``seed`` (fixed by default, so the same call gives
the same data; pass ``seed=None`` for fresh randomness). Class labels are int64.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_positive_float, check_positive_int

XOR_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
XOR_TARGETS = np.array([0, 1, 1, 0], dtype=np.int64)


def make_xor(n_samples: int = 4, noise: float = 0.0, bias_column: bool = False,
             seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """The XOR problem: label 1 when exactly one of two binary inputs is 1.

    With the default ``n_samples=4`` and no noise this is the truth table, in the order
    (0,0), (0,1), (1,0), (1,1). Larger ``n_samples`` draws corners at random and adds Gaussian
    ``noise`` to the inputs. ``bias_column=True`` appends a constant 1 input, as the classic
    tutorials do in place of a bias.

    >>> X, y = make_xor(bias_column=True)
    >>> X.tolist(), y.tolist()
    ([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]], [0, 1, 1, 0])
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    noise = check_positive_float(noise, "noise", allow_zero=True)
    rng = np.random.default_rng(seed)
    corners = np.arange(n_samples) % 4 if n_samples == 4 else rng.integers(0, 4, n_samples)
    X = XOR_INPUTS[corners] + noise * rng.standard_normal((n_samples, 2))
    y = XOR_TARGETS[corners].copy()
    if bias_column:
        X = np.hstack([X, np.ones((n_samples, 1))])
    return X, y


def make_planar(n_samples: int = 400, radius: float = 4.0, noise: float = 0.2,
                seed: int | None = 1) -> tuple[np.ndarray, np.ndarray]:
    r"""The two-class "flower" of the classic shallow-network exercise.

    Points lie on the rose curve :math:`r = a \sin(4 t)` (eight petals, :math:`a` = ``radius``),
    in polar coordinates :math:`(r \sin t, r \cos t)`. Class 0 takes
    :math:`t \in [0, 3.12]` and class 1 :math:`t \in [3.12, 6.24]`, with Gaussian noise on both
    :math:`t` and :math:`r`, so the classes interleave as alternating petals: no straight line
    separates them, a small tanh network does (about 90% accuracy).

    Returns ``X`` of shape (n_samples, 2) and ``y`` of shape (n_samples,) with labels 0/1,
    sorted by class (shuffle before splitting off a test set).

    >>> X, y = make_planar()
    >>> X.shape, int(y.sum())
    ((400, 2), 200)
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    if n_samples % 2:
        raise ValueError(f"n_samples must be even (two equal classes), got {n_samples}")
    noise = check_positive_float(noise, "noise", allow_zero=True)
    rng = np.random.default_rng(seed)
    per_class = n_samples // 2
    X = np.zeros((n_samples, 2))
    y = np.repeat([0, 1], per_class)
    for label in (0, 1):
        rows = slice(label * per_class, (label + 1) * per_class)
        t = np.linspace(label * 3.12, (label + 1) * 3.12, per_class)
        t += noise * rng.standard_normal(per_class)
        r = radius * np.sin(4 * t) + noise * rng.standard_normal(per_class)
        X[rows] = np.column_stack([r * np.sin(t), r * np.cos(t)])
    return X, y


def make_quadratic(start: float = -7.0, stop: float = 5.0, step: float = 0.05,
                   noise: float = 0.0, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Samples of :math:`y = x^2 + 2x - 3` on ``x`` in ``[start, stop)`` with spacing ``step``.

    ``X`` has shape (n, 1); ``y`` has shape (n,), plus Gaussian ``noise`` if given. The defaults
    are the classic regression exercise: 240 points on [-7, 5).

    >>> X, y = make_quadratic()
    >>> X.shape, float(y[0]), round(float(y[-1]), 4)
    ((240, 1), 32.0, 31.4025)
    """
    step = check_positive_float(step, "step")
    noise = check_positive_float(noise, "noise", allow_zero=True)
    if not stop > start:
        raise ValueError(f"stop must be greater than start, got start={start}, stop={stop}")
    x = start + step * np.arange(int(np.ceil((stop - start) / step - 1e-9)))
    y = x**2 + 2 * x - 3
    if noise:
        y = y + noise * np.random.default_rng(seed).standard_normal(len(x))
    return x.reshape(-1, 1), y


def make_moons(n_samples: int = 200, noise: float = 0.0,
               seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles: class 0 on the upper unit half circle centred at (0, 0),
    class 1 on the lower one centred at (1, 0.5). Gaussian ``noise`` is added to the points.

    >>> X, y = make_moons(10)
    >>> X.shape, y.tolist()
    ((10, 2), [0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    noise = check_positive_float(noise, "noise", allow_zero=True)
    rng = np.random.default_rng(seed)
    n_upper = n_samples - n_samples // 2
    t_upper = np.linspace(0, np.pi, n_upper)
    t_lower = np.linspace(0, np.pi, n_samples // 2)
    upper = np.column_stack([np.cos(t_upper), np.sin(t_upper)])
    lower = np.column_stack([1 - np.cos(t_lower), 0.5 - np.sin(t_lower)])
    X = np.vstack([upper, lower]) + noise * rng.standard_normal((n_samples, 2))
    y = np.repeat([0, 1], [n_upper, n_samples // 2])
    return X, y


def make_circles(n_samples: int = 200, noise: float = 0.0, factor: float = 0.5,
                 seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """A circle of class 1 (radius ``factor``) inside a unit circle of class 0, plus noise.

    >>> X, y = make_circles(8, factor=0.5)
    >>> np.round(np.hypot(X[:, 0], X[:, 1]), 6).tolist(), y.tolist()
    ([1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5], [0, 0, 0, 0, 1, 1, 1, 1])
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    noise = check_positive_float(noise, "noise", allow_zero=True)
    if not 0 < factor < 1:
        raise ValueError(f"factor must be between 0 and 1, got {factor!r}")
    rng = np.random.default_rng(seed)
    n_outer = n_samples - n_samples // 2
    t_outer = np.linspace(0, 2 * np.pi, n_outer, endpoint=False)
    t_inner = np.linspace(0, 2 * np.pi, n_samples // 2, endpoint=False)
    outer = np.column_stack([np.cos(t_outer), np.sin(t_outer)])
    inner = factor * np.column_stack([np.cos(t_inner), np.sin(t_inner)])
    X = np.vstack([outer, inner]) + noise * rng.standard_normal((n_samples, 2))
    y = np.repeat([0, 1], [n_outer, n_samples // 2])
    return X, y


def make_spirals(n_samples: int = 300, n_classes: int = 3, noise: float = 0.2,
                 seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n_classes`` interleaved spiral arms: for arm ``k``, radius ``r`` grows from 0 to 1 while
    the angle sweeps 4 radians starting at ``4k`` (plus Gaussian ``noise`` on the angle).

    >>> X, y = make_spirals(300, n_classes=3, seed=0)
    >>> X.shape, np.bincount(y).tolist(), bool(np.abs(X).max() <= 1)
    ((300, 2), [100, 100, 100], True)
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    n_classes = check_positive_int(n_classes, "n_classes")
    noise = check_positive_float(noise, "noise", allow_zero=True)
    if n_samples % n_classes:
        raise ValueError(f"n_samples ({n_samples}) must be a multiple of n_classes ({n_classes})")
    rng = np.random.default_rng(seed)
    per_class = n_samples // n_classes
    X = np.zeros((n_samples, 2))
    y = np.repeat(np.arange(n_classes), per_class)
    for k in range(n_classes):
        rows = slice(k * per_class, (k + 1) * per_class)
        r = np.linspace(0.0, 1.0, per_class)
        t = np.linspace(4.0 * k, 4.0 * (k + 1), per_class) + noise * rng.standard_normal(per_class)
        X[rows] = np.column_stack([r * np.sin(t), r * np.cos(t)])
    return X, y
