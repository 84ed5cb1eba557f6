"""cnnref.conv with ``groups``: grouped, depthwise and 1×1 convolutions.

Checked against the jax oracle ``cnnref.book.jaxref_groups`` (``lax.conv_general_dilated`` with
``feature_group_count`` and ``jax.vjp`` of it), against the loop forms, against G separate
ungrouped layers and the block-diagonal full layer, against per-channel correlations (depthwise)
and a matrix product per pixel (1×1), against central differences, and by the adjoint test.
"""

from __future__ import annotations

from cnnref.book import jaxref_groups as jg  # noqa: I001  (first: float64 in jax before it starts)

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cnnref.conv import conv2d_backward, conv2d_backward_loop, conv2d_forward, conv2d_forward_loop
from cnnref.correlation import correlate2d
from cnnref.dense import dense_backward, dense_forward
from cnnref.gradcheck import adjoint_test, numerical_gradient, relative_error
from cnnref.sizes import output_size
from helpers import HYPOTHESIS, HYPOTHESIS_JAX, RTOL32, as_pair, assert_close, conv_read_mask, int_or_pair, stride_remainder

# Tolerances. Every comparison in float64 is of two evaluations of the same sums in another order:
# they agree to a few ulps of the largest entry, and RTOL64 = 1e-12 (assert_close's default, see
# helpers.py) leaves room for sums of a few hundred terms while any wrong channel, group or index
# changes entries by O(1) of their size. Central differences of the linear probe loss are exact up
# to rounding (~1e-14 here with eps = 0.5, see test_conv.py), checked at 1e-10. The adjoint test
# scores ~1e-16 for a correct transpose, checked at 1e-13.
CENTRAL_EPS, CENTRAL_RTOL = 0.5, 1e-10
ADJOINT_TOL = 1e-13

# (x shape, w shape, groups, settings). Every branch of the vectorised forms: stride 1 (one strided
# im2col copy) and stride > 1 (tap by tap), C_in/G >= K_h·K_w and < K_h·K_w (the two orders of the
# column-gradient product), depthwise (G = C_in = C_out), depthwise with a channel multiplier
# (C_out = 2·C_in), 1×1 kernels, remainders the stride leaves unread, pairs.
CASES = [
    pytest.param((2, 4, 7, 8), (6, 2, 3, 2), 2, dict(), id="g2-plain"),
    pytest.param((2, 6, 7, 8), (6, 2, 3, 2), 3, dict(stride=2, padding=1), id="g3-stride2-pad1"),
    pytest.param((2, 6, 7, 8), (3, 2, 2, 3), 3, dict(stride=(3, 2), padding=(2, 1), dilation=(1, 2)),
                 id="g3-pairs-remainder"),
    pytest.param((2, 4, 6, 7), (4, 1, 3, 3), 4, dict(padding=1), id="depthwise"),
    pytest.param((2, 3, 8, 7), (6, 1, 3, 2), 3, dict(stride=(2, 3), dilation=2), id="depthwise-x2-remainder"),
    pytest.param((2, 8, 5, 6), (4, 4, 1, 1), 2, dict(), id="g2-1x1"),              # C_in/G = 4 >= 1 tap
    pytest.param((2, 8, 6, 7), (4, 4, 1, 2), 2, dict(stride=2, padding=(0, 1)), id="g2-1x2-stride2"),
    pytest.param((1, 4, 6, 6), (4, 4, 3, 3), 1, dict(stride=2, padding=1), id="g1"),
]


def _problem(x_shape, w_shape, groups, seed=0, **settings):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    out = tuple(output_size(x_shape[2 + a], w_shape[2 + a], *(as_pair(settings.get(k, d))[a] for k, d in
                                                                 (("stride", 1), ("padding", 0), ("dilation", 1))))
                for a in (0, 1))
    dz = rng.standard_normal((x_shape[0], w_shape[0]) + out)
    return x, w, b, dz


# --- against the jax oracle -------------------------------------------------------------------


