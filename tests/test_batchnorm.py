"""cnnref.batchnorm: training and evaluation mode against the jax oracle (``jax.vjp`` / ``jax.jvp`` of
``jnp.mean`` / ``jnp.var``), the loop forms (the step-by-step chain rule), central differences, the
adjoint identity, the per-channel properties of the gradient, PyTorch's running statistics, and bad
input."""

from __future__ import annotations

from cnnref.book import jaxref_batchnorm as jb  # noqa: I001  (first: x64 before jax computes anything)

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cnnref.batchnorm import (
    CACHE_KEYS,
    batchnorm2d_backward,
    batchnorm2d_backward_loop,
    batchnorm2d_eval_backward,
    batchnorm2d_eval_forward,
    batchnorm2d_forward,
    batchnorm2d_forward_loop,
    update_running_stats,
)
from cnnref.gradcheck import adjoint_test, numerical_gradient, relative_error
from helpers import HYPOTHESIS, HYPOTHESIS_JAX, RTOL32, assert_close, max_abs

EPS = 1e-5
SHAPES = [
    pytest.param((2, 3, 4, 5), id="2x3x4x5"),
    pytest.param((1, 2, 3, 3), id="N1"),
    pytest.param((4, 1, 1, 1), id="1x1-maps"),
    pytest.param((3, 2, 1, 4), id="H1"),
    pytest.param((1, 1, 2, 1), id="M2"),
]


def _problem(shape=(2, 3, 4, 5), seed=0, loc=0.5, scale=1.5):
    """x with a healthy per-channel variance (scale² ≫ eps), gamma of either sign away from 0, beta, dy."""
    rng = np.random.default_rng(seed)
    x = loc + scale * rng.standard_normal(shape)
    c = shape[1]
    gamma = rng.uniform(0.5, 2.0, c) * rng.choice([-1.0, 1.0], c)
    beta = rng.standard_normal(c)
    dy = rng.standard_normal(shape)
    return x, gamma, beta, dy


def _stats(c, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(c), rng.uniform(0.5, 3.0, c)  # running_mean, running_var


def assert_dx_close(dx, ref, dy, cache):
    """dx = γρ/M (M dy − Σ dy − x̂ Σ dy x̂) is a difference of terms of size up to |γρ|·max|dy|·(2 + max|x̂|)
    and cancels strongly when M is small (at M = 2 and eps = 0 it is exactly zero). Summation-order
    round-off is a few ulps of those *terms*, so the tolerance is 1e-12 of their size, which equals
    1e-12 of max|dx| up to a factor 3-5 when M is large, and still fails on any O(|dx|) error."""
    terms = max_abs(cache["gamma"] * cache["inv_std"]) * max_abs(dy) * (2 + max_abs(cache["x_hat"]))
    assert dx.shape == ref.shape
    err = max_abs(dx - ref)
    assert err <= 1e-12 * max(terms, max_abs(ref)), f"max abs error {err:.3e}, terms {terms:.3e}"


# --- forward ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_jax_and_the_loop_form(shape):
    x, gamma, beta, dy = _problem(shape)
    y_ref = jb.batchnorm2d_vjp(x, gamma, beta, dy, EPS)[0]
    y, cache = batchnorm2d_forward(x, gamma, beta, eps=EPS)
    y_loop, cache_loop = batchnorm2d_forward_loop(x, gamma, beta, eps=EPS)
    assert_close(y, y_ref)
    assert_close(y_loop, y_ref)
    assert set(cache) == set(CACHE_KEYS) == set(cache_loop)
    for key in CACHE_KEYS:
        assert_close(cache_loop[key], cache[key])


def test_forward_statistics_hand_worked():
    # channel 0: the values 1, 2, 3, 6 over (N, H, W) = (2, 1, 2): mean 3, biased variance
    # (4 + 1 + 0 + 9) / 4 = 3.5; channel 1: 0, 0, 2, 2: mean 1, variance 1.
    x = np.array([[[[1.0, 2.0]], [[0.0, 0.0]]],
                  [[[3.0, 6.0]], [[2.0, 2.0]]]])
    y, cache = batchnorm2d_forward(x, np.array([2.0, 1.0]), np.array([0.0, 10.0]), eps=0.0)
    np.testing.assert_allclose(cache["mean"], [3.0, 1.0], rtol=1e-15)
    np.testing.assert_allclose(cache["var"], [3.5, 1.0], rtol=1e-15)
    np.testing.assert_allclose(cache["inv_std"], [1 / np.sqrt(3.5), 1.0], rtol=1e-15)
    np.testing.assert_allclose(y[:, 0].ravel(), 2 * (np.array([1.0, 2.0, 3.0, 6.0]) - 3) / np.sqrt(3.5), rtol=1e-15)
    np.testing.assert_array_equal(y[:, 1].ravel(), [9.0, 9.0, 11.0, 11.0])
    assert cache["eps"] == 0.0


@pytest.mark.parametrize("eps", [0.0, 1e-5, 0.5])
def test_normalised_channels_have_mean_zero_and_variance_below_one(eps):
    x, gamma, beta, _ = _problem(seed=3)
    y, cache = batchnorm2d_forward(x, gamma, beta, eps=eps)
    x_hat = cache["x_hat"]
    v = cache["var"]
    np.testing.assert_allclose(x_hat.mean(axis=(0, 2, 3)), 0.0, atol=1e-15)
    # the biased variance of x_hat is v / (v + eps): exactly 1 only for eps = 0
    np.testing.assert_allclose(x_hat.var(axis=(0, 2, 3)), v / (v + eps), rtol=1e-13)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), beta, atol=1e-14)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), np.abs(gamma) * np.sqrt(v / (v + eps)), rtol=1e-13)


