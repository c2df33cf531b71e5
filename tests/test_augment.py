"""Augmentation (bprop.data.augment): translations and elastic distortions, each checked
against a slow, obviously correct reference on small images."""

import copy
import json

import numpy as np
import pytest

from bprop.data.augment import (
    Augment,
    displacement_fields,
    elastic,
    shift,
    translate,
    warp,
)

# --- references: one pixel at a time ---------------------------------------------------------


def translate_reference(image2d, dy, dx):
    """np.roll, then zeros where the roll wrapped around."""
    height, width = image2d.shape
    moved = np.roll(image2d, (dy, dx), axis=(0, 1))
    if dy > 0:
        moved[:dy] = 0
    elif dy < 0:
        moved[dy:] = 0
    if dx > 0:
        moved[:, :dx] = 0
    elif dx < 0:
        moved[:, dx:] = 0
    return moved


def bilinear_reference(image2d, dy2d, dx2d):
    height, width = image2d.shape

    def pixel(i, j):
        return image2d[i, j] if 0 <= i < height and 0 <= j < width else 0.0

    out = np.zeros_like(image2d, dtype=np.float64)
    for i in range(height):
        for j in range(width):
            y, x = i + dy2d[i, j], j + dx2d[i, j]
            i0, j0 = int(np.floor(y)), int(np.floor(x))
            a, b = y - i0, x - j0
            out[i, j] = ((1 - a) * (1 - b) * pixel(i0, j0) + (1 - a) * b * pixel(i0, j0 + 1)
                         + a * (1 - b) * pixel(i0 + 1, j0) + a * b * pixel(i0 + 1, j0 + 1))
    return out


def digit_like(n=4, dtype=np.float64):
    """A blob in the middle of 28x28 images, values in [0, 1], nothing near the border."""
    yy, xx = np.mgrid[0:28, 0:28]
    blob = np.exp(-((yy - 14.0) ** 2 + (xx - 13.0) ** 2) / (2 * 3.0 ** 2))
    scales = np.linspace(0.5, 1.0, n)[:, None]
    return (scales * blob.reshape(1, -1)).astype(dtype)


# --- shift -------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(28, 28), (5, 7)])
def test_shift_matches_a_roll_with_zero_fill_for_the_drawn_offsets(shape):
    height, width = shape
    rng = np.random.default_rng(0)
    images = rng.random((40, height * width))
    offsets = copy.deepcopy(rng).integers(-3, 4, size=(40, 2))  # the documented draw
    moved = shift(images, rng, max_shift=3, shape=shape)
    for image, result, (dy, dx) in zip(images, moved, offsets, strict=True):
        expected = translate_reference(image.reshape(shape), dy, dx)
        np.testing.assert_array_equal(result.reshape(shape), expected)
    assert len({tuple(o) for o in offsets}) > 10  # (many different offsets were exercised)


def test_a_single_pixel_moves_by_exactly_the_offset():
    image = np.zeros((1, 784))
    image[0, 10 * 28 + 12] = 1.0
    rng = np.random.default_rng(7)
    (dy, dx), = copy.deepcopy(rng).integers(-2, 3, size=(1, 2))
    moved = shift(image, rng, max_shift=2).reshape(28, 28)
    assert moved[10 + dy, 12 + dx] == 1.0
    assert moved.sum() == 1.0


def test_shift_fills_with_zeros():
    ones = np.ones((1, 16))
    moved = translate(ones, [1], [-2], shape=(4, 4)).reshape(4, 4)
    expected = np.zeros((4, 4))
    expected[1:, :2] = 1.0
    np.testing.assert_array_equal(moved, expected)
    far = translate(ones, [10], [0], shape=(4, 4))
    np.testing.assert_array_equal(far, np.zeros((1, 16)))


def test_max_shift_zero_is_the_identity_and_a_copy():
    images = np.random.default_rng(1).random((3, 784))
    same = shift(images, np.random.default_rng(0), max_shift=0)
    np.testing.assert_array_equal(same, images)
    assert not np.shares_memory(same, images)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shift_keeps_dtype_and_shape(dtype):
    images = np.random.default_rng(2).random((2, 3, 784)).astype(dtype)
    moved = shift(images, np.random.default_rng(0))
    assert moved.dtype == dtype and moved.shape == (2, 3, 784)
    assert not np.shares_memory(moved, images)


def test_shift_of_integer_images_gives_float64():
    images = np.zeros((2, 784), dtype=np.uint8)
    assert shift(images, np.random.default_rng(0)).dtype == np.float64


