"""The sources' delta / input-gradient equations, implemented as printed (book: "Deltas").

Each function follows its source's own symbols, index origin, kernel layout and
argument order, so that the book can compute the printed form next to the
correct one (``cnnref.conv2d_backward``, [eq-input-grad], [eq-delta-recursion])
and show where they agree and where they do not. Loops over the printed sums
(tiny inputs only), except where a function says it is vectorised.

Conventions, in the book's terms (see also :mod:`cnnref.teaching.sourceforms.weight_grad`):

* Sources 000 and 002 write layer l+1 as a *convolution* of the outputs
  ``a(c_m^l)`` with kernels ``w_{m,o}^{l+1}`` (subscripts: input map m, output
  map o), so ``w_src[m, o] = rot180(w_book[o, m])`` ([eq-flip-relation]). The
  deltas ``δ_o^{l+1}(x', y')`` live at the convolution's own output positions
  ``K_h − 1 <= x' <= H − 1``. ``placement="conv"`` reads ``delta[o, i, j]`` as
  ``δ_o^{l+1}(i + K_h − 1, j + K_w − 1)``; ``placement="array"`` as
  ``δ_o^{l+1}(i, j)`` (the array stored from index 0, source 002's implicit
  shift by ``K − 1``). Outside the delta map, δ is zero.
* Source 001 writes the layer as a cross-correlation (the book's
  [eq-layer-forward] with stride 1 and no padding); ``P`` there is the number
  of filters, not a padding.
* Source 003 lists every element for a 2×2 filter on a 3×3 input, 1-based.
* Source 004 (MATLAB) writes the layer as ``x * a`` with ``'valid'`` boundary,
  a true convolution (MATLAB's ``conv2``), and its transpose as a ``'full'``
  convolution with the flipped kernel.

``phi_prime`` (where accepted) is ``a'(c_m^l)`` evaluated at the layer-l complete
input, multiplied element by element ([eq-delta-recursion]); ``None`` returns
the backpropagated error alone (``∂E/∂o^l``, before that factor).
"""

from __future__ import annotations

import numpy as np

from ... import matlab
from ..._validate import as_real_array, check_mode, check_shape
from ...correlation import convolve2d

__all__ = [
    "delta_sum_000",
    "delta_wrap_000",
    "delta_rot180_000",
    "delta_sum_002",
    "delta_derivative_line_002",
    "input_grad_sum_001",
    "input_grad_conv_001",
    "input_grad_conv3d_001",
    "input_grad_listing_003",
    "input_grad_004",
]

PLACEMENTS = ("conv", "array")
SIGNS = ("printed", "consistent")


def _kernels_and_deltas(w, delta):
    """w: (C_in, C_out, K_h, K_w) in the sources' [m, o] order; delta: (C_out, H', W')."""
    w = as_real_array(w, "w", ndim=4)
    delta = as_real_array(delta, "delta", ndim=3)
    if w.shape[1] != delta.shape[0]:
        raise ValueError(
            f"w must have shape (C_in, C_out, K_h, K_w) in the sources' order w_{{m,o}} (layer-l map first) "
            f"with C_out = {delta.shape[0]} delta maps, got w {w.shape} and delta {delta.shape}"
        )
    if w.size == 0 or delta.size == 0:
        raise ValueError(f"w and delta must not be empty, got w {w.shape} and delta {delta.shape}")
    c_in, _, kh, kw = w.shape
    _, ho, wo = delta.shape
    return w, delta, (c_in, ho + kh - 1, wo + kw - 1)


def _times_phi_prime(err, phi_prime):
    if phi_prime is None:
        return err
    phi_prime = as_real_array(phi_prime, "phi_prime")
    check_shape(phi_prime, err.shape, "phi_prime", "a'(c^l) for every layer-l map and position")
    return err * phi_prime


