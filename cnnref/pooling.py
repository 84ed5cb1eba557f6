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

from ._validate import check_pool, check_pool_dy


def _tap(a, u, v, stride, out_hw):
    """View of tap (u, v) of every window: ``a[..., s_h i + u, s_w j + v]`` for all (i, j), shape (N, C, H', W').

    Working tap by tap (K_h·K_w whole-array operations on strided views)
    instead of reducing over the window axes is what makes pooling fast in numpy.
    """
    (sh, sw), (ho, wo) = stride, out_hw
    return a[:, :, u : u + sh * (ho - 1) + 1 : sh, v : v + sw * (wo - 1) + 1 : sw]


def maxpool2d_forward(x, size, stride=None) -> np.ndarray:
    """Max over each window ([eq-maxpool-forward]). x: (N, C, H, W) -> (N, C, H', W')."""
    x, size, stride, out_hw = check_pool(x, size, stride)
    y = _tap(x, 0, 0, stride, out_hw).copy()
    for u in range(size[0]):
        for v in range(size[1]):
            if u or v:
                np.maximum(y, _tap(x, u, v, stride, out_hw), out=y)  # NaN propagates
    return y


def _argmax_tap(x, size, stride, out_hw) -> np.ndarray:
    """Row-major tap number ``u·K_w + v`` of each window's first maximum (the tie rule), shape (N, C, H', W').

    Taps are visited in row-major order and a later tap wins only if it is
    strictly greater, so among equal maxima the first one is kept. A NaN beats
    any number (as ``np.argmax`` and PyTorch treat it), and the first NaN wins.
    Written without masked assignment: with random data about half the
    windows change their winner at each tap, and branch-free ``maximum`` and
    integer arithmetic are 20-50x faster than ``a[mask] = ...`` on such masks.
    """
    best = _tap(x, 0, 0, stride, out_hw).copy()
    n_taps = size[0] * size[1]
    arg = np.zeros(best.shape, dtype=np.uint8 if n_taps <= 256 else np.int64)
    any_nan = bool(np.isnan(x).any())
    for t in range(1, n_taps):
        cand = _tap(x, t // size[1], t % size[1], stride, out_hw)
        wins = cand > best  # False whenever either side is NaN
        if any_nan:
            wins |= np.isnan(cand) & ~np.isnan(best)
        np.maximum(best, cand, out=best)  # a NaN, once in, stays (so the first NaN keeps winning)
        # every earlier winner is a smaller tap number, so "t where wins, else arg" is a maximum
        np.maximum(arg, wins * arg.dtype.type(t), out=arg)
    return arg


def maxpool2d_backward(dy, x, size, stride=None) -> np.ndarray:
    """Gradient of max pooling ([eq-maxpool-backward]): ``dy`` routed to each window's arg-max.

    dy: (N, C, H', W'); x: the forward input (N, C, H, W). Returns dx like x.
    With overlapping windows, a pixel that is the arg-max of several windows
    receives the sum of their gradients (the scatter-add below).
    """
    x, size, stride, out_hw = check_pool(x, size, stride)
    dy = check_pool_dy(dy, x, out_hw)
    arg = _argmax_tap(x, size, stride, out_hw)
    dtype = np.result_type(x, dy)
    (kh, kw), (sh, sw), (ho, wo) = size, stride, out_hw
    if sh < kh or sw < kw:
        # Overlapping windows: one pixel can be the arg-max of several windows, so the
        # gradients are scatter-added at the flat index of each window's winner.
        n, c, h, w = x.shape
        rows = np.arange(ho)[:, None] * sh + arg // kw
        cols = np.arange(wo)[None, :] * sw + arg % kw
        flat = (np.arange(n * c).reshape(n, c, 1, 1) * h + rows) * w + cols
        dx = np.bincount(flat.ravel(), weights=dy.ravel(), minlength=x.size)
        return dx.reshape(x.shape).astype(dtype, copy=False)
    dx = np.zeros(x.shape, dtype=dtype)
    zero = dtype.type(0)
    for u in range(kh):
        for v in range(kw):  # disjoint windows: each pixel belongs to at most one tap of one window
            _tap(dx, u, v, stride, out_hw)[...] = np.where(arg == u * kw + v, dy, zero)
    return dx


def avgpool2d_forward(x, size, stride=None) -> np.ndarray:
    """Mean over each window ([eq-avgpool-forward]). x: (N, C, H, W) -> (N, C, H', W')."""
    x, size, stride, out_hw = check_pool(x, size, stride)
    y = _tap(x, 0, 0, stride, out_hw).copy()
    for u in range(size[0]):
        for v in range(size[1]):
            if u or v:
                y += _tap(x, u, v, stride, out_hw)
    y /= size[0] * size[1]
    return y


def avgpool2d_backward(dy, x, size, stride=None) -> np.ndarray:
    """Gradient of mean pooling ([eq-avgpool-backward]): ``dy / (K_h K_w)`` spread over each window.

    dy: (N, C, H', W'); x: the forward input (only its shape is used). Returns dx like x.
    """
    x, size, stride, out_hw = check_pool(x, size, stride)
    dy = check_pool_dy(dy, x, out_hw)
    (kh, kw), (sh, sw), (ho, wo) = size, stride, out_hw
    share = dy / (kh * kw)
    dx = np.zeros(x.shape, dtype=np.result_type(x, dy))
    for u in range(kh):
        for v in range(kw):
            _tap(dx, u, v, stride, out_hw)[...] += share
    return dx


# --- loop forms -------------------------------------------------------------------------------


def maxpool2d_backward_loop(dy, x, size, stride=None) -> np.ndarray:
    """[eq-maxpool-backward] window by window, scanning each window row-major for its first maximum."""
    x, (kh, kw), (sh, sw), (ho, wo) = check_pool(x, size, stride)
    dy = check_pool_dy(dy, x, (ho, wo))
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
    x, (kh, kw), (sh, sw), (ho, wo) = check_pool(x, size, stride)
    dy = check_pool_dy(dy, x, (ho, wo))
    dx = np.zeros(x.shape, dtype=np.result_type(x, dy))
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(ho):
                for j in range(wo):
                    for u in range(kh):
                        for v in range(kw):
                            dx[n, c, sh * i + u, sw * j + v] += dy[n, c, i, j] / (kh * kw)
    return dx
