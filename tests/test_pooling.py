"""cnnref.pooling: max and mean pooling against ``lax.reduce_window`` and its ``jax.vjp``, the loop
forms, hand-worked tie cases, central differences and (mean pooling, which is linear) the adjoint test."""

from __future__ import annotations

from cnnref.book import jaxref as jr  # noqa: I001  (first: sets JAX_PLATFORMS, XLA_FLAGS and x64 before jax starts)
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cnnref import (
    avgpool2d_backward,
    avgpool2d_backward_loop,
    avgpool2d_forward,
    maxpool2d_backward,
    maxpool2d_backward_loop,
    maxpool2d_forward,
    output_size,
)
from cnnref.gradcheck import adjoint_test, numerical_gradient, relative_error
from helpers import HYPOTHESIS, HYPOTHESIS_JAX, RTOL32, as_pair, assert_close, distinct_values, pool_configs

# x is (2, 3, 7, 8). Overlapping windows (stride < size), gaps (stride > size) and
# remainders (rows/cols after the last window) all appear.
SETTINGS = [
    pytest.param(dict(size=2), id="2"),                                  # H: 7 -> 3 windows, row 6 unread
    pytest.param(dict(size=(2, 3)), id="2x3"),
    pytest.param(dict(size=3, stride=1), id="3-stride1-overlap"),
    pytest.param(dict(size=(3, 2), stride=(2, 1)), id="3x2-stride2x1-overlap"),
    pytest.param(dict(size=3, stride=2), id="3-stride2-overlap-remainder"),
    pytest.param(dict(size=2, stride=3), id="2-stride3-gaps"),
    pytest.param(dict(size=(1, 2), stride=(2, 2)), id="1x2-stride2"),
    pytest.param(dict(size=(7, 8)), id="global"),
]
X_SHAPE = (2, 3, 7, 8)


def _out_shape(x_shape, size, stride=None):
    (kh, kw) = as_pair(size)
    (sh, sw) = as_pair(size if stride is None else stride)
    return x_shape[:2] + (output_size(x_shape[2], kh, sh), output_size(x_shape[3], kw, sw))


def _problem(x_shape=X_SHAPE, seed=0, distinct=True, **settings):
    rng = np.random.default_rng(seed)
    x = distinct_values(x_shape, rng) if distinct else rng.standard_normal(x_shape)
    dy = rng.standard_normal(_out_shape(x_shape, **settings))
    return x, dy


# --- forward ----------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", SETTINGS)
def test_forward_matches_jax_reduce_window(settings):
    x, dy = _problem(distinct=False, **settings)
    y_max = maxpool2d_forward(x, **settings)
    y_avg = avgpool2d_forward(x, **settings)
    assert y_max.shape == y_avg.shape == _out_shape(X_SHAPE, **settings)
    ymax_ref, _, yavg_ref, _ = jr.pool2d_vjps(x, dy, **settings)  # one compiled kernel for both
    np.testing.assert_array_equal(y_max, ymax_ref)  # max is exact
    assert_close(y_avg, yavg_ref)


def test_forward_hand_worked():
    x = np.array([[[[1.0, 3.0, 2.0, 0.0, 9.0],
                    [4.0, -1.0, 6.0, 5.0, 9.0],
                    [0.0, 2.0, -3.0, 1.0, 9.0]]]])
    # size 2, stride 2: windows rows 0-1 x cols 0-1 and 2-3; row 2 and col 4 are never read
    np.testing.assert_array_equal(maxpool2d_forward(x, 2), [[[[4.0, 6.0]]]])
    np.testing.assert_array_equal(avgpool2d_forward(x, 2), [[[[7.0 / 4, 13.0 / 4]]]])
    # size 2, stride 1: 2 x 4 overlapping windows
    np.testing.assert_array_equal(maxpool2d_forward(x, 2, 1), [[[[4.0, 6.0, 6.0, 9.0],
                                                                  [4.0, 6.0, 6.0, 9.0]]]])
    np.testing.assert_array_equal(avgpool2d_forward(x, 2, 1), [[[[1.75, 2.5, 3.25, 5.75],
                                                                  [1.25, 1.0, 2.25, 6.0]]]])


