"""A small CNN for the 8 × 8 digits, forward and backward from cnnref's layers only (book: "Training a CNN on digits").

Architecture (``C1``, ``C2`` = ``channels``, default 16 and 32; every conv is
3 × 3 with stride 1 and one zero of padding per side, so it keeps the size):

====================  ===========================  ==================================
layer                 computes                     output shape (batch of N)
====================  ===========================  ==================================
conv 1                z1 = w1 ⋆ x + b1             (N, C1, 8, 8)     [eq-layer-forward]
activation            a1 = φ(z1)                   (N, C1, 8, 8)
pool 2 × 2, stride 2  p1 = pool(a1)                (N, C1, 4, 4)
conv 2                z2 = w2 ⋆ p1 + b2            (N, C2, 4, 4)     [eq-layer-forward]
activation            a2 = φ(z2)                   (N, C2, 4, 4)
pool 2 × 2, stride 2  p2 = pool(a2)                (N, C2, 2, 2)
flatten               f = flatten(p2)              (N, 4·C2)         [eq-flatten]
dense                 s = f W3ᵀ + c3               (N, 10)           [eq-dense-forward]
====================  ===========================  ==================================

Two variants, chosen by ``loss``:

* ``"ce"`` (default): φ = ReLU, max pooling, the output is the logits ``s`` and the
  loss is the softmax cross-entropy, averaged over the batch ([eq-softmax-ce]).
* ``"sse"``: the sources' network, φ = sigmoid, mean pooling, the output is
  ``o = σ(s)`` and the loss is ½ Σ (o − t)² with one-hot targets t, averaged over
  the batch ([eq-half-sse]).

Parameters are a plain dict of float64 arrays (the names follow cnnref's layer functions):

* ``w1`` (C1, 1, 3, 3), ``b1`` (C1,)
* ``w2`` (C2, C1, 3, 3), ``b2`` (C2,)
* ``W3`` (10, 4·C2), ``c3`` (10,)

The backward pass is the chain rule applied layer by layer with the hand-derived
gradients: [eq-softmax-ce-grad] or [eq-half-sse-grad], [eq-dense-backward],
unflatten, [eq-maxpool-backward] or [eq-avgpool-backward], ``φ'`` at the
pre-activation ([eq-relu-prime] / [eq-sigmoid-prime]), [eq-weight-grad],
[eq-bias-grad] and [eq-input-grad].
"""

from __future__ import annotations

import numpy as np

from . import activations as act
from ._validate import as_int, as_labels, as_real_array, check_mode
from .conv import conv2d_backward, conv2d_forward
from .data import IMAGE_SHAPE, N_CLASSES, check_images, one_hot
from .dense import dense_backward, dense_forward, flatten, unflatten
from .losses import half_squared_error, half_squared_error_grad, softmax_cross_entropy, softmax_cross_entropy_grad
from .pooling import avgpool2d_backward, avgpool2d_forward, maxpool2d_backward, maxpool2d_forward

LOSSES = ("ce", "sse")
PARAM_NAMES = ("w1", "b1", "w2", "b2", "W3", "c3")
KERNEL = 3
PADDING = 1
POOL = 2
# What forward() keeps for backward(): the loss and every intermediate array.
CACHE_KEYS = ("loss", "x", "z1", "a1", "p1", "z2", "a2", "p2", "f", "s")


def param_shapes(channels=(16, 32)) -> dict[str, tuple[int, ...]]:
    """Shapes of the parameters for ``channels = (C1, C2)``, in the order of ``PARAM_NAMES``."""
    if not isinstance(channels, (tuple, list)) or len(channels) != 2:
        raise ValueError(f"channels must be a pair (C1, C2), got {channels!r}")
    c1, c2 = (as_int(c, "channels", "a pair of positive ints") for c in channels)
    if min(c1, c2) < 1:
        raise ValueError(f"channels must be positive, got {channels!r}")
    side = IMAGE_SHAPE[1] // POOL // POOL
    return {
        "w1": (c1, IMAGE_SHAPE[0], KERNEL, KERNEL), "b1": (c1,),
        "w2": (c2, c1, KERNEL, KERNEL), "b2": (c2,),
        "W3": (N_CLASSES, c2 * side * side), "c3": (N_CLASSES,),
    }


