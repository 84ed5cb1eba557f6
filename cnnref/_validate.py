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


def check_image_kernel(image, kernel) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D image and a 2-D kernel, both non-empty (the single-map correlations and convolutions)."""
    image = as_real_array(image, "image", ndim=2)
    kernel = as_real_array(kernel, "kernel", ndim=2)
    for name, arr in (("image", image), ("kernel", kernel)):
        if arr.size == 0:
            raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    return image, kernel


def check_pool(x, size, stride):
    """``(x, size, stride, (H', W'))`` of a pooling call: x (N, C, H, W) non-empty, size and stride
    int or (h, w) pairs >= 1, stride defaulting to size."""
    from .sizes import output_size  # sizes imports this module

    x = as_real_array(x, "x", ndim=4)
    if x.size == 0:
        raise ValueError(f"x must not be empty, got shape {x.shape}")
    size = as_pair(size, "size", 1)
    stride = size if stride is None else as_pair(stride, "stride", 1)
    out_hw = (output_size(x.shape[2], size[0], stride[0]), output_size(x.shape[3], size[1], stride[1]))
    return x, size, stride, out_hw


def check_pool_dy(dy, x, out_hw) -> np.ndarray:
    """The upstream gradient of a pooling call: shape (N, C, H', W') of its output."""
    dy = as_real_array(dy, "dy", ndim=4)
    check_shape(dy, x.shape[:2] + tuple(out_hw), "dy", "the shape of the pooling output for this x, size and stride")
    return dy


def check_layer(x, w, b, stride, padding, dilation, groups=1):
    """``(x, w, b, stride, padding, dilation, (H', W'))`` of a convolutional layer call: x (N, C_in,
    H, W) and w (C_out, C_in/groups, K_h, K_w) non-empty, b (C_out,) or None, stride and dilation
    int or pairs >= 1, padding >= 0, groups a positive int that divides both C_in and C_out."""
    from .sizes import output_size  # sizes imports this module

    x = as_real_array(x, "x", ndim=4)
    w = as_real_array(w, "w", ndim=4)
    if x.size == 0 or w.size == 0:
        raise ValueError(f"x and w must not be empty, got x {x.shape} and w {w.shape}")
    groups = as_int(groups, "groups", "a positive int", minimum=1)
    if x.shape[1] % groups or w.shape[0] % groups:
        raise ValueError(
            f"groups={groups} must divide both C_in and C_out, got C_in={x.shape[1]} (x {x.shape}, NCHW) "
            f"and C_out={w.shape[0]} (w {w.shape}, OIHW)"
        )
    if groups == 1 and x.shape[1] != w.shape[1]:
        raise ValueError(
            f"channel mismatch: x has C_in={x.shape[1]} channels (shape {x.shape}, NCHW) but w expects "
            f"C_in={w.shape[1]} (shape {w.shape}, OIHW)"
        )
    if x.shape[1] != groups * w.shape[1]:
        raise ValueError(
            f"channel mismatch: with groups={groups}, w (shape {w.shape}, OIHW) must have "
            f"C_in/groups={x.shape[1] // groups} input channels per kernel for x with C_in={x.shape[1]} "
            f"(shape {x.shape}, NCHW), got {w.shape[1]}"
        )
    if b is not None:
        b = as_real_array(b, "b", ndim=1)
        check_shape(b, (w.shape[0],), "b", f"one bias per output channel, C_out={w.shape[0]}")
    stride = as_pair(stride, "stride", 1)
    padding = as_pair(padding, "padding", 0)
    dilation = as_pair(dilation, "dilation", 1)
    out_hw = tuple(
        output_size(x.shape[2 + a], w.shape[2 + a], stride[a], padding[a], dilation[a]) for a in (0, 1)
    )
    return x, w, b, stride, padding, dilation, out_hw
