"""cnnref.conv1d: the 1-D layer (stride, padding, dilation, groups) against jax.vjp of
lax.conv_general_dilated, its loop forms, the 2-D layer at height 1, independent groups,
central differences, the adjoint identity, hand-worked cases, bad input, and planted wrong
backward passes that these checks catch."""

from __future__ import annotations


import numpy as np
import pytest
from helpers import HYPOTHESIS, RTOL32, assert_close, assert_layer_gradients_match_central_differences
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cnnref import conv2d_backward, conv2d_forward, output_size
from cnnref.book import jaxref_conv1d as jr
from cnnref.conv1d import (
    conv1d_backward,
    conv1d_backward_loop,
    conv1d_forward,
    conv1d_forward_loop,
)
from cnnref.gradcheck import adjoint_test, relative_error

# Tolerances. Every comparison below is between two float64 evaluations of the same sums in a
# different order (im2col + BLAS, loops, XLA): they differ by a few ulps of the largest entry
# per term, and the sums have at most C_g·K·L' ≤ a few hundred terms, so RTOL64 = 1e-12 relative
# to the largest entry (helpers.assert_close) is far above rounding and far below any indexing
# error, which changes entries by O(1) of their size.

# Property sweeps that call jax compile one XLA kernel per new shape (~0.1-0.4 s each): 25 examples.
SWEEP_JAX = settings(HYPOTHESIS, max_examples=25)
SWEEP = settings(HYPOTHESIS, max_examples=40)