def test_forward_is_invariant_to_a_shift_of_each_channel():
    x, gamma, beta, _ = _problem(seed=4)
    shift = np.array([100.0, -3.0, 0.25])[None, :, None, None]
    assert_close(batchnorm2d_forward(x + shift, gamma, beta)[0], batchnorm2d_forward(x, gamma, beta)[0], 1e-12)


# --- training-mode backward -------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("eps", [1e-5, 0.1])
def test_backward_matches_jax_vjp(shape, eps):
    x, gamma, beta, dy = _problem(shape)
    _, dx_ref, dgamma_ref, dbeta_ref = jb.batchnorm2d_vjp(x, gamma, beta, dy, eps)
    _, cache = batchnorm2d_forward(x, gamma, beta, eps=eps)
    dx, dgamma, dbeta = batchnorm2d_backward(dy, cache)
    assert_dx_close(dx, dx_ref, dy, cache)
    assert_close(dgamma, dgamma_ref)
    assert_close(dbeta, dbeta_ref)


@pytest.mark.parametrize("shape", SHAPES)
def test_step_by_step_loop_matches_compact_form(shape):
    # batchnorm2d_backward_loop takes the chain rule node by node (mean, centred x, variance, inverse
    # std, x_hat); batchnorm2d_backward uses the compact formula: the same numbers up to round-off.
    x, gamma, beta, dy = _problem(shape, seed=5)
    _, cache = batchnorm2d_forward(x, gamma, beta)
    dx, dgamma, dbeta = batchnorm2d_backward(dy, cache)
    dx_loop, dgamma_loop, dbeta_loop = batchnorm2d_backward_loop(dy, cache)
    assert_dx_close(dx_loop, dx, dy, cache)
    assert_close(dgamma_loop, dgamma)
    assert_close(dbeta_loop, dbeta)


@pytest.mark.parametrize("shape", SHAPES)
def test_each_step_of_the_chain_matches_jax_at_its_node(shape):
    # [eq-bn-dxhat] … [eq-bn-dx-chain] from the cache, against jax.grad with respect to each node
    x, gamma, beta, dy = _problem(shape, seed=23)
    _, cache = batchnorm2d_forward(x, gamma, beta, eps=EPS)
    nodes = jb.node_gradients(x, gamma, beta, dy, EPS)
    m = dy[:, 0].size
    per_channel = {"axis": (0, 2, 3), "keepdims": True}
    g4, r4 = (cache[k][None, :, None, None] for k in ("gamma", "inv_std"))
    d_x_hat = g4 * dy
    d_rho = np.sum(d_x_hat * cache["x_centred"], **per_channel)
    d_var = -0.5 * r4**3 * d_rho
    d_x_centred = r4 * d_x_hat + 2 / m * d_var * cache["x_centred"]
    d_mean = -d_x_centred.sum(**per_channel)
    for got, key in ((d_x_hat, "x_hat"), (d_rho, "inv_std"), (d_var, "var"), (d_x_centred, "x_centred"),
                     (d_mean, "mean"), (d_x_centred + d_mean / m, "x")):
        assert_close(got.reshape(nodes[key].shape), nodes[key])