def init_params(seed: int = 0, channels=(16, 32), *, loss: str = "ce") -> dict[str, np.ndarray]:
    """Random initial parameters from ``np.random.default_rng(seed)``; biases 0. Same seed, same parameters.

    ``loss="ce"`` (ReLU network): He initialisation, weights ~ N(0, 2 / fan_in).
    ``loss="sse"`` (sigmoid network): Glorot's initialisation scaled by 4 for the sigmoid,
    weights ~ N(0, 16 · 2 / (fan_in + fan_out)); the factor 4 makes up for σ'(0) = 1/4.
    fan_in = C_in·K_h·K_w (kernel) or D_in (dense); fan_out = C_out·K_h·K_w or D_out.
    The weights are drawn in the order of ``PARAM_NAMES``.
    """
    seed = as_int(seed, "seed", minimum=0)
    check_mode(loss, LOSSES, "loss")
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in param_shapes(channels).items():
        if len(shape) == 1:
            params[name] = np.zeros(shape)
            continue
        fan_in = int(np.prod(shape[1:]))
        fan_out = shape[0] * int(np.prod(shape[2:]))
        var = 2.0 / fan_in if loss == "ce" else 16.0 * 2.0 / (fan_in + fan_out)
        params[name] = rng.standard_normal(shape) * np.sqrt(var)
    return params


