"""Figures of the convolution as a matrix product (book: matrix_view.md, "The matrix view").

Every number drawn is computed by ``cnnref``: the matrices column by column from
``correlate2d`` and ``convolve2d`` applied to unit vectors, the column matrix by
:func:`cnnref.im2col`, the overlap counts by :func:`cnnref.col2im`. Each function
returns the matplotlib ``Figure`` together with the arrays it drew, so that a test
(or a notebook cell) can assert what the picture shows. matplotlib is imported
inside the functions only.
"""

from __future__ import annotations

import numpy as np

from .._validate import as_int, as_pair, as_real_array
from ..conv import col2im, im2col
from ..correlation import convolve2d, correlate2d
from ..sizes import output_size
from .figures import annotated_grid

__all__ = ["operator_matrix", "matrix_1d_figure", "im2col_figure"]


def _plt():
    import matplotlib.pyplot as plt  # lazy: only the book's figure cells need matplotlib

    return plt


def operator_matrix(f, n_in: int) -> np.ndarray:
    """The matrix of a linear map ``f`` of 1-D arrays of length ``n_in``, column by column.

    Column p is ``f(e_p)`` for the unit vector e_p, so that ``M @ v == f(v)``
    ([eq-mv-1d-matrix]). Returns M: (len(f(e_0)), n_in).
    """
    n_in = as_int(n_in, "n_in", minimum=1)
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    return np.column_stack([np.asarray(f(e), dtype=float).ravel() for e in np.eye(n_in)])


def _matrix_panel(ax, M, title, xlabel, ylabel):
    """M as a grid of cells, the non-zero entries written in them (zeros left blank)."""
    vmax = float(np.max(np.abs(M))) or 1.0
    ax.imshow(np.abs(M), cmap="Blues", vmin=0, vmax=1.6 * vmax)
    written = []
    for (r, c), v in np.ndenumerate(M):
        if v:
            ax.text(c, r, f"{v:g}", ha="center", va="center", fontsize=10)
            written.append(((r, c), float(v)))
    rows, cols = M.shape
    ax.set_xticks(range(cols))
    ax.set_yticks(range(rows))
    ax.set_xticks(np.arange(-0.5, cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, rows, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    ax.tick_params(labelsize=9)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    return written


def matrix_1d_figure(m=6, kernel=(1.0, 2.0, 3.0)):
    """The valid cross-correlation as an m'×m matrix T, and the full convolution as Tᵀ.

    m: signal length (>= K); kernel: (K,) real. Left panel: T ([eq-mv-1d-matrix]),
    T[i, p] = w[p − i], built from ``cnnref.correlate2d(e_p, w, "valid")`` on the
    unit vectors. Right panel: the m×m' matrix of δ ↦ δ ∗ w ('full', ``cnnref.
    convolve2d``), built the same way from unit deltas; it equals Tᵀ
    ([eq-mv-1d-transpose]). Returns ``(fig, T, F)`` with T: (m', m), F: (m, m'),
    m' = m − K + 1.
    """
    w = as_real_array(kernel, "kernel", ndim=1)
    m = as_int(m, "m", minimum=1)
    if w.size == 0 or w.size > m:
        raise ValueError(f"kernel must have between 1 and m={m} entries, got {w.size}")
    m_out = m - w.size + 1

    def valid(v):
        return correlate2d(v[None, :], w[None, :], "valid")[0]

    def full(d):
        return convolve2d(d[None, :], w[None, :], "full")[0]

    T, F = operator_matrix(valid, m), operator_matrix(full, m_out)
    plt = _plt()
    fig, axes = plt.subplots(
        1, 2, figsize=(7.5, 3.4), gridspec_kw={"width_ratios": [m, m_out]}
    )
    _matrix_panel(axes[0], T, f"T: valid correlation with w, {m_out}×{m}",
                  "input index p", "output index i")
    title = rf"full convolution $\delta \ast w = T^{{\mathsf{{T}}}}$, {m}×{m_out}"
    _matrix_panel(axes[1], F, title, "delta index i", "input index p")
    fig.tight_layout()
    return fig, T, F


def im2col_figure(x, kernel_size, *, stride=1, padding=0, dilation=1, window=(0, 0)):
    """im2col and col2im on one small map: the input, its column matrix, the overlap counts.

    x: (H, W) real, one example and one channel; kernel_size, stride, padding,
    dilation as for :func:`cnnref.im2col`; window: the output position (i, j) whose
    receptive field is outlined on the input and whose column is outlined in the
    column matrix. Panels: x; ``cols = im2col(x)`` (K_h·K_w × H'·W', [eq-mv-im2col]),
    row (u, v), column (i, j); ``col2im`` of a matrix of ones (H × W,
    [eq-mv-col2im]): how many (window, kernel entry) pairs read each input value.
    Returns ``(fig, cols, counts)`` with cols: (K_h·K_w, H'·W'), counts: (H, W).
    """
    from matplotlib.patches import Rectangle

    x = as_real_array(x, "x", ndim=2)
    kh, kw = as_pair(kernel_size, "kernel_size", 1)
    settings = dict(stride=stride, padding=padding, dilation=dilation)
    cols = im2col(x[None, None], (kh, kw), **settings)[0]
    counts = col2im(np.ones((1,) + cols.shape), (1, 1) + x.shape, (kh, kw), **settings)[0, 0]
    (sh, sw), (ph, pw), (dh, dw) = (as_pair(stride, "stride", 1),
                                    as_pair(padding, "padding", 0),
                                    as_pair(dilation, "dilation", 1))
    ho, wo = output_size(x.shape[0], kh, sh, ph, dh), output_size(x.shape[1], kw, sw, pw, dw)
    if not (isinstance(window, (tuple, list)) and len(window) == 2):
        raise ValueError(f"window must be a pair (i, j), got {window!r}")
    i, j = as_int(window[0], "window[0]"), as_int(window[1], "window[1]")
    if not (0 <= i < ho and 0 <= j < wo):
        raise ValueError(f"window must lie in the output grid of shape {(ho, wo)}, got {(i, j)}")
    plt = _plt()
    h, w = x.shape
    fig, axes = plt.subplots(
        1, 3, figsize=(8, 2.9), gridspec_kw={"width_ratios": [w, cols.shape[1], w]}
    )
    annotated_grid(axes[0], x, title="input x")
    for u in range(kh):
        for v in range(kw):
            p, q = sh * i + dh * u - ph, sw * j + dw * v - pw
            if 0 <= p < h and 0 <= q < w:
                axes[0].add_patch(Rectangle((q - 0.5, p - 0.5), 1, 1, fill=False,
                                            edgecolor="red", linewidth=2.5, zorder=5))
    annotated_grid(axes[1], cols, cmap="Oranges", title="cols = im2col(x)",
                   highlight=(0, i * wo + j, kh * kw, 1))
    axes[1].set_yticks(range(kh * kw))
    axes[1].set_yticklabels([f"{u},{v}" for u in range(kh) for v in range(kw)], fontsize=8)
    axes[1].set_xticks(range(ho * wo))
    axes[1].set_xticklabels([f"{a},{b}" for a in range(ho) for b in range(wo)],
                            fontsize=8, rotation=90)
    axes[1].set_ylabel("row (u, v)", fontsize=9)
    axes[1].set_xlabel("column (i, j)", fontsize=9)
    annotated_grid(axes[2], counts, cmap="Greens", title="col2im(ones)")
    for ax in (axes[0], axes[2]):
        ax.set_xlabel("q", fontsize=9)
        ax.set_ylabel("p", fontsize=9)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return fig, cols, counts
