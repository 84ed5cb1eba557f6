"""Reusable scratch buffers for the internal temporaries of the vectorised layers.

Why this exists: a fresh multi-megabyte numpy array is mapped from the
operating system page by page, and the page faults on first touch can cost
more than the arithmetic of a small layer (measured: ~40 % of a W4-sized
conv forward+backward). The im2col matrices and padded copies are therefore
written into buffers that are kept between calls, one set per thread.

Only internal temporaries live here. A function never returns (a view of) a
scratch buffer: every returned array is freshly allocated.
"""

from __future__ import annotations

import threading

import numpy as np

_local = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` backed by the buffer called ``name``.

    The buffer grows to the largest size requested and is reused after that.
    Two live temporaries must use two different names.
    """
    bufs = _local.__dict__.setdefault("bufs", {})
    dtype = np.dtype(dtype)
    size = 1
    for n in shape:
        size *= n
    buf = bufs.get((name, dtype))
    if buf is None or buf.size < size:
        buf = np.empty(size, dtype=dtype)
        bufs[(name, dtype)] = buf
    return buf[:size].reshape(shape)
