"""The book's independent oracle in jax: every layer, loss and the digits network, from jax alone.

Nothing here imports ``cnnref``'s implementation (``tests/test_book_helpers.py`` checks it): every
reference is written from jax's own primitives (``lax.conv_general_dilated``,
``lax.reduce_window``, ``jax.nn``), and every gradient comes from ``jax.vjp`` / ``jax.grad`` of
these forwards, never from a hand-written backward pass. The chapters and the tests both check
``cnnref`` against it.

Conventions match ``cnnref``: NCHW inputs, OIHW kernels, ``padding`` zeros on *each* side,
``stride`` / ``dilation`` / ``size`` as int or ``(h, w)`` pair.

Importing this module enables float64 in jax (``jax_enable_x64``) so that the comparisons can be
made at ~1e-12 relative.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import jax.scipy.signal
import numpy as np
from jax import lax

jax.config.update("jax_enable_x64", True)

__all__ = [
    "pair", "conv2d", "conv2d_vjp", "maxpool2d", "avgpool2d", "maxpool2d_vjp", "avgpool2d_vjp", "pool2d_vjps",
    "maxpool2d_reshape_max", "dense", "dense_vjp", "sigmoid", "relu", "tanh", "elementwise_derivative",
    "half_squared_error", "softmax", "softmax_cross_entropy", "to_numpy", "probe_loss", "probe_grads", "matlab_layer", "cnn_forward", "cnn_loss", "cnn_sgd_step",
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


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1):
    """The layer z = b + Σ_c w ⋆ x_pad (a cross-correlation, eq-layer-forward) by
    lax.conv_general_dilated; x NCHW, w OIHW, padding zeros on each side. With
    ``groups`` > 1 each output map sums over its own group's input maps only
    (``feature_group_count``), w of shape (C_out, C_in/groups, K_h, K_w)."""
    (ph, pw) = pair(padding)
    z = lax.conv_general_dilated(
        x,
        w,
        window_strides=pair(stride),
        padding=[(ph, ph), (pw, pw)],
        rhs_dilation=pair(dilation),
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        feature_group_count=int(groups),
        precision=lax.Precision.HIGHEST,
    )
    if b is not None:
        z = z + b[None, :, None, None]
    return z


@functools.partial(jax.jit, static_argnames=("stride", "padding", "dilation", "groups"))
def _conv2d_vjp(x, w, b, dz, stride, padding, dilation, groups):
    f = functools.partial(conv2d, stride=stride, padding=padding, dilation=dilation, groups=groups)
    z, vjp = jax.vjp(f, x, w, b)
    return (z,) + vjp(dz)


def conv2d_vjp(x, w, b, dz, *, stride=1, padding=0, dilation=1, groups=1):
    """``(z, dx, dw, db)`` as numpy arrays: the forward and ``jax.vjp`` of it applied to ``dz``."""
    return to_numpy(*_conv2d_vjp(x, w, b, dz, pair(stride), pair(padding), pair(dilation), int(groups)))


def probe_loss(x, w, b, g, **settings):
    """E = Σ g ⊙ z for the layer z = conv2d(x, w, b, **settings): its deltas are
    exactly g ([eq-wg-probe]), so jax.grad of it gives the layer's gradients."""
    return jnp.sum(g * conv2d(x, w, b, **settings))


def matlab_layer(maps, kernels, bias):
    """Source 004's layer in jax ([eq-ml-layer]): z_o = b_o + Σ_c a_c ∗ k_{c,o}, a true 'valid'
    convolution (kernel flipped) of every input map with its kernel, by ``jax.scipy.signal.convolve``.

    maps (C_in, H, W), kernels (C_in, C_out, K_h, K_w) (input map first, as the source writes them),
    bias (C_out,) -> (C_out, H − K_h + 1, W − K_w + 1).
    """
    c_in, c_out = kernels.shape[:2]
    return jnp.stack([bias[o] + sum(jax.scipy.signal.convolve(maps[c], kernels[c, o], mode="valid")
                                    for c in range(c_in)) for o in range(c_out)])


# (dE/dx, dE/dw, dE/db) of the probe loss: jax's gradients of the layer for the imposed deltas g.
probe_grads = jax.grad(probe_loss, argnums=(0, 1, 2))


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


# --- the digits network of the training chapter --------------------------------------------------


def cnn_forward(p, x, loss="ce"):
    """The digits CNN (cnnref.network's default network, names w1, b1, w2, b2, W, c): two
    3 × 3 convolutions with one zero of padding, each followed by φ and 2 × 2 pooling,
    then a dense layer. loss="ce": φ = ReLU, max pooling, returns the logits;
    "sse": φ = sigmoid, mean pooling, returns the sigmoid of the dense output."""
    phi, pool = (relu, maxpool2d) if loss == "ce" else (sigmoid, avgpool2d)
    h = pool(phi(conv2d(x, p["w1"], p["b1"], padding=1)), 2)
    h = pool(phi(conv2d(h, p["w2"], p["b2"], padding=1)), 2)
    s = dense(h.reshape(h.shape[0], -1), p["W"], p["c"])
    return s if loss == "ce" else sigmoid(s)


def cnn_loss(p, x, y, loss="ce"):
    """Batch-mean loss of cnn_forward for integer labels y: softmax cross-entropy
    ("ce") or ½ squared error against one-hot targets ("sse")."""
    out = cnn_forward(p, x, loss)
    if loss == "ce":
        return softmax_cross_entropy(out, y, reduction="mean")
    t = jax.nn.one_hot(y, out.shape[1], dtype=out.dtype)
    return half_squared_error(out, t, reduction="mean")


@functools.partial(jax.jit, static_argnames="loss")
def cnn_sgd_step(p, v, x, y, lr, momentum, loss="ce"):
    """One SGD + momentum step on ``jax.grad`` of :func:`cnn_loss`: v ← μ v + g, p ← p − η v
    (the update of ``cnnref.optim.SGD``); returns ``(p, v)``."""
    g = jax.grad(cnn_loss)(p, x, y, loss)
    v = jax.tree_util.tree_map(lambda vk, gk: momentum * vk + gk, v, g)
    p = jax.tree_util.tree_map(lambda pk, vk: pk - lr * vk, p, v)
    return p, v