def _richardson_gradient(f, x, h):
    """Central differences extrapolated to h → 0: (4 D(h/2) − D(h)) / 3, error O(h⁴) instead of O(h²)."""
    return (4 * numerical_gradient(f, x, h / 2) - numerical_gradient(f, x, h)) / 3


def test_backward_matches_central_differences():
    x, gamma, beta, dy = _problem((2, 2, 3, 3), seed=6)
    _, cache = batchnorm2d_forward(x, gamma, beta, eps=EPS)
    dx, dgamma, dbeta = batchnorm2d_backward(dy, cache)
    # y is nonlinear in x. Plain central differences with h = 1e-3 have an O(h²) truncation error,
    # measured ~2e-8 relative here; extrapolated ones with h = 1e-2, O(h⁴) ~ 1e-12, plus rounding
    # ~1e-16·|E|/h ~ 1e-13. Hence 1e-7 and 1e-10: both far below the O(1) error of a missing path,
    # and the second below the ~1e-5 relative error of a backward that forgets eps.
    def e_of_x(t):
        return float(np.sum(dy * batchnorm2d_forward(t, gamma, beta, eps=EPS)[0]))

    assert relative_error(numerical_gradient(e_of_x, x, 1e-3), dx) < 1e-7
    assert relative_error(_richardson_gradient(e_of_x, x, 1e-2), dx) < 1e-10
    # y is linear in gamma and in beta: central differences are exact up to rounding (~1e-16·|E|/h)
    num_g = numerical_gradient(lambda g: float(np.sum(dy * batchnorm2d_forward(x, g, beta, eps=EPS)[0])), gamma, 0.5)
    num_b = numerical_gradient(lambda b: float(np.sum(dy * batchnorm2d_forward(x, gamma, b, eps=EPS)[0])), beta, 0.5)
    assert relative_error(num_g, dgamma) < 1e-13
    assert relative_error(num_b, dbeta) < 1e-13


@pytest.mark.parametrize("shape", SHAPES[:4])
def test_adjoint_identity_against_jax_jvp(shape):
    # J v from forward-mode jax (jvp), Jᵀ u from cnnref's backward: <u, J v> = <Jᵀ u, v>
    x, gamma, beta, _ = _problem(shape, seed=7)
    _, cache = batchnorm2d_forward(x, gamma, beta, eps=EPS)
    err = adjoint_test(lambda v: jb.batchnorm2d_jvp(x, gamma, beta, v, EPS),
                       lambda u: batchnorm2d_backward(u, cache)[0], shape, shape, rng=np.random.default_rng(8))
    assert err < 1e-13  # float64 inner products of ≤ 120 terms: ~1e-16 relative


@pytest.mark.parametrize("shape", SHAPES[:4])
def test_jacobian_is_symmetric_so_backward_equals_jvp(shape):
    # ∂y_i/∂x_j = γρ/M (M δ_ij − 1 − x̂_i x̂_j) within a channel: symmetric, so Jᵀ u = J u
    x, gamma, beta, u = _problem(shape, seed=9)
    _, cache = batchnorm2d_forward(x, gamma, beta, eps=EPS)
    assert_dx_close(batchnorm2d_backward(u, cache)[0], jb.batchnorm2d_jvp(x, gamma, beta, u, EPS), u, cache)


