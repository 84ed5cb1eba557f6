"""Numerical gradient checks (book: "Checking gradients").

* :func:`numerical_gradient` - central differences ([eq-central-difference]):
  ``∂f/∂x_k ≈ (f(x + ε e_k) − f(x − ε e_k)) / (2ε)``, error O(ε²) for smooth f
  and exact (up to rounding) when f is at most quadratic in each x_k, e.g.
  a loss that is bilinear in (x, w) and linear in each alone.
* :func:`relative_error` - ``‖a − b‖_∞ / max(‖a‖_∞, ‖b‖_∞)``.
* :func:`adjoint_test` - the dot-product test ``⟨u, J v⟩ = ⟨Jᵀ u, v⟩`` ([eq-adjoint-test])
  for a linear map ``J`` and its claimed transpose, reported as the relative difference
  of the two inner products.

For vector-Jacobian products checked against automatic differentiation, the
tests and the book use ``jax.test_util.check_grads`` directly.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._validate import as_real_array, as_shape


def _check_callable(f, name: str) -> None:
    if not callable(f):
        raise TypeError(f"{name} must be a callable, got {f!r} of type {type(f).__name__}")


def _as_scalar(value, name: str) -> float:
    v = np.asarray(value)
    if v.shape != () or not (np.issubdtype(v.dtype, np.integer) or np.issubdtype(v.dtype, np.floating)):
        raise TypeError(f"{name} must return a real scalar, got {type(value).__name__} "
                        f"of shape {v.shape} and dtype {v.dtype}")
    return float(v)


def numerical_gradient(f: Callable[[np.ndarray], float], x, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of a scalar function ``f`` at ``x`` (float64), one coordinate at a time.

    ``f`` maps an array of the shape of ``x`` to a real scalar; ``eps`` is a positive finite float.
    Returns an array of the shape of ``x`` ([eq-central-difference]). ``x`` is not modified.
    Cost: 2·x.size evaluations of ``f``; tiny inputs only.
    """
    _check_callable(f, "f")
    x = as_real_array(x, "x").astype(np.float64, copy=True)
    if not (isinstance(eps, float) and np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a positive finite float, got {eps!r}")
    grad = np.zeros_like(x)
    flat, g = x.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        f_plus = _as_scalar(f(x), "f")
        flat[k] = old - eps
        f_minus = _as_scalar(f(x), "f")
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
    """Relative difference of the two sides of [eq-adjoint-test] for random u, v.

    ``forward`` must be linear, mapping arrays of ``in_shape`` to ``out_shape``;
    ``transpose`` is the claimed transpose, mapping ``out_shape`` back to ``in_shape``.
    With ``v`` (in_shape) and ``u`` (out_shape) drawn from ``rng.standard_normal``
    (default ``np.random.default_rng(0)``), ``a = ⟨u, forward(v)⟩`` and ``b = ⟨transpose(u), v⟩``,
    the result is

        |a − b| / max(|a|, |b|)      (0.0 when a = b = 0)

    a number in [0, 2]: 0 when the two sides agree; exactly 1 when one side is zero and the
    other is not (e.g. a transpose that returns zeros), at every size; 0.5 for a transpose
    off by a factor 2 (or ½); 2 for a sign error. A correct pair scores at rounding level,
    ~1e-16 to 1e-14 in float64, independently of the size, unless ``a`` nearly cancels by
    chance, which a random draw makes unlikely (|a| below δ times its typical size has
    probability about δ). A wrong transpose typically scores 1e-2 or more.
    """
    _check_callable(forward, "forward")
    _check_callable(transpose, "transpose")
    in_shape = as_shape(in_shape, "in_shape", minimum=1)
    out_shape = as_shape(out_shape, "out_shape", minimum=1)
    if rng is None:
        rng = np.random.default_rng(0)
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng) or None, got {type(rng).__name__}")
    v = rng.standard_normal(in_shape)
    u = rng.standard_normal(out_shape)
    Jv = as_real_array(forward(v), "forward(v)")
    JTu = as_real_array(transpose(u), "transpose(u)")
    if Jv.shape != out_shape:
        raise ValueError(f"forward returned shape {Jv.shape}, expected out_shape {out_shape}")
    if JTu.shape != in_shape:
        raise ValueError(f"transpose returned shape {JTu.shape}, expected in_shape {in_shape}")
    a, b = float(np.vdot(u, Jv)), float(np.vdot(JTu, v))
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0.0 else abs(a - b) / scale
