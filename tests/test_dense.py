"""cnnref.dense: the fully connected layer, flatten and unflatten."""

from __future__ import annotations

import numpy as np
import pytest

from cnnref.book import jaxref as jr
from cnnref import conv2d_forward, dense_backward, dense_forward, flatten, unflatten
from cnnref.gradcheck import adjoint_test, numerical_gradient, relative_error
from helpers import RTOL32, assert_close

N, D_IN, D_OUT = 5, 7, 3


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, D_IN)), rng.standard_normal((D_OUT, D_IN)), rng.standard_normal(D_OUT),
            rng.standard_normal((N, D_OUT)))


def test_forward_hand_worked():
    x = np.array([[1.0, 2.0], [0.0, -1.0], [3.0, 1.0]])        # N = 3, D_in = 2
    W = np.array([[1.0, 0.0], [2.0, -1.0], [0.5, 0.5]])        # D_out = 3
    c = np.array([0.0, 10.0, -1.0])
    # y[n, k] = Σ_j W[k, j] x[n, j] + c[k]
    expected = np.array([[1.0, 10.0, 0.5],
                         [0.0, 11.0, -1.5],
                         [3.0, 15.0, 1.0]])
    np.testing.assert_array_equal(dense_forward(x, W, c), expected)
    np.testing.assert_array_equal(dense_forward(x, W), expected - c)


def test_forward_matches_jax_and_explicit_sum():
    x, W, c, _ = _problem()
    y = dense_forward(x, W, c)
    assert_close(y, np.asarray(jr.dense(x, W, c)))
    explicit = np.array([[sum(W[k, j] * x[n, j] for j in range(D_IN)) + c[k] for k in range(D_OUT)]
                         for n in range(N)])
    assert_close(y, explicit)


def test_backward_matches_jax_vjp():
    x, W, c, dy = _problem(1)
    _, dx_ref, dW_ref, dc_ref = jr.dense_vjp(x, W, c, dy)
    dx, dW, dc = dense_backward(dy, x, W)
    assert (dx.shape, dW.shape, dc.shape) == (x.shape, W.shape, c.shape)
    assert_close(dx, dx_ref)
    assert_close(dW, dW_ref)
    assert_close(dc, dc_ref)


# E = Σ dy ⊙ (x Wᵀ + c) is linear in each of x, W, c: central differences are exact up to
# rounding (~1e-16 |E| / ε ≈ 1e-15 here with ε = 0.5); 1e-10 relative leaves a wide margin
# and still fails for any transposed or missing term.
def test_backward_matches_central_differences():
    x, W, c, dy = _problem(2)
    dx, dW, dc = dense_backward(dy, x, W)

    def energy(x_, W_, c_):
        return float(np.sum(dy * dense_forward(x_, W_, c_)))

    assert relative_error(dx, numerical_gradient(lambda t: energy(t, W, c), x, 0.5)) < 1e-10
    assert relative_error(dW, numerical_gradient(lambda t: energy(x, t, c), W, 0.5)) < 1e-10
    assert relative_error(dc, numerical_gradient(lambda t: energy(x, W, t), c, 0.5)) < 1e-10


def test_adjoint_tests():
    # x -> x Wᵀ, W -> x Wᵀ and c -> c broadcast over the batch are linear; dense_backward must
    # return their exact transposes (float64 rounding level, ~1e-16).
    x, W, _, _ = _problem(3)
    zero_x, zero_W = np.zeros_like(x), np.zeros_like(W)
    assert adjoint_test(lambda v: dense_forward(v, W), lambda u: dense_backward(u, zero_x, W)[0],
                        x.shape, (N, D_OUT)) < 1e-13
    assert adjoint_test(lambda v: dense_forward(x, v), lambda u: dense_backward(u, x, zero_W)[1],
                        W.shape, (N, D_OUT)) < 1e-13
    assert adjoint_test(lambda v: dense_forward(zero_x, W, v), lambda u: dense_backward(u, x, W)[2],
                        (D_OUT,), (N, D_OUT)) < 1e-13


def test_jax_reference_dense_is_self_consistent():
    import jax
    from jax.test_util import check_grads

    x, W, c, _ = _problem(4)
    check_grads(jax.jit(jr.dense), (x, W, c), order=1, modes=("fwd", "rev"))


