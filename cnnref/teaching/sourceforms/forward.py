"""The sources' forward-pass equations, implemented exactly as printed (book: Part I).

Every function here follows its source's own symbols, index origin and
argument order, *including the source's mistakes*, so that the book can put
the printed form next to the correct one (``cnnref.correlate2d``,
``cnnref.convolve2d``, ``cnnref.conv2d_forward``, ``cnnref.output_size``, ...)
and show with a cell where they agree and where they do not. They are written
as plain loops over the printed sums: tiny inputs only.

Where a printed formula reads outside an array (which the source leaves
undefined), the function says in its docstring what it does: the convolution
and correlation definitions of sources 000/002 return NaN there ("undefined
pixel"); source 001's depth index ``k + c`` reads zero beyond the last channel.

Book labels: [eq-conv-def], [eq-corr-def], [eq-conv-undefined], [eq-conv-valid-shift]
(convolution.md); [eq-layer-forward], [eq-fwd-convolution-layer], [eq-fwd-3d-correlation],
[eq-fwd-listing], [eq-half-sse] (forward.md); [eq-outsize-003], [eq-output-size]
(output_size.md). Each function names the ledger entries (S000-E01, ...) it implements.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..._validate import as_int, as_real_array, check_shape
from ..._validate import check_image_kernel

__all__ = [
    "convolution_000",
    "correlation_000",
    "undefined_claim_002",
    "single_input_000",
    "complete_input_000",
    "error_000",
    "pattern_search_001",
    "listing_003",
    "output_size_003",
    "layer_forward_004",
]


def _image_kernel(image, kernel):
    image, kernel = check_image_kernel(image, kernel)
    if kernel.shape[0] > image.shape[0] or kernel.shape[1] > image.shape[1]:
        raise ValueError(f"kernel {kernel.shape} must be no larger than image {image.shape} in each axis")
    return image, kernel


def _window_sum(image, kernel, sign):
    """v(x, y) = Σ_{x_k, y_k} i(x + sign·x_k, y + sign·y_k) k(x_k, y_k) on the image grid; NaN if out of bounds."""
    (H, W), (Kh, Kw) = image.shape, kernel.shape
    out = np.full((H, W), np.nan)
    for x in range(H):
        for y in range(W):
            acc, defined = 0.0, True
            for xk in range(Kh):
                for yk in range(Kw):
                    p, q = x + sign * xk, y + sign * yk
                    if not (0 <= p < H and 0 <= q < W):
                        defined = False
                        break
                    acc += image[p, q] * kernel[xk, yk]
                if not defined:
                    break
            if defined:
                out[x, y] = acc
    return out


def convolution_000(image, kernel) -> np.ndarray:
    """Sources 000 and 002, "Convolution": ``v(x,y) = Σ_{x_k=0}^{N_k−1} Σ_{y_k=0}^{N_k−1} i(x−x_k, y−y_k) k(x_k, y_k)``.

    image: (H, W); kernel: (N_k, N_k) as in the sources (a rectangular (K_h, K_w) works the same way).
    Returns v: (H, W), evaluated at every pixel (x, y) of the image grid, 0-based as printed.
    Where ``x − x_k`` or ``y − y_k`` leaves the image for some kernel index the
    sum is undefined and the entry is NaN: these are the rows ``x < K_h − 1`` and
    columns ``y < K_w − 1`` (top and left). The defined block
    ``v[K_h−1:, K_w−1:]`` equals ``cnnref.convolve2d(image, kernel, "valid")``
    ([eq-conv-def]); storing it from index 0 is source 002's "implicit move" by ``N_k − 1``
    ([eq-conv-valid-shift]). Ledger: S000-E01, S002-E01, S002-E03.
    """
    image, kernel = _image_kernel(image, kernel)
    return _window_sum(image, kernel, -1)


def correlation_000(image, kernel) -> np.ndarray:
    """Sources 000 and 002, "(Cross-) Correlation": ``l(x,y) = Σ_{x_k, y_k} i(x+x_k, y+y_k) k(x_k, y_k)``.

    image: (H, W); kernel: (K_h, K_w). Returns l: (H, W) on the image grid, NaN where
    undefined (rows ``x > H − K_h`` and columns ``y > W − K_w``: bottom and right).
    The defined block ``l[:H−K_h+1, :W−K_w+1]`` equals
    ``cnnref.correlate2d(image, kernel, "valid")`` with no shift ([eq-corr-def]).
    Ledger: S000-E02, S002-E05, S002-E06.
    """
    image, kernel = _image_kernel(image, kernel)
    return _window_sum(image, kernel, +1)


def undefined_claim_002(shape, kernel_size) -> np.ndarray:
    """Source 002's stated set of undefined convolution pixels, as printed: ``(x, y) ∈ {(0,0) … (N_k−1, N_k−1)}``.

    Read literally, the pixels with ``0 <= x <= N_k − 1`` and ``0 <= y <= N_k − 1``.
    shape: (H, W) of the image; kernel_size: N_k. Returns a boolean (H, W) mask.
    Compare with ``np.isnan(convolution_000(...))``: the true undefined set is
    ``x < N_k − 1 or y < N_k − 1`` ([eq-conv-undefined]; book: convolution.md,
    err-undefined-pixels-002). Ledger: S002-E02.
    """
    if not (isinstance(shape, (tuple, list)) and len(shape) == 2):
        raise ValueError(f"shape must be a pair (H, W), got {shape!r}")
    H, W = as_int(shape[0], "shape[0]"), as_int(shape[1], "shape[1]")
    nk = as_int(kernel_size, "kernel_size")
    if min(H, W, nk) < 1:
        raise ValueError(f"shape and kernel_size must be positive, got shape {(H, W)} and kernel_size {nk}")
    mask = np.zeros((H, W), dtype=bool)
    mask[:nk, :nk] = True
    return mask


def single_input_000(o_prev, w) -> np.ndarray:
    """Sources 000/002, "Single Input": ``i_{n,m}(x,y) = Σ_{x',y'} o_n^{l−1}(x−x', y−y') · w_{n,m}(x', y')``.

    o_prev: (H, W), the map o_n^{l−1}; w: (K_h, K_w), the kernel w_{n,m}.
    Returns (H, W) with NaN where undefined, exactly :func:`convolution_000` (a true convolution),
    [eq-fwd-convolution-layer]. Ledger: S000-E03, S002-E08.
    """
    return convolution_000(o_prev, w)


def complete_input_000(o_prev, w, b) -> np.ndarray:
    """Sources 000/002, "Complete Input": ``c_m(x,y) = Σ_{n,x',y'} o_n^{l−1}(x−x', y−y') w_{n,m}(x', y') + b_m``.

    Source index order: the first kernel subscript is the *input* map n, the second the output map m.
    o_prev: (C_in, H, W); w: (C_in, C_out, K_h, K_w) with ``w[n, m]`` = w_{n,m};
    b: (C_out,). Returns c: (C_out, H, W) on the image grid, NaN where undefined
    (top K_h − 1 rows, left K_w − 1 columns). The defined block equals
    ``cnnref.conv2d_forward`` with the book's kernels ``w_book[m, n] = rot180(w[n, m])``
    ([eq-layer-forward], [eq-fwd-convolution-layer], book: forward.md).
    Ledger: S000-E04, S000-E05, S002-E09, S002-E10.
    """
    o_prev = as_real_array(o_prev, "o_prev", ndim=3)
    w = as_real_array(w, "w", ndim=4)
    b = as_real_array(b, "b", ndim=1)
    if w.shape[0] != o_prev.shape[0]:
        raise ValueError(
            f"w must have shape (C_in, C_out, K_h, K_w) with C_in = {o_prev.shape[0]} input maps "
            f"(source order w_{{n,m}}: input first), got w of shape {w.shape}"
        )
    check_shape(b, (w.shape[1],), "b", f"one bias per output map, C_out={w.shape[1]}")
    c_in, c_out = w.shape[:2]
    c = np.zeros((c_out,) + o_prev.shape[1:])
    for m in range(c_out):
        c[m] = b[m]
        for n in range(c_in):
            c[m] += single_input_000(o_prev[n], w[n, m])  # NaN stays NaN
    return c


def error_000(t, o) -> np.ndarray:
    """Sources 000/002, "Error": ``E = ½ (t − o^L)²`` as printed, i.e. element by element.

    t, o: arrays of the same shape. Returns ``0.5 * (t − o)**2`` with that shape: the
    printed formula is a scalar only for a single output unit; the loss of a whole
    output (and batch) is the sum of these entries, [eq-half-sse]
    (``cnnref.half_squared_error(o, t, reduction="sum")``). Source 002 calls it the
    *mean* squared error, but nothing is averaged. Ledger: S000-E07, S002-E12.
    """
    t = as_real_array(t, "t")
    o = as_real_array(o, "o")
    if t.shape != o.shape:
        raise ValueError(f"t and o must have the same shape, got t {t.shape} and o {o.shape}")
    return 0.5 * (t - o) ** 2


def pattern_search_001(X, w, b, *, as_printed: bool = True) -> np.ndarray:
    """Source 001, the 3-D pattern search: ``Z_kij = Σ_{c<D} Σ_{a<m} Σ_{b<n} X(k+c, i+a, j+b) w_k(c,a,b) + b_k``.

    X: (D, M, N) (depth, height, width); w: (K, D, m, n), the K depth-D kernels w_k;
    b: (K,). Output indices ``i = 0..M−m``, ``j = 0..N−n`` (source 001's ranges).
    Returns Z: (K, M−m+1, N−n+1).

    ``as_printed=True`` uses the printed depth index ``k + c``: for kernel k >= 1 it
    reads channels past the last one (``k + c >= D``), which the source leaves
    undefined; here they read as zero. ``as_printed=False`` uses ``X(c, i+a, j+b)``,
    the form source 001 itself uses in its back-propagation section, which equals
    ``cnnref.conv2d_forward`` ([eq-fwd-3d-correlation], [eq-layer-forward]).
    Ledger: S001-E02 (the typo), S001-E03.
    """
    X = as_real_array(X, "X", ndim=3)
    w = as_real_array(w, "w", ndim=4)
    b = as_real_array(b, "b", ndim=1)
    D, M, N = X.shape
    K, Dw, m, n = w.shape
    if Dw != D:
        raise ValueError(f"w must have shape (K, D, m, n) with depth D = {D} (the depth of X), got {w.shape}")
    if m > M or n > N:
        raise ValueError(f"kernel height/width ({m}, {n}) must not exceed the input's ({M}, {N})")
    check_shape(b, (K,), "b", f"one bias per kernel, K={K}")
    if not isinstance(as_printed, bool):
        raise TypeError(f"as_printed must be a bool, got {as_printed!r}")
    Z = np.zeros((K, M - m + 1, N - n + 1))
    for k in range(K):
        for i in range(M - m + 1):
            for j in range(N - n + 1):
                acc = b[k]
                for c in range(D):
                    depth = k + c if as_printed else c
                    if depth >= D:
                        continue  # outside X: read as zero
                    for a in range(m):
                        for bb in range(n):
                            acc += X[depth, i + a, j + bb] * w[k, c, a, bb]
                Z[k, i, j] = acc
    return Z


def listing_003(X, F) -> np.ndarray:
    """Source 003's element-by-element listing of a 2×2 filter F over a 3×3 input X, 1-based as printed.

    ``O_11 = X_11 F_11 + X_12 F_12 + X_21 F_21 + X_22 F_22`` and likewise for
    O_12, O_21, O_22. X: (3, 3); F: (2, 2) (numpy arrays, so ``X_rs`` is
    ``X[r−1, s−1]``). Returns O: (2, 2) with ``O[i−1, j−1] = O_ij``. The source
    calls this a convolution; it is the valid cross-correlation
    ``cnnref.correlate2d(X, F)`` ([eq-fwd-listing], [eq-corr-def]). Ledger: S003-E03, S003-E09.
    """
    X = as_real_array(X, "X", ndim=2)
    F = as_real_array(F, "F", ndim=2)
    check_shape(X, (3, 3), "X", "the 3×3 input of source 003's listing")
    check_shape(F, (2, 2), "F", "the 2×2 filter of source 003's listing")

    def x(r, s):  # 1-based subscripts, as printed
        return X[r - 1, s - 1]

    def f(r, s):
        return F[r - 1, s - 1]

    O11 = x(1, 1) * f(1, 1) + x(1, 2) * f(1, 2) + x(2, 1) * f(2, 1) + x(2, 2) * f(2, 2)
    O12 = x(1, 2) * f(1, 1) + x(1, 3) * f(1, 2) + x(2, 2) * f(2, 1) + x(2, 3) * f(2, 2)
    O21 = x(2, 1) * f(1, 1) + x(2, 2) * f(1, 2) + x(3, 1) * f(2, 1) + x(3, 2) * f(2, 2)
    O22 = x(2, 2) * f(1, 1) + x(2, 3) * f(1, 2) + x(3, 2) * f(2, 1) + x(3, 3) * f(2, 2)
    return np.array([[O11, O12], [O21, O22]])


def output_size_003(N, F, S=1, P=0) -> Fraction:
    """Source 003's output size ``O = 1 + (N − F + 2P) / S`` as printed, with exact division.

    N: input size; F: filter size; S: stride (>= 1); P: zero padding (>= 0), which the
    ``2P`` makes *per side*. Returns a ``fractions.Fraction``: an integer only when S
    divides ``N − F + 2P``. Frameworks take the floor of the division
    ([eq-output-size], ``cnnref.output_size``). With ``P = 0`` this is also the
    source's first formula ``O = 1 + (N − F) / S``. [eq-outsize-003]; ledger: S003-E04, S003-E05, S003-E06.
    """
    N, F, S, P = as_int(N, "N"), as_int(F, "F"), as_int(S, "S"), as_int(P, "P")
    for name, value, minimum in (("N", N, 1), ("F", F, 1), ("S", S, 1), ("P", P, 0)):
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if F > N + 2 * P:
        raise ValueError(f"the filter (F={F}) must fit in the padded input (N + 2P = {N + 2 * P})")
    return 1 + Fraction(N - F + 2 * P, S)


def layer_forward_004(x_prev, a, b, f, connections=None, *, printed_k=None) -> np.ndarray:
    """Source 004's convolutional layer: ``x_j^{l+1} = f(Σ_{i ∈ M_j} x_k^l ∗ a_ij^{l+1} + b_j^{l+1})``, 'valid'.

    x_prev: (C_in, H, W), the maps x_i^l; a: (C_in, C_out, K_h, K_w) with ``a[i, j]``
    the kernel from input map i to output map j (source order); b: (C_out,); f: an
    element-wise function; connections: for each output j the list M_j of input
    maps it sums over (default: all). ``∗`` is a true 2-D convolution with
    MATLAB's 'valid' boundary (``conv2(x, a, 'valid')``). Returns (C_out, H−K_h+1, W−K_w+1).

    As printed the summand is ``x_k`` while the sum runs over ``i``: ``k`` is bound
    nowhere. ``printed_k=None`` (default) uses ``x_i``, the evident intent;
    ``printed_k=k`` evaluates the printed summand literally, with the same map
    ``x_k`` in every term of the sum. The correct form equals ``cnnref.conv2d_forward``
    with ``w_book[j, i] = rot180(a[i, j])`` ([eq-layer-forward]). Ledger: S004-E02 (whose
    chapter is Part III's; the concordance in notation.md uses this function).
    """
    x_prev = as_real_array(x_prev, "x_prev", ndim=3)
    a = as_real_array(a, "a", ndim=4)
    b = as_real_array(b, "b", ndim=1)
    if a.shape[0] != x_prev.shape[0]:
        raise ValueError(f"a must have shape (C_in, C_out, K_h, K_w) with C_in = {x_prev.shape[0]}, got {a.shape}")
    c_in, c_out, kh, kw = a.shape
    check_shape(b, (c_out,), "b", f"one bias per output map, C_out={c_out}")
    if not callable(f):
        raise TypeError(f"f must be a callable activation, got {type(f).__name__}")
    if printed_k is not None:
        printed_k = as_int(printed_k, "printed_k", "None or an int")
        if not 0 <= printed_k < c_in:
            raise ValueError(f"printed_k must be an input map index 0..{c_in - 1}, got {printed_k}")
    if connections is None:
        connections = [list(range(c_in)) for _ in range(c_out)]
    if len(connections) != c_out:
        raise ValueError(f"connections must list one M_j per output map ({c_out}), got {len(connections)}")
    H, W = x_prev.shape[1:]
    if kh > H or kw > W:
        raise ValueError(f"kernel ({kh}, {kw}) must not exceed the maps ({H}, {W}) for 'valid'")
    out = np.zeros((c_out, H - kh + 1, W - kw + 1))
    for j in range(c_out):
        acc = np.full(out.shape[1:], b[j], dtype=np.float64)
        for i in connections[j]:
            i = as_int(i, "connections entry")
            if not 0 <= i < c_in:
                raise ValueError(f"connections[{j}] holds input map {i}, expected 0..{c_in - 1}")
            src = x_prev[i] if printed_k is None else x_prev[printed_k]
            for p in range(out.shape[1]):
                for q in range(out.shape[2]):
                    # valid convolution: output (p, q) is the full-convolution index (p + K_h − 1, q + K_w − 1)
                    for u in range(kh):
                        for v in range(kw):
                            acc[p, q] += src[p + kh - 1 - u, q + kw - 1 - v] * a[i, j, u, v]
        out[j] = f(acc)
    return out
