"""Argument checks shared by every public function.

Every check raises at once with a message that names the argument, what was
expected and what was given. Nothing here broadcasts, truncates or reshapes:
an array either has the promised shape or the call fails.
"""

from __future__ import annotations

import numbers

import numpy as np


def as_real_array(a, name: str, ndim: int | None = None, min_ndim: int | None = None) -> np.ndarray:
    """Return ``a`` as a floating numpy array, or raise.

    Integer arrays are promoted to float64 (a lossless, documented conversion);
    float16/32/64 keep their precision. Booleans, complex numbers, strings and
    objects are rejected with ``TypeError``.
    """
    arr = np.asarray(a)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(f"{name} must be a real numeric array (integer or floating dtype), got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got {arr.ndim}-D array of shape {arr.shape}")
    if min_ndim is not None and arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {arr.shape}")
    return arr


def result_dtype(*arrays: np.ndarray) -> np.dtype:
    """Floating dtype of a computation on ``arrays`` (float32 only if all are float32 or narrower)."""
    return np.result_type(*arrays, np.float16)


def as_int(v, name: str, what: str = "an int", minimum: int | None = None) -> int:
    """``v`` as a Python int; bools, floats (even 2.0) and strings raise ``TypeError``.

    With ``minimum`` (0 or 1 in practice), a smaller value raises ``ValueError``.
    """
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be {what}, got {v!r} of type {type(v).__name__}")
    if minimum is not None and v < minimum:
        bound = {0: "a non-negative int", 1: "a positive int"}.get(minimum, f"an int >= {minimum}")
        raise ValueError(f"{name} must be {bound}, got {v}")
    return int(v)


_PAIR = "an int or a pair of ints"


def as_pair(v, name: str, minimum: int) -> tuple[int, int]:
    """Return ``v`` as an ``(h, w)`` pair of ints that are each >= ``minimum``.

    Accepts an int (used for both axes) or a length-2 tuple/list of ints.
    """
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got a sequence of length {len(v)}: {v!r}")
        pair = (as_int(v[0], name, _PAIR), as_int(v[1], name, _PAIR))
    else:
        n = as_int(v, name, _PAIR)
        pair = (n, n)
    if min(pair) < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be {what} (>= {minimum}), got {v!r}")
    return pair


def as_shape(shape, name: str, ndim: int | None = None, minimum: int = 0, why: str = "") -> tuple[int, ...]:
    """``shape`` (a tuple or list of ints, each >= ``minimum``; ``ndim`` of them if given) as a tuple."""
    what = f"a sequence of {ndim} ints" if ndim is not None else "a sequence of ints"
    what += f" ({why})" if why else ""
    if not isinstance(shape, (tuple, list)) or (ndim is not None and len(shape) != ndim):
        raise ValueError(f"{name} must be {what}, got {shape!r}")
    out = tuple(as_int(v, name, what) for v in shape)
    if out and min(out) < minimum:
        raise ValueError(f"{name} must have entries >= {minimum}, got {shape!r}")
    return out


def as_labels(labels, n_classes: int, name: str = "labels", n: int | None = None) -> np.ndarray:
    """``labels`` as an integer array (N,) of class indices in [0, n_classes); ``N = n`` when ``n`` is given."""
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array of class indices, got dtype {labels.dtype}")
    if labels.ndim != 1 or (n is not None and labels.shape[0] != n):
        raise ValueError(f"{name} must have shape {'(N,)' if n is None else f'(N,) = ({n},)'}, got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"{name} must lie in [0, {n_classes - 1}], got values from {labels.min()} to {labels.max()}")
    return labels


def check_mode(mode, allowed: tuple[str, ...], name: str = "mode") -> str:
    if not isinstance(mode, str) or mode not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(repr(m) for m in allowed)}; got {mode!r}")
    return mode


def check_shape(arr: np.ndarray, expected: tuple[int, ...], name: str, why: str) -> None:
    if arr.shape != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)} ({why}), got {arr.shape}")
