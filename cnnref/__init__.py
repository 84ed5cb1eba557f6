"""cnnref: a readable, verified numpy reference for CNN forward and backward passes.

Every public function states the shapes it takes and the book equation it
implements (by its label, e.g. ``[eq-layer-forward]``). Layer operations come
in two tiers: the default vectorised form and a ``*_loop`` form that mirrors
the book's sums index for index. The package map, one line a module:

The reference layers (their public functions are importable from ``cnnref``):

- ``correlation``: single-map cross-correlation and convolution, ``rot180``.
- ``sizes``: ``output_size`` of a strided, padded, dilated window.
- ``conv``: the convolutional layer, forward and backward (pad → im2col → matrix product → col2im).
- ``pooling``: max and mean pooling, forward and backward.
- ``activations``: sigmoid, tanh, ReLU and their derivatives.
- ``dense``: the fully connected layer, ``flatten`` and ``unflatten``.
- ``losses``: ½ squared error and softmax cross-entropy with their gradients.
- ``transposed``: the backward pass written as correlations (zero insertion, dilated kernels).
- ``matlab``: MATLAB's ``convn``, ``conv2`` and ``flipall``, with MATLAB's semantics.
- ``gradcheck``: finite differences, relative error and the adjoint test.

The layers of modern CNNs (Part V; ``conv`` also takes ``groups``):

- ``conv_transpose``: the transposed convolution as a layer, forward and backward.
- ``batchnorm``: batch normalisation, training and evaluation mode, and the running statistics.
- ``residual``: a residual block's forward and backward, assembled from the layers.
- ``global_pool``: global average pooling.
- ``conv1d``: the one-dimensional convolutional layer.

Networks and training:

- ``network``: the network, S stages of (conv → φ → pool) and a dense head, from the layers;
  the digits CNN of the training chapter is its default; ``data``: the digits and their minibatches;
  ``optim``: SGD with momentum; ``train``: training from Python and the ``cnnref-train`` command;
  ``modern``: a small network of Part V's layers (batch norm, a residual block, a depthwise-separable
  convolution, global average pooling) with its hand-assembled backward pass.

Assignments: ``grade``: runs learner notebooks and reports their graded checks
(``python -m cnnref.grade``).

Teaching-only code, in ``cnnref.teaching``: ``sourceforms`` (the sources' equations as printed),
``matlab_net`` (source 004's MATLAB-style network), ``bug_gallery`` (deliberately wrong backward
passes), ``figures`` and one ``figures_*`` module a topic. What the book's chapters use to check themselves is ``cnnref.book``
(``checks``, the jax oracle ``jaxref`` and its Part V companions ``jaxref_*``, the recorded
benchmark, ``glue``).

Internals: ``_validate`` (the argument checks every public function shares) and ``_workspace``
(scratch memory and batch pieces of the vectorised convolution).
"""

# The release, equal to [project] version in pyproject.toml (tests/test_train.py compares them).
__version__ = "0.2.0"

from . import gradcheck, matlab
from .activations import relu, relu_prime, sigmoid, sigmoid_prime, tanh, tanh_prime
from .batchnorm import (
    batchnorm2d_backward,
    batchnorm2d_backward_loop,
    batchnorm2d_eval_backward,
    batchnorm2d_eval_forward,
    batchnorm2d_forward,
    batchnorm2d_forward_loop,
    update_running_stats,
)
from .conv import col2im, conv2d_backward, conv2d_backward_loop, conv2d_forward, conv2d_forward_loop, im2col
from .conv1d import conv1d_backward, conv1d_backward_loop, conv1d_forward, conv1d_forward_loop
from .conv_transpose import (
    conv_transpose2d_backward,
    conv_transpose2d_backward_loop,
    conv_transpose2d_forward,
    conv_transpose2d_forward_loop,
)
from .correlation import convolve2d, convolve2d_loop, correlate2d, correlate2d_loop, rot180
from .dense import dense_backward, dense_forward, flatten, unflatten
from .global_pool import (
    global_avgpool2d_backward,
    global_avgpool2d_backward_loop,
    global_avgpool2d_forward,
    global_avgpool2d_forward_loop,
)
from .losses import (
    half_squared_error,
    half_squared_error_grad,
    softmax,
    softmax_cross_entropy,
    softmax_cross_entropy_grad,
)
from .pooling import (
    avgpool2d_backward,
    avgpool2d_backward_loop,
    avgpool2d_forward,
    maxpool2d_backward,
    maxpool2d_backward_loop,
    maxpool2d_forward,
)
from .residual import (
    residual_block_backward,
    residual_block_backward_loop,
    residual_block_forward,
    residual_block_forward_loop,
)
from .sizes import output_size

__all__ = [
    "batchnorm2d_backward", "batchnorm2d_backward_loop", "batchnorm2d_eval_backward", "batchnorm2d_eval_forward",
    "batchnorm2d_forward", "batchnorm2d_forward_loop", "update_running_stats",
    "conv1d_backward", "conv1d_backward_loop", "conv1d_forward", "conv1d_forward_loop",
    "conv_transpose2d_backward", "conv_transpose2d_backward_loop", "conv_transpose2d_forward",
    "conv_transpose2d_forward_loop",
    "global_avgpool2d_backward", "global_avgpool2d_backward_loop", "global_avgpool2d_forward",
    "global_avgpool2d_forward_loop",
    "residual_block_backward", "residual_block_backward_loop", "residual_block_forward",
    "residual_block_forward_loop",
    "avgpool2d_backward", "avgpool2d_backward_loop", "avgpool2d_forward",
    "col2im", "conv2d_backward", "conv2d_backward_loop", "conv2d_forward", "conv2d_forward_loop", "im2col",
    "convolve2d", "convolve2d_loop", "correlate2d", "correlate2d_loop",
    "dense_backward", "dense_forward", "flatten", "unflatten",
    "gradcheck", "matlab",
    "half_squared_error", "half_squared_error_grad",
    "maxpool2d_backward", "maxpool2d_backward_loop", "maxpool2d_forward",
    "output_size", "relu", "relu_prime", "rot180",
    "sigmoid", "sigmoid_prime", "softmax", "softmax_cross_entropy", "softmax_cross_entropy_grad",
    "tanh", "tanh_prime",
]