def test_dtypes():
    x, W, c, dy = _problem(5)
    x32, W32, c32, dy32 = (a.astype(np.float32) for a in (x, W, c, dy))
    assert dense_forward(x32, W32, c32).dtype == np.float32
    assert_close(dense_forward(x32, W32, c32), dense_forward(x, W, c), RTOL32)
    for got, expected in zip(dense_backward(dy32, x32, W32), dense_backward(dy, x, W)):
        assert got.dtype == np.float32
        assert_close(got, expected, RTOL32)
    assert all(g.dtype == np.float64 for g in dense_backward(dy, x32, W32))
    ints = np.arange(6).reshape(2, 3)
    assert dense_forward(ints, np.ones((2, 3), dtype=int)).dtype == np.float64
    assert all(g.dtype == np.float64 for g in dense_backward(np.ones((2, 2), dtype=int), ints, np.ones((2, 3), int)))


# --- flatten / unflatten ----------------------------------------------------------------------


def test_flatten_is_c_order_channel_then_row_then_column():
    a = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    f = flatten(a)
    assert f.shape == (2, 12)
    # entry (c, p, q) of example n lands at column c·H·W + p·W + q
    for n in range(2):
        for c in range(3):
            for p in range(2):
                for q in range(2):
                    assert f[n, c * 4 + p * 2 + q] == a[n, c, p, q]
    np.testing.assert_array_equal(f[1], np.arange(12, 24))


def test_unflatten_inverts_flatten_and_is_its_transpose():
    rng = np.random.default_rng(6)
    a = rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_array_equal(unflatten(flatten(a), a.shape), a)
    d = rng.standard_normal((2, 60))
    np.testing.assert_array_equal(flatten(unflatten(d, (2, 3, 4, 5))), d)
    assert adjoint_test(flatten, lambda u: unflatten(u, (2, 3, 4, 5)), (2, 3, 4, 5), (2, 60)) < 1e-15


def test_conv_flatten_dense_chain_matches_jax():
    # A conv layer feeding a dense head through flatten: the gradient w.r.t. the conv output is
    # unflatten(dense dx), checked against jax.vjp of the same composition.
    import jax

    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 2, 2))
    W, c = rng.standard_normal((4, 3 * 4 * 4)), rng.standard_normal(4)
    dy = rng.standard_normal((2, 4))
    z = conv2d_forward(x, w)
    y = dense_forward(flatten(z), W, c)
    dz = unflatten(dense_backward(dy, flatten(z), W)[0], z.shape)

    y_ref, vjp = jax.vjp(lambda z_: jr.dense(z_.reshape(2, -1), W, c), np.asarray(jr.conv2d(x, w)))
    assert_close(y, np.asarray(y_ref))
    assert_close(dz, np.asarray(vjp(dy)[0]))


@pytest.mark.parametrize("bad", [np.zeros((2, 3)), np.zeros((2, 3, 4))])
def test_flatten_needs_4d(bad):
    with pytest.raises(ValueError, match=r"a must be a 4-D array, got \d-D"):
        flatten(bad)


def test_flatten_and_unflatten_return_views():
    """As documented: views of float arrays (writes go through) unless flatten's maps are not in C order."""
    a = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    f = flatten(a)
    assert np.shares_memory(f, a)
    f[1, 0] = -1.0
    assert a[1, 0, 0, 0] == -1.0
    d = unflatten(f, a.shape)
    assert np.shares_memory(d, f) and np.shares_memory(d, a)
    f32 = a.astype(np.float32)
    assert np.shares_memory(flatten(f32), f32)
    assert np.shares_memory(flatten(a[::2]), a)              # strided along N only: still a view
    rows = np.asfortranarray(f)
    assert np.shares_memory(unflatten(rows, a.shape), rows)  # unflatten only splits an axis: always a view
    # copies: integer input (converted to float64), and maps whose axes are not in C order
    ints = np.arange(24).reshape(2, 3, 2, 2)
    assert not np.shares_memory(flatten(ints), ints)
    assert not np.shares_memory(unflatten(ints.reshape(2, 12), ints.shape), ints)
    swapped = np.ascontiguousarray(a.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # the values of a, W before H
    np.testing.assert_array_equal(flatten(swapped), flatten(a))
    assert not np.shares_memory(flatten(swapped), swapped)


@pytest.mark.parametrize("shape, exc, match", [
    ((2, 3.0, 2, 2), TypeError, "shape must be a sequence of ints, got 3.0"),
    ("2322", ValueError, "shape must be a sequence of ints"),
    (None, ValueError, "shape must be a sequence of ints"),
])
def test_unflatten_shape_must_be_a_sequence_of_ints(shape, exc, match):
    with pytest.raises(exc, match=match):
        unflatten(np.ones((2, 12)), shape)
