"""Figures for the weight gradient, drawn from ``cnnref`` results (book: weight_gradient.md).

The kernel gradient shown is ``cnnref.conv2d_backward``'s ``dw``; the windows and the
products are read from the arrays the function is given, so a test (or a notebook cell)
can assert that every product panel adds up to the entry of ``dw`` it stands for.
Each function returns the matplotlib ``Figure`` together with the arrays it drew.

matplotlib is imported inside the functions only: importing ``cnnref`` never needs it.
"""

from __future__ import annotations

import numpy as np

from .._validate import as_int, as_real_array
from ..conv import conv2d_backward
from .figures import annotated_grid

__all__ = ["weight_gradient_reads", "weight_gradient_reads_figure"]

MAX_ENTRIES = 4  # rows of panels; more would not stay legible at phone width


def _entries(entries, kh, kw):
    """The kernel positions ``entries`` as a list of ``(u, v)`` int pairs inside K_h × K_w."""
    if not isinstance(entries, (tuple, list)) or not entries:
        raise ValueError(f"entries must be a non-empty sequence of pairs (u, v), got {entries!r}")
    if len(entries) > MAX_ENTRIES:
        raise ValueError(f"entries can hold at most {MAX_ENTRIES} pairs (u, v), got {len(entries)}")
    out = []
    for k, e in enumerate(entries):
        if not (isinstance(e, (tuple, list)) and len(e) == 2):
            raise ValueError(f"entries[{k}] must be a pair (u, v), got {e!r}")
        u, v = as_int(e[0], f"entries[{k}][0]"), as_int(e[1], f"entries[{k}][1]")
        if not (0 <= u < kh and 0 <= v < kw):
            raise ValueError(f"entries[{k}] must lie in the kernel of shape {(kh, kw)}, got {(u, v)}")
        out.append((u, v))
    return out


def weight_gradient_reads(a, delta, entries):
    """The arrays behind :func:`weight_gradient_reads_figure`, without drawing.

    a: (H, W) input map a_c of one example; delta: (H', W') delta map δ_o of that example,
    with H' ≤ H and W' ≤ W. The layer has stride 1, no padding and no dilation, so its kernel
    is K_h × K_w = (H − H' + 1) × (W − W' + 1). entries: 1 to 4 kernel positions (u, v).

    Returns a dict: ``"dw"`` (K_h, K_w), the kernel gradient of the layer with one input and
    one output map from ``cnnref.conv2d_backward`` ([eq-weight-grad]); ``"entries"``, the
    (u, v) pairs; ``"windows"`` (n, H', W'), the inputs a_c[u + i, v + j] that entry (u, v)
    multiplied in the forward pass ([eq-wg-local]); ``"products"`` (n, H', W'),
    δ_o[i, j] · a_c[u + i, v + j]; ``"sums"`` (n,), their sums, which [eq-wg-s1] says are
    dw[u, v].
    """
    a = as_real_array(a, "a", ndim=2)
    delta = as_real_array(delta, "delta", ndim=2)
    (H, W), (Ho, Wo) = a.shape, delta.shape
    if min(Ho, Wo) < 1 or Ho > H or Wo > W:
        raise ValueError(
            f"delta must be a non-empty map no larger than a (stride 1, no padding): "
            f"a has shape {a.shape}, delta has shape {delta.shape}"
        )
    kh, kw = H - Ho + 1, W - Wo + 1
    pairs = _entries(entries, kh, kw)
    _, dw, _ = conv2d_backward(delta[None, None], a[None, None], np.zeros((1, 1, kh, kw), a.dtype))
    windows = np.array([a[u : u + Ho, v : v + Wo] for u, v in pairs])
    products = windows * delta + 0.0  # + 0.0 turns a product -0.0 into 0.0
    return {
        "dw": dw[0, 0],
        "entries": pairs,
        "windows": windows,
        "products": products,
        "sums": products.sum(axis=(1, 2)),
    }


def weight_gradient_reads_figure(a, delta, entries=((0, 0), (1, 1)), *, fmt="{:g}"):
    """One row of four panels per kernel entry (u, v): what ∂E/∂w_{o,c}[u, v] is made of.

    a: (H, W) input map a_c; delta: (H', W') delta map δ_o (one example, stride 1, no padding,
    no dilation, so K_h = H − H' + 1 and K_w = W − W' + 1); entries: 1 to 4 pairs (u, v).
    Panels of a row: a_c with the H' × W' block that starts at (u, v) outlined, the inputs this
    kernel entry multiplied ([eq-wg-local]); the deltas δ_o; their elementwise products; and
    the kernel gradient dw from ``cnnref.conv2d_backward`` with entry (u, v) outlined, the sum
    of the products ([eq-wg-s1], the stride-1 case of [eq-weight-grad]).
    Returns ``(fig, drawn)`` with ``drawn`` from :func:`weight_gradient_reads`.
    """
    import matplotlib.pyplot as plt  # lazy: only the book's figure cells need matplotlib
    from matplotlib.colors import LinearSegmentedColormap

    # signed values: light orange below zero, white at zero, light purple above; the
    # colours stay light, so every number is written in black
    signed = LinearSegmentedColormap.from_list("signed", ["#f6b26b", "#ffffff", "#b4a7d6"])
    drawn = weight_gradient_reads(a, delta, entries)
    a = as_real_array(a, "a", ndim=2)
    delta = as_real_array(delta, "delta", ndim=2)
    (H, W), (Ho, Wo), (kh, kw) = a.shape, delta.shape, drawn["dw"].shape
    rows = len(drawn["entries"])
    fig, axes = plt.subplots(
        rows,
        4,
        figsize=(8, 2.35 * rows + 0.2),
        gridspec_kw={"width_ratios": [W, Wo, Wo, kw]},
        squeeze=False,
    )
    for r, (u, v) in enumerate(drawn["entries"]):
        ax_a, ax_d, ax_p, ax_w = axes[r]
        annotated_grid(ax_a, a, fmt=fmt, title=f"$a_c$, block at $(u,v)=({u},{v})$",
                       highlight=(u, v, Ho, Wo))
        annotated_grid(ax_d, delta, fmt=fmt, cmap=signed, title=r"$\delta_o$")
        total = fmt.format(float(drawn["sums"][r]))
        annotated_grid(ax_p, drawn["products"][r], fmt=fmt, cmap=signed,
                       title=f"block · $\\delta_o$, sum ${total}$")
        annotated_grid(ax_w, drawn["dw"], fmt=fmt, cmap=signed,
                       title=r"$\partial E/\partial w_{o,c}$", highlight=(u, v, 1, 1))
        for ax in (ax_d, ax_p, ax_w):
            for text in ax.texts:
                text.set_color("black")
        for ax in (ax_a, ax_d, ax_p, ax_w):
            ax.tick_params(labelsize=8)
    fig.tight_layout()
    return fig, drawn
