"""The convolutional layer: forward and backward (book: Parts I and II).

Shapes (NCHW / OIHW, as PyTorch and ``jax.lax.conv_general_dilated``):

* ``x``  : (N, C_in, H, W)            input maps ``a^{ℓ-1}``
* ``w``  : (C_out, C_in, K_h, K_w)    kernels
* ``b``  : (C_out,)                   biases
* ``z``  : (N, C_out, H', W')         complete input (pre-activation), ``H' = output_size(H, K_h, s, P, d)``

Forward ([eq-layer-forward]), 0-based, with ``x`` zero-padded by ``P`` on each side:

    z[n, o, i, j] = b[o] + Σ_c Σ_u Σ_v  w[o, c, u, v] · x_pad[n, c, s_h i + d_h u, s_w j + d_w v]

It is a cross-correlation, as in every framework; the sources' convolution
form differs by a flip of the kernel (book: "Notation and conventions").

Backward, given ``dz = ∂E/∂z`` (the deltas):

* ``db[o] = Σ_{n,i,j} dz[n, o, i, j]``                                        ([eq-bias-grad])
* ``dw[o, c, u, v] = Σ_{n,i,j} dz[n, o, i, j] · x_pad[n, c, s_h i + d_h u, s_w j + d_w v]``  ([eq-weight-grad])
* ``dx_pad[n, c, p, q] = Σ_{o,u,v} dz[n, o, i, j] · w[o, c, u, v]`` over the ``(i, j)`` with
  ``s_h i + d_h u = p`` and ``s_w j + d_w v = q``; ``dx`` is ``dx_pad`` with the padding cropped ([eq-input-grad]).

Two tiers: ``conv2d_forward`` / ``conv2d_backward`` are vectorised (one
strided window view, one copy into per-example im2col matrices, batched matrix
products, over the batch in cache-sized chunks);
``conv2d_forward_loop`` / ``conv2d_backward_loop`` are the same sums written
as loops, index for index, for the book and the tests on tiny inputs.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._validate import as_pair, as_real_array, check_shape, result_dtype
from ._workspace import scratch
from .sizes import output_size


def _check_layer(x, w, b, stride, padding, dilation):
    x = as_real_array(x, "x", ndim=4)
    w = as_real_array(w, "w", ndim=4)
    if x.size == 0 or w.size == 0:
        raise ValueError(f"x and w must not be empty, got x {x.shape} and w {w.shape}")
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"channel mismatch: x has C_in={x.shape[1]} channels (shape {x.shape}, NCHW) but w expects "
            f"C_in={w.shape[1]} (shape {w.shape}, OIHW)"
        )
    if b is not None:
        b = as_real_array(b, "b", ndim=1)
        check_shape(b, (w.shape[0],), "b", f"one bias per output channel, C_out={w.shape[0]}")
    stride = as_pair(stride, "stride", 1)
    padding = as_pair(padding, "padding", 0)
    dilation = as_pair(dilation, "dilation", 1)
    out_hw = tuple(
        output_size(x.shape[2 + a], w.shape[2 + a], stride[a], padding[a], dilation[a]) for a in (0, 1)
    )
    return x, w, b, stride, padding, dilation, out_hw


def _pad(x: np.ndarray, padding) -> np.ndarray:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


# The vectorised forms work through the batch in chunks whose im2col matrix
# fits in a core's L2 cache, and write their temporaries into reused scratch
# buffers (see _workspace.py): both measured to matter more than the
# arithmetic for the layer sizes of this book.
_CHUNK_BYTES = 1 << 22  # 4 MiB: best or tied on the four benchmark workloads (benchmarks/bench_conv.py)


def _chunks(n: int, bytes_per_example: int):
    step = max(1, _CHUNK_BYTES // max(1, bytes_per_example))
    return [slice(i, min(n, i + step)) for i in range(0, n, step)]


def _pad_into_scratch(x: np.ndarray, padding, dtype) -> np.ndarray:
    """``x`` zero-padded by (P_h, P_w) on each side, in a scratch buffer (x itself if no padding is needed)."""
    ph, pw = padding
    if ph == 0 and pw == 0 and x.dtype == dtype:
        return x
    n, c, h, w = x.shape
    xp = scratch("conv.xpad", (n, c, h + 2 * ph, w + 2 * pw), dtype)
    xp[:, :, :ph] = 0
    xp[:, :, ph + h :] = 0
    xp[:, :, ph : ph + h, :pw] = 0
    xp[:, :, ph : ph + h, pw + w :] = 0
    xp[:, :, ph : ph + h, pw : pw + w] = x
    return xp


def _im2col(xp: np.ndarray, kernel_hw, stride, dilation, out_hw) -> np.ndarray:
    """The receptive fields of every output position, one matrix per example.

    Returns ``cols`` of shape (N, C_in·K_h·K_w, H'·W') with
    ``cols[n, (c, u, v), (i, j)] = x_pad[n, c, s_h i + d_h u, s_w j + d_w v]``.
    The row order (c, u, v) matches ``w.reshape(C_out, -1)``, so that
    ``w_mat @ cols[n]`` is example n's output already in (C_out, H'·W') order:
    no transpose of the result is needed, and the copy streams along image rows.
    The result lives in a scratch buffer: it is overwritten by the next call.
    """
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel_hw, stride, dilation, out_hw
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    win = sliding_window_view(xp, span, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    win = win[:, :, :ho, :wo]  # (N, C, H', W', K_h, K_w), still a view
    n, c = xp.shape[:2]
    cols = scratch("conv.cols", (n, c, kh, kw, ho, wo), xp.dtype)
    np.copyto(cols, win.transpose(0, 1, 4, 5, 2, 3))
    return cols.reshape(n, c * kh * kw, ho * wo)


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1) -> np.ndarray:
    """Complete input ``z`` of a convolutional layer ([eq-layer-forward]).

    x: (N, C_in, H, W); w: (C_out, C_in, K_h, K_w); b: (C_out,) or None.
    stride, padding (zeros per side), dilation: int or (h, w) pair.
    Returns z: (N, C_out, H', W'). Same numbers as ``torch.nn.functional.conv2d``.
    """
    x, w, b, stride, padding, dilation, (ho, wo) = _check_layer(x, w, b, stride, padding, dilation)
    dtype = result_dtype(x, w) if b is None else result_dtype(x, w, b)
    n, c_out = x.shape[0], w.shape[0]
    w_mat = w.reshape(c_out, -1).astype(dtype, copy=False)
    z = np.empty((n, c_out, ho * wo), dtype=dtype)
    for sl in _chunks(n, w_mat.shape[1] * ho * wo * dtype.itemsize):
        cols = _im2col(_pad_into_scratch(x[sl], padding, dtype), w.shape[2:], stride, dilation, (ho, wo))
        np.matmul(w_mat, cols, out=z[sl])  # (B, C_out, H'·W')
    z = z.reshape(n, c_out, ho, wo)
    if b is not None:
        z += b.astype(dtype, copy=False)[None, :, None, None]
    return z


def conv2d_backward(dz, x, w, *, stride=1, padding=0, dilation=1):
    """Gradients of a scalar E through [eq-layer-forward], given ``dz = ∂E/∂z``.

    dz: (N, C_out, H', W') and must match the forward output shape exactly.
    Returns ``(dx, dw, db)`` with the shapes of x, w and (C_out,):
    [eq-input-grad], [eq-weight-grad], [eq-bias-grad]. Input rows that the
    forward never read (stride remainder) get exactly zero gradient.
    """
    x, w, _, stride, padding, dilation, (ho, wo) = _check_layer(x, w, None, stride, padding, dilation)
    dz = as_real_array(dz, "dz", ndim=4)
    n, c, h, wdt = x.shape
    c_out, _, kh, kw = w.shape
    check_shape(dz, (n, c_out, ho, wo), "dz", "the shape of conv2d_forward's output for these x, w and settings")
    dtype = result_dtype(dz, x, w)
    dz_mat = np.ascontiguousarray(dz, dtype=dtype).reshape(n, c_out, ho * wo)
    w_mat = w.reshape(c_out, -1).astype(dtype, copy=False)
    (sh, sw), (dh, dw_), (ph, pw) = stride, dilation, padding

    db = dz_mat.sum(axis=(0, 2))
    dw_t = np.zeros(w_mat.shape[::-1], dtype=dtype)  # dwᵀ: (C_in·K_h·K_w, C_out)
    dx = np.empty(x.shape, dtype=dtype)
    for sl in _chunks(n, w_mat.shape[1] * ho * wo * dtype.itemsize):
        xp = _pad_into_scratch(x[sl], padding, dtype)
        cols = _im2col(xp, (kh, kw), stride, dilation, (ho, wo))  # (B, C·K_h·K_w, H'·W')
        # dwᵀ = Σ_n cols_n dz_nᵀ rather than dw = Σ_n dz_n cols_nᵀ: the same sums, but OpenBLAS
        # runs this orientation up to 1.5× faster in float32 (benchmarks/bench_conv.py, W2/W3).
        dw_t += np.matmul(cols, dz_mat[sl].transpose(0, 2, 1)).sum(axis=0)

        # col2im: every kernel tap (u, v) adds its slice of the column gradient back
        # onto the input positions it read; overlapping windows accumulate (+=).
        dcols = scratch("conv.dcols", (xp.shape[0], c * kh * kw, ho * wo), dtype)
        np.matmul(w_mat.T, dz_mat[sl], out=dcols)
        dcols = dcols.reshape(-1, c, kh, kw, ho, wo)
        dxp = scratch("conv.dxpad", xp.shape, dtype)
        dxp.fill(0)
        for u in range(kh):
            for v in range(kw):
                r0, c0 = dh * u, dw_ * v
                dxp[:, :, r0 : r0 + sh * (ho - 1) + 1 : sh, c0 : c0 + sw * (wo - 1) + 1 : sw] += dcols[:, :, u, v]
        dx[sl] = dxp[:, :, ph : ph + h, pw : pw + wdt]
    return dx, np.ascontiguousarray(dw_t.T).reshape(w.shape), db


# --- loop forms -------------------------------------------------------------------------------


def conv2d_forward_loop(x, w, b=None, *, stride=1, padding=0, dilation=1) -> np.ndarray:
    """[eq-layer-forward] as seven nested loops. Tiny inputs only."""
    x, w, b, (sh, sw), padding, (dh, dw), (ho, wo) = _check_layer(x, w, b, stride, padding, dilation)
    xp = _pad(x, padding)
    N, C, _, _ = x.shape
    O, _, Kh, Kw = w.shape
    z = np.zeros((N, O, ho, wo), dtype=result_dtype(x, w) if b is None else result_dtype(x, w, b))
    for n in range(N):
        for o in range(O):
            for i in range(ho):
                for j in range(wo):
                    acc = 0.0 if b is None else b[o]
                    for c in range(C):
                        for u in range(Kh):
                            for v in range(Kw):
                                acc += w[o, c, u, v] * xp[n, c, sh * i + dh * u, sw * j + dw * v]
                    z[n, o, i, j] = acc
    return z


def conv2d_backward_loop(dz, x, w, *, stride=1, padding=0, dilation=1):
    """The chain rule through [eq-layer-forward], one term at a time. Tiny inputs only.

    Each product ``w[o,c,u,v] · x_pad[n,c,p,q]`` that fed ``z[n,o,i,j]`` sends
    ``dz[n,o,i,j]`` back to both factors: ``dw[o,c,u,v] += dz · x_pad[...]`` and
    ``dx_pad[n,c,p,q] += dz · w[o,c,u,v]``. Note the ``+=``: an input pixel read
    by several windows collects a contribution from each.
    """
    x, w, _, (sh, sw), (ph, pw), (dh, dw_), (ho, wo) = _check_layer(x, w, None, stride, padding, dilation)
    dz = as_real_array(dz, "dz", ndim=4)
    N, C, H, W = x.shape
    O, _, Kh, Kw = w.shape
    check_shape(dz, (N, O, ho, wo), "dz", "the shape of conv2d_forward's output for these x, w and settings")
    dtype = result_dtype(dz, x, w)
    xp = _pad(x, (ph, pw))
    dxp = np.zeros(xp.shape, dtype=dtype)
    dw = np.zeros(w.shape, dtype=dtype)
    db = np.zeros(O, dtype=dtype)
    for n in range(N):
        for o in range(O):
            for i in range(ho):
                for j in range(wo):
                    g = dz[n, o, i, j]
                    db[o] += g
                    for c in range(C):
                        for u in range(Kh):
                            for v in range(Kw):
                                p, q = sh * i + dh * u, sw * j + dw_ * v
                                dw[o, c, u, v] += g * xp[n, c, p, q]
                                dxp[n, c, p, q] += g * w[o, c, u, v]
    return dxp[:, :, ph : ph + H, pw : pw + W], dw, db