@pytest.mark.parametrize("eps", [0.0, 1e-5, 0.1])
def test_dx_sums_to_zero_and_its_product_with_x_hat_is_eps_gamma_dgamma_over_sigma_cubed(eps):
    x, gamma, beta, dy = _problem((3, 3, 4, 4), seed=10)
    _, cache = batchnorm2d_forward(x, gamma, beta, eps=eps)
    dx, dgamma, _ = batchnorm2d_backward(dy, cache)
    scale = max_abs(dx) * dx[:, 0].size  # a sum of M terms of size ≤ max|dx|: round-off ~1e-16 of it
    assert max_abs(dx.sum(axis=(0, 2, 3))) < 1e-13 * scale
    # Σ dx·x̂ = γ ε ρ³ Σ dy·x̂ per channel: zero only for eps = 0
    inner = np.sum(dx * cache["x_hat"], axis=(0, 2, 3))
    expected = gamma * eps * cache["inv_std"] ** 3 * dgamma
    assert max_abs(inner - expected) < 1e-13 * scale
    if eps == 0.0:
        assert max_abs(inner) < 1e-13 * scale
    else:
        assert max_abs(inner) > 1e3 * 1e-13 * scale  # measurably not orthogonal


def test_gradient_of_a_bias_before_batchnorm_is_zero():
    # z + b[c] is normalised away, so ∂E/∂b = Σ dx over (n, p, q) = 0
    x, gamma, beta, dy = _problem(seed=11)
    b = np.array([0.3, -1.0, 2.0])
    _, cache = batchnorm2d_forward(x + b[None, :, None, None], gamma, beta)
    dx = batchnorm2d_backward(dy, cache)[0]
    assert max_abs(dx.sum(axis=(0, 2, 3))) < 1e-13 * max_abs(dx) * dx[:, 0].size


# --- a planted wrong backward is caught ------------------------------------------------------------


def _backward_statistics_as_constants(dy, cache):
    """Wrong: treats mean and variance as constants (the evaluation-mode backward in training mode)."""
    return cache["gamma"][None, :, None, None] * cache["inv_std"][None, :, None, None] * dy


def _backward_without_eps(dy, cache):
    """Wrong by a factor sqrt(var / (var + eps)) and a missing term of relative size ~eps/var."""
    x_hat = cache["x_centred"] / np.sqrt(cache["var"])[None, :, None, None]
    m = dy[:, 0].size
    scale = cache["gamma"] / np.sqrt(cache["var"]) / m
    return scale[None, :, None, None] * (m * dy - dy.sum(axis=(0, 2, 3), keepdims=True)
                                         - x_hat * np.sum(dy * x_hat, axis=(0, 2, 3), keepdims=True))


def test_planted_wrong_backwards_are_caught():
    x, gamma, beta, dy = _problem((2, 2, 3, 3), seed=12, scale=0.05)  # var ~ 2.5e-3: eps/var ~ 4e-3
    _, dx_ref, _, _ = jb.batchnorm2d_vjp(x, gamma, beta, dy, EPS)
    _, cache = batchnorm2d_forward(x, gamma, beta, eps=EPS)
    assert relative_error(_backward_statistics_as_constants(dy, cache), dx_ref) > 0.1
    err = relative_error(_backward_without_eps(dy, cache), dx_ref)
    assert 1e-5 < err < 1e-1  # small, but ≫ the 1e-12 the correct backward meets
    with pytest.raises(AssertionError):
        assert_dx_close(_backward_without_eps(dy, cache), dx_ref, dy, cache)
    assert_dx_close(batchnorm2d_backward(dy, cache)[0], dx_ref, dy, cache)  # and the right one passes


# --- evaluation mode ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_eval_forward_and_backward_match_jax(shape):
    x, gamma, beta, dy = _problem(shape, seed=13)
    rm, rv = _stats(shape[1])
    y_ref, dx_ref = jb.batchnorm2d_eval_vjp(x, gamma, beta, rm, rv, dy, EPS)
    assert_close(batchnorm2d_eval_forward(x, gamma, beta, rm, rv, eps=EPS), y_ref)
    assert_close(batchnorm2d_eval_backward(dy, gamma, rv, eps=EPS), dx_ref)


def test_eval_backward_is_the_transpose_of_the_linear_part_and_matches_central_differences():
    shape = (2, 3, 4, 3)
    x, gamma, beta, dy = _problem(shape, seed=14)
    rm, rv = _stats(3)
    zeros = np.zeros(3)
    # with beta = running_mean = 0 the evaluation-mode layer is linear in x
    err = adjoint_test(lambda v: batchnorm2d_eval_forward(v, gamma, zeros, zeros, rv),
                       lambda u: batchnorm2d_eval_backward(u, gamma, rv), shape, shape, rng=np.random.default_rng(15))
    assert err < 1e-13
    # affine in x: central differences are exact up to rounding (~1e-16·|E|/h with h = 0.5)
    num = numerical_gradient(lambda t: float(np.sum(dy * batchnorm2d_eval_forward(t, gamma, beta, rm, rv))), x, 0.5)
    assert relative_error(num, batchnorm2d_eval_backward(dy, gamma, rv)) < 1e-12


