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


def as_int(v, name: str, what: str = "an int") -> int:
    """``v`` as a Python int; bools, floats (even 2.0) and strings raise ``TypeError``."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be {what}, got {v!r} of type {type(v).__name__}")
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


def check_mode(mode, allowed: tuple[str, ...], name: str = "mode") -> str:
    if not isinstance(mode, str) or mode not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(repr(m) for m in allowed)}; got {mode!r}")
    return mode


def check_shape(arr: np.ndarray, expected: tuple[int, ...], name: str, why: str) -> None:
    if arr.shape != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)} ({why}), got {arr.shape}")
