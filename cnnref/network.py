"""The MATLAB-style network of :mod:`cnnref.teaching.matlab_net`, rebuilt from cnnref's NCHW layers (book: "The whole network").

Same architecture: ``S`` stages of (valid cross-correlation layer → sigmoid → mean pooling),
then ``flatten`` (C-order) → dense → sigmoid, loss ``E = ½ Σ (o − t)² / N``
([eq-wn-loss], ``half_squared_error(..., reduction="mean")``).

Parameters (a dict of float arrays):

* ``w{s}``: (C_s, C_{s−1}, K_s, K_s) OIHW cross-correlation kernels;  ``b{s}``: (C_s,);
* ``W``: (n_out, D), D = C_S · h_S · w_S, columns in C-order (channel, row, column);  ``c``: (n_out,).

Data: ``x`` (N, C_0, H, W), targets ``t`` (N, n_out), one row per example.

:func:`from_matlab` / :func:`to_matlab` map parameters between the two layouts exactly
([eq-wn-param-map]): ``w{s}[o, c] = rot180(k{s}[c, o])`` (correlation vs convolution) and
the columns of ``ffW`` permuted from MATLAB's column-major flatten to numpy's C-order
([eq-dh-flatten-matlab], [eq-flatten]); :func:`stack_to_nchw` / :func:`nchw_to_stack` move the
data between (H, W, N) and (N, 1, H, W).
"""

from __future__ import annotations

import numpy as np

from ._validate import as_int, as_real_array, check_shape
from .activations import sigmoid, sigmoid_prime
from .conv import conv2d_backward, conv2d_forward
from .dense import dense_backward, dense_forward, flatten, unflatten
from .losses import half_squared_error, half_squared_error_grad
from .pooling import avgpool2d_backward, avgpool2d_forward

__all__ = [
    "stages", "forward", "loss", "backward", "loss_and_grads", "fv_permutation", "from_matlab",
    "to_matlab", "stack_to_nchw", "nchw_to_stack",
]


def stages(params) -> int:
    """Number of convolution stages S in ``params`` (keys ``w1``, ``b1``, …, ``wS``, ``bS``, ``W``, ``c``)."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    s = 0
    while f"w{s + 1}" in params:
        s += 1
    missing = [k for k in [f"b{i}" for i in range(1, s + 1)] + ["W", "c"] if k not in params]
    if s == 0 or missing:
        raise ValueError(f"params must hold w1, b1, …, wS, bS, W, c (S >= 1); missing "
                         f"{missing if s else ['w1', *missing]}, given keys {sorted(params)}")
    return s


def forward(params, x, pools):
    """Forward pass. x: (N, C_0, H, W); pools: one pooling factor per stage. Returns ``(o, cache)``, o: (N, n_out).

    cache holds ``x``, per stage ``z{s}``, ``a{s}`` (sigmoid), ``p{s}`` (pooled), then
    ``f`` (N, D) the flattened features, ``s`` (N, n_out) the output pre-activation and ``o``.
    """
    S = stages(params)
    if len(pools) != S:
        raise ValueError(f"pools needs one factor per stage: {S} stages, got {len(pools)} factors")
    x = as_real_array(x, "x", ndim=4)
    cache = {"x": x}
    h = x
    for s in range(1, S + 1):
        z = conv2d_forward(h, params[f"w{s}"], params[f"b{s}"])   # [eq-layer-forward]
        a = sigmoid(z)
        h = avgpool2d_forward(a, pools[s - 1])                    # [eq-avgpool-forward]
        cache[f"z{s}"], cache[f"a{s}"], cache[f"p{s}"] = z, a, h
    f = flatten(h)                                                # [eq-flatten]
    pre = dense_forward(f, params["W"], params["c"])              # [eq-dense-forward]
    o = sigmoid(pre)
    cache["f"], cache["s"], cache["o"] = f, pre, o
    return o, cache


def loss(params, x, t, pools) -> float:
    """E = ½ Σ (o − t)² / N ([eq-wn-loss]); t: (N, n_out)."""
    o, _ = forward(params, x, pools)
    return half_squared_error(o, t, reduction="mean")


def backward(params, cache, t, pools) -> dict:
    """Gradients of E for every parameter from cnnref's layer backward functions; same keys/shapes as ``params``."""
    S = stages(params)
    o = cache["o"]
    do = half_squared_error_grad(o, t, reduction="mean")          # [eq-half-sse-grad] / N
    ds = do * sigmoid_prime(cache["s"])                           # σ' at the pre-activation [eq-dh-dy-recursion]
    df, dW, dc = dense_backward(ds, cache["f"], params["W"])      # [eq-dense-backward]
    grads = {"W": dW, "c": dc}
    dh = unflatten(df, cache[f"p{S}"].shape)
    for s in range(S, 0, -1):
        da = avgpool2d_backward(dh, cache[f"a{s}"], pools[s - 1])  # [eq-avgpool-backward]
        dz = da * sigmoid_prime(cache[f"z{s}"])                     # [eq-delta-activation]
        inp = cache["x"] if s == 1 else cache[f"p{s - 1}"]
        dh, grads[f"w{s}"], grads[f"b{s}"] = conv2d_backward(dz, inp, params[f"w{s}"])  # [eq-input-grad] …
    return grads