@pytest.mark.parametrize("n", [0, 1])
def test_shift_of_tiny_batches(n):
    images = np.zeros((n, 28, 28))
    images[:, 5:20, 6:21] = np.random.default_rng(3).random((n, 15, 15))  # (away from borders)
    moved = shift(images.reshape(n, 784), np.random.default_rng(0))
    assert moved.shape == (n, 784)
    np.testing.assert_allclose(moved.sum(axis=1), images.sum(axis=(1, 2)), rtol=1e-12)


# --- elastic -----------------------------------------------------------------------------------


def test_alpha_zero_is_the_identity():
    images = np.random.default_rng(4).random((5, 784))
    same = elastic(images, np.random.default_rng(0), alpha=0.0, sigma=4.0)
    np.testing.assert_allclose(same, images, rtol=0, atol=1e-12)


def test_elastic_is_warp_of_the_documented_fields():
    images = np.random.default_rng(5).random((6, 784))
    rng = np.random.default_rng(11)
    dy, dx = displacement_fields(6, copy.deepcopy(rng), 34.0, 4.0)
    np.testing.assert_allclose(elastic(images, rng, 34.0, 4.0), warp(images, dy, dx),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(8, 8), (5, 7)])
def test_bilinear_sampling_matches_a_loop_over_pixels(shape):
    rng = np.random.default_rng(6)
    images = rng.random((3, shape[0] * shape[1]))
    # Displacements up to 3 pixels, so that some samples fall partly or wholly outside.
    dy = rng.uniform(-3, 3, size=(3, *shape))
    dx = rng.uniform(-3, 3, size=(3, *shape))
    dy[0, 0, 0], dx[0, 0, 1] = 0.0, 1.0  # (exactly on a pixel, and exactly one pixel away)
    warped = warp(images, dy, dx, shape=shape)
    for k in range(3):
        expected = bilinear_reference(images[k].reshape(shape), dy[k], dx[k])
        np.testing.assert_allclose(warped[k].reshape(shape), expected, rtol=0, atol=1e-12)


def test_warp_by_whole_pixels_is_a_translation():
    images = np.random.default_rng(7).random((2, 30))
    dy = np.full((2, 5, 6), -1.0)
    dx = np.full((2, 5, 6), 2.0)
    # Sampling at (i - 1, j + 2) moves the content 1 down and 2 left.
    np.testing.assert_allclose(warp(images, dy, dx, shape=(5, 6)),
                               translate(images, [1, 1], [-2, -2], shape=(5, 6)),
                               rtol=0, atol=1e-12)


def test_a_constant_image_stays_constant_away_from_the_borders():
    value = 0.6
    images = np.full((4, 784), value)
    rng = np.random.default_rng(8)
    dy, dx = displacement_fields(4, copy.deepcopy(rng), 34.0, 4.0)
    out = elastic(images, rng, 34.0, 4.0).reshape(4, 28, 28)
    rows = np.arange(28)[:, None] + dy
    cols = np.arange(28)[None, :] + dx
    inside = (rows >= 0) & (rows <= 27) & (cols >= 0) & (cols <= 27)
    assert inside.mean() > 0.8  # (the check covers most of the image)
    np.testing.assert_allclose(out[inside], value, rtol=0, atol=1e-12)
    assert np.all(out <= value + 1e-12)  # (outside, zeros are mixed in)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elastic_keeps_images_in_the_unit_interval(dtype):
    rng = np.random.default_rng(9)
    images = rng.random((64, 784)).astype(dtype)
    images[:8] = 1.0
    images[8:16] = 0.0
    out = elastic(images, rng, 34.0, 4.0)
    assert out.dtype == dtype and out.shape == images.shape
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_same_generator_state_same_output_and_different_seeds_differ():
    images = digit_like()
    first = elastic(images, np.random.default_rng(12))
    again = elastic(images, np.random.default_rng(12))
    other = elastic(images, np.random.default_rng(13))
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 0.05


def test_small_distortions_roughly_preserve_the_ink():
    images = digit_like(8)
    out = elastic(images, np.random.default_rng(14), alpha=8.0, sigma=4.0)
    ratio = out.sum(axis=1) / images.sum(axis=1)
    assert np.all(np.abs(ratio - 1) < 0.10), ratio
    assert np.abs(out - images).max() > 1e-3  # (it did move)


def test_the_default_fields_are_a_few_pixels():
    dy, dx = displacement_fields(50, np.random.default_rng(15))
    typical = np.sqrt(np.mean(dy ** 2 + dx ** 2))
    assert 0.5 < typical < 4.0, typical


