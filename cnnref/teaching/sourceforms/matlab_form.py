"""Source 004's equations as printed (the MATLAB convn/flipall form), for checking them against cnnref.

Source 004 writes a convolutional layer as ``x_j^{l+1} = f(Σ_{i∈M_j} x_k^l * a_ij^{l+1} + b_j^{l+1})``
with ``*`` MATLAB's *convolution* (kernel flipped), a dense head with row-vector derivatives,
and a 1-D derivation of the kernel gradient with **1-based** indices: ``x(1..n)``, a filter
``a(1..l)``, ``d(1..n−l+1)``. The functions below follow the printed formulas index for
index, including the slips, so that the book can compare them with the correct forms
(``cnnref.matlab``, ``cnnref.teaching.matlab_net``, ``cnnref.conv2d_backward``). Each names its ledger
entry (S004-Enn) and the book label where the correct form is derived.

1-based indexing is done by :func:`_at`, which refuses index 0 and indices past the end
(Python's negative indices would silently wrap around).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..._validate import as_int, as_real_array, check_shape
from ...matlab import convn, flipall

__all__ = [
    "layer_forward_as_printed", "jacobian_as_printed", "dE_dy_as_printed", "dE_dy_column",
    "affine_term_as_printed", "valid_conv_operator", "input_grad_as_printed", "input_grad",
    "valid_conv_sum_k", "valid_conv_sum_j", "df_da", "d_times_df_da", "xbar_conv_d_first_form",
    "xbar_conv_d_second_form", "kernel_grad_1d", "kernel_grad_one_liner",
]


def _at(v: np.ndarray, i: int):
    """``v(i)`` with MATLAB's 1-based index; raises IndexError outside ``1..len(v)``."""
    if not 1 <= i <= len(v):
        raise IndexError(f"1-based index {i} is outside 1..{len(v)}")
    return v[i - 1]


def _vec(v, name):
    v = as_real_array(v, name, ndim=1)
    if v.size == 0:
        raise ValueError(f"{name} must not be empty")
    return v


# --- the model ---------------------------------------------------------------------------------


def layer_forward_as_printed(maps, k, b, f: Callable = None, *, k_index: int):
    """S004-E02 as printed: ``x_j^{l+1} = f(Σ_{i} x_k^l * a_ij + b_j)`` with the *fixed* map ``x_k``.

    maps: (C_in, H, W[, N]) input maps; k: (C_in, C_out, K, K) convolution kernels; b: (C_out,);
    f: activation (default: identity); k_index: the 0-based map index standing for the printed
    ``k``. Returns (C_out, H−K+1, W−K+1[, N]). The correct form sums ``x_i * a_ij`` over ``i``
    ([eq-wn-forward], :func:`cnnref.teaching.matlab_net.conv_layer`); the two agree only when every
    input map equals ``x_k`` (e.g. a single input map).
    """
    maps = as_real_array(maps, "maps", min_ndim=3)
    k = as_real_array(k, "k", ndim=4)
    b = as_real_array(b, "b", ndim=1)
    if k.shape[0] != maps.shape[0]:
        raise ValueError(f"k must be (C_in, C_out, K, K) with C_in = {maps.shape[0]}, got {k.shape}")
    check_shape(b, (k.shape[1],), "b", f"one bias per output map, C_out={k.shape[1]}")
    kk = as_int(k_index, "k_index")
    if not 0 <= kk < maps.shape[0]:
        raise ValueError(f"k_index must lie in 0..{maps.shape[0] - 1}, got {kk}")
    f = (lambda z: z) if f is None else f
    return np.stack([f(sum(convn(maps[kk], k[i, j], "valid") for i in range(k.shape[0])) + b[j])
                     for j in range(k.shape[1])])


def jacobian_as_printed(J) -> np.ndarray:
    """S004-E06 as printed: ``(∂f/∂x)_{ij} = ∂f_i/∂x_i`` built from the true Jacobian ``J`` (m, n).

    Entry (i, j) of the result is ``J[i, i]`` for every j: the printed definition ignores the
    column index. The correct definition is ``(∂f/∂x)_{ij} = ∂f_i/∂x_j = J[i, j]``
    ([eq-dh-jacobian]). Needs m <= n (``∂f_i/∂x_i`` does not exist for i > n).
    """
    J = as_real_array(J, "J", ndim=2)
    m, n = J.shape
    if m > n:
        raise ValueError(f"∂f_i/∂x_i needs i <= n: J has m={m} rows but only n={n} columns")
    return np.repeat(np.diag(J)[:, None], n, axis=1)


