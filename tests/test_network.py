"""cnnref.network: the one network, S stages of (conv with zero padding → φ → pool), flatten, dense.

Every configuration's backward pass is checked against ``jax.grad`` of an independent forward written
from ``cnnref.book.jaxref``'s jax primitives (lax convolution, reduce_window pooling, jax.nn), to
1e-12 of the largest entry in float64:

* the digits CNN of the training chapter (the defaults: two 3 × 3 stages, padding 1, 2 × 2 pooling),
  both losses ("ce": ReLU, max pooling, softmax cross-entropy; "sse": sigmoid, mean pooling,
  ½-squared error), plus its shapes, seeded initialisation, central differences and the checks
  of every argument;
* a three-stage network with a kernel, a padding and a pooling window of its own per stage
  (one stage without pooling, pooling that drops a remainder), both losses;
* the sources' MATLAB-style network (sigmoid, mean pooling, no padding, sse with real targets),
  also against :mod:`cnnref.teaching.matlab_net` after mapping the parameters with
  :func:`cnnref.network.from_matlab` (every gradient equal), and the maps between the two layouts.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnref import network as nw
from cnnref.book import jaxref as jr
from cnnref.data import IMAGE_SHAPE, one_hot
from cnnref.teaching import matlab_net as mn
from helpers import assert_close

POOLS = (2, 2)
DIGITS_NAMES = ("w1", "b1", "w2", "b2", "W", "c")
# The three-stage network: in (2, 12, 12) → 3 maps 12×12 (3×3, pad 1, no pooling) → 4 maps 11×11
# (2×2, pad 0) pooled to 5×5 (one row and column dropped) → 2 maps 5×5 (3×3, pad 1) pooled to 2×2
# → D = 8 → 5 outputs.
DEEP = dict(in_shape=(2, 12, 12), channels=(3, 4, 2), kernel=(3, 2, 3), padding=(1, 0, 1), pool=(1, 2, 2), n_out=5)
DEEP_SHAPES = {"w1": (3, 2, 3, 3), "b1": (3,), "w2": (4, 3, 2, 2), "b2": (4,), "w3": (2, 4, 3, 3), "b3": (2,),
               "W": (5, 8), "c": (5,)}


def _jx(p):
    return {k: jnp.asarray(v) for k, v in p.items()}


# --- independent forwards in jax ---------------------------------------------------------------


def jax_net_loss(p, x, target, loss, padding, pool):
    """Batch-mean loss of an S-stage network from jax primitives only; padding, pool: one per stage.

    ``target``: labels for "ce"; (N, n_out) targets for "sse".
    """
    phi, pool_f = (jr.relu, jr.maxpool2d) if loss == "ce" else (jr.sigmoid, jr.avgpool2d)
    h = x
    for s, (pd, pl) in enumerate(zip(padding, pool), start=1):
        h = pool_f(phi(jr.conv2d(h, p[f"w{s}"], p[f"b{s}"], padding=pd)), pl)
    s_out = jr.dense(h.reshape(h.shape[0], -1), p["W"], p["c"])
    if loss == "ce":
        return jr.softmax_cross_entropy(s_out, target, reduction="mean")
    return jr.half_squared_error(jr.sigmoid(s_out), target, reduction="mean")


def jax_loss(p, x, y, loss):
    """The digits CNN (the defaults of cnnref.network) from jax primitives, for integer labels y."""
    target = y if loss == "ce" else jnp.asarray(one_hot(y))
    return jax_net_loss(p, x, target, loss, (1, 1), (2, 2))


def _jax_loss(p, x, t):
    """The MATLAB-style network of ``_setup``: no padding, sigmoid, 2 × 2 mean pooling, sse with real t."""
    h = x
    for s in (1, 2):
        h = jr.avgpool2d(jax.nn.sigmoid(jr.conv2d(h, p[f"w{s}"], p[f"b{s}"])), 2)
    o = jax.nn.sigmoid(jr.dense(h.reshape(h.shape[0], -1), p["W"], p["c"]))
    return jr.half_squared_error(o, t, reduction="mean")


# --- the MATLAB-style network and the maps between the layouts ----------------------------------


def _setup(seed=0, n=4, n_out=3):
    rng = np.random.default_rng(seed)
    mparams = mn.init_params(rng, (12, 12), channels=(2, 3), kernels=(3, 2), pools=POOLS, n_out=n_out)
    for v in mparams.values():
        v += 0.1 * rng.standard_normal(v.shape)
    x = rng.random((12, 12, n))
    t = rng.random((n_out, n))
    return mparams, x, t


MATLAB = dict(loss="sse", padding=0, pool=POOLS)


def test_gradients_match_jax_grad():
    mparams, x, t = _setup()
    params = nw.from_matlab(mparams, (12, 12), POOLS)
    xn, tn = nw.stack_to_nchw(x), t.T
    E, grads = nw.loss_and_grads(params, xn, tn, **MATLAB)
    jp = _jx(params)
    assert abs(E - float(_jax_loss(jp, xn, tn))) <= 1e-13 * E
    want = jax.grad(_jax_loss)(jp, jnp.asarray(xn), jnp.asarray(tn))
    assert set(grads) == set(params)
    for key in params:
        assert_close(grads[key], np.asarray(want[key]))


def test_same_loss_and_gradients_as_the_matlab_form():
    mparams, x, t = _setup(seed=5)
    E_m, g_m = mn.loss_and_grads(mparams, x, t, POOLS)
    params = nw.from_matlab(mparams, (12, 12), POOLS)
    E_n, g_n = nw.loss_and_grads(params, nw.stack_to_nchw(x), t.T, **MATLAB)
    assert abs(E_m - E_n) <= 1e-14 * E_m
    back = nw.to_matlab(g_n, (12, 12), POOLS)
    for key in mparams:
        assert_close(back[key], g_m[key])


def test_without_the_permutation_the_networks_differ():
    mparams, x, t = _setup(seed=6)
    params = nw.from_matlab(mparams, (12, 12), POOLS)
    unpermuted = {**params, "W": mparams["ffW"]}
    o_good, _ = nw.forward(params, nw.stack_to_nchw(x), **MATLAB)
    o_bad, _ = nw.forward(unpermuted, nw.stack_to_nchw(x), **MATLAB)
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
    with pytest.raises(ValueError, match=re.escape("pool must be a sequence of 2 ints (one entry per stage), "
                                                   "got (2,)")):
        nw.forward(params, nw.stack_to_nchw(x), loss="sse", padding=0, pool=(2,))
    with pytest.raises(ValueError, match="missing"):
        nw.stages({"w1": 1})
    with pytest.raises(TypeError, match="dict"):
        nw.stages([1])
    with pytest.raises(ValueError, match="ffW"):
        nw.from_matlab({**mparams, "ffW": mparams["ffW"][:, :5]}, (12, 12), POOLS)
    with pytest.raises(ValueError, match=">= 1"):
        nw.fv_permutation(0, 2, 2)


def test_matlab_net_stages_still_raises_its_clear_error():
    """matlab_net.stages delegates to network.stages with the MATLAB names k1 …, ffW, ffb."""
    mparams, _, _ = _setup()
    assert mn.stages(mparams) == 2
    with pytest.raises(ValueError, match=re.escape("params must hold k1, b1, …, kS, bS, ffW, ffb (S >= 1); "
                                                   "missing ['b1', 'ffW', 'ffb'], given keys ['k1']")):
        mn.stages({"k1": mparams["k1"]})
    with pytest.raises(ValueError, match=re.escape("missing ['k1', 'ffW', 'ffb'], given keys []")):
        mn.stages({})
    with pytest.raises(ValueError, match=re.escape("missing ['ffb']")):
        mn.stages({k: v for k, v in mparams.items() if k != "ffb"})
    # the NCHW names are not the MATLAB ones
    with pytest.raises(ValueError, match=re.escape("missing ['k1', 'ffW', 'ffb']")):
        mn.stages(nw.from_matlab(mparams, (12, 12), POOLS))
    with pytest.raises(TypeError, match="params must be a dict of arrays, got list"):
        mn.stages([mparams])


# --- the digits CNN: the defaults --------------------------------------------------------------


def _batch(n=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 1, 8, 8))
    y = rng.integers(0, 10, n)
    return x, y


def _perturbed(loss, seed=0):
    """Parameters with non-zero biases, so that bias paths are exercised too."""
    rng = np.random.default_rng(100 + seed)
    p = nw.init_params(IMAGE_SHAPE, seed=seed, loss=loss)
    return {k: v + (0.1 * rng.standard_normal(v.shape) if v.ndim == 1 else 0.0) for k, v in p.items()}


def test_digits_param_shapes_and_forward_shapes():
    shapes = nw.param_shapes(IMAGE_SHAPE, (4, 6))
    assert shapes == {"w1": (4, 1, 3, 3), "b1": (4,), "w2": (6, 4, 3, 3), "b2": (6,), "W": (10, 24), "c": (10,)}
    assert tuple(shapes) == nw.param_names(2) == DIGITS_NAMES
    p = nw.init_params(IMAGE_SHAPE, (4, 6))
    assert {k: v.shape for k, v in p.items()} == shapes
    assert nw.param_shapes(IMAGE_SHAPE)["W"] == (10, 128)  # default channels (16, 32)
    x, _ = _batch(5)
    out, cache = nw.forward(p, x)
    assert out.shape == (5, 10)
    expected = dict(z1=(5, 4, 8, 8), a1=(5, 4, 8, 8), p1=(5, 4, 4, 4), z2=(5, 6, 4, 4), a2=(5, 6, 4, 4),
                    p2=(5, 6, 2, 2), f=(5, 24), s=(5, 10))
    assert {k: cache[k].shape for k in expected} == expected


def test_digits_init_is_seeded_and_he_scaled():
    a, b, c = (nw.init_params(IMAGE_SHAPE, seed=s) for s in (0, 0, 1))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["w2"], c["w2"])
    for k in ("b1", "b2", "c"):
        assert not a[k].any()
    # std of 4608 draws of N(0, 2/144): within 5 % of sqrt(2/144) (5 % ≈ 5 standard errors of the std)
    assert abs(a["w2"].std() / np.sqrt(2 / 144) - 1) < 0.05
    s = nw.init_params(IMAGE_SHAPE, loss="sse")
    assert abs(s["w2"].std() / np.sqrt(32 / (144 + 288)) - 1) < 0.05


@pytest.mark.parametrize("loss", nw.LOSSES)
def test_digits_init_draws_in_the_order_of_param_names(loss):
    """The draws, written out: one generator, w1 then w2 then W, scaled; so a seed gives the same
    start as before the network became general (training results and the book's numbers stay)."""
    rng = np.random.default_rng(7)
    fans = {"w1": (9, 16 * 9), "w2": (16 * 9, 32 * 9), "W": (128, 10)}
    shapes = {"w1": (16, 1, 3, 3), "w2": (32, 16, 3, 3), "W": (10, 128)}
    want = {}
    for k in ("w1", "w2", "W"):
        fan_in, fan_out = fans[k]
        var = 2 / fan_in if loss == "ce" else 32 / (fan_in + fan_out)
        want[k] = rng.standard_normal(shapes[k]) * np.sqrt(var)
    got = nw.init_params(IMAGE_SHAPE, (16, 32), seed=7, loss=loss)
    assert tuple(got) == DIGITS_NAMES
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])


