"""Independent jax forward functions (and their jax-derived gradients) used as references by the tests.

Nothing here imports ``cnnref``: every reference is written from the library
primitives of jax (``lax.conv_general_dilated``, ``lax.reduce_window``,
``jax.nn``), and every gradient comes from ``jax.vjp`` / ``jax.grad`` of these
forwards, never from a hand-written backward pass.

Conventions match ``cnnref``: NCHW inputs, OIHW kernels, ``padding`` zeros on
*each* side, ``stride`` / ``dilation`` / ``size`` as int or ``(h, w)`` pair.

Importing this module enables float64 in jax (``jax_enable_x64``) so that the
comparisons can be made at ~1e-12 relative.
"""

from __future__ import annotations

import os

# Keep jax on the CPU without probing for accelerators (avoids stderr noise).
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# XLA's LLVM optimisation level only changes how long a kernel takes to
# compile, not what it computes; at level 0 each new shape (hypothesis draws
# many) compiles about twice as fast. Only effective if jax's CPU backend has
# not been initialised yet in this process.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import functools  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

jax.config.update("jax_enable_x64", True)

__all__ = [
    "pair", "conv2d", "conv2d_vjp", "maxpool2d", "avgpool2d", "maxpool2d_vjp", "avgpool2d_vjp", "pool2d_vjps",
    "maxpool2d_reshape_max", "dense", "dense_vjp", "sigmoid", "relu", "tanh", "elementwise_derivative",
    "half_squared_error", "softmax", "softmax_cross_entropy", "to_numpy",
]


def pair(v) -> tuple[int, int]:
    """An int or an (h, w) sequence as a hashable (h, w) tuple (for jit's static arguments)."""
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[1]))
    return (int(v), int(v))


def to_numpy(*arrays):
    out = tuple(np.asarray(a) for a in arrays)
    return out if len(out) > 1 else out[0]


# --- convolution -------------------------------------------------------------------------------


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1):
    """Cross-correlation layer z = b + Σ w ⋆ x_pad, via ``lax.conv_general_dilated`` (NCHW, OIHW, NCHW)."""
    (ph, pw) = pair(padding)
    z = lax.conv_general_dilated(
        x,
        w,
        window_strides=pair(stride),
        padding=[(ph, ph), (pw, pw)],
        rhs_dilation=pair(dilation),
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        precision=lax.Precision.HIGHEST,
    )
    if b is not None:
        z = z + b[None, :, None, None]
    return z


@functools.partial(jax.jit, static_argnames=("stride", "padding", "dilation"))
def _conv2d_vjp(x, w, b, dz, stride, padding, dilation):
    f = functools.partial(conv2d, stride=stride, padding=padding, dilation=dilation)
    z, vjp = jax.vjp(f, x, w, b)
    return (z,) + vjp(dz)


def conv2d_vjp(x, w, b, dz, *, stride=1, padding=0, dilation=1):
    """``(z, dx, dw, db)`` as numpy arrays: the forward and ``jax.vjp`` of it applied to ``dz``."""
    return to_numpy(*_conv2d_vjp(x, w, b, dz, pair(stride), pair(padding), pair(dilation)))


def conv2d_output_shape(x_shape, w_shape, *, stride=1, padding=0, dilation=1) -> tuple[int, ...]:
    """Shape jax gives the conv output, by abstract evaluation (no compilation)."""
    spec_x = jax.ShapeDtypeStruct(tuple(x_shape), jnp.float64)
    spec_w = jax.ShapeDtypeStruct(tuple(w_shape), jnp.float64)
    f = functools.partial(conv2d, stride=stride, padding=padding, dilation=dilation)
    return tuple(jax.eval_shape(f, spec_x, spec_w).shape)


# --- pooling -----------------------------------------------------------------------------------


def _pool_dims(size, stride):
    (kh, kw) = pair(size)
    (sh, sw) = pair(size if stride is None else stride)
    return (1, 1, kh, kw), (1, 1, sh, sw)


def maxpool2d(x, size, stride=None):
    """Max over (K_h, K_w) windows with ``lax.reduce_window(…, lax.max, …)``, no padding."""
    dims, strides = _pool_dims(size, stride)
    return lax.reduce_window(x, np.array(-np.inf, x.dtype), lax.max, dims, strides, "VALID")