@pytest.mark.parametrize("x_shape, w_shape, groups, settings", CASES)
def test_forward_and_gradients_match_jax(x_shape, w_shape, groups, settings):
    x, w, b, dz = _problem(x_shape, w_shape, groups, **settings)
    z_ref, dx_ref, dw_ref, db_ref = jg.conv2d_vjp(x, w, b, dz, groups=groups, **settings)
    z = conv2d_forward(x, w, b, groups=groups, **settings)
    dx, dw, db = conv2d_backward(dz, x, w, groups=groups, **settings)
    assert (z.shape, dx.shape, dw.shape, db.shape) == (z_ref.shape, x.shape, w.shape, b.shape)
    for got, ref in ((z, z_ref), (dx, dx_ref), (dw, dw_ref), (db, db_ref)):
        assert_close(got, ref)


@pytest.mark.parametrize("x_shape, w_shape, groups, settings", CASES)
def test_loop_forms_match_vectorised(x_shape, w_shape, groups, settings):
    x, w, b, dz = _problem(x_shape, w_shape, groups, seed=1, **settings)
    assert_close(conv2d_forward_loop(x, w, b, groups=groups, **settings),
                 conv2d_forward(x, w, b, groups=groups, **settings))
    assert_close(conv2d_forward_loop(x, w, groups=groups, **settings), conv2d_forward(x, w, groups=groups, **settings))
    for got, expected in zip(conv2d_backward_loop(dz, x, w, groups=groups, **settings),
                             conv2d_backward(dz, x, w, groups=groups, **settings)):
        assert got.shape == expected.shape
        assert_close(got, expected)


@st.composite
def grouped_configs(draw, max_extra=3):
    """Small grouped problems: G, C_in/G, C_out/G, kernel, stride, padding, dilation (ints or pairs),
    a non-empty output, and H, W over every remainder the stride can leave."""
    n = draw(st.integers(1, 2))
    groups = draw(st.integers(1, 4))
    c_g = draw(st.integers(1, 3))
    o_g = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride, padding, dilation = draw(int_or_pair(1, 3)), draw(int_or_pair(0, 2)), draw(int_or_pair(1, 2))
    (ph, pw), (dh, dw) = as_pair(padding), as_pair(dilation)
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    h = draw(st.integers(max(1, span_h - 2 * ph), max(1, span_h - 2 * ph) + max_extra))
    w = draw(st.integers(max(1, span_w - 2 * pw), max(1, span_w - 2 * pw) + max_extra))
    return dict(x_shape=(n, groups * c_g, h, w), w_shape=(groups * o_g, c_g, kh, kw), groups=groups,
                stride=stride, padding=padding, dilation=dilation)


@HYPOTHESIS_JAX
@given(cfg=grouped_configs(), seed=st.integers(0, 2**16))
@example(cfg=dict(x_shape=(2, 3, 8, 7), w_shape=(3, 1, 3, 2), groups=3, stride=(2, 3), padding=0, dilation=1), seed=0)
@example(cfg=dict(x_shape=(1, 4, 5, 5), w_shape=(8, 1, 3, 3), groups=4, stride=1, padding=1, dilation=1), seed=1)
@example(cfg=dict(x_shape=(2, 6, 4, 5), w_shape=(4, 3, 1, 1), groups=2, stride=2, padding=0, dilation=1), seed=2)
def test_property_forward_and_gradients_match_jax(cfg, seed):
    cfg = dict(cfg)
    x_shape, w_shape = cfg.pop("x_shape"), cfg.pop("w_shape")
    x, w, b, dz = _problem(x_shape, w_shape, seed=seed, **cfg)
    z_ref, dx_ref, dw_ref, db_ref = jg.conv2d_vjp(x, w, b, dz, **cfg)
    assert_close(conv2d_forward(x, w, b, **cfg), z_ref)
    dx, dw, db = conv2d_backward(dz, x, w, **cfg)
    assert_close(dx, dx_ref)
    assert_close(dw, dw_ref)
    assert_close(db, db_ref)
    mask = conv_read_mask(*x_shape[2:], w_shape[2:], *(as_pair(cfg[k]) for k in ("stride", "padding", "dilation")))
    assert np.all(dx[:, :, ~mask] == 0.0)  # unread input: exactly zero gradient, in every group


