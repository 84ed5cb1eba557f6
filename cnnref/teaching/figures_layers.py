"""Figures of a whole layer, forward and backward (book: forward.md, strided_backward.md,
pooling_backward.md).

- :func:`forward_tensors_figure`: the multi-channel layer as tensors, and one output map
  as the sum of its per-channel correlations plus a bias (Chapter "The forward pass").
- :func:`zero_insertion_figure`: the input gradient of a strided or dilated layer as a
  full correlation of zero-inserted deltas with the rotated, dilated kernel (Chapter
  "Stride, padding and dilation in the backward pass").
- :func:`pooling_routing_figure`: the backward pass of max pooling (routing, the tie
  rule, overlapping windows adding up) and of mean pooling (spreading) on one map
  (Chapter "Pooling backward").

Every number drawn is computed by ``cnnref`` (``conv2d_forward``, ``correlate2d``,
``transposed.zero_insert``, ``transposed.dilate_kernel``,
``maxpool2d_forward``, ``maxpool2d_backward``, ``avgpool2d_backward``) from the arrays
passed in. Each function returns the matplotlib ``Figure`` and the arrays it drew (a
dict, or one dict per figure row), so that a test or a notebook cell can assert what the picture shows. Panels are
placed in inches, so that a cell of an array has the same size in every panel.

matplotlib is imported inside the functions only: importing ``cnnref`` never needs it.
"""

from __future__ import annotations

import numpy as np

from .._validate import as_int, as_pair, as_real_array, check_layer, check_pool
from ..conv import conv2d_forward
from ..correlation import correlate2d, rot180
from ..pooling import avgpool2d_backward, maxpool2d_backward, maxpool2d_forward
from ..sizes import output_size
from ..transposed import dilate_kernel, zero_insert
from .figures import annotated_grid

__all__ = ["forward_tensors_figure", "zero_insertion_figure", "pooling_routing_figure"]

CELL = 0.3  # inches per array cell
MAX_FIG_WIDTH = 8.0  # inches: the figures must stay readable at phone width


def _plt():
    import matplotlib.pyplot as plt  # lazy: only the book's figure cells need matplotlib

    return plt


class _Canvas:
    """A figure whose axes are placed in inches from the top-left corner."""

    def __init__(self, width, height):
        if width > MAX_FIG_WIDTH + 1e-9:
            raise ValueError(
                f"the arrays are too large to draw legibly: the figure would be "
                f"{width:.1f} inches wide, at most {MAX_FIG_WIDTH:g} fit"
            )
        self.w, self.h = width, height
        self.fig = _plt().figure(figsize=(width, height))

    def axes(self, left, top, n_rows, n_cols, cell=CELL):
        """Axes for an (n_rows, n_cols) array, top-left corner at (left, top) inches."""
        width, height = n_cols * cell, n_rows * cell
        rect = (
            left / self.w,
            1 - (top + height) / self.h,
            width / self.w,
            height / self.h,
        )
        return self.fig.add_axes(rect)

    def text(self, x, y, s, **kw):
        """Text at (x, y) inches from the top-left corner."""
        kw.setdefault("ha", "center")
        kw.setdefault("va", "center")
        kw.setdefault("fontsize", 10)
        return self.fig.text(x / self.w, 1 - y / self.h, s, **kw)

    def box(self, left, top, width, height, **kw):
        """An outline around a block of the figure (inches from the top-left corner)."""
        from matplotlib.patches import Rectangle

        rect = Rectangle(
            (left / self.w, 1 - (top + height) / self.h),
            width / self.w,
            height / self.h,
            transform=self.fig.transFigure,
            fill=False,
            **kw,
        )
        self.fig.patches.append(rect)
        return rect


def _grid(ax, values, *, fmt, title=None, cmap="Blues", highlight=None, ticks=True):
    """annotated_grid with 8-pt tick labels (or none), 10-pt title."""
    labels = annotated_grid(
        ax, values, fmt=fmt, title=title, cmap=cmap, highlight=highlight
    )
    if ticks:
        ax.tick_params(labelsize=8, length=2, pad=1)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    return labels


def _int_shape(v, name):
    if not (isinstance(v, (tuple, list)) and len(v) == 2):
        raise ValueError(f"{name} must be a pair (H, W), got {v!r}")
    return as_int(v[0], name, minimum=1), as_int(v[1], name, minimum=1)


# --- Chapter "The forward pass": the layer as tensors ----------------------------------------


