"""Global average pooling: one mean per map (book: "Residual connections and global average pooling").

Shapes (NCHW):

* ``x``  : (N, C, H, W)   the last feature maps
* ``y``  : (N, C)         one number per map and example

Forward ([eq-res-gap-forward]), the mean of every map over all its positions:

    y[n, c] = 1/(H·W) · Σ_p Σ_q x[n, c, p, q]

Backward ([eq-res-gap-backward]): every position of map c received the same weight 1/(H·W), so

    dx[n, c, p, q] = dy[n, c] / (H·W)      for every (p, q)

It is mean pooling with a single window the size of the map, ``avgpool2d_forward(x, (H, W))``
reshaped to (N, C) ([eq-res-gap-as-avgpool]); it has no parameters and, being linear, its backward
is its transpose. Two tiers: ``global_avgpool2d_forward`` / ``global_avgpool2d_backward`` with numpy
reductions and broadcasting, ``global_avgpool2d_forward_loop`` / ``global_avgpool2d_backward_loop``
the same sums as loops over (n, c, p, q).
"""

from __future__ import annotations

import numpy as np

from ._validate import as_real_array, as_shape, check_shape, result_dtype


def _check_x(x) -> np.ndarray:
    x = as_real_array(x, "x", ndim=4)
    if x.size == 0:
        raise ValueError(f"x must not be empty, got shape {x.shape}")
    return x


def _check_backward(dy, x_shape) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """``dy`` (N, C) and ``x_shape`` (N, C, H, W), four positive ints whose first two are dy's shape."""
    x_shape = as_shape(x_shape, "x_shape", ndim=4, minimum=1, why="the forward input's (N, C, H, W)")
    dy = as_real_array(dy, "dy", ndim=2)
    check_shape(dy, x_shape[:2], "dy", f"(N, C) of the forward input's shape {x_shape}")
    return dy, x_shape


def global_avgpool2d_forward(x) -> np.ndarray:
    """The mean of every map ([eq-res-gap-forward]). x: (N, C, H, W) -> y: (N, C).

    Same numbers as ``torch.nn.functional.adaptive_avg_pool2d(x, 1)`` (which keeps two axes of
    size 1) and ``x.mean(dim=(2, 3))``. float32 stays float32; integers become float64.
    """
    x = _check_x(x)
    dtype = result_dtype(x)
    return x.sum(axis=(2, 3), dtype=dtype) / dtype.type(x.shape[2] * x.shape[3])


def global_avgpool2d_backward(dy, x_shape) -> np.ndarray:
    """Gradient of global average pooling ([eq-res-gap-backward]).

    dy: (N, C), the gradient of the loss with respect to the pooled output; x_shape: the forward
    input's shape (N, C, H, W) (the values of x are not needed: the map is linear).
    Returns dx: (N, C, H, W), ``dy[n, c] / (H·W)`` at every position of map (n, c).
    """
    dy, (n, c, h, w) = _check_backward(dy, x_shape)
    share = dy / result_dtype(dy).type(h * w)  # (N, C): what each position of a map receives
    return np.broadcast_to(share[:, :, None, None], (n, c, h, w)).copy()


# --- loop forms -------------------------------------------------------------------------------


def global_avgpool2d_forward_loop(x) -> np.ndarray:
    """[eq-res-gap-forward] as loops: add every position of every map, then divide by H·W."""
    x = _check_x(x)
    n_, c_, h, w = x.shape
    y = np.zeros((n_, c_), dtype=result_dtype(x))
    for n in range(n_):
        for c in range(c_):
            acc = 0.0
            for p in range(h):
                for q in range(w):
                    acc += x[n, c, p, q]
            y[n, c] = acc / (h * w)
    return y


def global_avgpool2d_backward_loop(dy, x_shape) -> np.ndarray:
    """[eq-res-gap-backward] as loops: dy[n, c] / (H W) at every (p, q)."""
    dy, (n_, c_, h, w) = _check_backward(dy, x_shape)
    dx = np.zeros((n_, c_, h, w), dtype=result_dtype(dy))
    for n in range(n_):
        for c in range(c_):
            for p in range(h):
                for q in range(w):
                    dx[n, c, p, q] = dy[n, c] / (h * w)
    return dx