def delta_sum_000(w, delta, *, placement="conv", phi_prime=None) -> np.ndarray:
    """Source 000: ``δ_m^l(x,y) = Σ_{o,x',y'} w_{m,o}^{l+1}(x'−x, y'−y) · δ_o^{l+1}(x',y') · a'(c_m^l(x,y))``.

    w: (C_in, C_out, K_h, K_w), ``w[m, o]`` = w_{m,o}^{l+1} (a convolution kernel);
    delta: (C_out, H', W'), the valid deltas of layer l+1 stored from index 0;
    phi_prime: (C_in, H, W) or None. Returns (C_in, H, W), H = H' + K_h − 1.
    ``w(x'−x, y'−y)`` is zero where ``x'−x`` or ``y'−y`` leaves ``0 … K − 1``.
    With ``placement="conv"`` this is the correct delta ([eq-delta-src000]);
    with ``"array"`` it is shifted (book: err-delta-placement).
    """
    w, delta, (c_in, h, wd) = _kernels_and_deltas(w, delta)
    check_mode(placement, PLACEMENTS, "placement")
    _, c_out, kh, kw = w.shape
    _, ho, wo = delta.shape
    off_h, off_w = (kh - 1, kw - 1) if placement == "conv" else (0, 0)
    err = np.zeros((c_in, h, wd))
    for m in range(c_in):
        for x in range(h):
            for y in range(wd):
                acc = 0.0
                for o in range(c_out):
                    for i in range(ho):
                        for j in range(wo):
                            u, v = i + off_h - x, j + off_w - y  # x' − x, y' − y
                            if 0 <= u < kh and 0 <= v < kw:
                                acc += w[m, o, u, v] * delta[o, i, j]
                err[m, x, y] = acc
    return _times_phi_prime(err, phi_prime)


def delta_wrap_000(w, delta, *, sign="printed", phi_prime=None) -> np.ndarray:
    """Source 000's rewrite sentence: read ``(x'−x, y'−y)`` as ``(N−x+x', N−y−y')`` in the delta sum.

    The indices are taken modulo the layer-l map size N (H rows, W columns), the
    "wrapping around" the source uses for the weight gradient, and ``w`` is zero
    where the wrapped index leaves its ``K_h × K_w`` support. ``sign="printed"``
    uses ``N − y − y'`` for the column as printed, ``"consistent"`` uses
    ``N − y + y'``. The deltas are read at their array index (x' = i), the only
    reading for which wrapping is needed. Neither sign gives the delta (book:
    err-delta-wrap). Shapes as :func:`delta_sum_000`.
    """
    w, delta, (c_in, h, wd) = _kernels_and_deltas(w, delta)
    check_mode(sign, SIGNS, "sign")
    _, c_out, kh, kw = w.shape
    _, ho, wo = delta.shape
    col_sign = -1 if sign == "printed" else 1
    err = np.zeros((c_in, h, wd))
    for m in range(c_in):
        for x in range(h):
            for y in range(wd):
                acc = 0.0
                for o in range(c_out):
                    for i in range(ho):
                        for j in range(wo):
                            u, v = (h - x + i) % h, (wd - y + col_sign * j) % wd
                            if u < kh and v < kw:
                                acc += w[m, o, u, v] * delta[o, i, j]
                err[m, x, y] = acc
    return _times_phi_prime(err, phi_prime)