def test_the_smoothing_is_scipys_gaussian_filter_with_zeros_outside():
    ndimage = pytest.importorskip("scipy.ndimage",
                                  reason="SciPy checks the Gaussian smoothing independently")
    shape = (9, 13)
    rng = np.random.default_rng(16)
    noise = copy.deepcopy(rng).uniform(-1.0, 1.0, size=(2, 3, *shape))
    dy, dx = displacement_fields(3, rng, alpha=2.5, sigma=1.5, shape=shape)
    for k in range(3):
        for field, raw in ((dy, noise[0]), (dx, noise[1])):
            expected = 2.5 * ndimage.gaussian_filter(raw[k], 1.5, mode="constant")
            np.testing.assert_allclose(field[k], expected, rtol=0, atol=1e-12)


def test_warp_refuses_bad_fields():
    images = np.zeros((2, 16))
    with pytest.raises(ValueError, match="one displacement per pixel"):
        warp(images, np.zeros((2, 3, 3)), np.zeros((2, 4, 4)), shape=(4, 4))
    bad = np.zeros((2, 4, 4))
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        warp(images, bad, np.zeros((2, 4, 4)), shape=(4, 4))


def test_elastic_of_tiny_batches():
    for n in (0, 1):
        out = elastic(np.zeros((n, 784), dtype=np.float32), np.random.default_rng(0))
        assert out.shape == (n, 784) and out.dtype == np.float32


# --- Augment -----------------------------------------------------------------------------------


def test_augment_is_elastic_then_shift_from_the_same_generator():
    images = digit_like(5, np.float32)
    rng = np.random.default_rng(17)
    mirror = copy.deepcopy(rng)
    out = Augment(shift=2, elastic=(34.0, 4.0))(images, rng)
    expected = shift(elastic(images, mirror, 34.0, 4.0), mirror, 2)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.float32
    assert rng.random() == mirror.random()  # (both drew the same amount)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_augment_keeps_dtype_and_is_reproducible(dtype):
    images = digit_like(3, dtype)
    augment = Augment(shift=1, elastic=(20, 3))
    first = augment(images, np.random.default_rng(18))
    np.testing.assert_array_equal(first, augment(images, np.random.default_rng(18)))
    assert first.dtype == dtype and first.shape == images.shape
    assert not np.array_equal(first, images)


def test_augment_shift_only_and_nothing():
    images = digit_like(3)
    rng = np.random.default_rng(19)
    mirror = copy.deepcopy(rng)
    np.testing.assert_array_equal(Augment(shift=2)(images, rng), shift(images, mirror, 2))
    nothing = Augment(shift=0, elastic=None)(images, rng)
    np.testing.assert_array_equal(nothing, images)
    assert not np.shares_memory(nothing, images)


def test_augment_config_round_trips_through_json():
    augment = Augment(shift=3, elastic=(30, 5.5), shape=(20, 30))
    config = augment.get_config()
    assert config == {"shift": 3, "elastic": (30.0, 5.5), "shape": (20, 30)}
    rebuilt = Augment(**json.loads(json.dumps(config)))
    assert rebuilt == augment
    assert repr(rebuilt) == "Augment(shift=3, elastic=(30.0, 5.5), shape=(20, 30))"
    assert Augment().get_config() == {"shift": 2, "elastic": None, "shape": (28, 28)}


@pytest.mark.parametrize("kwargs, message", [
    ({"shift": -1}, "shift must be an integer >= 0"),
    ({"shift": 1.5}, "shift must be an integer >= 0"),
    ({"elastic": (34.0, 0.0)}, "sigma must be"),
    ({"elastic": (34.0, -4.0)}, "sigma must be"),
    ({"elastic": (-1.0, 4.0)}, "alpha must be"),
    ({"elastic": (34.0,)}, r"elastic must be None or \(alpha, sigma\)"),
    ({"elastic": 34.0}, r"elastic must be None or \(alpha, sigma\)"),
    ({"shape": (28,)}, r"shape must be \(height, width\)"),
    ({"shape": (0, 28)}, "shape height must be a positive integer"),
])
def test_augment_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Augment(**kwargs)


def test_augment_refuses_rows_of_the_wrong_width_and_other_generators():
    augment = Augment(shift=2, elastic=(34, 4))
    with pytest.raises(ValueError) as error:
        augment(np.zeros((3, 10)), np.random.default_rng(0))
    assert str(error.value) == "augmentation needs rows of 28x28 = 784 pixels, got 10 features"
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        augment(np.zeros((3, 784)), 0)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        shift(np.zeros((3, 784)), np.random.RandomState(0))
    with pytest.raises(TypeError, match="complex"):
        elastic(np.zeros((1, 784), dtype=complex), np.random.default_rng(0))
    with pytest.raises(ValueError, match="sigma must be"):
        elastic(np.zeros((1, 784)), np.random.default_rng(0), sigma=0.0)
    with pytest.raises(ValueError, match="max_shift must be an integer >= 0"):
        shift(np.zeros((1, 784)), np.random.default_rng(0), max_shift=-2)
