"""A convolutional network as a stack of stages, forward and backward from cnnref's layers.

The one network of the book ("The whole network", "Training a CNN on digits")::

    x ─▶ S × [ conv (stride 1, zero padding) ─▶ φ ─▶ pool ] ─▶ flatten ─▶ dense ─▶ out

====================  ================================  ===========================================
stage ``s`` = 1 … S   computes                          shape (batch of N)
====================  ================================  ===========================================
convolution           z^s = w^s ⋆ p^{s−1} + b^s          (N, C_s, ·, ·)   [eq-layer-forward]
activation            a^s = φ(z^s)                       (N, C_s, ·, ·)
pooling               p^s = pool(a^s)                    (N, C_s, h_s, w_s); p^0 = x
flatten               f = flatten(p^S)                   (N, D), D = C_S·h_S·w_S   [eq-flatten]
dense                 s = f Wᵀ + c                       (N, n_out)   [eq-dense-forward]
====================  ================================  ===========================================

Two variants, chosen by ``loss``:

* ``"ce"``: φ = ReLU, max pooling, ``out`` = the logits ``s``, loss = softmax cross-entropy
  of integer labels, averaged over the batch ([eq-softmax-ce]);
* ``"sse"``: the sources' network: φ = sigmoid, mean pooling, ``out = o = σ(s)``, loss =
  ½ Σ (o − t)² averaged over the batch ([eq-half-sse], [eq-wn-loss]); the targets ``t``
  are (N, n_out) or integer labels, which become one-hot rows.

``padding`` (zeros per side of every convolution) and ``pool`` (pooling window = stride) are
one int for every stage or a tuple with one entry per stage. The digits network of the training
chapter is the default: two 3 × 3 stages with ``padding=1`` and ``pool=2``.

Parameters are a plain dict of float arrays, named the same for every S:

* ``w{s}`` (C_s, C_{s−1}, K_s, K_s) OIHW cross-correlation kernels, ``b{s}`` (C_s,), s = 1 … S;
* ``W`` (n_out, D) with its columns in C-order (channel, row, column), ``c`` (n_out,).

The backward pass is the chain rule, layer by layer, with the hand-derived gradients:
[eq-softmax-ce-grad] or [eq-half-sse-grad], σ' of the output, [eq-dense-backward], unflatten,
[eq-maxpool-backward] or [eq-avgpool-backward], φ' at the pre-activation ([eq-delta-activation]),
then [eq-weight-grad], [eq-bias-grad] and [eq-input-grad].

The last section maps parameters and data between this layout and the MATLAB layout of
:mod:`cnnref.teaching.matlab_net` ([eq-wn-param-map]).
"""

from __future__ import annotations

import numpy as np

from . import activations as act
from ._validate import as_int, as_labels, as_real_array, as_shape, check_mode, check_shape
from .conv import conv2d_backward, conv2d_forward
from .dense import dense_backward, dense_forward, flatten, unflatten
from .losses import half_squared_error, half_squared_error_grad, softmax_cross_entropy, softmax_cross_entropy_grad
from .pooling import avgpool2d_backward, avgpool2d_forward, maxpool2d_backward, maxpool2d_forward

__all__ = [
    "LOSSES", "stages", "param_names", "param_shapes", "init_params", "check_params", "forward",
    "backward", "loss_value", "loss_grad", "loss_and_grads", "predict", "accuracy", "evaluate",
    "fv_permutation", "from_matlab", "to_matlab", "stack_to_nchw", "nchw_to_stack",
]

LOSSES = ("ce", "sse")
# (φ, φ', pool forward, pool backward) of each variant
_VARIANTS = {
    "ce": (act.relu, act.relu_prime, maxpool2d_forward, maxpool2d_backward),
    "sse": (act.sigmoid, act.sigmoid_prime, avgpool2d_forward, avgpool2d_backward),
}


