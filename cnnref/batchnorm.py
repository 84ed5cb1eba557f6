"""Batch normalisation of convolutional maps, training and evaluation mode (book: "Batch normalisation in a
convolutional network").

Shapes: ``x`` and ``y`` (N, C, H, W); ``gamma``, ``beta``, ``running_mean``, ``running_var`` (C,).
Every statistic is taken per channel ``c`` over its ``M = N·H·W`` entries ``x[n, c, p, q]``.

Training mode (the numbers of ``torch.nn.functional.batch_norm(x, None, None, gamma, beta,
training=True, eps=eps)``):

* ``mean[c] = (1/M) Σ_{n,p,q} x[n, c, p, q]``                                       ([eq-bn-mean])
* ``var[c]  = (1/M) Σ_{n,p,q} (x[n, c, p, q] − mean[c])²``, the *biased* variance    ([eq-bn-var])
* ``x_hat   = (x − mean[c]) / sqrt(var[c] + eps)``                                   ([eq-bn-normalise])
* ``y       = gamma[c] · x_hat + beta[c]``                                           ([eq-bn-forward])

``batchnorm2d_forward`` returns ``(y, cache)``; ``batchnorm2d_backward(dy, cache)`` returns
``(dx, dgamma, dbeta)`` by the compact form [eq-bn-dx-compact] with [eq-bn-dgamma-dbeta]:

    dx[n, c, p, q] = gamma[c] / (M σ[c]) · (M dy − Σ dy − x_hat · Σ dy·x_hat),   σ[c] = sqrt(var[c] + eps)

(sums over n, p, q of channel c). The cache is a dict with the keys of :data:`CACHE_KEYS`:

* ``"x_hat"``    (N, C, H, W)  the normalised input
* ``"x_centred"`` (N, C, H, W) ``x − mean``
* ``"mean"``, ``"var"`` (C,)   the batch statistics (biased variance)
* ``"inv_std"``  (C,)          ``1 / sqrt(var + eps)``
* ``"gamma"``    (C,)          the scale the forward pass used
* ``"eps"``      float         the ``eps`` the forward pass used

A channel needs at least two entries (``M ≥ 2``) in training mode, as in PyTorch.

Evaluation mode ([eq-bn-eval]) uses stored statistics instead of the batch's:
``y = gamma · (x − running_mean) / sqrt(running_var + eps) + beta``, an affine map per channel,
so its backward ([eq-bn-eval-backward]) is ``dx = gamma / sqrt(running_var + eps) · dy``.

``update_running_stats`` ([eq-bn-running]) updates the stored statistics as PyTorch does:
``new = (1 − momentum)·old + momentum·batch statistic``, where the batch statistic for
``running_var`` is the **unbiased** variance ``M/(M − 1) · var`` (PyTorch stores that one, while
it normalises with the biased one). It returns new arrays; PyTorch updates its buffers in place.
``momentum=None`` (PyTorch's cumulative average) is not supported.

Two tiers: the vectorised functions, and ``batchnorm2d_forward_loop`` /
``batchnorm2d_backward_loop``, which write the per-channel sums as loops and take the backward
step by step through the computation graph ([eq-bn-dxhat] … [eq-bn-dx-chain]).
"""

from __future__ import annotations

import numbers

import numpy as np

from ._validate import as_real_array, check_shape, result_dtype

__all__ = [
    "CACHE_KEYS",
    "batchnorm2d_backward",
    "batchnorm2d_backward_loop",
    "batchnorm2d_eval_backward",
    "batchnorm2d_eval_forward",
    "batchnorm2d_forward",
    "batchnorm2d_forward_loop",
    "update_running_stats",
]

CACHE_KEYS = ("x_hat", "x_centred", "mean", "var", "inv_std", "gamma", "eps")
_AXES = (0, 2, 3)  # every axis but the channel's


# --- argument checks ------------------------------------------------------------------------------