def test_stride_defaults_to_size():
    x, _ = _problem(distinct=False, size=(2, 3))
    dy = np.random.default_rng(1).standard_normal(_out_shape(X_SHAPE, (2, 3)))
    np.testing.assert_array_equal(maxpool2d_forward(x, (2, 3)), maxpool2d_forward(x, (2, 3), (2, 3)))
    np.testing.assert_array_equal(avgpool2d_forward(x, (2, 3)), avgpool2d_forward(x, (2, 3), (2, 3)))
    np.testing.assert_array_equal(maxpool2d_backward(dy, x, (2, 3)), maxpool2d_backward(dy, x, (2, 3), (2, 3)))
    np.testing.assert_array_equal(avgpool2d_backward(dy, x, (2, 3)), avgpool2d_backward(dy, x, (2, 3), (2, 3)))


# --- backward against jax, loops, central differences, adjoint ---------------------------------


@pytest.mark.parametrize("settings", SETTINGS)
def test_maxpool_backward_tie_free_matches_jax(settings):
    x, dy = _problem(**settings)  # distinct values: no ties anywhere
    y_ref, dx_ref, _, _ = jr.pool2d_vjps(x, dy, **settings)
    np.testing.assert_array_equal(maxpool2d_forward(x, **settings), y_ref)
    assert_close(maxpool2d_backward(dy, x, **settings), dx_ref)


@pytest.mark.parametrize("settings", SETTINGS)
def test_avgpool_backward_matches_jax(settings):
    x, dy = _problem(distinct=False, **settings)
    _, _, y_ref, dx_ref = jr.pool2d_vjps(x, dy, **settings)
    assert_close(avgpool2d_forward(x, **settings), y_ref)
    assert_close(avgpool2d_backward(dy, x, **settings), dx_ref)


@pytest.mark.parametrize("settings", SETTINGS)
def test_loop_forms_match_vectorised(settings):
    x, dy = _problem(seed=2, **settings)
    assert_close(maxpool2d_backward_loop(dy, x, **settings), maxpool2d_backward(dy, x, **settings))
    assert_close(avgpool2d_backward_loop(dy, x, **settings), avgpool2d_backward(dy, x, **settings))
    # with many ties (small integers), the loops' row-major scan and the vectorised tie rule route
    # every gradient to the same pixel. Overlapping windows add several dy values into one pixel, and
    # the loop adds them window by window while the vectorised form adds them tap by tap: the sums
    # may differ in the last bit (float addition is not associative), while a misrouted gradient
    # would differ by O(1). Hence assert_close (1e-12 of the largest magnitude), not bit equality.
    ties = np.random.default_rng(3).integers(0, 3, X_SHAPE).astype(float)
    assert_close(maxpool2d_backward_loop(dy, ties, **settings), maxpool2d_backward(dy, ties, **settings))


# Max pooling of distinct values spaced 0.25 apart is linear near x as long as no entry moves
# past another: with ε = 0.01 the central difference of E = Σ dy ⊙ maxpool(x) is exact up to
# rounding (~1e-16 |E| / ε ≈ 1e-13 relative), and so is mean pooling (linear) for any ε.
# 1e-10 relative is far above rounding and far below an O(1) routing error.
@pytest.mark.parametrize("settings", [SETTINGS[0], SETTINGS[3], SETTINGS[4], SETTINGS[5]])
def test_backward_matches_central_differences(settings):
    x, dy = _problem(x_shape=(1, 2, 7, 8), seed=4, **settings)
    num_max = numerical_gradient(lambda t: np.sum(dy * maxpool2d_forward(t, **settings)), x, 0.01)
    num_avg = numerical_gradient(lambda t: np.sum(dy * avgpool2d_forward(t, **settings)), x, 0.5)
    assert relative_error(maxpool2d_backward(dy, x, **settings), num_max) < 1e-10
    assert relative_error(avgpool2d_backward(dy, x, **settings), num_avg) < 1e-10


@pytest.mark.parametrize("settings", SETTINGS)
def test_avgpool_adjoint(settings):
    # mean pooling is linear in x; its backward must be the exact transpose (float64, ~1e-16).
    out = _out_shape(X_SHAPE, **settings)
    zeros = np.zeros(X_SHAPE)
    err = adjoint_test(lambda v: avgpool2d_forward(v, **settings),
                       lambda u: avgpool2d_backward(u, zeros, **settings), X_SHAPE, out,
                       rng=np.random.default_rng(5))
    assert err < 1e-13


# --- the tie rule -------------------------------------------------------------------------------


