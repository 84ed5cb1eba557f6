"""The modern network of :mod:`cnnref.modern`, written again from jax and lax primitives only.

Nothing here imports cnnref's implementation: the convolutions are ``lax.conv_general_dilated``
(``feature_group_count`` for the depthwise one), batch normalisation is the batch mean and biased
variance written in ``jnp``, global average pooling a mean, and the gradient of the loss comes
from ``jax.grad``. It is the oracle of the step-for-step comparison in the book and the tests.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

jax.config.update("jax_enable_x64", True)

__all__ = ["conv", "batchnorm", "forward", "loss", "sgd_step"]

EPS = 1e-5  # batch normalisation's ε, the default of cnnref.batchnorm and PyTorch


def conv(x, w, *, stride=1, padding=0, groups=1):
    """A cross-correlation layer without bias, NCHW / OIHW, zeros ``padding`` on each side."""
    return lax.conv_general_dilated(
        x, w, window_strides=(stride, stride), padding=[(padding, padding)] * 2,
        dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=groups,
        precision=lax.Precision.HIGHEST)


def batchnorm(z, gamma, beta):
    """Training-mode batch normalisation: per channel, the mean and biased variance over N, H, W."""
    mean = z.mean(axis=(0, 2, 3), keepdims=True)
    var = ((z - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
    return gamma[None, :, None, None] * (z - mean) / jnp.sqrt(var + EPS) + beta[None, :, None, None]


def forward(p, x):
    """The logits of :mod:`cnnref.modern`'s network (stem, residual block, depthwise-separable, GAP)."""
    width = p["w_stem"].shape[0]
    a1 = jax.nn.relu(batchnorm(conv(x, p["w_stem"], padding=1), p["g_stem"], p["beta_stem"]))
    a2 = jax.nn.relu(batchnorm(conv(a1, p["w_r1"], padding=1), p["g_r1"], p["beta_r1"]))
    a3 = jax.nn.relu(a1 + batchnorm(conv(a2, p["w_r2"], padding=1), p["g_r2"], p["beta_r2"]))
    z4 = conv(a3, p["w_dw"], stride=2, padding=1, groups=width)
    a5 = jax.nn.relu(batchnorm(conv(z4, p["w_pw"]), p["g_pw"], p["beta_pw"]))
    return a5.mean(axis=(2, 3)) @ p["W"].T + p["c"]


def loss(p, x, y):
    """The batch-mean softmax cross-entropy of the logits for integer labels ``y``."""
    log_p = jax.nn.log_softmax(forward(p, x), axis=1)
    return -jnp.mean(jnp.take_along_axis(log_p, jnp.asarray(y)[:, None], axis=1))


@jax.jit
def sgd_step(p, v, x, y, lr, momentum):
    """One SGD + momentum step on ``jax.grad`` of :func:`loss`: v ← μ v + g, p ← p − η v."""
    g = jax.grad(loss)(p, x, y)
    v = jax.tree_util.tree_map(lambda vk, gk: momentum * vk + gk, v, g)
    p = jax.tree_util.tree_map(lambda pk, vk: pk - lr * vk, p, v)
    return p, v

