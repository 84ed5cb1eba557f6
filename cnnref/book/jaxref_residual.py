"""The jax oracle of the residual chapter: the residual block, its plain twin and global average
pooling, from jax alone, and their gradients by ``jax.vjp``.

Nothing here imports ``cnnref``'s implementation: the convolution is ``jaxref.conv2d``
(``lax.conv_general_dilated``), the activation ``jax.nn.relu`` (derivative 0 at 0, as
``cnnref.relu_prime``), the mean ``jnp.mean``; every gradient comes from ``jax.vjp`` of these
forwards. Conventions as in :mod:`cnnref.book.jaxref` (NCHW, OIHW, padding zeros on each side).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from .jaxref import conv2d, pair, relu, to_numpy

__all__ = [
    "residual_block", "plain_block", "residual_block_vjp", "stack", "stack_input_grad",
    "global_avgpool2d", "global_avgpool2d_vjp",
]


def residual_block(x, w1, b1, w2, b2, padding=1):
    """y = relu(x + conv(relu(conv(x, w1, b1)), w2, b2)), both convolutions stride 1 with
    ``padding`` zeros per side (the 'same' padding (K − 1)/2 for odd K)."""
    a1 = relu(conv2d(x, w1, b1, padding=padding))
    return relu(x + conv2d(a1, w2, b2, padding=padding))


def plain_block(x, w1, b1, w2, b2, padding=1):
    """The same two convolutions without the skip: y = relu(conv(relu(conv(x, w1, b1)), w2, b2))."""
    a1 = relu(conv2d(x, w1, b1, padding=padding))
    return relu(conv2d(a1, w2, b2, padding=padding))


@functools.partial(jax.jit, static_argnames=("padding",))
def _block_vjp(x, w1, b1, w2, b2, dy, padding):
    y, vjp = jax.vjp(lambda *a: residual_block(*a, padding=padding), x, w1, b1, w2, b2)
    return (y,) + vjp(dy)


def residual_block_vjp(x, w1, b1, w2, b2, dy, *, padding=1):
    """``(y, dx, dw1, db1, dw2, db2)`` as numpy arrays: the block and ``jax.vjp`` of it applied to dy.

    A bias given as None is a bias of zeros (the same y); its gradient is then the one a bias held
    at zero receives.
    """
    c = w1.shape[0]
    b1 = jnp.zeros((c,), dtype=jnp.result_type(x, w1)) if b1 is None else b1
    b2 = jnp.zeros((c,), dtype=jnp.result_type(x, w2)) if b2 is None else b2
    return to_numpy(*_block_vjp(x, w1, b1, w2, b2, dy, pair(padding)))


def stack(x, params, residual=True, padding=1):
    """L blocks one after the other, params a list of (w1, b1, w2, b2): residual or plain blocks."""
    block = residual_block if residual else plain_block
    for w1, b1, w2, b2 in params:
        x = block(x, w1, b1, w2, b2, padding=padding)
    return x


def stack_input_grad(x, params, g, residual=True, padding=1):
    """The gradient of E = Σ g ⊙ (output of the stack) with respect to the stack's input x, as a
    numpy array, by ``jax.vjp`` of :func:`stack`."""
    _, vjp = jax.vjp(lambda t: stack(t, params, residual, padding), x)
    return to_numpy(vjp(g)[0])


def global_avgpool2d(x):
    """The mean of every map: (N, C, H, W) -> (N, C), by ``jnp.mean`` over the last two axes."""
    return jnp.mean(x, axis=(2, 3))


@jax.jit
def _gap_vjp(x, dy):
    y, vjp = jax.vjp(global_avgpool2d, x)
    return (y,) + vjp(dy)


def global_avgpool2d_vjp(x, dy):
    """``(y, dx)`` as numpy arrays: global average pooling and ``jax.vjp`` of it applied to dy (N, C)."""
    return to_numpy(*_gap_vjp(x, dy))
