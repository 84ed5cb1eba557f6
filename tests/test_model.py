"""cnnref.model: shapes, initialisation, and the hand-written backward pass against jax.grad of an independent forward."""

from __future__ import annotations

import numpy as np
import pytest

from cnnref import model
from cnnref.data import one_hot

from cnnref.book import jaxref as J
from helpers import assert_close

jnp = J.jnp


def jax_loss(p, x, y, loss):
    """The network of cnnref.model from jax primitives only (cnnref/book/jaxref.py), batch-mean loss."""
    phi, pool = (J.relu, J.maxpool2d) if loss == "ce" else (J.sigmoid, J.avgpool2d)
    h = pool(phi(J.conv2d(x, p["w1"], p["b1"], padding=1)), 2)
    h = pool(phi(J.conv2d(h, p["w2"], p["b2"], padding=1)), 2)
    s = J.dense(h.reshape(h.shape[0], -1), p["W3"], p["c3"])
    if loss == "ce":
        return J.softmax_cross_entropy(s, y, reduction="mean")
    return J.half_squared_error(J.sigmoid(s), jnp.asarray(one_hot(y)), reduction="mean")


def _batch(n=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 1, 8, 8))
    y = rng.integers(0, 10, n)
    return x, y


def _perturbed(loss, seed=0):
    """Parameters with non-zero biases, so that bias paths are exercised too."""
    rng = np.random.default_rng(100 + seed)
    p = model.init_params(seed, loss=loss)
    return {k: v + (0.1 * rng.standard_normal(v.shape) if v.ndim == 1 else 0.0) for k, v in p.items()}


def test_param_shapes_and_forward_shapes():
    shapes = model.param_shapes((4, 6))
    assert shapes == {"w1": (4, 1, 3, 3), "b1": (4,), "w2": (6, 4, 3, 3), "b2": (6,), "W3": (10, 24), "c3": (10,)}
    p = model.init_params(0, (4, 6))
    assert {k: v.shape for k, v in p.items()} == shapes
    x, _ = _batch(5)
    out, cache = model.forward(p, x)
    assert out.shape == (5, 10)
    expected = dict(z1=(5, 4, 8, 8), a1=(5, 4, 8, 8), p1=(5, 4, 4, 4), z2=(5, 6, 4, 4), a2=(5, 6, 4, 4),
                    p2=(5, 6, 2, 2), f=(5, 24), s=(5, 10))
    assert {k: cache[k].shape for k in expected} == expected


def test_init_is_seeded_and_he_scaled():
    a, b, c = model.init_params(0), model.init_params(0), model.init_params(1)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["w2"], c["w2"])
    for k in ("b1", "b2", "c3"):
        assert not a[k].any()
    # std of 4608 draws of N(0, 2/144): within 5 % of sqrt(2/144) (5 % ≈ 5 standard errors of the std)
    assert abs(a["w2"].std() / np.sqrt(2 / 144) - 1) < 0.05
    s = model.init_params(0, loss="sse")
    assert abs(s["w2"].std() / np.sqrt(32 / (144 + 288)) - 1) < 0.05


@pytest.mark.parametrize("loss", model.LOSSES)
def test_loss_matches_the_jax_forward(loss):
    p = _perturbed(loss)
    x, y = _batch()
    out, _ = model.forward(p, x, loss=loss)
    e = model.loss_value(out, y, loss=loss)
    e_ref = float(jax_loss({k: jnp.asarray(v) for k, v in p.items()}, jnp.asarray(x), jnp.asarray(y), loss))
    assert abs(e - e_ref) <= 1e-12 * abs(e_ref)


@pytest.mark.parametrize("loss", model.LOSSES)
@pytest.mark.parametrize("seed", [0, 1])
def test_backward_matches_jax_grad(loss, seed):
    """Every parameter's gradient against jax.grad, to 1e-12 of the largest entry (summation order only)."""
    p = _perturbed(loss, seed)
    x, y = _batch(7, seed)
    _, grads = model.loss_and_grads(p, x, y, loss=loss)
    ref = J.jax.grad(jax_loss)({k: jnp.asarray(v) for k, v in p.items()}, jnp.asarray(x), jnp.asarray(y), loss)
    for k in model.PARAM_NAMES:
        assert grads[k].shape == p[k].shape
        assert_close(grads[k], np.asarray(ref[k]))


