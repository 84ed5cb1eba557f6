"""A small modern CNN for the 8 × 8 digits, forward and backward from cnnref's layers (book: "A
modern small network").

Batch normalisation, a residual block, a depthwise-separable convolution and global average
pooling, each layer's backward pass the one derived in Part V; nothing is differentiated
automatically. With C = ``width`` (default 8) and every convolution without bias (batch
normalisation's β takes its place):

=====================  ======================================================  ==================
stage                  computes                                                output (batch N)
=====================  ======================================================  ==================
stem                   a1 = ReLU(BN(conv3×3(x, w_stem)))                       (N, C, 8, 8)
residual block         a2 = ReLU(BN(conv3×3(a1, w_r1)))                        (N, C, 8, 8)
                       a3 = ReLU(a1 + BN(conv3×3(a2, w_r2)))                   (N, C, 8, 8)
depthwise-separable    z4 = depthwise conv3×3(a3, w_dw), stride 2, groups C    (N, C, 4, 4)
                       a5 = ReLU(BN(conv1×1(z4, w_pw)))                         (N, 2C, 4, 4)
head                   s = GAP(a5) Wᵀ + c                                      (N, 10)
=====================  ======================================================  ==================

Loss: softmax cross-entropy of the logits ``s``, averaged over the batch ([eq-softmax-ce]).
Batch normalisation runs in training mode (batch statistics) inside :func:`loss_and_grads`;
:func:`predict` uses the running statistics that :func:`update_running` keeps, as a framework
does in evaluation mode.

Parameters (a dict of float arrays, :data:`PARAM_NAMES`): ``w_stem`` (C, 1, 3, 3), ``w_r1`` and
``w_r2`` (C, C, 3, 3), ``w_dw`` (C, 1, 3, 3), ``w_pw`` (2C, C, 1, 1), the BN scales and shifts
``g_*``/``beta_*`` for ``stem``, ``r1``, ``r2``, ``pw`` (one per channel), ``W`` (10, 2C), ``c`` (10,).
"""

from __future__ import annotations

import numpy as np

from ._validate import as_int, as_labels, as_real_array
from .activations import relu, relu_prime
from .batchnorm import batchnorm2d_backward, batchnorm2d_eval_forward, batchnorm2d_forward, update_running_stats
from .conv import conv2d_backward, conv2d_forward
from .dense import dense_backward, dense_forward
from .global_pool import global_avgpool2d_backward, global_avgpool2d_forward
from .losses import softmax_cross_entropy, softmax_cross_entropy_grad

__all__ = ["PARAM_NAMES", "BN_LAYERS", "init_params", "init_running", "forward", "backward", "loss_and_grads",
           "update_running", "predict", "accuracy", "train"]

BN_LAYERS = ("stem", "r1", "r2", "pw")
PARAM_NAMES = ("w_stem", "w_r1", "w_r2", "w_dw", "w_pw", *(f"{p}_{k}" for k in BN_LAYERS for p in ("g", "beta")),
               "W", "c")
N_CLASSES = 10


def _shapes(width: int) -> dict[str, tuple[int, ...]]:
    c = width
    shapes = {"w_stem": (c, 1, 3, 3), "w_r1": (c, c, 3, 3), "w_r2": (c, c, 3, 3), "w_dw": (c, 1, 3, 3),
              "w_pw": (2 * c, c, 1, 1)}
    for k, ch in zip(BN_LAYERS, (c, c, c, 2 * c)):
        shapes[f"g_{k}"] = shapes[f"beta_{k}"] = (ch,)
    shapes["W"], shapes["c"] = (N_CLASSES, 2 * c), (N_CLASSES,)
    return shapes


def init_params(seed: int = 0, width: int = 8) -> dict[str, np.ndarray]:
    """He-initialised kernels and dense weights from ``np.random.default_rng(seed)``; γ = 1, β = 0, c = 0."""
    seed, width = as_int(seed, "seed", minimum=0), as_int(width, "width", minimum=1)
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in _shapes(width).items():
        if name.startswith("g_"):
            params[name] = np.ones(shape)
        elif len(shape) == 1:
            params[name] = np.zeros(shape)
        else:
            params[name] = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
    return params


