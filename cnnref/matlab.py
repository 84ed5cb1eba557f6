"""MATLAB/Octave's ``convn``, ``conv2`` and the ``flipall`` helper, with MATLAB's semantics (book: Part III).

MATLAB convolves (it flips the kernel). For arrays ``A`` and ``B`` aligned by
appending trailing singleton axes (MATLAB's rule: a 28×28 matrix is also
28×28×1), along every axis with lengths ``a`` and ``b``:

* ``'full'``  length ``a + b − 1``; element ``k`` (0-based) is ``Σ_j A[k − j] B[j]`` with A zero outside.
* ``'same'``  length ``a``: the block of ``'full'`` starting at ``⌊b / 2⌋`` (0-based).
  For even ``b`` this is one later than ``scipy.signal``'s ``'same'`` for
  convolution, which starts at ``⌊(b − 1) / 2⌋``: ``conv([1 2 3 4], [1 1], 'same')``
  is ``[3 5 7 4]`` in MATLAB and ``[1 3 5 7]`` in scipy.
* ``'valid'`` length ``max(a − b + 1, 0)``: only the positions where ``B`` lies
  inside ``A``. As in MATLAB, a ``B`` longer than ``A`` gives an empty result
  (not an error, and not scipy's silent swap).

MATLAB is 1-based: MATLAB's ``C(k)`` is ``C[k − 1]`` here.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._validate import as_real_array, check_mode, result_dtype

SHAPES = ("full", "same", "valid")


def flipall(a) -> np.ndarray:
    """Reverse every axis: ``flipall(a)[k_1, …, k_d] = a[n_1−1−k_1, …, n_d−1−k_d]`` (the usual MATLAB helper)."""
    arr = as_real_array(a, "a")
    return np.flip(arr)


def _align(a: np.ndarray, b: np.ndarray):
    nd = max(a.ndim, b.ndim)
    return a.reshape(a.shape + (1,) * (nd - a.ndim)), b.reshape(b.shape + (1,) * (nd - b.ndim))


def _pad_widths(nb: int, shape: str) -> tuple[int, int]:
    """Zeros before/after an axis of A so that a valid correlation with flip(B) gives ``shape``.

    'full' output element t is ``Σ_j A[t − j] B[j]``: pad by nb − 1 on both sides.
    'same' keeps full[⌊nb/2⌋ : ⌊nb/2⌋ + na]: pad by (nb − 1 − ⌊nb/2⌋, ⌊nb/2⌋).
    'valid' keeps only the positions with B inside A: no padding.
    """
    if shape == "full":
        return nb - 1, nb - 1
    if shape == "same":
        return nb - 1 - nb // 2, nb // 2
    return 0, 0


def convn(a, b, shape: str = "full") -> np.ndarray:
    """N-d convolution with MATLAB's ``convn(A, B, shape)`` semantics (see module docstring).

    a, b: real arrays with at least one axis (trailing singleton axes are
    implied, as in MATLAB); shape: ``'full' | 'same' | 'valid'``. The result has
    ``max(a.ndim, b.ndim)`` axes.
    """
    a = as_real_array(a, "a", min_ndim=1)
    b = as_real_array(b, "b", min_ndim=1)
    check_mode(shape, SHAPES, "shape")
    if a.size == 0 or b.size == 0:
        raise ValueError(f"a and b must not be empty, got shapes {a.shape} and {b.shape}")
    a, b = _align(a, b)
    dtype = result_dtype(a, b)
    if shape == "valid" and any(nb > na for na, nb in zip(a.shape, b.shape)):
        return np.zeros(tuple(max(na - nb + 1, 0) for na, nb in zip(a.shape, b.shape)), dtype=dtype)
    padded = np.pad(a, [_pad_widths(nb, shape) for nb in b.shape])
    win = sliding_window_view(padded, b.shape)  # out_shape + b.shape, a view
    axes = tuple(range(a.ndim, 2 * a.ndim))
    return np.tensordot(win, np.flip(b), axes=(axes, tuple(range(b.ndim)))).astype(dtype, copy=False)


def conv2(a, b, shape: str = "full") -> np.ndarray:
    """2-D convolution with MATLAB's ``conv2(A, B, shape)`` semantics; a and b must be 2-D (MATLAB rejects N-d)."""
    a = as_real_array(a, "a", ndim=2)
    b = as_real_array(b, "b", ndim=2)
    return convn(a, b, shape)