@st.composite
def conv1d_configs(draw, max_n=2, max_groups=3, max_per_group=2, max_k=4, max_extra=5, groups=True):
    """Small 1-D problems: every keyword drawn, groups dividing C_in and C_out, a non-empty output.

    L is drawn from [span − 2P, span − 2P + max_extra] (at least 1), so every remainder
    (L + 2P − span) mod s occurs, including those where the stride leaves the last positions
    unread. Settings are passed as ints or as one-element tuples (both are the API).
    """
    g = draw(st.integers(1, max_groups)) if groups else 1
    c_in = g * draw(st.integers(1, max_per_group))
    c_out = g * draw(st.integers(1, max_per_group))
    k = draw(st.integers(1, max_k))
    s, p, d = draw(st.integers(1, 3)), draw(st.integers(0, 2)), draw(st.integers(1, 3))
    lo = max(1, d * (k - 1) + 1 - 2 * p)
    length = draw(st.integers(lo, lo + max_extra))
    n = draw(st.integers(1, max_n))
    wrap = draw(st.booleans())
    kw = {"stride": s, "padding": p, "dilation": d, "groups": g}
    if wrap:
        kw = {name: (v,) for name, v in kw.items()}
    return {"x_shape": (n, c_in, length), "w_shape": (c_out, c_in // g, k), "settings": kw}


def _plain(settings):
    """The settings as plain ints (for output_size and the 2-D layer)."""
    return {k: v[0] if isinstance(v, tuple) else v for k, v in settings.items()}


def _out_shape(x_shape, w_shape, settings):
    s = _plain(settings)
    return (x_shape[0], w_shape[0],
            output_size(x_shape[2], w_shape[2], s.get("stride", 1), s.get("padding", 0), s.get("dilation", 1)))


def _problem(x_shape, w_shape, settings, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    dz = rng.standard_normal(_out_shape(x_shape, w_shape, settings))
    return x, w, b, dz


# Fixed cases: x (2, C_in, L), non-square channel counts; the comment gives (L + 2P − span) mod s.
SETTINGS = [
    pytest.param((2, 3, 9), (4, 3, 3), {}, id="plain"),
    pytest.param((2, 3, 9), (4, 3, 3), {"stride": 2}, id="stride2"),                         # 6 mod 2 = 0
    pytest.param((2, 3, 10), (4, 3, 3), {"stride": 3}, id="stride3-remainder"),              # 7 mod 3 = 1
    pytest.param((2, 3, 9), (4, 3, 3), {"padding": 2, "dilation": 2}, id="pad2-dil2"),
    pytest.param((2, 3, 13), (4, 3, 3), {"stride": 2, "padding": 1, "dilation": 3}, id="s2-p1-d3"),
    pytest.param((2, 4, 11), (6, 2, 3), {"stride": 2, "padding": 1, "dilation": 2, "groups": 2}, id="groups2"),
    pytest.param((2, 3, 8), (6, 1, 2), {"stride": 3, "groups": 3}, id="depthwise-x2-remainder"),  # 6 mod 3 = 0
    pytest.param((1, 6, 7), (3, 2, 4), {"padding": 3, "groups": 3}, id="groups3-pad3"),
    pytest.param((2, 2, 5), (3, 2, 5), {}, id="kernel-as-long-as-input"),
    pytest.param((2, 2, 4), (3, 2, 1), {"stride": (2,), "padding": (1,)}, id="k1-tuples"),
]


# --- against jax ---------------------------------------------------------------------------


@pytest.mark.parametrize("x_shape, w_shape, settings", SETTINGS)
def test_forward_and_backward_match_jax(x_shape, w_shape, settings):
    x, w, b, dz = _problem(x_shape, w_shape, settings)
    z_ref, dx_ref, dw_ref, db_ref = jr.conv1d_vjp(x, w, b, dz, **_plain(settings))
    z = conv1d_forward(x, w, b, **settings)
    dx, dw, db = conv1d_backward(dz, x, w, **settings)
    assert (z.shape, dx.shape, dw.shape, db.shape) == (dz.shape, x.shape, w.shape, b.shape)
    for got, ref in ((z, z_ref), (dx, dx_ref), (dw, dw_ref), (db, db_ref)):
        assert_close(got, ref)


@SWEEP_JAX
@given(conv1d_configs())
@example({"x_shape": (1, 2, 7), "w_shape": (4, 1, 3), "settings": {"stride": 2, "padding": 1, "dilation": 2,
                                                                     "groups": 2}})
def test_sweep_both_tiers_match_jax(cfg):
    # one jax.vjp per example (each new shape compiles once), against both tiers of cnnref
    x, w, b, dz = _problem(cfg["x_shape"], cfg["w_shape"], cfg["settings"], seed=1)
    z_ref, *grads_ref = jr.conv1d_vjp(x, w, b, dz, **_plain(cfg["settings"]))
    for forward, backward in ((conv1d_forward, conv1d_backward), (conv1d_forward_loop, conv1d_backward_loop)):
        assert_close(forward(x, w, b, **cfg["settings"]), z_ref)
        for got, ref in zip(backward(dz, x, w, **cfg["settings"]), grads_ref):
            assert got.shape == ref.shape
            assert_close(got, ref)
    p = _plain(cfg["settings"])
    lo, k = dz.shape[2], w.shape[2]
    read = {p["stride"] * i + p["dilation"] * u - p["padding"] for i in range(lo) for u in range(k)}
    unread = sorted(set(range(x.shape[2])) - read)
    assert np.all(conv1d_backward(dz, x, w, **cfg["settings"])[0][:, :, unread] == 0.0)


def test_the_sweeps_draw_the_interesting_cases():
    # the strategy must produce remainders, groups with every other keyword, and tuple settings
    from hypothesis import find

    def remainder(cfg):
        p = _plain(cfg["settings"])
        return (cfg["x_shape"][2] + 2 * p["padding"] - p["dilation"] * (cfg["w_shape"][2] - 1) - 1) % p["stride"]

    def all_keywords(cfg):
        p = _plain(cfg["settings"])
        return p["groups"] > 1 and p["stride"] > 1 and p["dilation"] > 1 and p["padding"] > 0

    for predicate in (lambda c: remainder(c) != 0, all_keywords,
                      lambda c: isinstance(c["settings"]["stride"], tuple)):
        assert predicate(find(conv1d_configs(), predicate, settings=HYPOTHESIS))


def test_probe_loss_gradients_match_jax_grad():
    # jax.grad of E = Σ dz ⊙ z (the probe loss, whose deltas are dz) gives the same three gradients
    settings = {"stride": 2, "padding": 1, "dilation": 2, "groups": 2}
    x, w, b, dz = _problem((2, 4, 11), (6, 2, 3), settings, seed=2)
    for got, ref in zip(conv1d_backward(dz, x, w, **settings), jr.probe_grads_nd(x, w, b, dz, **settings)):
        assert_close(got, np.asarray(ref))


# --- the two tiers, and the 2-D layer ------------------------------------------------------


@SWEEP
@given(conv1d_configs())
def test_sweep_loop_forms_match_vectorised(cfg):
    x, w, b, dz = _problem(cfg["x_shape"], cfg["w_shape"], cfg["settings"], seed=3)
    s = cfg["settings"]
    assert_close(conv1d_forward_loop(x, w, b, **s), conv1d_forward(x, w, b, **s))
    assert_close(conv1d_forward_loop(x, w, **s), conv1d_forward(x, w, **s))
    for got, expected in zip(conv1d_backward_loop(dz, x, w, **s), conv1d_backward(dz, x, w, **s)):
        assert got.shape == expected.shape
        assert_close(got, expected)


@SWEEP
@given(conv1d_configs(groups=False))
def test_sweep_equals_the_2d_layer_with_height_one(cfg):
    # x (N, C, L) as (N, C, 1, L), w (O, C, K) as (O, C, 1, K): the 2-D layer with H = K_h = 1,
    # padding (0, P), stride and dilation (1, s) / (1, d) on the height axis of length 1.
    x, w, b, dz = _problem(cfg["x_shape"], cfg["w_shape"], cfg["settings"], seed=4)
    p = _plain(cfg["settings"])
    kw2 = {"stride": (1, p["stride"]), "padding": (0, p["padding"]), "dilation": (1, p["dilation"])}
    assert_close(conv1d_forward(x, w, b, **cfg["settings"]), conv2d_forward(x[:, :, None], w[:, :, None], b, **kw2)[:, :, 0])
    dx2, dw2, db2 = conv2d_backward(dz[:, :, None], x[:, :, None], w[:, :, None], **kw2)
    dx, dw, db = conv1d_backward(dz, x, w, **cfg["settings"])
    assert_close(dx, dx2[:, :, 0])
    assert_close(dw, dw2[:, :, 0])
    assert_close(db, db2)


@SWEEP
@given(conv1d_configs())
def test_sweep_groups_are_independent_layers(cfg):
    # A layer with G groups is G layers side by side: group γ reads x[:, γ C_g : (γ+1) C_g] and
    # writes z[:, γ O_g : (γ+1) O_g] with the kernels w[γ O_g : (γ+1) O_g] ([eq-nd-groups]).
    x, w, b, dz = _problem(cfg["x_shape"], cfg["w_shape"], cfg["settings"], seed=5)
    p = _plain(cfg["settings"])
    g = p.pop("groups")
    cg, og = x.shape[1] // g, w.shape[0] // g
    parts = [(slice(k * cg, (k + 1) * cg), slice(k * og, (k + 1) * og)) for k in range(g)]
    z = conv1d_forward(x, w, b, **cfg["settings"])
    dx, dw, db = conv1d_backward(dz, x, w, **cfg["settings"])
    for ci, oi in parts:
        assert_close(z[:, oi], conv1d_forward(x[:, ci], w[oi], b[oi], **p))
        dx_k, dw_k, db_k = conv1d_backward(dz[:, oi], x[:, ci], w[oi], **p)
        assert_close(dx[:, ci], dx_k)
        assert_close(dw[oi], dw_k)
        assert_close(db[oi], db_k)


# --- hand-worked ---------------------------------------------------------------------------


def test_forward_hand_worked_stride_padding_dilation():
    x = np.arange(1.0, 8.0).reshape(1, 1, 7)  # [1 2 3 4 5 6 7]
    w = np.array([[[1.0, 10.0]]])
    # padded: [0 1 2 3 4 5 6 7 0], span d(K-1)+1 = 3, windows start at 0, 2, 4, 6:
    # z[i] = x_pad[2i] + 10 x_pad[2i + 2] = 0 + 20, 2 + 40, 4 + 60, 6 + 0, then + b = 0.5
    expected = np.array([[[20.0, 42.0, 64.0, 6.0]]]) + 0.5
    for f in (conv1d_forward, conv1d_forward_loop):
        np.testing.assert_array_equal(f(x, w, np.array([0.5]), stride=2, padding=1, dilation=2), expected)


def test_backward_hand_worked_overlaps_and_gaps():
    # L = 6, K = 2, s = 2, d = 3, P = 0: windows read {0, 3} and {2, 5}; positions 1 and 4 are
    # never read. dx[p] = Σ over the (i, u) with 2i + 3u = p of dz[i] w[u].
    x = np.arange(6.0).reshape(1, 1, 6)
    w = np.array([[[2.0, 5.0]]])
    dz = np.array([[[1.0, 10.0]]])
    dx_expected = np.array([[[2.0, 0.0, 20.0, 5.0, 0.0, 50.0]]])
    dw_expected = np.array([[[0.0 * 1 + 2.0 * 10, 3.0 * 1 + 5.0 * 10]]])  # Σ_i dz[i] x[2i + 3u]
    for f in (conv1d_backward, conv1d_backward_loop):
        dx, dw, db = f(dz, x, w, stride=2, dilation=3)
        np.testing.assert_array_equal(dx, dx_expected)
        np.testing.assert_array_equal(dw, dw_expected)
        np.testing.assert_array_equal(db, [11.0])


def test_forward_is_a_sum_of_numpy_correlations():
    # s = 1, P = 0, d = 1, G = 1: z[n, o] = b[o] + Σ_c correlate(x[n, c], w[o, c], "valid")
    x, w, b, _ = _problem((2, 3, 9), (4, 3, 3), {})
    z = conv1d_forward(x, w, b)
    for n in range(2):
        for o in range(4):
            assert_close(z[n, o], b[o] + sum(np.correlate(x[n, c], w[o, c], "valid") for c in range(3)))


def test_stride1_gradients_are_full_convolution_and_valid_correlation():
    # dx[n, c] = Σ_o convolve(dz[n, o], w[o, c], "full"); dw[o, c] = Σ_n correlate(x[n, c], dz[n, o], "valid")
    x, w, _, dz = _problem((2, 3, 9), (4, 3, 3), {}, seed=6)
    dx, dw, db = conv1d_backward(dz, x, w)
    for n in range(2):
        for c in range(3):
            assert_close(dx[n, c], sum(np.convolve(dz[n, o], w[o, c], "full") for o in range(4)))
    for o in range(4):
        for c in range(3):
            assert_close(dw[o, c], sum(np.correlate(x[n, c], dz[n, o], "valid") for n in range(2)))
    assert_close(db, dz.sum(axis=(0, 2)))


def test_bias_none_is_bias_zero_and_tuples_are_ints():
    x, w, b, _ = _problem((2, 4, 9), (2, 2, 3), {"stride": 2, "padding": 1, "groups": 2})
    kw = {"stride": 2, "padding": 1, "dilation": 1, "groups": 2}
    z0 = conv1d_forward(x, w, **kw)
    np.testing.assert_array_equal(z0, conv1d_forward(x, w, np.zeros(2), **kw))
    np.testing.assert_array_equal(z0, conv1d_forward(x, w, **{k: [v] for k, v in kw.items()}))
    assert_close(conv1d_forward(x, w, b, **kw) - z0, np.broadcast_to(b[None, :, None], z0.shape))


# --- unread positions, dtypes, non-finite values -------------------------------------------


@pytest.mark.parametrize(
    "length, k, settings, unread",
    [
        (10, 3, {"stride": 3, "dilation": 2}, [1, 6, 8, 9]),  # windows {0, 2, 4}, {3, 5, 7}
        # padded positions {0, 3, 6}, {2, 5, 8}, …, {8, 11, 14}: padded 1 and 13 are inputs 0 and 12
        (13, 3, {"stride": 2, "padding": 1, "dilation": 3}, [0, 12]),
        (9, 2, {"stride": 4}, [2, 3, 6, 7, 8]),  # windows {0, 1}, {4, 5}; 8 is the remainder
    ],
)
def test_unread_positions_get_exactly_zero_gradient(length, k, settings, unread):
    s, p, d = settings.get("stride", 1), settings.get("padding", 0), settings.get("dilation", 1)
    lo = output_size(length, k, s, p, d)
    read = {s * i + d * u - p for i in range(lo) for u in range(k)}  # p = s i + d u − P, enumerated
    assert sorted(set(range(length)) - read) == unread
    x, w, _, dz = _problem((2, 2, length), (3, 2, k), settings, seed=7)
    for dx in (conv1d_backward(dz, x, w, **settings)[0], conv1d_backward_loop(dz, x, w, **settings)[0]):
        assert np.all(dx[:, :, unread] == 0.0)  # exact zeros
        assert np.all(np.delete(dx, unread, axis=2) != 0.0)  # every read position gets something


def test_float32_stays_float32_and_close_to_float64():
    kw = {"stride": 2, "padding": 1, "dilation": 2, "groups": 2}
    x, w, b, dz = _problem((2, 4, 11), (6, 2, 3), kw, seed=8)
    f32 = [a.astype(np.float32) for a in (x, w, b, dz)]
    z32 = conv1d_forward(*f32[:3], **kw)
    grads32 = conv1d_backward(f32[3], *f32[:2], **kw)
    assert z32.dtype == np.float32 and all(g.dtype == np.float32 for g in grads32)
    assert_close(z32, conv1d_forward(x, w, b, **kw), rtol=RTOL32)
    for g32, g64 in zip(grads32, conv1d_backward(dz, x, w, **kw)):
        assert_close(g32, g64, rtol=RTOL32)
    # integers are promoted to float64
    assert conv1d_forward(np.ones((1, 2, 5), dtype=int), np.ones((1, 2, 2), dtype=int)).dtype == np.float64


def test_nan_propagates_to_the_outputs_that_read_it():
    x, w, b, dz = _problem((1, 2, 9), (2, 2, 2), {"stride": 2, "dilation": 2}, seed=9)
    x[0, 1, 4] = np.nan  # read by windows i with 2i + 2u = 4: i = 2 (u = 0) and i = 1 (u = 1)
    z = conv1d_forward(x, w, b, stride=2, dilation=2)
    assert np.array_equal(np.isnan(z[0]), np.tile([False, True, True, False], (2, 1)))
    assert np.array_equal(np.isnan(conv1d_forward_loop(x, w, b, stride=2, dilation=2)), np.isnan(z))
    with np.errstate(invalid="ignore"):
        got = conv1d_backward(dz, x, w, stride=2, dilation=2)
        expected = conv1d_backward_loop(dz, x, w, stride=2, dilation=2)
    for a, e in zip(got, expected):
        assert_close(a, e)  # the same nan entries (dw of channel 1), the finite ones close


# --- central differences and the adjoint identity -------------------------------------------


# E(x, w, b) = Σ G ⊙ z(x, w, b) is linear in each argument alone, so the central difference is
# exact up to rounding for any ε: with ε = 0.5 the rounding is ~1e-16 |E| / ε ≈ 1e-14 relative
# to gradients of size ~1–10. 1e-10 relative is four orders above that and far below the O(1)
# change of any wrong index or missing term.
CENTRAL_EPS = 0.5
CENTRAL_RTOL = 1e-10


@pytest.mark.parametrize("x_shape, w_shape, settings", [SETTINGS[0], SETTINGS[4], SETTINGS[5], SETTINGS[6]])
def test_backward_matches_central_differences(x_shape, w_shape, settings):
    x, w, b, dz = _problem(x_shape, w_shape, settings, seed=10)
    assert_layer_gradients_match_central_differences(
        conv1d_forward, conv1d_backward, dz, x, w, b, CENTRAL_EPS, CENTRAL_RTOL, **settings
    )


# A correct (map, transpose) pair gives <u, J v> = <Jᵀ u, v> to rounding, ~1e-16 relative in
# float64; 1e-13 leaves room for the summation order, and a wrong transpose scores ≥ 1e-2.
ADJOINT_TOL = 1e-13


@pytest.mark.parametrize("x_shape, w_shape, settings", SETTINGS)
def test_adjoint_identity(x_shape, w_shape, settings):
    x, w, _, _ = _problem(x_shape, w_shape, settings, seed=11)
    out = _out_shape(x_shape, w_shape, settings)
    err_x = adjoint_test(lambda v: conv1d_forward(v, w, **settings),
                         lambda u: conv1d_backward(u, np.zeros(x_shape), w, **settings)[0],
                         x_shape, out, rng=np.random.default_rng(12))
    err_w = adjoint_test(lambda v: conv1d_forward(x, v, **settings),
                         lambda u: conv1d_backward(u, x, np.zeros(w_shape), **settings)[1],
                         w_shape, out, rng=np.random.default_rng(13))
    err_b = adjoint_test(lambda v: conv1d_forward(np.zeros(x_shape), w, v, **settings),
                         lambda u: conv1d_backward(u, x, w, **settings)[2],
                         (w_shape[0],), out, rng=np.random.default_rng(14))
    assert max(err_x, err_w, err_b) < ADJOINT_TOL


# --- planted wrong backward passes are caught -----------------------------------------------


def _backward_without_zero_insertion(dz, x, w, *, stride=1, padding=0, dilation=1, groups=1):
    """A plausible slip: each tap's deltas scattered next to each other, as if the stride were 1."""
    _, dw, db = conv1d_backward(dz, x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    (n, c_in, length), (c_out, c_g, k) = x.shape, w.shape
    og = c_out // groups
    dxp = np.zeros((n, c_in, length + 2 * padding))
    for o in range(c_out):
        first = (o // og) * c_g
        for c in range(c_g):
            for u in range(k):
                dxp[:, first + c, dilation * u : dilation * u + dz.shape[2]] += dz[:, o] * w[o, c, u]  # no gaps
    return dxp[:, :, padding : padding + length], dw, db


def _backward_with_groups_mixed_up(dz, x, w, *, stride=1, padding=0, dilation=1, groups=1):
    """Another slip: the input gradient of group γ written onto the maps of group γ + 1."""
    dx, dw, db = conv1d_backward(dz, x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return np.roll(dx, x.shape[1] // groups, axis=1), dw, db


@pytest.mark.parametrize("wrong", [_backward_without_zero_insertion, _backward_with_groups_mixed_up])
def test_planted_wrong_backward_is_caught(wrong):
    x_shape, w_shape = (2, 4, 11), (6, 2, 3)
    settings = {"stride": 2, "padding": 1, "dilation": 2, "groups": 2}
    x, w, b, dz = _problem(x_shape, w_shape, settings, seed=15)
    _, dx_ref, _, _ = jr.conv1d_vjp(x, w, b, dz, **settings)
    bad_dx = wrong(dz, x, w, **settings)[0]
    assert bad_dx.shape == x.shape
    assert relative_error(bad_dx, dx_ref) > 0.1  # jax sees it
    with pytest.raises(AssertionError, match="max abs error"):
        assert_close(bad_dx, dx_ref)
    err = adjoint_test(lambda v: conv1d_forward(v, w, **settings),
                       lambda u: wrong(u, np.zeros(x_shape), w, **settings)[0],
                       x_shape, dz.shape, rng=np.random.default_rng(16))
    assert err > 1e-2  # and so does the adjoint identity
    # while the right backward passes both
    assert_close(conv1d_backward(dz, x, w, **settings)[0], dx_ref)


# --- bad input -----------------------------------------------------------------------------

X, W = np.ones((2, 4, 9)), np.ones((6, 2, 3))  # fit groups=2


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"x": np.ones((2, 4, 9, 1))}, ValueError, r"x must be a 3-D array, got 4-D"),
        ({"w": np.ones((6, 2))}, ValueError, r"w must be a 3-D array, got 2-D"),
        ({"x": np.ones((2, 4, 9), dtype=bool)}, TypeError, r"x must be a real numeric array.*bool"),
        ({"w": np.ones((6, 2, 3), dtype=complex)}, TypeError, r"w must be a real numeric array.*complex"),
        ({"x": np.ones((0, 4, 9))}, ValueError, r"x and w must not be empty"),
        ({"groups": 3}, ValueError, r"groups=3 must divide the input channels, but x has C_in=4"),
        ({"w": np.ones((5, 2, 3))}, ValueError, r"groups=2 must divide the output channels, but w has C_out=5"),
        ({"w": np.ones((6, 4, 3))}, ValueError, r"channel mismatch: x has C_in=4 .* C_in/groups=2, but w has 4"),
        ({"groups": 0}, ValueError, r"groups must be positive \(>= 1\), got 0"),
        ({"groups": 2.0}, TypeError, r"groups must be an int or a sequence of one int, got 2.0"),
        ({"stride": 0}, ValueError, r"stride must be positive \(>= 1\), got 0"),
        ({"stride": (2, 2)}, ValueError, r"stride must be an int or a sequence of one int .* length 2"),
        ({"padding": -1}, ValueError, r"padding must be non-negative \(>= 0\), got -1"),
        ({"dilation": "2"}, TypeError, r"dilation must be an int or a sequence of one int, got '2'"),
        ({"dilation": True}, TypeError, r"dilation must be an int or a sequence of one int, got True"),
        ({"dilation": 5}, ValueError, r"the dilated kernel spans 11 .* only 9"),
        ({"b": np.ones(5)}, ValueError, r"b must have shape \(6,\) \(one bias per output channel, C_out=6\)"),
        ({"b": np.ones((6, 1))}, ValueError, r"b must be a 1-D array, got 2-D"),
    ],
)
def test_bad_input_is_rejected(kwargs, error, match):
    args = {"x": X, "w": W, "b": None, "groups": 2, **kwargs}
    x, w, b = args.pop("x"), args.pop("w"), args.pop("b")
    with pytest.raises(error, match=match):
        conv1d_forward(x, w, b, **args)
    with pytest.raises(error, match=match):
        conv1d_forward_loop(x, w, b, **args)
    if b is None:
        with pytest.raises(error, match=match):
            conv1d_backward(np.ones((2, 6, 7)), x, w, **args)
        with pytest.raises(error, match=match):
            conv1d_backward_loop(np.ones((2, 6, 7)), x, w, **args)


@pytest.mark.parametrize(
    "dz, match",
    [
        (np.ones((2, 6, 6)), r"dz must have shape \(2, 6, 7\) \(the shape of conv1d_forward's output"),
        (np.ones((2, 6, 7, 1)), r"dz must be a 3-D array, got 4-D"),
        (np.ones((2, 6, 7), dtype=bool), r"dz must be a real numeric array"),
    ],
)
def test_bad_dz_is_rejected(dz, match):
    for f in (conv1d_backward, conv1d_backward_loop):
        with pytest.raises((ValueError, TypeError), match=match):
            f(dz, X, W, groups=2)


def test_matches_torch_if_installed():
    torch = pytest.importorskip("torch")
    x, w, b, dz = _problem((2, 4, 11), (6, 2, 3), {"stride": 2, "padding": 1, "dilation": 2, "groups": 2}, seed=17)
    kw = {"stride": 2, "padding": 1, "dilation": 2, "groups": 2}
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    zt = torch.nn.functional.conv1d(xt, wt, bt, **kw)
    zt.backward(torch.tensor(dz))
    assert_close(conv1d_forward(x, w, b, **kw), zt.detach().numpy())
    for got, t in zip(conv1d_backward(dz, x, w, **kw), (xt, wt, bt)):
        assert_close(got, t.grad.numpy())