def test_tie_rule_all_equal_windows_hand_worked():
    x = np.ones((1, 1, 4, 4))
    dy = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    # every window is all ties: the whole gradient goes to the window's top-left entry
    expected = np.array([[[[1.0, 0.0, 2.0, 0.0],
                           [0.0, 0.0, 0.0, 0.0],
                           [3.0, 0.0, 4.0, 0.0],
                           [0.0, 0.0, 0.0, 0.0]]]])
    np.testing.assert_array_equal(maxpool2d_backward(dy, x, 2), expected)
    np.testing.assert_array_equal(maxpool2d_backward_loop(dy, x, 2), expected)


def test_tie_rule_row_major_first_hand_worked():
    # window 0 = [[0, 5], [5, 0]]: the first 5 in row-major order is (0, 1), not (1, 0);
    # window 1 = [[1, 0], [5, 5]]: the first 5 is (1, 0) of the window = x[1, 2].
    x = np.array([[[[0.0, 5.0, 1.0, 0.0],
                    [5.0, 0.0, 5.0, 5.0]]]])
    dy = np.array([[[[10.0, 20.0]]]])
    expected = np.array([[[[0.0, 10.0, 0.0, 0.0],
                           [0.0, 0.0, 20.0, 0.0]]]])
    np.testing.assert_array_equal(maxpool2d_backward(dy, x, 2), expected)
    np.testing.assert_array_equal(maxpool2d_backward_loop(dy, x, 2), expected)


def test_tie_rule_in_overlapping_windows_hand_worked():
    x = np.array([[[[1.0, 2.0, 2.0],
                    [0.0, 2.0, 1.0],
                    [2.0, 2.0, 2.0]]]])
    dy = np.array([[[[1.0, 10.0], [100.0, 1000.0]]]])
    # size 2, stride 1; the first maximum of each window in row-major order:
    #   window (0,0) = [[1,2],[0,2]] -> x[0,1];  window (0,1) = [[2,2],[2,1]] -> x[0,1]
    #   window (1,0) = [[0,2],[2,2]] -> x[1,1];  window (1,1) = [[2,1],[2,2]] -> x[1,1]
    # overlapping windows that pick the same pixel add up their gradients.
    expected = np.array([[[[0.0, 11.0, 0.0],
                           [0.0, 1100.0, 0.0],
                           [0.0, 0.0, 0.0]]]])
    np.testing.assert_array_equal(maxpool2d_backward(dy, x, 2, 1), expected)
    np.testing.assert_array_equal(maxpool2d_backward_loop(dy, x, 2, 1), expected)
    # a constant row: each window of size (1, 2) picks its own first entry
    row = np.full((1, 1, 1, 3), 3.0)
    np.testing.assert_array_equal(maxpool2d_backward(np.array([[[[1.0, 2.0]]]]), row, (1, 2), 1),
                                  [[[[1.0, 2.0, 0.0]]]])


def test_tie_rule_agrees_with_jax_reduce_window_gradient():
    # The docstring says reduce_window's gradient follows the same rule; check it on the tie cases.
    rng = np.random.default_rng(6)
    for size, stride in ((2, None), (2, 1), ((2, 3), (1, 2)), (3, 2)):
        x = rng.integers(0, 2, (2, 2, 6, 7)).astype(float)  # ties in almost every window
        dy = rng.standard_normal(_out_shape(x.shape, size, stride))
        _, dx_ref, _, _ = jr.pool2d_vjps(x, dy, size, stride)
        assert_close(maxpool2d_backward(dy, x, size, stride), dx_ref)


def test_jnp_max_over_reshaped_windows_splits_ties_but_cnnref_does_not():
    x = np.array([[[[1.0, 1.0, 0.0, 2.0],
                    [1.0, 1.0, 2.0, 2.0]]]])
    dy = np.array([[[[4.0, 6.0]]]])
    _, vjp = jax.vjp(lambda a: jr.maxpool2d_reshape_max(a, 2), jnp.asarray(x))
    split = np.asarray(vjp(jnp.asarray(dy))[0])
    # jnp.max: the 4 ties of window 0 get 4/4 = 1 each, the 3 ties of window 1 get 6/3 = 2 each
    np.testing.assert_array_equal(split, [[[[1.0, 1.0, 0.0, 2.0],
                                            [1.0, 1.0, 2.0, 2.0]]]])
    # cnnref: the whole 4 to window 0's first entry, the whole 6 to window 1's first 2 (x[0, 3])
    ours = maxpool2d_backward(dy, x, 2)
    np.testing.assert_array_equal(ours, [[[[4.0, 0.0, 0.0, 6.0],
                                           [0.0, 0.0, 0.0, 0.0]]]])
    assert not np.array_equal(ours, split)
    # both conserve the total gradient, and without ties the two jax forms and cnnref agree
    assert ours.sum() == split.sum() == dy.sum()
    x_free, dy_free = _problem(x_shape=(1, 2, 4, 6), size=2)
    _, vjp = jax.vjp(lambda a: jr.maxpool2d_reshape_max(a, 2), jnp.asarray(x_free))
    assert_close(maxpool2d_backward(dy_free, x_free, 2), np.asarray(vjp(jnp.asarray(dy_free))[0]))


