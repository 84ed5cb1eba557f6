"""Single-channel 2-D cross-correlation and convolution (book: Part I, "Convolution and cross-correlation").

Indices are 0-based. For an image ``i`` and a kernel ``k`` of shape ``(K_h, K_w)``

* cross-correlation ([eq-corr-def])
  ``(i ⋆ k)[x, y] = Σ_{u, v} i[x + u, y + v] · k[u, v]``
* convolution ([eq-conv-def])
  ``(i ∗ k)[x, y] = Σ_{u, v} i[x − u, y − v] · k[u, v]``

and the two are related by the flip ``i ∗ k = i ⋆ rot180(k)`` up to where the
output is placed ([eq-flip-relation]).

The three ``mode`` values follow ``scipy.signal.correlate2d`` /
``scipy.signal.convolve2d`` exactly:

* ``"valid"``: only positions where the kernel lies wholly inside the image,
  shape ``(H − K_h + 1, W − K_w + 1)``. Unlike scipy, a kernel larger than the
  image is an error here, not a silent swap of the two arguments.
* ``"full"``: every position where kernel and image overlap at all (the image
  is treated as zero outside its bounds), shape ``(H + K_h − 1, W + K_w − 1)``.
* ``"same"``: the part of ``"full"`` with the image's shape. scipy keeps the
  block of ``"full"`` that starts at ``K // 2`` for correlation and at
  ``(K − 1) // 2`` for convolution; the two differ only for even ``K``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._validate import as_real_array, check_image_kernel, check_mode, result_dtype

MODES = ("valid", "full", "same")


def rot180(a) -> np.ndarray:
    """Rotate by 180° in the last two axes: ``rot180(a)[..., u, v] = a[..., K_h-1-u, K_w-1-v]``.

    Returns a view; the leading axes (channels, batch) are untouched.
    """
    arr = as_real_array(a, "a", min_ndim=2)
    return arr[..., ::-1, ::-1]


def _correlate_valid(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    windows = sliding_window_view(image, kernel.shape)  # (H-K_h+1, W-K_w+1, K_h, K_w), a view
    return np.einsum("xyuv,uv->xy", windows, kernel, optimize=True).astype(result_dtype(image, kernel), copy=False)


def _full_then_crop(image, kernel, mode, same_start):
    kh, kw = kernel.shape
    if mode == "valid":
        if kh > image.shape[0] or kw > image.shape[1]:
            raise ValueError(
                f"mode='valid' needs a kernel no larger than the image in each axis; "
                f"got image {image.shape} and kernel {kernel.shape}"
            )
        return _correlate_valid(image, kernel)
    padded = np.pad(image, ((kh - 1, kh - 1), (kw - 1, kw - 1)))
    full = _correlate_valid(padded, kernel)
    if mode == "full":
        return full
    r0, c0 = same_start(kh), same_start(kw)
    return full[r0 : r0 + image.shape[0], c0 : c0 + image.shape[1]]


def correlate2d(image, kernel, mode: str = "valid") -> np.ndarray:
    """Cross-correlation ``image ⋆ kernel`` ([eq-corr-def]); same numbers as ``scipy.signal.correlate2d``.

    image: (H, W); kernel: (K_h, K_w); mode: ``"valid" | "full" | "same"`` (see module docstring).
    """
    image, kernel = check_image_kernel(image, kernel)
    check_mode(mode, MODES)
    return _full_then_crop(image, kernel, mode, same_start=lambda k: k // 2)


def convolve2d(image, kernel, mode: str = "valid") -> np.ndarray:
    """Convolution ``image ∗ kernel`` ([eq-conv-def]); same numbers as ``scipy.signal.convolve2d``.

    Computed as a correlation with the rotated kernel ([eq-flip-relation]).
    image: (H, W); kernel: (K_h, K_w); mode: ``"valid" | "full" | "same"``.
    """
    image, kernel = check_image_kernel(image, kernel)
    check_mode(mode, MODES)
    return _full_then_crop(image, kernel[::-1, ::-1], mode, same_start=lambda k: (k - 1) // 2)


# --- loop forms: the sums of the book, index for index (tiny inputs only) ---------------------


def correlate2d_loop(image, kernel) -> np.ndarray:
    """Valid cross-correlation as the double sum of [eq-corr-def], one output pixel at a time."""
    image, kernel = check_image_kernel(image, kernel)
    (H, W), (Kh, Kw) = image.shape, kernel.shape
    if Kh > H or Kw > W:
        raise ValueError(f"kernel {kernel.shape} is larger than image {image.shape}")
    out = np.zeros((H - Kh + 1, W - Kw + 1), dtype=result_dtype(image, kernel))
    for x in range(out.shape[0]):
        for y in range(out.shape[1]):
            for u in range(Kh):
                for v in range(Kw):
                    out[x, y] += image[x + u, y + v] * kernel[u, v]
    return out


def convolve2d_loop(image, kernel) -> np.ndarray:
    """Valid convolution as the double sum of [eq-conv-def].

    The sum ``Σ_{u,v} i[x − u, y − v] k[u, v]`` is defined only for
    ``x >= K_h − 1`` and ``y >= K_w − 1``; the valid result stores output
    pixel ``(x, y)`` at index ``(x − (K_h − 1), y − (K_w − 1))``, which is the
    implicit shift by ``K − 1`` discussed in the book.
    """
    image, kernel = check_image_kernel(image, kernel)
    (H, W), (Kh, Kw) = image.shape, kernel.shape
    if Kh > H or Kw > W:
        raise ValueError(f"kernel {kernel.shape} is larger than image {image.shape}")
    out = np.zeros((H - Kh + 1, W - Kw + 1), dtype=result_dtype(image, kernel))
    for x in range(Kh - 1, H):
        for y in range(Kw - 1, W):
            for u in range(Kh):
                for v in range(Kw):
                    out[x - (Kh - 1), y - (Kw - 1)] += image[x - u, y - v] * kernel[u, v]
    return out