def stages(params, kernel: str = "w", head: tuple[str, str] = ("W", "c")) -> int:
    """Number of convolution stages S of ``params``: keys ``w1``, ``b1``, …, ``wS``, ``bS`` and ``W``, ``c``.

    ``kernel`` and ``head`` name the kernel prefix and the dense keys of another layout (the
    MATLAB network counts ``k1`` … ``kS`` and ``ffW``, ``ffb``). Raises unless all are present.
    """
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    s = 0
    while f"{kernel}{s + 1}" in params:
        s += 1
    missing = [f"{kernel}1"] * (s == 0) + [f"b{i}" for i in range(1, s + 1) if f"b{i}" not in params]
    missing += [k for k in head if k not in params]
    if missing:
        raise ValueError(f"params must hold {kernel}1, b1, …, {kernel}S, bS, {head[0]}, {head[1]} (S >= 1); "
                         f"missing {missing}, given keys {sorted(params)}")
    return s


def param_names(n_stages: int) -> tuple[str, ...]:
    """``("w1", "b1", …, "wS", "bS", "W", "c")`` for S = ``n_stages``: the keys, in drawing order."""
    n_stages = as_int(n_stages, "n_stages", minimum=1)
    return tuple(k for s in range(1, n_stages + 1) for k in (f"w{s}", f"b{s}")) + ("W", "c")


def _per_stage(v, name: str, n_stages: int, minimum: int) -> tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        return as_shape(v, name, ndim=n_stages, minimum=minimum, why="one entry per stage")
    return (as_int(v, name, f"an int or one int per stage", minimum=minimum),) * n_stages


def _map_sizes(in_hw, kernels, padding, pool):
    """Side lengths (h_s, w_s) after every stage, or raise naming the first stage that does not fit."""
    (h, w), sizes = in_hw, []
    for s, (k, pd, pl) in enumerate(zip(kernels, padding, pool), start=1):
        h, w = h + 2 * pd - k + 1, w + 2 * pd - k + 1
        if h < pl or w < pl:
            raise ValueError(f"stage {s}: its {k}x{k} convolution with padding {pd} gives {h}x{w} maps, "
                             f"smaller than the {pl}x{pl} pooling window")
        h, w = h // pl, w // pl
        sizes.append((h, w))
    return sizes


def param_shapes(in_shape, channels=(16, 32), *, kernel=3, padding=1, pool=2, n_out: int = 10) -> dict:
    """Shapes of the parameters, in the order of :func:`param_names`.

    in_shape: (C_0, H, W) of one input example; channels: (C_1, …, C_S), one per stage;
    kernel, padding, pool: one int for every stage or one per stage; n_out: output units.
    """
    c0, h, w = as_shape(in_shape, "in_shape", ndim=3, minimum=1, why="(C, H, W) of one example")
    if not isinstance(channels, (tuple, list)) or not channels:
        raise ValueError(f"channels must be a non-empty tuple (C_1, …, C_S), one per stage, got {channels!r}")
    chans = as_shape(channels, "channels", minimum=1, why="one positive int per stage")
    S = len(chans)
    kernels = _per_stage(kernel, "kernel", S, 1)
    sizes = _map_sizes((h, w), kernels, _per_stage(padding, "padding", S, 0), _per_stage(pool, "pool", S, 1))
    n_out = as_int(n_out, "n_out", minimum=1)
    shapes, c_prev = {}, c0
    for s, (c, k) in enumerate(zip(chans, kernels), start=1):
        shapes[f"w{s}"], shapes[f"b{s}"], c_prev = (c, c_prev, k, k), (c,), c
    hS, wS = sizes[-1]
    shapes["W"], shapes["c"] = (n_out, c_prev * hS * wS), (n_out,)
    return shapes