def dE_dy_as_printed(g_next, y_next, W, sigma_prime: Callable) -> np.ndarray:
    """S004-E08 as printed: ``∂E/∂y^l = ∂E/∂y^{l+1} · σ'(y^{l+1}) · W^{l+1}``, σ' evaluated at the *output* y^{l+1}.

    g_next: (D_out,) or (N, D_out) row(s) ∂E/∂y^{l+1}; y_next: like g_next; W: (D_out, D_in);
    sigma_prime: σ' as a function of its argument. Returns (D_in,) or (N, D_in). Correct:
    σ' at the pre-activation ``s = W y^l + c`` ([eq-dh-dy-recursion]); for the logistic
    sigmoid that is ``σ'(s) = y(1 − y)``, a function of the output, not ``σ'(y)``.
    """
    g_next = as_real_array(g_next, "g_next")
    y_next = as_real_array(y_next, "y_next")
    W = as_real_array(W, "W", ndim=2)
    if g_next.shape != y_next.shape or g_next.shape[-1] != W.shape[0]:
        raise ValueError(f"g_next and y_next must have the same shape (…, D_out={W.shape[0]}), "
                         f"got {g_next.shape} and {y_next.shape}")
    return (g_next * sigma_prime(y_next)) @ W


def dE_dy_column(g_next_col, s_next_col, W, sigma_prime: Callable) -> np.ndarray:
    """S004-E09, the column form used in code (the transpose of S004-E08; [eq-dh-column]): ``Wᵀ (σ'(s) ⊙ g)``.

    g_next_col: (D_out,) or (D_out, N) columns ∂E/∂y^{l+1}; s_next_col: the pre-activations
    ``W y^l + c`` of the same shape. Returns (D_in,) or (D_in, N).
    """
    g = as_real_array(g_next_col, "g_next_col")
    s = as_real_array(s_next_col, "s_next_col")
    W = as_real_array(W, "W", ndim=2)
    if g.shape != s.shape or g.shape[0] != W.shape[0]:
        raise ValueError(f"g_next_col and s_next_col must have the same shape (D_out={W.shape[0]}, …), "
                         f"got {g.shape} and {s.shape}")
    return W.T @ (sigma_prime(s) * g)


def affine_term_as_printed(x_i, a_ij, b_l_j) -> np.ndarray:
    """S004-E12/E14's argument as printed: ``x_i^l * a_ij^{l+1} + b_j^l + 1`` (valid convolution).

    The printed ``b_j^l + 1`` adds one to a bias of the wrong layer; the intended term is
    ``x_i^l * a_ij^{l+1} + b_j^{l+1}``. Neither bias changes the derivative with respect to
    ``x_i^l`` (it is the operator ``W_a`` in both cases) but the value differs by the constant.
    """
    return convn(as_real_array(x_i, "x_i", min_ndim=1), as_real_array(a_ij, "a_ij", min_ndim=1), "valid") \
        + float(b_l_j) + 1.0


def valid_conv_operator(a, n: int) -> np.ndarray:
    """S004-E13: the matrix ``W_a`` of ``x ↦ x * a, 'valid'`` on signals of length n ([eq-tr-operator]).

    a: (K,) kernel (MATLAB convolution orientation); returns (n − K + 1, n) with
    ``W_a[i, p] = a[i + K − 1 − p]`` (0-based) where that index lies in 0..K−1, else 0,
    so that ``W_a @ x == cnnref.matlab.convn(x, a, 'valid')``.
    """
    a = _vec(a, "a")
    n = as_int(n, "n")
    K = a.size
    if n < K:
        raise ValueError(f"n must be at least the kernel length K={K}, got n={n}")
    Wa = np.zeros((n - K + 1, n))
    for i in range(n - K + 1):
        for p in range(n):
            u = i + K - 1 - p
            if 0 <= u < K:
                Wa[i, p] = a[u]
    return Wa


