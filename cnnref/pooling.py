"""Max and mean (average) pooling, forward and backward (book: "Pooling backward").

Shapes: x (N, C, H, W) -> y (N, C, H', W') with ``H' = output_size(H, size, stride)``
(no padding). ``size`` and ``stride`` take an int or an ``(h, w)`` pair;
``stride`` defaults to ``size`` (non-overlapping windows). Overlapping windows
(stride < size) are allowed: an input pixel in several windows collects the
gradient of each. Rows and columns past the last full window (when the stride
does not divide evenly) are never read and get zero gradient.

Window ``(i, j)`` covers ``x[..., s_h i : s_h i + K_h, s_w j : s_w j + K_w]``.

* max pooling ([eq-maxpool-forward], [eq-maxpool-backward]): ``y = max`` over
  the window; the gradient ``dy[i, j]`` goes to the arg-max.
  **Tie rule:** when several entries of a window share the maximum, the whole
  gradient goes to the *first* of them in row-major order within the window
  (smallest row, then smallest column). This is what PyTorch's ``max_pool2d``
  and the gradient of ``jax.lax.reduce_window(..., lax.max, ...)`` do;
  ``jnp.max`` over a reshaped window splits it evenly among the ties instead.
  NaN in a window is treated as the maximum (it propagates to ``y``).
* mean pooling ([eq-avgpool-forward], [eq-avgpool-backward]): ``y`` is the
  window mean; every entry of the window receives ``dy[i, j] / (K_h K_w)``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._validate import as_pair, as_real_array, check_shape
from .sizes import output_size


def _check_pool(x, size, stride):
    x = as_real_array(x, "x", ndim=4)
    if x.size == 0:
        raise ValueError(f"x must not be empty, got shape {x.shape}")
    size = as_pair(size, "size", 1)
    stride = size if stride is None else as_pair(stride, "stride", 1)
    out_hw = (output_size(x.shape[2], size[0], stride[0]), output_size(x.shape[3], size[1], stride[1]))
    return x, size, stride, out_hw


def _windows(x, size, stride, out_hw):
    """View of shape (N, C, H', W', K_h, K_w): window (i, j) of every map."""
    win = sliding_window_view(x, size, axis=(2, 3))[:, :, :: stride[0], :: stride[1]]
    return win[:, :, : out_hw[0], : out_hw[1]]


def _check_dy(dy, x, out_hw):
    dy = as_real_array(dy, "dy", ndim=4)
    check_shape(dy, x.shape[:2] + out_hw, "dy", "the shape of the pooling output for this x, size and stride")
    return dy


def maxpool2d_forward(x, size, stride=None) -> np.ndarray:
    """Max over each window ([eq-maxpool-forward]). x: (N, C, H, W) -> (N, C, H', W')."""
    x, size, stride, out_hw = _check_pool(x, size, stride)
    return _windows(x, size, stride, out_hw).max(axis=(4, 5))


def _argmax_flat(x, size, stride, out_hw) -> np.ndarray:
    """Flat index into ``x`` of each window's first maximum (the tie rule), shape (N, C, H', W')."""
    n, c, h, w = x.shape
    win = _windows(x, size, stride, out_hw).reshape(n, c, *out_hw, size[0] * size[1])
    k = np.argmax(win, axis=-1)  # first occurrence = row-major tie rule; NaN counts as the max
    du, dv = np.divmod(k, size[1])
    rows = np.arange(out_hw[0])[:, None] * stride[0] + du
    cols = np.arange(out_hw[1])[None, :] * stride[1] + dv
    plane = (np.arange(n)[:, None] * c + np.arange(c)[None, :])[:, :, None, None]
    return (plane * h + rows) * w + cols


def maxpool2d_backward(dy, x, size, stride=None) -> np.ndarray:
    """Gradient of max pooling ([eq-maxpool-backward]): ``dy`` routed to each window's arg-max.

    dy: (N, C, H', W'); x: the forward input (N, C, H, W). Returns dx like x.
    With overlapping windows, a pixel that is the arg-max of several windows
    receives the sum of their gradients.
    """
    x, size, stride, out_hw = _check_pool(x, size, stride)
    dy = _check_dy(dy, x, out_hw)
    idx = _argmax_flat(x, size, stride, out_hw)
    dtype = np.result_type(x, dy)
    if stride[0] >= size[0] and stride[1] >= size[1]:
        dx = np.zeros(x.size, dtype=dtype)
        dx[idx.ravel()] = dy.ravel()  # windows are disjoint: every index appears at most once
    else:
        dx = np.bincount(idx.ravel(), weights=dy.ravel(), minlength=x.size).astype(dtype, copy=False)
    return dx.reshape(x.shape)


def avgpool2d_forward(x, size, stride=None) -> np.ndarray:
    """Mean over each window ([eq-avgpool-forward]). x: (N, C, H, W) -> (N, C, H', W')."""
    x, size, stride, out_hw = _check_pool(x, size, stride)
    return _windows(x, size, stride, out_hw).mean(axis=(4, 5))


def avgpool2d_backward(dy, x, size, stride=None) -> np.ndarray:
    """Gradient of mean pooling ([eq-avgpool-backward]): ``dy / (K_h K_w)`` spread over each window.

    dy: (N, C, H', W'); x: the forward input (only its shape is used). Returns dx like x.
    """
    x, size, stride, out_hw = _check_pool(x, size, stride)
    dy = _check_dy(dy, x, out_hw)
    (kh, kw), (sh, sw), (ho, wo) = size, stride, out_hw
    share = dy / (kh * kw)
    dx = np.zeros(x.shape, dtype=np.result_type(x, dy))
    for u in range(kh):
        for v in range(kw):
            dx[:, :, u : u + sh * (ho - 1) + 1 : sh, v : v + sw * (wo - 1) + 1 : sw] += share
    return dx


# --- loop forms -------------------------------------------------------------------------------


def maxpool2d_backward_loop(dy, x, size, stride=None) -> np.ndarray:
    """[eq-maxpool-backward] window by window, scanning each window row-major for its first maximum."""
    x, (kh, kw), (sh, sw), (ho, wo) = _check_pool(x, size, stride)
    dy = _check_dy(dy, x, (ho, wo))
    dx = np.zeros(x.shape, dtype=np.result_type(x, dy))
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(ho):
                for j in range(wo):
                    best = None
                    for u in range(kh):
                        for v in range(kw):
                            val = x[n, c, sh * i + u, sw * j + v]
                            if best is None or val > best[0] or (np.isnan(val) and not np.isnan(best[0])):
                                best = (val, u, v)
                    _, u, v = best
                    dx[n, c, sh * i + u, sw * j + v] += dy[n, c, i, j]
    return dx


def avgpool2d_backward_loop(dy, x, size, stride=None) -> np.ndarray:
    """[eq-avgpool-backward] window by window."""
    x, (kh, kw), (sh, sw), (ho, wo) = _check_pool(x, size, stride)
    dy = _check_dy(dy, x, (ho, wo))
    dx = np.zeros(x.shape, dtype=np.result_type(x, dy))
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(ho):
                for j in range(wo):
                    for u in range(kh):
                        for v in range(kw):
                            dx[n, c, sh * i + u, sw * j + v] += dy[n, c, i, j] / (kh * kw)
    return dx
