"""The independent jax oracle for grouped, depthwise and 1×1 convolutions (book: "Grouped,
depthwise and 1×1 convolutions").

Written from jax's primitives only: the grouped layer is ``lax.conv_general_dilated`` with
``feature_group_count``, and every gradient comes from ``jax.vjp`` / ``jax.grad`` of these
forwards, never from a hand-written backward pass. Nothing here imports ``cnnref``'s
implementation (only :mod:`cnnref.book.jaxref`, for its small conversions).

Conventions as in :mod:`cnnref.book.jaxref`: NCHW inputs, OIHW kernels of shape
(C_out, C_in/groups, K_h, K_w), ``padding`` zeros on each side, ``stride`` / ``dilation`` as int
or ``(h, w)`` pair.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .jaxref import conv2d, conv2d_vjp, pair, to_numpy  # the grouped layer: jaxref's, groups=…

jax.config.update("jax_enable_x64", True)

__all__ = [
    "conv2d", "conv2d_vjp", "probe_grads", "block_diagonal", "separable", "separable_vjp",
]


def _probe_loss(x, w, b, g, stride=1, padding=0, dilation=1, groups=1):
    return jnp.sum(g * conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups))


# (dE/dx, dE/dw, dE/db) of the probe loss E = Σ g ⊙ z of the grouped layer: its deltas are g.
probe_grads = jax.grad(_probe_loss, argnums=(0, 1, 2))


def block_diagonal(w, groups):
    """The full kernel (C_out, C_in, K_h, K_w) of a grouped layer's ``w`` (C_out, C_in/groups, K_h, K_w):
    ``w`` in the block of output maps and input maps of each group, zeros elsewhere."""
    w = np.asarray(w)
    c_out, c_g = w.shape[:2]
    o_g = c_out // groups
    full = np.zeros((c_out, groups * c_g) + w.shape[2:], dtype=w.dtype)
    for g in range(groups):
        full[g * o_g : (g + 1) * o_g, g * c_g : (g + 1) * c_g] = w[g * o_g : (g + 1) * o_g]
    return full


def separable(x, w_dw, b_dw, w_pw, b_pw, *, stride=1, padding=0, dilation=1):
    """A depthwise-separable block: the depthwise layer (groups = C_in, w_dw (m·C_in, 1, K_h, K_w))
    with the given stride, padding and dilation, then the pointwise 1×1 layer w_pw (C_out, m·C_in, 1, 1)."""
    h = conv2d(x, w_dw, b_dw, stride=stride, padding=padding, dilation=dilation, groups=x.shape[1])
    return conv2d(h, w_pw, b_pw)


@functools.partial(jax.jit, static_argnames=("stride", "padding", "dilation"))
def _separable_vjp(x, w_dw, b_dw, w_pw, b_pw, dy, stride, padding, dilation):
    f = functools.partial(separable, stride=stride, padding=padding, dilation=dilation)
    y, vjp = jax.vjp(f, x, w_dw, b_dw, w_pw, b_pw)
    return (y,) + vjp(dy)


def separable_vjp(x, w_dw, b_dw, w_pw, b_pw, dy, *, stride=1, padding=0, dilation=1):
    """``(y, dx, dw_dw, db_dw, dw_pw, db_pw)`` as numpy arrays: :func:`separable` and ``jax.vjp``
    of it applied to ``dy``."""
    out = _separable_vjp(x, w_dw, b_dw, w_pw, b_pw, dy, pair(stride), pair(padding), pair(dilation))
    return to_numpy(*out)