@pytest.mark.parametrize("loss", nw.LOSSES)
def test_digits_loss_matches_the_jax_forward(loss):
    p = _perturbed(loss)
    x, y = _batch()
    out, _ = nw.forward(p, x, loss=loss)
    e = nw.loss_value(out, y, loss=loss)
    e_ref = float(jax_loss(_jx(p), jnp.asarray(x), jnp.asarray(y), loss))
    assert abs(e - e_ref) <= 1e-12 * abs(e_ref)
    # the book's digits CNN in jaxref (cnn_forward) is the same network with the same names
    assert_close(out, np.asarray(jr.cnn_forward(_jx(p), jnp.asarray(x), loss)))


@pytest.mark.parametrize("loss", nw.LOSSES)
@pytest.mark.parametrize("seed", [0, 1])
def test_digits_backward_matches_jax_grad(loss, seed):
    """Every parameter's gradient against jax.grad, to 1e-12 of the largest entry (summation order only)."""
    p = _perturbed(loss, seed)
    x, y = _batch(7, seed)
    _, grads = nw.loss_and_grads(p, x, y, loss=loss)
    ref = jax.grad(jax_loss)(_jx(p), jnp.asarray(x), jnp.asarray(y), loss)
    assert tuple(grads) == DIGITS_NAMES
    for k in DIGITS_NAMES:
        assert grads[k].shape == p[k].shape
        assert_close(grads[k], np.asarray(ref[k]))