def test_backward_matches_central_differences_for_the_smooth_network():
    """The sigmoid network is smooth: (E(θ+h) − E(θ−h)) / 2h agrees to ~h² ≈ 1e-10 relative, here 1e-6."""
    p = _perturbed("sse")
    x, y = _batch(4)
    _, grads = model.loss_and_grads(p, x, y, loss="sse")
    rng = np.random.default_rng(7)
    h = 1e-5
    for k in model.PARAM_NAMES:
        for _ in range(2):
            idx = tuple(int(rng.integers(0, n)) for n in p[k].shape)
            plus = {n: v.copy() for n, v in p.items()}
            minus = {n: v.copy() for n, v in p.items()}
            plus[k][idx] += h
            minus[k][idx] -= h
            fd = (model.loss_value(model.forward(plus, x, loss="sse")[0], y, loss="sse")
                  - model.loss_value(model.forward(minus, x, loss="sse")[0], y, loss="sse")) / (2 * h)
            assert abs(fd - grads[k][idx]) <= 1e-6 * max(abs(fd), 1e-3), (k, idx, fd, grads[k][idx])


def test_a_wrong_gradient_would_be_caught():
    """The jax comparison has teeth: dropping φ' in the first layer changes dw1 by far more than 1e-12."""
    p = _perturbed("ce")
    x, y = _batch()
    out, cache = model.forward(p, x)
    cache = dict(cache, z1=np.ones_like(cache["z1"]))  # relu'(1) = 1 everywhere: φ' ignored
    wrong = model.backward(p, cache, model.loss_grad(out, y))
    ref = J.jax.grad(jax_loss)({k: jnp.asarray(v) for k, v in p.items()}, jnp.asarray(x), jnp.asarray(y), "ce")
    with pytest.raises(AssertionError):
        assert_close(wrong["w1"], np.asarray(ref["w1"]))


def test_predict_accuracy_and_evaluate_agree():
    p = model.init_params(0)
    x, y = _batch(20)
    pred = model.predict(p, x, batch_size=7)
    np.testing.assert_array_equal(pred, np.argmax(model.forward(p, x)[0], axis=1))
    acc = model.accuracy(p, x, y)
    assert acc == np.mean(pred == y)
    loss, acc2 = model.evaluate(p, x, y, batch_size=6)
    assert acc2 == acc
    assert abs(loss - model.loss_value(model.forward(p, x)[0], y)) <= 1e-12 * loss


def test_rejects_bad_inputs():
    p = model.init_params(0)
    x, y = _batch()
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\)"):
        model.forward(p, x[:, :, :7])
    with pytest.raises(ValueError, match="keys"):
        model.forward({k: v for k, v in p.items() if k != "c3"}, x)
    with pytest.raises(ValueError, match="shape"):
        model.forward(dict(p, W3=np.zeros((10, 3))), x)
    with pytest.raises(ValueError, match="loss"):
        model.forward(p, x, loss="mse")
    with pytest.raises(TypeError):
        model.forward([p], x)
    out, cache = model.forward(p, x)
    with pytest.raises(ValueError, match="dout"):
        model.backward(p, cache, out[:, :3])
    with pytest.raises(ValueError, match="channels"):
        model.param_shapes((4,))


def test_forward_cache_has_the_documented_keys():
    _, cache = model.forward(model.init_params(0), _batch(2)[0])
    assert tuple(cache) == model.CACHE_KEYS


