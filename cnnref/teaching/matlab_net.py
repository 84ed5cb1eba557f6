"""The classic MATLAB-style CNN, written in source 004's form (book: "The whole network, end to end").

Everything is laid out the way classic MATLAB/Octave CNN code lays it out:

* a batch of single-channel images is one stack ``x`` of shape (H, W, N): example ``n`` is
  ``x[:, :, n]`` (MATLAB ``x(:, :, n)``);
* a layer's maps are a Python list (MATLAB: a cell array) of such stacks;
* kernels are *convolution* kernels for MATLAB's ``convn`` (the kernel is flipped inside the
  sum): ``params["k1"][i, j]`` is the (K, K) kernel from input map ``i`` to output map ``j``
  (source 004's ``a_{ij}``), so ``k1`` has shape (C_in, C_1, K_1, K_1);
* the flatten concatenates the maps in MATLAB's column-major order ``reshape(a, h*w, N)``
  ([eq-dh-flatten-matlab]); the output layer works on columns: ``o = σ(ffW · fv + ffb)``,
  targets ``t`` are (n_out, N), one column per example.

The architecture is ``S`` stages of (valid convolution → sigmoid → mean pooling by ``s``),
then one sigmoid output layer, and the loss

    E = ½ Σ (o − t)² / N                                                   [eq-wn-loss]

Parameters (a dict of float arrays; ``S`` is the number of ``k*`` keys):

* ``k{s}``: (C_{s−1}, C_s, K_s, K_s) convolution kernels, C_0 = 1;  ``b{s}``: (C_s,) biases;
* ``ffW``: (n_out, D) output weights, D = C_S · h_S · w_S;  ``ffb``: (n_out,).

The backward pass follows source 004 with its slips corrected (book: "Transposition",
"Batches in the third dimension"): deltas ``d`` are derivatives of the *summed* loss
with respect to the pre-activations; the input gradient is ``Σ_j convn(d_j, rot180(k_ij), 'full')``
([eq-ml-src-input-grad]); the kernel gradient is ``convn(flipall(a_i), d_j, 'valid') / N``
([eq-bs-one-liner], [eq-bs-mean]); the bias gradient ``Σ d_j / N`` ([eq-bs-bias]). The one
division by N at the end turns the summed-loss gradients into those of E.
"""

from __future__ import annotations

import numpy as np

from .._validate import as_int, as_real_array, check_shape
from ..activations import sigmoid
from .. import network
from ..matlab import convn, flipall

__all__ = [
    "init_params", "stages", "conv_layer", "mean_pool", "mean_pool_backward", "flatten_columns",
    "unflatten_columns", "forward", "loss", "backward", "loss_and_grads",
]


def stages(params) -> int:
    """Number of convolution stages S in ``params`` (keys ``k1``, ``b1``, …, ``kS``, ``bS``, ``ffW``, ``ffb``)."""
    return network.stages(params, kernel="k", head=("ffW", "ffb"))