def test_digits_backward_matches_central_differences_for_the_smooth_network():
    """The sigmoid network is smooth: (E(θ+h) − E(θ−h)) / 2h agrees to ~h² ≈ 1e-10 relative, here 1e-6."""
    p = _perturbed("sse")
    x, y = _batch(4)
    _, grads = nw.loss_and_grads(p, x, y, loss="sse")
    rng = np.random.default_rng(7)
    h = 1e-5
    for k in DIGITS_NAMES:
        for _ in range(2):
            idx = tuple(int(rng.integers(0, n)) for n in p[k].shape)
            plus = {n: v.copy() for n, v in p.items()}
            minus = {n: v.copy() for n, v in p.items()}
            plus[k][idx] += h
            minus[k][idx] -= h
            fd = (nw.loss_value(nw.forward(plus, x, loss="sse")[0], y, loss="sse")
                  - nw.loss_value(nw.forward(minus, x, loss="sse")[0], y, loss="sse")) / (2 * h)
            assert abs(fd - grads[k][idx]) <= 1e-6 * max(abs(fd), 1e-3), (k, idx, fd, grads[k][idx])


def test_digits_a_wrong_gradient_would_be_caught():
    """The jax comparison has teeth: dropping φ' in the first layer changes dw1 by far more than 1e-12."""
    p = _perturbed("ce")
    x, y = _batch()
    out, cache = nw.forward(p, x)
    cache = dict(cache, z1=np.ones_like(cache["z1"]))  # relu'(1) = 1 everywhere: φ' ignored
    wrong = nw.backward(p, cache, nw.loss_grad(out, y))
    ref = jax.grad(jax_loss)(_jx(p), jnp.asarray(x), jnp.asarray(y), "ce")
    with pytest.raises(AssertionError):
        assert_close(wrong["w1"], np.asarray(ref["w1"]))


def test_digits_predict_accuracy_and_evaluate_agree():
    p = nw.init_params(IMAGE_SHAPE)
    x, y = _batch(20)
    pred = nw.predict(p, x, batch_size=7)
    np.testing.assert_array_equal(pred, np.argmax(nw.forward(p, x)[0], axis=1))
    acc = nw.accuracy(p, x, y)
    assert acc == np.mean(pred == y)
    loss, acc2 = nw.evaluate(p, x, y, batch_size=6)
    assert acc2 == acc
    assert abs(loss - nw.loss_value(nw.forward(p, x)[0], y)) <= 1e-12 * loss