def _check_eps(eps) -> float:
    if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, numbers.Real):
        raise TypeError(f"eps must be a non-negative real number, got {eps!r} of type {type(eps).__name__}")
    if not (np.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a non-negative finite number, got {eps!r}")
    return float(eps)


def _check_momentum(momentum) -> float:
    if isinstance(momentum, (bool, np.bool_)) or not isinstance(momentum, numbers.Real):
        raise TypeError(f"momentum must be a real number in [0, 1], got {momentum!r} "
                        f"of type {type(momentum).__name__}")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must lie in [0, 1], got {momentum!r}")
    return float(momentum)


def _check_x(x, training: bool) -> np.ndarray:
    x = as_real_array(x, "x", ndim=4)
    if x.size == 0:
        raise ValueError(f"x must not be empty, got shape {x.shape}")
    if training and x.shape[0] * x.shape[2] * x.shape[3] < 2:
        raise ValueError(f"training mode needs more than one value per channel (N·H·W ≥ 2), "
                         f"got x of shape {x.shape} (NCHW)")
    return x


def _check_per_channel(a, name: str, c: int) -> np.ndarray:
    a = as_real_array(a, name, ndim=1)
    check_shape(a, (c,), name, f"one value per channel of x, C={c}")
    return a


def _check_positive_scale(var, eps, name: str) -> None:
    """``var + eps > 0`` in every channel (a constant channel with eps = 0 would divide by zero)."""
    if np.any(~(var + eps > 0)):
        bad = int(np.flatnonzero(~(var + eps > 0))[0])
        raise ValueError(f"{name} + eps must be positive in every channel, got {name} {float(var[bad])!r} "
                         f"and eps {eps!r} in channel {bad}")


def _check_cache(cache) -> dict:
    if not isinstance(cache, dict):
        raise TypeError(f"cache must be the dict returned by batchnorm2d_forward, got {type(cache).__name__}")
    missing = [k for k in CACHE_KEYS if k not in cache]
    if missing:
        raise ValueError(f"cache is missing the keys {missing}; batchnorm2d_forward returns a dict "
                         f"with keys {list(CACHE_KEYS)}")
    x_hat = as_real_array(cache["x_hat"], "cache['x_hat']", ndim=4)
    x_centred = as_real_array(cache["x_centred"], "cache['x_centred']", ndim=4)
    check_shape(x_centred, x_hat.shape, "cache['x_centred']", "the shape of cache['x_hat']")
    c = x_hat.shape[1]
    out = {"x_hat": x_hat, "x_centred": x_centred, "eps": _check_eps(cache["eps"])}
    for key in ("mean", "var", "inv_std", "gamma"):
        arr = as_real_array(cache[key], f"cache[{key!r}]", ndim=1)
        check_shape(arr, (c,), f"cache[{key!r}]", f"one value per channel of cache['x_hat'], C={c}")
        out[key] = arr
    return out


def _check_dy(dy, shape) -> np.ndarray:
    dy = as_real_array(dy, "dy", ndim=4)
    check_shape(dy, shape, "dy", "the shape of the batch-norm output y, which is that of x")
    return dy


# --- training mode ----------------------------------------------------------------------------------


def batchnorm2d_forward(x, gamma, beta, *, eps=1e-5):
    """Batch normalisation in training mode ([eq-bn-mean], [eq-bn-var], [eq-bn-normalise], [eq-bn-forward]).

    x: (N, C, H, W) with N·H·W ≥ 2; gamma, beta: (C,); eps ≥ 0 (``var + eps`` must be positive).
    Returns ``(y, cache)``: y (N, C, H, W), the numbers of
    ``torch.nn.functional.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)``,
    and the dict ``cache`` (keys :data:`CACHE_KEYS`, described in the module docstring).
    """
    x = _check_x(x, training=True)
    c = x.shape[1]
    gamma = _check_per_channel(gamma, "gamma", c)
    beta = _check_per_channel(beta, "beta", c)
    eps = _check_eps(eps)
    dtype = result_dtype(x, gamma, beta)
    x = x.astype(dtype, copy=False)
    mean = x.mean(axis=_AXES)                                   # [eq-bn-mean]
    x_centred = x - mean[None, :, None, None]
    var = np.mean(x_centred * x_centred, axis=_AXES)            # [eq-bn-var], biased
    _check_positive_scale(var, eps, "the batch variance")
    inv_std = (1.0 / np.sqrt(var + dtype.type(eps))).astype(dtype)
    x_hat = x_centred * inv_std[None, :, None, None]            # [eq-bn-normalise]
    y = gamma.astype(dtype)[None, :, None, None] * x_hat + beta.astype(dtype)[None, :, None, None]
    cache = {"x_hat": x_hat, "x_centred": x_centred, "mean": mean, "var": var, "inv_std": inv_std,
             "gamma": gamma.astype(dtype, copy=True), "eps": eps}
    return y, cache


def batchnorm2d_backward(dy, cache):
    """Gradients of a scalar E through batch normalisation in training mode, given ``dy = ∂E/∂y``.

    dy: (N, C, H, W), the shape of the forward output; cache: the dict from
    :func:`batchnorm2d_forward`. Returns ``(dx, dgamma, dbeta)`` with the shapes of x, (C,), (C,):

    * ``dbeta[c]  = Σ_{n,p,q} dy``, ``dgamma[c] = Σ_{n,p,q} dy · x_hat``         ([eq-bn-dgamma-dbeta])
    * ``dx = gamma[c] · inv_std[c] / M · (M dy − dbeta[c] − x_hat · dgamma[c])``  ([eq-bn-dx-compact])

    Each channel of ``dx`` sums to zero ([eq-bn-dx-sum]).
    """
    cache = _check_cache(cache)
    x_hat = cache["x_hat"]
    dy = _check_dy(dy, x_hat.shape)
    dtype = result_dtype(dy, x_hat)
    m = x_hat.shape[0] * x_hat.shape[2] * x_hat.shape[3]
    dbeta = dy.sum(axis=_AXES, dtype=dtype)
    dgamma = np.sum(dy * x_hat, axis=_AXES, dtype=dtype)
    scale = (cache["gamma"] * cache["inv_std"] / m).astype(dtype)
    dx = scale[None, :, None, None] * (m * dy - dbeta[None, :, None, None] - x_hat * dgamma[None, :, None, None])
    return dx.astype(dtype, copy=False), dgamma, dbeta


# --- evaluation mode ----------------------------------------------------------------------------------


def batchnorm2d_eval_forward(x, gamma, beta, running_mean, running_var, *, eps=1e-5) -> np.ndarray:
    """Batch normalisation in evaluation mode ([eq-bn-eval]): stored statistics, an affine map per channel.

    x: (N, C, H, W); gamma, beta, running_mean, running_var: (C,); ``running_var + eps > 0``.
    Returns y (N, C, H, W) = ``gamma · (x − running_mean) / sqrt(running_var + eps) + beta``, the
    numbers of ``torch.nn.functional.batch_norm(x, running_mean, running_var, gamma, beta,
    training=False, eps=eps)``.
    """
    x = _check_x(x, training=False)
    c = x.shape[1]
    gamma = _check_per_channel(gamma, "gamma", c)
    beta = _check_per_channel(beta, "beta", c)
    running_mean = _check_per_channel(running_mean, "running_mean", c)
    running_var = _check_per_channel(running_var, "running_var", c)
    eps = _check_eps(eps)
    _check_positive_scale(running_var, eps, "running_var")
    dtype = result_dtype(x, gamma, beta, running_mean, running_var)
    scale = (gamma / np.sqrt(running_var + eps)).astype(dtype)  # the slope of the affine map
    centred = x - running_mean.astype(dtype)[None, :, None, None]
    return (scale[None, :, None, None] * centred + beta.astype(dtype)[None, :, None, None]).astype(dtype, copy=False)


def batchnorm2d_eval_backward(dy, gamma, running_var, *, eps=1e-5) -> np.ndarray:
    """Input gradient of evaluation-mode batch normalisation ([eq-bn-eval-backward]).

    dy: (N, C, H, W); gamma, running_var: (C,). Returns dx (N, C, H, W) =
    ``gamma / sqrt(running_var + eps) · dy``: the statistics are constants, so each entry of
    ``dx`` depends on its own ``dy`` only.
    """
    dy = as_real_array(dy, "dy", ndim=4)
    c = dy.shape[1]
    gamma = _check_per_channel(gamma, "gamma", c)
    running_var = _check_per_channel(running_var, "running_var", c)
    eps = _check_eps(eps)
    _check_positive_scale(running_var, eps, "running_var")
    dtype = result_dtype(dy, gamma, running_var)
    scale = (gamma / np.sqrt(running_var + eps)).astype(dtype)
    return (scale[None, :, None, None] * dy).astype(dtype, copy=False)


def update_running_stats(running_mean, running_var, x, *, momentum=0.1):
    """The stored statistics after one training batch ``x``, as PyTorch updates them ([eq-bn-running]).

    running_mean, running_var: (C,); x: (N, C, H, W) with N·H·W ≥ 2; momentum in [0, 1].
    Returns ``(new_mean, new_var)`` (new arrays; the arguments are not modified):

    * ``new_mean = (1 − momentum) · running_mean + momentum · mean``
    * ``new_var  = (1 − momentum) · running_var + momentum · M/(M − 1) · var``

    with ``mean`` and the biased ``var`` of [eq-bn-mean], [eq-bn-var]: ``running_var`` holds the
    **unbiased** variance, as PyTorch's ``running_var`` does.
    """
    x = _check_x(x, training=True)
    c = x.shape[1]
    running_mean = _check_per_channel(running_mean, "running_mean", c)
    running_var = _check_per_channel(running_var, "running_var", c)
    momentum = _check_momentum(momentum)
    dtype = result_dtype(x, running_mean, running_var)
    m = x.shape[0] * x.shape[2] * x.shape[3]
    mean = x.mean(axis=_AXES, dtype=dtype)
    var_unbiased = np.sum((x - mean[None, :, None, None]) ** 2, axis=_AXES, dtype=dtype) / (m - 1)
    new_mean = (1 - momentum) * running_mean + momentum * mean
    new_var = (1 - momentum) * running_var + momentum * var_unbiased
    return new_mean.astype(dtype, copy=False), new_var.astype(dtype, copy=False)


# --- loop forms ---------------------------------------------------------------------------------------


def batchnorm2d_forward_loop(x, gamma, beta, *, eps=1e-5):
    """[eq-bn-mean] … [eq-bn-forward] channel by channel, every sum over (n, p, q) written out.

    Same arguments and results as :func:`batchnorm2d_forward`, for tiny inputs.
    """
    x = _check_x(x, training=True)
    n_, c_, h_, w_ = x.shape
    gamma = _check_per_channel(gamma, "gamma", c_)
    beta = _check_per_channel(beta, "beta", c_)
    eps = _check_eps(eps)
    dtype = result_dtype(x, gamma, beta)
    m = n_ * h_ * w_
    mean, var, inv_std = (np.zeros(c_, dtype=dtype) for _ in range(3))
    x_centred, x_hat, y = (np.zeros(x.shape, dtype=dtype) for _ in range(3))
    for c in range(c_):
        total = 0.0
        for n in range(n_):
            for p in range(h_):
                for q in range(w_):
                    total += x[n, c, p, q]
        mean[c] = total / m                                                     # [eq-bn-mean]
        total = 0.0
        for n in range(n_):
            for p in range(h_):
                for q in range(w_):
                    x_centred[n, c, p, q] = x[n, c, p, q] - mean[c]
                    total += x_centred[n, c, p, q] ** 2
        var[c] = total / m                                                      # [eq-bn-var]
    _check_positive_scale(var, eps, "the batch variance")
    for c in range(c_):
        inv_std[c] = 1.0 / np.sqrt(var[c] + eps)
        for n in range(n_):
            for p in range(h_):
                for q in range(w_):
                    x_hat[n, c, p, q] = x_centred[n, c, p, q] * inv_std[c]      # [eq-bn-normalise]
                    y[n, c, p, q] = gamma[c] * x_hat[n, c, p, q] + beta[c]      # [eq-bn-forward]
    cache = {"x_hat": x_hat, "x_centred": x_centred, "mean": mean, "var": var, "inv_std": inv_std,
             "gamma": gamma.astype(dtype, copy=True), "eps": eps}
    return y, cache


def batchnorm2d_backward_loop(dy, cache):
    """The backward pass step by step through the graph, channel by channel, sums
    written out. The steps, in reverse order of the forward computation (``d<name>``
    is ∂E/∂ of the quantity):

    1. ``dbeta[c] = Σ dy``, ``dgamma[c] = Σ dy·x_hat``       [eq-bn-dgamma-dbeta]
       ``dx_hat = gamma[c]·dy``                               [eq-bn-dxhat]
    2. ``d_inv_std[c] = Σ dx_hat · x_centred``               [eq-bn-dinvstd]
    3. ``dvar[c] = −½ (var[c] + eps)^(−3/2) · d_inv_std[c]`` [eq-bn-dvar]
    4. ``dx_centred = dx_hat·inv_std[c] + dvar[c]·2 x_centred / M``
                                                             [eq-bn-dcentred]
    5. ``dmean[c] = −Σ dx_centred``                          [eq-bn-dmean]
    6. ``dx = dx_centred + dmean[c] / M``                    [eq-bn-dx-chain]

    Same arguments and results as :func:`batchnorm2d_backward`, for tiny inputs.
    """
    cache = _check_cache(cache)
    x_hat, x_centred = cache["x_hat"], cache["x_centred"]
    dy = _check_dy(dy, x_hat.shape)
    n_, c_, h_, w_ = x_hat.shape
    m = n_ * h_ * w_
    gamma, var = cache["gamma"], cache["var"]
    inv_std, eps = cache["inv_std"], cache["eps"]
    dtype = result_dtype(dy, x_hat)
    dx = np.zeros(x_hat.shape, dtype=dtype)
    dx_hat = np.zeros(x_hat.shape, dtype=dtype)
    dx_centred = np.zeros(x_hat.shape, dtype=dtype)
    dgamma, dbeta = np.zeros(c_, dtype=dtype), np.zeros(c_, dtype=dtype)
    for c in range(c_):
        d_inv_std = 0.0
        for n in range(n_):
            for p in range(h_):
                for q in range(w_):
                    dbeta[c] += dy[n, c, p, q]
                    dgamma[c] += dy[n, c, p, q] * x_hat[n, c, p, q]
                    dx_hat[n, c, p, q] = gamma[c] * dy[n, c, p, q]
                    d_inv_std += dx_hat[n, c, p, q] * x_centred[n, c, p, q]
        dvar = -0.5 * (var[c] + eps) ** -1.5 * d_inv_std
        dmean = 0.0
        for n in range(n_):
            for p in range(h_):
                for q in range(w_):
                    dx_centred[n, c, p, q] = (dx_hat[n, c, p, q] * inv_std[c]
                                              + dvar * 2.0 * x_centred[n, c, p, q] / m)
                    dmean -= dx_centred[n, c, p, q]
        for n in range(n_):
            for p in range(h_):
                for q in range(w_):
                    dx[n, c, p, q] = dx_centred[n, c, p, q] + dmean / m
    return dx, dgamma, dbeta
