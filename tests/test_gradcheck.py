"""cnnref.gradcheck: the checking tools themselves must be able to tell right from wrong."""

from __future__ import annotations

import numpy as np
import pytest

from cnnref import (avgpool2d_backward, avgpool2d_forward, conv2d_backward, conv2d_forward, convolve2d, correlate2d,
                    rot180)
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
    # off by 1 %: |a − 1.01 a| / (1.01 |a|) = 0.01 / 1.01, up to rounding
    off = adjoint_test(lambda v: A @ v, lambda u: 1.01 * (A.T @ u), (6,), (6,))
    assert off == pytest.approx(0.01 / 1.01, rel=1e-12)


def test_adjoint_test_semantics_on_a_hand_made_pair():
    """|a − b| / max(|a|, |b|), a = ⟨u, Jv⟩, b = ⟨Jᵀu, v⟩, u and v drawn from the rng in the documented order."""
    A = np.random.default_rng(4).standard_normal((3, 5))
    rng = np.random.default_rng(11)
    v, u = rng.standard_normal(5), rng.standard_normal(3)
    a, b = u @ (A @ v), (-0.5 * A.T @ u) @ v
    got = adjoint_test(lambda t: A @ t, lambda t: -0.5 * A.T @ t, (5,), (3,), rng=np.random.default_rng(11))
    assert got == pytest.approx(abs(a - b) / max(abs(a), abs(b)), rel=1e-14)
    assert got == pytest.approx(1.5, rel=1e-14)  # b = −a/2: |a + a/2| / |a|
    assert adjoint_test(lambda t: -(A @ t), lambda t: A.T @ t, (5,), (3,)) == pytest.approx(2.0, rel=1e-14)  # sign
    # both sides exactly zero: the zero map and its (zero) transpose agree
    assert adjoint_test(lambda t: np.zeros(3), lambda t: np.zeros(5), (5,), (3,)) == 0.0


# Layers at small and large sizes: (x shape, w shape, settings) for conv, (x shape, size, stride) for pooling.
CONV_SIZES = [((1, 1, 4, 5), (1, 1, 2, 2), {}), ((2, 3, 9, 8), (4, 3, 3, 2), dict(stride=2, padding=1)),
              ((2, 4, 40, 40), (6, 4, 3, 3), dict(padding=1, dilation=2)), ((4, 8, 64, 64), (8, 8, 3, 3), {})]
POOL_SIZES = [((1, 1, 2, 2), 2, 2), ((2, 3, 9, 8), 3, 2), ((4, 8, 64, 64), 2, 2), ((8, 16, 64, 64), 3, 1)]


def _conv_pair(x_shape, w_shape, settings, scale=1.0, zero=False):
    w = np.random.default_rng(12).standard_normal(w_shape)
    out = conv2d_forward(np.zeros(x_shape), w, **settings).shape

    def transpose(u):
        dx = conv2d_backward(u, np.zeros(x_shape), w, **settings)[0]
        return np.zeros_like(dx) if zero else scale * dx

    return (lambda v: conv2d_forward(v, w, **settings)), transpose, x_shape, out


def _pool_pair(x_shape, size, stride, scale=1.0, zero=False):
    out = avgpool2d_forward(np.zeros(x_shape), size, stride).shape

    def transpose(u):
        dx = avgpool2d_backward(u, np.zeros(x_shape), size, stride)
        return np.zeros_like(dx) if zero else scale * dx

    return (lambda v: avgpool2d_forward(v, size, stride)), transpose, x_shape, out


PAIRS = ([pytest.param(_conv_pair, c, id=f"conv-{np.prod(c[0])}") for c in CONV_SIZES]
         + [pytest.param(_pool_pair, c, id=f"avgpool-{np.prod(c[0])}") for c in POOL_SIZES])


@pytest.mark.parametrize("make, case", PAIRS)
def test_adjoint_test_scores_at_rounding_level_for_correct_transposes_at_every_size(make, case):
    assert adjoint_test(*make(*case)) < 1e-12


@pytest.mark.parametrize("make, case", PAIRS)
def test_adjoint_test_scores_a_zero_transpose_1_at_every_size(make, case):
    """A transpose that returns zeros scores exactly 1, from 4 to 131,072 inputs: the score does not
    shrink as the arrays grow (a scale of ‖u‖‖Jv‖ gave 1e-3 to 1e-1 here)."""
    assert adjoint_test(*make(*case, zero=True)) == 1.0


@pytest.mark.parametrize("make, case", PAIRS)
@pytest.mark.parametrize("scale", [2.0, 0.5])
def test_adjoint_test_catches_a_transpose_off_by_a_factor_2(make, case, scale):
    assert adjoint_test(*make(*case, scale=scale)) == pytest.approx(0.5, rel=1e-12)


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


@pytest.mark.parametrize("kw, exc, match", [
    (dict(forward="A"), TypeError, "forward must be a callable"),
    (dict(transpose=None), TypeError, "transpose must be a callable"),
    (dict(in_shape=3), ValueError, r"in_shape must be a sequence of ints, got 3"),
    (dict(in_shape=(3.0,)), TypeError, r"in_shape must be a sequence of ints, got 3.0"),
    (dict(out_shape=(0,)), ValueError, r"out_shape must have entries >= 1, got \(0,\)"),
    (dict(rng=0), TypeError, "rng must be a numpy Generator"),
    (dict(forward=lambda v: (A_BAD @ v).astype(complex)), TypeError, r"forward\(v\) must be a real numeric array"),
])
def test_adjoint_test_rejects_bad_arguments(kw, exc, match):
    args = dict(forward=lambda v: A_BAD @ v, transpose=lambda u: A_BAD.T @ u, in_shape=(3,), out_shape=(2,)) | kw
    with pytest.raises(exc, match=match):
        adjoint_test(**args)


A_BAD = np.ones((2, 3))


@pytest.mark.parametrize("f, exc, match", [
    ("sum", TypeError, "f must be a callable"),
    (lambda t: t, TypeError, r"f must return a real scalar, got ndarray of shape \(3,\)"),
    (lambda t: np.sum(t) + 0j, TypeError, "f must return a real scalar"),
])
def test_numerical_gradient_rejects_a_bad_function(f, exc, match):
    with pytest.raises(exc, match=match):
        numerical_gradient(f, np.ones(3))