@settings(HYPOTHESIS, max_examples=30)
@given(cfg=grouped_configs(max_extra=2), seed=st.integers(0, 2**16))
def test_property_loop_forms_match_vectorised(cfg, seed):
    cfg = dict(cfg)
    x_shape, w_shape = cfg.pop("x_shape"), cfg.pop("w_shape")
    x, w, b, dz = _problem(x_shape, w_shape, seed=seed, **cfg)
    assert_close(conv2d_forward_loop(x, w, b, **cfg), conv2d_forward(x, w, b, **cfg))
    for got, expected in zip(conv2d_backward_loop(dz, x, w, **cfg), conv2d_backward(dz, x, w, **cfg)):
        assert_close(got, expected)


def test_property_examples_include_depthwise_and_remainders():
    # The strategy must produce the interesting cases, not only G = 1 and divisible sizes
    # (the explicit @example above has both at once).
    from hypothesis import find

    def depthwise(cfg):
        return cfg["groups"] > 1 and cfg["w_shape"][1] == 1

    assert depthwise(find(grouped_configs(), depthwise, settings=HYPOTHESIS))
    assert stride_remainder(find(grouped_configs(), lambda c: c["groups"] > 1 and stride_remainder(c), settings=HYPOTHESIS))


# --- the grouped layer is G layers side by side, and the block-diagonal full layer -------------


@pytest.mark.parametrize("x_shape, w_shape, groups, settings", CASES[:5])
def test_grouped_layer_is_groups_separate_layers(x_shape, w_shape, groups, settings):
    x, w, b, dz = _problem(x_shape, w_shape, groups, seed=2, **settings)
    z = conv2d_forward(x, w, b, groups=groups, **settings)
    dx, dw, db = conv2d_backward(dz, x, w, groups=groups, **settings)
    c_g, o_g = x_shape[1] // groups, w_shape[0] // groups
    for g in range(groups):
        ins, outs = slice(g * c_g, (g + 1) * c_g), slice(g * o_g, (g + 1) * o_g)
        assert_close(z[:, outs], conv2d_forward(x[:, ins], w[outs], b[outs], **settings))
        dx_g, dw_g, db_g = conv2d_backward(dz[:, outs], x[:, ins], w[outs], **settings)
        assert_close(dx[:, ins], dx_g)
        assert_close(dw[outs], dw_g)
        assert_close(db[outs], db_g)


@pytest.mark.parametrize("x_shape, w_shape, groups, settings", CASES[:5])
def test_grouped_layer_is_the_block_diagonal_full_layer(x_shape, w_shape, groups, settings):
    # Same z and dx as the full layer whose kernel is zero outside the groups' blocks; dw is that
    # layer's dw restricted to the blocks, whose off-block entries are not zero.
    x, w, b, dz = _problem(x_shape, w_shape, groups, seed=3, **settings)
    w_full = jg.block_diagonal(w, groups)
    assert_close(conv2d_forward(x, w, b, groups=groups, **settings), conv2d_forward(x, w_full, b, **settings))
    dx, dw, db = conv2d_backward(dz, x, w, groups=groups, **settings)
    dx_f, dw_f, db_f = conv2d_backward(dz, x, w_full, **settings)
    assert_close(dx, dx_f)
    assert_close(db, db_f)
    mask = jg.block_diagonal(np.ones_like(w), groups).astype(bool)
    assert_close(jg.block_diagonal(dw, groups), np.where(mask, dw_f, 0.0))
    assert np.abs(dw_f[~mask]).max() > 0.1 * np.abs(dw_f).max()


