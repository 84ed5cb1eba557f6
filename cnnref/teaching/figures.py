"""Figures for Part I, drawn from ``cnnref`` results (book: convolution.md, output_size.md).

Every number shown in a figure is computed by ``cnnref`` (``correlate2d``,
``convolve2d``, ``rot180``, ``conv2d_backward``) or by the sources' printed
forms in :mod:`cnnref.teaching.sourceforms.forward`; nothing is typed in by hand.
Each function returns the matplotlib ``Figure`` together with the arrays it
drew, so that a test (or a notebook cell) can assert what the picture shows.

matplotlib is imported inside the functions only: importing ``cnnref`` never
needs it.
"""

from __future__ import annotations

import numpy as np

from .._validate import as_int, as_pair, as_real_array, check_mode
from ..conv import conv2d_backward
from ..correlation import convolve2d, correlate2d, rot180
from ..sizes import output_size

__all__ = ["annotated_grid", "sliding_window_figure", "flip_figure", "boundary_figure", "read_matrix", "coverage_figure"]


def _plt():
    import matplotlib.pyplot as plt  # lazy: only the book's figure cells need matplotlib

    return plt


def _fmt_value(v, fmt):
    return "" if np.isnan(v) else fmt.format(v)


def annotated_grid(ax, values, *, fmt="{:g}", title=None, highlight=None, cmap="Blues", undefined_label="?"):
    """Draw a 2-D array as a grid of cells with each value written in its cell.

    ax: a matplotlib Axes; values: (H, W) real array (NaN cells are drawn grey and
    labelled ``undefined_label``); highlight: None or ``(row0, col0, n_rows, n_cols)``,
    a block outlined in red. Row 0 is at the top, as in the array. Returns the
    list of cell labels (row-major strings), i.e. exactly what was written.
    """
    from matplotlib.patches import Rectangle

    values = as_real_array(values, "values", ndim=2)
    H, W = values.shape
    shown = np.where(np.isnan(values), np.nan, values)
    masked = np.ma.masked_invalid(shown)
    cm = _plt().get_cmap(cmap).with_extremes(bad="#d9d9d9")
    finite = values[np.isfinite(values)]
    vmax = float(np.max(np.abs(finite))) if finite.size else 1.0
    vmax = vmax or 1.0
    vmin = -vmax if (finite < 0).any() else 0.0
    ax.imshow(masked, cmap=cm, vmin=vmin, vmax=vmax)
    labels = []
    for r in range(H):
        for c in range(W):
            val = values[r, c]
            text = undefined_label if np.isnan(val) else _fmt_value(val, fmt)
            labels.append(text)
            dark = (not np.isnan(val)) and (val - vmin) / (vmax - vmin) > 0.6
            ax.text(c, r, text, ha="center", va="center", fontsize=9, color="white" if dark else "black")
    ax.set_xticks(range(W))
    ax.set_yticks(range(H))
    ax.set_xticks(np.arange(-0.5, W, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, H, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    if highlight is not None:
        r0, c0, nr, nc = highlight
        ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), nc, nr, fill=False, edgecolor="red", linewidth=3, zorder=5))
    if title:
        ax.set_title(title, fontsize=10)
    return labels


def sliding_window_figure(image, kernel, out_index, *, kind="correlation", fmt="{:g}"):
    """Three panels: the image with one window outlined, the kernel as it is laid on that window, the output.

    image: (H, W); kernel: (K_h, K_w); out_index: (i, j), a position of the *valid*
    output; kind: ``"correlation"`` ([eq-corr-def], kernel laid on as stored) or
    ``"convolution"`` ([eq-conv-def], kernel laid on rotated by 180°, the flip of
    [eq-flip-relation]). Returns ``(fig, out, laid)``: the valid output computed by
    ``cnnref.correlate2d`` / ``cnnref.convolve2d`` and the kernel as laid on the window.
    """
    image = as_real_array(image, "image", ndim=2)
    kernel = as_real_array(kernel, "kernel", ndim=2)
    check_mode(kind, ("correlation", "convolution"), "kind")
    out = correlate2d(image, kernel, "valid") if kind == "correlation" else convolve2d(image, kernel, "valid")
    if not (isinstance(out_index, (tuple, list)) and len(out_index) == 2):
        raise ValueError(f"out_index must be a pair (i, j), got {out_index!r}")
    i, j = as_int(out_index[0], "out_index[0]"), as_int(out_index[1], "out_index[1]")
    if not (0 <= i < out.shape[0] and 0 <= j < out.shape[1]):
        raise ValueError(f"out_index must lie in the valid output of shape {out.shape}, got {(i, j)}")
    kh, kw = kernel.shape
    laid = kernel if kind == "correlation" else np.array(rot180(kernel))
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), gridspec_kw={"width_ratios": [image.shape[1], kw + 1, out.shape[1]]})
    annotated_grid(axes[0], image, fmt=fmt, title="image", highlight=(i, j, kh, kw))
    sym = "⋆" if kind == "correlation" else "∗"
    annotated_grid(axes[1], laid, fmt=fmt, cmap="Oranges",
                   title="kernel as laid on" if kind == "correlation" else "kernel rotated 180°")
    annotated_grid(axes[2], out, fmt=fmt, cmap="Greens", title=f"image {sym} kernel (valid)", highlight=(i, j, 1, 1))
    window = image[i : i + kh, j : j + kw]
    fig.suptitle(f"output[{i}, {j}] = Σ window · laid kernel = {fmt.format(float(np.sum(window * laid)))}", fontsize=10)
    fig.tight_layout()
    return fig, out, laid


