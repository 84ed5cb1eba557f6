"""The book's independent oracle for batch normalisation, in jax alone.

Nothing here imports ``cnnref``'s implementation: the layer is written with ``jnp.mean`` and
``jnp.var`` over the axes (N, H, W) of an NCHW array, and every gradient comes from ``jax.vjp`` or
``jax.jvp`` of these forwards, never from a hand-written backward pass. The chapter on batch
normalisation and ``tests/test_batchnorm.py`` check ``cnnref.batchnorm`` against it.

- :func:`batchnorm2d`: training mode (batch statistics, biased variance).
- :func:`batchnorm2d_eval`: evaluation mode (stored statistics).
- :func:`running_stats`: PyTorch's update of the stored statistics (unbiased variance).
- :func:`batchnorm2d_vjp`, :func:`batchnorm2d_jvp`, :func:`batchnorm2d_eval_vjp`: the forwards and
  their vector-Jacobian / Jacobian-vector products, as numpy arrays.
- :func:`batchnorm2d_references`: all of them for one problem in one compiled call (for sweeps).
- :func:`node_gradients`: ∂E/∂ of every intermediate quantity of the training-mode graph.

Importing this module enables float64 in jax (``jax_enable_x64``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

__all__ = [
    "batchnorm2d",
    "batchnorm2d_eval",
    "batchnorm2d_eval_vjp",
    "batchnorm2d_jvp",
    "batchnorm2d_references",
    "batchnorm2d_vjp",
    "node_gradients",
    "running_stats",
]

_AXES = (0, 2, 3)


def _per_channel(v):
    return v[None, :, None, None]


def batchnorm2d(x, gamma, beta, eps=1e-5):
    """y = γ (x − μ) / sqrt(σ² + ε) + β, with μ and the biased σ² of each channel over (N, H, W)."""
    mean = jnp.mean(x, axis=_AXES)
    var = jnp.var(x, axis=_AXES)  # ddof = 0: the biased variance
    return _per_channel(gamma) * (x - _per_channel(mean)) / jnp.sqrt(_per_channel(var) + eps) + _per_channel(beta)


def batchnorm2d_eval(x, gamma, beta, running_mean, running_var, eps=1e-5):
    """y = γ (x − running_mean) / sqrt(running_var + ε) + β: the stored statistics are constants."""
    return (_per_channel(gamma) * (x - _per_channel(running_mean)) / jnp.sqrt(_per_channel(running_var) + eps)
            + _per_channel(beta))


def _running_stats(running_mean, running_var, x, momentum):
    mean = jnp.mean(x, axis=_AXES)
    var = jnp.var(x, axis=_AXES, ddof=1)  # the unbiased variance
    return (1 - momentum) * running_mean + momentum * mean, (1 - momentum) * running_var + momentum * var


def running_stats(running_mean, running_var, x, momentum=0.1):
    """PyTorch's update as numpy arrays: ``(1 − m)·old + m·batch``, with the *unbiased* variance
    (ddof = 1) for ``running_var``."""
    return tuple(np.asarray(a) for a in _running_stats(running_mean, running_var, x, momentum))


@functools.partial(jax.jit, static_argnames=("eps",))
def _vjp(x, gamma, beta, dy, eps):
    y, vjp = jax.vjp(lambda a, g, b: batchnorm2d(a, g, b, eps), x, gamma, beta)
    return (y,) + vjp(dy)


def batchnorm2d_vjp(x, gamma, beta, dy, eps=1e-5):
    """``(y, dx, dgamma, dbeta)`` as numpy arrays: the training-mode forward and ``jax.vjp`` of it at ``dy``."""
    return tuple(np.asarray(a) for a in _vjp(x, gamma, beta, dy, float(eps)))


@functools.partial(jax.jit, static_argnames=("eps",))
def _jvp(x, gamma, beta, v, eps):
    return jax.jvp(lambda a: batchnorm2d(a, gamma, beta, eps), (x,), (v,))[1]


def batchnorm2d_jvp(x, gamma, beta, v, eps=1e-5):
    """``J v`` as a numpy array: the derivative of the training-mode output in the direction ``v`` of x."""
    return np.asarray(_jvp(x, gamma, beta, v, float(eps)))


@functools.partial(jax.jit, static_argnames=("eps",))
def _eval_vjp(x, gamma, beta, running_mean, running_var, dy, eps):
    y, vjp = jax.vjp(lambda a: batchnorm2d_eval(a, gamma, beta, running_mean, running_var, eps), x)
    return y, vjp(dy)[0]


def batchnorm2d_eval_vjp(x, gamma, beta, running_mean, running_var, dy, eps=1e-5):
    """``(y, dx)`` as numpy arrays: the evaluation-mode forward and ``jax.vjp`` of it at ``dy``."""
    return tuple(np.asarray(a) for a in _eval_vjp(x, gamma, beta, running_mean, running_var, dy, float(eps)))


@jax.jit
def _references(x, gamma, beta, dy, running_mean, running_var, eps, momentum):
    y, vjp = jax.vjp(lambda a, g, b: batchnorm2d(a, g, b, eps), x, gamma, beta)
    y_eval, vjp_eval = jax.vjp(lambda a: batchnorm2d_eval(a, gamma, beta, running_mean, running_var, eps), x)
    new_mean, new_var = _running_stats(running_mean, running_var, x, momentum)
    return dict(zip(("dx", "dgamma", "dbeta"), vjp(dy)), y=y, y_eval=y_eval, dx_eval=vjp_eval(dy)[0],
                new_mean=new_mean, new_var=new_var)


def batchnorm2d_references(x, gamma, beta, dy, running_mean, running_var, eps=1e-5, momentum=0.1):
    """Every reference for one problem in one compiled call (eps and momentum traced, so one
    compilation per shape): a dict of numpy arrays with the keys ``y``, ``dx``, ``dgamma``,
    ``dbeta`` (training mode, ``jax.vjp`` at ``dy``), ``y_eval``, ``dx_eval`` (evaluation mode with
    the given running statistics) and ``new_mean``, ``new_var`` (:func:`running_stats`)."""
    out = _references(x, gamma, beta, dy, running_mean, running_var, float(eps), float(momentum))
    return {k: np.asarray(v) for k, v in out.items()}


NODES = ("mean", "x_centred", "var", "inv_std", "x_hat")


def _graph_loss(taps, x, gamma, beta, dy, eps):
    """E = Σ dy ⊙ y through the training-mode graph node by node; ``taps[k]`` is added to node k."""
    mean = jnp.mean(x, axis=_AXES) + taps["mean"]
    x_centred = x - _per_channel(mean) + taps["x_centred"]
    var = jnp.mean(x_centred**2, axis=_AXES) + taps["var"]
    inv_std = 1.0 / jnp.sqrt(var + eps) + taps["inv_std"]
    x_hat = x_centred * _per_channel(inv_std) + taps["x_hat"]
    return jnp.sum(dy * (_per_channel(gamma) * x_hat + _per_channel(beta)))


@jax.jit
def _node_gradients(x, gamma, beta, dy, eps):
    c = x.shape[1]
    taps = {"mean": jnp.zeros(c), "x_centred": jnp.zeros_like(x), "var": jnp.zeros(c),
            "inv_std": jnp.zeros(c), "x_hat": jnp.zeros_like(x)}
    return jax.grad(_graph_loss, argnums=(0, 1))(taps, x, gamma, beta, dy, eps)


def node_gradients(x, gamma, beta, dy, eps=1e-5):
    """∂E/∂t for every node t of the training-mode graph, E = Σ dy ⊙ y, by ``jax.grad``.

    Each node (``mean``, ``x_centred``, ``var``, ``inv_std``, ``x_hat``: the
    quantities of ``cnnref.batchnorm``'s cache) gets an additive tap that is zero;
    the gradient of E with respect to the tap is the gradient with respect to the
    node, everything downstream of it included.
    Returns a dict of numpy arrays with those keys and ``x`` (the input gradient).
    """
    taps, dx = _node_gradients(x, gamma, beta, dy, float(eps))
    return {**{k: np.asarray(v) for k, v in taps.items()}, "x": np.asarray(dx)}