def init_running(width: int = 8) -> dict[str, np.ndarray]:
    """Running means 0 and variances 1 for every batch-normalised layer, as a framework starts them."""
    width = as_int(width, "width", minimum=1)
    chans = dict(zip(BN_LAYERS, (width, width, width, 2 * width)))
    return {f"{s}_{k}": (np.zeros if s == "mean" else np.ones)(chans[k]) for k in BN_LAYERS for s in ("mean", "var")}


def _check(params, x):
    if not isinstance(params, dict) or set(params) != set(PARAM_NAMES):
        got = tuple(sorted(params)) if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"params must have the keys {PARAM_NAMES}, got {got}")
    width = np.shape(params["w_stem"])[0]
    p = {k: as_real_array(v, f"params[{k!r}]") for k, v in params.items()}
    for k, shape in _shapes(width).items():
        if p[k].shape != shape:
            raise ValueError(f"params[{k!r}] must have shape {shape} (width {width}), got {p[k].shape}")
    x = as_real_array(x, "x", ndim=4)
    if x.shape[1:] != (1, 8, 8) or x.shape[0] < 1:
        raise ValueError(f"x must have shape (N, 1, 8, 8) with N >= 1, got {x.shape}")
    return p, x


def forward(params, x):
    """Logits (N, 10) and the cache for :func:`backward`, batch normalisation in training mode."""
    p, x = _check(params, x)
    width = p["w_stem"].shape[0]
    c = {"x": x}
    c["z1"] = conv2d_forward(x, p["w_stem"], padding=1)
    c["y1"], c["bn1"] = batchnorm2d_forward(c["z1"], p["g_stem"], p["beta_stem"])
    c["a1"] = relu(c["y1"])
    c["z2"] = conv2d_forward(c["a1"], p["w_r1"], padding=1)
    c["y2"], c["bn2"] = batchnorm2d_forward(c["z2"], p["g_r1"], p["beta_r1"])
    c["a2"] = relu(c["y2"])
    c["z3"] = conv2d_forward(c["a2"], p["w_r2"], padding=1)
    c["y3"], c["bn3"] = batchnorm2d_forward(c["z3"], p["g_r2"], p["beta_r2"])
    c["s3"] = c["a1"] + c["y3"]  # the skip connection
    c["a3"] = relu(c["s3"])
    c["z4"] = conv2d_forward(c["a3"], p["w_dw"], stride=2, padding=1, groups=width)  # depthwise
    c["z5"] = conv2d_forward(c["z4"], p["w_pw"])  # pointwise 1×1
    c["y5"], c["bn5"] = batchnorm2d_forward(c["z5"], p["g_pw"], p["beta_pw"])
    c["a5"] = relu(c["y5"])
    c["g"] = global_avgpool2d_forward(c["a5"])
    return dense_forward(c["g"], p["W"], p["c"]), c


def backward(params, cache, ds) -> dict[str, np.ndarray]:
    """Every parameter's gradient from ``ds = ∂E/∂s`` (N, 10), stage by stage; at the
    fork of the residual block the two paths' gradients add ([eq-mn-fork])."""
    p, _ = _check(params, cache["x"])
    width, c, g = p["w_stem"].shape[0], cache, {}
    bn_backward, conv_backward = batchnorm2d_backward, conv2d_backward
    dfeat, g["W"], g["c"] = dense_backward(ds, c["g"], p["W"])
    da5 = global_avgpool2d_backward(dfeat, c["a5"].shape)
    dz5, g["g_pw"], g["beta_pw"] = bn_backward(da5 * relu_prime(c["y5"]), c["bn5"])
    dz4, g["w_pw"], _ = conv_backward(dz5, c["z4"], p["w_pw"])
    da3, g["w_dw"], _ = conv_backward(
        dz4, c["a3"], p["w_dw"], stride=2, padding=1, groups=width
    )
    ds3 = da3 * relu_prime(c["s3"])  # reaches both a1 (the skip) and y3 (the branch)
    dz3, g["g_r2"], g["beta_r2"] = bn_backward(ds3, c["bn3"])
    da2, g["w_r2"], _ = conv_backward(dz3, c["a2"], p["w_r2"], padding=1)
    dz2, g["g_r1"], g["beta_r1"] = bn_backward(da2 * relu_prime(c["y2"]), c["bn2"])
    da1_branch, g["w_r1"], _ = conv_backward(dz2, c["a1"], p["w_r1"], padding=1)
    da1 = ds3 + da1_branch  # the sum rule at the fork
    dz1, g["g_stem"], g["beta_stem"] = bn_backward(da1 * relu_prime(c["y1"]), c["bn1"])
    _, g["w_stem"], _ = conv_backward(dz1, c["x"], p["w_stem"], padding=1)
    return {k: g[k] for k in PARAM_NAMES}


