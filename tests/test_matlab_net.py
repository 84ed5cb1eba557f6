"""cnnref.teaching.matlab_net: the classic MATLAB-style CNN in source 004's form (H×W×N stacks).

Checked against an independent jax version of the same network written with
``jax.scipy.signal.convolve`` on the stacks (``jax.grad`` of the whole loss), against
central differences, and piece by piece against explicit sums.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnref.book import jaxref as jr  # noqa: F401  (float64 in jax, CPU only)
from cnnref import avgpool2d_forward
from cnnref.teaching import matlab_net as mn
from cnnref.gradcheck import numerical_gradient
from helpers import assert_close

POOLS = (2, 2)


def _setup(seed=0, n=4, n_out=3):
    rng = np.random.default_rng(seed)
    params = mn.init_params(rng, (12, 12), channels=(2, 3), kernels=(3, 2), pools=POOLS, n_out=n_out)
    for v in params.values():
        v += 0.1 * rng.standard_normal(v.shape)   # non-zero biases too
    x = rng.random((12, 12, n))
    t = rng.random((n_out, n))
    return params, x, t


def _jax_loss(p, x, t):
    """The same network, written directly in jax on (H, W, N) stacks."""
    maps = [x]
    for s in (1, 2):
        k, b = p[f"k{s}"], p[f"b{s}"]
        z = [b[j] + sum(jax.scipy.signal.convolve(maps[i], k[i, j][:, :, None], mode="valid")
                        for i in range(k.shape[0])) for j in range(k.shape[1])]
        a = [jax.nn.sigmoid(zj) for zj in z]
        maps = [aj.reshape(aj.shape[0] // 2, 2, aj.shape[1] // 2, 2, -1).mean(axis=(1, 3)) for aj in a]
    h, w, n = maps[0].shape
    fv = jnp.concatenate([m.transpose(1, 0, 2).reshape(h * w, n) for m in maps], axis=0)  # column-major
    o = jax.nn.sigmoid(p["ffW"] @ fv + p["ffb"][:, None])
    return 0.5 * jnp.sum((o - t) ** 2) / n


def test_loss_matches_jax():
    params, x, t = _setup()
    want = float(_jax_loss({k: jnp.asarray(v) for k, v in params.items()}, jnp.asarray(x), jnp.asarray(t)))
    assert abs(mn.loss(params, x, t, POOLS) - want) <= 1e-13 * abs(want)


def test_every_gradient_matches_jax_grad():
    params, x, t = _setup()
    E, grads = mn.loss_and_grads(params, x, t, POOLS)
    want = jax.grad(_jax_loss)({k: jnp.asarray(v) for k, v in params.items()}, jnp.asarray(x), jnp.asarray(t))
    assert set(grads) == set(params)
    for key in params:
        assert grads[key].shape == params[key].shape
        assert_close(grads[key], np.asarray(want[key]))


def test_gradients_match_central_differences():
    params, x, t = _setup(seed=1, n=2)
    _, grads = mn.loss_and_grads(params, x, t, POOLS)
    for key in ("k1", "b2", "ffW"):
        def f(v, key=key):
            return mn.loss({**params, key: v}, x, t, POOLS)
        num = numerical_gradient(f, params[key], eps=1e-5)
        # central differences: truncation O(eps^2) ~ 1e-10 plus rounding ~1e-16/eps ~ 1e-11
        assert_close(grads[key], num, rtol=1e-7)


def test_stored_deltas_are_pre_activation_deltas():
    # [eq-wn-deltas]: the deltas d{s} that backward stores are ∂(N·E)/∂z (summed loss), i.e.
    # the source's ∂E/∂a times σ'(z); checked against jax.grad with respect to z2
    params, x, t = _setup(seed=3)
    o, cache = mn.forward(params, x, POOLS)
    mn.backward(params, cache, t, POOLS)
    z2 = np.stack(cache["z2"])
    n = x.shape[2]

    def tail(z2_, via_a=False):
        a = z2_ if via_a else jax.nn.sigmoid(z2_)
        pooled = a.reshape(3, 2, 2, 2, 2, n).mean(axis=(2, 4))
        fv = jnp.concatenate([pooled[c].transpose(1, 0, 2).reshape(4, n) for c in range(3)], axis=0)
        out = jax.nn.sigmoid(jnp.asarray(params["ffW"]) @ fv + jnp.asarray(params["ffb"])[:, None])
        return 0.5 * jnp.sum((out - t) ** 2)          # the summed loss

    dz = np.asarray(jax.grad(tail)(jnp.asarray(z2)))
    a2 = 1 / (1 + np.exp(-z2))
    da = np.asarray(jax.grad(lambda v: tail(v, via_a=True))(jnp.asarray(a2)))
    assert_close(np.stack(cache["d2"]), dz)
    assert_close(da * a2 * (1 - a2), dz)
    assert np.max(np.abs(da - dz)) > 1e-2 * np.max(np.abs(dz))


def test_conv_layer_is_the_explicit_sum():
    rng = np.random.default_rng(2)
    maps = [rng.standard_normal((5, 4, 2)) for _ in range(2)]
    k, b = rng.standard_normal((2, 3, 2, 3)), rng.standard_normal(3)
    z = mn.conv_layer(maps, k, b)
    for j in range(3):
        want = np.full((4, 2, 2), b[j])
        for i in range(2):
            for p in range(4):
                for q in range(2):
                    for u in range(2):
                        for v in range(3):   # convolution: the kernel index runs against the input index
                            want[p, q] += maps[i][p + 1 - u, q + 2 - v] * k[i, j, u, v]
        assert_close(z[j], want)


def test_mean_pool_and_its_backward():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((6, 4, 3))
    pooled = mn.mean_pool(a, 2)
    assert_close(pooled, avgpool2d_forward(a.transpose(2, 0, 1)[:, None], 2)[:, 0].transpose(1, 2, 0))
    d = rng.standard_normal(pooled.shape)
    want = np.asarray(jax.vjp(lambda v: v.reshape(3, 2, 2, 2, 3).mean(axis=(1, 3)), jnp.asarray(a))[1](jnp.asarray(d))[0])
    assert_close(mn.mean_pool_backward(d, 2), want)
    with pytest.raises(ValueError, match="divide"):
        mn.mean_pool(rng.standard_normal((5, 4, 1)), 2)


def test_flatten_columns_is_matlab_column_major():
    maps = [np.arange(6.0).reshape(2, 3, 1), 10 + np.arange(6.0).reshape(2, 3, 1)]
    fv = mn.flatten_columns(maps)
    # MATLAB a(:) runs down each column: a(1,1), a(2,1), a(1,2), ...
    np.testing.assert_array_equal(fv[:, 0], [0, 3, 1, 4, 2, 5, 10, 13, 11, 14, 12, 15])
    back = mn.unflatten_columns(fv, (2, 3, 1))
    for m, b in zip(maps, back):
        np.testing.assert_array_equal(m, b)
    with pytest.raises(ValueError, match="C·h·w"):
        mn.unflatten_columns(np.ones((7, 1)), (2, 3, 1))


def test_forward_cache_shapes():
    params, x, t = _setup()
    o, cache = mn.forward(params, x, POOLS)
    assert o.shape == (3, 4)
    assert cache["z1"][0].shape == (10, 10, 4) and len(cache["z1"]) == 2
    assert cache["p1"][0].shape == (5, 5, 4)
    assert cache["z2"][0].shape == (4, 4, 4) and len(cache["p2"]) == 3
    assert cache["fv"].shape == (12, 4)


def test_bad_inputs_raise():
    params, x, t = _setup()
    with pytest.raises(ValueError, match="one factor per stage"):
        mn.forward(params, x, (2,))
    with pytest.raises(ValueError, match="missing"):
        mn.forward({"k1": params["k1"]}, x, (2,))
    with pytest.raises(ValueError, match="3-D"):
        mn.forward(params, x[:, :, 0], POOLS)
    with pytest.raises(ValueError, match="n_out, N"):
        mn.loss(params, x, t.T, POOLS)
    with pytest.raises(ValueError, match="divide"):
        mn.init_params(np.random.default_rng(0), (11, 11), (2,), (3,), (2,), 2)
    with pytest.raises(TypeError, match="Generator"):
        mn.init_params(0, (12, 12), (2,), (3,), (2,), 2)
    with pytest.raises(ValueError, match="C_in"):
        mn.conv_layer([x], params["k2"], params["b2"])
