"""cnnref.gradcheck: the checking tools themselves must be able to tell right from wrong."""

from __future__ import annotations

import numpy as np
import pytest

from cnnref import conv2d_backward, conv2d_forward, convolve2d, correlate2d, rot180
from cnnref.gradcheck import adjoint_test, numerical_gradient, relative_error

# --- numerical_gradient ---------------------------------------------------------------------------


def _sum_of_cubes(x):
    return float(np.sum(x**3))


def test_numerical_gradient_of_sum_of_cubes():
    x = np.array([[-1.5, 0.0, 0.5], [1.0, 2.0, -3.0]])
    num = numerical_gradient(_sum_of_cubes, x)
    assert num.shape == x.shape and num.dtype == np.float64
    # default ε = 1e-6: truncation ε² = 1e-12, rounding ~1e-16 · |f| / ε ≈ 4e-9 (|f| ≈ 36)
    assert relative_error(num, 3 * x**2) < 1e-8


@pytest.mark.parametrize("eps", [1e-1, 1e-2])
def test_numerical_gradient_is_a_central_difference(eps):
    # ((x+ε)³ − (x−ε)³) / 2ε = 3x² + ε² exactly: the error is ε² at every x. A one-sided
    # difference would be off by 3xε + ε², which depends on x.
    x = np.array([-2.0, -0.5, 0.0, 1.0, 3.0])
    num = numerical_gradient(_sum_of_cubes, x, eps)
    np.testing.assert_allclose(num - 3 * x**2, np.full(x.shape, eps**2), rtol=1e-6, atol=1e-12)


def test_numerical_gradient_leaves_x_alone_and_passes_its_shape():
    x = np.arange(6, dtype=float).reshape(2, 3)
    copy = x.copy()
    seen = []

    def f(t):
        seen.append(t.shape)
        return float(np.sum(t * copy))  # linear: gradient = copy

    np.testing.assert_allclose(numerical_gradient(f, x, 0.5), copy, rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(x, copy)
    assert set(seen) == {(2, 3)} and len(seen) == 2 * x.size
    # integer and float32 inputs are evaluated in float64
    assert numerical_gradient(_sum_of_cubes, np.array([1, 2])).dtype == np.float64
    assert numerical_gradient(_sum_of_cubes, np.array([1.0, 2.0], np.float32)).dtype == np.float64


# --- relative_error -------------------------------------------------------------------------------


def test_relative_error_semantics():
    # max|a − b| / max(max|a|, max|b|)
    assert relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.5])) == pytest.approx(0.5 / 2.5, rel=1e-15)
    assert relative_error(np.array([0.0, -4.0]), np.array([1.0, -4.0])) == pytest.approx(1.0 / 4.0, rel=1e-15)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.zeros(2), np.array([0.0, 1e-300])) == 1.0
    a, b = np.array([3.0, -1.0]), np.array([2.0, 1.0])
    assert relative_error(a, b) == relative_error(b, a) == pytest.approx(2.0 / 3.0, rel=1e-15)
    # scale-free: the same relative error at any magnitude
    assert relative_error(1e-20 * a, 1e-20 * b) == pytest.approx(relative_error(a, b), rel=1e-12)
    assert isinstance(relative_error(a, b), float)
    # the scale is the largest entry, not entry by entry: a small entry's large relative error is tolerated
    assert relative_error(np.array([1e-8, 100.0]), np.array([2e-8, 100.0])) < 1e-9


# --- adjoint_test --------------------------------------------------------------------------------


def test_adjoint_test_accepts_a_matrix_and_its_transpose():
    A = np.random.default_rng(0).standard_normal((5, 7))
    err = adjoint_test(lambda v: A @ v, lambda u: A.T @ u, (7,), (5,))
    assert err < 1e-15


def test_adjoint_test_rejects_a_wrong_transpose():
    A = np.random.default_rng(1).standard_normal((6, 6))
    assert adjoint_test(lambda v: A @ v, lambda u: A @ u, (6,), (6,)) > 1e-2  # A is not symmetric
    assert adjoint_test(lambda v: A @ v, lambda u: 1.01 * (A.T @ u), (6,), (6,)) > 1e-3  # off by 1 %


def test_adjoint_test_catches_conv_backward_without_the_flip():
    rng = np.random.default_rng(2)
    k = rng.standard_normal((3, 2))           # not symmetric under rot180
    image_shape, out_shape = (6, 7), (4, 6)

    def forward(v):                           # single-channel layer: v ⋆ k (valid)
        return correlate2d(v, k, "valid")

    def right(u):                             # its transpose: full convolution, i.e. u ⋆ rot180(k) full
        return convolve2d(u, k, "full")

    def wrong(u):                             # the classic slip: forgetting the flip
        return correlate2d(u, k, "full")

    assert adjoint_test(forward, right, image_shape, out_shape) < 1e-15
    assert adjoint_test(forward, wrong, image_shape, out_shape) > 1e-2
    # the same with the layer functions: conv2d_backward's dx passes, and with the kernel flipped
    # before calling it (a transpose that flips twice) it fails
    w = k[None, None]

    def layer(v):
        return conv2d_forward(v, w)

    def layer_t(u):
        return conv2d_backward(u, np.zeros((1, 1) + image_shape), w)[0]

    def layer_t_unflipped(u):
        return conv2d_backward(u, np.zeros((1, 1) + image_shape), rot180(w))[0]

    shapes = ((1, 1) + image_shape, (1, 1) + out_shape)
    assert adjoint_test(layer, layer_t, *shapes) < 1e-15
    assert adjoint_test(layer, layer_t_unflipped, *shapes) > 1e-2


def test_adjoint_test_is_deterministic_by_default_and_uses_the_given_rng():
    A = np.random.default_rng(3).standard_normal((4, 4))

    def fwd(v):
        return A @ v

    def bad(u):
        return A @ u

    assert adjoint_test(fwd, bad, (4,), (4,)) == adjoint_test(fwd, bad, (4,), (4,))
    assert adjoint_test(fwd, bad, (4,), (4,)) != adjoint_test(fwd, bad, (4,), (4,), rng=np.random.default_rng(99))