def init_params(in_shape, channels=(16, 32), *, seed: int = 0, kernel=3, padding=1, pool=2,
                n_out: int = 10, loss: str = "ce") -> dict[str, np.ndarray]:
    """Random initial parameters from ``np.random.default_rng(seed)``; biases 0. Same seed, same parameters.

    Shapes as :func:`param_shapes`. ``loss="ce"`` (ReLU network): He initialisation, weights
    ~ N(0, 2 / fan_in). ``loss="sse"`` (sigmoid network): Glorot's initialisation scaled by 4
    for the sigmoid, weights ~ N(0, 16 · 2 / (fan_in + fan_out)); the 4 makes up for σ'(0) = 1/4.
    fan_in = C_in·K_h·K_w (kernel) or D (dense); fan_out = C_out·K_h·K_w or n_out. The weights are
    drawn in the order of :func:`param_names`.
    """
    seed = as_int(seed, "seed", minimum=0)
    check_mode(loss, LOSSES, "loss")
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in param_shapes(in_shape, channels, kernel=kernel, padding=padding, pool=pool,
                                    n_out=n_out).items():
        if len(shape) == 1:
            params[name] = np.zeros(shape)
            continue
        fan_in = int(np.prod(shape[1:]))
        fan_out = shape[0] * int(np.prod(shape[2:]))
        var = 2.0 / fan_in if loss == "ce" else 16.0 * 2.0 / (fan_in + fan_out)
        params[name] = rng.standard_normal(shape) * np.sqrt(var)
    return params


def check_params(params) -> dict[str, np.ndarray]:
    """``params`` as float arrays, or raise: exactly the keys of :func:`param_names`, 4-D kernels whose
    input channels are the previous stage's output channels, one bias per channel, a 2-D ``W`` and
    one ``c`` per row of ``W``. (That ``W`` fits the last maps is checked by :func:`forward`.)"""
    S = stages(params)
    names = param_names(S)
    if set(params) != set(names):
        raise ValueError(f"params must have exactly the keys {names}, got {tuple(sorted(params))}")
    out = {k: as_real_array(params[k], f"params[{k!r}]") for k in names}
    c_prev = None
    for s in range(1, S + 1):
        w, b = out[f"w{s}"], out[f"b{s}"]
        if w.ndim != 4 or min(w.shape) < 1:
            raise ValueError(f"params['w{s}'] must be a non-empty 4-D kernel (C_out, C_in, K_h, K_w), got {w.shape}")
        if c_prev is not None and w.shape[1] != c_prev:
            raise ValueError(f"params['w{s}'] must take the {c_prev} channels of stage {s - 1} "
                             f"(shape ({w.shape[0]}, {c_prev}, …)), got {w.shape}")
        check_shape(b, (w.shape[0],), f"params['b{s}']", f"one bias per output channel of w{s}")
        c_prev = w.shape[0]
    if out["W"].ndim != 2:
        raise ValueError(f"params['W'] must be 2-D (n_out, D), got shape {out['W'].shape}")
    check_shape(out["c"], (out["W"].shape[0],), "params['c']", "one bias per row of W")
    return out


def _config(loss, padding, pool, n_stages):
    check_mode(loss, LOSSES, "loss")
    return dict(loss=loss, padding=_per_stage(padding, "padding", n_stages, 0),
                pool=_per_stage(pool, "pool", n_stages, 1))


