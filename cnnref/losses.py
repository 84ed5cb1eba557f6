"""Losses and their gradients with respect to the network output (book: "The forward pass").

* ½-squared error ([eq-half-sse]):  E = ½ Σ (t − o)²,  ∂E/∂o = o − t   ([eq-half-sse-grad])
* softmax cross-entropy ([eq-softmax-ce]) on logits s (N, K) and integer labels
  y (N,):  E = −Σ_n log softmax(s_n)[y_n],  ∂E/∂s = softmax(s) − onehot(y)   ([eq-softmax-ce-grad])

``reduction="sum"`` adds over the batch, ``"mean"`` divides by the batch size N
(the first axis). The sources write ½-squared error as a sum (source 004
sums the per-example gradients over the stacked batch); the MATLAB-style
network of Part III divides by N; frameworks default to the mean for
cross-entropy. The defaults below follow that. The choice only rescales the
gradient, and so the learning rate, by N.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_labels, as_real_array, check_mode

REDUCTIONS = ("sum", "mean")


def _scale(n: int, reduction: str) -> float:
    check_mode(reduction, REDUCTIONS, "reduction")
    if reduction == "mean" and n == 0:
        raise ValueError("reduction='mean' needs at least one example, got N=0 (an empty batch)")
    return 1.0 if reduction == "sum" else 1.0 / n


def _check_pair(o, t):
    o = as_real_array(o, "o")
    t = as_real_array(t, "t")
    if o.shape != t.shape:
        raise ValueError(f"o and t must have the same shape, got o {o.shape} and t {t.shape}")
    if o.ndim == 0:
        raise ValueError("o and t must have a batch axis (at least 1-D), got scalars")
    return o, t


def half_squared_error(o, t, reduction: str = "sum") -> float:
    """E = ½ Σ (t − o)² over every entry ([eq-half-sse]); ``"mean"`` divides by N = o.shape[0]."""
    o, t = _check_pair(o, t)
    return float(0.5 * np.sum((t - o) ** 2) * _scale(o.shape[0], reduction))


def half_squared_error_grad(o, t, reduction: str = "sum") -> np.ndarray:
    """∂E/∂o = o − t ([eq-half-sse-grad]) (divided by N for ``"mean"``)."""
    o, t = _check_pair(o, t)
    return (o - t) * _scale(o.shape[0], reduction)


def _check_logits(s, labels):
    s = as_real_array(s, "logits", ndim=2)
    if s.shape[1] == 0:
        raise ValueError(f"logits must have at least one class (shape (N, K) with K >= 1), got {s.shape}")
    return s, as_labels(labels, s.shape[1], "labels", n=s.shape[0])


def softmax(s) -> np.ndarray:
    """Row-wise softmax of logits s (N, K), shifted by the row maximum for stability."""
    s = as_real_array(s, "logits", ndim=2)
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits, labels, reduction: str = "mean") -> float:
    """E = −Σ_n log softmax(s_n)[y_n] ([eq-softmax-ce]); ``"mean"`` (default) divides by N."""
    s, labels = _check_logits(logits, labels)
    shifted = s - s.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(s.shape[0]), labels].sum() * _scale(s.shape[0], reduction))


def softmax_cross_entropy_grad(logits, labels, reduction: str = "mean") -> np.ndarray:
    """∂E/∂s = softmax(s) − onehot(y) ([eq-softmax-ce-grad]), divided by N for ``"mean"``."""
    s, labels = _check_logits(logits, labels)
    g = softmax(s)
    g[np.arange(s.shape[0]), labels] -= 1.0
    return g * _scale(s.shape[0], reduction)