def test_eval_with_the_batch_statistics_gives_the_training_output_but_not_its_gradient():
    x, gamma, beta, dy = _problem(seed=16)
    y, cache = batchnorm2d_forward(x, gamma, beta)
    assert_close(batchnorm2d_eval_forward(x, gamma, beta, cache["mean"], cache["var"]), y)
    dx_eval = batchnorm2d_eval_backward(dy, gamma, cache["var"])
    assert relative_error(dx_eval, batchnorm2d_backward(dy, cache)[0]) > 0.1


# --- running statistics ---------------------------------------------------------------------------


def test_running_stats_hand_worked():
    # one channel, values 1, 2, 3, 6: mean 3, biased variance 3.5, unbiased 14/3
    x = np.array([1.0, 2.0, 3.0, 6.0]).reshape(2, 1, 1, 2)
    new_mean, new_var = update_running_stats(np.array([0.0]), np.array([1.0]), x, momentum=0.1)
    np.testing.assert_allclose(new_mean, [0.3], rtol=1e-15)
    np.testing.assert_allclose(new_var, [0.9 + 0.1 * 14 / 3], rtol=1e-15)
    # momentum 1 stores the batch statistics, momentum 0 keeps the old ones
    np.testing.assert_allclose(update_running_stats(np.zeros(1), np.ones(1), x, momentum=1)[1], [14 / 3], rtol=1e-15)
    np.testing.assert_array_equal(update_running_stats(np.zeros(1), np.ones(1), x, momentum=0.0)[1], [1.0])


@pytest.mark.parametrize("shape", SHAPES)
def test_running_stats_match_jax_and_do_not_modify_their_arguments(shape):
    x, _, _, _ = _problem(shape, seed=17)
    rm, rv = _stats(shape[1])
    rm0, rv0, x0 = rm.copy(), rv.copy(), x.copy()
    ref_mean, ref_var = jb.running_stats(rm, rv, x, 0.3)
    new_mean, new_var = update_running_stats(rm, rv, x, momentum=0.3)
    assert_close(new_mean, ref_mean)
    assert_close(new_var, ref_var)
    np.testing.assert_array_equal(rm, rm0)
    np.testing.assert_array_equal(rv, rv0)
    np.testing.assert_array_equal(x, x0)


def test_inputs_are_not_modified():
    x, gamma, beta, dy = _problem(seed=18)
    copies = [a.copy() for a in (x, gamma, beta, dy)]
    _, cache = batchnorm2d_forward(x, gamma, beta)
    batchnorm2d_backward(dy, cache)
    batchnorm2d_forward_loop(x, gamma, beta)
    batchnorm2d_backward_loop(dy, cache)
    batchnorm2d_eval_forward(x, gamma, beta, *_stats(3))
    batchnorm2d_eval_backward(dy, gamma, _stats(3)[1])
    for a, b in zip((x, gamma, beta, dy), copies):
        np.testing.assert_array_equal(a, b)


def test_the_cache_does_not_alias_gamma():
    x, gamma, beta, dy = _problem(seed=19)
    _, cache = batchnorm2d_forward(x, gamma, beta)
    dx = batchnorm2d_backward(dy, cache)[0]
    gamma *= 2  # an optimiser step after the forward pass must not change this backward
    np.testing.assert_array_equal(batchnorm2d_backward(dy, cache)[0], dx)