def test_digits_rejects_bad_inputs():
    p = nw.init_params(IMAGE_SHAPE)
    x, y = _batch()
    # images of another size give other last maps, which W does not fit
    with pytest.raises(ValueError, match=re.escape("params['W'] must have one column per feature of the last "
                                                   "maps (32, 1, 2), D = 64; got shape (10, 128)")):
        nw.forward(p, x[:, :, :7])
    with pytest.raises(ValueError, match=re.escape("channel mismatch: x has C_in=2")):
        nw.forward(p, np.concatenate([x, x], axis=1))
    with pytest.raises(ValueError, match=re.escape("missing ['c']")):
        nw.forward({k: v for k, v in p.items() if k != "c"}, x)
    with pytest.raises(ValueError, match=re.escape("params['W'] must have one column per feature of the last "
                                                   "maps (32, 2, 2), D = 128; got shape (10, 3)")):
        nw.forward(dict(p, W=np.zeros((10, 3))), x)
    with pytest.raises(ValueError, match="loss must be one of 'ce', 'sse'"):
        nw.forward(p, x, loss="mse")
    with pytest.raises(TypeError, match="params must be a dict"):
        nw.forward([p], x)
    with pytest.raises(ValueError, match="x must be a 4-D array"):
        nw.forward(p, x[0])
    out, cache = nw.forward(p, x)
    with pytest.raises(ValueError, match="dout must have the shape of the network output"):
        nw.backward(p, cache, out[:, :3])
    with pytest.raises(ValueError, match=re.escape("channels must be a non-empty tuple (C_1, …, C_S)")):
        nw.param_shapes(IMAGE_SHAPE, ())
    with pytest.raises(ValueError, match=re.escape("channels must be a non-empty tuple (C_1, …, C_S)")):
        nw.param_shapes(IMAGE_SHAPE, 16)
    with pytest.raises(ValueError, match=re.escape("in_shape must be a sequence of 3 ints ((C, H, W) of one example)")):
        nw.param_shapes((8, 8), (4, 6))


def test_digits_forward_cache_has_the_documented_keys():
    _, cache = nw.forward(nw.init_params(IMAGE_SHAPE), _batch(2)[0])
    assert tuple(cache) == ("loss", "padding", "pool", "x", "z1", "a1", "p1", "z2", "a2", "p2", "f", "s")
    assert (cache["loss"], cache["padding"], cache["pool"]) == ("ce", (1, 1), (2, 2))


@pytest.mark.parametrize("f", [nw.predict, nw.evaluate])
@pytest.mark.parametrize("batch_size, exc, match", [
    (0, ValueError, "batch_size must be a positive int, got 0"),
    (-5, ValueError, "batch_size must be a positive int, got -5"),
    (2.0, TypeError, "batch_size must be an int, got 2.0"),
    (True, TypeError, "batch_size must be an int, got True"),
    ("8", TypeError, "batch_size must be an int"),
])
def test_predict_and_evaluate_check_batch_size(f, batch_size, exc, match):
    p = nw.init_params(IMAGE_SHAPE)
    x, y = _batch(5)
    args = (p, x) if f is nw.predict else (p, x, y)
    with pytest.raises(exc, match=match):
        f(*args, batch_size=batch_size)


@pytest.mark.parametrize("f", [nw.accuracy, nw.evaluate])
@pytest.mark.parametrize("bad_y, exc, match", [
    (lambda y: y[:-1], ValueError, r"y must have shape \(N,\) = \(6,\), got \(5,\)"),   # would be ignored in chunks
    (lambda y: np.concatenate([y, y]), ValueError, r"got \(12,\)"),
    (lambda y: y[0], ValueError, r"got \(\)"),                                             # a scalar would broadcast
    (lambda y: y.astype(float), TypeError, "y must be an integer array"),
    (lambda y: y + 10, ValueError, r"y must lie in \[0, 9\]"),
])
def test_accuracy_and_evaluate_check_the_labels(f, bad_y, exc, match):
    p = nw.init_params(IMAGE_SHAPE)
    x, y = _batch(6)
    with pytest.raises(exc, match=match):
        f(p, x, bad_y(y), **({"batch_size": 4} if f is nw.evaluate else {}))


@pytest.mark.parametrize("f", [nw.forward, nw.predict, nw.accuracy, nw.evaluate])
def test_an_empty_batch_is_rejected(f):
    p = nw.init_params(IMAGE_SHAPE)
    args = (p, np.zeros((0, 1, 8, 8))) + (() if f in (nw.forward, nw.predict) else (np.zeros(0, int),))
    with pytest.raises(ValueError, match=r"x must hold at least one example, got shape \(0, 1, 8, 8\)"):
        f(*args)