def check_params(params) -> dict[str, np.ndarray]:
    """Raise unless ``params`` has exactly the keys of ``PARAM_NAMES`` with consistent shapes."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays with keys {PARAM_NAMES}, got {type(params).__name__}")
    if set(params) != set(PARAM_NAMES):
        raise ValueError(f"params must have the keys {PARAM_NAMES}, got {tuple(sorted(params))}")
    out = {k: as_real_array(params[k], k) for k in PARAM_NAMES}
    if out["w1"].ndim != 4 or out["w2"].ndim != 4 or min(out["w1"].shape[0], out["w2"].shape[0]) < 1:
        raise ValueError(f"w1 and w2 must be non-empty 4-D kernels (OIHW), got {out['w1'].shape} and {out['w2'].shape}")
    expected = param_shapes((out["w1"].shape[0], out["w2"].shape[0]))
    for k in PARAM_NAMES:
        if out[k].shape != expected[k]:
            raise ValueError(f"params[{k!r}] must have shape {expected[k]}, got {out[k].shape}")
    return out


def _layers(loss):
    check_mode(loss, LOSSES, "loss")
    if loss == "ce":
        return act.relu, act.relu_prime, maxpool2d_forward, maxpool2d_backward
    return act.sigmoid, act.sigmoid_prime, avgpool2d_forward, avgpool2d_backward


def forward(params, x, *, loss: str = "ce"):
    """Forward pass of the whole network on a batch.

    x: (N, 1, 8, 8). Returns ``(out, cache)``: ``out`` (N, 10) is the logits ``s`` for
    ``loss="ce"`` and the sigmoid outputs ``o = σ(s)`` for ``loss="sse"``; ``cache``
    holds every intermediate array that :func:`backward` needs.
    """
    p = check_params(params)
    x = check_images(x)
    phi, _, pool, _ = _layers(loss)
    z1 = conv2d_forward(x, p["w1"], p["b1"], padding=PADDING)
    a1 = phi(z1)
    p1 = pool(a1, POOL)
    z2 = conv2d_forward(p1, p["w2"], p["b2"], padding=PADDING)
    a2 = phi(z2)
    p2 = pool(a2, POOL)
    f = flatten(p2)
    s = dense_forward(f, p["W3"], p["c3"])
    out = s if loss == "ce" else act.sigmoid(s)
    cache = dict(loss=loss, x=x, z1=z1, a1=a1, p1=p1, z2=z2, a2=a2, p2=p2, f=f, s=s)  # the keys of CACHE_KEYS
    return out, cache


def backward(params, cache, dout) -> dict[str, np.ndarray]:
    """Gradients of the loss with respect to every parameter, given ``dout = ∂E/∂out`` (N, 10).

    ``out`` is what :func:`forward` returned (logits for ``"ce"``, σ(s) for ``"sse"``), and
    ``cache`` the dict that it returned with it. Returns a dict with the keys and shapes of ``params``.
    """
    p = check_params(params)
    if not isinstance(cache, dict) or not set(CACHE_KEYS) <= set(cache):
        raise TypeError(f"cache must be the dict that forward returned, with the keys {CACHE_KEYS}, got "
                        + (f"a dict with the keys {tuple(cache)}" if isinstance(cache, dict) else type(cache).__name__))
    loss = cache["loss"]
    _, phi_prime, _, pool_back = _layers(loss)
    dout = as_real_array(dout, "dout", ndim=2)
    if dout.shape != cache["s"].shape:
        raise ValueError(f"dout must have the shape of the network output {cache['s'].shape}, got {dout.shape}")
    ds = dout if loss == "ce" else dout * act.sigmoid_prime(cache["s"])      # through o = σ(s)
    df, dW3, dc3 = dense_backward(ds, cache["f"], p["W3"])                    # [eq-dense-backward]
    dp2 = unflatten(df, cache["p2"].shape)
    da2 = pool_back(dp2, cache["a2"], POOL)                                    # pooling backward
    dz2 = da2 * phi_prime(cache["z2"])                                         # δ² = ∂E/∂a² ⊙ φ'(z²)
    dp1, dw2, db2 = conv2d_backward(dz2, cache["p1"], p["w2"], padding=PADDING)
    da1 = pool_back(dp1, cache["a1"], POOL)
    dz1 = da1 * phi_prime(cache["z1"])                                         # δ¹
    _, dw1, db1 = conv2d_backward(dz1, cache["x"], p["w1"], padding=PADDING)   # dx is not needed
    return dict(w1=dw1, b1=db1, w2=dw2, b2=db2, W3=dW3, c3=dc3)


def _check_output(out, y):
    out = as_real_array(out, "out", ndim=2)
    return out, as_labels(y, out.shape[1], "y", n=out.shape[0])


def loss_value(out, y, *, loss: str = "ce") -> float:
    """The batch-mean loss of the network output ``out`` (N, K) for integer labels ``y`` (N,) in [0, K).

    ``loss="ce"``: softmax cross-entropy of the logits ([eq-softmax-ce]); ``"sse"``: ½-squared
    error of the sigmoid outputs against one-hot targets ([eq-half-sse]); both divided by N.
    """
    check_mode(loss, LOSSES, "loss")
    out, y = _check_output(out, y)
    if loss == "ce":
        return softmax_cross_entropy(out, y, reduction="mean")
    return half_squared_error(out, one_hot(y, out.shape[1]), reduction="mean")


def loss_grad(out, y, *, loss: str = "ce") -> np.ndarray:
    """∂E/∂out (N, K) of :func:`loss_value` ([eq-softmax-ce-grad] or [eq-half-sse-grad], divided by N)."""
    check_mode(loss, LOSSES, "loss")
    out, y = _check_output(out, y)
    if loss == "ce":
        return softmax_cross_entropy_grad(out, y, reduction="mean")
    return half_squared_error_grad(out, one_hot(y, out.shape[1]), reduction="mean")


def loss_and_grads(params, x, y, *, loss: str = "ce"):
    """``(E, grads)`` for a batch x (N, 1, 8, 8), y (N,): batch-mean loss and its gradient for every parameter."""
    out, cache = forward(params, x, loss=loss)
    return loss_value(out, y, loss=loss), backward(params, cache, loss_grad(out, y, loss=loss))


def _chunks(x, batch_size) -> list[slice]:
    batch_size = as_int(batch_size, "batch_size", minimum=1)
    return [slice(i, i + batch_size) for i in range(0, x.shape[0], batch_size)]


def predict(params, x, *, loss: str = "ce", batch_size: int = 512) -> np.ndarray:
    """Predicted class (N,) = arg-max of the network output for x (N, 1, 8, 8), in chunks of ``batch_size`` >= 1."""
    x = check_images(x)
    return np.concatenate([np.argmax(forward(params, x[c], loss=loss)[0], axis=1) for c in _chunks(x, batch_size)])


def accuracy(params, x, y, *, loss: str = "ce") -> float:
    """Fraction of the examples x (N, 1, 8, 8) whose predicted class equals the label y (N,)."""
    x = check_images(x)
    y = as_labels(y, N_CLASSES, "y", n=x.shape[0])
    return float(np.mean(predict(params, x, loss=loss) == y))


def evaluate(params, x, y, *, loss: str = "ce", batch_size: int = 512) -> tuple[float, float]:
    """``(mean loss, accuracy)`` over a whole data set x (N, 1, 8, 8), y (N,), in chunks of ``batch_size`` >= 1."""
    x = check_images(x)
    y = as_labels(y, N_CLASSES, "y", n=x.shape[0])
    total, correct = 0.0, 0
    for c in _chunks(x, batch_size):
        out, _ = forward(params, x[c], loss=loss)
        total += loss_value(out, y[c], loss=loss) * out.shape[0]
        correct += int(np.sum(np.argmax(out, axis=1) == y[c]))
    return total / x.shape[0], correct / x.shape[0]
