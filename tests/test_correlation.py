"""cnnref.correlation: correlate2d / convolve2d against scipy.signal, the loop forms and hand-worked sums."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from cnnref import convolve2d, convolve2d_loop, correlate2d, correlate2d_loop, rot180
from helpers import RTOL32, assert_close

# (image shape, kernel shape): odd, even, square and non-square kernels on non-square images.
SHAPES_FITTING = [
    ((5, 7), (3, 3)),   # odd square
    ((5, 7), (2, 2)),   # even square
    ((6, 5), (2, 3)),   # non-square, even x odd
    ((6, 5), (3, 2)),   # non-square, odd x even
    ((4, 6), (4, 4)),   # even, kernel as tall as the image
    ((7, 4), (1, 4)),   # a row kernel as wide as the image
    ((3, 3), (1, 1)),
]
# Kernel larger than the image in at least one axis: only "full" and "same" are defined.
SHAPES_LARGE_KERNEL = [
    ((3, 4), (5, 5)),
    ((2, 3), (4, 2)),
    ((3, 3), (3, 6)),
    ((1, 2), (2, 3)),
]


def _pair(image_shape, kernel_shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(image_shape), rng.standard_normal(kernel_shape)


@pytest.mark.parametrize("mode", ["valid", "full", "same"])
@pytest.mark.parametrize("image_shape, kernel_shape", SHAPES_FITTING)
def test_correlate2d_matches_scipy(image_shape, kernel_shape, mode):
    image, kernel = _pair(image_shape, kernel_shape)
    assert_close(correlate2d(image, kernel, mode), scipy.signal.correlate2d(image, kernel, mode))


@pytest.mark.parametrize("mode", ["valid", "full", "same"])
@pytest.mark.parametrize("image_shape, kernel_shape", SHAPES_FITTING)
def test_convolve2d_matches_scipy(image_shape, kernel_shape, mode):
    image, kernel = _pair(image_shape, kernel_shape)
    assert_close(convolve2d(image, kernel, mode), scipy.signal.convolve2d(image, kernel, mode))


@pytest.mark.parametrize("mode", ["full", "same"])
@pytest.mark.parametrize("image_shape, kernel_shape", SHAPES_LARGE_KERNEL)
def test_kernel_larger_than_image_full_and_same_match_scipy(image_shape, kernel_shape, mode):
    image, kernel = _pair(image_shape, kernel_shape, seed=1)
    got_corr = correlate2d(image, kernel, mode)
    got_conv = convolve2d(image, kernel, mode)
    expected_shape = image_shape if mode == "same" else tuple(np.add(image_shape, kernel_shape) - 1)
    assert got_corr.shape == got_conv.shape == expected_shape
    assert_close(got_corr, scipy.signal.correlate2d(image, kernel, mode))
    assert_close(got_conv, scipy.signal.convolve2d(image, kernel, mode))


def test_hand_worked_correlation_and_convolution():
    image = np.array([[1.0, 2.0, 3.0],
                      [4.0, 5.0, 6.0],
                      [7.0, 8.0, 9.0]])
    kernel = np.array([[1.0, 2.0],
                       [3.0, 4.0]])
    # correlation: out[x, y] = Σ image[x+u, y+v] k[u, v]
    #   out[0,0] = 1·1 + 2·2 + 4·3 + 5·4 = 37, out[0,1] = 2 + 6 + 15 + 24 = 47, ...
    np.testing.assert_array_equal(correlate2d(image, kernel), [[37.0, 47.0], [67.0, 77.0]])
    # convolution: the kernel flipped, out[0,0] = 1·4 + 2·3 + 4·2 + 5·1 = 23
    np.testing.assert_array_equal(convolve2d(image, kernel), [[23.0, 33.0], [53.0, 63.0]])
    # full correlation: k slid over every overlap; the corner out[0,0] = image[0,0]·k[1,1] = 4
    np.testing.assert_array_equal(
        correlate2d(image, kernel, "full"),
        [[4.0, 11.0, 18.0, 9.0],
         [18.0, 37.0, 47.0, 21.0],
         [36.0, 67.0, 77.0, 33.0],
         [14.0, 23.0, 26.0, 9.0]],
    )


def test_same_crop_offsets_for_even_kernels():
    # The module docstring: "same" keeps the block of "full" starting at K // 2 for
    # correlation and at (K − 1) // 2 for convolution; for K = 2 that is 1 and 0.
    image, kernel = _pair((4, 5), (2, 2), seed=2)
    full_corr = correlate2d(image, kernel, "full")
    full_conv = convolve2d(image, kernel, "full")
    np.testing.assert_array_equal(correlate2d(image, kernel, "same"), full_corr[1:5, 1:6])
    np.testing.assert_array_equal(convolve2d(image, kernel, "same"), full_conv[0:4, 0:5])
    # and for odd K = 3 both start at 1 (the centred block)
    kernel3 = _pair((4, 5), (3, 3), seed=3)[1]
    np.testing.assert_array_equal(correlate2d(image, kernel3, "same"), correlate2d(image, kernel3, "full")[1:5, 1:6])
    np.testing.assert_array_equal(convolve2d(image, kernel3, "same"), convolve2d(image, kernel3, "full")[1:5, 1:6])


@pytest.mark.parametrize("mode", ["valid", "full"])
@pytest.mark.parametrize("image_shape, kernel_shape", SHAPES_FITTING[:4])
def test_flip_relation(image_shape, kernel_shape, mode):
    # [eq-flip-relation]: i ∗ k = i ⋆ rot180(k), exactly (same products, same order is not needed).
    image, kernel = _pair(image_shape, kernel_shape, seed=4)
    assert_close(convolve2d(image, kernel, mode), correlate2d(image, rot180(kernel), mode))
    # ... and the flip matters: without it the results differ for a non-symmetric kernel.
    assert not np.allclose(convolve2d(image, kernel, mode), correlate2d(image, kernel, mode))


@pytest.mark.parametrize("image_shape, kernel_shape", SHAPES_FITTING)
def test_loop_forms_match_vectorised_valid(image_shape, kernel_shape):
    image, kernel = _pair(image_shape, kernel_shape, seed=5)
    assert_close(correlate2d_loop(image, kernel), correlate2d(image, kernel, "valid"))
    assert_close(convolve2d_loop(image, kernel), convolve2d(image, kernel, "valid"))
    # and against scipy, so the loops are not just checked against a shared mistake
    assert_close(convolve2d_loop(image, kernel), scipy.signal.convolve2d(image, kernel, "valid"))


def test_convolve2d_loop_places_the_k_minus_1_shift():
    # The convolution sum is defined for x >= K - 1; the valid output index is x - (K - 1).
    image = np.zeros((4, 4))
    image[3, 3] = 1.0  # an impulse in the last pixel
    kernel = np.arange(1.0, 5.0).reshape(2, 2)
    out = convolve2d_loop(image, kernel)
    # out[x', y'] = Σ image[x'+1-u, y'+1-v] k[u, v]; only x'=y'=2 with u=v=0 sees the impulse.
    expected = np.zeros((3, 3))
    expected[2, 2] = kernel[0, 0]
    np.testing.assert_array_equal(out, expected)


def test_rot180():
    a = np.array([[1.0, 2.0, 3.0],
                  [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(rot180(a), [[6.0, 5.0, 4.0], [3.0, 2.0, 1.0]])
    np.testing.assert_array_equal(rot180(rot180(a)), a)
    # leading axes untouched
    w = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    r = rot180(w)
    for o in range(2):
        for c in range(3):
            np.testing.assert_array_equal(r[o, c], w[o, c][::-1, ::-1])
    assert np.shares_memory(r, w)  # documented: a view


def test_float32_is_kept_and_integers_are_promoted():
    image, kernel = _pair((5, 6), (2, 3), seed=6)
    for mode in ("valid", "full", "same"):
        for f in (correlate2d, convolve2d):
            out32 = f(image.astype(np.float32), kernel.astype(np.float32), mode)
            assert out32.dtype == np.float32
            assert_close(out32, f(image, kernel, mode), RTOL32)
            # mixed precision computes in float64
            assert f(image.astype(np.float32), kernel, mode).dtype == np.float64
    ints = np.arange(12).reshape(3, 4)
    k = np.array([[1, -1]])
    for f in (correlate2d, convolve2d, correlate2d_loop, convolve2d_loop):
        out = f(ints, k)
        assert out.dtype == np.float64
    np.testing.assert_array_equal(correlate2d(ints, k), -np.ones((3, 3)))
    np.testing.assert_array_equal(convolve2d(ints, k), np.ones((3, 3)))


def test_nan_and_inf_propagate():
    image = np.ones((4, 4))
    image[1, 2] = np.nan
    image[3, 0] = np.inf
    kernel = np.ones((2, 2))
    out = correlate2d(image, kernel)
    # the NaN at (1, 2) is read by windows (0..1, 1..2); the inf at (3, 0) by window (2, 0)
    expected_nan = np.zeros((3, 3), dtype=bool)
    expected_nan[0:2, 1:3] = True
    assert np.array_equal(np.isnan(out), expected_nan)
    assert out[2, 0] == np.inf
    finite = ~expected_nan
    finite[2, 0] = False
    np.testing.assert_array_equal(out[finite], 4.0)
