"""Figures of locality, weight sharing and receptive fields (book: why_convolution.md).

Every number drawn is computed by ``cnnref``: the matrix of a cross-correlation is
built column by column from ``cnnref.correlate2d`` applied to unit inputs, and a
receptive field is the support of the input gradient of one output unit, obtained by
backpropagating a one-hot delta with ``cnnref.conv2d_backward`` (and
``cnnref.avgpool2d_backward`` for a pooling layer). Each figure function returns the
matplotlib ``Figure`` together with the arrays it drew.

matplotlib is imported inside the functions only: importing ``cnnref`` never needs it.
"""

from __future__ import annotations

import numpy as np

from .._validate import as_int, as_pair, as_real_array, check_mode
from ..conv import conv2d_backward
from ..correlation import correlate2d
from ..pooling import avgpool2d_backward
from ..sizes import output_size
from .figures_matrix import operator_matrix

__all__ = [
    "correlation_matrix",
    "receptive_field_figure",
    "receptive_field_formula",
    "receptive_field_supports",
    "shared_matrix_figure",
    "tap_matrix",
]

# One colour per kernel tap (u, v), in row-major order; 12 are enough for kernels up to 3×4.
_TAP_COLOURS = ["#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a6761d",
                "#f781bf", "#17becf", "#999999", "#bcbd22", "#1b9e77", "#7570b3"]


def _plt():
    import matplotlib.pyplot as plt  # lazy: only the book's figure cells need matplotlib

    return plt


def _map_shape(shape) -> tuple[int, int]:
    """An int n (an n×n map) or a pair (H, W), each >= 1."""
    return as_pair(shape, "shape", 1)


def correlation_matrix(shape, kernel) -> np.ndarray:
    """The matrix M of the valid cross-correlation [eq-corr-def] on an H×W map: M @ vec(a) = vec(a ⋆ k).

    shape: n or (H, W); kernel: (K_h, K_w) with K_h <= H, K_w <= W. Returns M of shape
    (H'·W', H·W), H' = H − K_h + 1, W' = W − K_w + 1, rows and columns in row-major
    order of (i, j) and (p, q). Column p·W + q is ``cnnref.correlate2d`` of the unit
    map with a 1 at [p, q], flattened ([eq-why-banded-matrix]).
    """
    H, W = _map_shape(shape)
    kernel = as_real_array(kernel, "kernel", ndim=2)
    Kh, Kw = kernel.shape
    if Kh > H or Kw > W or kernel.size == 0:
        raise ValueError(f"kernel must be non-empty and fit in the {H}×{W} map, got shape {kernel.shape}")
    return operator_matrix(lambda unit: correlate2d(unit.reshape(H, W), kernel), H * W)


def tap_matrix(shape, kernel_shape) -> np.ndarray:
    """Which kernel tap fills each entry of :func:`correlation_matrix`: u·K_w + v, or −1 for a zero.

    shape: n or (H, W); kernel_shape: (K_h, K_w). Returns an int array (H'·W', H·W),
    computed from the matrices of the one-hot kernels, whose supports are disjoint.
    """
    Kh, Kw = as_pair(kernel_shape, "kernel_shape", 1)
    taps = None
    for t in range(Kh * Kw):
        one_hot = np.zeros((Kh, Kw))
        one_hot[divmod(t, Kw)] = 1.0
        M_t = correlation_matrix(shape, one_hot)
        taps = np.full(M_t.shape, -1) if taps is None else taps
        taps[M_t == 1.0] = t  # the supports of the one-hot matrices are disjoint
    return taps