@pytest.mark.parametrize("f", [nw.loss_value, nw.loss_grad])
@pytest.mark.parametrize("loss", nw.LOSSES)
def test_loss_value_and_grad_check_out_and_y(f, loss):
    out, y = np.zeros((4, 10)), np.array([0, 1, 2, 3])
    with pytest.raises(ValueError, match="out must be a 2-D array"):
        f(out[0], y, loss=loss)
    with pytest.raises(TypeError, match="out must be a real numeric array"):
        f(out.astype(bool), y, loss=loss)
    with pytest.raises(ValueError, match=r"target must have shape \(N,\) = \(4,\)"):
        f(out, y[:3], loss=loss)
    with pytest.raises(ValueError, match=r"target must lie in \[0, 9\]"):
        f(out, np.array([0, 1, 2, 10]), loss=loss)
    with pytest.raises(TypeError, match="target must be an integer array of class indices"):
        f(out, y.astype(float), loss=loss)
    with pytest.raises(ValueError, match="loss must be one of"):
        f(out, y, loss="mse")
    if loss == "sse":   # real targets: one row per row of out
        with pytest.raises(ValueError, match=re.escape("target must have shape (4, 10) (one row of targets per "
                                                       "row of out), got (3, 10)")):
            f(out, one_hot(y)[:3], loss=loss)
        with pytest.raises(TypeError, match="target must be a real numeric array"):
            f(out, one_hot(y).astype(bool), loss=loss)
    else:               # cross-entropy takes labels only, not one-hot rows
        with pytest.raises(TypeError, match="target must be an integer array of class indices"):
            f(out, one_hot(y), loss=loss)


def test_backward_checks_the_cache():
    p = nw.init_params(IMAGE_SHAPE)
    x, y = _batch(3)
    out, cache = nw.forward(p, x)
    dout = nw.loss_grad(out, y)
    with pytest.raises(TypeError, match=r"cache must be the dict that forward returned, .* got tuple"):
        nw.backward(p, tuple(cache.values()), dout)
    with pytest.raises(TypeError, match=r"cache must be the dict that forward returned, .* got a dict with the keys"):
        nw.backward(p, {k: v for k, v in cache.items() if k != "f"}, dout)
    # the cache of a two-stage network does not serve a three-stage one
    p3 = nw.init_params(IMAGE_SHAPE, (4, 4, 4))
    with pytest.raises(TypeError, match=r"cache must be the dict that forward returned, with the keys .*'z3'"):
        nw.backward(p3, cache, dout)


def test_backward_trace_keeps_every_intermediate_gradient():
    p = nw.init_params(IMAGE_SHAPE)
    x, y = _batch(3)
    out, cache = nw.forward(p, x)
    dout = nw.loss_grad(out, y)
    trace = {}
    grads = nw.backward(p, cache, dout, trace=trace)
    for k, v in nw.backward(p, cache, dout).items():  # the trace changes nothing
        assert np.array_equal(grads[k], v)
    S = nw.stages(p)
    wanted = {"dE/ds": "s", "dE/df": "f", "dE/dx": "x"}
    wanted.update({f"dE/d{t}{s}": f"{t}{s}" for s in range(1, S + 1) for t in "paz"})
    assert set(trace) == set(wanted)
    for key, tensor in wanted.items():
        assert trace[key].shape == cache[tensor].shape, key
    # the delta of the last stage is the pooled gradient times phi'(z)
    relu_prime = (cache[f"z{S}"] > 0).astype(float)
    assert np.array_equal(trace[f"dE/dz{S}"], trace[f"dE/da{S}"] * relu_prime)
    with pytest.raises(TypeError, match="trace must be None or a dict, got list"):
        nw.backward(p, cache, dout, trace=[])


@pytest.mark.parametrize("kw, exc, match", [
    (dict(seed=-1), ValueError, "seed must be a non-negative int, got -1"),
    (dict(seed=0.5), TypeError, "seed must be an int"),
    (dict(loss="mse"), ValueError, "loss must be one of 'ce', 'sse'"),
    (dict(channels=(4, 0)), ValueError, r"channels must have entries >= 1, got \(4, 0\)"),
    (dict(channels=(4, 2.0)), TypeError,
     r"channels must be a sequence of ints \(one positive int per stage\), got 2.0"),
    (dict(channels=[]), ValueError, "channels must be a non-empty tuple"),
    (dict(n_out=0), ValueError, "n_out must be a positive int, got 0"),
    (dict(kernel=0), ValueError, "kernel must be a positive int, got 0"),
    (dict(padding=-1), ValueError, "padding must be a non-negative int, got -1"),
    (dict(pool=1.5), TypeError, "pool must be an int or one int per stage"),
])
def test_init_params_rejects_bad_arguments(kw, exc, match):
    with pytest.raises(exc, match=match):
        nw.init_params(IMAGE_SHAPE, **kw)


# --- the general network: S stages, settings per stage -----------------------------------------


