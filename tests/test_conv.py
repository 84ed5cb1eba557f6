"""cnnref.conv: the convolutional layer forward and backward.

Checked against ``jax.lax.conv_general_dilated`` and ``jax.vjp`` of it, against
the loop forms, against per-channel scipy correlations, against central
differences, and by the adjoint (dot-product) test for the two linear maps
x -> z and w -> z.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cnnref.book import jaxref as jr
from cnnref import (
    col2im,
    conv2d_backward,
    conv2d_backward_loop,
    conv2d_forward,
    conv2d_forward_loop,
    correlate2d,
    im2col,
    output_size,
)
from cnnref.gradcheck import adjoint_test
from helpers import HYPOTHESIS, HYPOTHESIS_JAX, RTOL32, RTOL64, as_pair, assert_close, assert_layer_gradients_match_central_differences, conv_configs, conv_read_mask, stride_remainder

# Settings as ints and as (h, w) pairs. x is (2, 3, 7, 8), w is (4, 3, 3, 2): non-square
# everywhere. The comment gives (H + 2P - d(K-1) - 1) mod s per axis; a non-zero
# value means the stride leaves rows/columns that are never read.
SETTINGS = [
    pytest.param(dict(stride=1, padding=0, dilation=1), id="plain"),
    pytest.param(dict(stride=2, padding=0, dilation=1), id="stride2"),             # 4 mod 2 = 0, 6 mod 2 = 0
    pytest.param(dict(stride=3, padding=0, dilation=1), id="stride3-remainder"),   # 4 mod 3 = 1, 6 mod 3 = 0
    pytest.param(dict(stride=1, padding=1, dilation=1), id="pad1"),
    pytest.param(dict(stride=1, padding=0, dilation=2), id="dil2"),
    pytest.param(dict(stride=2, padding=1, dilation=1), id="stride2-pad1"),
    pytest.param(dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2)), id="pairs-a"),
    pytest.param(dict(stride=(1, 3), padding=(0, 2), dilation=(2, 1)), id="pairs-b-remainder"),
    pytest.param(dict(stride=3, padding=2, dilation=2), id="all-remainder"),      # 6 mod 3 = 0, 9 mod 3 = 0
    pytest.param(dict(stride=(3, 2), padding=(2, 1), dilation=(1, 3)), id="pairs-c-remainder"),
]
X_SHAPE, W_SHAPE = (2, 3, 7, 8), (4, 3, 3, 2)


def _out_shape(x_shape, w_shape, stride=1, padding=0, dilation=1):
    (sh, sw), (ph, pw), (dh, dw) = as_pair(stride), as_pair(padding), as_pair(dilation)
    return (x_shape[0], w_shape[0],
            output_size(x_shape[2], w_shape[2], sh, ph, dh), output_size(x_shape[3], w_shape[3], sw, pw, dw))


def _problem(x_shape=X_SHAPE, w_shape=W_SHAPE, seed=0, **settings):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    dz = rng.standard_normal(_out_shape(x_shape, w_shape, **settings))
    return x, w, b, dz


# --- forward ----------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", SETTINGS)
def test_forward_matches_jax(settings):
    x, w, b, dz = _problem(**settings)
    # the primal output of the jitted jax forward (the same compiled kernel serves the backward test)
    expected = jr.conv2d_vjp(x, w, b, dz, **settings)[0]
    z = conv2d_forward(x, w, b, **settings)
    assert z.shape == _out_shape(X_SHAPE, W_SHAPE, **settings)
    assert_close(z, expected)


def test_forward_without_bias_is_forward_with_zero_bias():
    x, w, b, _ = _problem(stride=2, padding=1)
    z0 = conv2d_forward(x, w, stride=2, padding=1)
    np.testing.assert_array_equal(z0, conv2d_forward(x, w, np.zeros(4), stride=2, padding=1))
    # the bias is added once per output map, at every position
    np.testing.assert_allclose(conv2d_forward(x, w, b, stride=2, padding=1) - z0,
                               np.broadcast_to(b[None, :, None, None], z0.shape), rtol=0, atol=1e-14)


def test_forward_hand_worked_stride_and_padding():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)   # [[1 2 3] [4 5 6] [7 8 9]]
    w = np.ones((1, 1, 2, 2))
    # zero-padded to 5x5, windows start at rows/cols 0 and 2 of the padded map:
    # z[0,0] = x[0,0] = 1, z[0,1] = x[0,1]+x[0,2] = 5, z[1,0] = x[1,0]+x[2,0] = 11, z[1,1] = 5+6+8+9 = 28
    expected = np.array([[[[1.0, 5.0], [11.0, 28.0]]]])
    np.testing.assert_array_equal(conv2d_forward(x, w, stride=2, padding=1), expected)
    np.testing.assert_array_equal(conv2d_forward_loop(x, w, stride=2, padding=1), expected)


def test_forward_hand_worked_dilation_and_bias():
    x = np.arange(16.0).reshape(1, 1, 4, 4)        # x[p, q] = 4p + q
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    # dilation 2: z[i,j] = x[i,j] + 2 x[i,j+2] + 3 x[i+2,j] + 4 x[i+2,j+2] (+ b)
    # z[0,0] = 0 + 4 + 24 + 40 = 68, z[0,1] = 1 + 6 + 27 + 44 = 78, z[1,0] = 108, z[1,1] = 118
    expected = np.array([[[[68.0, 78.0], [108.0, 118.0]]]]) - 0.5
    np.testing.assert_array_equal(conv2d_forward(x, w, np.array([-0.5]), dilation=2), expected)
    np.testing.assert_array_equal(conv2d_forward_loop(x, w, np.array([-0.5]), dilation=2), expected)


def test_forward_is_a_sum_of_scipy_correlations_over_channels():
    # [eq-layer-forward] with s = 1, P = 0, d = 1: z[n, o] = b[o] + Σ_c x[n, c] ⋆ w[o, c] (valid).
    x, w, b, _ = _problem()
    z = conv2d_forward(x, w, b)
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            expected = b[o] + sum(scipy.signal.correlate2d(x[n, c], w[o, c], "valid") for c in range(x.shape[1]))
            assert_close(z[n, o], expected)
            # the same with cnnref's own single-channel correlation
            assert_close(z[n, o], b[o] + sum(correlate2d(x[n, c], w[o, c]) for c in range(x.shape[1])))


@pytest.mark.parametrize("settings", SETTINGS)
def test_forward_loop_matches_vectorised(settings):
    x, w, b, _ = _problem(x_shape=(2, 2, 7, 8), w_shape=(3, 2, 3, 2), seed=1, **settings)
    assert_close(conv2d_forward_loop(x, w, b, **settings), conv2d_forward(x, w, b, **settings))
    assert_close(conv2d_forward_loop(x, w, **settings), conv2d_forward(x, w, **settings))


# --- backward ---------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", SETTINGS)
def test_backward_matches_jax_vjp(settings):
    x, w, b, dz = _problem(**settings)
    _, dx_ref, dw_ref, db_ref = jr.conv2d_vjp(x, w, b, dz, **settings)
    dx, dw, db = conv2d_backward(dz, x, w, **settings)
    assert (dx.shape, dw.shape, db.shape) == (x.shape, w.shape, b.shape)
    assert_close(dx, dx_ref)
    assert_close(dw, dw_ref)
    assert_close(db, db_ref)


@pytest.mark.parametrize("settings", SETTINGS)
def test_backward_loop_matches_vectorised(settings):
    x, w, _, dz = _problem(x_shape=(2, 2, 7, 8), w_shape=(3, 2, 3, 2), seed=2, **settings)
    for got, expected in zip(conv2d_backward_loop(dz, x, w, **settings), conv2d_backward(dz, x, w, **settings)):
        assert got.shape == expected.shape
        assert_close(got, expected)


def test_backward_stride1_is_full_convolution_and_valid_correlation():
    # The book's closed forms for s = 1, P = 0, d = 1 (checked with scipy, not with cnnref):
    #   dx[n, c] = Σ_o dz[n, o] ∗ w[o, c]  (full convolution)   [eq-input-grad]
    #   dw[o, c] = Σ_n x[n, c] ⋆ dz[n, o]  (valid correlation)  [eq-weight-grad]
    x, w, _, dz = _problem(seed=3)
    dx, dw, db = conv2d_backward(dz, x, w)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            expected = sum(scipy.signal.convolve2d(dz[n, o], w[o, c], "full") for o in range(w.shape[0]))
            assert_close(dx[n, c], expected)
    for o in range(w.shape[0]):
        for c in range(x.shape[1]):
            expected = sum(scipy.signal.correlate2d(x[n, c], dz[n, o], "valid") for n in range(x.shape[0]))
            assert_close(dw[o, c], expected)
    assert_close(db, dz.sum(axis=(0, 2, 3)))


# E(x, w, b) = Σ G ⊙ z(x, w, b) is linear in each of x, w, b separately, so the central
# difference (E(θ + ε e_k) − E(θ − ε e_k)) / 2ε is exact up to rounding for any ε. With
# ε = 0.5 the rounding error is about 1e-16 · |E| / ε ≈ 1e-14 for these sizes (|E| ≈ 10–50),
# i.e. ~1e-14 relative to gradients of size ~1–10. We allow 1e-10 relative: 4 orders above
# rounding, and any wrong index or missing term changes an entry by O(1).
CENTRAL_EPS = 0.5
CENTRAL_RTOL = 1e-10


@pytest.mark.parametrize("settings", [SETTINGS[0], SETTINGS[5], SETTINGS[6], SETTINGS[9]])
def test_backward_matches_central_differences(settings):
    x, w, b, dz = _problem(x_shape=(2, 2, 6, 7), w_shape=(3, 2, 3, 2), seed=4, **settings)
    assert_layer_gradients_match_central_differences(
        conv2d_forward, conv2d_backward, dz, x, w, b, CENTRAL_EPS, CENTRAL_RTOL, **settings
    )


# In float64 a correct (map, transpose) pair gives <u, J v> = <Jᵀ u, v> up to rounding, ~1e-16
# relative; 1e-13 leaves room for the summation order and fails for any wrong transpose
# (see tests/test_gradcheck.py for a wrong one scoring ~0.1).
ADJOINT_TOL = 1e-13


@pytest.mark.parametrize("settings", SETTINGS)
def test_adjoint_wrt_x(settings):
    _, w, _, _ = _problem(**settings)
    out = _out_shape(X_SHAPE, W_SHAPE, **settings)
    err = adjoint_test(lambda v: conv2d_forward(v, w, **settings),
                       lambda u: conv2d_backward(u, np.zeros(X_SHAPE), w, **settings)[0],
                       X_SHAPE, out, rng=np.random.default_rng(10))
    assert err < ADJOINT_TOL


@pytest.mark.parametrize("settings", SETTINGS)
def test_adjoint_wrt_w(settings):
    x, _, _, _ = _problem(**settings)
    out = _out_shape(X_SHAPE, W_SHAPE, **settings)
    err = adjoint_test(lambda v: conv2d_forward(x, v, **settings),
                       lambda u: conv2d_backward(u, x, np.zeros(W_SHAPE), **settings)[1],
                       W_SHAPE, out, rng=np.random.default_rng(11))
    assert err < ADJOINT_TOL


def test_adjoint_wrt_b():
    x, w, _, _ = _problem()
    out = _out_shape(X_SHAPE, W_SHAPE)
    zero = np.zeros(X_SHAPE)
    err = adjoint_test(lambda v: conv2d_forward(zero, w, v), lambda u: conv2d_backward(u, x, w)[2],
                       (W_SHAPE[0],), out, rng=np.random.default_rng(12))
    assert err < ADJOINT_TOL


# --- unread input and non-finite values -------------------------------------------------------


@pytest.mark.parametrize(
    "x_shape, w_shape, settings, unread_rows, unread_cols",
    [
        # H = 8, K = 3, s = 2: windows start at rows 0, 2, 4 -> row 7 never read.
        # W = 7, K = 2, s = 3: windows at cols 0-1 and 3-4 -> cols 2, 5, 6 never read.
        ((1, 2, 8, 7), (2, 2, 3, 2), dict(stride=(2, 3)), [7], [2, 5, 6]),
        # padding 1: padded H = 10, K = 2, s = 4: windows at padded rows 0-1, 4-5, 8-9, i.e.
        # input rows {-1, 0}, {3, 4}, {7, 8}: input rows 1, 2, 5, 6 are never read.
        ((1, 1, 8, 5), (1, 1, 2, 1), dict(stride=(4, 1), padding=(1, 0)), [1, 2, 5, 6], []),
        # dilation 2, K = 2, s = 3, H = 6: windows read rows {0, 2}, {3, 5} -> rows 1, 4 never read.
        ((2, 1, 6, 6), (1, 1, 2, 2), dict(stride=3, dilation=2), [1, 4], [1, 4]),
    ],
)
def test_unread_input_gets_exactly_zero_gradient(x_shape, w_shape, settings, unread_rows, unread_cols):
    x, w, _, dz = _problem(x_shape=x_shape, w_shape=w_shape, seed=5, **settings)
    mask = conv_read_mask(x_shape[2], x_shape[3], w_shape[2:], *(as_pair(settings.get(k, d)) for k, d in
                                                                  (("stride", 1), ("padding", 0), ("dilation", 1))))
    # the hand-listed rows/cols are exactly the unread ones
    assert sorted(np.flatnonzero(~mask.any(axis=1))) == unread_rows
    assert sorted(np.flatnonzero(~mask.any(axis=0))) == unread_cols
    for dx in (conv2d_backward(dz, x, w, **settings)[0], conv2d_backward_loop(dz, x, w, **settings)[0]):
        assert np.all(dx[:, :, ~mask] == 0.0)  # exact zeros, not merely small
        assert np.all(dx[:, :, mask] != 0.0)   # random data: every read pixel gets a non-zero gradient
    # jax agrees that they are unread
    assert np.all(jr.conv2d_vjp(x, w, np.zeros(w_shape[0]), dz, **settings)[1][:, :, ~mask] == 0.0)


@pytest.mark.parametrize("settings", [dict(), dict(stride=2, padding=1), dict(dilation=2, padding=(0, 1))])
def test_nan_and_inf_propagate_through_forward(settings):
    x, w, b, _ = _problem(x_shape=(1, 2, 6, 6), w_shape=(2, 2, 2, 2), seed=6, **settings)
    w = np.abs(w) + 0.1  # positive weights: +inf stays +inf (no inf - inf)
    x[0, 0, 2, 3] = np.nan
    x[0, 1, 4, 1] = np.inf
    z = conv2d_forward(x, w, b, **settings)  # no error, no warning needed
    stride, padding, dilation = (as_pair(settings.get(k, d)) for k, d in
                                 (("stride", 1), ("padding", 0), ("dilation", 1)))

    def reads(p, q):
        """Boolean (H', W'): which outputs read input pixel (p, q)."""
        ho, wo = z.shape[2:]
        hit = np.zeros((ho, wo), dtype=bool)
        for i in range(ho):
            for j in range(wo):
                rows = {stride[0] * i + dilation[0] * u - padding[0] for u in range(2)}
                cols = {stride[1] * j + dilation[1] * v - padding[1] for v in range(2)}
                hit[i, j] = p in rows and q in cols
        return hit

    nan_at, inf_at = reads(2, 3), reads(4, 1)
    assert nan_at.any() and inf_at.any()
    for o in range(2):
        assert np.array_equal(np.isnan(z[0, o]), nan_at)
        assert np.all(z[0, o][inf_at & ~nan_at] == np.inf)
        assert np.all(np.isfinite(z[0, o][~nan_at & ~inf_at]))
    loop = conv2d_forward_loop(x, w, b, **settings)
    assert np.array_equal(np.isnan(loop), np.isnan(z)) and np.array_equal(np.isinf(loop), np.isinf(z))



@pytest.mark.parametrize("settings", [dict(padding=1), dict(stride=2, padding=1, dilation=2), dict(stride=(1, 3))])
def test_non_finite_weights_give_the_loop_forms_gradients(settings):
    # The vectorised col2im computes w·0 in positions it later adds as zeros; with an inf or nan
    # weight those must not turn into nan where the sums themselves stay finite.
    x, w, _, dz = _problem(x_shape=(2, 2, 7, 8), w_shape=(3, 2, 3, 2), seed=12, **settings)
    w[1, 0, 2, 1] = np.inf
    w[2, 1, 0, 0] = np.nan
    with np.errstate(invalid="ignore"):  # inf - inf = nan in the sums
        expected = conv2d_backward_loop(dz, x, w, **settings)
        assert np.isfinite(expected[0]).any() and not np.isfinite(expected[0]).all()  # dx: some entries of each
        for got, exp in zip(conv2d_backward(dz, x, w, **settings), expected):
            assert_close(got, exp)  # the same non-finite entries, the finite ones close
    # and a finite call afterwards is unaffected
    w_ok = np.nan_to_num(w, nan=0.5, posinf=2.0)
    for got, expected in zip(conv2d_backward(dz, x, w_ok, **settings), conv2d_backward_loop(dz, x, w_ok, **settings)):
        assert_close(got, expected)


@pytest.mark.parametrize("settings", [dict(padding=1), dict(stride=2, padding=1, dilation=2), dict(stride=(1, 3))])
def test_non_finite_inputs_give_the_loop_forms_weight_gradient(settings):
    # The vectorised products also multiply x by dz = 0 in positions that are not outputs; with an
    # inf or nan in x that is nan, so conv2d_backward must not let it into dw.
    # Corner pixels: read by some taps only (or, with stride 2 and padding 1, by none).
    x, w, _, dz = _problem(x_shape=(2, 2, 7, 8), w_shape=(3, 2, 3, 2), seed=13, **settings)
    x[0, 0, 0, 0] = np.inf
    x[1, 1, 0, 1] = np.nan
    with np.errstate(invalid="ignore"):
        expected = conv2d_backward_loop(dz, x, w, **settings)
        for got, exp in zip(conv2d_backward(dz, x, w, **settings), expected):
            assert_close(got, exp)
    assert np.isfinite(expected[1]).any()  # dw: finite entries stay finite

# --- dtypes and inputs ------------------------------------------------------------------------


def test_float32_is_kept_and_close_to_float64():
    x, w, b, dz = _problem(stride=2, padding=1)
    args = dict(stride=2, padding=1)
    x32, w32, b32, dz32 = (a.astype(np.float32) for a in (x, w, b, dz))
    z32 = conv2d_forward(x32, w32, b32, **args)
    assert z32.dtype == np.float32
    assert_close(z32, conv2d_forward(x, w, b, **args), RTOL32)
    assert conv2d_forward(x32, w32, **args).dtype == np.float32
    for got, expected in zip(conv2d_backward(dz32, x32, w32, **args), conv2d_backward(dz, x, w, **args)):
        assert got.dtype == np.float32
        assert_close(got, expected, RTOL32)
    for got in conv2d_backward_loop(dz32, x32, w32, **args):
        assert got.dtype == np.float32
    assert conv2d_forward_loop(x32, w32, b32, **args).dtype == np.float32
    # any float64 operand makes the computation float64
    assert conv2d_forward(x32, w, **args).dtype == np.float64
    assert conv2d_forward(x32, w32, b, **args).dtype == np.float64
    assert all(g.dtype == np.float64 for g in conv2d_backward(dz, x32, w32, **args))


def test_integer_inputs_are_promoted_to_float64():
    x = np.arange(2 * 9).reshape(1, 2, 3, 3)
    w = np.ones((1, 2, 2, 2), dtype=np.int32)
    b = np.array([1])
    z = conv2d_forward(x, w, b)
    assert z.dtype == np.float64
    np.testing.assert_array_equal(z, conv2d_forward(x.astype(float), w.astype(float), b.astype(float)))
    assert conv2d_forward_loop(x, w, b).dtype == np.float64
    dz = np.ones((1, 1, 2, 2), dtype=np.int64)
    for g in conv2d_backward(dz, x, w) + conv2d_backward_loop(dz, x, w):
        assert g.dtype == np.float64


def test_inputs_are_not_modified():
    x, w, b, dz = _problem(stride=2, padding=1)
    copies = [a.copy() for a in (x, w, b, dz)]
    conv2d_forward(x, w, b, stride=2, padding=1)
    conv2d_backward(dz, x, w, stride=2, padding=1)
    for a, c in zip((x, w, b, dz), copies):
        np.testing.assert_array_equal(a, c)


# --- large batches, repeated and concurrent calls -----------------------------------------------


@pytest.mark.parametrize("dtype, rtol", [(np.float64, RTOL64), (np.float32, RTOL32)], ids=["float64", "float32"])
def test_batch_larger_than_one_work_chunk_matches_jax(dtype, rtol, monkeypatch):
    # The vectorised forms process the batch in pieces of about CHUNK_BYTES of im2col.
    # 13 examples of 3x30x30 with 3x3 kernels need 194 kB (float64) or 97 kB (float32) of im2col
    # each; with the chunk pinned at 450 kB the batch is split into pieces of 2 (float64) or 4
    # (float32) examples with a partial last piece, which the tiny inputs of the other tests never are.
    # Every example must still get its own numbers.
    import cnnref._workspace
    monkeypatch.setattr(cnnref._workspace, "CHUNK_BYTES", 450_000)
    pieces = cnnref._workspace.Workspace().batches(13, 27 * 900 * np.dtype(dtype).itemsize)
    assert len(pieces) > 1 and pieces[-1].stop - pieces[-1].start < pieces[0].stop - pieces[0].start
    settings = dict(stride=1, padding=1, dilation=1)
    x, w, b, dz = _problem(x_shape=(13, 3, 30, 30), w_shape=(4, 3, 3, 3), seed=8, **settings)
    z_ref, dx_ref, dw_ref, db_ref = jr.conv2d_vjp(x, w, b, dz, **settings)
    x_, w_, b_, dz_ = (a.astype(dtype) for a in (x, w, b, dz))
    z = conv2d_forward(x_, w_, b_, **settings)
    dx, dw, db = conv2d_backward(dz_, x_, w_, **settings)
    for got, ref in ((z, z_ref), (dx, dx_ref), (dw, dw_ref), (db, db_ref)):
        assert got.dtype == dtype
        assert_close(got, ref, rtol)
    # each example on its own gives the same z and dx rows (no mixing across the batch)
    for n in (0, 6, 12):
        assert_close(conv2d_forward(x_[n : n + 1], w_, b_, **settings), z[n : n + 1], rtol)
        assert_close(conv2d_backward(dz_[n : n + 1], x_[n : n + 1], w_, **settings)[0], dx[n : n + 1], rtol)


@pytest.mark.parametrize("n", [1, 2])
def test_results_are_fresh_arrays_not_overwritten_by_later_calls(n):
    # Internal temporaries may be reused between calls; returned arrays must not be.
    settings = dict(stride=2, padding=1)
    x, w, b, dz = _problem(x_shape=(n,) + X_SHAPE[1:], seed=9, **settings)
    z = conv2d_forward(x, w, b, **settings)
    grads = conv2d_backward(dz, x, w, **settings)
    saved = [a.copy() for a in (z, *grads)]
    # later calls: same shapes with other data, other shapes, other dtypes, no padding
    x2, w2, b2, dz2 = _problem(x_shape=(n,) + X_SHAPE[1:], seed=10, **settings)
    conv2d_forward(x2, w2, b2, **settings)
    conv2d_backward(dz2, x2, w2, **settings)
    x3, w3, b3, dz3 = _problem(x_shape=(n, 3, 9, 11), seed=11)
    conv2d_forward(x3.astype(np.float32), w3.astype(np.float32))
    conv2d_backward(dz3, x3, w3)
    for a, c in zip((z, *grads), saved):
        np.testing.assert_array_equal(a, c)
    # and writing into a result does not leak into the next call
    z[...] = 0.0
    grads[0][...] = 0.0
    assert_close(conv2d_forward(x, w, b, **settings), saved[0])
    assert_close(conv2d_backward(dz, x, w, **settings)[0], saved[1])


def test_concurrent_calls_from_threads_give_the_sequential_results():
    from concurrent.futures import ThreadPoolExecutor

    jobs = []
    for seed, x_shape in enumerate([(4, 3, 12, 10), (2, 3, 7, 8), (6, 3, 15, 9), (1, 3, 5, 5)] * 2):
        settings = [dict(), dict(stride=2, padding=1), dict(dilation=2, padding=(1, 0))][seed % 3]
        jobs.append((settings, _problem(x_shape=x_shape, seed=20 + seed, **settings)))

    def run(job):
        settings, (x, w, b, dz) = job
        return (conv2d_forward(x, w, b, **settings), *conv2d_backward(dz, x, w, **settings))

    sequential = [run(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(run, jobs * 3))
    # a race on shared temporaries would give O(1) errors; summation order cannot change here,
    # but compare at rounding level rather than bit for bit so BLAS threading cannot matter
    for i, result in enumerate(concurrent):
        for got, expected in zip(result, sequential[i % len(jobs)]):
            assert_close(got, expected)


# --- property tests against jax ---------------------------------------------------------------


@HYPOTHESIS_JAX
@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
# Explicit non-divisible cases: (H + 2P - d(K-1) - 1) mod s != 0 on both axes.
@example(cfg=dict(x_shape=(1, 1, 8, 7), w_shape=(1, 1, 3, 2), stride=(2, 3), padding=0, dilation=1), seed=0)
@example(cfg=dict(x_shape=(2, 3, 6, 9), w_shape=(2, 3, 2, 3), stride=(3, 4), padding=(1, 0), dilation=(2, 1)),
         seed=1)
@example(cfg=dict(x_shape=(1, 2, 5, 4), w_shape=(3, 2, 1, 2), stride=3, padding=(0, 2), dilation=(1, 2)), seed=2)
def test_property_forward_and_gradients_match_jax(cfg, seed):
    settings = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"])
    x, w, b, dz = _problem(cfg["x_shape"], cfg["w_shape"], seed=seed, **settings)
    z_ref, dx_ref, dw_ref, db_ref = jr.conv2d_vjp(x, w, b, dz, **settings)
    z = conv2d_forward(x, w, b, **settings)
    dx, dw, db = conv2d_backward(dz, x, w, **settings)
    assert_close(z, z_ref)
    assert_close(dx, dx_ref)
    assert_close(dw, dw_ref)
    assert_close(db, db_ref)
    mask = conv_read_mask(*cfg["x_shape"][2:], cfg["w_shape"][2:], *(as_pair(settings[k]) for k in
                                                                     ("stride", "padding", "dilation")))
    assert np.all(dx[:, :, ~mask] == 0.0)


@settings(HYPOTHESIS, max_examples=60)
@given(cfg=conv_configs(max_extra=3), seed=st.integers(0, 2**16))
@example(cfg=dict(x_shape=(1, 1, 8, 7), w_shape=(1, 1, 3, 2), stride=(2, 3), padding=0, dilation=1), seed=0)
def test_property_loop_forms_match_vectorised(cfg, seed):
    settings = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"])
    x, w, b, dz = _problem(cfg["x_shape"], cfg["w_shape"], seed=seed, **settings)
    assert_close(conv2d_forward_loop(x, w, b, **settings), conv2d_forward(x, w, b, **settings))
    for got, expected in zip(conv2d_backward_loop(dz, x, w, **settings), conv2d_backward(dz, x, w, **settings)):
        assert_close(got, expected)


def test_property_examples_include_non_divisible_remainders():
    # The strategy must produce the interesting case, not only divisible sizes.
    from hypothesis import find

    found = find(conv_configs(), lambda cfg: stride_remainder(cfg) != 0, settings=HYPOTHESIS)
    assert stride_remainder(found) != 0


# --- im2col and col2im: the layer as matrix products (book: "The matrix view") ----------------


def _window_settings(cfg):
    return {k: cfg[k] for k in ("stride", "padding", "dilation")}


@settings(HYPOTHESIS, max_examples=30)
@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
def test_im2col_times_kernel_matrix_is_the_forward(cfg, seed):
    x, w, b, _ = _problem(x_shape=cfg["x_shape"], w_shape=cfg["w_shape"], seed=seed, **_window_settings(cfg))
    kw = _window_settings(cfg)
    cols = im2col(x, cfg["w_shape"][2:], **kw)
    n, c_out = x.shape[0], w.shape[0]
    z = conv2d_forward(x, w, b, **kw)
    assert cols.shape == (n, w[0].size, z.shape[2] * z.shape[3])
    z_mat = w.reshape(c_out, -1) @ cols + b[:, None]  # [eq-mv-forward]
    assert_close(z_mat.reshape(z.shape), z)


@settings(HYPOTHESIS, max_examples=30)
@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
def test_backward_is_two_transposed_products(cfg, seed):
    kw = _window_settings(cfg)
    x, w, _, dz = _problem(x_shape=cfg["x_shape"], w_shape=cfg["w_shape"], seed=seed, **kw)
    n, c_out = x.shape[0], w.shape[0]
    cols = im2col(x, w.shape[2:], **kw)
    w_mat, dz_mat = w.reshape(c_out, -1), dz.reshape(n, c_out, -1)
    dw_mat = sum(dz_mat[k] @ cols[k].T for k in range(n))  # [eq-mv-backward]
    dx = col2im(w_mat.T @ dz_mat, x.shape, w.shape[2:], **kw)
    dx_ref, dw_ref, db_ref = conv2d_backward(dz, x, w, **kw)
    assert_close(dw_mat.reshape(w.shape), dw_ref)
    assert_close(dx, dx_ref)
    assert_close(dz_mat.sum(axis=(0, 2)), db_ref)  # the row of ones


@settings(HYPOTHESIS, max_examples=30)
@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
def test_col2im_is_the_adjoint_of_im2col(cfg, seed):
    kw = _window_settings(cfg)
    (n, c, h, w_), (_, _, kh, kw_) = cfg["x_shape"], cfg["w_shape"]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w_))
    cols = rng.standard_normal(im2col(x, (kh, kw_), **kw).shape)
    lhs = np.vdot(im2col(x, (kh, kw_), **kw), cols)
    rhs = np.vdot(x, col2im(cols, x.shape, (kh, kw_), **kw))
    assert abs(lhs - rhs) <= 1e-12 * max(abs(lhs), abs(rhs), 1.0)  # [eq-mv-adjoint]
    err = adjoint_test(lambda v: im2col(v, (kh, kw_), **kw),
                       lambda u: col2im(u, x.shape, (kh, kw_), **kw), x.shape, cols.shape, rng=rng)
    assert err < 1e-12


def test_im2col_hand_worked_entries_and_col2im_overlap_counts():
    x = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    cols = im2col(x, 2, stride=2, padding=1)
    # column (i, j) = (1, 1) reads x_pad[2:4, 2:4] = x[1:3, 1:3]
    assert np.array_equal(cols[0, :, 4], [6.0, 7.0, 10.0, 11.0])
    # column (0, 0) reads the padded corner: three zeros and x[0, 0]
    assert np.array_equal(cols[0, :, 0], [0.0, 0.0, 0.0, 1.0])
    counts = col2im(np.ones((1, 9, 4)), (1, 1, 4, 4), 3)  # 3x3 windows, stride 1, on 4x4
    assert np.array_equal(counts[0, 0], [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])
    # stride 2 with a 1x1 kernel reads every second row and column: the rest gets exactly 0
    sparse = col2im(np.ones((1, 1, 4)), (1, 1, 4, 4), 1, stride=2)
    assert sparse[0, 0].tolist() == [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]


def test_im2col_and_col2im_keep_float32_and_return_fresh_arrays():
    x = np.random.default_rng(8).standard_normal((2, 3, 5, 6)).astype(np.float32)
    a, b = im2col(x, 3, padding=1), im2col(x, 3, padding=1)
    assert a.dtype == np.float32 and a is not b and not np.shares_memory(a, b)
    back = col2im(a, x.shape, 3, padding=1)
    assert back.dtype == np.float32 and back.shape == x.shape
    assert im2col(x.astype(int), 3).dtype == np.float64


def test_im2col_and_col2im_over_several_pieces_of_the_batch():
    # 64 examples of (8, 16, 16) with 3x3 kernels fill several scratch pieces of ~1 MiB each:
    # the pieces must be stitched together exactly as example-by-example calls give them.
    x = np.random.default_rng(9).standard_normal((64, 8, 16, 16))
    cols = im2col(x, 3, stride=2, padding=1)
    assert np.array_equal(cols[37], im2col(x[37:38], 3, stride=2, padding=1)[0])
    back = col2im(cols, x.shape, 3, stride=2, padding=1)
    assert np.array_equal(back[63], col2im(cols[63:], (1,) + x.shape[1:], 3, stride=2, padding=1)[0])
    w = np.random.default_rng(10).standard_normal((5, 8, 3, 3))
    assert_close(w.reshape(5, -1) @ cols, conv2d_forward(x, w, stride=2, padding=1).reshape(64, 5, -1))


def test_col2im_propagates_nan_only_where_it_is_added():
    cols = np.zeros((1, 4, 9))
    cols[0, 0, 0] = np.nan  # tap (0, 0) of window (0, 0) reads x[0, 0]
    out = col2im(cols, (1, 1, 4, 4), 2)
    assert np.isnan(out[0, 0, 0, 0]) and np.isnan(out).sum() == 1


@pytest.mark.parametrize("call, error, match", [
    (lambda: im2col(np.ones((2, 3, 4)), 2), ValueError, r"^x must be a 4-D array, got 3-D"),
    (lambda: im2col(np.ones((0, 1, 4, 4)), 2), ValueError, r"^x must not be empty"),
    (lambda: im2col(np.ones((1, 1, 4, 4)), (2, 2, 2)), ValueError, r"^kernel_size must be an int or a pair"),
    (lambda: im2col(np.ones((1, 1, 4, 4)), 2.0), TypeError, r"^kernel_size must be an int or a pair of ints"),
    (lambda: im2col(np.ones((1, 1, 4, 4)), 0), ValueError, r"^kernel_size must be positive"),
    (lambda: im2col(np.ones((1, 1, 4, 4)), 5), ValueError, r"the dilated kernel spans 5"),
    (lambda: im2col(np.ones((1, 1, 4, 4)), 2, stride=0), ValueError, r"^stride must be positive"),
    (lambda: im2col(np.ones((1, 1, 4, 4)), 2, padding=-1), ValueError, r"^padding must be non-negative"),
    (lambda: im2col(np.ones((1, 1, 4, 4)), 2, dilation=(1, 0)), ValueError, r"^dilation must be positive"),
    (lambda: col2im(np.ones((1, 4, 9)), (1, 1, 4), 2), ValueError,
     r"^input_shape must be a sequence of 4 ints \(N, C_in, H, W of the input"),
    (lambda: col2im(np.ones((1, 4, 9)), (1, 1, 4, 0), 2), ValueError, r"^input_shape must have entries >= 1"),
    (lambda: col2im(np.ones((1, 4, 9)), (1, 1, 4, 4.0), 2), TypeError, r"^input_shape must be a sequence of 4 ints"),
    (lambda: col2im(np.ones((4, 9)), (1, 1, 4, 4), 2), ValueError, r"^cols must be a 3-D array, got 2-D"),
    (lambda: col2im(np.ones((1, 4, 8)), (1, 1, 4, 4), 2), ValueError,
     r"^cols must have shape \(1, 4, 9\) \(N, C_in·K_h·K_w, H'·W' for input_shape \(1, 1, 4, 4\)"),
    (lambda: col2im(np.ones((1, 9, 4)), (1, 1, 4, 4), 2), ValueError, r"^cols must have shape \(1, 4, 9\)"),
    (lambda: col2im(np.ones((1, 4, 9)), (1, 1, 4, 4), 2, stride=2), ValueError, r"^cols must have shape \(1, 4, 4\)"),
], ids=lambda v: None if callable(v) or isinstance(v, type) else v[:40])
def test_im2col_and_col2im_reject_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --- the jax reference itself, and the optional torch cross-check ------------------------------


def test_jax_reference_conv_gradients_are_self_consistent():
    # jax.test_util.check_grads compares jax's forward- and reverse-mode derivatives of the
    # reference with its own finite differences: the reference the tests rely on is sound.
    import jax
    from jax.test_util import check_grads

    x, w, b, _ = _problem(x_shape=(1, 2, 5, 6), w_shape=(2, 2, 2, 3), seed=7, stride=(2, 1), padding=1,
                          dilation=(1, 2))
    f = jax.jit(lambda x_, w_, b_: jr.conv2d(x_, w_, b_, stride=(2, 1), padding=1, dilation=(1, 2)))
    check_grads(f, (x, w, b), order=1, modes=("fwd", "rev"))


def test_matches_torch_if_installed():
    torch = pytest.importorskip("torch")
    settings = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    x, w, b, dz = _problem(**settings)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    zt = torch.nn.functional.conv2d(xt, wt, bt, **settings)
    zt.backward(torch.tensor(dz))
    dx, dw, db = conv2d_backward(dz, x, w, **settings)
    assert_close(conv2d_forward(x, w, b, **settings), zt.detach().numpy())
    assert_close(dx, xt.grad.numpy())
    assert_close(dw, wt.grad.numpy())
    assert_close(db, bt.grad.numpy())