def shared_matrix_figure(shape, kernel, *, fmt="{:g}"):
    """The kernel (left) and the banded matrix of its valid correlation (right), one colour per tap.

    shape: n or (H, W) of the input map; kernel: (K_h, K_w), at most 12 entries (one colour
    each). Every nonzero of the (H'·W', H·W) matrix is written in its cell, in the colour
    of the kernel entry it repeats: each row holds the same K_h·K_w numbers (sharing), in a
    band of columns (locality) [eq-why-banded-matrix]. Returns ``(fig, M, taps)`` with M
    from :func:`correlation_matrix` and taps from :func:`tap_matrix`.
    """
    from matplotlib.colors import ListedColormap

    H, W = _map_shape(shape)
    kernel = as_real_array(kernel, "kernel", ndim=2)
    if kernel.size > len(_TAP_COLOURS):
        raise ValueError(f"kernel must have at most {len(_TAP_COLOURS)} entries (one colour each), "
                         f"got shape {kernel.shape}")
    M = correlation_matrix((H, W), kernel)
    taps = tap_matrix((H, W), kernel.shape)
    Kh, Kw = kernel.shape
    n_taps = Kh * Kw
    cmap = ListedColormap(["white"] + _TAP_COLOURS[:n_taps])
    plt = _plt()
    rows, cols = M.shape
    fig, axes = plt.subplots(1, 2, figsize=(8, 0.25 * rows + 1.2),
                             gridspec_kw={"width_ratios": [Kw + 0.6, cols]})
    ax_k, ax_m = axes
    kernel_taps = np.arange(n_taps).reshape(Kh, Kw)
    ax_k.imshow(kernel_taps + 1, cmap=cmap, vmin=0, vmax=n_taps, alpha=0.55)
    for u in range(Kh):
        for v in range(Kw):
            ax_k.text(v, u, fmt.format(kernel[u, v]), ha="center", va="center", fontsize=9)
    ax_k.set_xticks(range(Kw))
    ax_k.set_yticks(range(Kh))
    ax_k.tick_params(labelsize=8)
    ax_k.set_title("kernel k", fontsize=9)
    ax_m.imshow(taps + 1, cmap=cmap, vmin=0, vmax=n_taps, alpha=0.55, aspect="equal")
    for r in range(rows):
        for c in range(cols):
            if taps[r, c] >= 0:
                ax_m.text(c, r, fmt.format(M[r, c]), ha="center", va="center", fontsize=8)
    ax_m.set_xticks(range(cols))
    ax_m.set_xticklabels([f"{p},{q}" for p in range(H) for q in range(W)], rotation=90, fontsize=8)
    ax_m.set_yticks(range(rows))
    Ho, Wo = H - Kh + 1, W - Kw + 1
    ax_m.set_yticklabels([f"{i},{j}" for i in range(Ho) for j in range(Wo)], fontsize=8)
    ax_m.set_xticks(np.arange(-0.5, cols, 1), minor=True)
    ax_m.set_yticks(np.arange(-0.5, rows, 1), minor=True)
    ax_m.grid(which="minor", color="#dddddd", linewidth=0.6)
    ax_m.tick_params(which="minor", length=0)
    ax_m.set_xlabel("input pixel p,q (column p·W + q)", fontsize=9)
    ax_m.set_ylabel("output i,j", fontsize=9)
    ax_m.set_title(f"matrix of a ⋆ k: {rows}×{cols}, {int((taps >= 0).sum())} nonzeros, "
                   f"{n_taps} distinct numbers", fontsize=9)
    fig.tight_layout()
    return fig, M, taps


def _layers(layers) -> list[tuple[str, int, int]]:
    """Validate a stack: a non-empty list of ("conv" | "pool", K, s) with K, s >= 1."""
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ValueError(f"layers must be a non-empty list of (kind, K, s) tuples, got {layers!r}")
    out = []
    for n, layer in enumerate(layers):
        if not (isinstance(layer, (list, tuple)) and len(layer) == 3):
            raise ValueError(f"layers[{n}] must be a tuple (kind, K, s), got {layer!r}")
        kind = check_mode(layer[0], ("conv", "pool"), f"layers[{n}][0]")
        K = as_int(layer[1], f"layers[{n}][1] (K)", "a positive int", minimum=1)
        s = as_int(layer[2], f"layers[{n}][2] (s)", "a positive int", minimum=1)
        out.append((kind, K, s))
    return out


def receptive_field_formula(layers) -> tuple[list[int], list[int]]:
    """Receptive field sizes r_ℓ and jumps J_ℓ = Π_{m≤ℓ} s_m of a stack [eq-why-receptive-field].

    layers: list of (kind, K, s), kind "conv" or "pool" (a K×K window with stride s either
    way). r_0 = 1, r_ℓ = r_{ℓ−1} + (K_ℓ − 1)·J_{ℓ−1}, J_0 = 1. Returns ``([r_1..r_L], [J_1..J_L])``.
    """
    r, J, rs, Js = 1, 1, [], []
    for _, K, s in _layers(layers):
        r, J = r + (K - 1) * J, J * s
        rs.append(r)
        Js.append(J)
    return rs, Js