def _deep_problem(loss, seed=0, n=5, real_targets=False):
    """The three-stage network of DEEP with non-zero biases, a batch, and its targets."""
    rng = np.random.default_rng(200 + seed)
    cfg = {k: v for k, v in DEEP.items() if k != "in_shape"}
    p = nw.init_params(DEEP["in_shape"], seed=seed, loss=loss, **cfg)
    p = {k: v + (0.1 * rng.standard_normal(v.shape) if v.ndim == 1 else 0.0) for k, v in p.items()}
    x = rng.standard_normal((n, *DEEP["in_shape"]))
    y = rng.integers(0, DEEP["n_out"], n)
    target = rng.random((n, DEEP["n_out"])) if real_targets else y
    return p, x, y, target


def _deep_settings(loss):
    return dict(loss=loss, padding=DEEP["padding"], pool=DEEP["pool"])


def test_param_names_for_any_number_of_stages():
    assert nw.param_names(1) == ("w1", "b1", "W", "c")
    assert nw.param_names(2) == DIGITS_NAMES
    assert nw.param_names(3) == ("w1", "b1", "w2", "b2", "w3", "b3", "W", "c")
    with pytest.raises(ValueError, match="n_stages must be a positive int, got 0"):
        nw.param_names(0)
    with pytest.raises(TypeError, match="n_stages must be an int, got 2.0"):
        nw.param_names(2.0)


def test_three_stage_shapes_and_forward_shapes():
    cfg = {k: v for k, v in DEEP.items() if k != "in_shape"}
    shapes = nw.param_shapes(DEEP["in_shape"], **cfg)
    assert shapes == DEEP_SHAPES
    assert tuple(shapes) == nw.param_names(3)
    p, x, _, _ = _deep_problem("ce")
    assert {k: v.shape for k, v in p.items()} == DEEP_SHAPES
    assert nw.stages(p) == 3
    out, cache = nw.forward(p, x, **_deep_settings("ce"))
    assert out.shape == (5, 5)
    expected = dict(z1=(5, 3, 12, 12), a1=(5, 3, 12, 12), p1=(5, 3, 12, 12), z2=(5, 4, 11, 11),
                    a2=(5, 4, 11, 11), p2=(5, 4, 5, 5), z3=(5, 2, 5, 5), a3=(5, 2, 5, 5), p3=(5, 2, 2, 2),
                    f=(5, 8), s=(5, 5))
    assert {k: cache[k].shape for k in expected} == expected
    assert tuple(cache) == ("loss", "padding", "pool", "x", "z1", "a1", "p1", "z2", "a2", "p2",
                            "z3", "a3", "p3", "f", "s")
    assert (cache["padding"], cache["pool"]) == ((1, 0, 1), (1, 2, 2))
    # a pooling window of 1 keeps the maps: p1 is a1 itself
    np.testing.assert_array_equal(cache["p1"], cache["a1"])


@pytest.mark.parametrize("loss, real_targets", [("ce", False), ("sse", False), ("sse", True)])
@pytest.mark.parametrize("seed", [0, 1])
def test_three_stage_gradients_match_jax_grad(loss, real_targets, seed):
    """Per-stage kernels, paddings and pooling windows: loss and every gradient against jax.grad of an
    independent jax forward, to 1e-12 of the largest entry."""
    p, x, y, target = _deep_problem(loss, seed, real_targets=real_targets)
    E, grads = nw.loss_and_grads(p, x, target, **_deep_settings(loss))
    jt = target if loss == "ce" else (target if real_targets else np.eye(DEEP["n_out"])[y])
    args = (_jx(p), jnp.asarray(x), jnp.asarray(jt), loss, DEEP["padding"], DEEP["pool"])
    E_ref = float(jax_net_loss(*args))
    assert abs(E - E_ref) <= 1e-12 * abs(E_ref)
    ref = jax.grad(jax_net_loss)(*args)
    assert tuple(grads) == nw.param_names(3)
    for k in grads:
        assert grads[k].shape == DEEP_SHAPES[k]
        assert_close(grads[k], np.asarray(ref[k]))


def test_three_stage_a_wrong_gradient_would_be_caught():
    """The comparison has teeth in the middle of the stack: dropping φ' of stage 2 changes dw1 and dw2."""
    p, x, y, _ = _deep_problem("ce")
    kw = _deep_settings("ce")
    out, cache = nw.forward(p, x, **kw)
    ref = jax.grad(jax_net_loss)(_jx(p), jnp.asarray(x), jnp.asarray(y), "ce", DEEP["padding"], DEEP["pool"])
    right = nw.backward(p, cache, nw.loss_grad(out, y))
    assert_close(right["w1"], np.asarray(ref["w1"]))
    wrong = nw.backward(p, dict(cache, z2=np.ones_like(cache["z2"])), nw.loss_grad(out, y))  # relu'(1) = 1
    for k in ("w1", "w2"):
        with pytest.raises(AssertionError):
            assert_close(wrong[k], np.asarray(ref[k]))
    assert_close(wrong["w3"], np.asarray(ref["w3"]))   # the stages above are unaffected


