"""Numerical gradient checks (book: "Checking gradients").

* :func:`numerical_gradient` - central differences ([eq-central-difference]):
  ``∂f/∂x_k ≈ (f(x + ε e_k) − f(x − ε e_k)) / (2ε)``, error O(ε²) for smooth f
  and exact (up to rounding) when f is at most quadratic in each x_k, e.g.
  a loss that is bilinear in (x, w) and linear in each alone.
* :func:`relative_error` - ``‖a − b‖_∞ / max(‖a‖_∞, ‖b‖_∞)``.
* :func:`adjoint_test` - the dot-product test ``⟨u, J v⟩ = ⟨Jᵀ u, v⟩`` ([eq-adjoint-test])
  for a linear map ``J`` and its claimed transpose.

For vector-Jacobian products checked against automatic differentiation, the
tests and the book use ``jax.test_util.check_grads`` directly.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._validate import as_real_array


def numerical_gradient(f: Callable[[np.ndarray], float], x, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of a scalar function ``f`` at ``x`` (float64), one coordinate at a time.

    ``x`` is not modified. Cost: 2·x.size evaluations of ``f``; tiny inputs only.
    """
    x = as_real_array(x, "x").astype(np.float64, copy=True)
    if not (isinstance(eps, float) and eps > 0):
        raise ValueError(f"eps must be a positive float, got {eps!r}")
    grad = np.zeros_like(x)
    flat, g = x.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        f_plus = float(f(x))
        flat[k] = old - eps
        f_minus = float(f(x))
        flat[k] = old
        g[k] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(a, b) -> float:
    """``max|a − b| / max(max|a|, max|b|)``; 0.0 when both are all zero. Shapes must match exactly."""
    a = as_real_array(a, "a")
    b = as_real_array(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0))
    if scale == 0.0:
        return 0.0
    return float(np.max(np.abs(a - b)) / scale)


def adjoint_test(forward: Callable, transpose: Callable, in_shape, out_shape, rng=None) -> float:
    """Relative mismatch of ``⟨u, forward(v)⟩`` and ``⟨transpose(u), v⟩`` for random u, v ([eq-adjoint-test]).

    ``forward`` must be linear, mapping arrays of ``in_shape`` to ``out_shape``;
    ``transpose`` maps ``out_shape`` back to ``in_shape``. For a correct pair the
    result is at rounding level (~1e-15 in float64).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    v = rng.standard_normal(tuple(in_shape))
    u = rng.standard_normal(tuple(out_shape))
    Jv = np.asarray(forward(v))
    JTu = np.asarray(transpose(u))
    if Jv.shape != tuple(out_shape):
        raise ValueError(f"forward returned shape {Jv.shape}, expected out_shape {tuple(out_shape)}")
    if JTu.shape != tuple(in_shape):
        raise ValueError(f"transpose returned shape {JTu.shape}, expected in_shape {tuple(in_shape)}")
    lhs, rhs = float(np.vdot(u, Jv)), float(np.vdot(JTu, v))
    scale = max(abs(lhs), abs(rhs), np.linalg.norm(u) * np.linalg.norm(Jv), 1e-300)
    return abs(lhs - rhs) / scale