@pytest.mark.parametrize("f", [model.predict, model.evaluate])
@pytest.mark.parametrize("batch_size, exc, match", [
    (0, ValueError, "batch_size must be a positive int, got 0"),
    (-5, ValueError, "batch_size must be a positive int, got -5"),
    (2.0, TypeError, "batch_size must be an int, got 2.0"),
    (True, TypeError, "batch_size must be an int, got True"),
    ("8", TypeError, "batch_size must be an int"),
])
def test_predict_and_evaluate_check_batch_size(f, batch_size, exc, match):
    p = model.init_params(0)
    x, y = _batch(5)
    args = (p, x) if f is model.predict else (p, x, y)
    with pytest.raises(exc, match=match):
        f(*args, batch_size=batch_size)


@pytest.mark.parametrize("f", [model.accuracy, model.evaluate])
@pytest.mark.parametrize("bad_y, exc, match", [
    (lambda y: y[:-1], ValueError, r"y must have shape \(N,\) = \(6,\), got \(5,\)"),   # would be ignored in chunks
    (lambda y: np.concatenate([y, y]), ValueError, r"got \(12,\)"),
    (lambda y: y[0], ValueError, r"got \(\)"),                                             # a scalar would broadcast
    (lambda y: y.astype(float), TypeError, "y must be an integer array"),
    (lambda y: y + 10, ValueError, r"y must lie in \[0, 9\]"),
])
def test_accuracy_and_evaluate_check_the_labels(f, bad_y, exc, match):
    p = model.init_params(0)
    x, y = _batch(6)
    with pytest.raises(exc, match=match):
        f(p, x, bad_y(y), **({"batch_size": 4} if f is model.evaluate else {}))


@pytest.mark.parametrize("f", [model.forward, model.predict, model.accuracy, model.evaluate])
def test_an_empty_batch_is_rejected(f):
    p = model.init_params(0)
    args = (p, np.zeros((0, 1, 8, 8))) + (() if f in (model.forward, model.predict) else (np.zeros(0, int),))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 1, 8, 8\) with N >= 1, got \(0, 1, 8, 8\)"):
        f(*args)


@pytest.mark.parametrize("f", [model.loss_value, model.loss_grad])
@pytest.mark.parametrize("loss", model.LOSSES)
def test_loss_value_and_grad_check_out_and_y(f, loss):
    out, y = np.zeros((4, 10)), np.array([0, 1, 2, 3])
    with pytest.raises(ValueError, match="out must be a 2-D array"):
        f(out[0], y, loss=loss)
    with pytest.raises(TypeError, match="out must be a real numeric array"):
        f(out.astype(bool), y, loss=loss)
    with pytest.raises(ValueError, match=r"y must have shape \(N,\) = \(4,\)"):
        f(out, y[:3], loss=loss)
    with pytest.raises(ValueError, match=r"y must lie in \[0, 9\]"):
        f(out, np.array([0, 1, 2, 10]), loss=loss)
    with pytest.raises(ValueError, match="loss must be one of"):
        f(out, y, loss="mse")


def test_backward_checks_the_cache():
    p = model.init_params(0)
    x, y = _batch(3)
    out, cache = model.forward(p, x)
    dout = model.loss_grad(out, y)
    with pytest.raises(TypeError, match=r"cache must be the dict that forward returned, .* got tuple"):
        model.backward(p, tuple(cache.values()), dout)
    with pytest.raises(TypeError, match=r"cache must be the dict that forward returned, .* got a dict with the keys"):
        model.backward(p, {k: v for k, v in cache.items() if k != "f"}, dout)


@pytest.mark.parametrize("kw, exc, match", [
    (dict(seed=-1), ValueError, "seed must be a non-negative int, got -1"),
    (dict(seed=0.5), TypeError, "seed must be an int"),
    (dict(loss="mse"), ValueError, "loss must be one of 'ce', 'sse'"),
    (dict(channels=(4, 0)), ValueError, "channels must be positive"),
    (dict(channels=(4, 2.0)), TypeError, "channels must be a pair of positive ints"),
])
def test_init_params_rejects_bad_arguments(kw, exc, match):
    with pytest.raises(exc, match=match):
        model.init_params(**kw)