def test_three_stage_predict_and_evaluate_use_the_settings():
    p, x, y, _ = _deep_problem("sse", n=9)
    kw = _deep_settings("sse")
    out, _ = nw.forward(p, x, **kw)
    np.testing.assert_array_equal(nw.predict(p, x, batch_size=4, **kw), np.argmax(out, axis=1))
    loss, acc = nw.evaluate(p, x, y, batch_size=4, **kw)
    assert abs(loss - nw.loss_value(out, y, loss="sse")) <= 1e-12 * loss
    assert acc == nw.accuracy(p, x, y, **kw) == np.mean(np.argmax(out, axis=1) == y)
    # the settings are not ignored: the defaults (padding 1, pool 2 everywhere) do not fit this W
    with pytest.raises(ValueError, match=re.escape("params['W'] must have one column per feature")):
        nw.predict(p, x, loss="sse")


@pytest.mark.parametrize("n_out", [10, 5])
def test_sse_loss_of_labels_equals_the_loss_of_one_hot_targets(n_out):
    rng = np.random.default_rng(3)
    out = rng.random((6, n_out))
    y = rng.integers(0, n_out, 6)
    t = np.eye(n_out)[y]
    assert nw.loss_value(out, y, loss="sse") == nw.loss_value(out, t, loss="sse")
    np.testing.assert_array_equal(nw.loss_grad(out, y, loss="sse"), nw.loss_grad(out, t, loss="sse"))
    # and not by accident: other targets give another loss
    assert nw.loss_value(out, np.roll(t, 1, axis=1), loss="sse") != nw.loss_value(out, y, loss="sse")


def test_sse_loss_and_grads_of_labels_equal_those_of_one_hot_targets():
    p, x, y, _ = _deep_problem("sse")
    kw = _deep_settings("sse")
    E_y, g_y = nw.loss_and_grads(p, x, y, **kw)
    E_t, g_t = nw.loss_and_grads(p, x, np.eye(DEEP["n_out"])[y], **kw)
    assert E_y == E_t
    for k in g_y:
        np.testing.assert_array_equal(g_y[k], g_t[k])


def test_a_one_stage_network():
    """S = 1: the smallest network, keys w1, b1, W, c; its gradients against jax.grad too."""
    rng = np.random.default_rng(4)
    p = nw.init_params((1, 6, 7), (3,), kernel=2, padding=0, pool=2, n_out=4)
    assert {k: v.shape for k, v in p.items()} == {"w1": (3, 1, 2, 2), "b1": (3,), "W": (4, 3 * 2 * 3), "c": (4,)}
    p = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in p.items()}
    x, y = rng.standard_normal((3, 1, 6, 7)), np.array([0, 3, 1])
    E, grads = nw.loss_and_grads(p, x, y, loss="ce", padding=0, pool=2)
    ref = jax.grad(jax_net_loss)(_jx(p), jnp.asarray(x), jnp.asarray(y), "ce", (0,), (2,))
    for k in p:
        assert_close(grads[k], np.asarray(ref[k]))


# --- stages, param_names and check_params: what they reject ------------------------------------


def test_stages_counts_and_names_what_is_missing():
    p = nw.init_params(IMAGE_SHAPE)
    assert nw.stages(p) == 2
    assert nw.stages(nw.init_params(DEEP["in_shape"], **{k: v for k, v in DEEP.items() if k != "in_shape"})) == 3
    with pytest.raises(ValueError, match=re.escape("params must hold w1, b1, …, wS, bS, W, c (S >= 1); "
                                                   "missing ['b2'], given keys")):
        nw.stages({k: v for k, v in p.items() if k != "b2"})
    with pytest.raises(ValueError, match=re.escape("missing ['w1', 'W', 'c'], given keys []")):
        nw.stages({})
    # the names of cnnref 0.1 (W3, c3) are not the dense layer's
    old = {("W3" if k == "W" else "c3" if k == "c" else k): v for k, v in p.items()}
    with pytest.raises(ValueError,
                       match=re.escape("missing ['W', 'c'], given keys ['W3', 'b1', 'b2', 'c3', 'w1', 'w2']")):
        nw.stages(old)
    with pytest.raises(TypeError, match="params must be a dict of arrays, got tuple"):
        nw.stages(tuple(p.values()))