def loss_and_grads(params, x, y):
    """``(E, grads)``: the batch-mean softmax cross-entropy of labels y (N,) and its gradients."""
    s, cache = forward(params, x)
    y = as_labels(y, N_CLASSES, "y", n=s.shape[0])
    return (softmax_cross_entropy(s, y, reduction="mean"),
            backward(params, cache, softmax_cross_entropy_grad(s, y, reduction="mean")))


def update_running(running, cache, *, momentum: float = 0.1) -> dict[str, np.ndarray]:
    """New running statistics after one training batch (its cache), every BN layer as a framework does."""
    new = {}
    for k, z in zip(BN_LAYERS, ("z1", "z2", "z3", "z5")):
        new[f"mean_{k}"], new[f"var_{k}"] = update_running_stats(
            running[f"mean_{k}"], running[f"var_{k}"], cache[z], momentum=momentum)
    return new


def predict(params, running, x) -> np.ndarray:
    """Predicted classes (N,), batch normalisation in evaluation mode with the running statistics."""
    p, x = _check(params, x)
    width = p["w_stem"].shape[0]

    def bn(z, k):
        return batchnorm2d_eval_forward(z, p[f"g_{k}"], p[f"beta_{k}"], running[f"mean_{k}"], running[f"var_{k}"])

    a1 = relu(bn(conv2d_forward(x, p["w_stem"], padding=1), "stem"))
    a2 = relu(bn(conv2d_forward(a1, p["w_r1"], padding=1), "r1"))
    a3 = relu(a1 + bn(conv2d_forward(a2, p["w_r2"], padding=1), "r2"))
    z4 = conv2d_forward(a3, p["w_dw"], stride=2, padding=1, groups=width)
    a5 = relu(bn(conv2d_forward(z4, p["w_pw"]), "pw"))
    return np.argmax(dense_forward(global_avgpool2d_forward(a5), p["W"], p["c"]), axis=1)


def accuracy(params, running, x, y) -> float:
    """Fraction of x (N, 1, 8, 8) classified as its label y (N,), in evaluation mode."""
    pred = predict(params, running, x)
    return float(np.mean(pred == as_labels(y, N_CLASSES, "y", n=len(pred))))


def train(*, epochs: int = 8, batch_size: int = 32, lr: float = 0.05, momentum: float = 0.9, seed: int = 0,
          width: int = 8, data=None):
    """Minibatch SGD with momentum and the cosine schedule on the digits (``cnnref.data``).

    Returns ``(params, running, history)``: the trained parameters, the running statistics of the
    batch-normalised layers, and per epoch the mean training loss and the test accuracy (evaluation
    mode). The minibatches are :func:`cnnref.data.batch_indices` of ``seed``, as in ``cnnref.train``.
    """
    from .data import batch_indices, check_digits, load_digits
    from .optim import SGD, cosine_lr

    epochs, batch_size = as_int(epochs, "epochs", minimum=1), as_int(batch_size, "batch_size", minimum=1)
    data = load_digits() if data is None else check_digits(data)
    params, running, opt = init_params(seed, width), init_running(width), SGD(lr, momentum)
    history = {"train_loss": [], "test_acc": []}
    n = data.x_train.shape[0]
    for epoch in range(epochs):
        total = 0.0
        for idx in batch_indices(n, batch_size, seed=seed, epoch=epoch):
            s, cache = forward(params, data.x_train[idx])
            y = data.y_train[idx]
            total += softmax_cross_entropy(s, y, reduction="mean") * idx.size
            grads = backward(params, cache, softmax_cross_entropy_grad(s, y, reduction="mean"))
            params = opt.step(params, grads, cosine_lr(lr, epoch, epochs))
            running = update_running(running, cache)
        history["train_loss"].append(total / n)
        history["test_acc"].append(accuracy(params, running, data.x_test, data.y_test))
    return params, running, history