def forward(params, x, *, loss: str = "ce", padding=1, pool=2):
    """Forward pass of the whole network on a batch x (N, C_0, H, W), N >= 1.

    Returns ``(out, cache)``: ``out`` (N, n_out) is the logits ``s`` for ``loss="ce"`` and
    ``o = σ(s)`` for ``"sse"``; ``cache`` holds the settings (``"loss"``, ``"padding"``,
    ``"pool"``), ``"x"``, per stage ``"z{s}"``, ``"a{s}"``, ``"p{s}"``, then ``"f"`` and ``"s"``:
    everything :func:`backward` needs.
    """
    p = check_params(params)
    S = stages(p)
    cfg = _config(loss, padding, pool, S)
    x = as_real_array(x, "x", ndim=4)
    if x.shape[0] < 1:
        raise ValueError(f"x must hold at least one example, got shape {x.shape}")
    phi, _, pool_fwd, _ = _VARIANTS[loss]
    cache, h = dict(cfg, x=x), x
    for s in range(1, S + 1):
        z = conv2d_forward(h, p[f"w{s}"], p[f"b{s}"], padding=cfg["padding"][s - 1])   # [eq-layer-forward]
        a = phi(z)
        h = pool_fwd(a, cfg["pool"][s - 1])
        cache[f"z{s}"], cache[f"a{s}"], cache[f"p{s}"] = z, a, h
    f = flatten(h)                                                                       # [eq-flatten]
    if p["W"].shape[1] != f.shape[1]:
        raise ValueError(f"params['W'] must have one column per feature of the last maps {h.shape[1:]}, "
                         f"D = {f.shape[1]}; got shape {p['W'].shape}")
    s_out = dense_forward(f, p["W"], p["c"])                                             # [eq-dense-forward]
    cache["f"], cache["s"] = f, s_out
    return (s_out if loss == "ce" else act.sigmoid(s_out)), cache


def backward(params, cache, dout, *, trace=None) -> dict[str, np.ndarray]:
    """Gradients of the loss for every parameter, given ``dout = ∂E/∂out`` (N, n_out).

    ``out`` and ``cache`` are what :func:`forward` returned. Returns a dict with the keys and
    shapes of ``params``. ``trace``: None, or a dict that receives every intermediate gradient
    on the way down, each with the shape of the tensor it differentiates: ``"dE/ds"``,
    ``"dE/df"``, then from stage S down to 1 ``"dE/dp{s}"``, ``"dE/da{s}"``, ``"dE/dz{s}"``
    (the delta), and ``"dE/dx"``.
    """
    p = check_params(params)
    S = stages(p)
    keys = ("loss", "padding", "pool", "x", *(f"{k}{s}" for s in range(1, S + 1) for k in "zap"), "f", "s")
    if not isinstance(cache, dict) or not set(keys) <= set(cache):
        raise TypeError(f"cache must be the dict that forward returned, with the keys {keys}, got "
                        + (f"a dict with the keys {tuple(cache)}" if isinstance(cache, dict) else type(cache).__name__))
    loss, pad, pool = cache["loss"], cache["padding"], cache["pool"]
    _, phi_prime, _, pool_back = _VARIANTS[loss]
    dout = as_real_array(dout, "dout", ndim=2)
    if dout.shape != cache["s"].shape:
        raise ValueError(f"dout must have the shape of the network output {cache['s'].shape}, got {dout.shape}")
    if trace is not None and not isinstance(trace, dict):
        raise TypeError(f"trace must be None or a dict, got {type(trace).__name__}")
    seen = trace if trace is not None else {}
    ds = dout if loss == "ce" else dout * act.sigmoid_prime(cache["s"])   # through o = σ(s)
    df, dW, dc = dense_backward(ds, cache["f"], p["W"])                    # [eq-dense-backward]
    seen["dE/ds"], seen["dE/df"] = ds, df
    grads = {"W": dW, "c": dc}
    dh = unflatten(df, cache[f"p{S}"].shape)
    for s in range(S, 0, -1):
        da = pool_back(dh, cache[f"a{s}"], pool[s - 1])                     # pooling backward
        dz = da * phi_prime(cache[f"z{s}"])                                 # δ^s = ∂E/∂a^s ⊙ φ'(z^s)
        seen[f"dE/dp{s}"], seen[f"dE/da{s}"], seen[f"dE/dz{s}"] = dh, da, dz
        below = cache["x"] if s == 1 else cache[f"p{s - 1}"]
        dh, grads[f"w{s}"], grads[f"b{s}"] = conv2d_backward(dz, below, p[f"w{s}"], padding=pad[s - 1])
    seen["dE/dx"] = dh
    return {k: grads[k] for k in param_names(S)}


