"""Minibatch stochastic gradient descent, with optional momentum (book: "Training a CNN on digits").

Plain SGD ([eq-sgd-update]) moves every parameter against its gradient on the
current minibatch, scaled by the learning rate η > 0:

    θ ← θ − η ∂E/∂θ

(source 001 writes it for w and b, source 003 for a filter F with rate α).

With momentum μ ∈ [0, 1) ([eq-sgd-momentum]) a velocity v (zero at the start)
accumulates past gradients, in the form PyTorch's ``torch.optim.SGD`` uses:

    v ← μ v + ∂E/∂θ,    θ ← θ − η v

μ = 0 gives back plain SGD exactly. Parameters and gradients are dicts of
arrays with the same keys and shapes (e.g. :func:`cnnref.network.init_params`).

The learning rate may change from epoch to epoch; :func:`cosine_lr` is the
schedule the training uses ([eq-cosine-lr]):  η_e = η_0 · ½ (1 + cos(π e / E))
for epoch e = 0, …, E − 1 (it starts at η_0 and decays smoothly towards 0).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._validate import as_int, as_real_array


def _check_rate(lr, momentum) -> tuple[float, float]:
    for name, v in (("lr", lr), ("momentum", momentum)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {v!r} of type {type(v).__name__}")
    lr, momentum = float(lr), float(momentum)
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if not (0.0 <= momentum < 1.0):
        raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
    return lr, momentum


def cosine_lr(lr0, epoch: int, epochs: int) -> float:
    """η_0 · ½ (1 + cos(π · epoch / epochs)) ([eq-cosine-lr]), for 0 <= epoch < epochs."""
    lr0, _ = _check_rate(lr0, 0.0)
    epoch, epochs = as_int(epoch, "epoch"), as_int(epochs, "epochs")
    if epochs < 1 or not 0 <= epoch < epochs:
        raise ValueError(f"need 0 <= epoch < epochs with epochs >= 1, got epoch={epoch}, epochs={epochs}")
    return lr0 * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def _check_like(params, other, name):
    if not isinstance(params, dict) or not isinstance(other, dict):
        raise TypeError(f"params and {name} must be dicts of arrays, got {type(params).__name__} and {type(other).__name__}")
    if set(params) != set(other):
        raise ValueError(f"{name} must have the keys of params {tuple(sorted(params))}, got {tuple(sorted(other))}")
    out = {}
    for k in params:
        g = as_real_array(other[k], f"{name}[{k!r}]")
        if g.shape != np.shape(params[k]):
            raise ValueError(f"{name}[{k!r}] must have the shape of params[{k!r}] {np.shape(params[k])}, got {g.shape}")
        out[k] = g
    return out


def sgd_step(params, grads, lr, *, momentum=0.0, velocity=None):
    """One SGD step ([eq-sgd-update], with momentum [eq-sgd-momentum]); nothing is modified in place.

    params, grads: dicts of arrays with the same keys and shapes; lr > 0; momentum in [0, 1);
    velocity: dict like params, or None for zeros (the first step).
    Returns ``(new_params, new_velocity)``: ``v' = μ v + g``, ``θ' = θ − η v'``.
    """
    lr, momentum = _check_rate(lr, momentum)
    grads = _check_like(params, grads, "grads")
    if velocity is None:
        velocity = {k: np.zeros_like(g) for k, g in grads.items()}
    else:
        velocity = _check_like(params, velocity, "velocity")
    new_v = {k: momentum * velocity[k] + grads[k] for k in params}
    new_p = {k: as_real_array(params[k], k) - lr * new_v[k] for k in params}
    return new_p, new_v


class SGD:
    """Stateful wrapper of :func:`sgd_step`: keeps the velocity between calls.

    >>> opt = SGD(lr=0.1, momentum=0.9)
    >>> params = opt.step(params, grads)   # returns the new parameters
    """

    def __init__(self, lr, momentum=0.0):
        self.lr, self.momentum = _check_rate(lr, momentum)
        self.velocity = None

    def step(self, params, grads, lr=None):
        """Apply one step (with rate ``lr``, default ``self.lr``) and return the new parameters (a new dict)."""
        lr = self.lr if lr is None else lr
        params, self.velocity = sgd_step(params, grads, lr, momentum=self.momentum, velocity=self.velocity)
        return params
