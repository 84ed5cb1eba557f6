"""Figures for the chapter on deltas (book: deltas.md), drawn from ``cnnref`` results.

The input gradient of a stride-1 layer without padding is the full convolution of the
deltas with the kernel, i.e. the deltas padded with K−1 zeros on every side and
cross-correlated with the kernel rotated by 180° ([eq-dx-full]). Every number shown is
computed by ``cnnref`` (``conv2d_backward``, ``rot180``); nothing is typed in by hand.
Each function returns the matplotlib ``Figure`` together with the arrays it drew.

matplotlib is imported inside the functions only: importing ``cnnref`` never needs it.
"""

from __future__ import annotations

import numpy as np

from .._validate import as_int, as_real_array
from ..conv import conv2d_backward
from ..correlation import rot180
from .figures import annotated_grid

__all__ = ["full_convolution_figure"]


def _plt():
    import matplotlib.pyplot as plt  # lazy: only the book's figure cells need matplotlib

    return plt


def full_convolution_figure(delta, kernel, position, *, fmt="{:g}"):
    """Three panels: the padded deltas, the rotated kernel, the input gradient.

    delta: (H', W') deltas of one output map; kernel: (K_h, K_w) kernel of the layer
    (one input map, one output map, stride 1, no padding, so the input is
    H × W = (H' + K_h − 1) × (W' + K_w − 1)); position: (p, q), an input position.

    Left: delta padded with K_h − 1 rows and K_w − 1 columns of zeros on every side,
    the zeros drawn grey, with the K_h × K_w window that starts at (p, q) outlined.
    Middle: ``cnnref.rot180(kernel)``. Right: the input gradient ``dx`` computed by
    ``cnnref.conv2d_backward``, entry (p, q) outlined; it is the sum of the window
    times the rotated kernel ([eq-dx-full], the stride-1 case of [eq-input-grad]).

    Returns ``(fig, padded, rotated, dx)``: the padded deltas (H + K_h − 1, W + K_w − 1),
    the rotated kernel (K_h, K_w) and the input gradient (H, W).
    """
    delta = as_real_array(delta, "delta", ndim=2)
    kernel = as_real_array(kernel, "kernel", ndim=2)
    if 0 in delta.shape or 0 in kernel.shape:
        raise ValueError(
            f"delta and kernel must be non-empty, got shapes {delta.shape} and {kernel.shape}"
        )
    if not (isinstance(position, (tuple, list)) and len(position) == 2):
        raise ValueError(f"position must be a pair (p, q), got {position!r}")
    p, q = as_int(position[0], "position[0]"), as_int(position[1], "position[1]")
    kh, kw = kernel.shape
    H, W = delta.shape[0] + kh - 1, delta.shape[1] + kw - 1
    if not (0 <= p < H and 0 <= q < W):
        raise ValueError(f"position must lie in the input of shape {(H, W)}, got {(p, q)}")

    dx = conv2d_backward(delta[None, None], np.zeros((1, 1, H, W)), kernel[None, None])[0][0, 0]
    rotated = np.array(rot180(kernel))
    padded = np.pad(delta, ((kh - 1, kh - 1), (kw - 1, kw - 1)))
    shown = np.full(padded.shape, np.nan)  # the border of zeros drawn grey
    shown[kh - 1 : kh - 1 + delta.shape[0], kw - 1 : kw - 1 + delta.shape[1]] = delta

    plt = _plt()
    fig, axes = plt.subplots(
        1, 3, figsize=(8, 3.4), gridspec_kw={"width_ratios": [padded.shape[1], kw + 1, W]}
    )
    annotated_grid(axes[0], shown, fmt=fmt, title="δ padded with zeros", highlight=(p, q, kh, kw),
                   undefined_label="0")
    annotated_grid(axes[1], rotated, fmt=fmt, cmap="Oranges", title="rot180(w)")
    annotated_grid(axes[2], dx, fmt=fmt, cmap="Greens", title="∂E/∂a = δ ∗ w (full)",
                   highlight=(p, q, 1, 1))
    value = float(np.sum(padded[p : p + kh, q : q + kw] * rotated))
    fig.suptitle(f"∂E/∂a[{p}, {q}] = Σ window · rot180(w) = {fmt.format(value)}", fontsize=10)
    fig.tight_layout()
    return fig, padded, rotated, dx