def test_depthwise_is_one_correlation_per_channel():
    # groups = C_in = C_out: z[n, c] = b[c] + x[n, c] ⋆ w[c, 0], dw[c, 0] = Σ_n x[n, c] ⋆ dz[n, c].
    x, w, b, dz = _problem((2, 3, 6, 7), (3, 1, 3, 2), 3)
    z = conv2d_forward(x, w, b, groups=3)
    _, dw, _ = conv2d_backward(dz, x, w, groups=3)
    for c in range(3):
        for n in range(2):
            assert_close(z[n, c], b[c] + correlate2d(x[n, c], w[c, 0]))
        assert_close(dw[c, 0], sum(correlate2d(x[n, c], dz[n, c]) for n in range(2)))


def test_depthwise_multiplier_reads_one_channel_per_output():
    # C_out = m·C_in, groups = C_in: output o reads input channel o // m only.
    m = 2
    x, w, b, _ = _problem((2, 3, 5, 5), (3 * m, 1, 3, 3), 3)
    z = conv2d_forward(x, w, b, padding=1, groups=3)
    for o in range(3 * m):
        assert_close(z[:, o : o + 1], conv2d_forward(x[:, o // m : o // m + 1], w[o : o + 1], b[o : o + 1], padding=1))


def test_pointwise_is_a_dense_layer_at_every_pixel():
    # 1×1, stride 1: z[n, :, i, j] = W a[n, :, i, j] + b, the dense layer on the pixels as rows,
    # and its backward is the dense layer's backward on the same rows.
    x, w, b, dz = _problem((2, 4, 3, 5), (6, 4, 1, 1), 1)
    rows = x.transpose(0, 2, 3, 1).reshape(-1, 4)                       # (N·H·W, C_in)
    z = conv2d_forward(x, w, b)
    assert_close(z.transpose(0, 2, 3, 1).reshape(-1, 6), dense_forward(rows, w[:, :, 0, 0], b))
    d_rows, d_w, d_b = dense_backward(dz.transpose(0, 2, 3, 1).reshape(-1, 6), rows, w[:, :, 0, 0])
    dx, dw, db = conv2d_backward(dz, x, w)
    assert_close(dx.transpose(0, 2, 3, 1).reshape(-1, 4), d_rows)
    assert_close(dw[:, :, 0, 0], d_w)
    assert_close(db, d_b)


def test_depthwise_separable_block_matches_jax():
    # depthwise (groups = C_in, stride 2, padding 1) then pointwise 1×1: the block's gradients are
    # the two layers' backward passes in reverse order, the pointwise dx being the depthwise dz.
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 6))
    w_dw, b_dw = rng.standard_normal((3, 1, 3, 3)), rng.standard_normal(3)
    w_pw, b_pw = rng.standard_normal((5, 3, 1, 1)), rng.standard_normal(5)
    s = dict(stride=2, padding=1)
    h = conv2d_forward(x, w_dw, b_dw, groups=3, **s)
    y = conv2d_forward(h, w_pw, b_pw)
    dy = rng.standard_normal(y.shape)
    dh, dw_pw, db_pw = conv2d_backward(dy, h, w_pw)
    dx, dw_dw, db_dw = conv2d_backward(dh, x, w_dw, groups=3, **s)
    ref = jg.separable_vjp(x, w_dw, b_dw, w_pw, b_pw, dy, **s)
    for got, expected in zip((y, dx, dw_dw, db_dw, dw_pw, db_pw), ref):
        assert_close(got, expected)


@pytest.mark.parametrize("c_in, c_out, k", [(4, 8, 3), (16, 32, 3), (3, 6, 5)])
def test_separable_counts(c_in, c_out, k):
    # Parameters (without biases) and multiply-adds of a valid K×K layer, full and depthwise-
    # separable, counted as nonzero entries of the Jacobian dz/dw (one per product w·a of the sums;
    # x has no zeros and no padding, so none vanishes by accident) and compared with the formulas
    # C_out C_in K² vs C_in K² + C_in C_out, and H'W' times those.
    import jax

    rng = np.random.default_rng(5)
    h = k + 2
    ho = h - k + 1
    x = rng.uniform(1.0, 2.0, (1, c_in, h, h))
    w_full = rng.standard_normal((c_out, c_in, k, k))
    w_dw = rng.standard_normal((c_in, 1, k, k))
    w_pw = rng.standard_normal((c_out, c_in, 1, 1))
    a_dw = np.asarray(jg.conv2d(x, w_dw, groups=c_in))

    def macs(inp, w, groups=1):
        jac = np.asarray(jax.jacobian(lambda w_: jg.conv2d(inp, w_, groups=groups))(w))
        return int(np.count_nonzero(jac))

    assert w_full.size == c_out * c_in * k * k
    assert w_dw.size + w_pw.size == c_in * k * k + c_in * c_out
    assert macs(x, w_full) == ho * ho * c_out * c_in * k * k
    assert macs(x, w_dw, c_in) + macs(a_dw, w_pw) == ho * ho * (c_in * k * k + c_in * c_out)


# --- central differences and the adjoint identity ---------------------------------------------


@pytest.mark.parametrize("x_shape, w_shape, groups, settings", [CASES[1], CASES[3], CASES[4]])
def test_backward_matches_central_differences(x_shape, w_shape, groups, settings):
    x, w, b, dz = _problem(x_shape, w_shape, groups, seed=6, **settings)

    def energy(x_, w_, b_):
        return float(np.sum(dz * conv2d_forward(x_, w_, b_, groups=groups, **settings)))

    dx, dw, db = conv2d_backward(dz, x, w, groups=groups, **settings)
    assert relative_error(dx, numerical_gradient(lambda t: energy(t, w, b), x, CENTRAL_EPS)) < CENTRAL_RTOL
    assert relative_error(dw, numerical_gradient(lambda t: energy(x, t, b), w, CENTRAL_EPS)) < CENTRAL_RTOL
    assert relative_error(db, numerical_gradient(lambda t: energy(x, w, t), b, CENTRAL_EPS)) < CENTRAL_RTOL


@pytest.mark.parametrize("x_shape, w_shape, groups, settings", CASES)
def test_adjoint_wrt_x_and_w(x_shape, w_shape, groups, settings):
    x, w, _, dz = _problem(x_shape, w_shape, groups, **settings)
    kw = dict(groups=groups, **settings)
    err_x = adjoint_test(lambda v: conv2d_forward(v, w, **kw), lambda u: conv2d_backward(u, x, w, **kw)[0],
                         x_shape, dz.shape, rng=np.random.default_rng(10))
    err_w = adjoint_test(lambda v: conv2d_forward(x, v, **kw), lambda u: conv2d_backward(u, x, w, **kw)[1],
                         w_shape, dz.shape, rng=np.random.default_rng(11))
    assert err_x < ADJOINT_TOL and err_w < ADJOINT_TOL


# --- a wrong grouped backward is caught -------------------------------------------------------


def _backward_without_group_offset(dz, x, w, groups, **settings):
    """A planted bug: every group reads (and sends its gradient to) the first group's input maps."""
    c_g, o_g = w.shape[1], w.shape[0] // groups
    dx, dw, db = np.zeros_like(x), np.zeros_like(w), np.zeros(w.shape[0])
    for g in range(groups):
        outs = slice(g * o_g, (g + 1) * o_g)
        dx_g, dw[outs], db[outs] = conv2d_backward(dz[:, outs], x[:, :c_g], w[outs], **settings)
        dx[:, :c_g] += dx_g  # BUG: should be the group's own maps g·c_g … (g+1)·c_g − 1
    return dx, dw, db


@pytest.mark.parametrize("x_shape, w_shape, groups, settings", CASES[:5])
def test_a_backward_without_the_group_offset_is_caught(x_shape, w_shape, groups, settings):
    x, w, b, dz = _problem(x_shape, w_shape, groups, seed=7, **settings)
    _, dx_ref, dw_ref, db_ref = jg.conv2d_vjp(x, w, b, dz, groups=groups, **settings)
    dx, dw, db = _backward_without_group_offset(dz, x, w, groups, **settings)
    assert_close(db, db_ref)  # the bias gradient cannot see the bug
    for got, ref in ((dx, dx_ref), (dw, dw_ref)):
        assert relative_error(got, ref) > 0.1
        with pytest.raises(AssertionError, match="max abs error"):
            assert_close(got, ref)
    err = adjoint_test(lambda v: conv2d_forward(v, w, groups=groups, **settings),
                       lambda u: _backward_without_group_offset(u, x, w, groups, **settings)[0],
                       x_shape, dz.shape, rng=np.random.default_rng(12))
    assert err > 1e-3


# --- groups = 1, dtypes, non-finite values, batch pieces ---------------------------------------


def test_groups_1_is_the_ungrouped_layer_bit_for_bit():
    x, w, b, dz = _problem((2, 3, 7, 8), (4, 3, 3, 2), 1, stride=2, padding=1)
    s = dict(stride=2, padding=1)
    np.testing.assert_array_equal(conv2d_forward(x, w, b, groups=1, **s), conv2d_forward(x, w, b, **s))
    for a, c in zip(conv2d_backward(dz, x, w, groups=1, **s), conv2d_backward(dz, x, w, **s)):
        np.testing.assert_array_equal(a, c)
    # numpy integers are ints
    np.testing.assert_array_equal(conv2d_forward(x, w, b, groups=np.int64(1), **s), conv2d_forward(x, w, b, **s))


def test_float32_is_kept_with_groups():
    x, w, b, dz = _problem((2, 4, 7, 8), (6, 2, 3, 2), 2, stride=2, padding=1)
    s = dict(stride=2, padding=1, groups=2)
    z_ref, dx_ref, dw_ref, db_ref = jg.conv2d_vjp(x, w, b, dz, **s)
    x32, w32, b32, dz32 = (a.astype(np.float32) for a in (x, w, b, dz))
    z = conv2d_forward(x32, w32, b32, **s)
    grads = conv2d_backward(dz32, x32, w32, **s)
    for got, ref in zip((z, *grads), (z_ref, dx_ref, dw_ref, db_ref)):
        assert got.dtype == np.float32
        assert_close(got, ref, RTOL32)  # float32 rounding of sums of ~20 terms vs a float64 reference


def test_non_finite_values_give_the_loop_forms_results():
    # inf / nan in x make the vectorised backward recompute dw without non-output columns, and in w
    # clear those columns of the column gradient: both per group.
    x, w, _, dz = _problem((2, 4, 7, 8), (6, 2, 3, 2), 2, seed=8, padding=1, stride=2)
    s = dict(stride=2, padding=1, groups=2)
    x[0, 3, 1, 1] = np.inf
    x[1, 0, 2, 4] = np.nan
    w2 = w.copy()
    w2[4, 1, 2, 1] = np.inf
    with np.errstate(invalid="ignore"):
        for xx, ww in ((x, w), (np.nan_to_num(x), w2)):
            expected = conv2d_backward_loop(dz, xx, ww, **s)
            for got, exp in zip(conv2d_backward(dz, xx, ww, **s), expected):
                assert_close(got, exp)
            assert np.isfinite(expected[0]).any() and np.isfinite(expected[1]).any()
            assert_close(conv2d_forward(xx, ww, **s), conv2d_forward_loop(xx, ww, **s))


def test_batch_larger_than_one_work_chunk(monkeypatch):
    import cnnref._workspace

    monkeypatch.setattr(cnnref._workspace, "CHUNK_BYTES", 60_000)
    x, w, b, dz = _problem((9, 6, 12, 11), (6, 2, 3, 3), 3, seed=9, padding=1)
    s = dict(padding=1, groups=3)
    assert len(cnnref._workspace.Workspace().batches(9, 3 * 19 * 132 * 8)) > 1
    z_ref, dx_ref, dw_ref, db_ref = jg.conv2d_vjp(x, w, b, dz, **s)
    for got, ref in zip((conv2d_forward(x, w, b, **s), *conv2d_backward(dz, x, w, **s)),
                        (z_ref, dx_ref, dw_ref, db_ref)):
        assert_close(got, ref)


# --- bad input ------------------------------------------------------------------------------


X = np.ones((1, 6, 5, 5))
FORWARD = [conv2d_forward, conv2d_forward_loop]
BACKWARD = [conv2d_backward, conv2d_backward_loop]


def _call(f, x, w, groups):
    if f in FORWARD:
        return f(x, w, groups=groups)
    return f(np.ones((x.shape[0], w.shape[0], 3, 3)), x, w, groups=groups)


@pytest.mark.parametrize("f", FORWARD + BACKWARD, ids=lambda f: f.__name__)
@pytest.mark.parametrize("x, w, groups, error, match", [
    (X, np.ones((4, 2, 3, 3)), 4, ValueError,
     r"^groups=4 must divide both C_in and C_out, got C_in=6 \(x \(1, 6, 5, 5\), NCHW\) and C_out=4"),
    (X, np.ones((4, 1, 3, 3)), 3, ValueError, r"^groups=3 must divide both C_in and C_out, got C_in=6 .* C_out=4"),
    (X, np.ones((4, 2, 3, 3)), 2, ValueError,
     r"^channel mismatch: with groups=2, w \(shape \(4, 2, 3, 3\), OIHW\) must have C_in/groups=3 input "
     r"channels per kernel for x with C_in=6 \(shape \(1, 6, 5, 5\), NCHW\), got 2"),
    (X, np.ones((6, 6, 3, 3)), 6, ValueError, r"^channel mismatch: with groups=6, .* must have C_in/groups=1 .* got 6"),
    (X, np.ones((6, 6, 3, 3)), 0, ValueError, r"^groups must be a positive int, got 0"),
    (X, np.ones((6, 6, 3, 3)), -2, ValueError, r"^groups must be a positive int, got -2"),
    (X, np.ones((6, 3, 3, 3)), 2.0, TypeError, r"^groups must be a positive int, got 2.0 of type float"),
    (X, np.ones((6, 6, 3, 3)), True, TypeError, r"^groups must be a positive int, got True of type bool"),
    (X, np.ones((6, 3, 3, 3)), (2, 2), TypeError, r"^groups must be a positive int, got \(2, 2\) of type tuple"),
])
def test_bad_groups_are_rejected(f, x, w, groups, error, match):
    with pytest.raises(error, match=match):
        _call(f, x, w, groups)


@pytest.mark.parametrize("f", [conv2d_forward, conv2d_forward_loop], ids=lambda f: f.__name__)
def test_grouped_bias_must_have_c_out_entries(f):
    with pytest.raises(ValueError, match=r"^b must have shape \(6,\) \(one bias per output channel, C_out=6\)"):
        f(X, np.ones((6, 3, 3, 3)), np.ones(3), groups=2)


@pytest.mark.parametrize("f", BACKWARD, ids=lambda f: f.__name__)
def test_grouped_dz_must_have_the_output_shape(f):
    with pytest.raises(ValueError, match=r"^dz must have shape \(1, 6, 3, 3\) .*got \(1, 3, 3, 3\)"):
        f(np.ones((1, 3, 3, 3)), X, np.ones((6, 3, 3, 3)), groups=2)


# --- the oracle is independent ------------------------------------------------------------------


def test_the_oracle_is_jaxs_grouped_convolution():
    # jax's forward- and reverse-mode derivatives of the oracle agree with its own finite differences.
    import jax
    from jax.test_util import check_grads

    x, w, b, _ = _problem((1, 4, 5, 6), (6, 2, 2, 3), 2, seed=11)
    f = jax.jit(lambda x_, w_, b_: jg.conv2d(x_, w_, b_, stride=(2, 1), padding=1, dilation=(1, 2), groups=2))
    check_grads(f, (x, w, b), order=1, modes=("fwd", "rev"))
    # and its grouped layer is G ungrouped lax convolutions (jaxref.conv2d) side by side
    from cnnref.book import jaxref

    z = np.asarray(f(x, w, b))
    for g in range(2):
        z_g = jaxref.conv2d(x[:, 2 * g : 2 * g + 2], w[3 * g : 3 * g + 3], b[3 * g : 3 * g + 3],
                            stride=(2, 1), padding=1, dilation=(1, 2))
        assert_close(z[:, 3 * g : 3 * g + 3], np.asarray(z_g))
