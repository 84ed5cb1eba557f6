"""The convolutional layer: forward and backward (book: Parts I and II).

Shapes (NCHW / OIHW, as PyTorch and ``jax.lax.conv_general_dilated``):

* ``x``  : (N, C_in, H, W)              input maps ``a^{ℓ-1}``
* ``w``  : (C_out, C_in/G, K_h, K_w)    kernels (G = ``groups``, 1 unless stated)
* ``b``  : (C_out,)                     biases
* ``z``  : (N, C_out, H', W')           complete input (pre-activation), ``H' = output_size(H, K_h, s, P, d)``

Forward ([eq-layer-forward]), 0-based, with ``x`` zero-padded by ``P`` on each side:

    z[n, o, i, j] = b[o] + Σ_c Σ_u Σ_v  w[o, c, u, v] · x_pad[n, c, s_h i + d_h u, s_w j + d_w v]

It is a cross-correlation, as in every framework; the sources' convolution
form differs by a flip of the kernel (book: "Notation and conventions").

Backward, given ``dz = ∂E/∂z`` (the deltas):

* ``db[o] = Σ_{n,i,j} dz[n, o, i, j]``                                        ([eq-bias-grad])
* ``dw[o, c, u, v] = Σ_{n,i,j} dz[n, o, i, j] · x_pad[n, c, s_h i + d_h u, s_w j + d_w v]``  ([eq-weight-grad])
* ``dx_pad[n, c, p, q] = Σ_{o,u,v} dz[n, o, i, j] · w[o, c, u, v]`` over the ``(i, j)`` with
  ``s_h i + d_h u = p`` and ``s_w j + d_w v = q``; ``dx`` is ``dx_pad`` with the padding cropped ([eq-input-grad]).

Grouped layers (``groups=G`` > 1, book: "Grouped, depthwise and 1×1 convolutions"): G divides
C_in and C_out, and output map ``o`` belongs to group ``g = o // (C_out/G)`` and reads only the
input maps ``g·C_in/G … (g+1)·C_in/G − 1`` ([eq-gc-forward]); ``w[o, c]`` is the kernel from the
``c``-th map of that group. The layer is G ordinary layers side by side ([eq-gc-split]), and its
gradients are the sums above restricted to one group ([eq-gc-weight-grad], [eq-gc-bias-grad],
[eq-gc-input-grad]). ``groups = C_in`` is a depthwise convolution ([eq-gc-depthwise]).

Two tiers: ``conv2d_forward`` / ``conv2d_backward`` are vectorised, in the
steps pad → im2col → matrix product (→ col2im for the input gradient), a few
examples of the batch at a time, with one matrix product per group (a batched product); ``conv2d_forward_loop`` /
``conv2d_backward_loop`` are the same sums written as loops, index for index,
for the book and the tests on tiny inputs.

The two steps that make the layer one matrix product are public as well: ``im2col``
(the column matrix, without the forward's row of ones) and ``col2im`` (its adjoint, the
scatter-add of the backward pass), for the book's matrix view ([eq-mv-forward],
[eq-mv-backward]).

The vectorised forms keep their temporaries in scratch buffers that are reused
from call to call (``_workspace.py`` says why, and how much is kept);
``cnnref.conv.release_buffers()`` frees them.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._validate import as_pair, as_real_array, as_shape, check_layer, check_shape, result_dtype
from ._workspace import release_buffers, workspace  # noqa: F401 (release_buffers: re-exported)
from .sizes import output_size


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """Complete input ``z`` of a convolutional layer ([eq-layer-forward]; grouped: [eq-gc-forward]).

    x: (N, C_in, H, W); w: (C_out, C_in/G, K_h, K_w); b: (C_out,) or None.
    stride, padding (zeros per side), dilation: int or (h, w) pair; groups: G, a positive int
    dividing C_in and C_out. Returns z: (N, C_out, H', W'). Same numbers as
    ``torch.nn.functional.conv2d``.

    For each piece of B examples of the batch:

    1. pad:    ``x_pad`` (B, C_in, H + 2P_h, W + 2P_w), ``x`` inside a border of zeros;
    2. im2col: ``cols`` (B, G, C_in/G·K_h·K_w + 1, H'·W'), one column per output position (i, j)
       holding the receptive field it reads in group g's input maps, and a last row of ones;
    3. matrix product, one per group: ``z_g = [w_mat_g | b_g] @ cols_g`` (B, G, C_out/G, H'·W'),
       with group g's kernels as one matrix ``w_mat_g`` (C_out/G, C_in/G·K_h·K_w) and its biases
       as one more column: the row of ones adds ``b[o]`` to every sum of [eq-layer-forward].
       For G = 1 it is the one product ``[w_mat | b] @ cols``.
    """
    x, w, b, stride, padding, dilation, (ho, wo) = check_layer(x, w, b, stride, padding, dilation, groups)
    dtype = result_dtype(x, w) if b is None else result_dtype(x, w, b)
    (n, c_out), g = (x.shape[0], w.shape[0]), int(groups)
    wb_mat = np.zeros((g, c_out // g, w[0].size + 1), dtype=dtype)  # [w_mat_g | b_g]: (G, C_out/G, C_in/G·K_h·K_w + 1)
    wb_mat[..., :-1] = w.reshape(g, c_out // g, -1)
    if b is not None:
        wb_mat[..., -1] = b.reshape(g, -1)
    z = np.empty((n, g, c_out // g, ho * wo), dtype=dtype)
    with workspace() as ws:
        for sl in ws.batches(n, g * wb_mat.shape[2] * ho * wo * dtype.itemsize):
            xp = _pad_into(ws, x[sl], padding, dtype)                                 # (B, C_in, H_p, W_p)
            cols = _im2col(ws, xp, w.shape[2:], stride, dilation, (ho, wo), g)       # (B, G, C_in/G·K_h·K_w + 1, H'·W')
            np.matmul(wb_mat, cols, out=z[sl])                                       # (B, G, C_out/G, H'·W')
    return z.reshape(n, c_out, ho, wo)


def conv2d_backward(dz, x, w, *, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of a scalar E through [eq-layer-forward] ([eq-gc-forward]), given ``dz = ∂E/∂z``.

    dz: (N, C_out, H', W') and must match the forward output shape exactly; x, w, stride,
    padding, dilation and groups as for :func:`conv2d_forward`.
    Returns ``(dx, dw, db)`` with the shapes of x, w and (C_out,):
    [eq-input-grad], [eq-weight-grad], [eq-bias-grad]; with groups, the same sums restricted
    to each group, [eq-gc-input-grad], [eq-gc-weight-grad], [eq-gc-bias-grad]. Input rows
    that the forward never read (stride remainder) get exactly zero gradient.

    The forward's steps and their transposes, on a layout of x_pad in which every row of the
    column matrix, and every kernel tap's share of the input gradient, is one contiguous run
    (``_Planes``: planes of H_s × W_s = ⌈H_p/s_h⌉ × ⌈W_p/s_w⌉, for stride 1 x_pad's own maps,
    the outputs on rows of W_s). For each piece of B examples of the batch:

    1. pad:    ``x_pad`` as those planes, and ``dz`` on the same rows: (B, C_out, H'·W_s), zero
       in the W_s − W' columns of each row that are not outputs;
    2. im2col: ``cols`` (B, G, C_in/G·K_h·K_w + 1, H'·W_s), row (c, u, v) of group g holding
       ``x_pad[n, g·C_in/G + c, s_h i + d_h u, s_w j + d_w v]`` at column (i, j), and a last row
       of ones;
    3. matrix products, the transposes of the forward's, one per group: ``[dw_g | db_g]ᵀ +=
       Σ_n cols_{n,g} dz_{n,g}ᵀ``, where the row of ones gives ``db[o] = Σ_{n,i,j} dz[n, o, i, j]``;
       and the column gradient ``dcols_g = w_mat_gᵀ dz_g``, what each receptive-field entry passed
       on, one block per tap;
    4. col2im: every tap adds its block of ``dcols`` back onto the input positions it read
       (overlapping windows accumulate), giving ``dx_pad``; ``dx`` is ``dx_pad`` without the padding.
    """
    x, w, _, stride, padding, dilation, (ho, wo) = check_layer(x, w, None, stride, padding, dilation, groups)
    dz = as_real_array(dz, "dz", ndim=4)
    (n, c_out), g = (x.shape[0], w.shape[0]), int(groups)
    check_shape(dz, (n, c_out, ho, wo), "dz", "the shape of conv2d_forward's output for these x, w and settings")
    dtype = result_dtype(dz, x, w)
    w_mat = w.reshape(g, c_out // g, -1).astype(dtype, copy=False)  # (G, C_out/G, C_in/G·K_h·K_w)
    grid = _Planes(x.shape, w.shape, stride, padding, dilation, (ho, wo), g, finite_w=bool(np.isfinite(w_mat).all()))

    dwb_t = np.zeros((g, w_mat.shape[2] + 1, c_out // g), dtype=dtype)  # [dw_mat_g | db_g]ᵀ per group
    dx = np.empty(x.shape, dtype=dtype)
    with workspace() as ws:
        for sl in ws.batches(n, grid.bytes_per_example * dtype.itemsize):
            xp = grid.pad(ws, x[sl], dtype)                                 # x_pad as planes, flattened
            dz_rows = grid.pad_output(ws, dz[sl], dtype)                     # (B, G, C_out/G, H'·W_s)
            cols = grid.im2col(ws, xp)                                       # (B, G, C_in/G·K_h·K_w + 1, H'·W_s)
            # Σ_n cols_n dz_nᵀ rather than Σ_n dz_n cols_nᵀ: the same sums, but OpenBLAS runs
            # this orientation up to 1.5× faster in float32 (benchmarks/bench_conv.py, W2/W3).
            dwb_t += np.matmul(cols, dz_rows.transpose(0, 1, 3, 2)).sum(axis=0)  # [eq-weight-grad], [eq-bias-grad]
            dcols = grid.column_gradient(ws, w_mat, dz_rows)                 # w_matᵀ dz, one block per tap
            grid.col2im(ws, dcols, out=dx[sl])                               # [eq-input-grad]
    if not np.isfinite(dwb_t).all():  # inf or nan in x: see _Planes for why that needs another look
        dwb_t = _weight_grad_by_examples(dz, x, w.shape, stride, padding, dilation, g, dtype)
    dw = np.ascontiguousarray(dwb_t[:, :-1].transpose(0, 2, 1)).reshape(w.shape)
    return dx, dw, dwb_t[:, -1].reshape(c_out)


# --- im2col and col2im as functions of their own (book: "The matrix view") -----------------


def im2col(x, kernel_size, *, stride=1, padding=0, dilation=1) -> np.ndarray:
    """The receptive fields as columns, one per output position ([eq-mv-im2col]).

    x: (N, C_in, H, W); kernel_size: K or (K_h, K_w); stride, padding (zeros per
    side), dilation: int or (h, w) pair, as for :func:`conv2d_forward`. Returns
    cols: (N, C_in·K_h·K_w, H'·W') with

        cols[n, (c, u, v), (i, j)] = x_pad[n, c, s_h i + d_h u, s_w j + d_w v]

    rows in the order of ``w.reshape(C_out, -1)`` and columns in the order of
    ``z[n, o].ravel()``, so that ``w.reshape(C_out, -1) @ cols[n]`` plus ``b[:, None]``
    is ``conv2d_forward(x, w, b)[n]`` as a (C_out, H'·W') matrix ([eq-mv-forward]).
    It runs the steps of conv2d_forward (``_pad_into``, ``_im2col``) and drops the
    row of ones that carries the bias there.
    """
    x = as_real_array(x, "x", ndim=4)
    if x.size == 0:
        raise ValueError(f"x must not be empty, got shape {x.shape}")
    n, c, h, w = x.shape
    (kh, kw), stride, padding, dilation, (ho, wo) = _window(
        (h, w), kernel_size, stride, padding, dilation
    )
    dtype = result_dtype(x)
    cols = np.empty((n, c * kh * kw, ho * wo), dtype=dtype)
    with workspace() as ws:
        for sl in ws.batches(n, (c * kh * kw + 1) * ho * wo * dtype.itemsize):
            xp = _pad_into(ws, x[sl], padding, dtype)
            with_ones = _im2col(ws, xp, (kh, kw), stride, dilation, (ho, wo))
            cols[sl] = with_ones[:, 0, :-1]  # group 0 of 1, without the row of ones
    return cols


def col2im(cols, input_shape, kernel_size, *, stride=1, padding=0, dilation=1):
    """Each column entry added back where :func:`im2col` read it ([eq-mv-col2im]).

    cols: (N, C_in·K_h·K_w, H'·W'); input_shape: (N, C_in, H, W), the shape of the
    ``x`` that :func:`im2col` read; kernel_size, stride, padding and dilation as
    there, with (H', W') the output size they give. Returns (N, C_in, H, W):

        out_pad[n, c, s_h i + d_h u, s_w j + d_w v] += cols[n, (c, u, v), (i, j)]

    summed over all (c, u, v) and (i, j), overlapping windows accumulating, and
    ``out`` is ``out_pad`` without the padding. For every x and cols of these
    shapes, ⟨im2col(x), cols⟩ = ⟨x, col2im(cols)⟩ ([eq-mv-adjoint]), and
    ``col2im(w_mat.T @ dz_mat)`` is conv2d_backward's ``dx`` ([eq-mv-backward]).
    It is conv2d_backward's own col2im: the columns are laid out on that
    function's planes (``_Planes``, the outputs on rows of W_s, zero in the
    columns that are not outputs), and ``_Planes.col2im`` adds each tap's block
    back in one contiguous ``+=``.
    """
    cols = as_real_array(cols, "cols", ndim=3)
    why = "N, C_in, H, W of the input that im2col read"
    n, c, h, w = as_shape(input_shape, "input_shape", ndim=4, minimum=1, why=why)
    (kh, kw), stride, padding, dilation, (ho, wo) = _window(
        (h, w), kernel_size, stride, padding, dilation
    )
    why = f"N, C_in·K_h·K_w, H'·W' for input_shape {(n, c, h, w)} and these settings"
    check_shape(cols, (n, c * kh * kw, ho * wo), "cols", why)
    dtype = result_dtype(cols)
    x_shape, taps = (n, c, h, w), kh * kw
    grid = _Planes(x_shape, (1, c, kh, kw), stride, padding, dilation, (ho, wo))
    by_tap = cols.reshape(n, c, taps, ho, wo).transpose(2, 0, 1, 3, 4)
    out = np.empty(x_shape, dtype=dtype)
    with workspace() as ws:
        for sl in ws.batches(n, grid.bytes_per_example * dtype.itemsize):
            shape = (taps, sl.stop - sl.start, c, grid.plane)
            dcols = ws.zeros("conv.col2im_in", shape, dtype, layout=grid.key)
            rows = dcols[..., : grid.q].reshape(shape[:3] + (ho, grid.w_s))
            rows[..., :wo] = by_tap[:, sl]  # the columns j >= W' stay zero
            grid.col2im(ws, dcols, out=out[sl])
    return out


def _window(hw, kernel_size, stride, padding, dilation):
    """``((K_h, K_w), stride, padding, dilation, (H', W'))`` of a window on an H×W map."""
    kernel = as_pair(kernel_size, "kernel_size", 1)
    stride = as_pair(stride, "stride", 1)
    padding = as_pair(padding, "padding", 0)
    dilation = as_pair(dilation, "dilation", 1)
    out_hw = tuple(
        output_size(hw[a], kernel[a], stride[a], padding[a], dilation[a]) for a in (0, 1)
    )
    return kernel, stride, padding, dilation, out_hw


# --- the steps: pad, im2col, col2im ----------------------------------------------------------
# Their temporaries live in scratch buffers of the call's Workspace (_workspace.py) and are
# overwritten by the next piece of the batch.


def _pad_into(ws, x: np.ndarray, padding, dtype) -> np.ndarray:
    """``x`` zero-padded by (P_h, P_w) on each side, in a scratch buffer (x itself if nothing changes)."""
    ph, pw = padding
    if ph == 0 and pw == 0 and x.dtype == dtype:
        return x
    n, c, h, w = x.shape
    xp = ws.zeros("conv.x_pad", (n, c, h + 2 * ph, w + 2 * pw), dtype, layout=padding)  # the border stays zero
    xp[:, :, ph : ph + h, pw : pw + w] = x
    return xp


def _im2col(ws, xp: np.ndarray, kernel_hw, stride, dilation, out_hw, groups=1) -> np.ndarray:
    """The receptive fields of every output position, one matrix per example and group, and a row of ones.

    Returns ``cols`` of shape (B, G, C_in/G·K_h·K_w + 1, H'·W') with
    ``cols[n, g, (c, u, v), (i, j)] = x_pad[n, g·C_in/G + c, s_h i + d_h u, s_w j + d_w v]`` and a
    last row of ones in each group (the input the bias multiplies). The row order (c, u, v)
    matches ``w.reshape(G, C_out/G, -1)``, so that ``w_mat_g @ cols[n, g]`` is example n's output
    of group g already in (C_out/G, H'·W') order: no transpose of the result is needed, and the
    copy streams along image rows.
    """
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel_hw, stride, dilation, out_hw
    n, c = xp.shape[:2]
    cg = c // groups
    s_n, s_c, s_row, s_col = xp.strides
    # the formula above as a strided view of x_pad (nothing copied yet): steps d along (u, v), s along (i, j)
    fields = as_strided(xp, (n, groups, cg, kh, kw, ho, wo),
                        (s_n, cg * s_c, s_c, dh * s_row, dw * s_col, sh * s_row, sw * s_col), writeable=False)
    cols = ws.array("conv.cols", (n, groups, cg * kh * kw + 1, ho, wo), xp.dtype)
    cols[:, :, -1] = 1
    np.copyto(cols[:, :, :-1].reshape(n, groups, cg, kh, kw, ho, wo), fields)
    return cols.reshape(n, groups, cg * kh * kw + 1, ho * wo)


class _Planes:
    """The layout of conv2d_backward, in which im2col and col2im work on contiguous runs.

    Tap (u, v) reads ``x_pad[s_h i + d_h u, s_w j + d_w v]`` over the H'×W' output grid. Split
    x_pad into its s_h·s_w interleaved sub-grids ("phases": rows ≡ a mod s_h, columns ≡ b mod s_w),
    each a plane of H_s × W_s = ⌈H_p/s_h⌉ × ⌈W_p/s_w⌉; for stride 1 there is one phase, x_pad
    itself. Every read of tap (u, v) falls in one phase, (d_h u mod s_h, d_w v mod s_w), at plane
    position ``(i + d_h u // s_h, j + d_w v // s_w)``: the output grid shifted by a fixed amount,
    i.e. by ``offset = (d_h u // s_h)·W_s + d_w v // s_w`` on the flattened plane.

    So lay the outputs out on rows of W_s too (position (i, j) at ``i·W_s + j``, the columns
    j ≥ W' are not outputs and get dz = 0): then the im2col row of tap (u, v) is a contiguous
    slice of a flattened plane, starting at ``offset``, and the column gradient of tap (u, v),
    stored for all (example, channel) planes of the piece one after the other, goes back onto
    the input in a single contiguous ``+=``. The slices run past the end of a row (or plane) only
    in non-output columns: there they read finite numbers that dz = 0 cancels in the products, and
    add ``w · 0 = 0`` in col2im. An inf or nan in x or w makes those products nan instead:
    conv2d_backward then recomputes ``dw`` the forward's way, and col2im clears the non-output
    columns of ``dcols`` first.
    """

    def __init__(self, x_shape, w_shape, stride, padding, dilation, out_hw, groups=1, finite_w=True):
        (_, self.c, h, w), (self.c_out, _, self.kh, self.kw), self.groups = x_shape, w_shape, groups
        self.stride, self.dilation, (self.ho, self.wo), self.finite_w = stride, dilation, out_hw, finite_w
        (sh, sw), (ph, pw) = stride, padding
        self.h_s, self.w_s = -(-(h + 2 * ph) // sh), -(-(w + 2 * pw) // sw)  # ⌈H_p / s_h⌉, ⌈W_p / s_w⌉
        self.plane, self.q = self.h_s * self.w_s, self.ho * self.w_s  # a plane; the outputs on rows of W_s
        # (phase, offset) of each tap, in the (u, v) order of w's last two axes
        self.taps = [((dilation[0] * u % sh) * sw + dilation[1] * v % sw,
                      (dilation[0] * u // sh) * self.w_s + dilation[1] * v // sw)
                     for u in range(self.kh) for v in range(self.kw)]
        self.tail = max(offset for _, offset in self.taps)  # how far the last slice runs past the planes
        # per phase (a, b): input rows y0::s_h and columns x0::s_w lie at plane rows r0.. and columns c0..
        self.blocks = [(a, b, y0, (y0 + ph) // sh, len(range(y0, h, sh)), x0, (x0 + pw) // sw, len(range(x0, w, sw)))
                       for a in range(sh) for b in range(sw) for y0 in [(a - ph) % sh] for x0 in [(b - pw) % sw]]
        self.bytes_per_example = len(self.taps) * self.c * self.plane  # the largest temporary, dcols
        self.key = (x_shape[1:], w_shape, stride, padding, dilation, groups)

    def pad(self, ws, x: np.ndarray, dtype) -> np.ndarray:
        """x_pad of a piece of B examples as ``planes[phase, n, c, plane position]``, flattened."""
        (sh, sw), b = self.stride, x.shape[0]
        size = sh * sw * b * self.c * self.plane
        flat = ws.zeros("conv.x_planes", (size + self.tail,), dtype, layout=self.key)  # the padding stays zero
        planes = flat[:size].reshape(sh, sw, b, self.c, self.h_s, self.w_s)
        for a, a_w, y0, r0, rows, x0, c0, cols in self.blocks:
            planes[a, a_w, :, :, r0 : r0 + rows, c0 : c0 + cols] = x[:, :, y0::sh, x0::sw]
        return flat

    def pad_output(self, ws, dz: np.ndarray, dtype) -> np.ndarray:
        """``dz`` of the piece on rows of W_s, zero in the non-output columns: (B, G, C_out/G, H'·W_s)."""
        b, g = dz.shape[0], self.groups
        dz_rows = ws.zeros("conv.dz_rows", (b, self.c_out, self.ho, self.w_s), dtype, layout=self.key)
        dz_rows[..., : self.wo] = dz
        return dz_rows.reshape(b, g, self.c_out // g, self.q)

    def im2col(self, ws, flat: np.ndarray) -> np.ndarray:
        """``cols`` (B, G, C_in/G·K_h·K_w + 1, H'·W_s): every row a contiguous slice of the planes; then ones."""
        c, g, taps, plane, q = self.c, self.groups, len(self.taps), self.plane, self.q
        b = (len(flat) - self.tail) // (self.stride[0] * self.stride[1] * c * plane)
        cols = ws.array("conv.cols", (b, g, c // g * taps + 1, q), flat.dtype)
        cols[:, :, -1] = 1
        rows = cols[:, :, :-1].reshape(b, g, c // g, self.kh, self.kw, q)
        if self.stride == (1, 1):  # one phase, offsets d_h u W_s + d_w v: all taps in one strided view
            (d_h, d_w), it = self.dilation, flat.itemsize
            steps = (c * plane * it, c // g * plane * it, plane * it, d_h * self.w_s * it, d_w * it, it)
            np.copyto(rows, as_strided(flat, rows.shape, steps, writeable=False))
        else:
            phase_size = b * c * plane
            for t, (phase, offset) in enumerate(self.taps):
                start = phase * phase_size + offset
                rows[..., t // self.kw, t % self.kw, :] = \
                    flat[start : start + phase_size].reshape(b, g, c // g, plane)[..., :q]
        return cols

    def column_gradient(self, ws, w_mat: np.ndarray, dz_rows: np.ndarray) -> np.ndarray:
        """``dcols = w_matᵀ dz`` of the piece as (K_h·K_w, B, C_in, H_s·W_s): one block per tap.

        ``dcols[t, n, g·C_in/G + c, i·W_s + j] = Σ_o w[o, c, t] dz[n, o, i, j]`` for j < W', zero
        elsewhere, the sum over the output maps o of group g.
        """
        (b, g, og, q), c, taps = dz_rows.shape, self.c, len(self.taps)
        cg = c // g
        dcols = ws.zeros("conv.dcols", (taps, b, c, self.plane), dz_rows.dtype, layout=self.key)  # zero after q
        out = dcols.reshape(taps, b, g, cg, self.plane)[..., :q]
        w_gtco = w_mat.reshape(g, og, cg, taps).transpose(0, 3, 2, 1)  # w[o, c, t] as (G, K_h·K_w, C_in/G, C_out/G)
        if cg >= taps:  # one product per (tap, example, group): (C_in/G × C_out/G) @ (C_out/G × H'·W_s)
            np.matmul(w_gtco.transpose(1, 0, 2, 3)[:, None], dz_rows[None], out=out)
        else:  # one per (example, channel): (K_h·K_w × C_out/G) @ (C_out/G × H'·W_s)
            np.matmul(w_gtco.transpose(0, 2, 1, 3), dz_rows[:, :, None], out=out.transpose(1, 2, 3, 0, 4))
        if not self.finite_w:  # w·0 = nan in the non-output columns: clear them
            dcols[..., :q].reshape(taps, b, c, self.ho, self.w_s)[..., self.wo :] = 0
        return dcols

    def col2im(self, ws, dcols: np.ndarray, out: np.ndarray) -> None:
        """Add each tap's block of ``dcols`` onto the plane positions it read; write the crop ``dx`` to ``out``."""
        (sh, sw), (taps, b, c, plane) = self.stride, dcols.shape
        phase_size = b * c * plane
        dx_p = ws.array("conv.dx_planes", (sh * sw * phase_size + self.tail,), dcols.dtype)
        dx_p.fill(0)
        for t, (phase, offset) in enumerate(self.taps):
            start = phase * phase_size + offset
            dx_p[start : start + phase_size] += dcols[t].reshape(-1)
        planes = dx_p[: sh * sw * phase_size].reshape(sh, sw, b, c, self.h_s, self.w_s)
        for a, a_w, y0, r0, rows, x0, c0, cols in self.blocks:
            out[:, :, y0::sh, x0::sw] = planes[a, a_w, :, :, r0 : r0 + rows, c0 : c0 + cols]


def _weight_grad_by_examples(dz, x, w_shape, stride, padding, dilation, groups, dtype) -> np.ndarray:
    """``[dw_mat_g | db_g]ᵀ`` of conv2d_backward from the forward's im2col, which has no non-output columns.

    Used when x holds inf or nan, where ``0 · inf`` would otherwise put nan into finite sums.
    """
    (n, c_out, ho, wo), w_cols = dz.shape, w_shape[1] * w_shape[2] * w_shape[3]
    dz_mat = np.ascontiguousarray(dz, dtype=dtype).reshape(n, groups, c_out // groups, ho * wo)
    dwb_t = np.zeros((groups, w_cols + 1, c_out // groups), dtype=dtype)
    with workspace() as ws:
        for sl in ws.batches(n, groups * (w_cols + 1) * ho * wo * dtype.itemsize):
            cols = _im2col(ws, _pad_into(ws, x[sl], padding, dtype), w_shape[2:], stride, dilation, (ho, wo), groups)
            dwb_t += np.matmul(cols, dz_mat[sl].transpose(0, 1, 3, 2)).sum(axis=0)
    return dwb_t


# --- loop forms -------------------------------------------------------------------------------


def _pad(x: np.ndarray, padding) -> np.ndarray:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def conv2d_forward_loop(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1):
    """[eq-layer-forward] as seven nested loops; with groups, [eq-gc-forward].

    Output map ``o`` is in group ``g = o // (C_out/G)`` and reads the C_in/G input
    maps ``g·C_in/G + c``, ``c = 0 … C_in/G − 1``, through its kernels ``w[o, c]``.
    Tiny inputs only.
    """
    x, w, b, (sh, sw), padding, (dh, dw), (ho, wo) = check_layer(
        x, w, b, stride, padding, dilation, groups
    )
    xp = _pad(x, padding)
    N, O, G = x.shape[0], w.shape[0], int(groups)
    _, Cg, Kh, Kw = w.shape  # Cg = C_in/G input maps per group
    dtype = result_dtype(x, w) if b is None else result_dtype(x, w, b)
    z = np.zeros((N, O, ho, wo), dtype=dtype)
    for n in range(N):
        for o in range(O):
            g = o // (O // G)  # the group of output map o
            for i in range(ho):
                for j in range(wo):
                    acc = 0.0 if b is None else b[o]
                    for c in range(Cg):
                        for u in range(Kh):
                            for v in range(Kw):
                                p, q = sh * i + dh * u, sw * j + dw * v
                                acc += w[o, c, u, v] * xp[n, g * Cg + c, p, q]
                    z[n, o, i, j] = acc
    return z


def conv2d_backward_loop(dz, x, w, *, stride=1, padding=0, dilation=1, groups=1):
    """The chain rule through [eq-layer-forward] ([eq-gc-forward]), one term at a time.

    Each product ``w[o,c,u,v] · x_pad[n,c',p,q]`` that fed ``z[n,o,i,j]``, with
    ``c' = g·C_in/G + c`` for the group g of o, sends ``dz[n,o,i,j]`` back to both
    factors: ``dw[o,c,u,v] += dz · x_pad[n,c',p,q]`` and ``dx_pad[n,c',p,q] += dz ·
    w[o,c,u,v]``. Note the ``+=``: an input pixel read by several windows collects a
    contribution from each. Tiny inputs only.
    """
    x, w, _, (sh, sw), (ph, pw), (dh, dw_), (ho, wo) = check_layer(
        x, w, None, stride, padding, dilation, groups
    )
    dz = as_real_array(dz, "dz", ndim=4)
    N, _, H, W = x.shape
    O, Cg, Kh, Kw = w.shape  # Cg = C_in/G input maps per group
    G = int(groups)
    why = "the shape of conv2d_forward's output for these x, w and settings"
    check_shape(dz, (N, O, ho, wo), "dz", why)
    dtype = result_dtype(dz, x, w)
    xp = _pad(x, (ph, pw))
    dxp = np.zeros(xp.shape, dtype=dtype)
    dw = np.zeros(w.shape, dtype=dtype)
    db = np.zeros(O, dtype=dtype)
    for n in range(N):
        for o in range(O):
            g = o // (O // G)  # the group of output map o
            for i in range(ho):
                for j in range(wo):
                    delta = dz[n, o, i, j]
                    db[o] += delta
                    for c in range(Cg):
                        for u in range(Kh):
                            for v in range(Kw):
                                p, q = sh * i + dh * u, sw * j + dw_ * v
                                dw[o, c, u, v] += delta * xp[n, g * Cg + c, p, q]
                                dxp[n, g * Cg + c, p, q] += delta * w[o, c, u, v]
    return dxp[:, :, ph : ph + H, pw : pw + W], dw, db