def forward_tensors_figure(x, w, b, *, out_map=0, fmt="{:g}"):
    """One example through a layer with stride 1, no padding, no dilation, drawn as tensors.

    x: (C_in, H, W), the input maps a_c of one example; w: (C_out, C_in, K_h, K_w) (OIHW);
    b: (C_out,); out_map: the output map o spelled out at the bottom. Top: input map c above
    column c of the C_out × C_in grid of kernels, bias b_o and output map z_o at the end of
    row o, with the shapes written on the picture. Bottom: z_o = Σ_c a_c ⋆ w_{o,c} + b_o
    ([eq-fwd-single-input], [eq-fwd-complete-input], the case s = 1, P = 0, d = 1 of
    [eq-layer-forward]).

    Returns ``(fig, drawn)``; drawn has ``z`` (C_out, H', W') from ``cnnref.conv2d_forward``
    and ``shares`` (C_out, C_in, H', W'), ``shares[o, c] = cnnref.correlate2d(x[c], w[o, c])``.
    At most 3 input maps, 4 output maps and 6 × 6 input maps (the numbers must stay legible).
    """
    x = as_real_array(x, "x", ndim=3)
    x4, w, b, *_ = check_layer(x[None], w, b, 1, 0, 1)
    if b is None:
        raise ValueError(
            "b must be given: the figure shows the bias of every output map"
        )
    (c_in, H, W), (c_out, _, kh, kw) = x.shape, w.shape
    if c_in > 3 or c_out > 4 or H > 6 or W > 6:
        raise ValueError(
            "at most 3 input maps, 4 output maps and 6 x 6 input maps fit the figure, "
            f"got x {x.shape} and w {w.shape}"
        )
    o_ = as_int(out_map, "out_map", minimum=0)
    if o_ >= c_out:
        raise ValueError(
            f"out_map must be an output map index below C_out={c_out}, got {o_}"
        )
    z = conv2d_forward(x4, w, b)[0]
    shares = np.array(
        [[correlate2d(x[c], w[o, c]) for c in range(c_in)] for o in range(c_out)]
    )
    ho, wo = z.shape[1:]

    # layout (inches): columns of the kernel grid are as wide as an input map
    col_w = max(W, kw, wo) * CELL + 0.45
    row_h = max(ho, kh) * CELL + 0.45
    left = 0.55
    grid_top = 0.55 + H * CELL + 1.05
    b_left = left + c_in * col_w + 0.15
    z_left = b_left + CELL + 0.75
    eq_top = grid_top + c_out * row_h + 0.7
    eq_w = c_in * (wo * CELL + 0.55) + CELL + 0.55 + wo * CELL
    width = max(z_left + wo * CELL + 0.65, left + eq_w + 0.3)
    cv = _Canvas(width, eq_top + ho * CELL + 0.25)

    cv.text(
        left + c_in * col_w / 2, 0.15, f"input x[n]: C_in × H × W = {c_in} × {H} × {W}"
    )
    for c in range(c_in):
        cx = left + c * col_w + (col_w - 0.45 - W * CELL) / 2
        _grid(cv.axes(cx, 0.55, H, W), x[c], fmt=fmt, title=f"$a_{c}$")
    head = grid_top - 0.4
    cv.text(
        left + c_in * col_w / 2,
        head,
        f"kernels w: C_out × C_in × K_h × K_w\n= {c_out} × {c_in} × {kh} × {kw}",
        fontsize=9,
    )
    cv.text(b_left + CELL / 2, head, f"b: (C_out,)\n= ({c_out},)", fontsize=9)
    cv.text(
        z_left + wo * CELL / 2,
        head,
        f"z[n]: C_out × H′ × W′\n= {c_out} × {ho} × {wo}",
        fontsize=9,
    )
    for o in range(c_out):
        top = grid_top + o * row_h
        for c in range(c_in):
            kx = left + c * col_w + (col_w - 0.45 - kw * CELL) / 2
            ky = top + (ho * CELL - kh * CELL) / 2 if ho > kh else top
            _grid(
                cv.axes(kx, ky, kh, kw), w[o, c], fmt=fmt, cmap="Oranges", ticks=False
            )
            cv.text(
                kx - 0.05,
                ky + kh * CELL / 2,
                f"$w_{{{o},{c}}}$",
                ha="right",
                fontsize=9,
            )
        by = top + (ho - 1) * CELL / 2
        _grid(
            cv.axes(b_left, by, 1, 1),
            b[o : o + 1, None],
            fmt=fmt,
            cmap="Purples",
            ticks=False,
        )
        cv.text(b_left + CELL / 2, by + CELL + 0.12, f"$b_{o}$", fontsize=9)
        cv.text(b_left + CELL + 0.37, top + ho * CELL / 2, "→", fontsize=12)
        _grid(cv.axes(z_left, top, ho, wo), z[o], fmt=fmt, cmap="Greens", ticks=False)
        cv.text(z_left + wo * CELL + 0.15, top + ho * CELL / 2, f"$z_{o}$", fontsize=9)
    cv.box(
        left - 0.45,
        grid_top + o_ * row_h - 0.12,
        z_left + wo * CELL + 0.3 - left + 0.4,
        max(ho, kh) * CELL + 0.24,
        edgecolor="red",
        linewidth=1.5,
    )

    # bottom: z_o as the sum of its shares plus the bias
    x0 = left
    cv.text(left, eq_top - 0.45, f"output map o = {o_}:", ha="left")
    for c in range(c_in):
        _grid(
            cv.axes(x0, eq_top, ho, wo),
            shares[o_, c],
            fmt=fmt,
            cmap="Greens",
            ticks=False,
            title=f"$a_{c} \\star w_{{{o_},{c}}}$",
        )
        cv.text(x0 + wo * CELL + 0.275, eq_top + ho * CELL / 2, "+", fontsize=14)
        x0 += wo * CELL + 0.55
    by = eq_top + (ho - 1) * CELL / 2
    _grid(
        cv.axes(x0, by, 1, 1),
        b[o_ : o_ + 1, None],
        fmt=fmt,
        cmap="Purples",
        ticks=False,
    )
    cv.text(x0 + CELL / 2, by - 0.15, f"$b_{o_}$")
    cv.text(x0 + CELL + 0.275, eq_top + ho * CELL / 2, "=", fontsize=14)
    x0 += CELL + 0.55
    _grid(
        cv.axes(x0, eq_top, ho, wo),
        z[o_],
        fmt=fmt,
        cmap="Greens",
        ticks=False,
        title=f"$z_{o_}$",
    )
    return cv.fig, {"z": z, "shares": shares}


