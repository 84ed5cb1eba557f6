"""cnnref.global_pool: global average pooling against ``jnp.mean`` and its ``jax.vjp`` (jaxref_residual),
against mean pooling with one window the size of the map (cnnref.avgpool2d_*), the loop forms,
central differences, the adjoint identity, a planted wrong backward and bad input."""

from __future__ import annotations

from cnnref.book import jaxref_residual as jrr  # noqa: I001  (first: x64 before jax starts)
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cnnref import avgpool2d_backward, avgpool2d_forward
from cnnref.gradcheck import adjoint_test, numerical_gradient, relative_error
from cnnref.global_pool import (
    global_avgpool2d_backward,
    global_avgpool2d_backward_loop,
    global_avgpool2d_forward,
    global_avgpool2d_forward_loop,
)
from helpers import HYPOTHESIS, HYPOTHESIS_JAX, RTOL32, assert_close

# Comparisons at RTOL64 = 1e-12 of the reference's largest entry (helpers.assert_close): a mean of
# at most a few dozen numbers, summed in another order, differs by a few ulps; the backward is
# one division per entry. A wrong divisor or a missing share is off by O(1).

shapes = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 7), st.integers(1, 7))


def _problem(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), rng.standard_normal(shape[:2])


@settings(HYPOTHESIS_JAX, max_examples=30)
@given(shape=shapes, seed=st.integers(0, 2**16))
@example(shape=(1, 1, 1, 1), seed=0)  # a 1 x 1 map: pooling is the identity
def test_property_matches_jax_and_avgpool_with_a_whole_map_window(shape, seed):
    x, dy = _problem(shape, seed)
    y_ref, dx_ref = jrr.global_avgpool2d_vjp(x, dy)
    y, dx = global_avgpool2d_forward(x), global_avgpool2d_backward(dy, x.shape)
    assert y.shape == shape[:2] and dx.shape == shape
    assert_close(y, y_ref)
    assert_close(dx, dx_ref)
    # one window of size (H, W): mean pooling's output (N, C, 1, 1) and its backward
    window = shape[2:]
    assert_close(y, avgpool2d_forward(x, window).reshape(shape[:2]))
    assert_close(dx, avgpool2d_backward(dy[:, :, None, None], x, window))


@settings(HYPOTHESIS, max_examples=40)
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_property_loop_forms_match_vectorised(shape, seed):
    x, dy = _problem(shape, seed)
    assert_close(global_avgpool2d_forward_loop(x), global_avgpool2d_forward(x))
    assert_close(global_avgpool2d_backward_loop(dy, shape), global_avgpool2d_backward(dy, shape))


def test_hand_worked():
    x = np.arange(12.0).reshape(1, 2, 2, 3)  # maps [[0..2], [3..5]] and [[6..8], [9..11]]
    np.testing.assert_array_equal(global_avgpool2d_forward(x), [[2.5, 8.5]])
    dx = global_avgpool2d_backward(np.array([[6.0, -12.0]]), x.shape)
    np.testing.assert_array_equal(dx, np.stack([np.full((2, 3), 1.0), np.full((2, 3), -2.0)])[None])
    # every map's gradient adds up to its dy: the shares of one output sum to what it received
    np.testing.assert_allclose(dx.sum(axis=(2, 3)), [[6.0, -12.0]], rtol=1e-15)


def test_matches_central_differences():
    # E = Σ dy ⊙ y is linear in x: the central difference is exact up to rounding for any ε; with
    # ε = 0.5 rounding is ~1e-16 |E| / ε, far below the 1e-10 allowed.
    x, dy = _problem((2, 3, 4, 5), seed=1)
    num = numerical_gradient(lambda t: float(np.sum(dy * global_avgpool2d_forward(t))), x, eps=0.5)
    assert relative_error(global_avgpool2d_backward(dy, x.shape), num) < 1e-10


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 4, 5), (3, 2, 7, 1)])
def test_adjoint_identity(shape):
    # global average pooling is linear; its backward must be its exact transpose (~1e-16).
    for backward in (global_avgpool2d_backward, global_avgpool2d_backward_loop):
        err = adjoint_test(global_avgpool2d_forward, lambda u, f=backward: f(u, shape), shape, shape[:2],
                           rng=np.random.default_rng(2))
        assert err < 1e-13


def _copy_to_every_position(dy, x_shape):
    """A wrong backward: dy copied to every position, without the division by H·W."""
    return np.broadcast_to(dy[:, :, None, None], x_shape).copy()