def avgpool2d(x, size, stride=None):
    """Mean over (K_h, K_w) windows: ``lax.reduce_window(…, lax.add, …) / (K_h K_w)``, no padding."""
    dims, strides = _pool_dims(size, stride)
    return lax.reduce_window(x, np.array(0, x.dtype), lax.add, dims, strides, "VALID") / (dims[2] * dims[3])


def maxpool2d_reshape_max(x, size):
    """Non-overlapping max pooling as ``jnp.max`` over reshaped windows (needs H, W divisible by size).

    Its gradient splits ``dy`` evenly among tied maxima, unlike ``reduce_window``.
    """
    kh, kw = pair(size)
    n, c, h, w = x.shape
    return jnp.max(x.reshape(n, c, h // kh, kh, w // kw, kw), axis=(3, 5))


@functools.partial(jax.jit, static_argnames=("kind", "size", "stride"))
def _pool_vjp(x, dy, kind, size, stride):
    f = maxpool2d if kind == "max" else avgpool2d
    y, vjp = jax.vjp(lambda a: f(a, size, stride), x)
    return y, vjp(dy)[0]


@functools.partial(jax.jit, static_argnames=("size", "stride"))
def _both_pool_vjps(x, dy, size, stride):
    return _pool_vjp(x, dy, "max", size, stride) + _pool_vjp(x, dy, "avg", size, stride)


def pool2d_vjps(x, dy, size, stride=None):
    """``(y_max, dx_max, y_avg, dx_avg)``: both poolings and their ``jax.vjp`` in one compiled call."""
    return to_numpy(*_both_pool_vjps(x, dy, pair(size), pair(size if stride is None else stride)))


def maxpool2d_vjp(x, dy, size, stride=None):
    """``(y, dx)`` for max pooling: forward and ``jax.vjp`` of ``reduce_window`` max applied to ``dy``."""
    return to_numpy(*_pool_vjp(x, dy, "max", pair(size), pair(size if stride is None else stride)))


def avgpool2d_vjp(x, dy, size, stride=None):
    """``(y, dx)`` for mean pooling: forward and ``jax.vjp`` applied to ``dy``."""
    return to_numpy(*_pool_vjp(x, dy, "avg", pair(size), pair(size if stride is None else stride)))


# --- dense, activations, losses ----------------------------------------------------------------


def dense(x, W, c=None):
    """y = x Wᵀ + c, batch-first rows."""
    y = jnp.matmul(x, W.T, precision=lax.Precision.HIGHEST)
    return y if c is None else y + c


def dense_vjp(x, W, c, dy):
    """``(y, dx, dW, dc)`` from ``jax.vjp`` of :func:`dense`."""
    y, vjp = jax.vjp(dense, x, W, c)
    return to_numpy(y, *vjp(dy))


sigmoid = jax.nn.sigmoid
relu = jax.nn.relu  # jax.nn.relu's derivative at 0 is 0 (jnp.maximum(z, 0)'s would be 0.5)
tanh = jnp.tanh


def elementwise_derivative(f, z):
    """φ'(z) element by element, as ``jax.vmap(jax.grad(φ))`` over the flattened array."""
    z = jnp.asarray(z)
    return np.asarray(jax.vmap(jax.grad(f))(z.reshape(-1)).reshape(z.shape))


def _scale(n, reduction):
    return 1.0 if reduction == "sum" else 1.0 / n


def half_squared_error(o, t, reduction="sum"):
    """E = ½ Σ (t − o)², divided by N = o.shape[0] for ``"mean"``."""
    return 0.5 * jnp.sum((t - o) ** 2) * _scale(o.shape[0], reduction)


def softmax(s):
    return jax.nn.softmax(s, axis=1)


def softmax_cross_entropy(s, labels, reduction="mean"):
    """E = −Σ_n log softmax(s_n)[y_n], via ``jax.nn.log_softmax``; divided by N for ``"mean"``."""
    log_p = jax.nn.log_softmax(s, axis=1)
    picked = jnp.take_along_axis(log_p, jnp.asarray(labels)[:, None], axis=1)
    return -jnp.sum(picked) * _scale(s.shape[0], reduction)