def loss_and_grads(params, x, t, pools):
    """``(E, grads)`` from one forward and one backward pass."""
    o, cache = forward(params, x, pools)
    return half_squared_error(o, t, reduction="mean"), backward(params, cache, t, pools)


# --- moving between the MATLAB layout and NCHW ---------------------------------------------------


def fv_permutation(channels, h, w) -> np.ndarray:
    """Index array ``perm`` (D,) with ``f_C[:, m] = fv_F[perm[m], :]ᵀ`` ([eq-wn-param-map]).

    ``f_C`` is numpy's C-order flatten (channel, row, column) and ``fv_F`` MATLAB's column-major
    one (channel, column, row): position ``m = c·h·w + p·w + q`` of the C-order vector holds
    map ``c``, row ``p``, column ``q``, which MATLAB stores at ``c·h·w + q·h + p``.
    """
    channels, h, w = as_int(channels, "channels"), as_int(h, "h"), as_int(w, "w")
    if min(channels, h, w) < 1:
        raise ValueError(f"channels, h and w must be >= 1, got {channels}, {h}, {w}")
    c, p, q = np.meshgrid(np.arange(channels), np.arange(h), np.arange(w), indexing="ij")
    return (c * h * w + q * h + p).reshape(-1)


def _last_maps(params_k, in_hw, pools):
    h, w = (as_int(v, "in_hw") for v in in_hw)
    s = 0
    while f"k{s + 1}" in params_k or f"w{s + 1}" in params_k:
        k = params_k.get(f"k{s + 1}", params_k.get(f"w{s + 1}"))
        h, w = (h - k.shape[-1] + 1) // pools[s], (w - k.shape[-1] + 1) // pools[s]
        s += 1
    return h, w


def from_matlab(mparams, in_hw, pools) -> dict:
    """NCHW parameters equal in effect to the MATLAB-layout ``mparams`` of :mod:`cnnref.teaching.matlab_net` ([eq-wn-param-map]).

    ``w{s}[o, c] = rot180(k{s}[c, o])``, ``b{s}`` unchanged, ``W = ffW[:, perm]`` with
    ``perm = fv_permutation(C_S, h_S, w_S)``, ``c = ffb``. in_hw: (H, W) of the input images.
    """
    out = {}
    S = 0
    while f"k{S + 1}" in mparams:
        S += 1
        k = as_real_array(mparams[f"k{S}"], f"k{S}", ndim=4)
        out[f"w{S}"] = np.ascontiguousarray(k.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
        out[f"b{S}"] = as_real_array(mparams[f"b{S}"], f"b{S}", ndim=1).copy()
    if S == 0:
        raise ValueError(f"mparams must hold k1, b1, …, ffW, ffb; given keys {sorted(mparams)}")
    h, w = _last_maps(mparams, in_hw, pools)
    ffW = as_real_array(mparams["ffW"], "ffW", ndim=2)
    C = out[f"w{S}"].shape[0]
    check_shape(ffW, (ffW.shape[0], C * h * w), "ffW", f"(n_out, C·h·w) with C={C}, h={h}, w={w}")
    out["W"] = ffW[:, fv_permutation(C, h, w)]
    out["c"] = as_real_array(mparams["ffb"], "ffb", ndim=1).copy()
    return out


def to_matlab(params, in_hw, pools) -> dict:
    """Inverse of :func:`from_matlab` (also maps gradients: both maps are permutations and flips)."""
    out = {}
    S = stages(params)
    for s in range(1, S + 1):
        w = as_real_array(params[f"w{s}"], f"w{s}", ndim=4)
        out[f"k{s}"] = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
        out[f"b{s}"] = as_real_array(params[f"b{s}"], f"b{s}", ndim=1).copy()
    h, w = _last_maps(params, in_hw, pools)
    W = as_real_array(params["W"], "W", ndim=2)
    C = params[f"w{S}"].shape[0]
    check_shape(W, (W.shape[0], C * h * w), "W", f"(n_out, C·h·w) with C={C}, h={h}, w={w}")
    ffW = np.empty_like(W)
    ffW[:, fv_permutation(C, h, w)] = W
    out["ffW"] = ffW
    out["ffb"] = as_real_array(params["c"], "c", ndim=1).copy()
    return out


def stack_to_nchw(x) -> np.ndarray:
    """(H, W, N) stack → (N, 1, H, W) batch: example ``n`` of the stack is ``x[:, :, n]``."""
    x = as_real_array(x, "x", ndim=3)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[:, None])


def nchw_to_stack(x) -> np.ndarray:
    """(N, 1, H, W) batch → (H, W, N) stack (inverse of :func:`stack_to_nchw`)."""
    x = as_real_array(x, "x", ndim=4)
    if x.shape[1] != 1:
        raise ValueError(f"x must have a single channel, shape (N, 1, H, W), got {x.shape}")
    return np.ascontiguousarray(x[:, 0].transpose(1, 2, 0))
