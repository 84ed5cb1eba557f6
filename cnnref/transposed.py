"""The strided, padded, dilated backward pass written as correlations (book: "Stride, padding and dilation in the backward pass").

Shapes follow :mod:`cnnref.conv` (NCHW / OIHW): ``x`` (N, C_in, H, W), ``w``
(C_out, C_in, K_h, K_w), ``dz = ∂E/∂z`` (N, C_out, H', W') with
``H' = output_size(H, K_h, s_h, P_h, d_h)``. ``x_pad`` is ``x`` with ``P`` zeros on
each side; ``K̃ = d (K − 1) + 1`` is the span of the dilated kernel.

Where :func:`cnnref.conv2d_backward` scatters each kernel tap back onto the
input (col2im), this module computes the same two gradients as *gathers*,
i.e. as ordinary valid cross-correlations of re-arranged arrays:

* **input gradient = transposed convolution** ([eq-input-grad-transposed]):
  insert ``s − 1`` zeros between the deltas (:func:`zero_insert`,
  [eq-sb-zero-insert]), spread the kernel taps ``d`` apart
  (:func:`dilate_kernel`, [eq-sb-dilated-kernel]), rotate it by 180° and
  swap its channel axes, and correlate the zero-inserted deltas, padded by
  ``K̃ − 1`` on each side (a *full* correlation). That gives the gradient of
  the first ``s (H' − 1) + K̃`` rows of ``x_pad``; the remaining
  :func:`remainder_rows` rows were never read by the forward pass and get
  zero ([eq-sb-remainder]); finally the ``P`` padding rows on each side are
  cropped off (they are constants, not inputs).
* **weight gradient = dilated correlation** ([eq-weight-grad-dilated]):
  correlate ``x_pad`` with the zero-inserted deltas used as the kernel and
  keep every ``d``-th position: the forward's stride becomes the kernel's
  dilation and the forward's dilation becomes the stride.

Pure numpy, no loops over pixels; both functions are checked against
``conv2d_backward`` and ``jax.vjp`` in ``tests/test_transposed.py``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._validate import as_pair, as_real_array, as_shape, check_shape, result_dtype
from .sizes import output_size

__all__ = ["zero_insert", "dilate_kernel", "remainder_rows", "correlate_channels", "input_grad_transposed", "weight_grad_dilated"]


def _shape4(shape, name: str) -> tuple[int, int, int, int]:
    return as_shape(shape, name, ndim=4, minimum=1, why="NCHW / OIHW")


def _maps(a, name: str) -> np.ndarray:
    """``a`` as a 4-D real array with at least one row and one column (an empty map has no spacing)."""
    a = as_real_array(a, name, ndim=4)
    if min(a.shape[2:]) < 1:
        raise ValueError(f"{name} must have at least one row and one column, got shape {a.shape}")
    return a


def _spread(a: np.ndarray, steps: tuple[int, int]) -> np.ndarray:
    """``a`` (N, C, H, W) with its entries ``steps`` apart, zeros in between (no checks)."""
    sh, sw = steps
    n, c, h, w = a.shape
    out = np.zeros((n, c, sh * (h - 1) + 1, sw * (w - 1) + 1), dtype=a.dtype)
    out[:, :, ::sh, ::sw] = a
    return out


def correlate_channels(a: np.ndarray, k: np.ndarray, step=(1, 1), spread=(1, 1)) -> np.ndarray:
    """Multi-channel valid cross-correlation, every valid position.

    a: (N, I, H, W); k: (O, I, K_h, K_w). Returns (N, O, H_o, W_o) with
    ``out[n, o, i, j] = Σ_{c,u,v} a[n, c, step·i + spread·u, step·j + spread·v] · k[o, c, u, v]``.
    ``step`` and ``spread``: (rows, columns) pairs >= 1. The building block of this module's
    gradients (and of the bug gallery's wrong ones).
    """
    a = as_real_array(a, "a", ndim=4)
    k = as_real_array(k, "k", ndim=4)
    if a.shape[1] != k.shape[1]:
        raise ValueError(f"a and k must have the same number of input maps, got a {a.shape} and k {k.shape}")
    step, spread = as_pair(step, "step", 1), as_pair(spread, "spread", 1)
    (kh, kw), (sh, sw), (dh, dw) = k.shape[2:], step, spread
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    win = sliding_window_view(a, span, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]  # (N, I, H_o, W_o, K_h, K_w)
    return np.einsum("ncijuv,ocuv->noij", win, k, optimize=True)


def zero_insert(a, stride) -> np.ndarray:
    """Spread the entries of ``a`` ``s`` apart, zeros in between ([eq-sb-zero-insert]).

    a: (N, C, H, W) with H, W >= 1; stride: int or (s_h, s_w) >= 1.
    Returns (N, C, s_h (H − 1) + 1, s_w (W − 1) + 1) with ``out[..., s_h i, s_w j] = a[..., i, j]``
    and zeros everywhere else. ``stride=1`` returns a copy of ``a``.
    """
    return _spread(_maps(a, "a"), as_pair(stride, "stride", 1))


def dilate_kernel(w, dilation) -> np.ndarray:
    """The dilated kernel ``w̃`` with its taps ``d`` apart ([eq-sb-dilated-kernel]).

    w: (C_out, C_in, K_h, K_w) with K_h, K_w >= 1; dilation: int or (d_h, d_w) >= 1.
    Returns (C_out, C_in, d_h (K_h − 1) + 1, d_w (K_w − 1) + 1): ``w̃[..., d_h u, d_w v] = w[..., u, v]``,
    zeros elsewhere. A correlation with ``w̃`` equals a dilated correlation with ``w``.
    """
    return _spread(_maps(w, "w"), as_pair(dilation, "dilation", 1))


def remainder_rows(n, kernel, stride=1, padding=0, dilation=1) -> int:
    """Rows (or columns) at the end of the padded input that no window reads ([eq-sb-remainder]).

    ``r = (n + 2P − K̃) mod s`` with ``K̃ = d (K − 1) + 1``: the forward reads rows
    ``0 … s (n' − 1) + K̃ − 1`` of the padded input, ``n' = output_size(...)``, and the
    last ``r`` rows are never used, so their gradient is zero. Zero whenever ``s = 1``.
    """
    n_out = output_size(n, kernel, stride, padding, dilation)  # validates every argument
    span = dilation * (kernel - 1) + 1
    return n + 2 * padding - (stride * (n_out - 1) + span)


def _check_dz(dz, x_shape, w_shape, stride, padding, dilation):
    dz = as_real_array(dz, "dz", ndim=4)
    out_hw = tuple(
        output_size(x_shape[2 + a], w_shape[2 + a], stride[a], padding[a], dilation[a]) for a in (0, 1)
    )
    check_shape(dz, (x_shape[0], w_shape[0]) + out_hw, "dz",
                "the shape of conv2d_forward's output for these x, w and settings")
    return dz, out_hw


def input_grad_transposed(dz, w, x_shape, *, stride=1, padding=0, dilation=1) -> np.ndarray:
    """``dx = ∂E/∂x`` as a transposed convolution ([eq-input-grad-transposed]).

    dz: (N, C_out, H', W'); w: (C_out, C_in, K_h, K_w); x_shape: (N, C_in, H, W), the shape of
    the forward input (needed: H and W are not determined by H' when s > 1).
    stride, padding (zeros per side), dilation: int or (h, w) pair, as in the forward.
    Returns dx: (N, C_in, H, W), the same numbers as ``conv2d_backward(dz, x, w, ...)[0]``.

    Steps: ``ž = zero_insert(dz, s)``; ``k = rot180(dilate_kernel(w, d))`` with its O and I
    axes swapped; ``dx_pad[:, :, :s(H'−1)+K̃, :s(W'−1)+K̃] = ž_pad ⋆ k`` with ``ž`` zero-padded
    by ``K̃ − 1`` per side (a full correlation); the :func:`remainder_rows` rows after that
    get zero; then ``dx = dx_pad[:, :, P:P+H, P:P+W]``.
    """
    w = as_real_array(w, "w", ndim=4)
    x_shape = _shape4(x_shape, "x_shape")
    if x_shape[1] != w.shape[1]:
        raise ValueError(f"channel mismatch: x_shape has C_in={x_shape[1]} but w (OIHW) has C_in={w.shape[1]}")
    stride = as_pair(stride, "stride", 1)
    padding = as_pair(padding, "padding", 0)
    dilation = as_pair(dilation, "dilation", 1)
    dz, _ = _check_dz(dz, x_shape, w.shape, stride, padding, dilation)
    dtype = result_dtype(dz, w)

    z_ins = zero_insert(dz.astype(dtype, copy=False), stride)               # ž, (N, O, s(H'-1)+1, ...)
    w_til = dilate_kernel(w.astype(dtype, copy=False), dilation)            # w̃, (O, I, K̃_h, K̃_w)
    kh, kw = w_til.shape[2:]
    k = np.ascontiguousarray(w_til[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # rot180, (I, O, K̃_h, K̃_w)
    z_pad = np.pad(z_ins, ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
    covered = correlate_channels(z_pad, k)                                   # (N, I, s(H'-1)+K̃_h, ...)

    (ph, pw), (h, wd) = padding, x_shape[2:]
    dx_pad = np.zeros((x_shape[0], x_shape[1], h + 2 * ph, wd + 2 * pw), dtype=dtype)
    dx_pad[:, :, : covered.shape[2], : covered.shape[3]] = covered          # remainder rows stay 0
    return np.ascontiguousarray(dx_pad[:, :, ph : ph + h, pw : pw + wd])


def weight_grad_dilated(dz, x, w_shape, *, stride=1, padding=0, dilation=1) -> np.ndarray:
    """``dw = ∂E/∂w`` as a dilated correlation of the input with the deltas ([eq-weight-grad-dilated]).

    dz: (N, C_out, H', W'); x: (N, C_in, H, W); w_shape: (C_out, C_in, K_h, K_w).
    stride, padding, dilation: as in the forward. Returns dw: (C_out, C_in, K_h, K_w), the same
    numbers as ``conv2d_backward(dz, x, w, ...)[1]``:

        dw[o, c, u, v] = Σ_n Σ_{r,t} x_pad[n, c, d_h u + r, d_w v + t] · ž[n, o, r, t],  ž = zero_insert(dz, s)

    a valid correlation of ``x_pad`` with ``ž`` as the kernel (i.e. ``dz`` dilated by ``s``),
    evaluated at every ``d``-th position (stride ``d``), summed over the batch (the batch
    axis plays the role of the channel axis), of which the first ``K_h × K_w`` positions are kept.
    """
    x = as_real_array(x, "x", ndim=4)
    w_shape = _shape4(w_shape, "w_shape")
    if x.shape[1] != w_shape[1]:
        raise ValueError(f"channel mismatch: x (NCHW) has C_in={x.shape[1]} but w_shape has C_in={w_shape[1]}")
    stride = as_pair(stride, "stride", 1)
    padding = as_pair(padding, "padding", 0)
    dilation = as_pair(dilation, "dilation", 1)
    dz, _ = _check_dz(dz, x.shape, w_shape, stride, padding, dilation)
    dtype = result_dtype(dz, x)

    (ph, pw) = padding
    x_pad = np.pad(x.astype(dtype, copy=False), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    z_ins = zero_insert(dz.astype(dtype, copy=False), stride)                # ž: (N, O, ...)
    # Batch n is the summed "channel": a (C_in, N, ...) correlated with k (O, N, ...) -> (C_in, O, ...).
    full = correlate_channels(x_pad.transpose(1, 0, 2, 3), z_ins.transpose(1, 0, 2, 3), step=dilation)
    kh, kw = w_shape[2:]
    return np.ascontiguousarray(full[:, :, :kh, :kw].transpose(1, 0, 2, 3))
