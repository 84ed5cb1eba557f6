"""Element-wise activations and their derivatives (book: "Activations and the chain").

Each derivative takes the *pre-activation* ``z`` (the complete input), the
point where the chain rule evaluates it ([eq-delta-activation]):
``δ = ∂E/∂a ⊙ φ'(z)``. Evaluating ``φ'`` at the output ``a = φ(z)`` instead is
a classic slip; for the sigmoid the two are linked by ``σ'(z) = a (1 − a)``.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_real_array


def sigmoid(z) -> np.ndarray:
    """σ(z) = 1 / (1 + e^{−z}) ([eq-sigmoid]), computed without overflow for large |z|."""
    z = as_real_array(z, "z")
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def sigmoid_prime(z) -> np.ndarray:
    """σ'(z) = σ(z) (1 − σ(z)) ([eq-sigmoid-prime])."""
    s = sigmoid(z)
    return s * (1.0 - s)


def relu(z) -> np.ndarray:
    """max(z, 0) ([eq-relu])."""
    z = as_real_array(z, "z")
    return np.maximum(z, 0)


def relu_prime(z) -> np.ndarray:
    """1 where z > 0, else 0 ([eq-relu-prime]); at z = 0 we take 0, as PyTorch and jax do."""
    z = as_real_array(z, "z")
    return (z > 0).astype(z.dtype)


def tanh(z) -> np.ndarray:
    """tanh(z) ([eq-tanh])."""
    return np.tanh(as_real_array(z, "z"))


def tanh_prime(z) -> np.ndarray:
    """1 − tanh²(z) ([eq-tanh-prime])."""
    t = tanh(z)
    return 1.0 - t * t