def _divide_by_height(dy, x_shape):
    """A wrong backward: the division by H only."""
    return _copy_to_every_position(dy, x_shape) / x_shape[2]


@pytest.mark.parametrize("wrong", [_copy_to_every_position, _divide_by_height])
def test_planted_wrong_backward_is_caught(wrong):
    x, dy = _problem((2, 3, 4, 5), seed=3)
    ref = jrr.global_avgpool2d_vjp(x, dy)[1]
    assert relative_error(global_avgpool2d_backward(dy, x.shape), ref) < 1e-12
    assert relative_error(wrong(dy, x.shape), ref) > 0.5
    # the adjoint test catches it too, with no reference gradient at all
    err = adjoint_test(global_avgpool2d_forward, lambda u: wrong(u, x.shape), x.shape, x.shape[:2],
                       rng=np.random.default_rng(4))
    assert err > 0.5


def test_float32_is_kept_and_integers_become_float64():
    x, dy = _problem((2, 3, 4, 5), seed=5)
    x32, dy32 = x.astype(np.float32), dy.astype(np.float32)
    for f in (global_avgpool2d_forward, global_avgpool2d_forward_loop):
        assert f(x32).dtype == np.float32
        assert_close(f(x32), f(x32.astype(np.float64)), RTOL32)
        assert f(np.ones((1, 1, 2, 2), dtype=int)).dtype == np.float64
    for f in (global_avgpool2d_backward, global_avgpool2d_backward_loop):
        assert f(dy32, x.shape).dtype == np.float32
        assert_close(f(dy32, x.shape), f(dy32.astype(np.float64), x.shape), RTOL32)
        out = f(np.ones((1, 1), dtype=int), (1, 1, 2, 2))
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, np.full((1, 1, 2, 2), 0.25))  # not integer division


def test_backward_returns_a_fresh_writable_array():
    dy = np.ones((1, 2))
    dx = global_avgpool2d_backward(dy, (1, 2, 3, 3))
    dx[0, 0, 0, 0] = 5.0  # a broadcast view would refuse this, or write to every position
    assert dx[0, 0, 1, 1] == 1 / 9 and dy[0, 0] == 1.0


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize("f", [global_avgpool2d_forward, global_avgpool2d_forward_loop])
@pytest.mark.parametrize("x, exc, match", [
    (np.ones((2, 3, 4)), ValueError, r"^x must be a 4-D array, got 3-D array of shape \(2, 3, 4\)"),
    (np.ones((2, 0, 4, 4)), ValueError, r"^x must not be empty, got shape \(2, 0, 4, 4\)"),
    (np.ones((1, 1, 2, 2), dtype=bool), TypeError, r"^x must be a real numeric array .*got dtype bool"),
    (np.ones((1, 1, 2, 2), dtype=complex), TypeError, r"^x must be a real numeric array"),
])
def test_bad_forward_input(f, x, exc, match):
    with pytest.raises(exc, match=match):
        f(x)


@pytest.mark.parametrize("f", [global_avgpool2d_backward, global_avgpool2d_backward_loop])
@pytest.mark.parametrize("dy, x_shape, exc, match", [
    (np.ones((2, 3)), (2, 4, 5, 5), ValueError,
     r"^dy must have shape \(2, 4\) \(\(N, C\) of the forward input's shape \(2, 4, 5, 5\)\), got \(2, 3\)"),
    (np.ones((2, 3, 1, 1)), (2, 3, 5, 5), ValueError, r"^dy must be a 2-D array, got 4-D"),
    (np.ones((2, 3)), (2, 3, 5), ValueError, r"^x_shape must be a sequence of 4 ints \(the forward input's"),
    (np.ones((2, 3)), np.zeros((2, 3, 5, 5)), ValueError, r"^x_shape must be a sequence of 4 ints"),
    (np.ones((2, 3)), (2, 3, 0, 5), ValueError, r"^x_shape must have entries >= 1, got \(2, 3, 0, 5\)"),
    (np.ones((2, 3)), (2, 3, 5.0, 5), TypeError, r"^x_shape must be a sequence of 4 ints"),
    (np.ones((2, 3), dtype=bool), (2, 3, 5, 5), TypeError, r"^dy must be a real numeric array"),
])
def test_bad_backward_input(f, dy, x_shape, exc, match):
    with pytest.raises(exc, match=match):
        f(dy, x_shape)