def test_tie_rule_matches_torch_if_installed():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    for size, stride in ((2, 2), (2, 1), ((3, 2), (1, 2))):
        x = rng.integers(0, 2, (1, 2, 5, 6)).astype(float)
        xt = torch.tensor(x, requires_grad=True)
        yt = torch.nn.functional.max_pool2d(xt, size, stride)
        dy = rng.standard_normal(tuple(yt.shape))
        yt.backward(torch.tensor(dy))
        np.testing.assert_array_equal(maxpool2d_forward(x, size, stride), yt.detach().numpy())
        assert_close(maxpool2d_backward(dy, x, size, stride), xt.grad.numpy())


# --- unread input, non-finite values ------------------------------------------------------------


def test_unread_rows_and_columns_get_exactly_zero_gradient():
    # H = 7, size 2, stride 2: row 6 unread. W = 8, size 2, stride 3: cols 0-1, 3-4, 6-7; 2 and 5 unread.
    x, dy = _problem(x_shape=(2, 2, 7, 8), size=2, stride=(2, 3))
    read = np.zeros((7, 8), dtype=bool)
    read[:6, [0, 1, 3, 4, 6, 7]] = True
    for dx in (avgpool2d_backward(dy, x, 2, (2, 3)), avgpool2d_backward_loop(dy, x, 2, (2, 3))):
        assert np.all(dx[:, :, ~read] == 0.0)
        assert np.all(dx[:, :, read] != 0.0)
    for dx in (maxpool2d_backward(dy, x, 2, (2, 3)), maxpool2d_backward_loop(dy, x, 2, (2, 3))):
        assert np.all(dx[:, :, ~read] == 0.0)
        assert np.count_nonzero(dx) == dy.size  # one arg-max per (disjoint) window


def test_nan_and_inf_propagate_through_forward():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan   # window (0, 0) of size 2
    x[0, 0, 3, 3] = np.inf   # window (1, 1)
    x[0, 0, 2, 0] = -np.inf  # window (1, 0)
    y_max = maxpool2d_forward(x, 2)
    y_avg = avgpool2d_forward(x, 2)
    assert np.isnan(y_max[0, 0, 0, 0]) and np.isnan(y_avg[0, 0, 0, 0])
    assert y_max[0, 0, 1, 1] == np.inf and y_avg[0, 0, 1, 1] == np.inf
    assert y_max[0, 0, 1, 0] == 13.0 and y_avg[0, 0, 1, 0] == -np.inf
    assert y_max[0, 0, 0, 1] == 7.0 and y_avg[0, 0, 0, 1] == (2 + 3 + 6 + 7) / 4
    # overlapping windows: every window containing the NaN is NaN, the others are not
    y = maxpool2d_forward(x, 2, 1)
    expected_nan = np.zeros((3, 3), dtype=bool)
    expected_nan[0, 0:2] = True
    assert np.array_equal(np.isnan(y[0, 0]), expected_nan)
    assert np.array_equal(np.isnan(avgpool2d_forward(x, 2, 1)[0, 0]), expected_nan)


def test_nan_is_the_max_for_the_gradient():
    # the docstring: NaN is treated as the maximum; the first NaN gets the gradient
    x = np.array([[[[1.0, np.nan, 9.0, 2.0],
                    [5.0, np.nan, -np.inf, -np.inf]]]])
    dy = np.array([[[[3.0, 7.0]]]])
    expected = np.array([[[[0.0, 3.0, 7.0, 0.0],
                           [0.0, 0.0, 0.0, 0.0]]]])
    np.testing.assert_array_equal(maxpool2d_backward(dy, x, 2), expected)
    np.testing.assert_array_equal(maxpool2d_backward_loop(dy, x, 2), expected)
    # a window of -inf only: its first entry
    x2 = np.full((1, 1, 2, 2), -np.inf)
    np.testing.assert_array_equal(maxpool2d_backward(np.ones((1, 1, 1, 1)), x2, 2), [[[[1.0, 0.0], [0.0, 0.0]]]])


