"""The residual block: two 'same' convolutions and a skip connection (book: "Residual connections
and global average pooling").

Shapes (NCHW / OIHW), one channel count C throughout, so that the branch's output can be added to x:

* ``x``, ``y``         : (N, C, H, W)      the block's input and output
* ``w1``, ``w2``       : (C, C, K_h, K_w)   kernels of the two convolutions, K_h and K_w odd
* ``b1``, ``b2``       : (C,) or None       their biases

Forward ([eq-res-forward]), both convolutions with stride 1 and padding P = (K − 1)/2 per side
([eq-same-padding]), so that every map keeps its H × W:

    z1 = conv(x, w1, b1),   a1 = relu(z1),   z2 = conv(a1, w2, b2),   s = x + z2,   y = relu(s)

Backward, given ``dy = ∂E/∂y``, the chain rule through these five steps, in reverse:

* ``δ  = dy ⊙ relu'(s)``                     the delta of the sum ([eq-res-delta-sum]);
* ``(da1, dw2, db2)`` = conv2d_backward of the second convolution for the deltas δ ([eq-res-branch-2]);
* ``δ1 = da1 ⊙ relu'(z1)``                   ([eq-res-delta-1]);
* ``(dx_branch, dw1, db1)`` = conv2d_backward of the first convolution for δ1 ([eq-res-branch-1]);
* ``dx = δ + dx_branch``: the gradient of a sum is the sum of the gradients, and the skip's
  Jacobian is the identity, so δ reaches x unchanged beside the branch's share ([eq-res-input-grad]).

Built from cnnref's layers (``conv2d_forward`` / ``conv2d_backward``, ``relu`` / ``relu_prime``); the
``*_loop`` forms use the loop forms of the convolution and write the element-wise steps, the sum
rule among them, as loops over (n, c, p, q).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validate import as_pair, as_real_array, check_shape
from .activations import relu, relu_prime
from .conv import conv2d_backward, conv2d_backward_loop, conv2d_forward, conv2d_forward_loop


class ResidualCache(NamedTuple):
    """What ``residual_block_backward`` needs from the forward pass ([eq-res-forward])."""

    x: np.ndarray        # (N, C, H, W) the block's input
    w1: np.ndarray       # (C, C, K_h, K_w)
    w2: np.ndarray       # (C, C, K_h, K_w)
    z1: np.ndarray       # (N, C, H, W) complete input of the first convolution
    a1: np.ndarray       # relu(z1), the second convolution's input
    s: np.ndarray        # x + z2, the sum, before the last relu
    padding: tuple[int, int]


def _check_block(x, w1, b1, w2, b2, padding):
    """The block's arguments as arrays, and padding as a pair; every mismatch is named."""
    x = as_real_array(x, "x", ndim=4)
    if x.size == 0:
        raise ValueError(f"x must not be empty, got shape {x.shape}")
    c = x.shape[1]
    padding = as_pair(padding, "padding", 0)
    kernels = []
    for name, w in (("w1", w1), ("w2", w2)):
        w = as_real_array(w, name, ndim=4)
        if w.shape[:2] != (c, c):
            raise ValueError(
                f"{name} must have shape (C, C, K_h, K_w) with C={c}, the channels of x (the block adds "
                f"the branch's output to x, so every convolution keeps C channels), got {w.shape}")
        kh, kw = w.shape[2:]
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(
                f"{name} must have odd kernel sizes (a 'same' convolution with stride 1 pads (K-1)/2 per "
                f"side), got K_h x K_w = {kh} x {kw}")
        same = ((kh - 1) // 2, (kw - 1) // 2)
        if padding != same:
            raise ValueError(
                f"padding must be (K-1)/2 per side = {same} for the {kh} x {kw} kernels of {name}, so that "
                f"the maps keep their size H x W; got padding {padding}")
        kernels.append(w)
    biases = []
    for name, b in (("b1", b1), ("b2", b2)):
        if b is not None:
            b = as_real_array(b, name, ndim=1)
            check_shape(b, (c,), name, f"one bias per channel, C={c}")
        biases.append(b)
    return x, kernels[0], biases[0], kernels[1], biases[1], padding


def _check_dy(dy, cache) -> np.ndarray:
    if not isinstance(cache, ResidualCache):
        raise TypeError(f"cache must be the ResidualCache returned by residual_block_forward, "
                        f"got {type(cache).__name__}")
    dy = as_real_array(dy, "dy", ndim=4)
    check_shape(dy, cache.x.shape, "dy", "the shape of the block's output y, which is the shape of x")
    return dy


def residual_block_forward(x, w1, b1, w2, b2, *, padding=1):
    """``y = relu(x + conv(relu(conv(x, w1, b1)), w2, b2))`` ([eq-res-forward]) and its cache.

    x: (N, C, H, W); w1, w2: (C, C, K_h, K_w) with K_h, K_w odd; b1, b2: (C,) or None.
    padding: int or (h, w) pair, which must be (K_h − 1)/2, (K_w − 1)/2 (both convolutions have
    stride 1 and keep H × W, [eq-same-padding]). Returns ``(y, cache)``: y (N, C, H, W), and the
    ``ResidualCache`` that ``residual_block_backward`` takes.
    """
    x, w1, b1, w2, b2, padding = _check_block(x, w1, b1, w2, b2, padding)
    z1 = conv2d_forward(x, w1, b1, padding=padding)
    a1 = relu(z1)
    z2 = conv2d_forward(a1, w2, b2, padding=padding)
    s = x + z2
    return relu(s), ResidualCache(x, w1, w2, z1, a1, s, padding)


def residual_block_backward(dy, cache):
    """Gradients of a scalar E through the block, given ``dy = ∂E/∂y`` (N, C, H, W).

    cache: the ``ResidualCache`` of ``residual_block_forward``.
    Returns ``(dx, dw1, db1, dw2, db2)`` with the shapes of x, w1, (C,), w2, (C,);
    db1 and db2 also when the forward had no biases (what a zero bias would get).
    """
    dy = _check_dy(dy, cache)
    x, w1, w2, z1, a1, s, padding = cache
    delta = dy * relu_prime(s)  # [eq-res-delta-sum]
    da1, dw2, db2 = conv2d_backward(delta, a1, w2, padding=padding)  # [eq-res-branch-2]
    delta1 = da1 * relu_prime(z1)  # [eq-res-delta-1]
    dxb, dw1, db1 = conv2d_backward(delta1, x, w1, padding=padding)  # [eq-res-branch-1]
    dx = delta + dxb  # [eq-res-input-grad]: the skip's share plus the branch's
    return dx, dw1, db1, dw2, db2


# --- loop forms -------------------------------------------------------------------------------


def residual_block_forward_loop(x, w1, b1, w2, b2, *, padding=1):
    """[eq-res-forward] with ``conv2d_forward_loop`` and the sum and activations as loops. Tiny inputs only."""
    x, w1, b1, w2, b2, padding = _check_block(x, w1, b1, w2, b2, padding)
    z1 = conv2d_forward_loop(x, w1, b1, padding=padding)
    a1 = np.zeros_like(z1)
    N, C, H, W = z1.shape
    for n in range(N):
        for c in range(C):
            for p in range(H):
                for q in range(W):
                    a1[n, c, p, q] = max(z1[n, c, p, q], 0.0)
    z2 = conv2d_forward_loop(a1, w2, b2, padding=padding)
    s = np.zeros(z2.shape, dtype=np.result_type(x, z2))
    y = np.zeros_like(s)
    for n in range(N):
        for c in range(C):
            for p in range(H):
                for q in range(W):
                    s[n, c, p, q] = x[n, c, p, q] + z2[n, c, p, q]
                    y[n, c, p, q] = max(s[n, c, p, q], 0.0)
    return y, ResidualCache(x, w1, w2, z1, a1, s, padding)


def residual_block_backward_loop(dy, cache):
    """The backward steps with ``conv2d_backward_loop`` and the element-wise ones as loops. Tiny inputs only.

    Each entry of x feeds the sum s twice, once directly and once through the branch: its gradient
    is the sum of the two, ``dx[n,c,p,q] = δ[n,c,p,q] + dx_branch[n,c,p,q]`` ([eq-res-input-grad]).
    """
    dy = _check_dy(dy, cache)
    x, w1, w2, z1, a1, s, padding = cache
    N, C, H, W = x.shape
    dtype = np.result_type(dy, s)
    delta = np.zeros(x.shape, dtype=dtype)
    for n in range(N):
        for c in range(C):
            for p in range(H):
                for q in range(W):  # [eq-res-delta-sum]; relu'(0) = 0
                    delta[n, c, p, q] = dy[n, c, p, q] if s[n, c, p, q] > 0 else 0.0
    da1, dw2, db2 = conv2d_backward_loop(delta, a1, w2, padding=padding)  # [eq-res-branch-2]
    delta1 = np.zeros(x.shape, dtype=np.result_type(da1, z1))
    for n in range(N):
        for c in range(C):
            for p in range(H):
                for q in range(W):  # [eq-res-delta-1]
                    delta1[n, c, p, q] = da1[n, c, p, q] if z1[n, c, p, q] > 0 else 0.0
    dx_branch, dw1, db1 = conv2d_backward_loop(delta1, x, w1, padding=padding)  # [eq-res-branch-1]
    dx = np.zeros(x.shape, dtype=np.result_type(delta, dx_branch))
    for n in range(N):
        for c in range(C):
            for p in range(H):
                for q in range(W):  # [eq-res-input-grad]: through the skip, plus through the branch
                    dx[n, c, p, q] = delta[n, c, p, q] + dx_branch[n, c, p, q]
    return dx, dw1, db1, dw2, db2
