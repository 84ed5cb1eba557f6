"""The sources' weight-gradient equations, implemented as printed (book: "The weight gradient").

Each function follows its source's own symbols, index origin, kernel layout and
argument order, so that the book can compute the printed form next to the
correct one (``cnnref.conv2d_backward``, [eq-weight-grad]) and show where they
agree and where they do not. Loops over the printed sums: tiny inputs only.

Conventions of the sources, in the book's terms:

* Sources 000 and 002 write the forward pass as a *convolution*,
  ``c_m(x,y) = Σ_{n,x',y'} o_n(x−x', y−y') w_{n,m}(x',y') + b_m``, with the kernel
  subscripts in the order (input map n, output map m). Their kernel is the
  book's kernel rotated by 180°: ``w_src[n, m] = rot180(w_book[m, n])``
  ([eq-flip-relation]). Their output index x' is the convolution's own index,
  defined for ``K_h − 1 <= x' <= H − 1``; an array that stores the valid output
  from index 0 (as every library does) is shifted by ``K_h − 1`` (source 002's
  "implicit offset"). The argument ``placement`` says which of the two the
  delta array uses: ``"conv"`` (array index i is the source's x' = i + K_h − 1)
  or ``"array"`` (x' = i, the shift ignored).
* Source 001 writes the forward pass as a cross-correlation (the book's
  [eq-layer-forward] with stride 1, no padding), kernels ``w_k[c, a, b]``.
* Source 003 lists every element for a 2×2 filter on a 3×3 input, 1-based,
  with ``*`` meaning an ordinary product.

Ledger entries: S000 / S002 "Weight Update", S001 "Finding ∂L/∂w_k" and
"Finding ∂L/∂b_k", S003 "Finding ∂L/∂F" (see book/ledger.yml for the exact ids).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..._validate import as_pair, as_real_array, check_mode

__all__ = [
    "weight_grad_sum_000",
    "weight_grad_rot180_000",
    "weight_grad_sum_001",
    "weight_grad_star_001",
    "weight_grad_listing_003",
    "bias_grad_sum_001",
]

PLACEMENTS = ("conv", "array")
OUT_OF_BOUNDS = ("zero", "wrap")


def _maps_and_deltas(o, delta, kernel_shape):
    """Validate (C_in, H, W) input maps, (C_out, H', W') deltas and a (K_h, K_w) kernel shape."""
    o = as_real_array(o, "o", ndim=3)
    delta = as_real_array(delta, "delta", ndim=3)
    kh, kw = as_pair(kernel_shape, "kernel_shape", 1)
    _, h, w = o.shape
    if kh > h or kw > w:
        raise ValueError(f"kernel_shape {(kh, kw)} must be no larger than the input maps {(h, w)}")
    expected = (h - kh + 1, w - kw + 1)
    if delta.shape[1:] != expected:
        raise ValueError(
            f"delta must have shape (C_out, {expected[0]}, {expected[1]}) (the valid output of a "
            f"{(kh, kw)} kernel on {(h, w)} maps), got {delta.shape}"
        )
    return o, delta, (kh, kw)


def weight_grad_sum_000(o, delta, kernel_shape, *, placement="conv", out_of_bounds="zero") -> np.ndarray:
    """Sources 000/002: ``∂E/∂w_{n,m}(x,y) = Σ_{x',y'} o_n(x'−x, y'−y) · δ_m(x',y')``, the sum as printed.

    o: (C_in, H, W), the maps o_n^{l−1}; delta: (C_out, H−K_h+1, W−K_w+1), the
    valid deltas δ_m^l stored from index 0; kernel_shape: (K_h, K_w).
    Returns (C_in, C_out, K_h, K_w) in the sources' layout ``[n, m, x, y]``: the
    gradient with respect to their (convolution) kernel w_{n,m}.

    placement: ``"conv"`` puts ``delta[m, i, j]`` at the source's output position
    ``(x', y') = (i + K_h − 1, j + K_w − 1)``; ``"array"`` at ``(i, j)``.
    out_of_bounds: what ``o_n(x'−x, y'−y)`` is when the index leaves the map:
    ``"zero"`` (zero padding) or ``"wrap"`` (indices taken modulo H and W, the
    "wrapping around" of source 000: ``x' − x`` read as ``N − x + x'``).

    With ``placement="conv"`` the index never leaves the map and the result is
    the correct gradient ([eq-wg-src-sum], equivalently source 002's explicit
    offset [eq-wg-offset]); with ``"array"`` it is not, with
    either out-of-bounds rule (book: err-wg-wrap-around).
    """
    o, delta, (kh, kw) = _maps_and_deltas(o, delta, kernel_shape)
    check_mode(placement, PLACEMENTS, "placement")
    check_mode(out_of_bounds, OUT_OF_BOUNDS, "out_of_bounds")
    c_in, h, w = o.shape
    c_out, ho, wo = delta.shape
    off_h, off_w = (kh - 1, kw - 1) if placement == "conv" else (0, 0)
    grad = np.zeros((c_in, c_out, kh, kw))
    for n in range(c_in):
        for m in range(c_out):
            for x in range(kh):
                for y in range(kw):
                    acc = 0.0
                    for i in range(ho):
                        for j in range(wo):
                            xp, yp = i + off_h, j + off_w  # the source's (x', y')
                            p, q = xp - x, yp - y
                            if out_of_bounds == "wrap":
                                p, q = p % h, q % w  # N − x + x' for negative x' − x
                            elif not (0 <= p < h and 0 <= q < w):
                                continue
                            acc += o[n, p, q] * delta[m, i, j]
                    grad[n, m, x, y] = acc
    return grad


def weight_grad_rot180_000(o, delta) -> np.ndarray:
    """Sources 000/002: ``∂E/∂w_{n,m} = rot180( Σ_{x',y'} o_n(x+x', y+y') δ_m(x',y') )``.

    The inner sum is the valid cross-correlation of o_n with δ_m ([eq-corr-def]),
    evaluated for the delta array stored from index 0 (``placement="array"``),
    then rotated by 180°. o: (C_in, H, W); delta: (C_out, H', W').
    Returns (C_in, C_out, H−H'+1, W−W'+1) in the sources' layout ``[n, m, x, y]``
    ([eq-wg-rot180]).
    """
    o = as_real_array(o, "o", ndim=3)
    delta = as_real_array(delta, "delta", ndim=3)
    c_in, h, w = o.shape
    c_out, ho, wo = delta.shape
    if ho > h or wo > w:
        raise ValueError(f"delta maps {(ho, wo)} must be no larger than the input maps {(h, w)}")
    kh, kw = h - ho + 1, w - wo + 1
    corr = np.zeros((c_in, c_out, kh, kw))
    for n in range(c_in):
        for m in range(c_out):
            for x in range(kh):
                for y in range(kw):
                    corr[n, m, x, y] = sum(
                        o[n, x + xp, y + yp] * delta[m, xp, yp] for xp in range(ho) for yp in range(wo)
                    )
    return corr[:, :, ::-1, ::-1].copy()


def _x_and_dz(X, dz):
    X = as_real_array(X, "X", ndim=3)
    dz = as_real_array(dz, "dz", ndim=3)
    _, M, N = X.shape
    _, Mo, No = dz.shape
    if Mo > M or No > N:
        raise ValueError(f"dz maps {(Mo, No)} must be no larger than the input X {(M, N)} (a valid output)")
    return X, dz


def weight_grad_sum_001(X, dz) -> np.ndarray:
    """Source 001: ``∂L/∂w_k[c,a,b] = Σ_{i=0}^{M−m} Σ_{j=0}^{N−n} ∂L/∂z_k[i,j] · X[c, i+a, j+b]``.

    X: (D, M, N), the input (depth D, height M, width N); dz: (P, M−m+1, N−n+1),
    ∂L/∂z for the P filters. The kernel size (m, n) follows from the shapes.
    Returns (P, D, m, n) = ∂L/∂w_k[c, a, b], the book's OIHW layout ([eq-weight-grad]).
    The printed ranges ``i = 0 … M−m`` are exactly the M−m+1 valid output rows.
    """
    X, dz = _x_and_dz(X, dz)
    D, M, N = X.shape
    P, Mo, No = dz.shape
    m, n = M - Mo + 1, N - No + 1
    grad = np.zeros((P, D, m, n))
    for k in range(P):
        for c in range(D):
            for a in range(m):
                for b in range(n):
                    for i in range(M - m + 1):
                        for j in range(N - n + 1):
                            grad[k, c, a, b] += dz[k, i, j] * X[c, i + a, j + b]
    return grad


def weight_grad_star_001(X, dz) -> np.ndarray:
    """Source 001: ``∂L/∂w_k = ∂L/∂z_k ⋆ X``, with ⋆ read so that it equals the sum above.

    That reading is ``(∂L/∂z_k ⋆ X)[c, a, b] = Σ_{i,j} ∂L/∂z_k[i, j] · X[c, i+a, j+b]``:
    ∂L/∂z_k stays put and X is shifted under it, i.e. ``X_c ⋆ ∂L/∂z_k`` in the
    book's [eq-corr-def] (image first, kernel second), which is
    ``scipy.signal.correlate2d(X[c], dz[k], "valid")``. With the arguments in the
    printed order, ``correlate2d(dz[k], X[c], "valid")`` is the 180° rotation of
    the gradient (book: err-wg-star-order).

    X: (D, M, N); dz: (P, M', N'). Returns (P, D, M−M'+1, N−N'+1), vectorised
    (one window view of X, one tensor contraction) ([eq-wg-corr]).
    """
    X, dz = _x_and_dz(X, dz)
    _, Mo, No = dz.shape
    windows = sliding_window_view(X, (Mo, No), axis=(1, 2))  # (D, m, n, M', N'): windows[c, a, b] = X[c, a:a+M', b:b+N']
    return np.einsum("cabij,kij->kcab", windows, dz, optimize=True)


def weight_grad_listing_003(dO, X) -> np.ndarray:
    """Source 003: the four printed lines of ∂L/∂F for a 2×2 filter F on a 3×3 input X, 1-based.

    ``∂L/∂F_11 = ∂L/∂O_11 * X_11 + ∂L/∂O_12 * X_12 + ∂L/∂O_21 * X_21 + ∂L/∂O_22 * X_22`` and
    so on, with ``*`` an ordinary product. dO: (2, 2) = ∂L/∂O; X: (3, 3).
    Returns (2, 2) = ∂L/∂F; entry ``[r−1, s−1]`` is the printed ``∂L/∂F_rs`` ([eq-wg-s1]).
    """
    dO = as_real_array(dO, "dO", ndim=2)
    X = as_real_array(X, "X", ndim=2)
    if dO.shape != (2, 2) or X.shape != (3, 3):
        raise ValueError(f"source 003 lists a 2x2 filter on a 3x3 input: dO must be (2, 2) and X (3, 3), "
                         f"got dO {dO.shape} and X {X.shape}")

    def L(r, s):  # ∂L/∂O_rs, 1-based as printed
        return dO[r - 1, s - 1]

    def x(r, s):  # X_rs, 1-based as printed
        return X[r - 1, s - 1]

    dF = np.empty((2, 2))
    dF[0, 0] = L(1, 1) * x(1, 1) + L(1, 2) * x(1, 2) + L(2, 1) * x(2, 1) + L(2, 2) * x(2, 2)  # ∂L/∂F_11
    dF[0, 1] = L(1, 1) * x(1, 2) + L(1, 2) * x(1, 3) + L(2, 1) * x(2, 2) + L(2, 2) * x(2, 3)  # ∂L/∂F_12
    dF[1, 0] = L(1, 1) * x(2, 1) + L(1, 2) * x(2, 2) + L(2, 1) * x(3, 1) + L(2, 2) * x(3, 2)  # ∂L/∂F_21
    dF[1, 1] = L(1, 1) * x(2, 2) + L(1, 2) * x(2, 3) + L(2, 1) * x(3, 2) + L(2, 2) * x(3, 3)  # ∂L/∂F_22
    return dF


def bias_grad_sum_001(dz) -> np.ndarray:
    """Source 001: ``∂L/∂b_k = Σ_{i=0}^{M−m} Σ_{j=0}^{N−n} ∂L/∂z_k[i,j]``, one example, as printed.

    dz: (P, M−m+1, N−n+1), ∂L/∂z for the P filters of one example.
    Returns (P,) ([eq-bias-grad] with a batch of one; book: bias_gradient.md).
    """
    dz = as_real_array(dz, "dz", ndim=3)
    P, rows, cols = dz.shape  # rows = M − m + 1, cols = N − n + 1
    db = np.zeros(P)
    for k in range(P):
        for i in range(rows):
            for j in range(cols):
                db[k] += dz[k, i, j]
    return db
