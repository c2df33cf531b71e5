"""Data augmentation for images given as flattened rows: random translations and elastic
distortions.

Why it helps: a network sees each training digit many times, and without augmentation it
sees exactly the same pixels every epoch, so it can learn them by heart. Moving a digit by a
pixel or two, or bending its strokes a little, leaves its class unchanged but changes nearly
every pixel; drawing a new distortion each time a sample is used turns the training set into
an endless supply of plausible digits, and the network has to learn what is invariant under
these changes instead of the exact images. Simard, Steinkraus & Platt (2003) brought a
two-layer MLP (800 hidden units) on MNIST from 1.6 % test error to 0.7 % with elastic
distortions. Only the *training* batches are augmented; the test (and validation) set is
always used as it is, so that the error measured is that on real digits.

Every random number comes from the NumPy ``Generator`` handed in (the model's seeded one when
training), never from NumPy's global state, so the same generator state gives the same
augmented batch.

>>> import numpy as np
>>> augment = Augment(shift=2, elastic=(34.0, 4.0))
>>> X = np.random.default_rng(0).random((5, 784), dtype=np.float32)
>>> X_aug = augment(X, np.random.default_rng(1))
>>> X_aug.shape, X_aug.dtype, bool(np.all((X_aug >= 0) & (X_aug <= 1)))
((5, 784), dtype('float32'), True)
>>> bool(np.array_equal(X_aug, augment(X, np.random.default_rng(1))))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from .._checks import check_int, check_real

__all__ = ["Augment", "displacement_fields", "elastic", "shift", "translate", "warp"]


def shift(images, rng: np.random.Generator, max_shift: int = 2,
          shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    r"""Translate each image by a random whole number of pixels, filling with zeros.

    Each image is moved ``dy`` rows down and ``dx`` columns right, both drawn uniformly from
    ``-max_shift .. max_shift``; pixels moved in from outside the image are 0:

    .. math::

        \tilde x_{i,j} = x_{i - dy,\, j - dx}
        \quad (0 \text{ where } i - dy \text{ or } j - dx \text{ falls outside the image}).

    The offsets are drawn in one call, ``rng.integers(-max_shift, max_shift + 1, size=(n,
    2))`` (column 0 is ``dy``, column 1 is ``dx``, one row per image in C order), then applied
    by :func:`translate`; with ``max_shift=0`` nothing is drawn and a copy is returned.

    Parameters
    ----------
    images : array of shape (..., height * width), each row an image flattened row by row.
    rng : the NumPy Generator that draws the offsets.
    max_shift : the largest move, in pixels, along each axis (an integer >= 0).
    shape : (height, width) of an image.

    Returns
    -------
    A new array of the same shape as ``images`` (float32 and float64 kept; other dtypes become
    float64).

    >>> image = np.zeros((1, 9))
    >>> image[0, 4] = 1.0                                  # the centre of a 3x3 image
    >>> dy, dx = np.random.default_rng(3).integers(-1, 2, size=(1, 2))[0]   # the same draw
    >>> moved = shift(image, np.random.default_rng(3), max_shift=1, shape=(3, 3))
    >>> float(moved.reshape(3, 3)[1 + dy, 1 + dx]), float(moved.sum())
    (1.0, 1.0)
    """
    max_shift = check_int(max_shift, "max_shift", low=0)
    shape = _check_shape(shape)
    flat = _as_images(images, shape)
    _check_rng(rng)
    if max_shift == 0:
        return flat.reshape(np.shape(images)).copy()
    offsets = rng.integers(-max_shift, max_shift + 1, size=(len(flat), 2))
    return translate(flat, offsets[:, 0], offsets[:, 1], shape).reshape(np.shape(images))


def translate(images, dy, dx, shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """Move image ``k`` by ``dy[k]`` rows down and ``dx[k]`` columns right (integers; negative
    is up / left), filling with zeros. The deterministic half of :func:`shift`.

    Vectorised over the batch: the images are padded once with a zero border as wide as the
    largest move, and every output pixel is gathered from the padded copy with one fancy index.

    Parameters
    ----------
    images : array of shape (n, height * width).
    dy, dx : integer arrays of shape (n,).
    shape : (height, width) of an image.

    Examples
    --------
    >>> image = np.arange(1.0, 10.0).reshape(1, 9)   # 3x3: rows [1 2 3] [4 5 6] [7 8 9]
    >>> translate(image, [1], [-1], shape=(3, 3)).reshape(3, 3)
    array([[0., 0., 0.],
           [2., 3., 0.],
           [5., 6., 0.]])
    """
    height, width = _check_shape(shape)
    flat = _as_images(images, (height, width)).reshape(-1, height * width)
    dy, dx = np.asarray(dy, dtype=np.intp).reshape(-1), np.asarray(dx, dtype=np.intp).reshape(-1)
    if len(dy) != len(flat) or len(dx) != len(flat):
        raise ValueError(f"need one offset per image: {len(flat)} images, {len(dy)} dy and "
                         f"{len(dx)} dx")
    n = len(flat)
    if n == 0:
        return flat.copy()
    # Moves beyond the image only ever bring in zeros; clipping them keeps the padding small.
    dy = np.clip(dy, -height, height)
    dx = np.clip(dx, -width, width)
    pad = int(max(np.abs(dy).max(), np.abs(dx).max()))
    padded = np.pad(flat.reshape(n, height, width), ((0, 0), (pad, pad), (pad, pad)))
    rows = np.arange(height)[None, :] - dy[:, None] + pad          # (n, height)
    cols = np.arange(width)[None, :] - dx[:, None] + pad           # (n, width)
    index = rows[:, :, None] * (width + 2 * pad) + cols[:, None, :]  # (n, height, width)
    moved = np.take_along_axis(padded.reshape(n, -1), index.reshape(n, -1), axis=1)
    return moved


def elastic(images, rng: np.random.Generator, alpha: float = 34.0, sigma: float = 4.0,
            shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    r"""Elastic distortion of each image (Simard, Steinkraus & Platt 2003).

    For each image two random fields, one per axis, are drawn uniformly in [-1, 1] at every
    pixel, smoothed by a Gaussian of standard deviation ``sigma`` pixels and scaled by
    ``alpha``; the image is then resampled at the displaced positions with bilinear
    interpolation, 0 outside the image:

    .. math::

        \Delta y = \alpha \, (G_\sigma * u_y), \qquad \Delta x = \alpha \, (G_\sigma * u_x),
        \qquad u_y, u_x \sim \mathcal U[-1, 1]^{h \times w},

        \tilde x_{i,j} = x(i + \Delta y_{i,j},\; j + \Delta x_{i,j})

    where :math:`x(\cdot,\cdot)` interpolates bilinearly between the four nearest pixels.
    A small ``sigma`` gives a nearly random, noisy field; a large one a nearly uniform
    translation; in between the strokes bend as if written by another hand. Simard et al.
    ("Best practices for convolutional neural networks applied to visual document analysis",
    ICDAR 2003) used :math:`\sigma \approx 4` and :math:`\alpha \approx 34` for 28x28
    MNIST digits, the defaults here. See :func:`displacement_fields` for the fields and the
    order of the random draws, :func:`warp` for the resampling.

    Parameters
    ----------
    images : array of shape (..., height * width), each row an image flattened row by row.
    rng : the NumPy Generator that draws the fields.
    alpha : the scale of the displacements, in pixels (>= 0; 0 leaves the images unchanged).
    sigma : the Gaussian's standard deviation, in pixels (> 0).
    shape : (height, width) of an image.

    Returns
    -------
    A new array of the same shape as ``images`` (float32 and float64 kept; other dtypes become
    float64). Bilinear interpolation is a convex combination, so images in [0, 1] stay there.

    >>> X = np.zeros((2, 784)); X[:, 14 * 28 + 10:14 * 28 + 18] = 1.0   # a horizontal stroke
    >>> bent = elastic(X, np.random.default_rng(0))
    >>> bent.shape, bool(np.all((bent >= 0) & (bent <= 1))), bool(np.array_equal(bent, X))
    ((2, 784), True, False)
    """
    alpha = check_real(alpha, "alpha", low=0.0)
    sigma = check_real(sigma, "sigma", low=0.0, low_open=True)
    shape = _check_shape(shape)
    flat = _as_images(images, shape)
    _check_rng(rng)
    dy, dx = displacement_fields(len(flat), rng, alpha, sigma, shape)
    return warp(flat, dy, dx, shape).reshape(np.shape(images))


def displacement_fields(n: int, rng: np.random.Generator, alpha: float = 34.0,
                        sigma: float = 4.0, shape: tuple[int, int] = (28, 28)
                        ) -> tuple[np.ndarray, np.ndarray]:
    r"""The random displacement fields of :func:`elastic`: ``(dy, dx)``, each of shape
    (n, height, width), in pixels, float64.

    One draw, ``rng.uniform(-1, 1, size=(2, n, height, width))`` (first every ``dy`` field,
    then every ``dx``), is smoothed by a separable Gaussian: a 2-D Gaussian filter is a 1-D
    filter down the columns followed by one along the rows, and each 1-D filter of a fixed size
    is a matrix product, so every field becomes :math:`G_h\, U\, G_w^\top` (computed as two
    large products for the whole batch). :math:`G[i, j] = g(i - j)`, with :math:`g` the
    Gaussian of standard deviation ``sigma`` cut at 4 ``sigma`` and normalised to sum 1;
    beyond the image the field counts as 0
    (``scipy.ndimage.gaussian_filter(..., mode="constant")`` computes the same).

    >>> dy, dx = displacement_fields(3, np.random.default_rng(0), alpha=34.0, sigma=4.0)
    >>> dy.shape, dx.shape, bool(np.abs(dy).max() < 34)
    ((3, 28, 28), (3, 28, 28), True)
    """
    n = check_int(n, "n", low=0)
    alpha = check_real(alpha, "alpha", low=0.0)
    sigma = check_real(sigma, "sigma", low=0.0, low_open=True)
    height, width = _check_shape(shape)
    _check_rng(rng)
    noise = rng.uniform(-1.0, 1.0, size=(2, n, height, width))
    # Two large matrix products (rows, then columns) rather than 2n small ones per axis:
    # NumPy's batched matmul calls the BLAS once per 28x28 product, which costs more than the
    # arithmetic.
    along_rows = noise.reshape(-1, width) @ (alpha * _gaussian_matrix(width, sigma).T)
    along_rows = along_rows.reshape(2 * n, height, width).transpose(0, 2, 1).reshape(-1, height)
    smoothed = (along_rows @ _gaussian_matrix(height, sigma).T).reshape(2, n, width, height)
    smoothed = smoothed.transpose(0, 1, 3, 2)
    return smoothed[0], smoothed[1]


def warp(images, dy, dx, shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    r"""Resample image ``k`` at ``(i + dy[k, i, j], j + dx[k, i, j])`` for every pixel
    ``(i, j)``, by bilinear interpolation between the four nearest pixels, with 0 outside the
    image. The deterministic half of :func:`elastic`.

    With :math:`y = i + \Delta y`, :math:`i_0 = \lfloor y \rfloor`, :math:`a = y - i_0`
    (and :math:`j_0`, :math:`b` likewise along the rows):

    .. math::

        \tilde x_{i,j} = (1-a)(1-b)\, x_{i_0, j_0} + (1-a)\, b\, x_{i_0, j_0+1}
                       + a\, (1-b)\, x_{i_0+1, j_0} + a\, b\, x_{i_0+1, j_0+1}.

    Vectorised: the images get a zero border, neighbour indices beyond it are clipped onto it
    (so they read 0), and each of the four neighbours is one fancy-index gather.

    Parameters
    ----------
    images : array of shape (n, height * width).
    dy, dx : displacements of shape (n, height, width) (or (n, height * width)), in pixels.
    shape : (height, width) of an image.

    Examples
    --------
    >>> image = np.arange(1.0, 10.0).reshape(1, 9)          # 3x3: rows [1 2 3] [4 5 6] [7 8 9]
    >>> half_right = np.full((1, 3, 3), 0.5)
    >>> warp(image, np.zeros((1, 3, 3)), half_right, shape=(3, 3)).reshape(3, 3)
    array([[1.5, 2.5, 1.5],
           [4.5, 5.5, 3. ],
           [7.5, 8.5, 4.5]])
    """
    height, width = _check_shape(shape)
    flat = _as_images(images, (height, width)).reshape(-1, height * width)
    n = len(flat)
    dy = np.asarray(dy, dtype=np.float64)
    dx = np.asarray(dx, dtype=np.float64)
    for name, field in (("dy", dy), ("dx", dx)):
        if field.size != n * height * width:
            raise ValueError(f"{name} must hold one displacement per pixel, shape "
                             f"({n}, {height}, {width}), got shape {field.shape}")
    if n == 0:
        return flat.copy()
    if not (np.isfinite(dy).all() and np.isfinite(dx).all()):
        raise ValueError("dy and dx must be finite displacements (they hold NaN or infinity)")
    dy = dy.reshape(n, height, width)
    dx = dx.reshape(n, height, width)
    out = np.empty_like(flat)
    # A few images at a time: the temporaries then stay small enough to be reused from the
    # cache (and the allocator's pool) instead of being fresh memory at every step, which
    # makes the whole batch about five times faster.
    for start in range(0, n, _WARP_CHUNK):
        part = slice(start, start + _WARP_CHUNK)
        out[part] = _bilinear(flat[part], dy[part], dx[part], height, width)
    return out


_WARP_CHUNK = 32


def _bilinear(flat: np.ndarray, dy: np.ndarray, dx: np.ndarray, height: int, width: int
              ) -> np.ndarray:
    """:func:`warp` on checked arguments: ``flat`` (n, height * width), ``dy`` and ``dx``
    (n, height, width), finite."""
    n = len(flat)
    rows = dy + np.arange(height, dtype=np.float64)[:, None]
    cols = dx + np.arange(width, dtype=np.float64)[None, :]
    row0 = np.floor(rows)
    col0 = np.floor(cols)
    a = (rows - row0).astype(flat.dtype, copy=False)
    b = (cols - col0).astype(flat.dtype, copy=False)
    # A zero border two pixels wide: a top-left neighbour clipped into [-2, height] (or
    # [-2, width]) and its neighbours one further all read 0 when they lie outside the image,
    # however far outside, so no neighbour needs its own bounds test.
    stride = width + 4
    np.clip(row0, -2.0, float(height), out=row0)
    np.clip(col0, -2.0, float(width), out=col0)
    first = np.arange(n) * ((height + 4) * stride) + (2 * stride + 2)  # each image's (0, 0)
    corner = (row0 * stride + col0).astype(np.intp) + first[:, None, None]
    padded = np.pad(flat.reshape(n, height, width), ((0, 0), (2, 2), (2, 2))).reshape(-1)
    v00, v01 = padded.take(corner), padded.take(corner + 1)
    corner += stride
    v10, v11 = padded.take(corner), padded.take(corner + 1)
    top = v00 + b * (v01 - v00)
    bottom = v10 + b * (v11 - v10)
    return (top + a * (bottom - top)).reshape(n, height * width)


class Augment:
    """A random augmentation of image batches: an elastic distortion, then a translation.

    Call it on a batch with a NumPy Generator, ``augment(X_batch, rng)``, once per batch of
    each epoch, so that every epoch sees newly distorted images; the same generator state
    gives the same result. Apply it to training batches only, never to the test set.

    Parameters
    ----------
    shift : int
        The largest translation along each axis, in pixels (>= 0; 0 for none). See
        :func:`shift`.
    elastic : pair of floats, optional
        ``(alpha, sigma)``, e.g. ``(34.0, 4.0)`` (Simard et al. 2003's values for MNIST), or
        None for no elastic distortion. See :func:`elastic`.
    shape : pair of ints
        (height, width) of an image; rows must have ``height * width`` features.

    Notes
    -----
    ``get_config()`` returns the settings as a dict, and ``Augment(**config)`` rebuilds the
    same augmentation (also from the lists that JSON makes of its tuples).

    Examples
    --------
    >>> augment = Augment(shift=2, elastic=(34.0, 4.0))
    >>> augment
    Augment(shift=2, elastic=(34.0, 4.0), shape=(28, 28))
    >>> augment.get_config()
    {'shift': 2, 'elastic': (34.0, 4.0), 'shape': (28, 28)}
    >>> X = np.zeros((128, 784), dtype=np.float32)
    >>> augment(X, np.random.default_rng(0)).shape
    (128, 784)
    """

    def __init__(self, shift: int = 2, elastic: Sequence[float] | None = None,
                 shape: Sequence[int] = (28, 28)):
        self.shift = check_int(shift, "shift", low=0)
        if elastic is None:
            self.elastic = None
        else:
            if isinstance(elastic, (str, bytes)) or not isinstance(elastic, Sequence) \
                    or len(elastic) != 2:
                raise ValueError(f"elastic must be None or (alpha, sigma), got {elastic!r}")
            alpha = check_real(elastic[0], "elastic alpha", low=0.0)
            sigma = check_real(elastic[1], "elastic sigma", low=0.0, low_open=True)
            self.elastic = (alpha, sigma)
        self.shape = _check_shape(shape)

    def __call__(self, images, rng: np.random.Generator) -> np.ndarray:
        """The augmented copy of ``images`` (shape (..., height * width)), drawn from ``rng``:
        first the elastic fields (if any), then the offsets."""
        flat = _as_images(images, self.shape)
        _check_rng(rng)
        out = flat
        if self.elastic is not None:
            alpha, sigma = self.elastic
            out = elastic(out, rng, alpha, sigma, self.shape)
        if self.shift:
            out = shift(out, rng, self.shift, self.shape)
        if out is flat:
            out = flat.copy()
        return out.reshape(np.shape(images))

    def get_config(self) -> dict:
        """The settings, for saving with a run's configuration: ``Augment(**config)``."""
        return {"shift": self.shift, "elastic": self.elastic, "shape": self.shape}

    def __repr__(self) -> str:
        return f"Augment(shift={self.shift}, elastic={self.elastic!r}, shape={self.shape!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Augment) and self.get_config() == other.get_config()


@lru_cache(maxsize=32)
def _gaussian_matrix(size: int, sigma: float) -> np.ndarray:
    """The (size, size) matrix that filters a column of ``size`` values with a Gaussian of
    standard deviation ``sigma``, zeros beyond the ends; read-only, since it is cached."""
    radius = int(4.0 * sigma + 0.5)  # (scipy.ndimage's truncation, so both agree)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    offset = np.arange(size)[:, None] - np.arange(size)[None, :]
    matrix = np.where(np.abs(offset) <= radius, taps[np.clip(offset + radius, 0, 2 * radius)],
                      0.0)
    matrix.setflags(write=False)
    return matrix


def _check_shape(shape) -> tuple[int, int]:
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence) or len(shape) != 2:
        raise ValueError(f"shape must be (height, width), got {shape!r}")
    return (check_int(shape[0], "shape height"), check_int(shape[1], "shape width"))


def _as_images(images, shape: tuple[int, int]) -> np.ndarray:
    """``images`` as an array of shape (n, height * width), float32 or float64."""
    array = np.asarray(images)
    if array.dtype.kind == "c":
        raise TypeError("images hold complex numbers; augmentation needs real pixel values")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"images must hold numbers, got an array of dtype {array.dtype}")
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float64)
    height, width = shape
    features = array.shape[-1] if array.ndim else None
    if features != height * width:
        got = "a scalar" if features is None else f"{features} features"
        raise ValueError(f"augmentation needs rows of {height}x{width} = {height * width} "
                         f"pixels, got {got}")
    return array.reshape(-1, height * width)


def _check_rng(rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