def test_matches_torch_if_installed():
    torch = pytest.importorskip("torch")
    x, gamma, beta, dy = _problem(seed=20)
    rm, rv = _stats(3)
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    rmt, rvt = torch.tensor(rm), torch.tensor(rv)
    yt = torch.nn.functional.batch_norm(xt, rmt, rvt, gt, bt, training=True, momentum=0.1, eps=EPS)
    yt.backward(torch.tensor(dy))
    y, cache = batchnorm2d_forward(x, gamma, beta, eps=EPS)
    dx, dgamma, dbeta = batchnorm2d_backward(dy, cache)
    assert_close(y, yt.detach().numpy())
    assert_dx_close(dx, xt.grad.numpy(), dy, cache)
    assert_close(dgamma, gt.grad.numpy())
    assert_close(dbeta, bt.grad.numpy())
    new_mean, new_var = update_running_stats(rm, rv, x, momentum=0.1)
    assert_close(new_mean, rmt.numpy())
    assert_close(new_var, rvt.numpy())  # torch stores the unbiased variance
    y_eval = torch.nn.functional.batch_norm(torch.tensor(x), rmt, rvt, gt.detach(), bt.detach(), training=False,
                                            eps=EPS)
    assert_close(batchnorm2d_eval_forward(x, gamma, beta, new_mean, new_var, eps=EPS), y_eval.numpy())


# --- dtypes -------------------------------------------------------------------------------------


def test_float32_is_kept():
    x, gamma, beta, dy = _problem(seed=21)
    x32, g32, b32, dy32 = (a.astype(np.float32) for a in (x, gamma, beta, dy))
    rm, rv = (a.astype(np.float32) for a in _stats(3))
    y, cache = batchnorm2d_forward(x32, g32, b32)
    y64, cache64 = batchnorm2d_forward(x32.astype(np.float64), g32.astype(np.float64), b32.astype(np.float64))
    assert y.dtype == np.float32 and all(cache[k].dtype == np.float32 for k in CACHE_KEYS if k != "eps")
    assert_close(y, y64, RTOL32)
    for got, ref in zip(batchnorm2d_backward(dy32, cache), batchnorm2d_backward(dy32.astype(np.float64), cache64)):
        assert got.dtype == np.float32
        assert_close(got, ref, RTOL32)
    assert batchnorm2d_eval_forward(x32, g32, b32, rm, rv).dtype == np.float32
    assert batchnorm2d_eval_backward(dy32, g32, rv).dtype == np.float32
    assert all(a.dtype == np.float32 for a in update_running_stats(rm, rv, x32))


def test_integer_inputs_are_promoted_to_float64():
    x = np.arange(8).reshape(2, 1, 2, 2)
    y, cache = batchnorm2d_forward(x, np.array([1]), np.array([0]), eps=0.0)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.ravel(), (np.arange(8) - 3.5) / np.sqrt(5.25), rtol=1e-15)
    assert batchnorm2d_backward(np.ones((2, 1, 2, 2), dtype=int), cache)[0].dtype == np.float64


# --- property tests -------------------------------------------------------------------------------


# Shapes for the sweeps against jax, each of which compiles once: M = N·H·W from 2 to 27, with
# N = 1, H = 1, W = 1, 1x1 maps and C = 1 among them.
JAX_SHAPES = [(1, 1, 1, 2), (1, 2, 1, 2), (2, 1, 1, 1), (1, 3, 2, 2), (2, 2, 3, 1), (3, 1, 1, 3),
              (2, 3, 2, 3), (3, 2, 3, 3), (1, 2, 3, 2), (4, 1, 1, 1), (2, 2, 2, 2), (3, 3, 1, 2)]


@st.composite
def bn_configs(draw, shapes=None, max_n=3, max_c=3, max_hw=4):
    """Small batch-norm problems with N·H·W ≥ 2 (any such shape, or one of ``shapes``), eps from 0 to
    0.1, inputs of varied location and scale, and a momentum from 0 to 1."""
    if shapes is not None:
        shape = draw(st.sampled_from(shapes))
    else:
        n = draw(st.integers(1, max_n))
        h = draw(st.integers(1, max_hw))
        w = draw(st.integers(2 if n * h == 1 else 1, max_hw))
        shape = (n, draw(st.integers(1, max_c)), h, w)
    return dict(shape=shape, eps=draw(st.sampled_from([0.0, 1e-5, 1e-3, 0.1])),
                loc=draw(st.sampled_from([0.0, 3.0, -20.0])), scale=draw(st.sampled_from([0.3, 1.0, 5.0])),
                momentum=draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])))


