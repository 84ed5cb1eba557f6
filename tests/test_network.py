"""cnnref.network: the MATLAB-style network from cnnref's NCHW layers, and the maps between layouts.

Checked against ``jax.grad`` of the network written with ``cnnref.book.jaxref`` (lax convolution
and reduce_window pooling), and against :mod:`cnnref.teaching.matlab_net` after mapping the parameters
with :func:`cnnref.network.from_matlab` (every gradient equal).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnref.book import jaxref as jr
from cnnref.teaching import matlab_net as mn
from cnnref import network as nw
from helpers import assert_close

POOLS = (2, 2)


def _setup(seed=0, n=4, n_out=3):
    rng = np.random.default_rng(seed)
    mparams = mn.init_params(rng, (12, 12), channels=(2, 3), kernels=(3, 2), pools=POOLS, n_out=n_out)
    for v in mparams.values():
        v += 0.1 * rng.standard_normal(v.shape)
    x = rng.random((12, 12, n))
    t = rng.random((n_out, n))
    return mparams, x, t


def _jax_loss(p, x, t):
    h = x
    for s in (1, 2):
        h = jr.avgpool2d(jax.nn.sigmoid(jr.conv2d(h, p[f"w{s}"], p[f"b{s}"])), 2)
    o = jax.nn.sigmoid(jr.dense(h.reshape(h.shape[0], -1), p["W"], p["c"]))
    return jr.half_squared_error(o, t, reduction="mean")


def test_gradients_match_jax_grad():
    mparams, x, t = _setup()
    params = nw.from_matlab(mparams, (12, 12), POOLS)
    xn, tn = nw.stack_to_nchw(x), t.T
    E, grads = nw.loss_and_grads(params, xn, tn, POOLS)
    jp = {k: jnp.asarray(v) for k, v in params.items()}
    assert abs(E - float(_jax_loss(jp, xn, tn))) <= 1e-13 * E
    want = jax.grad(_jax_loss)(jp, jnp.asarray(xn), jnp.asarray(tn))
    assert set(grads) == set(params)
    for key in params:
        assert_close(grads[key], np.asarray(want[key]))


def test_same_loss_and_gradients_as_the_matlab_form():
    mparams, x, t = _setup(seed=5)
    E_m, g_m = mn.loss_and_grads(mparams, x, t, POOLS)
    params = nw.from_matlab(mparams, (12, 12), POOLS)
    E_n, g_n = nw.loss_and_grads(params, nw.stack_to_nchw(x), t.T, POOLS)
    assert abs(E_m - E_n) <= 1e-14 * E_m
    back = nw.to_matlab(g_n, (12, 12), POOLS)
    for key in mparams:
        assert_close(back[key], g_m[key])


def test_without_the_permutation_the_networks_differ():
    mparams, x, t = _setup(seed=6)
    params = nw.from_matlab(mparams, (12, 12), POOLS)
    unpermuted = {**params, "W": mparams["ffW"]}
    o_good, _ = nw.forward(params, nw.stack_to_nchw(x), POOLS)
    o_bad, _ = nw.forward(unpermuted, nw.stack_to_nchw(x), POOLS)
    o_m, _ = mn.forward(mparams, x, POOLS)
    assert_close(o_good, o_m.T)
    assert np.max(np.abs(o_bad - o_m.T)) > 1e-4


def test_fv_permutation_is_the_column_major_position():
    C, h, w = 2, 2, 3
    maps = [np.arange(c * 6, c * 6 + 6, dtype=float).reshape(h, w, 1) for c in range(C)]
    fv = mn.flatten_columns(maps)[:, 0]                     # MATLAB order
    f_c = np.stack([m[:, :, 0] for m in maps]).reshape(-1)  # numpy C-order
    perm = nw.fv_permutation(C, h, w)
    np.testing.assert_array_equal(f_c, fv[perm])
    assert sorted(perm.tolist()) == list(range(C * h * w))


def test_parameter_maps_round_trip_and_flip_the_kernels():
    mparams, _, _ = _setup()
    params = nw.from_matlab(mparams, (12, 12), POOLS)
    assert params["w1"].shape == (2, 1, 3, 3) and params["w2"].shape == (3, 2, 2, 2)
    np.testing.assert_array_equal(params["w2"][1, 0], mparams["k2"][0, 1][::-1, ::-1])
    back = nw.to_matlab(params, (12, 12), POOLS)
    for key in mparams:
        np.testing.assert_array_equal(back[key], mparams[key])


def test_stack_conversions():
    x = np.arange(24.0).reshape(2, 3, 4)
    xn = nw.stack_to_nchw(x)
    assert xn.shape == (4, 1, 2, 3)
    np.testing.assert_array_equal(xn[2, 0], x[:, :, 2])
    np.testing.assert_array_equal(nw.nchw_to_stack(xn), x)
    with pytest.raises(ValueError, match="single channel"):
        nw.nchw_to_stack(np.ones((2, 2, 3, 3)))


def test_bad_inputs_raise():
    mparams, x, t = _setup()
    params = nw.from_matlab(mparams, (12, 12), POOLS)
    with pytest.raises(ValueError, match="one factor per stage"):
        nw.forward(params, nw.stack_to_nchw(x), (2,))
    with pytest.raises(ValueError, match="missing"):
        nw.stages({"w1": 1})
    with pytest.raises(TypeError, match="dict"):
        nw.stages([1])
    with pytest.raises(ValueError, match="ffW"):
        nw.from_matlab({**mparams, "ffW": mparams["ffW"][:, :5]}, (12, 12), POOLS)
    with pytest.raises(ValueError, match=">= 1"):
        nw.fv_permutation(0, 2, 2)