def delta_rot180_000(w, delta, *, phi_prime=None) -> np.ndarray:
    """Source 000: ``δ_m^l = rot180( Σ_{o,x',y'} w_{m,o}^{l+1}(x+x', y+y') · δ_o^{l+1}(x',y') ) · a'(c_m^l)``.

    The inner sum is a cross-correlation of the kernel with the delta map. It
    has the right size (H, W) only as a *full* correlation: every lag
    ``x = −(H'−1) … K_h−1`` at which kernel and delta overlap, with w zero
    outside its support. The deltas are the array stored from index 0. That is
    what this function computes ([eq-delta-rot180]); the valid correlation of a
    K×K kernel with a larger delta map has no entries at all.
    Shapes as :func:`delta_sum_000`.
    """
    w, delta, (c_in, h, wd) = _kernels_and_deltas(w, delta)
    _, c_out, kh, kw = w.shape
    _, ho, wo = delta.shape
    corr = np.zeros((c_in, h, wd))  # corr[m, x + H' − 1, y + W' − 1] = the sum at lag (x, y)
    for m in range(c_in):
        for x in range(-(ho - 1), kh):
            for y in range(-(wo - 1), kw):
                acc = 0.0
                for o in range(c_out):
                    for i in range(ho):
                        for j in range(wo):
                            u, v = x + i, y + j
                            if 0 <= u < kh and 0 <= v < kw:
                                acc += w[m, o, u, v] * delta[o, i, j]
                corr[m, x + ho - 1, y + wo - 1] = acc
    return _times_phi_prime(corr[:, ::-1, ::-1].copy(), phi_prime)


def delta_sum_002(w, delta, *, placement="conv", phi_prime=None) -> np.ndarray:
    """Source 002: ``δ_m^l(x,y) = Σ_o Σ_{x',y'}^{N_w} δ_o^{l+1}(x+x', y+y') · w_{m,o}^{l+1}(x', y') · a'(c_m^l(x,y))``.

    ``x', y'`` run over the kernel, ``0 … K − 1``; δ is zero outside its map.
    w: (C_in, C_out, K_h, K_w) in the sources' [m, o] order (a convolution kernel);
    delta: (C_out, H', W') stored from index 0; phi_prime: (C_in, H, W) or None.
    Returns (C_in, H, W). A correlation of the deltas with the kernel: correct
    for the source's convolution kernel when the deltas sit at the convolution's
    own positions (``placement="conv"``, [eq-delta-src002]), shifted by
    ``K − 1`` when they are read at their array index (``"array"``, the
    placement the same source uses for its weight gradient; book:
    err-delta-placement).
    """
    w, delta, (c_in, h, wd) = _kernels_and_deltas(w, delta)
    check_mode(placement, PLACEMENTS, "placement")
    _, c_out, kh, kw = w.shape
    _, ho, wo = delta.shape
    off_h, off_w = (kh - 1, kw - 1) if placement == "conv" else (0, 0)
    err = np.zeros((c_in, h, wd))
    for m in range(c_in):
        for x in range(h):
            for y in range(wd):
                acc = 0.0
                for o in range(c_out):
                    for xp in range(kh):
                        for yp in range(kw):
                            i, j = x + xp - off_h, y + yp - off_w  # array index of δ(x + x', y + y')
                            if 0 <= i < ho and 0 <= j < wo:
                                acc += delta[o, i, j] * w[m, o, xp, yp]
                err[m, x, y] = acc
    return _times_phi_prime(err, phi_prime)


def delta_derivative_line_002(w, delta, *, phi_prime=None) -> np.ndarray:
    """Source 002 with the weight index of its derivative line: ``Σ_o Σ_{x',y'} δ_o^{l+1}(x+x', y+y') · w_{m,o}(x+x', y+y')``.

    The derivation in source 002 ends with ``∂c_o^{l+1}(x+x', y+y')/∂c_m^l(x, y) = w_{m,o}(x+x', y+y') · a'``;
    the correct factor is ``w_{m,o}(x', y')`` (the term with x'' = x'), which its final
    formula uses. This function sums the printed factor against the deltas (at their
    convolution positions, w zero outside its support), to show that it is not the delta
    (book: err-delta-002-derivation). Shapes as :func:`delta_sum_002`.
    """
    w, delta, (c_in, h, wd) = _kernels_and_deltas(w, delta)
    _, c_out, kh, kw = w.shape
    _, ho, wo = delta.shape
    err = np.zeros((c_in, h, wd))
    for m in range(c_in):
        for x in range(h):
            for y in range(wd):
                acc = 0.0
                for o in range(c_out):
                    for xp in range(kh):
                        for yp in range(kw):
                            i, j = x + xp - (kh - 1), y + yp - (kw - 1)  # δ(x + x', y + y') at its convolution position
                            if 0 <= i < ho and 0 <= j < wo and x + xp < kh and y + yp < kw:
                                acc += delta[o, i, j] * w[m, o, x + xp, y + yp]
                err[m, x, y] = acc
    return _times_phi_prime(err, phi_prime)