def flip_figure(kernel, *, fmt="{:g}"):
    """Two panels: a kernel and ``cnnref.rot180`` of it, cell (u, v) going to (K_h−1−u, K_w−1−v).

    Returns ``(fig, rotated)``.
    """
    kernel = as_real_array(kernel, "kernel", ndim=2)
    rotated = np.array(rot180(kernel))
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(5.5, 2.8))
    annotated_grid(axes[0], kernel, fmt=fmt, cmap="Oranges", title="k")
    annotated_grid(axes[1], rotated, fmt=fmt, cmap="Oranges", title="rot180(k)")
    fig.tight_layout()
    return fig, rotated


def boundary_figure(image, kernel, *, fmt="{:g}"):
    """Sources 000/002's definitions evaluated on the image grid: where each is defined ("?" = undefined).

    image: (H, W); kernel: (K_h, K_w). Left: convolution v(x, y) (undefined top/left);
    right: correlation l(x, y) (undefined bottom/right), both from
    :mod:`cnnref.teaching.sourceforms.forward`. Returns ``(fig, v, l)``.
    """
    from .sourceforms.forward import convolution_000, correlation_000

    v, ell = convolution_000(image, kernel), correlation_000(image, kernel)
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
    annotated_grid(axes[0], v, fmt=fmt, cmap="Greens", title="convolution v(x, y)")
    annotated_grid(axes[1], ell, fmt=fmt, cmap="Greens", title="correlation l(x, y)")
    for ax in axes:
        ax.set_xlabel("y")
        ax.set_ylabel("x")
    fig.tight_layout()
    return fig, v, ell


def read_matrix(n, kernel, stride=1, padding=0, dilation=1) -> np.ndarray:
    """(n_out, n + 2P) integer matrix: entry [i, p] = 1 if output i reads padded input position p.

    Computed with ``cnnref.conv2d_backward``: with all-ones weights, the input gradient
    of output i alone is 1 exactly at the positions its window reads (1-D: width 1).
    """
    n, kernel = as_int(n, "n"), as_int(kernel, "kernel")
    (s, _), (P, _), (d, _) = as_pair(stride, "stride", 1), as_pair(padding, "padding", 0), as_pair(dilation, "dilation", 1)
    n_out = output_size(n, kernel, s, P, d)
    x_pad = np.zeros((1, 1, n + 2 * P, 1))
    w = np.ones((1, 1, kernel, 1))
    rows = []
    for i in range(n_out):
        dz = np.zeros((1, 1, n_out, 1))
        dz[0, 0, i, 0] = 1.0
        dx, _, _ = conv2d_backward(dz, x_pad, w, stride=(s, 1), padding=0, dilation=(d, 1))
        rows.append(dx[0, 0, :, 0])
    return np.array(rows).astype(int)


def coverage_figure(n, kernel, stride=1, padding=0, dilation=1):
    """One axis of a conv: which padded input positions each output position reads.

    Rows: output positions i; columns: padded input positions (the first and last
    P are zeros). Columns that no output reads (the stride remainder) are marked.
    Returns ``(fig, M)`` with M from :func:`read_matrix`.
    """
    from matplotlib.patches import Rectangle

    M = read_matrix(n, kernel, stride, padding, dilation)
    (P, _) = as_pair(padding, "padding", 0)
    n_out, n_pad = M.shape
    plt = _plt()
    fig, ax = plt.subplots(figsize=(0.45 * n_pad + 1.5, 0.45 * n_out + 1.4))
    ax.imshow(M, cmap="Blues", vmin=0, vmax=1.6, aspect="equal")
    for p in range(n_pad):
        if p < P or p >= n_pad - P:
            ax.add_patch(Rectangle((p - 0.5, -0.5), 1, n_out, fill=False, hatch="//", edgecolor="#999999", linewidth=0))
        if not M[:, p].any():
            ax.text(p, n_out - 0.5 + 0.35, "×", ha="center", va="top", color="red", fontsize=12)
    ax.set_xticks(range(n_pad))
    ax.set_xticklabels([str(p - P) for p in range(n_pad)], fontsize=8)
    ax.set_yticks(range(n_out))
    ax.set_xlabel("input position p (hatched: zero padding, ×: never read)")
    ax.set_ylabel("output i")
    ax.set_title(f"n={n}, K={kernel}, s={as_pair(stride, 'stride', 1)[0]}, P={P}, "
                 f"d={as_pair(dilation, 'dilation', 1)[0]}  →  n_out={n_out}", fontsize=10)
    ax.set_ylim(n_out - 0.5 + 0.9, -0.5)
    fig.tight_layout()
    return fig, M
