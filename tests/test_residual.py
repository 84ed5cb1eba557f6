"""cnnref.residual: the residual block against ``jax.vjp`` of the jax oracle (jaxref_residual), the
loop forms, central differences, the adjoint identity of its linearisation, the sum rule, a stack
of blocks, planted wrong backward passes and bad input."""

from __future__ import annotations

from cnnref.book import jaxref_residual as jrr  # noqa: I001  (first: x64 before jax starts)
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cnnref import conv2d_backward, conv2d_forward, relu, relu_prime
from cnnref.gradcheck import adjoint_test, numerical_gradient, relative_error
from cnnref.residual import (
    ResidualCache,
    residual_block_backward,
    residual_block_backward_loop,
    residual_block_forward,
    residual_block_forward_loop,
)
from helpers import HYPOTHESIS, HYPOTHESIS_JAX, RTOL32, assert_close

# Every comparison with jax or between the two tiers is at RTOL64 = 1e-12 of the reference's
# largest entry (helpers.assert_close): both sides compute the same sums of a few hundred
# products in another order, which differs by a few ulps; a wrong index, mask or missing term
# changes entries by O(1) of their size.


def _problem(n=2, c=3, h=5, w=4, k=(3, 3), seed=0, bias=(True, True), scale=0.4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    w1 = scale * rng.standard_normal((c, c) + k)
    w2 = scale * rng.standard_normal((c, c) + k)
    b1 = rng.standard_normal(c) if bias[0] else None
    b2 = rng.standard_normal(c) if bias[1] else None
    dy = rng.standard_normal(x.shape)
    padding = ((k[0] - 1) // 2, (k[1] - 1) // 2)
    return x, w1, b1, w2, b2, dy, padding


def _check_against_jax(x, w1, b1, w2, b2, dy, padding):
    y_ref, *grads_ref = jrr.residual_block_vjp(x, w1, b1, w2, b2, dy, padding=padding)
    y, cache = residual_block_forward(x, w1, b1, w2, b2, padding=padding)
    assert_close(y, y_ref)
    grads = residual_block_backward(dy, cache)
    assert [g.shape for g in grads] == [x.shape, w1.shape, (x.shape[1],), w2.shape, (x.shape[1],)]
    for got, ref in zip(grads, grads_ref):
        assert_close(got, ref)


# --- against the jax oracle ---------------------------------------------------------------------


@pytest.mark.parametrize("k", [(1, 1), (3, 3), (5, 5), (3, 1), (1, 5)])
@pytest.mark.parametrize("bias", [(True, True), (False, False), (True, False)])
def test_forward_and_gradients_match_jax(k, bias):
    _check_against_jax(*_problem(k=k, bias=bias))


@st.composite
def block_configs(draw):
    """Shapes (N, C, H, W), odd kernel sizes per axis, padding as an int (square kernels) or a pair,
    biases present or not; H and W from 1 (a map smaller than the kernel: padding covers it)."""
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    kh, kw = draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 3, 5]))
    pad = ((kh - 1) // 2, (kw - 1) // 2)
    padding = pad[0] if kh == kw and draw(st.booleans()) else pad
    bias = (draw(st.booleans()), draw(st.booleans()))
    scale = draw(st.sampled_from([0.1, 0.5, 1.0]))
    return dict(n=n, c=c, h=h, w=w, k=(kh, kw), bias=bias, scale=scale), padding


@settings(HYPOTHESIS_JAX, max_examples=25)
@given(cfg=block_configs(), seed=st.integers(0, 2**16))
@example(cfg=(dict(n=1, c=2, h=1, w=2, k=(5, 3), bias=(False, True), scale=1.0), (2, 1)), seed=0)
def test_property_block_matches_jax(cfg, seed):
    kwargs, padding = cfg
    x, w1, b1, w2, b2, dy, _ = _problem(seed=seed, **kwargs)
    _check_against_jax(x, w1, b1, w2, b2, dy, padding)


@settings(HYPOTHESIS, max_examples=30)
@given(cfg=block_configs(), seed=st.integers(0, 2**16))
def test_property_loop_forms_match_vectorised(cfg, seed):
    kwargs, padding = cfg
    x, w1, b1, w2, b2, dy, _ = _problem(seed=seed, **kwargs)
    y, cache = residual_block_forward(x, w1, b1, w2, b2, padding=padding)
    y_loop, cache_loop = residual_block_forward_loop(x, w1, b1, w2, b2, padding=padding)
    assert_close(y_loop, y)
    for a, b in zip(cache_loop[:-1], cache[:-1]):
        assert_close(a, b)
    for got, ref in zip(residual_block_backward_loop(dy, cache_loop), residual_block_backward(dy, cache)):
        assert_close(got, ref)
    # the loop backward takes the vectorised forward's cache as well (one cache type)
    for got, ref in zip(residual_block_backward_loop(dy, cache), residual_block_backward(dy, cache)):
        assert_close(got, ref)


def test_jax_oracle_is_self_consistent():
    # jax's forward- and reverse-mode derivatives of the oracle against its own finite differences
    # (away from the ReLU kinks, which random data avoids).
    import jax
    from jax.test_util import check_grads

    x, w1, b1, w2, b2, _, _ = _problem(n=1, c=2, h=4, w=3, seed=5)
    f = jax.jit(lambda *a: jrr.residual_block(*a, padding=1))
    check_grads(f, (x, w1, b1, w2, b2), order=1, modes=("fwd", "rev"), eps=1e-6)


# --- the sum rule, step by step ---------------------------------------------------------------


def test_input_gradient_is_skip_plus_branch():
    x, w1, b1, w2, b2, dy, padding = _problem(seed=1)
    y, cache = residual_block_forward(x, w1, b1, w2, b2, padding=padding)
    dx = residual_block_backward(dy, cache)[0]
    delta = dy * relu_prime(cache.s)  # what reaches x through the identity
    # the branch's share: the same chain without the skip term
    da1 = conv2d_backward(delta, cache.a1, w2, padding=padding)[0]
    dx_branch = conv2d_backward(da1 * relu_prime(cache.z1), x, w1, padding=padding)[0]
    np.testing.assert_array_equal(dx, delta + dx_branch)  # the same operations: bit for bit
    # and the forward's intermediate values are what the cache says
    assert_close(cache.z1, conv2d_forward(x, w1, b1, padding=padding))
    assert_close(cache.a1, relu(cache.z1))
    assert_close(cache.s, x + conv2d_forward(cache.a1, w2, b2, padding=padding))
    assert_close(y, relu(cache.s))


def test_zero_last_convolution_makes_the_block_the_identity_on_nonnegative_inputs():
    x, w1, b1, _, _, dy, padding = _problem(seed=2)
    x = relu(x)  # a block's input is usually the previous block's ReLU output
    w2, b2 = np.zeros_like(w1), np.zeros(3)
    y, cache = residual_block_forward(x, w1, b1, w2, b2, padding=padding)
    np.testing.assert_array_equal(y, x)
    dx, dw1, db1, dw2, db2 = residual_block_backward(dy, cache)
    np.testing.assert_array_equal(dx, dy * (x > 0))  # only the skip carries gradient, masked by relu'(s)
    np.testing.assert_array_equal(dw1, 0.0)  # w2 = 0 blocks the branch: the first kernels learn nothing yet
    np.testing.assert_array_equal(db1, 0.0)
    assert np.abs(dw2).max() > 0.1 and np.abs(db2).max() > 0.1  # the second ones do


def _stack_input_grad(x, params, g, residual):
    """∂E/∂x_0 of E = Σ g ⊙ (output of L blocks), from cnnref: residual blocks or plain ones."""
    caches = []
    for w1, b1, w2, b2 in params:
        if residual:
            x, cache = residual_block_forward(x, w1, b1, w2, b2)
        else:
            z1 = conv2d_forward(x, w1, b1, padding=1)
            z2 = conv2d_forward(relu(z1), w2, b2, padding=1)
            cache = (x, z1, z2)
            x = relu(z2)
        caches.append(cache)
    d = g
    for (w1, _, w2, _), cache in zip(params[::-1], caches[::-1]):
        if residual:
            d = residual_block_backward(d, cache)[0]
        else:
            x_in, z1, z2 = cache
            d = conv2d_backward(d * relu_prime(z2), relu(z1), w2, padding=1)[0]
            d = conv2d_backward(d * relu_prime(z1), x_in, w1, padding=1)[0]
    return d


def test_gradient_through_a_stack_matches_jax_and_survives_only_with_the_skips():
    rng = np.random.default_rng(3)
    c, depth = 4, 8
    he = np.sqrt(2 / (c * 9))
    params = [(0.5 * he * rng.standard_normal((c, c, 3, 3)), 0.1 * rng.standard_normal(c),
               0.5 * he * rng.standard_normal((c, c, 3, 3)), 0.1 * rng.standard_normal(c)) for _ in range(depth)]
    x, g = rng.standard_normal((2, c, 6, 6)), rng.standard_normal((2, c, 6, 6))
    res = _stack_input_grad(x, params, g, residual=True)
    plain = _stack_input_grad(x, params, g, residual=False)
    assert_close(res, jrr.stack_input_grad(x, params, g, residual=True))
    assert_close(plain, jrr.stack_input_grad(x, params, g, residual=False))
    # weights at half the He scale: each plain block shrinks the gradient; the skips keep it
    assert np.linalg.norm(res) > 0.3 * np.linalg.norm(g)
    assert np.linalg.norm(plain) < 1e-3 * np.linalg.norm(g)


# --- central differences and the adjoint identity -------------------------------------------------


def test_gradients_match_central_differences():
    x, w1, b1, w2, b2, dy, padding = _problem(n=1, c=2, h=4, w=4, seed=4)
    _, cache = residual_block_forward(x, w1, b1, w2, b2, padding=padding)
    # E = Σ dy ⊙ y is piecewise linear in each single coordinate, with kinks where z1 or s cross 0.
    # No pre-activation is within 1e-2 of 0, and a step of ε = 1e-5 in one coordinate moves every
    # pre-activation by less than 1e-4: the central difference is exact up to rounding,
    # ~1e-16 |E| / ε ≈ 1e-10 relative; 1e-8 is far above that and far below a wrong term.
    assert min(np.abs(cache.z1).min(), np.abs(cache.s).min()) > 1e-2
    args = dict(x=x, w1=w1, b1=b1, w2=w2, b2=b2)

    def loss(name):
        return lambda t: float(np.sum(dy * residual_block_forward(**{**args, name: t}, padding=padding)[0]))

    grads = dict(zip(["x", "w1", "b1", "w2", "b2"], residual_block_backward(dy, cache)))
    for name, value in args.items():
        num = numerical_gradient(loss(name), value, eps=1e-5)
        assert relative_error(grads[name], num) < 1e-8, name


def _block_jvp(cache, name, v):
    """The linearisation of the block at the cache's point, in the direction v of argument ``name``:
    forward mode, from cnnref's forward convolutions (no biases: the maps are linear in v)."""
    x, w1, w2, z1, a1, s, padding = cache
    d_s, d_z1 = relu_prime(s), relu_prime(z1)
    if name == "x":
        dz1, dz2_direct = conv2d_forward(v, w1, padding=padding), v
    elif name == "w1":
        dz1, dz2_direct = conv2d_forward(x, v, padding=padding), 0.0
    elif name == "b1":
        dz1, dz2_direct = np.broadcast_to(v[None, :, None, None], x.shape), 0.0
    else:
        dz1 = None
        dz2_direct = conv2d_forward(a1, v, padding=padding) if name == "w2" else np.broadcast_to(
            v[None, :, None, None], x.shape)
    branch = 0.0 if dz1 is None else conv2d_forward(d_z1 * dz1, w2, padding=padding)
    return d_s * (dz2_direct + branch)


@pytest.mark.parametrize("index, name", list(enumerate(["x", "w1", "b1", "w2", "b2"])))
def test_adjoint_identity(index, name):
    # <J v, u> = <v, Jᵀ u>: the backward, a linear map of dy at fixed cache, is the transpose of the
    # forward-mode linearisation. Both sides are sums of a few hundred products: ~1e-15 relative.
    x, w1, b1, w2, b2, _, padding = _problem(seed=6)
    _, cache = residual_block_forward(x, w1, b1, w2, b2, padding=padding)
    shapes = dict(x=x.shape, w1=w1.shape, b1=(3,), w2=w2.shape, b2=(3,))
    err = adjoint_test(lambda v: _block_jvp(cache, name, v),
                       lambda u: residual_block_backward(u, cache)[index],
                       shapes[name], x.shape, rng=np.random.default_rng(7))
    assert err < 1e-12


# --- planted wrong backward passes are caught ----------------------------------------------------


def _without_skip(dy, cache):
    """A wrong backward: the branch's share only, as if the block had no skip connection."""
    x, w1, w2, z1, a1, s, padding = cache
    delta = dy * relu_prime(s)
    da1, dw2, db2 = conv2d_backward(delta, a1, w2, padding=padding)
    dx, dw1, db1 = conv2d_backward(da1 * relu_prime(z1), x, w1, padding=padding)
    return dx, dw1, db1, dw2, db2


def _mask_of_the_branch(dy, cache):
    """A wrong backward: the last ReLU's derivative taken at z2 instead of at the sum s = x + z2."""
    return residual_block_backward(dy, cache._replace(s=cache.s - cache.x))


@pytest.mark.parametrize("wrong", [_without_skip, _mask_of_the_branch])
def test_planted_wrong_backward_is_caught(wrong):
    x, w1, b1, w2, b2, dy, padding = _problem(seed=8)
    ref = jrr.residual_block_vjp(x, w1, b1, w2, b2, dy, padding=padding)[1]
    _, cache = residual_block_forward(x, w1, b1, w2, b2, padding=padding)
    assert relative_error(residual_block_backward(dy, cache)[0], ref) < 1e-12
    assert relative_error(wrong(dy, cache)[0], ref) > 0.1
    with pytest.raises(AssertionError):
        assert_close(wrong(dy, cache)[0], ref)


# --- dtypes ---------------------------------------------------------------------------------------


def test_float32_is_kept_and_close_to_float64():
    x, w1, b1, w2, b2, dy, padding = _problem(seed=9)
    args32 = [a.astype(np.float32) for a in (x, w1, b1, w2, b2)]
    y32, cache32 = residual_block_forward(*args32, padding=padding)
    y, cache = residual_block_forward(*[a.astype(np.float64) for a in args32], padding=padding)
    assert y32.dtype == np.float32
    assert_close(y32, y, RTOL32)
    for forms in ((residual_block_backward, residual_block_backward), (residual_block_backward_loop,) * 2):
        for g32, g in zip(forms[0](dy.astype(np.float32), cache32), forms[1](dy.astype(np.float32), cache)):
            assert g32.dtype == np.float32
            assert_close(g32, g, RTOL32)  # float32 sums of a few dozen terms: ~1e-6 relative


def test_integer_inputs_are_promoted_to_float64():
    x = np.arange(2 * 2 * 3 * 3).reshape(2, 2, 3, 3) - 15
    w = np.ones((2, 2, 3, 3), dtype=int)
    y, cache = residual_block_forward(x, w, np.ones(2, dtype=int), -w, None)
    assert y.dtype == np.float64
    assert all(g.dtype == np.float64 for g in residual_block_backward(np.ones(x.shape, dtype=int), cache))


def test_inputs_are_not_modified():
    x, w1, b1, w2, b2, dy, padding = _problem(seed=10)
    copies = [a.copy() for a in (x, w1, b1, w2, b2, dy)]
    _, cache = residual_block_forward(x, w1, b1, w2, b2, padding=padding)
    residual_block_backward(dy, cache)
    residual_block_backward_loop(dy, cache)
    for a, c in zip((x, w1, b1, w2, b2, dy), copies):
        np.testing.assert_array_equal(a, c)


# --- bad input --------------------------------------------------------------------------------------

X, WK, B = np.ones((2, 3, 5, 4)), np.ones((3, 3, 3, 3)), np.ones(3)
FORWARDS = [residual_block_forward, residual_block_forward_loop]
BACKWARDS = [residual_block_backward, residual_block_backward_loop]


@pytest.mark.parametrize("f", FORWARDS)
@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((np.ones((3, 5, 4)), WK, B, WK, B), {}, ValueError, r"^x must be a 4-D array, got 3-D"),
    ((np.ones((0, 3, 5, 4)), WK, B, WK, B), {}, ValueError, r"^x must not be empty"),
    ((X.astype(bool), WK, B, WK, B), {}, TypeError, r"^x must be a real numeric array"),
    ((X, np.ones((4, 3, 3, 3)), B, WK, B), {}, ValueError,
     r"^w1 must have shape \(C, C, K_h, K_w\) with C=3, the channels of x .*got \(4, 3, 3, 3\)"),
    ((X, WK, B, np.ones((3, 2, 3, 3)), B), {}, ValueError,
     r"^w2 must have shape \(C, C, K_h, K_w\) with C=3.*got \(3, 2, 3, 3\)"),
    ((X, np.ones((3, 3, 2, 3)), B, WK, B), {}, ValueError,
     r"^w1 must have odd kernel sizes .*got K_h x K_w = 2 x 3"),
    ((X, WK, B, WK, B), dict(padding=0), ValueError,
     r"^padding must be \(K-1\)/2 per side = \(1, 1\) for the 3 x 3 kernels of w1.*got padding \(0, 0\)"),
    ((X, WK, B, np.ones((3, 3, 5, 5)), B), {}, ValueError,
     r"^padding must be \(K-1\)/2 per side = \(2, 2\) for the 5 x 5 kernels of w2"),
    ((X, WK, B, WK, B), dict(padding=(1, 2)), ValueError, r"^padding must be .* = \(1, 1\)"),
    ((X, WK, B, WK, B), dict(padding=-1), ValueError, r"^padding must be non-negative"),
    ((X, WK, B, WK, B), dict(padding=1.0), TypeError, r"^padding must be an int or a pair of ints"),
    ((X, WK, np.ones(4), WK, B), {}, ValueError, r"^b1 must have shape \(3,\) \(one bias per channel, C=3\)"),
    ((X, WK, B, WK, np.ones((3, 1))), {}, ValueError, r"^b2 must be a 1-D array"),
    ((X, WK, B, np.ones((3, 3, 3)), B), {}, ValueError, r"^w2 must be a 4-D array"),
])
def test_bad_forward_arguments(f, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        f(*args, **kwargs)


@pytest.mark.parametrize("f", BACKWARDS)
def test_bad_backward_arguments(f):
    _, cache = residual_block_forward(X, WK, B, WK, B)
    with pytest.raises(ValueError, match=r"^dy must have shape \(2, 3, 5, 4\) \(the shape of the block's output"):
        f(np.ones((2, 3, 4, 5)), cache)
    with pytest.raises(ValueError, match=r"^dy must be a 4-D array"):
        f(np.ones((2, 3, 20)), cache)
    with pytest.raises(TypeError, match=r"^cache must be the ResidualCache returned by residual_block_forward, "
                                        r"got tuple"):
        f(np.ones(X.shape), tuple(cache))
    with pytest.raises(TypeError, match=r"^dy must be a real numeric array"):
        f(np.ones(X.shape, dtype=complex), cache)
    assert isinstance(cache, ResidualCache)