def _dz_and_filters(dz, w):
    """dz: (P, M', N'); w: (P, D, m, n) (source 001: w_k[c, a, b], the book's OIHW)."""
    dz = as_real_array(dz, "dz", ndim=3)
    w = as_real_array(w, "w", ndim=4)
    if w.shape[0] != dz.shape[0]:
        raise ValueError(f"w must have shape (P, D, m, n) with P = {dz.shape[0]} filters (one per dz map), "
                         f"got w {w.shape} and dz {dz.shape}")
    if w.size == 0 or dz.size == 0:
        raise ValueError(f"w and dz must not be empty, got w {w.shape} and dz {dz.shape}")
    return dz, w


def input_grad_sum_001(dz, w, *, zero_rule=True) -> np.ndarray:
    """Source 001: ``∂L/∂X[γ,p,q] = Σ_{k=0}^{P−1} Σ_{α=0}^{m−1} Σ_{β=0}^{n−1} ∂L/∂Z_k[p−α, q−β] · w_k[γ,α,β]``.

    dz: (P, M', N'); w: (P, D, m, n). Returns (D, M, N) with M = M' + m − 1.
    With ``zero_rule=True`` a term whose ``Z_k`` index leaves ``0 … M'−1`` (or
    ``0 … N'−1``) is zero: source 001's rule for ``X[γ, 0, 0]``, applied at both
    ends ([eq-dx-s1]). ``zero_rule=False`` checks only the upper bound and lets
    numpy's negative indices wrap around to the last rows, the silent mistake the
    rule prevents (book: err-dx-negative-index).
    """
    dz, w = _dz_and_filters(dz, w)
    if not isinstance(zero_rule, bool):
        raise TypeError(f"zero_rule must be a bool, got {zero_rule!r}")
    P, Mo, No = dz.shape
    _, D, m, n = w.shape
    M, N = Mo + m - 1, No + n - 1
    dX = np.zeros((D, M, N))
    for g in range(D):
        for p in range(M):
            for q in range(N):
                for k in range(P):
                    for al in range(m):
                        for be in range(n):
                            i, j = p - al, q - be
                            exists = (0 <= i < Mo and 0 <= j < No) if zero_rule else (i < Mo and j < No)
                            if exists:  # Z_k[i, j] exists (or, without the rule, numpy wraps i < 0)
                                dX[g, p, q] += dz[k, i, j] * w[k, g, al, be]
    return dX


def input_grad_conv_001(dz, w) -> np.ndarray:
    """Source 001: ``∂L/∂X_γ = Σ_{k=0}^{P−1} ∂L/∂z_k ∗ w_k[γ]``, each ∗ a *full* 2-D convolution.

    dz: (P, M', N'); w: (P, D, m, n). Returns (D, M' + m − 1, N' + n − 1),
    with ``cnnref.convolve2d(..., "full")`` ([eq-dx-full]).
    """
    dz, w = _dz_and_filters(dz, w)
    P, Mo, No = dz.shape
    _, D, m, n = w.shape
    dX = np.zeros((D, Mo + m - 1, No + n - 1))
    for g in range(D):
        for k in range(P):
            dX[g] += convolve2d(dz[k], w[k, g], "full")
    return dX