def _targets(out, target, loss):
    out = as_real_array(out, "out", ndim=2)
    if loss == "sse" and np.ndim(target) == 2:
        t = as_real_array(target, "target")
        check_shape(t, out.shape, "target", "one row of targets per row of out")
        return out, t
    y = as_labels(target, out.shape[1], "target", n=out.shape[0])
    if loss == "ce":
        return out, y
    return out, np.eye(out.shape[1])[y]


def loss_value(out, target, *, loss: str = "ce") -> float:
    """The batch-mean loss of the network output ``out`` (N, n_out).

    ``loss="ce"``: softmax cross-entropy of the logits for integer labels ``target`` (N,) in
    [0, n_out) ([eq-softmax-ce]); ``"sse"``: ½-squared error of the sigmoid outputs against the
    targets (N, n_out), or against one-hot rows when ``target`` is labels (N,) ([eq-half-sse]).
    Both are divided by N.
    """
    check_mode(loss, LOSSES, "loss")
    out, t = _targets(out, target, loss)
    if loss == "ce":
        return softmax_cross_entropy(out, t, reduction="mean")
    return half_squared_error(out, t, reduction="mean")


def loss_grad(out, target, *, loss: str = "ce") -> np.ndarray:
    """∂E/∂out (N, n_out) of :func:`loss_value` ([eq-softmax-ce-grad] or [eq-half-sse-grad], divided by N)."""
    check_mode(loss, LOSSES, "loss")
    out, t = _targets(out, target, loss)
    if loss == "ce":
        return softmax_cross_entropy_grad(out, t, reduction="mean")
    return half_squared_error_grad(out, t, reduction="mean")


def loss_and_grads(params, x, target, *, loss: str = "ce", padding=1, pool=2):
    """``(E, grads)``: the batch-mean loss of x (N, C_0, H, W) and its gradient for every parameter."""
    out, cache = forward(params, x, loss=loss, padding=padding, pool=pool)
    return loss_value(out, target, loss=loss), backward(params, cache, loss_grad(out, target, loss=loss))


def _chunks(n, batch_size) -> list[slice]:
    batch_size = as_int(batch_size, "batch_size", minimum=1)
    return [slice(i, i + batch_size) for i in range(0, n, batch_size)]


def _batch(x):
    x = as_real_array(x, "x", ndim=4)
    if x.shape[0] < 1:
        raise ValueError(f"x must hold at least one example, got shape {x.shape}")
    return x


def predict(params, x, *, loss: str = "ce", padding=1, pool=2, batch_size: int = 512) -> np.ndarray:
    """Predicted class (N,) = arg-max of the network output for x (N, C_0, H, W), in chunks of ``batch_size`` >= 1."""
    x = _batch(x)
    kw = dict(loss=loss, padding=padding, pool=pool)
    return np.concatenate([np.argmax(forward(params, x[c], **kw)[0], axis=1) for c in _chunks(len(x), batch_size)])


def accuracy(params, x, y, *, loss: str = "ce", padding=1, pool=2, batch_size: int = 512) -> float:
    """Fraction of the examples x (N, C_0, H, W) whose predicted class equals the label y (N,)."""
    pred = predict(params, x, loss=loss, padding=padding, pool=pool, batch_size=batch_size)
    y = as_labels(y, check_params(params)["W"].shape[0], "y", n=len(pred))
    return float(np.mean(pred == y))


def evaluate(params, x, y, *, loss: str = "ce", padding=1, pool=2, batch_size: int = 512) -> tuple[float, float]:
    """``(mean loss, accuracy)`` over a whole data set x (N, C_0, H, W), labels y (N,), in chunks of ``batch_size`` >= 1."""
    x = _batch(x)
    y = as_labels(y, check_params(params)["W"].shape[0], "y", n=x.shape[0])
    total, correct = 0.0, 0
    for c in _chunks(len(x), batch_size):
        out, _ = forward(params, x[c], loss=loss, padding=padding, pool=pool)
        total += loss_value(out, y[c], loss=loss) * out.shape[0]
        correct += int(np.sum(np.argmax(out, axis=1) == y[c]))
    return total / x.shape[0], correct / x.shape[0]


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