def input_grad_as_printed(delta_post, k, i: int, j: int) -> np.ndarray:
    """S004-E15/E16 as printed: ``∂E/∂x_i^l = δ_j^{l+1} * a_ij^{l+1}(−·), 'full'`` for one ``j``.

    delta_post: (C_out, H', W'[, N]) the source's δ = ∂E/∂x^{l+1} (derivative with respect to
    the layer's *output*); k: (C_in, C_out, K, K). Two things are missing compared with the
    correct :func:`input_grad`: the sum over ``j`` and the factor ``f'(z_j^{l+1})``.
    """
    delta_post = as_real_array(delta_post, "delta_post", min_ndim=3)
    k = as_real_array(k, "k", ndim=4)
    return convn(delta_post[j], flipall(k[i, j]), "full")


def input_grad(delta, k, i: int) -> np.ndarray:
    """The corrected S004-E16 ([eq-ml-src-input-grad], [eq-tr-input-grad-row]): ``∂E/∂x_i^l = Σ_j δ_j * rot180(a_ij), 'full'``.

    delta: (C_out, H', W'[, N]) deltas with respect to the *pre-activations* z_j^{l+1};
    k: (C_in, C_out, K, K). Returns (H' + K − 1, W' + K − 1[, N]).
    """
    delta = as_real_array(delta, "delta", min_ndim=3)
    k = as_real_array(k, "k", ndim=4)
    if delta.shape[0] != k.shape[1]:
        raise ValueError(f"delta must have C_out = {k.shape[1]} maps (k is {k.shape}), got {delta.shape}")
    return sum(convn(delta[j], flipall(k[i, j]), "full") for j in range(k.shape[1]))


# --- the 1-D derivation, 1-based as printed ----------------------------------------------------


def valid_conv_sum_k(x, a) -> np.ndarray:
    """S004-E19, the first sum: ``f(i) = Σ_{k=0}^{l−1} x(i+k) a(l−k)``, i = 1..n−l+1 (1-based).

    x: (n,) signal; a: (l,) filter. Equals ``convn(x, a, 'valid')`` ([eq-tr-1d-valid]).
    """
    x, a = _vec(x, "x"), _vec(a, "a")
    n, l = x.size, a.size
    if l > n:
        raise ValueError(f"the filter (l={l}) must not be longer than the signal (n={n})")
    return np.array([sum(_at(x, i + k) * _at(a, l - k) for k in range(0, l)) for i in range(1, n - l + 2)])


def valid_conv_sum_j(x, a, *, as_printed: bool = True) -> np.ndarray:
    """S004-E20, the second sum: printed ``Σ_{j=l}^{l} x(i+l−j) a(j)``; corrected ``Σ_{j=1}^{l}``.

    As printed the sum has the single term j = l, i.e. ``f(i) = x(i) a(l)``. With
    ``as_printed=False`` the lower limit is 1 and the result equals :func:`valid_conv_sum_k`.
    """
    x, a = _vec(x, "x"), _vec(a, "a")
    n, l = x.size, a.size
    if l > n:
        raise ValueError(f"the filter (l={l}) must not be longer than the signal (n={n})")
    lo = l if as_printed else 1
    return np.array([sum(_at(x, i + l - j) * _at(a, j) for j in range(lo, l + 1)) for i in range(1, n - l + 2)])


def df_da(x, l: int) -> np.ndarray:
    """S004-E21: the Jacobian ``(∂f/∂a)_{ij} = x(i+l−j)``, i = 1..n−l+1, j = 1..l; returns (n−l+1, l).

    Correct with the row-vector convention ``(∂f/∂a)_{ij} = ∂f_i/∂a_j`` ([eq-tr-kernel-grad-1d]).
    """
    x = _vec(x, "x")
    n, l = x.size, as_int(l, "l")
    if not 1 <= l <= n:
        raise ValueError(f"l must lie in 1..n={n}, got {l}")
    return np.array([[_at(x, i + l - j) for j in range(1, l + 1)] for i in range(1, n - l + 2)])


