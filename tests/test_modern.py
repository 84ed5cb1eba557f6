"""cnnref.modern: the modern network's hand-assembled gradients against ``jax.grad``, step for step.

The jax twin (``cnnref.book.jaxref_modern``) is written from lax and jnp only. Gradients are
compared on one batch to 1e-12 relative (float64: the two differ only by summation order; batch
normalisation's 1/σ with σ of order 1 does not amplify rounding). Then 50 SGD + momentum steps
are taken with both, from the same parameters and minibatches, and every parameter must agree to
1e-9 after every step: the runs differ by rounding that each step feeds into the next (as in
tests/test_step_for_step.py); a wrong gradient moves a parameter by ~lr·|g| ~ 1e-3 at once.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnref import modern
from cnnref.book import jaxref_modern as jm
from cnnref.data import batch_indices, load_digits
from cnnref.gradcheck import relative_error
from cnnref.optim import SGD, cosine_lr


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _jax(p):
    return {k: jnp.asarray(v) for k, v in p.items()}


@pytest.mark.parametrize("seed", [0, 3])
def test_gradients_match_jax_grad(digits, seed):
    p = modern.init_params(seed)
    rng = np.random.default_rng(seed)
    p = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in p.items()}  # γ ≠ 1, β, c ≠ 0
    x, y = digits.x_train[:16], digits.y_train[:16]
    E, grads = modern.loss_and_grads(p, x, y)
    assert abs(E - float(jm.loss(_jax(p), x, y))) <= 1e-13 * E
    want = jax.grad(jm.loss)(_jax(p), x, y)
    assert set(grads) == set(modern.PARAM_NAMES)
    for k in modern.PARAM_NAMES:
        assert relative_error(grads[k], np.asarray(want[k])) < 1e-12, k


def test_central_differences_through_the_skip(digits):
    """w_stem's gradient reaches it by two paths (the skip and the branch): central differences of
    the loss itself agree with it to 1e-6 relative (h = 1e-5: truncation ~h² and rounding ~1e-16/h
    both far below; ReLU kinks are not crossed, checked by the activation pattern)."""
    p = modern.init_params(2)
    x, y = digits.x_train[:16], digits.y_train[:16]
    _, grads = modern.loss_and_grads(p, x, y)
    _, cache = modern.forward(p, x)
    h = 1e-5
    for idx in [(0, 0, 1, 1), (3, 0, 2, 0), (7, 0, 0, 2)]:
        plus, minus = {k: v.copy() for k, v in p.items()}, {k: v.copy() for k, v in p.items()}
        plus["w_stem"][idx] += h
        minus["w_stem"][idx] -= h
        for q in (plus, minus):
            _, c = modern.forward(q, x)
            assert all(np.array_equal(c[k] > 0, cache[k] > 0) for k in ("y1", "y2", "s3", "y5"))
        fd = (modern.loss_and_grads(plus, x, y)[0] - modern.loss_and_grads(minus, x, y)[0]) / (2 * h)
        assert abs(fd - grads["w_stem"][idx]) <= 1e-6 * abs(grads["w_stem"][idx]), idx


def test_step_for_step_with_jax(digits):
    p_np = modern.init_params(1)
    p_jx, v_jx = _jax(p_np), {k: jnp.zeros_like(v) for k, v in p_np.items()}
    opt, lr, momentum, epochs, steps = SGD(0.05, 0.9), 0.05, 0.9, 2, 0
    worst = []
    for epoch in range(epochs):
        lr_e = cosine_lr(lr, epoch, epochs)
        for idx in batch_indices(digits.x_train.shape[0], 32, seed=1, epoch=epoch):
            x, y = digits.x_train[idx], digits.y_train[idx]
            _, g = modern.loss_and_grads(p_np, x, y)
            p_np = opt.step(p_np, g, lr_e)
            p_jx, v_jx = jm.sgd_step(p_jx, v_jx, x, y, lr_e, momentum)
            worst.append(max(float(np.max(np.abs(p_np[k] - np.asarray(p_jx[k])))) for k in p_np))
            steps += 1
            if steps == 50:
                break
        if steps == 50:
            break
    assert steps == 50 and max(worst) <= 1e-9, max(worst)
    assert worst[-1] > 0  # the runs are distinct computations, not one shared code path


def test_running_statistics_and_evaluation_mode(digits):
    p, running = modern.init_params(0), modern.init_running()
    x = digits.x_train[:64]
    _, cache = modern.forward(p, x)
    new = modern.update_running(running, cache)
    z1 = cache["z1"]
    np.testing.assert_allclose(new["mean_stem"], 0.1 * z1.mean(axis=(0, 2, 3)), rtol=1e-12)
    n = z1.size // z1.shape[1]
    np.testing.assert_allclose(new["var_stem"], 0.9 + 0.1 * z1.var(axis=(0, 2, 3)) * n / (n - 1), rtol=1e-12)
    assert modern.predict(p, new, x).shape == (64,)


def test_bad_input_is_rejected():
    p = modern.init_params(0)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 1, 8, 8\)"):
        modern.forward(p, np.zeros((2, 1, 7, 8)))
    with pytest.raises(ValueError, match="params must have the keys"):
        modern.forward({k: v for k, v in p.items() if k != "c"}, np.zeros((2, 1, 8, 8)))
    with pytest.raises(ValueError, match=r"params\['w_r1'\] must have shape"):
        modern.forward(dict(p, w_r1=np.zeros((8, 4, 3, 3))), np.zeros((2, 1, 8, 8)))


@pytest.mark.slow
def test_training_reaches_a_good_test_accuracy(digits):
    _, _, history = modern.train(epochs=8, data=digits)
    assert history["test_acc"][-1] > 0.95, history