# one compiled oracle call per example; a new shape compiles in ~0.3 s, hence the shape pool
@settings(HYPOTHESIS_JAX, max_examples=40)
@given(cfg=bn_configs(JAX_SHAPES), seed=st.integers(0, 2**16))
@example(cfg=dict(shape=(1, 2, 1, 2), eps=1e-5, loc=0.0, scale=1.0, momentum=0.1), seed=0)  # M = 2
@example(cfg=dict(shape=(3, 2, 3, 3), eps=0.0, loc=-20.0, scale=0.3, momentum=1.0), seed=1)
def test_property_all_modes_match_jax(cfg, seed):
    x, gamma, beta, dy = _problem(cfg["shape"], seed, cfg["loc"], cfg["scale"])
    eps, momentum = cfg["eps"], cfg["momentum"]
    rm, rv = _stats(cfg["shape"][1], seed)
    ref = jb.batchnorm2d_references(x, gamma, beta, dy, rm, rv, eps, momentum)
    y, cache = batchnorm2d_forward(x, gamma, beta, eps=eps)
    dx, dgamma, dbeta = batchnorm2d_backward(dy, cache)
    assert_close(y, ref["y"])
    assert_dx_close(dx, ref["dx"], dy, cache)
    assert_close(dgamma, ref["dgamma"])
    assert_close(dbeta, ref["dbeta"])
    assert_close(batchnorm2d_eval_forward(x, gamma, beta, rm, rv, eps=eps), ref["y_eval"])
    assert_close(batchnorm2d_eval_backward(dy, gamma, rv, eps=eps), ref["dx_eval"])
    new_mean, new_var = update_running_stats(rm, rv, x, momentum=momentum)
    assert_close(new_mean, ref["new_mean"])
    assert_close(new_var, ref["new_var"])


@settings(HYPOTHESIS, max_examples=40)
@given(cfg=bn_configs(), seed=st.integers(0, 2**16))
def test_property_loop_forms_match_vectorised(cfg, seed):
    x, gamma, beta, dy = _problem(cfg["shape"], seed, cfg["loc"], cfg["scale"])
    y, cache = batchnorm2d_forward(x, gamma, beta, eps=cfg["eps"])
    y_loop, cache_loop = batchnorm2d_forward_loop(x, gamma, beta, eps=cfg["eps"])
    assert_close(y_loop, y)
    dx, dgamma, dbeta = batchnorm2d_backward(dy, cache)
    dx_loop, dgamma_loop, dbeta_loop = batchnorm2d_backward_loop(dy, cache_loop)
    assert_dx_close(dx_loop, dx, dy, cache)
    assert_close(dgamma_loop, dgamma)
    assert_close(dbeta_loop, dbeta)


# --- the oracle itself --------------------------------------------------------------------------


def test_jax_reference_gradients_are_self_consistent():
    import jax
    from jax.test_util import check_grads

    x, gamma, beta, _ = _problem((2, 2, 2, 3), seed=22)
    check_grads(jax.jit(lambda a, g, b: jb.batchnorm2d(a, g, b, EPS)), (x, gamma, beta), order=1,
                modes=("fwd", "rev"))


# --- bad input ------------------------------------------------------------------------------------


def test_bad_arguments_are_rejected_with_clear_messages():
    x, gamma, beta, _ = _problem()
    rm, rv = _stats(3)
    with pytest.raises(ValueError, match=r"x must be a 4-D array, got 3-D"):
        batchnorm2d_forward(x[0], gamma, beta)
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\) \(one value per channel of x, C=3\), got \(2,\)"):
        batchnorm2d_forward(x, gamma[:2], beta)
    with pytest.raises(ValueError, match=r"beta must be a 1-D array"):
        batchnorm2d_forward(x, gamma, beta[None])
    with pytest.raises(TypeError, match=r"x must be a real numeric array .* got dtype complex128"):
        batchnorm2d_forward(x + 0j, gamma, beta)
    with pytest.raises(ValueError, match=r"x must not be empty"):
        batchnorm2d_forward(np.zeros((0, 3, 2, 2)), gamma, beta)
    with pytest.raises(ValueError, match=r"more than one value per channel \(N·H·W ≥ 2\), got x of shape \(1, 3, 1, 1\)"):
        batchnorm2d_forward(x[:1, :, :1, :1], gamma, beta)
    with pytest.raises(ValueError, match=r"more than one value per channel"):
        batchnorm2d_forward_loop(x[:1, :, :1, :1], gamma, beta)
    with pytest.raises(ValueError, match=r"more than one value per channel"):
        update_running_stats(rm, rv, x[:1, :, :1, :1])
    with pytest.raises(ValueError, match=r"eps must be a non-negative finite number, got -1e-05"):
        batchnorm2d_forward(x, gamma, beta, eps=-1e-5)
    with pytest.raises(TypeError, match=r"eps must be a non-negative real number, got '1e-5' of type str"):
        batchnorm2d_forward(x, gamma, beta, eps="1e-5")
    with pytest.raises(TypeError, match=r"eps must be a non-negative real number, got True"):
        batchnorm2d_eval_forward(x, gamma, beta, rm, rv, eps=True)
    with pytest.raises(TypeError, match=r"batchnorm2d_forward\(\) takes 3 positional arguments"):
        batchnorm2d_forward(x, gamma, beta, 1e-5)  # eps is keyword-only