# --- dtypes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [SETTINGS[0], SETTINGS[3]])
def test_float32_is_kept(settings):
    x, dy = _problem(distinct=False, **settings)
    x32, dy32 = x.astype(np.float32), dy.astype(np.float32)
    for fwd in (maxpool2d_forward, avgpool2d_forward):
        y = fwd(x32, **settings)
        assert y.dtype == np.float32
        assert_close(y, fwd(x, **settings), RTOL32)
    for bwd in (maxpool2d_backward, avgpool2d_backward, maxpool2d_backward_loop, avgpool2d_backward_loop):
        dx = bwd(dy32, x32, **settings)
        assert dx.dtype == np.float32
        assert_close(dx, bwd(dy, x32.astype(np.float64), **settings), RTOL32)


def test_integer_inputs_are_promoted_to_float64():
    x = np.arange(16).reshape(1, 1, 4, 4)
    dy = np.ones((1, 1, 2, 2), dtype=np.int64)
    assert maxpool2d_forward(x, 2).dtype == np.float64
    y = avgpool2d_forward(x, 2)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, [[[[2.5, 4.5], [10.5, 12.5]]]])  # not integer division
    for bwd in (maxpool2d_backward, avgpool2d_backward, maxpool2d_backward_loop, avgpool2d_backward_loop):
        assert bwd(dy, x, 2).dtype == np.float64
    np.testing.assert_array_equal(avgpool2d_backward(dy, x, 2), np.full((1, 1, 4, 4), 0.25))


# --- property tests against jax ----------------------------------------------------------------


@HYPOTHESIS_JAX
@given(cfg=pool_configs(overlapping=True), seed=st.integers(0, 2**16))
@example(cfg=dict(x_shape=(1, 1, 6, 7), size=3, stride=2), seed=0)              # remainder on H
@example(cfg=dict(x_shape=(2, 2, 5, 8), size=(2, 3), stride=(1, 2)), seed=1)    # remainder on W
def test_property_overlapping_pools_match_jax(cfg, seed):
    x, dy = _problem(cfg["x_shape"], seed=seed, size=cfg["size"], stride=cfg["stride"])  # tie-free
    args = (cfg["size"], cfg["stride"])
    ymax_ref, dxmax_ref, yavg_ref, dxavg_ref = jr.pool2d_vjps(x, dy, *args)
    np.testing.assert_array_equal(maxpool2d_forward(x, *args), ymax_ref)
    assert_close(maxpool2d_backward(dy, x, *args), dxmax_ref)
    assert_close(avgpool2d_forward(x, *args), yavg_ref)
    assert_close(avgpool2d_backward(dy, x, *args), dxavg_ref)


@settings(HYPOTHESIS, max_examples=60)
@given(cfg=pool_configs(), seed=st.integers(0, 2**16), ties=st.booleans())
def test_property_loop_forms_match_vectorised(cfg, seed, ties):
    x, dy = _problem(cfg["x_shape"], seed=seed, size=cfg["size"], stride=cfg["stride"])
    if ties:
        x = np.floor(x / 4)  # many equal values per window
    args = (cfg["size"], cfg["stride"])
    # same numbers up to the order of the overlapping sums (see test_loop_forms_match_vectorised)
    assert_close(maxpool2d_backward_loop(dy, x, *args), maxpool2d_backward(dy, x, *args))
    assert_close(avgpool2d_backward_loop(dy, x, *args), avgpool2d_backward(dy, x, *args))


def test_jax_reference_avgpool_gradients_are_self_consistent():
    from jax.test_util import check_grads

    x, _ = _problem(x_shape=(1, 2, 5, 6), distinct=False, size=(2, 3), stride=(1, 2))
    check_grads(jax.jit(lambda a: jr.avgpool2d(a, (2, 3), (1, 2))), (x,), order=1, modes=("fwd", "rev"))
    # max pooling is differentiable away from ties, which distinct values guarantee
    x, _ = _problem(x_shape=(1, 2, 5, 6), size=(2, 3), stride=(1, 2))
    check_grads(jax.jit(lambda a: jr.maxpool2d(a, (2, 3), (1, 2))), (x,), order=1, modes=("fwd", "rev"), eps=1e-3)
