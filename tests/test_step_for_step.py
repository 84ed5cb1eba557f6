"""Train the digits CNN twice, with cnnref's hand-derived gradients and with ``jax.grad``, and compare every step.

The jax network (``cnnref.book.jaxref.cnn_forward``/``cnn_loss``/``cnn_sgd_step``, also shown in
the training chapter) is written from jax's own primitives (``lax.conv_general_dilated``,
``lax.reduce_window``, ``jax.nn``) and never calls cnnref's implementation: only the initial
parameters, the minibatch indices and the learning-rate schedule are shared (they are data, not
computation). Both runs use float64 and the same SGD (+ momentum) update, written separately in
jax. After every one of the first 50 steps every parameter must agree
to 1e-9 in absolute value.

Why 1e-9 and not 1e-12: the two runs differ only by the order of floating-point summation
(im2col + GEMM against XLA's convolution), ~1e-16 relative per operation; SGD feeds each
step's rounding into the next, so the difference grows with the step count but stays many
orders of magnitude below 1e-9 unless a gradient is wrong (a wrong gradient changes the
parameters by ~lr · |grad| ~ 1e-3 at the first step).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from cnnref import network
from cnnref.book.jaxref import cnn_sgd_step as jstep
from cnnref.data import IMAGE_SHAPE, batch_indices, load_digits
from cnnref.optim import SGD, cosine_lr

N_STEPS = 50
TOL = 1e-9


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def step_for_step(data, *, loss, lr, momentum, epochs, seed=0, batch_size=32, n_steps=N_STEPS):
    """Per-step max |Δθ| over all parameters between the cnnref run and the jax run."""
    p_np = network.init_params(IMAGE_SHAPE, seed=seed, loss=loss)
    p_jx = {k: jnp.asarray(v) for k, v in p_np.items()}
    v_jx = {k: jnp.zeros_like(v) for k, v in p_jx.items()}
    opt = SGD(lr, momentum)
    diffs = []
    for epoch in range(epochs):
        lr_e = cosine_lr(lr, epoch, epochs)
        for idx in batch_indices(data.x_train.shape[0], batch_size, seed=seed, epoch=epoch):
            if len(diffs) == n_steps:
                return diffs
            xb, yb = data.x_train[idx], data.y_train[idx]
            _, grads = network.loss_and_grads(p_np, xb, yb, loss=loss)
            p_np = opt.step(p_np, grads, lr_e)
            p_jx, v_jx = jstep(p_jx, v_jx, jnp.asarray(xb), jnp.asarray(yb), lr_e, momentum, loss)
            diffs.append(max(float(np.max(np.abs(p_np[k] - np.asarray(p_jx[k])))) for k in p_np))
    return diffs


@pytest.mark.slow
@pytest.mark.parametrize("loss, lr, momentum", [("ce", 0.05, 0.9), ("sse", 2.0, 0.0)])
def test_first_50_steps_match_jax(digits, loss, lr, momentum):
    # epochs=2 with batch 32: 45 steps in epoch 0 at lr, 5 in epoch 1 at the cosine-decayed
    # rate (lr/2), so the schedule switch and the short last batch (1437 = 44·32 + 29) are covered.
    diffs = step_for_step(digits, loss=loss, lr=lr, momentum=momentum, epochs=2)
    assert len(diffs) == N_STEPS
    worst = max(diffs)
    assert worst <= TOL, f"step {int(np.argmax(diffs)) + 1}: max |Δparam| = {worst:.3e} > {TOL:.0e}"


def test_parameters_actually_move(digits):
    """Guard against a vacuous comparison: 5 steps change every parameter by far more than TOL."""
    p0 = network.init_params(IMAGE_SHAPE, seed=0)
    p = p0
    opt = SGD(0.05, 0.9)
    for idx in batch_indices(digits.x_train.shape[0], 32, seed=0, epoch=0)[:5]:
        _, g = network.loss_and_grads(p, digits.x_train[idx], digits.y_train[idx])
        p = opt.step(p, g)
    for k in p:
        assert np.max(np.abs(p[k] - p0[k])) > 1e3 * TOL, k


def test_a_wrong_gradient_is_caught(digits):
    """The comparison fails when one hand-written gradient is off (here: db2 dropped)."""
    p_np = network.init_params(IMAGE_SHAPE, seed=0)
    p_jx = {k: jnp.asarray(v) for k, v in p_np.items()}
    v_jx = {k: jnp.zeros_like(v) for k, v in p_jx.items()}
    idx = batch_indices(digits.x_train.shape[0], 32, seed=0, epoch=0)[0]
    xb, yb = digits.x_train[idx], digits.y_train[idx]
    _, grads = network.loss_and_grads(p_np, xb, yb)
    grads["b2"] = np.zeros_like(grads["b2"])
    p_np = SGD(0.05, 0.9).step(p_np, grads)
    p_jx, _ = jstep(p_jx, v_jx, jnp.asarray(xb), jnp.asarray(yb), 0.05, 0.9, "ce")
    assert np.max(np.abs(p_np["b2"] - np.asarray(p_jx["b2"]))) > 1e3 * TOL