def d_times_df_da(d, x, l: int) -> np.ndarray:
    """S004-E22/E23: ``(d · ∂f/∂a)_j = Σ_{i=1}^{n−l+1} d(i) x(i+l−j)``, j = 1..l ([eq-tr-kernel-grad-1d]).

    d: (n−l+1,) the row vector ∂E/∂f; x: (n,). Returns (l,).
    """
    x, d = _vec(x, "x"), _vec(d, "d")
    n, l = x.size, as_int(l, "l")
    if d.size != n - l + 1:
        raise ValueError(f"d must have length n − l + 1 = {n - l + 1}, got {d.size}")
    return np.array([sum(_at(d, i) * _at(x, i + l - j) for i in range(1, n - l + 2)) for j in range(1, l + 1)])


def xbar_conv_d_first_form(x, d) -> np.ndarray:
    """S004-E24: ``(x̄ * d, 'valid')_j = Σ_{i=0}^{n−l} x(n+1−j−i) d(n−l+1−i)``, j = 1..l, with l = n − len(d) + 1.

    x̄ is x reversed. Equals ``convn(flipall(x), d, 'valid')`` ([eq-tr-xbar-first]).
    """
    x, d = _vec(x, "x"), _vec(d, "d")
    n = x.size
    l = n - d.size + 1
    if l < 1:
        raise ValueError(f"d (length {d.size}) must not be longer than x (length {n})")
    return np.array([sum(_at(x, n + 1 - j - i) * _at(d, n - l + 1 - i) for i in range(0, n - l + 1))
                     for j in range(1, l + 1)])


def xbar_conv_d_second_form(x, d, *, as_printed: bool = True) -> np.ndarray:
    """S004-E25: printed ``Σ_{i=n−1+1}^{1} x(l−j+i) d(i)``; corrected ``Σ_{i=1}^{n−l+1}``.

    As printed the lower limit n − 1 + 1 = n exceeds the upper limit 1, so (for n >= 2) the
    sum is empty and every entry is 0; read as a sum running down from n it would index
    ``d(n)`` past the end of d (length n − l + 1). With ``as_printed=False`` the limits are
    1..n−l+1 ([eq-tr-xbar-second]) and the result equals :func:`xbar_conv_d_first_form`.
    """
    x, d = _vec(x, "x"), _vec(d, "d")
    n = x.size
    l = n - d.size + 1
    if l < 1:
        raise ValueError(f"d (length {d.size}) must not be longer than x (length {n})")
    lo, hi = (n - 1 + 1, 1) if as_printed else (1, n - l + 1)
    return np.array([sum((_at(x, l - j + i) * _at(d, i) for i in range(lo, hi + 1)), 0.0)
                     for j in range(1, l + 1)])


def kernel_grad_1d(x, d) -> np.ndarray:
    """S004-E26/E27 in 1-D: ``∂E/∂a = x̄ * d, 'valid'`` ([eq-tr-kernel-grad-xbar]) with d = ∂E/∂f (pre-activation). x: (n,), d: (n−l+1,) → (l,)."""
    x, d = _vec(x, "x"), _vec(d, "d")
    if d.size > x.size:
        raise ValueError(f"d (length {d.size}) must not be longer than x (length {x.size})")
    return convn(flipall(x), d, "valid")


def kernel_grad_one_liner(x, delta) -> np.ndarray:
    """S004-E30: ``convn(flipall(x_i^l), δ_j^{l+1}, 'valid')`` on stacks; the batch-summed kernel gradient ([eq-bs-one-liner]).

    x: (H, W, N) input map stack; delta: (H', W', N) deltas with respect to the
    *pre-activation* (same N). Returns (H − H' + 1, W − W' + 1): the third axis of the
    'valid' result has length N − N + 1 = 1 and is dropped. Divide by N for a mean loss.
    """
    x = as_real_array(x, "x", ndim=3)
    delta = as_real_array(delta, "delta", ndim=3)
    if x.shape[2] != delta.shape[2] or delta.shape[0] > x.shape[0] or delta.shape[1] > x.shape[1]:
        raise ValueError(f"x (H, W, N) and delta (H', W', N) need the same N and H' <= H, W' <= W; "
                         f"got x {x.shape} and delta {delta.shape}")
    return convn(flipall(x), delta, "valid")[:, :, 0]
