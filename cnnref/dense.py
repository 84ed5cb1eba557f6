"""The fully connected (dense) layer and the flatten that feeds it (book: "The fully connected head").

Batch-first rows: x (N, D_in), W (D_out, D_in), c (D_out,).

[eq-dense-forward]:  y[n, :] = W x[n, :] + c        i.e.  y = x Wᵀ + c

[eq-dense-backward]: given dy = ∂E/∂y (N, D_out):
    dx = dy W,   dW = dyᵀ x   (summed over the batch),   dc = Σ_n dy[n, :]
"""

from __future__ import annotations

import numpy as np

from ._validate import as_real_array, as_shape, check_shape, result_dtype


def _check_dense(x, W):
    x = as_real_array(x, "x", ndim=2)
    W = as_real_array(W, "W", ndim=2)
    if x.shape[1] != W.shape[1]:
        raise ValueError(
            f"feature mismatch: x has D_in={x.shape[1]} features (shape {x.shape}) but W expects "
            f"D_in={W.shape[1]} (shape {W.shape}, (D_out, D_in))"
        )
    return x, W


def dense_forward(x, W, c=None) -> np.ndarray:
    """y = x Wᵀ + c ([eq-dense-forward]). x: (N, D_in); W: (D_out, D_in); c: (D_out,) or None."""
    x, W = _check_dense(x, W)
    y = x @ W.T
    if c is not None:
        c = as_real_array(c, "c", ndim=1)
        check_shape(c, (W.shape[0],), "c", f"one bias per output unit, D_out={W.shape[0]}")
        y = y + c
    return y


def dense_backward(dy, x, W):
    """(dx, dW, dc) for [eq-dense-forward] given dy = ∂E/∂y of shape (N, D_out) ([eq-dense-backward])."""
    x, W = _check_dense(x, W)
    dy = as_real_array(dy, "dy", ndim=2)
    check_shape(dy, (x.shape[0], W.shape[0]), "dy", "(N, D_out), the shape of dense_forward's output")
    dtype = result_dtype(dy, x, W)
    return (dy @ W).astype(dtype, copy=False), (dy.T @ x).astype(dtype, copy=False), dy.sum(axis=0).astype(dtype, copy=False)


def flatten(a) -> np.ndarray:
    """(N, C, H, W) maps -> (N, C·H·W) rows, in C-order (channel, then row, then column) ([eq-flatten]).

    Returns a **view** of ``a`` (no copy: writing to the result writes to ``a``) whenever numpy's
    reshape can, in particular for every C-contiguous float array. A copy is made only when it
    must be: integer input is first converted to float64, and an ``a`` whose C, H, W axes are not
    laid out in C order (e.g. ``a.transpose(0, 1, 3, 2)``) is copied by the reshape.
    """
    a = as_real_array(a, "a", ndim=4)
    return a.reshape(a.shape[0], -1)


def unflatten(d, shape) -> np.ndarray:
    """Inverse of :func:`flatten` ([eq-flatten] read backwards): (N, C·H·W) -> ``shape`` = (N, C, H, W).

    Returns a **view** of ``d`` for every float ``d`` (splitting the feature axis never needs a
    copy); only integer input is copied (converted to float64).
    """
    d = as_real_array(d, "d", ndim=2)
    shape = as_shape(shape, "shape")
    if len(shape) != 4 or d.shape != (shape[0], int(np.prod(shape[1:]))):
        raise ValueError(f"cannot unflatten an array of shape {d.shape} into {shape}: expected (N, C·H·W) = "
                         f"({shape[0] if shape else '?'}, {int(np.prod(shape[1:])) if len(shape) == 4 else '?'})")
    return d.reshape(shape)