@pytest.mark.parametrize("edit, exc, match", [
    # a key too many, or a stage after a gap (w3 missing, w4 given)
    (lambda p: dict(p, extra=np.zeros(1)), ValueError,
     r"params must have exactly the keys \('w1', 'b1', 'w2', 'b2', 'W', 'c'\), got .*'extra'"),
    (lambda p: dict(p, w4=np.zeros((2, 32, 3, 3)), b4=np.zeros(2)), ValueError,
     r"params must have exactly the keys \('w1', 'b1', 'w2', 'b2', 'W', 'c'\), got .*'w4'"),
    (lambda p: dict(p, W3=p["W"]), ValueError, "params must have exactly the keys"),
    # the channel chain: w2 must take the channels of w1
    (lambda p: dict(p, w2=np.zeros((32, 8, 3, 3))), ValueError,
     re.escape("params['w2'] must take the 16 channels of stage 1 (shape (32, 16, …)), got (32, 8, 3, 3)")),
    (lambda p: dict(p, b1=np.zeros(15)), ValueError,
     re.escape("params['b1'] must have shape (16,) (one bias per output channel of w1), got (15,)")),
    (lambda p: dict(p, w1=np.zeros((16, 3, 3))), ValueError,
     re.escape("params['w1'] must be a non-empty 4-D kernel (C_out, C_in, K_h, K_w), got (16, 3, 3)")),
    (lambda p: dict(p, w2=np.zeros((0, 16, 3, 3)), b2=np.zeros(0)), ValueError, "must be a non-empty 4-D kernel"),
    (lambda p: dict(p, W=np.zeros(128)), ValueError, re.escape("params['W'] must be 2-D (n_out, D), got shape (128,)")),
    (lambda p: dict(p, c=np.zeros(9)), ValueError,
     re.escape("params['c'] must have shape (10,) (one bias per row of W), got (9,)")),
    (lambda p: dict(p, w1=p["w1"] > 0), TypeError, re.escape("params['w1'] must be a real numeric array")),
])
def test_check_params_rejects_inconsistent_params(edit, exc, match):
    p = edit(nw.init_params(IMAGE_SHAPE))
    with pytest.raises(exc, match=match):
        nw.check_params(p)
    x, y = _batch(2)
    with pytest.raises(exc, match=match):   # every entry point checks them
        nw.loss_and_grads(p, x, y)


def test_check_params_returns_float_arrays_and_leaves_w_to_forward():
    p = {k: (v * 100).astype(int) for k, v in nw.init_params(IMAGE_SHAPE).items()}
    checked = nw.check_params(p)
    assert tuple(checked) == DIGITS_NAMES and all(v.dtype == np.float64 for v in checked.values())
    # W of the wrong width passes check_params (it does not know the input) and fails in forward
    bad = dict(checked, W=np.zeros((10, 64)))
    nw.check_params(bad)
    with pytest.raises(ValueError, match=re.escape("params['W'] must have one column per feature of the last "
                                                   "maps (32, 2, 2), D = 128; got shape (10, 64)")):
        nw.forward(bad, _batch(2)[0])


@pytest.mark.parametrize("kw, exc, match", [
    (dict(padding=(1, 0)), ValueError, r"padding must be a sequence of 3 ints \(one entry per stage\), got \(1, 0\)"),
    (dict(pool=(1, 2, 2, 2)), ValueError,
     r"pool must be a sequence of 3 ints \(one entry per stage\), got \(1, 2, 2, 2\)"),
    (dict(kernel=[3, 2]), ValueError, r"kernel must be a sequence of 3 ints \(one entry per stage\), got \[3, 2\]"),
    (dict(padding=(1, -1, 1)), ValueError, r"padding must have entries >= 0"),
    (dict(pool=(1, 0, 2)), ValueError, r"pool must have entries >= 1"),
    (dict(kernel=(3, 2.0, 3)), TypeError, r"kernel must be a sequence of 3 ints"),
])
def test_per_stage_settings_of_the_wrong_length_are_rejected(kw, exc, match):
    cfg = {k: v for k, v in DEEP.items() if k != "in_shape"}
    with pytest.raises(exc, match=match):
        nw.param_shapes(DEEP["in_shape"], **{**cfg, **kw})
    with pytest.raises(exc, match=match):
        nw.init_params(DEEP["in_shape"], **{**cfg, **kw})
    if "kernel" not in kw:   # forward takes padding and pool (the kernels are the parameters)
        p, x, _, _ = _deep_problem("ce")
        with pytest.raises(exc, match=match):
            nw.forward(p, x, **{**_deep_settings("ce"), **kw})
        with pytest.raises(exc, match=match):
            nw.loss_and_grads(p, x, np.zeros(5, int), **{**_deep_settings("ce"), **kw})


@pytest.mark.parametrize("in_shape, channels, kw, match", [
    # digits: 8 → 4 → 2 → 1, and a fourth stage's 1 × 1 maps are smaller than the 2 × 2 window
    (IMAGE_SHAPE, (4, 4, 4, 4), {}, "stage 4: its 3x3 convolution with padding 1 gives 1x1 maps, smaller than "
                                    "the 2x2 pooling window"),
    (IMAGE_SHAPE, (4, 4), dict(pool=(2, 5)), "stage 2: its 3x3 convolution with padding 1 gives 4x4 maps, smaller "
                                             "than the 5x5 pooling window"),
    ((1, 5, 9), (2,), dict(kernel=3, padding=0, pool=4), "stage 1: its 3x3 convolution with padding 0 gives 3x7 maps, "
                                                         "smaller than the 4x4 pooling window"),
])
def test_param_shapes_raises_when_the_maps_are_smaller_than_the_pool_window(in_shape, channels, kw, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        nw.param_shapes(in_shape, channels, **kw)
    with pytest.raises(ValueError, match=re.escape(match)):
        nw.init_params(in_shape, channels, **kw)
    # one stage fewer fits
    if len(channels) > 1 and "pool" not in kw:
        nw.param_shapes(in_shape, channels[:-1], **kw)