def test_a_channel_without_variance_needs_positive_eps():
    x, gamma, beta, _ = _problem()
    x[:, 1] = 4.0  # channel 1 is constant: variance 0
    y, _ = batchnorm2d_forward(x, gamma, beta, eps=1e-5)
    np.testing.assert_array_equal(y[:, 1], beta[1])  # normalised to exactly 0
    for forward in (batchnorm2d_forward, batchnorm2d_forward_loop):
        with pytest.raises(ValueError, match=r"the batch variance \+ eps must be positive in every channel, "
                                             r"got the batch variance 0.0 and eps 0.0 in channel 1"):
            forward(x, gamma, beta, eps=0.0)


def test_bad_eval_arguments_and_running_statistics_are_rejected():
    x, gamma, beta, dy = _problem()
    rm, rv = _stats(3)
    with pytest.raises(ValueError, match=r"running_mean must have shape \(3,\)"):
        batchnorm2d_eval_forward(x, gamma, beta, rm[:1], rv)
    with pytest.raises(ValueError, match=r"running_var \+ eps must be positive in every channel, "
                                         r"got running_var -1.0 and eps 1e-05 in channel 2"):
        batchnorm2d_eval_forward(x, gamma, beta, rm, np.array([1.0, 1.0, -1.0]))
    with pytest.raises(ValueError, match=r"running_var \+ eps must be positive"):
        batchnorm2d_eval_backward(dy, gamma, np.array([1.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\)"):
        batchnorm2d_eval_backward(dy, gamma[:2], rv)
    with pytest.raises(ValueError, match=r"momentum must lie in \[0, 1\], got 1.5"):
        update_running_stats(rm, rv, x, momentum=1.5)
    with pytest.raises(TypeError, match=r"momentum must be a real number in \[0, 1\], got None"):
        update_running_stats(rm, rv, x, momentum=None)
    with pytest.raises(ValueError, match=r"running_var must have shape \(3,\)"):
        update_running_stats(rm, rv[:2], x)


def test_bad_cache_and_dy_are_rejected():
    x, gamma, beta, dy = _problem()
    _, cache = batchnorm2d_forward(x, gamma, beta)
    for backward in (batchnorm2d_backward, batchnorm2d_backward_loop):
        with pytest.raises(TypeError, match=r"cache must be the dict returned by batchnorm2d_forward, got tuple"):
            backward(dy, tuple(cache.values()))
        with pytest.raises(ValueError, match=r"cache is missing the keys \['inv_std', 'eps'\]"):
            backward(dy, {k: v for k, v in cache.items() if k not in ("inv_std", "eps")})
        with pytest.raises(ValueError, match=r"dy must have shape \(2, 3, 4, 5\) \(the shape of the batch-norm "
                                             r"output y, which is that of x\), got \(2, 3, 5, 4\)"):
            backward(dy.transpose(0, 1, 3, 2), cache)
        with pytest.raises(ValueError, match=r"cache\['gamma'\] must have shape \(3,\)"):
            backward(dy, {**cache, "gamma": cache["gamma"][:2]})
        with pytest.raises(ValueError, match=r"cache\['x_centred'\] must have shape \(2, 3, 4, 5\)"):
            backward(dy, {**cache, "x_centred": cache["x_centred"][:1]})
        with pytest.raises(ValueError, match=r"eps must be a non-negative finite number"):
            backward(dy, {**cache, "eps": np.inf})