# --- Chapter "Stride, padding and dilation in the backward pass" ------------------------------


def zero_insertion_figure(rows, *, fmt="{:g}"):
    """The input gradient of a one-map layer as a full correlation with zero insertion.

    rows: a sequence of 1 to 3 cases ``(dz, w, x_hw, stride, dilation)``, one figure row each:
    dz (H', W') the deltas, w (K_h, K_w) the kernel, x_hw = (H, W) the input size, stride and
    dilation int or (h, w) pairs; no padding. Each row draws the deltas, the zero-inserted
    deltas ``δ̌`` ([eq-sb-zero-insert]) with the border of K̃ − 1 zeros (K̃ = d(K − 1) + 1,
    the inserted block outlined), the rotated dilated kernel ``rot180(w̃)``
    ([eq-sb-dilated-kernel]) and their valid correlation, which is the input gradient
    ([eq-input-grad-transposed]), extended by zero rows and columns where the stride leaves
    a remainder ([eq-sb-remainder]).

    Returns ``(fig, drawn)``; drawn is a list with one dict per row: ``dz_full`` (the padded
    zero-inserted deltas), ``w_rot`` and ``dx`` (H, W), which equals
    ``cnnref.conv2d_backward``'s input gradient.
    """
    if not isinstance(rows, (list, tuple)) or not 1 <= len(rows) <= 3:
        raise ValueError(
            f"rows must be a list of 1 to 3 cases (dz, w, x_hw, stride, dilation), got {rows!r}"
        )
    drawn, cases = [], []
    for k, case in enumerate(rows):
        if not (isinstance(case, (list, tuple)) and len(case) == 5):
            raise ValueError(
                f"rows[{k}] must be a tuple (dz, w, x_hw, stride, dilation), got {case!r}"
            )
        dz, w, x_hw, stride, dilation = case
        dz = as_real_array(dz, f"rows[{k}] dz", ndim=2)
        w = as_real_array(w, f"rows[{k}] w", ndim=2)
        H, W = _int_shape(x_hw, f"rows[{k}] x_hw")
        s, d = as_pair(stride, "stride", 1), as_pair(dilation, "dilation", 1)
        out = tuple(
            output_size(n, kk, ss, 0, dd)
            for n, kk, ss, dd in zip((H, W), w.shape, s, d)
        )
        if dz.shape != out:
            raise ValueError(
                f"rows[{k}] dz must have the layer's output shape {out} for input {(H, W)}, "
                f"kernel {w.shape}, stride {s}, dilation {d}; got {dz.shape}"
            )
        w_rot = rot180(dilate_kernel(w[None, None], d)[0, 0])
        span = w_rot.shape
        dz_check = zero_insert(dz[None, None], s)[0, 0]
        dz_full = np.pad(dz_check, [(span[0] - 1,) * 2, (span[1] - 1,) * 2])
        covered = correlate2d(dz_full, w_rot, "valid")
        dx = np.zeros((H, W), dtype=covered.dtype)
        dx[: covered.shape[0], : covered.shape[1]] = covered  # the remainder stays zero
        drawn.append({"dz_full": dz_full, "w_rot": w_rot, "dx": dx})
        cases.append((dz, dz_check.shape, s, d, span, w.shape))

    gap = 0.6
    width = 0.3 + max(
        sum(a.shape[1] for a in (c[0], r["dz_full"], r["w_rot"], r["dx"])) * CELL
        + 3 * gap
        for c, r in zip(cases, drawn)
    )
    heights = [
        max(r["dz_full"].shape[0], r["dx"].shape[0]) * CELL + 1.25 for r in drawn
    ]
    cv = _Canvas(width, sum(heights) + 0.1)
    top = 0.1
    for (dz, check_shape_, s, d, span, k_hw), r, h in zip(cases, drawn, heights):
        H, W = r["dx"].shape
        cv.text(
            0.15,
            top + 0.15,
            f"stride s = {s[0]}, dilation d = {d[0]}: kernel "
            f"{k_hw[0]}×{k_hw[1]} (span $\\tilde{{K}}$ = {span[0]}), input {H}×{W}, deltas "
            f"{dz.shape[0]}×{dz.shape[1]}",
            ha="left",
        )
        body = top + 0.85
        mid = body + (h - 1.25) / 2
        x0 = 0.15

        def zeros(n):
            return f"{n} zero{'s' if n > 1 else ''}"

        border = f"border of $\\tilde{{K}}-1$ = {span[0] - 1}"
        if s[0] > 1:
            t_dz = f"zero-inserted $\\delta$: {zeros(s[0] - 1)}\nbetween, {border}"
        else:
            t_dz = f"$\\delta$ (s = 1: nothing inserted),\n{border}"
        if d[0] > 1:
            t_w = f"rot180($\\tilde{{w}}$):\n{zeros(d[0] - 1)} between taps"
        else:
            t_w = "rot180(w)"
        panels = [
            (dz, "deltas $\\delta$", "Greens", None),
            (r["dz_full"], t_dz, "Greens", (span[0] - 1, span[1] - 1) + check_shape_),
            (r["w_rot"], t_w, "Oranges", None),
            (r["dx"], "input gradient dx", "Blues", None),
        ]
        ops = ["→", "$\\star$", "="]
        for k, (arr, title, cmap, hl) in enumerate(panels):
            n_r, n_c = arr.shape
            y0 = mid - n_r * CELL / 2
            ax = cv.axes(x0, y0, n_r, n_c)
            _grid(ax, arr, fmt=fmt, cmap=cmap, highlight=hl, ticks=False)
            if k == 1:  # the inserted zeros in grey, the deltas stand out
                for t in ax.texts:
                    if t.get_text() == fmt.format(0.0):
                        t.set_color("#9a9a9a")
            cv.text(x0 + n_c * CELL / 2, y0 - 0.3, title, fontsize=9)
            x0 += n_c * CELL
            if k < 3:
                cv.text(x0 + gap / 2, mid, ops[k], fontsize=22 if k == 1 else 14)
                x0 += gap
        top += h
    return cv.fig, drawn