def input_grad_conv3d_001(dz, w, *, reverse_filters=False) -> np.ndarray:
    """Source 001's remark: ``Σ_k ∂L/∂z_k ∗ w_k[γ]`` "may be computed as a 3-dimensional convolution".

    Computes, for each γ, the full 3-D convolution (:func:`cnnref.matlab.convn`) of the
    delta stack dz (P, M', N') with the kernel stack w[:, γ] (P, m, n) and returns the
    depth slice P − 1, where all P filters overlap. A convolution flips the filter axis
    as well, so this pairs ∂L/∂z_k with w_{P−1−k}; ``reverse_filters=True`` reverses the
    kernel stack first and gives the input gradient ([eq-dx-3d]; book: err-delta-3d-conv).
    Returns (D, M' + m − 1, N' + n − 1).
    """
    dz, w = _dz_and_filters(dz, w)
    if not isinstance(reverse_filters, bool):
        raise TypeError(f"reverse_filters must be a bool, got {reverse_filters!r}")
    P = dz.shape[0]
    stacks = w[::-1] if reverse_filters else w
    return np.stack([matlab.convn(dz, stacks[:, g], "full")[P - 1] for g in range(w.shape[1])])


def input_grad_listing_003(dO, F) -> np.ndarray:
    """Source 003: the nine printed lines of ∂L/∂X for a 2×2 filter F on a 3×3 input X, 1-based.

    ``∂L/∂X_11 = ∂L/∂O_11 * F_11``, ``∂L/∂X_12 = ∂L/∂O_11 * F_12 + ∂L/∂O_12 * F_11``, … with
    ``*`` an ordinary product. dO: (2, 2); F: (2, 2). Returns (3, 3); entry
    ``[r−1, s−1]`` is the printed ``∂L/∂X_rs`` ([eq-dx-s1]).
    """
    dO = as_real_array(dO, "dO", ndim=2)
    F = as_real_array(F, "F", ndim=2)
    if dO.shape != (2, 2) or F.shape != (2, 2):
        raise ValueError(f"source 003 lists a 2x2 filter on a 3x3 input: dO and F must be (2, 2), "
                         f"got dO {dO.shape} and F {F.shape}")

    def L(r, s):  # ∂L/∂O_rs, 1-based as printed
        return dO[r - 1, s - 1]

    def f(r, s):  # F_rs
        return F[r - 1, s - 1]

    dX = np.empty((3, 3))
    dX[0, 0] = L(1, 1) * f(1, 1)                                                      # ∂L/∂X_11
    dX[0, 1] = L(1, 1) * f(1, 2) + L(1, 2) * f(1, 1)                                  # ∂L/∂X_12
    dX[0, 2] = L(1, 2) * f(1, 2)                                                      # ∂L/∂X_13
    dX[1, 0] = L(1, 1) * f(2, 1) + L(2, 1) * f(1, 1)                                  # ∂L/∂X_21
    dX[1, 1] = L(1, 1) * f(2, 2) + L(1, 2) * f(2, 1) + L(2, 1) * f(1, 2) + L(2, 2) * f(1, 1)  # ∂L/∂X_22
    dX[1, 2] = L(1, 2) * f(2, 2) + L(2, 2) * f(1, 2)                                  # ∂L/∂X_23
    dX[2, 0] = L(2, 1) * f(2, 1)                                                      # ∂L/∂X_31
    dX[2, 1] = L(2, 1) * f(2, 2) + L(2, 2) * f(2, 1)                                  # ∂L/∂X_32
    dX[2, 2] = L(2, 2) * f(2, 2)                                                      # ∂L/∂X_33
    return dX


def input_grad_004(delta, a) -> np.ndarray:
    """Source 004: ``∂E/∂x = δ * a(−·), 'full'`` for one map and one kernel, in MATLAB's semantics.

    The forward map is ``x ↦ conv2(x, a, 'valid')`` (a true convolution); its
    transpose is ``conv2(δ, flipall(a), 'full')``, computed with
    :func:`cnnref.matlab.conv2`. delta: (H', W'); a: (K_h, K_w).
    Returns (H' + K_h − 1, W' + K_w − 1) ([eq-dx-transpose]).
    """
    delta = as_real_array(delta, "delta", ndim=2)
    a = as_real_array(a, "a", ndim=2)
    return matlab.conv2(delta, matlab.flipall(a), "full")
