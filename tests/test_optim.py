"""cnnref.optim: the SGD update [eq-sgd-update], momentum [eq-sgd-momentum], the cosine schedule [eq-cosine-lr]."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnnref.optim import SGD, cosine_lr, sgd_step


def _params(rng):
    return {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal(3)}


def test_plain_sgd_is_theta_minus_lr_grad():
    rng = np.random.default_rng(0)
    p, g = _params(rng), _params(rng)
    new, v = sgd_step(p, g, 0.1)
    for k in p:
        np.testing.assert_array_equal(new[k], p[k] - 0.1 * g[k])
        np.testing.assert_array_equal(v[k], g[k])


def test_step_does_not_modify_its_arguments():
    rng = np.random.default_rng(1)
    p, g = _params(rng), _params(rng)
    p0 = {k: v.copy() for k, v in p.items()}
    g0 = {k: v.copy() for k, v in g.items()}
    sgd_step(p, g, 0.5, momentum=0.9)
    for k in p:
        np.testing.assert_array_equal(p[k], p0[k])
        np.testing.assert_array_equal(g[k], g0[k])


def test_momentum_with_a_constant_gradient_follows_the_closed_form():
    """v_k = g (1 − μ^k) / (1 − μ);  θ_k = θ_0 − η Σ_{j<=k} v_j  (geometric sums, exact up to rounding)."""
    rng = np.random.default_rng(2)
    p0, g = _params(rng), _params(rng)
    lr, mu, steps = 0.1, 0.9, 7
    opt = SGD(lr, mu)
    p = p0
    for _ in range(steps):
        p = opt.step(p, g)
    s = sum((1 - mu ** j) / (1 - mu) for j in range(1, steps + 1))
    for k in p:
        np.testing.assert_allclose(opt.velocity[k], g[k] * (1 - mu ** steps) / (1 - mu), rtol=1e-13, atol=0)
        np.testing.assert_allclose(p[k], p0[k] - lr * s * g[k], rtol=1e-13, atol=1e-15)


def test_zero_momentum_is_plain_sgd_every_step():
    rng = np.random.default_rng(3)
    p = q = _params(rng)
    opt = SGD(0.2, 0.0)
    for _ in range(3):
        g = _params(rng)
        p = opt.step(p, g)
        q = {k: q[k] - 0.2 * g[k] for k in q}
    for k in p:
        np.testing.assert_array_equal(p[k], q[k])


def test_step_lr_overrides_the_default():
    rng = np.random.default_rng(4)
    p, g = _params(rng), _params(rng)
    new = SGD(1.0).step(p, g, lr=0.25)
    for k in p:
        np.testing.assert_array_equal(new[k], p[k] - 0.25 * g[k])


def test_matches_torch_sgd_with_momentum():
    """The same convention as torch.optim.SGD (v ← μ v + g, θ ← θ − η v), when torch is installed."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    p0 = _params(rng)
    grads = [_params(rng) for _ in range(4)]
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p0.items()}
    topt = torch.optim.SGD(list(tp.values()), lr=0.1, momentum=0.8)
    opt, p = SGD(0.1, 0.8), p0
    for g in grads:
        for k in tp:
            tp[k].grad = torch.tensor(g[k])
        topt.step()
        p = opt.step(p, g)
    for k in p:
        np.testing.assert_allclose(p[k], tp[k].detach().numpy(), rtol=1e-14, atol=1e-15)


def test_cosine_lr():
    assert cosine_lr(0.4, 0, 10) == 0.4
    assert math.isclose(cosine_lr(0.4, 5, 10), 0.2, rel_tol=1e-15)
    vals = [cosine_lr(1.0, e, 20) for e in range(20)]
    assert all(a > b > 0 for a, b in zip(vals, vals[1:]))
    for e in range(20):
        assert math.isclose(vals[e], 0.5 * (1 + math.cos(math.pi * e / 20)), rel_tol=1e-15)
    with pytest.raises(ValueError, match="epoch"):
        cosine_lr(0.1, 10, 10)


@pytest.mark.parametrize("lr, momentum, exc", [
    (0.0, 0.0, ValueError), (-0.1, 0.0, ValueError), (float("nan"), 0.0, ValueError), (float("inf"), 0.0, ValueError),
    (0.1, 1.0, ValueError), (0.1, -0.1, ValueError), ("0.1", 0.0, TypeError), (True, 0.0, TypeError),
])
def test_rejects_bad_rates(lr, momentum, exc):
    with pytest.raises(exc):
        SGD(lr, momentum)


def test_rejects_mismatched_gradients():
    rng = np.random.default_rng(6)
    p = _params(rng)
    with pytest.raises(ValueError, match="keys"):
        sgd_step(p, {"w": p["w"]}, 0.1)
    with pytest.raises(ValueError, match="shape"):
        sgd_step(p, {"w": p["w"], "b": np.zeros(4)}, 0.1)
    with pytest.raises(TypeError):
        sgd_step(p, [p["w"], p["b"]], 0.1)


@pytest.mark.parametrize("args, exc, match", [
    ((0.0, 0, 10), ValueError, "lr must be a positive finite number"),
    ((0.1, 1.0, 10), TypeError, "epoch must be an int, got 1.0"),
    ((0.1, 0, "10"), TypeError, "epochs must be an int"),
    ((0.1, -1, 10), ValueError, "need 0 <= epoch < epochs"),
    ((0.1, 0, 0), ValueError, "need 0 <= epoch < epochs with epochs >= 1"),
])
def test_cosine_lr_rejects_bad_arguments(args, exc, match):
    with pytest.raises(exc, match=match):
        cosine_lr(*args)


def test_step_and_velocity_are_checked():
    rng = np.random.default_rng(7)
    p, g = _params(rng), _params(rng)
    with pytest.raises(ValueError, match="lr must be a positive finite number"):
        SGD(0.1).step(p, g, lr=-1.0)
    with pytest.raises(ValueError, match=r"velocity\['b'\] must have the shape of params\['b'\]"):
        sgd_step(p, g, 0.1, momentum=0.5, velocity={"w": p["w"], "b": np.zeros(2)})
    with pytest.raises(TypeError, match=r"grads\['w'\] must be a real numeric array"):
        sgd_step(p, {"w": p["w"].astype(complex), "b": p["b"]}, 0.1)
    with pytest.raises(TypeError, match="w must be a real numeric array"):
        sgd_step({"w": p["w"].astype(str), "b": p["b"]}, g, 0.1)
    with pytest.raises(TypeError, match="momentum must be a real number"):
        SGD(0.1, momentum=None)