# --- Chapter "Pooling backward": routing, ties, spreading -----------------------------------


def _window_colours(n):
    from matplotlib import colormaps

    tab = colormaps["tab10"]
    return [tab(k % 10) for k in (0, 1, 2, 4, 6, 8, 9, 5, 7)[:n]]


def pooling_routing_figure(x, dy, size, stride=None, *, fmt="{:g}", fmt_mean="{:.2f}"):
    """Where the gradient of each pooling window goes: max pooling and mean pooling of one map.

    x: (H, W), the pooled map; dy: (H', W'), the gradient with respect to the pooled output;
    size, stride as for ``cnnref.maxpool2d_forward`` (stride defaults to size). Four panels:
    x with every window outlined in its own colour and tied maxima marked with dashed squares;
    dy, each entry framed in its window's colour; the max-pooling input gradient, in which each
    dy[i, j] goes to its window's first maximum in row-major order (the tie rule) and
    overlapping windows add ([eq-maxpool-backward]); and the mean-pooling input gradient, in
    which each dy[i, j] is spread as dy[i, j] / (K_h K_w) over its window and the shares add
    ([eq-avgpool-backward]).

    Returns ``(fig, drawn)`` with ``y`` (``cnnref.maxpool2d_forward``), ``dx_max``
    (``cnnref.maxpool2d_backward``), ``dx_mean`` (``cnnref.avgpool2d_backward``), all 2-D, and
    ``ties``: a dict from each window (i, j) with a tied maximum to its tied positions (p, q)
    in row-major order. At most 9 windows and 8 × 8 maps.
    """
    x = as_real_array(x, "x", ndim=2)
    x4, (kh, kw), (sh, sw), (ho, wo) = check_pool(x[None, None], size, stride)
    dy = as_real_array(dy, "dy", ndim=2)
    if dy.shape != (ho, wo):
        raise ValueError(
            f"dy must have the pooled shape {(ho, wo)} for x {x.shape}, size {(kh, kw)} "
            f"and stride {(sh, sw)}, got {dy.shape}"
        )
    if ho * wo > 9 or max(x.shape) > 8:
        raise ValueError(
            f"at most 9 windows and 8 x 8 maps fit the figure, got x {x.shape} with "
            f"{ho * wo} windows"
        )
    y = maxpool2d_forward(x4, (kh, kw), (sh, sw))[0, 0]
    dx_max = maxpool2d_backward(dy[None, None], x4, (kh, kw), (sh, sw))[0, 0]
    dx_mean = avgpool2d_backward(dy[None, None], x4, (kh, kw), (sh, sw))[0, 0]
    ties = {}
    for i in range(ho):
        for j in range(wo):
            win = x[sh * i : sh * i + kh, sw * j : sw * j + kw]
            at = [(sh * i + u, sw * j + v) for u, v in zip(*np.nonzero(win == y[i, j]))]
            if len(at) > 1:
                ties[(i, j)] = at

    from matplotlib.patches import Rectangle

    H, W = x.shape
    cell = 0.4
    colours = _window_colours(ho * wo)
    gap_x, gap_y = 0.9, 1.0
    panel_w = max(W, wo) * cell
    width = 0.45 + 2 * panel_w + gap_x + 0.2
    height = 0.75 + H * cell + gap_y + H * cell + 0.2
    cv = _Canvas(width, height)
    tops = (0.75, 0.75 + H * cell + gap_y)
    lefts = (0.45, 0.45 + panel_w + gap_x)
    ax_x = cv.axes(lefts[0], tops[0], H, W, cell)
    _grid(
        ax_x, x, fmt=fmt, cmap="Greys", title=f"map x, {kh}×{kw} windows,\nstride {sh}"
    )
    ax_dy = cv.axes(lefts[1], tops[0] + (H - ho) * cell / 2, ho, wo, cell)
    _grid(ax_dy, dy, fmt=fmt, cmap="Greys", title="∂E/∂y, one per window")
    for k, (i, j) in enumerate((i, j) for i in range(ho) for j in range(wo)):
        r = 0.05 + 0.05 * (2 * (i % 2) + j % 2)  # neighbouring windows' edges apart
        ax_x.add_patch(
            Rectangle(
                (sw * j - 0.5 + r, sh * i - 0.5 + r),
                kw - 2 * r,
                kh - 2 * r,
                fill=False,
                edgecolor=colours[k],
                linewidth=2.2,
                zorder=5,
                clip_on=False,
            )
        )
        ax_dy.add_patch(
            Rectangle(
                (j - 0.45, i - 0.45),
                0.9,
                0.9,
                fill=False,
                edgecolor=colours[k],
                linewidth=2.5,
                zorder=5,
            )
        )
    ax_max = cv.axes(lefts[0], tops[1], H, W, cell)
    _grid(
        ax_max,
        dx_max,
        fmt=fmt,
        cmap="Blues",
        title="max pool ∂E/∂x:\nto the first maximum",
    )
    for ax in (ax_x, ax_max):  # the tied maxima, dashed
        for at in ties.values():
            for p, q in at:
                ax.add_patch(
                    Rectangle(
                        (q - 0.36, p - 0.36),
                        0.72,
                        0.72,
                        fill=False,
                        edgecolor="red",
                        linestyle="--",
                        linewidth=1.5,
                        zorder=6,
                    )
                )
    ax_mean = cv.axes(lefts[1], tops[1], H, W, cell)
    _grid(
        ax_mean,
        dx_mean,
        fmt=fmt_mean,
        cmap="Blues",
        title=f"mean pool ∂E/∂x:\nshares ∂E/∂y / {kh * kw}",
    )
    for ax in (ax_x, ax_dy, ax_max, ax_mean):
        for t in ax.texts:
            t.set_fontsize(8.5)
    return cv.fig, {"y": y, "dx_max": dx_max, "dx_mean": dx_mean, "ties": ties}