def init_params(rng, in_hw, channels, kernels, pools, n_out, scale=0.5) -> dict:
    """Random parameters for the network (normal entries times ``scale`` / sqrt(fan-in)).

    rng: ``np.random.Generator``; in_hw: (H, W) of the input images; channels, kernels,
    pools: one int per stage (maps C_s, kernel size K_s, pooling factor s_s); n_out: output
    units. Raises ``ValueError`` when a map size is not divisible by its pooling factor.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    if not (len(channels) == len(kernels) == len(pools)) or len(channels) == 0:
        raise ValueError(f"channels, kernels and pools need one entry per stage, got lengths "
                         f"{len(channels)}, {len(kernels)}, {len(pools)}")
    h, w = (as_int(v, "in_hw") for v in in_hw)
    c_prev, params = 1, {}
    for s, (c, k, p) in enumerate(zip(channels, kernels, pools), start=1):
        c, k, p = as_int(c, "channels"), as_int(k, "kernels"), as_int(p, "pools")
        h, w = h - k + 1, w - k + 1
        if h < 1 or w < 1 or h % p or w % p:
            raise ValueError(f"stage {s}: a {k}x{k} valid convolution gives {h}x{w} maps, which pooling "
                             f"by {p} must divide exactly (positive sizes)")
        params[f"k{s}"] = rng.standard_normal((c_prev, c, k, k)) * scale / np.sqrt(c_prev * k * k)
        params[f"b{s}"] = np.zeros(c)
        h, w, c_prev = h // p, w // p, c
    d = c_prev * h * w
    params["ffW"] = rng.standard_normal((as_int(n_out, "n_out"), d)) * scale / np.sqrt(d)
    params["ffb"] = np.zeros(n_out)
    return params


def conv_layer(maps, k, b) -> list:
    """Complete inputs of one layer: source 004's forward (S004-E02) with ``x_i`` ([eq-wn-forward], [eq-ml-layer]).

    maps: list of C_in stacks (H, W, N) (or one array (C_in, H, W, N)); k: (C_in, C_out, K, K)
    convolution kernels; b: (C_out,). Returns the list of C_out stacks
    ``z_j = b_j + Σ_i convn(maps[i], k[i, j], 'valid')``, each (H − K + 1, W − K + 1, N).
    A 2-D kernel against a 3-D stack is MATLAB's trailing-singleton rule: every example is
    convolved on its own.
    """
    maps = [as_real_array(m, "maps[i]", ndim=3) for m in maps]
    k = as_real_array(k, "k", ndim=4)
    b = as_real_array(b, "b", ndim=1)
    if k.shape[0] != len(maps):
        raise ValueError(f"k must have shape (C_in, C_out, K, K) with C_in = {len(maps)} input maps, got {k.shape}")
    check_shape(b, (k.shape[1],), "b", f"one bias per output map, C_out={k.shape[1]}")
    if len({m.shape for m in maps}) != 1:
        raise ValueError(f"all input maps must have the same shape, got {[m.shape for m in maps]}")
    out = []
    for j in range(k.shape[1]):
        z = b[j] + sum(convn(maps[i], k[i, j], "valid") for i in range(len(maps)))
        out.append(z)
    return out


def mean_pool(a, s: int) -> np.ndarray:
    """Mean pooling by ``s`` of a stack (H, W, N) the MATLAB way: ``convn(a, ones(s)/s², 'valid')(1:s:end, 1:s:end, :)``.

    H and W must be divisible by ``s`` (the classic code assumes it). Returns (H/s, W/s, N).
    """
    a = as_real_array(a, "a", ndim=3)
    s = as_int(s, "s")
    if s < 1 or a.shape[0] % s or a.shape[1] % s:
        raise ValueError(f"pooling factor s must be >= 1 and divide H and W, got s={s} for a map of shape {a.shape}")
    return convn(a, np.ones((s, s)) / s**2, "valid")[::s, ::s, :]


def mean_pool_backward(d, s: int) -> np.ndarray:
    """Gradient of :func:`mean_pool`: ``kron(d, ones(s, s)) / s²`` (MATLAB's ``expand(d, [s s 1]) / s^2``).

    d: (h, w, N) gradient with respect to the pooled maps. Returns (s·h, s·w, N) ([eq-avgpool-backward]).
    """
    d = as_real_array(d, "d", ndim=3)
    s = as_int(s, "s")
    if s < 1:
        raise ValueError(f"pooling factor s must be >= 1, got {s}")
    return np.kron(d, np.ones((s, s, 1))) / s**2


def flatten_columns(maps) -> np.ndarray:
    """The feature vectors ``fv`` (D, N): every map (h, w, N) reshaped column-major to (h·w, N), stacked ([eq-dh-flatten-matlab]).

    Entry ``(j·h·w + q·h + p, n)`` is ``maps[j][p, q, n]``: MATLAB's ``reshape(a, h*w, N)``
    runs down the columns of each map first.
    """
    maps = [as_real_array(m, "maps[j]", ndim=3) for m in maps]
    if not maps or len({m.shape for m in maps}) != 1:
        raise ValueError(f"need at least one map and all of one shape, got {[m.shape for m in maps]}")
    h, w, n = maps[0].shape
    return np.concatenate([m.reshape(h * w, n, order="F") for m in maps], axis=0)


def unflatten_columns(fv, shape) -> list:
    """Inverse of :func:`flatten_columns`: (D, N) → list of C stacks of ``shape`` = (h, w, N), D = C·h·w."""
    fv = as_real_array(fv, "fv", ndim=2)
    h, w, n = (as_int(v, "shape") for v in shape)
    if fv.shape[1] != n or fv.shape[0] % (h * w):
        raise ValueError(f"fv must have shape (C·h·w, N) = (C·{h * w}, {n}), got {fv.shape}")
    return [fv[j * h * w:(j + 1) * h * w].reshape(h, w, n, order="F") for j in range(fv.shape[0] // (h * w))]


def forward(params, x, pools):
    """Forward pass. x: (H, W, N) stack of images; pools: one pooling factor per stage.

    Returns ``(o, cache)``: o (n_out, N) the sigmoid outputs; cache (dict) holds, per stage
    ``s`` (1-based), the lists ``z{s}`` (complete inputs), ``a{s}`` (sigmoid outputs),
    ``p{s}`` (pooled maps), plus ``x``, ``fv`` (D, N) and ``o``.
    """
    S = stages(params)
    if len(pools) != S:
        raise ValueError(f"pools needs one factor per stage: {S} stages, got {len(pools)} factors")
    x = as_real_array(x, "x", ndim=3)
    maps = [x]
    cache = {"x": x}
    for s in range(1, S + 1):
        z = conv_layer(maps, params[f"k{s}"], params[f"b{s}"])
        a = [sigmoid(zj) for zj in z]
        maps = [mean_pool(aj, pools[s - 1]) for aj in a]
        cache[f"z{s}"], cache[f"a{s}"], cache[f"p{s}"] = z, a, maps
    fv = flatten_columns(maps)
    ffW = as_real_array(params["ffW"], "ffW", ndim=2)
    ffb = as_real_array(params["ffb"], "ffb", ndim=1)
    if ffW.shape[1] != fv.shape[0]:
        raise ValueError(f"ffW must have shape (n_out, D) with D = {fv.shape[0]} features, got {ffW.shape}")
    check_shape(ffb, (ffW.shape[0],), "ffb", f"one bias per output unit, n_out={ffW.shape[0]}")
    o = sigmoid(ffW @ fv + ffb[:, None])
    cache["fv"], cache["o"] = fv, o
    return o, cache


def _check_target(t, o):
    t = as_real_array(t, "t", ndim=2)
    check_shape(t, o.shape, "t", "(n_out, N): one target column per example")
    return t


def loss(params, x, t, pools) -> float:
    """E = ½ Σ (o − t)² / N ([eq-wn-loss]); t: (n_out, N)."""
    o, _ = forward(params, x, pools)
    t = _check_target(t, o)
    return float(0.5 * np.sum((o - t) ** 2) / o.shape[1])


def backward(params, cache, t, pools) -> dict:
    """Gradients of E ([eq-wn-loss]) for every parameter, in source 004's form; same keys and shapes as ``params``.

    t: (n_out, N). The deltas (of the summed loss) are stored back into ``cache`` as
    ``od`` (n_out, N), ``fvd`` (D, N) and ``d{s}`` (list of stacks), for inspection.
    """
    S = stages(params)
    o, fv = cache["o"], cache["fv"]
    t = _check_target(t, o)
    N = o.shape[1]
    e = o - t
    od = e * o * (1 - o)                                 # [eq-dh-loss-grad] times σ' written with the output [eq-dh-sigma-out]
    fvd = params["ffW"].T @ od                            # [eq-dh-column]: the transpose, column form
    grads = {"ffW": od @ fv.T / N, "ffb": od.sum(axis=1) / N}
    p_shape = cache[f"p{S}"][0].shape
    dp = unflatten_columns(fvd, p_shape)                  # gradient w.r.t. the last pooled maps
    cache["od"], cache["fvd"] = od, fvd
    for s in range(S, 0, -1):
        a = cache[f"a{s}"]
        d = [aj * (1 - aj) * mean_pool_backward(dpj, pools[s - 1]) for aj, dpj in zip(a, dp)]  # [eq-avgpool-backward], then σ' [eq-dh-sigma-out]
        cache[f"d{s}"] = d
        inputs = [cache["x"]] if s == 1 else cache[f"p{s - 1}"]
        k = params[f"k{s}"]
        dk = np.zeros_like(k, dtype=np.float64)
        for i in range(k.shape[0]):
            for j in range(k.shape[1]):
                g = convn(flipall(inputs[i]), d[j], "valid")   # [eq-bs-one-liner]: (K, K, 1), summed over the batch
                dk[i, j] = g[:, :, 0] / N                         # [eq-bs-mean]
        grads[f"k{s}"] = dk
        grads[f"b{s}"] = np.array([dj.sum() for dj in d]) / N   # [eq-bs-bias]
        if s > 1:
            dp = [sum(convn(d[j], flipall(k[i, j]), "full") for j in range(k.shape[1]))  # [eq-ml-src-input-grad]
                  for i in range(k.shape[0])]
    return grads


def loss_and_grads(params, x, t, pools):
    """``(E, grads)``: the loss [eq-wn-loss] and :func:`backward`'s gradients, in one forward pass."""
    o, cache = forward(params, x, pools)
    t = _check_target(t, o)
    E = float(0.5 * np.sum((o - t) ** 2) / o.shape[1])
    return E, backward(params, cache, t, pools)
