"""Deliberately WRONG backward passes: the classic mistakes, one per function (book: "Checking gradients").

Never use these to train anything. Each function is a copy of a correct
``cnnref`` backward pass (named in its docstring) with exactly one bug
injected, marked by a ``# BUG:`` comment, and has the same signature and
return shapes as the function it copies (except where the bug itself changes
a shape). The book and ``tests/test_bug_gallery.py`` show which check
catches each bug and which weaker check lets it through:

* ``backward_no_flip`` (copies [eq-input-grad-transposed]): missed with a kernel symmetric under rot180.
* ``backward_wrong_flip_axes`` (copies [eq-input-grad-transposed]): missed with one input and one
  output channel.
* ``backward_assign_not_accumulate`` (copies ``conv2d_backward``): missed when no two kernel taps
  read the same pixel (1×1 kernels, stride >= the dilated kernel span K̃).
* ``backward_dropped_remainder`` (copies [eq-input-grad-transposed]): missed whenever the stride
  divides ``H + 2P − K̃`` (always at s = 1).
* ``avgpool_backward_dropped_mean`` (copies [eq-avgpool-backward]): missed by checks that compare
  directions only (cosine similarity).
* ``half_squared_error_grad_dropped_mean`` (copies [eq-half-sse-grad]): missed with a batch of one.
* ``maxpool_backward_double_counted_ties`` (copies [eq-maxpool-backward]): missed by inputs without
  ties (any continuous random input).

The conv functions take ``(dz, x, w, *, stride, padding, dilation)`` and
return ``(dx, dw, db)`` like :func:`cnnref.conv2d_backward`; their ``dw`` and
``db`` are the correct ones, the bug is in ``dx``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..conv import conv2d_backward
from ..losses import half_squared_error_grad
from .._validate import check_layer, check_pool, check_pool_dy
from ..transposed import correlate_channels, dilate_kernel, zero_insert

__all__ = [
    "backward_no_flip", "backward_wrong_flip_axes", "backward_assign_not_accumulate",
    "backward_dropped_remainder", "avgpool_backward_dropped_mean",
    "half_squared_error_grad_dropped_mean", "maxpool_backward_double_counted_ties",
]


def _covered_input_grad(dz, w, stride, dilation, flip):
    """The full correlation of [eq-input-grad-transposed] with a caller-chosen ``flip`` of the kernel.

    Returns the gradient of the first ``s (H' − 1) + K̃`` rows/columns of ``x_pad`` (N, C_in, ., .).
    """
    z_ins = zero_insert(dz, stride)
    w_til = dilate_kernel(w, dilation)
    kh, kw = w_til.shape[2:]
    k = np.ascontiguousarray(flip(w_til).transpose(1, 0, 2, 3))
    z_pad = np.pad(z_ins, ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
    return correlate_channels(z_pad, k)


def _place(covered, x_shape, padding):
    """Zero-fill the never-read remainder rows, then crop the padding (the correct ending)."""
    (ph, pw), (n, c, h, w) = padding, x_shape
    dx_pad = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=covered.dtype)
    dx_pad[:, :, : covered.shape[2], : covered.shape[3]] = covered
    return dx_pad[:, :, ph : ph + h, pw : pw + w]


def _setup(dz, x, w, stride, padding, dilation):
    """Validate like conv2d_backward and return the correct (dw, db) plus normalised settings."""
    _, dw, db = conv2d_backward(dz, x, w, stride=stride, padding=padding, dilation=dilation)
    x, w, _, stride, padding, dilation, _ = check_layer(x, w, None, stride, padding, dilation)
    dz = np.asarray(dz, dtype=dw.dtype)
    return dz, x, w.astype(dw.dtype, copy=False), stride, padding, dilation, dw, db


def backward_no_flip(dz, x, w, *, stride=1, padding=0, dilation=1):
    """[eq-input-grad-transposed] with the kernel NOT rotated by 180°.

    Copies :func:`cnnref.transposed.input_grad_transposed`. The full correlation of the
    deltas must use ``rot180(w̃)``; using ``w̃`` itself is the most common slip when a
    derivation's "convolution" is coded as a correlation (or vice versa). Invisible when
    the kernel is symmetric under rot180.
    """
    dz, x, w, stride, padding, dilation, dw, db = _setup(dz, x, w, stride, padding, dilation)
    covered = _covered_input_grad(dz, w, stride, dilation, flip=lambda k: k)  # BUG: no rot180
    return _place(covered, x.shape, padding), dw, db


def backward_wrong_flip_axes(dz, x, w, *, stride=1, padding=0, dilation=1):
    """[eq-input-grad-transposed] with rot180 written as ``np.flip(w̃)``, which flips ALL four axes.

    Copies :func:`cnnref.transposed.input_grad_transposed`. Besides the two spatial axes,
    ``np.flip`` (like MATLAB's ``flipall``) reverses the output- and input-channel axes,
    so input map ``c`` receives the deltas through the kernels of the wrong channel pairs.
    Invisible with one input and one output channel.
    """
    dz, x, w, stride, padding, dilation, dw, db = _setup(dz, x, w, stride, padding, dilation)
    covered = _covered_input_grad(dz, w, stride, dilation, flip=np.flip)  # BUG: flips O and C too
    return _place(covered, x.shape, padding), dw, db


def backward_dropped_remainder(dz, x, w, *, stride=1, padding=0, dilation=1):
    """[eq-input-grad-transposed] that assumes the full correlation covers the whole padded input.

    Copies :func:`cnnref.transposed.input_grad_transposed`, but crops ``P`` from both ends of
    the full-correlation result instead of first appending the ``remainder_rows`` that the
    forward never read. When ``(H + 2P − K̃) mod s = r > 0`` the returned ``dx`` has ``r``
    rows too few (a shape error downstream); when the stride divides (always at ``s = 1``) it
    is correct.
    """
    dz, x, w, stride, padding, dilation, dw, db = _setup(dz, x, w, stride, padding, dilation)
    covered = _covered_input_grad(dz, w, stride, dilation, flip=lambda k: k[:, :, ::-1, ::-1])
    (ph, pw), (lh, lw) = padding, covered.shape[2:]
    dx = covered[:, :, ph : lh - ph, pw : lw - pw]  # BUG: remainder rows never appended before the crop
    return np.ascontiguousarray(dx), dw, db


def backward_assign_not_accumulate(dz, x, w, *, stride=1, padding=0, dilation=1):
    """:func:`cnnref.conv2d_backward` with ``=`` instead of ``+=`` in the col2im scatter.

    Each kernel tap writes its share of the gradient onto the input pixels it read; a pixel
    read by several taps (overlapping windows) keeps only the last one written. Invisible
    when no two taps read the same pixel, e.g. a 1×1 kernel, or stride ≥ the kernel span.
    """
    dz, x, w, (sh, sw), (ph, pw), (dh, dw_), dw, db = _setup(dz, x, w, stride, padding, dilation)
    n, c, h, wdt = x.shape
    c_out, _, kh, kw = w.shape
    ho, wo = dz.shape[2:]
    dz_mat = np.ascontiguousarray(dz).reshape(n, c_out, ho * wo)
    dcols = np.matmul(w.reshape(c_out, -1).T, dz_mat).reshape(n, c, kh, kw, ho, wo)
    dxp = np.zeros((n, c, h + 2 * ph, wdt + 2 * pw), dtype=dw.dtype)
    for u in range(kh):
        for v in range(kw):
            r0, c0 = dh * u, dw_ * v
            dxp[:, :, r0 : r0 + sh * (ho - 1) + 1 : sh, c0 : c0 + sw * (wo - 1) + 1 : sw] = dcols[:, :, u, v]  # BUG: = not +=
    return np.ascontiguousarray(dxp[:, :, ph : ph + h, pw : pw + wdt]), dw, db


def avgpool_backward_dropped_mean(dy, x, size, stride=None) -> np.ndarray:
    """:func:`cnnref.avgpool2d_backward` without the division by the window size ``K_h K_w``.

    The result is exactly ``K_h K_w`` times the gradient: right direction, wrong length.
    """
    x, (kh, kw), (sh, sw), (ho, wo) = check_pool(x, size, stride)
    dy = check_pool_dy(dy, x, (ho, wo))
    share = dy  # BUG: should be dy / (kh * kw)
    dx = np.zeros(x.shape, dtype=np.result_type(x, dy))
    for u in range(kh):
        for v in range(kw):
            dx[:, :, u : u + sh * (ho - 1) + 1 : sh, v : v + sw * (wo - 1) + 1 : sw] += share
    return dx


def half_squared_error_grad_dropped_mean(o, t) -> np.ndarray:
    """``∂E/∂o`` of the batch-MEAN ½-squared error without the ``1/N`` ([eq-half-sse-grad]).

    Copies ``cnnref.half_squared_error_grad(o, t, reduction="mean")``; the result is ``N`` times
    too large (N = o.shape[0]). Invisible with a batch of one.
    """
    return half_squared_error_grad(o, t, reduction="sum")  # BUG: the mean's 1/N is dropped


def maxpool_backward_double_counted_ties(dy, x, size, stride=None) -> np.ndarray:
    """:func:`cnnref.maxpool2d_backward` with a mask ``x == max`` instead of one arg-max per window.

    Every entry that ties for a window's maximum receives the whole ``dy``, so a window with
    ``m`` tied maxima passes back ``m · dy``. Identical to the correct gradient on inputs
    without ties, i.e. on almost every random input.
    """
    x, size, stride, out_hw = check_pool(x, size, stride)
    dy = check_pool_dy(dy, x, out_hw)
    (kh, kw), (sh, sw), (ho, wo) = size, stride, out_hw
    win = sliding_window_view(x, size, axis=(2, 3))[:, :, ::sh, ::sw][:, :, :ho, :wo]  # (N, C, H', W', K_h, K_w)
    mask = win == win.max(axis=(4, 5), keepdims=True)  # BUG: every tied maximum is marked
    dx = np.zeros(x.shape, dtype=np.result_type(x, dy))
    for u in range(kh):
        for v in range(kw):
            dx[:, :, u : u + sh * (ho - 1) + 1 : sh, v : v + sw * (wo - 1) + 1 : sw] += dy * mask[..., u, v]
    return dx
