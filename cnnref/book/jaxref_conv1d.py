"""The jax oracle of the chapter "One, two and more dimensions": a convolution with any number of spatial axes.

Written from ``lax.conv_general_dilated`` alone, importing nothing of ``cnnref``'s implementation
(only ``to_numpy`` from ``cnnref.book.jaxref``); every gradient comes from ``jax.vjp`` /
``jax.grad`` of the forward here, never from a hand-written backward pass.

Conventions match ``cnnref``: channels first, ``x`` (N, C_in, L_1, …, L_D), ``w``
(C_out, C_in/G, K_1, …, K_D) (lax's default layout for D spatial axes: NC + spatial,
OI + spatial), ``padding`` zeros on *each* side; ``stride`` / ``padding`` / ``dilation`` an int
(the same on every axis) or one int per spatial axis; ``groups`` as in PyTorch
(``feature_group_count`` in lax).

Importing this module enables float64 in jax (through ``cnnref.book.jaxref``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from .jaxref import to_numpy

__all__ = ["conv1d", "conv1d_vjp", "conv3d", "convnd", "convnd_vjp", "per_axis", "probe_grads_nd", "probe_loss_nd"]


def per_axis(v, dims: int) -> tuple[int, ...]:
    """An int or a sequence of ``dims`` ints as a hashable tuple of ``dims`` ints."""
    if isinstance(v, (tuple, list)):
        if len(v) != dims:
            raise ValueError(f"expected an int or {dims} ints, got {v!r}")
        return tuple(int(a) for a in v)
    return (int(v),) * dims


def convnd(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1):
    """z = b + Σ_c w ⋆ x_pad over D = x.ndim − 2 spatial axes (a cross-correlation, as
    eq-nd-general-forward), by ``lax.conv_general_dilated``."""
    dims = x.ndim - 2
    z = lax.conv_general_dilated(
        x,
        w,
        window_strides=per_axis(stride, dims),
        padding=[(p, p) for p in per_axis(padding, dims)],
        rhs_dilation=per_axis(dilation, dims),
        feature_group_count=int(groups),
        precision=lax.Precision.HIGHEST,
    )
    if b is not None:
        z = z + b.reshape((1, -1) + (1,) * dims)
    return z


def conv1d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1):
    """The 1-D layer (eq-nd-forward): x (N, C_in, L), w (C_out, C_in/G, K) -> (N, C_out, L')."""
    if x.ndim != 3 or w.ndim != 3:
        raise ValueError(f"conv1d takes 3-D x and w, got {x.ndim}-D and {w.ndim}-D")
    return convnd(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv3d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1):
    """The 3-D layer: x (N, C_in, L_1, L_2, L_3), w (C_out, C_in/G, K_1, K_2, K_3)."""
    if x.ndim != 5 or w.ndim != 5:
        raise ValueError(f"conv3d takes 5-D x and w, got {x.ndim}-D and {w.ndim}-D")
    return convnd(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


@functools.partial(jax.jit, static_argnames=("stride", "padding", "dilation", "groups"))
def _convnd_vjp(x, w, b, dz, stride, padding, dilation, groups):
    f = functools.partial(convnd, stride=stride, padding=padding, dilation=dilation, groups=groups)
    z, vjp = jax.vjp(f, x, w, b)
    return (z,) + vjp(dz)


def convnd_vjp(x, w, b, dz, *, stride=1, padding=0, dilation=1, groups=1):
    """``(z, dx, dw, db)`` as numpy arrays: the forward and ``jax.vjp`` of it applied to ``dz``."""
    dims = x.ndim - 2
    settings = {"stride": per_axis(stride, dims), "padding": per_axis(padding, dims),
                "dilation": per_axis(dilation, dims), "groups": int(groups)}
    return to_numpy(*_convnd_vjp(x, w, b, dz, **settings))


def conv1d_vjp(x, w, b, dz, *, stride=1, padding=0, dilation=1, groups=1):
    """``(z, dx, dw, db)`` of the 1-D layer, from ``jax.vjp``."""
    if x.ndim != 3 or w.ndim != 3:
        raise ValueError(f"conv1d_vjp takes 3-D x and w, got {x.ndim}-D and {w.ndim}-D")
    return convnd_vjp(x, w, b, dz, stride=stride, padding=padding, dilation=dilation, groups=groups)


def probe_loss_nd(x, w, b, g, **settings):
    """E = Σ g ⊙ z for z = convnd(x, w, b, **settings): its deltas are exactly g."""
    return jnp.sum(g * convnd(x, w, b, **settings))


# (dE/dx, dE/dw, dE/db) of the probe loss, for any number of spatial axes.
probe_grads_nd = jax.grad(probe_loss_nd, argnums=(0, 1, 2))