def receptive_field_supports(layers, size) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Input gradient of one output unit of each layer of a stack: its support is the receptive field.

    layers: list of (kind, K, s) without padding; size: side n of the square n×n input.
    For depth ℓ = 1..L, the unit is the centre [c, c], c = (n_ℓ − 1) // 2, of layer ℓ's
    map; a one-hot delta there is backpropagated to the input with ``cnnref.conv2d_backward``
    (all-ones kernels: no cancellation) and ``cnnref.avgpool2d_backward`` (a max-pool reads
    the same window; its gradient would mark only the winner). Returns ``(grads, units)``:
    grads (L, n, n), positive exactly on the receptive field, and the unit [c, c] of each depth.
    """
    layers = _layers(layers)
    n = as_int(size, "size", "a positive int", minimum=1)
    sides = [n]
    for n_layer, (_, K, s) in enumerate(layers):
        if K > sides[-1]:
            raise ValueError(f"size {n} is too small: layer {n_layer} has a {K}×{K} window "
                             f"but a {sides[-1]}×{sides[-1]} input")
        sides.append(output_size(sides[-1], K, s))
    grads, units = [], []
    ones = {K: np.ones((1, 1, K, K)) for _, K, _ in layers}
    for depth in range(1, len(layers) + 1):
        c = (sides[depth] - 1) // 2
        delta = np.zeros((1, 1, sides[depth], sides[depth]))
        delta[0, 0, c, c] = 1.0
        for m in range(depth - 1, -1, -1):
            kind, K, s = layers[m]
            x_shape = np.zeros((1, 1, sides[m], sides[m]))  # only its shape is used
            if kind == "conv":
                delta, _, _ = conv2d_backward(delta, x_shape, ones[K], stride=s)
            else:
                delta = avgpool2d_backward(delta, x_shape, K, s)
        grads.append(delta[0, 0])
        units.append((c, c))
    return np.array(grads), units


def receptive_field_figure(layers, size):
    """One panel per depth: the n×n input with the receptive field of one unit of that layer shaded.

    layers, size as in :func:`receptive_field_supports`; the shade is the input gradient
    of the unit (with all-ones kernels, the number of paths from each input pixel to it),
    the red square the extent r_ℓ × r_ℓ of [eq-why-receptive-field]. Returns
    ``(fig, grads, sides)`` with grads (L, n, n) and sides the list of r_ℓ measured as
    the side of the support's bounding box.
    """
    from matplotlib.patches import Rectangle

    layers = _layers(layers)
    grads, _ = receptive_field_supports(layers, size)
    L = len(layers)
    plt = _plt()
    fig, axes = plt.subplots(1, L, figsize=(min(8.0, 2.0 * L), 2.5), squeeze=False)
    sides = []
    for depth, ax in enumerate(axes[0], start=1):
        g = grads[depth - 1]
        rows, cols = np.nonzero(g > 0)
        r0, r1, c0, c1 = rows.min(), rows.max(), cols.min(), cols.max()
        sides.append(int(r1 - r0 + 1))
        top = float(g.max())
        ax.imshow(np.where(g > 0, g, np.nan), cmap="Blues", vmin=-0.4 * top, vmax=1.1 * top)
        ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1,
                               fill=False, edgecolor="red", linewidth=1.8, zorder=5))
        n = g.shape[0]
        ax.set_xticks(np.arange(-0.5, n, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, n, 1), minor=True)
        ax.grid(which="minor", color="#dddddd", linewidth=0.5)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        ax.set_xlim(-0.5, n - 0.5)
        ax.set_ylim(n - 0.5, -0.5)
        kind, K, s = layers[depth - 1]
        ax.set_title(f"layer {depth}: {kind} {K}×{K}, s={s}\nr = {sides[-1]}", fontsize=9)
    fig.tight_layout()
    return fig, grads, sides
