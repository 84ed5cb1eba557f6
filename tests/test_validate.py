"""Bad input across the public API raises the promised error, with a message naming what was expected
and what was given. Nothing is silently broadcast, truncated or reshaped."""

from __future__ import annotations

import re

import numpy as np
import pytest

import cnnref
from cnnref import (
    avgpool2d_backward,
    avgpool2d_backward_loop,
    avgpool2d_forward,
    conv2d_backward,
    conv2d_backward_loop,
    conv2d_forward,
    conv2d_forward_loop,
    convolve2d,
    convolve2d_loop,
    correlate2d,
    correlate2d_loop,
    dense_backward,
    dense_forward,
    flatten,
    half_squared_error,
    half_squared_error_grad,
    maxpool2d_backward,
    maxpool2d_backward_loop,
    maxpool2d_forward,
    output_size,
    relu,
    relu_prime,
    rot180,
    sigmoid,
    sigmoid_prime,
    softmax,
    softmax_cross_entropy,
    softmax_cross_entropy_grad,
    tanh,
    tanh_prime,
    unflatten,
)
from cnnref._validate import as_int, as_labels, as_shape
from cnnref.gradcheck import adjoint_test, numerical_gradient, relative_error
from cnnref.matlab import conv2, convn, flipall

# Valid arguments of every family; each case below breaks exactly one thing.
X, W, B = np.ones((2, 3, 6, 5)), np.ones((4, 3, 3, 2)), np.ones(4)
DZ = np.ones((2, 4, 4, 4))                       # conv2d_forward(X, W) has shape (2, 4, 4, 4)
XP, DYP = np.ones((1, 2, 5, 4)), np.ones((1, 2, 2, 2))   # pooling with size 2 (row 4 unread)
XD, WD, CD, DYD = np.ones((5, 3)), np.ones((2, 3)), np.ones(2), np.ones((5, 2))
X1, W1, B1, DZ1 = np.ones((2, 3, 7)), np.ones((4, 3, 3)), np.ones(4), np.ones((2, 4, 5))   # conv1d
XT, WT, BT, DZT = np.ones((2, 3, 4, 4)), np.ones((3, 2, 3, 3)), np.ones(2), np.ones((2, 2, 6, 6))  # transposed
XR, WR, BR = np.ones((1, 2, 4, 4)), np.ones((2, 2, 3, 3)), np.ones(2)   # a residual block, C = 2
O, T = np.ones((4, 3)), np.zeros((4, 3))
S, LABELS = np.zeros((4, 3)), np.array([0, 1, 2, 0])

CONV_FWD = [conv2d_forward, conv2d_forward_loop]
CONV_BWD = [conv2d_backward, conv2d_backward_loop]
POOL_FWD = [maxpool2d_forward, avgpool2d_forward]
POOL_BWD = [maxpool2d_backward, avgpool2d_backward, maxpool2d_backward_loop, avgpool2d_backward_loop]
ACTIVATIONS = [sigmoid, sigmoid_prime, relu, relu_prime, tanh, tanh_prime]


def _ids(fs):
    return [f.__name__ for f in fs]


# --- non-numeric arrays -------------------------------------------------------------------------

BAD_DTYPES = {
    "str": lambda a: np.full(a.shape, "a"),
    "object": lambda a: a.astype(object),
    "bool": lambda a: a.astype(bool),
    "complex": lambda a: a.astype(complex),
}

# (function, valid positional args, index of the argument to corrupt, its name in the message)
DTYPE_TARGETS = [
    *[(f, (X, W, B), i, n) for f in CONV_FWD for i, n in ((0, "x"), (1, "w"), (2, "b"))],
    *[(f, (DZ, X, W), i, n) for f in CONV_BWD for i, n in ((0, "dz"), (1, "x"), (2, "w"))],
    (cnnref.im2col, (X, 2), 0, "x"),
    (cnnref.col2im, (np.ones((2, 12, 20)), X.shape, 2), 0, "cols"),  # im2col(X, 2) has this shape
    *[(f, (XP, 2), 0, "x") for f in POOL_FWD],
    *[(f, (DYP, XP, 2), i, n) for f in POOL_BWD for i, n in ((0, "dy"), (1, "x"))],
    *[(f, (X,), 0, "z") for f in ACTIVATIONS],
    *[(f, (np.ones((4, 5)), np.ones((2, 2))), i, n)
      for f in (correlate2d, convolve2d, correlate2d_loop, convolve2d_loop) for i, n in ((0, "image"), (1, "kernel"))],
    (rot180, (np.ones((2, 2)),), 0, "a"),
    *[(dense_forward, (XD, WD, CD), i, n) for i, n in ((0, "x"), (1, "W"), (2, "c"))],
    *[(dense_backward, (DYD, XD, WD), i, n) for i, n in ((0, "dy"), (1, "x"), (2, "W"))],
    (flatten, (X,), 0, "a"),
    (unflatten, (np.ones((2, 90)), (2, 3, 6, 5)), 0, "d"),
    *[(f, (O, T), i, n) for f in (half_squared_error, half_squared_error_grad) for i, n in ((0, "o"), (1, "t"))],
    *[(f, (S, LABELS), 0, "logits") for f in (softmax_cross_entropy, softmax_cross_entropy_grad)],
    (softmax, (S,), 0, "logits"),
    *[(f, (np.ones((3, 3)), np.ones((2, 2))), i, n) for f in (convn, conv2) for i, n in ((0, "a"), (1, "b"))],
    (flipall, (np.ones((2, 2)),), 0, "a"),
    (numerical_gradient, (lambda t: 0.0, np.ones(3)), 1, "x"),
    *[(relative_error, (np.ones(3), np.ones(3)), i, n) for i, n in ((0, "a"), (1, "b"))],
    # Part V: the layers of modern CNNs
    *[(f, (X1, W1, B1), i, n) for f in (cnnref.conv1d_forward, cnnref.conv1d_forward_loop)
      for i, n in ((0, "x"), (1, "w"), (2, "b"))],
    *[(f, (DZ1, X1, W1), i, n) for f in (cnnref.conv1d_backward, cnnref.conv1d_backward_loop)
      for i, n in ((0, "dz"), (1, "x"), (2, "w"))],
    *[(f, (XT, WT, BT), i, n) for f in (cnnref.conv_transpose2d_forward, cnnref.conv_transpose2d_forward_loop)
      for i, n in ((0, "x"), (1, "w"), (2, "b"))],
    *[(f, (DZT, XT, WT), i, n) for f in (cnnref.conv_transpose2d_backward, cnnref.conv_transpose2d_backward_loop)
      for i, n in ((0, "dy"), (1, "x"), (2, "w"))],  # the layer's output is y
    *[(f, (X, np.ones(3), np.zeros(3)), i, n) for f in (cnnref.batchnorm2d_forward, cnnref.batchnorm2d_forward_loop)
      for i, n in ((0, "x"), (1, "gamma"), (2, "beta"))],
    *[(f, (X, cnnref.batchnorm2d_forward(X + np.arange(5.0), np.ones(3), np.zeros(3))[1]), 0, "dy")
      for f in (cnnref.batchnorm2d_backward, cnnref.batchnorm2d_backward_loop)],
    *[(cnnref.batchnorm2d_eval_forward, (X, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3)), i, n)
      for i, n in ((0, "x"), (1, "gamma"), (2, "beta"), (3, "running_mean"), (4, "running_var"))],
    *[(cnnref.batchnorm2d_eval_backward, (X, np.ones(3), np.ones(3)), i, n)
      for i, n in ((0, "dy"), (1, "gamma"), (2, "running_var"))],
    *[(cnnref.update_running_stats, (np.zeros(3), np.ones(3), X + np.arange(5.0)), i, n)
      for i, n in ((0, "running_mean"), (1, "running_var"), (2, "x"))],
    *[(f, (X,), 0, "x") for f in (cnnref.global_avgpool2d_forward, cnnref.global_avgpool2d_forward_loop)],
    *[(f, (np.ones((2, 3)), X.shape), 0, "dy")
      for f in (cnnref.global_avgpool2d_backward, cnnref.global_avgpool2d_backward_loop)],
    *[(f, (XR, WR, BR, WR, BR), i, n) for f in (cnnref.residual_block_forward, cnnref.residual_block_forward_loop)
      for i, n in ((0, "x"), (1, "w1"), (2, "b1"), (3, "w2"), (4, "b2"))],
    *[(f, (XR, cnnref.residual_block_forward(XR, WR, BR, WR, BR)[1]), 0, "dy")
      for f in (cnnref.residual_block_backward, cnnref.residual_block_backward_loop)],
]


@pytest.mark.parametrize("kind", list(BAD_DTYPES))
@pytest.mark.parametrize("f, args, index, name", DTYPE_TARGETS,
                         ids=[f"{f.__name__}-{n}" for f, _, _, n in DTYPE_TARGETS])
def test_non_numeric_arrays_raise_type_error(f, args, index, name, kind):
    args = list(args)
    args[index] = BAD_DTYPES[kind](np.asarray(args[index]))
    with pytest.raises(TypeError, match=rf"^{name} must be a real numeric array .*got dtype"):
        f(*args)


# --- wrong number of dimensions -----------------------------------------------------------------

NDIM_CASES = [
    *[pytest.param(f, (np.ones((3, 6, 5)), W), r"^x must be a 4-D array, got 3-D array of shape \(3, 6, 5\)",
                   id=f"{f.__name__}-x3d") for f in CONV_FWD],
    *[pytest.param(f, (X, np.ones((4, 3, 3, 2, 1))), r"^w must be a 4-D array, got 5-D", id=f"{f.__name__}-w5d")
      for f in CONV_FWD],
    *[pytest.param(f, (np.ones((4, 4, 4)), X, W), r"^dz must be a 4-D array, got 3-D", id=f"{f.__name__}-dz3d")
      for f in CONV_BWD],
    *[pytest.param(f, (np.ones((5, 4)), 2), r"^x must be a 4-D array, got 2-D", id=f"{f.__name__}-x2d")
      for f in POOL_FWD],
    *[pytest.param(f, (np.ones((2, 2, 2)), XP, 2), r"^dy must be a 4-D array, got 3-D", id=f"{f.__name__}-dy3d")
      for f in POOL_BWD],
    *[pytest.param(f, (np.ones((1, 4, 5)), np.ones((2, 2))), r"^image must be a 2-D array, got 3-D",
                   id=f"{f.__name__}-image3d") for f in (correlate2d, convolve2d, correlate2d_loop, convolve2d_loop)],
    *[pytest.param(f, (np.ones((4, 5)), np.ones(2)), r"^kernel must be a 2-D array, got 1-D",
                   id=f"{f.__name__}-kernel1d") for f in (correlate2d, convolve2d, correlate2d_loop, convolve2d_loop)],
    pytest.param(rot180, (np.ones(3),), r"^a must have at least 2 dimensions, got shape \(3,\)", id="rot180-1d"),
    pytest.param(dense_forward, (np.ones(3), WD), r"^x must be a 2-D array, got 1-D", id="dense-x1d"),
    pytest.param(dense_forward, (np.ones((1, 5, 3)), WD), r"^x must be a 2-D array, got 3-D", id="dense-x3d"),
    pytest.param(dense_forward, (XD, np.ones(3)), r"^W must be a 2-D array, got 1-D", id="dense-W1d"),
    pytest.param(dense_backward, (np.ones(2), XD, WD), r"^dy must be a 2-D array, got 1-D", id="dense-dy1d"),
    pytest.param(flatten, (np.ones((2, 3, 4)),), r"^a must be a 4-D array, got 3-D", id="flatten-3d"),
    pytest.param(unflatten, (np.ones(8), (2, 1, 2, 2)), r"^d must be a 2-D array, got 1-D", id="unflatten-1d"),
    pytest.param(softmax_cross_entropy, (np.zeros(3), np.array([0])), r"^logits must be a 2-D array, got 1-D",
                 id="ce-logits1d"),
    pytest.param(softmax, (np.zeros((2, 3, 1)),), r"^logits must be a 2-D array, got 3-D", id="softmax-3d"),
    pytest.param(half_squared_error, (np.float64(1.0), np.float64(0.0)), r"batch axis \(at least 1-D\)",
                 id="sse-scalars"),
    pytest.param(conv2, (np.ones((3, 3, 2)), np.ones((2, 2))), r"^a must be a 2-D array, got 3-D", id="conv2-a3d"),
    pytest.param(conv2, (np.ones((3, 3)), np.ones(2)), r"^b must be a 2-D array, got 1-D", id="conv2-b1d"),
    pytest.param(convn, (np.float64(1.0), np.ones(2)), r"^a must have at least 1 dimensions, got shape \(\)",
                 id="convn-a0d"),
    pytest.param(convn, (np.ones(3), np.float64(1.0)), r"^b must have at least 1 dimensions", id="convn-b0d"),
]


@pytest.mark.parametrize("f, args, match", NDIM_CASES)
def test_wrong_number_of_dimensions_raises_value_error(f, args, match):
    with pytest.raises(ValueError, match=match):
        f(*args)


# --- conv: channels, bias, kernel size, settings --------------------------------------------------


@pytest.mark.parametrize("f", CONV_FWD, ids=_ids(CONV_FWD))
def test_conv_channel_mismatch(f):
    with pytest.raises(ValueError, match=r"channel mismatch: x has C_in=3 .* but w expects C_in=2"):
        f(X, np.ones((4, 2, 3, 2)))


@pytest.mark.parametrize("f", CONV_BWD, ids=_ids(CONV_BWD))
def test_conv_backward_channel_mismatch(f):
    with pytest.raises(ValueError, match=r"channel mismatch: x has C_in=3 .* C_in=1"):
        f(DZ, X, np.ones((4, 1, 3, 2)))


@pytest.mark.parametrize("f", CONV_FWD, ids=_ids(CONV_FWD))
@pytest.mark.parametrize("bad_b, match", [
    (np.ones(3), r"^b must have shape \(4,\) \(one bias per output channel, C_out=4\), got \(3,\)"),
    (np.ones(5), r"^b must have shape \(4,\) .*got \(5,\)"),
    (np.ones(1), r"^b must have shape \(4,\) .*got \(1,\)"),          # would broadcast: must not
    (np.ones((4, 1)), r"^b must be a 1-D array, got 2-D array of shape \(4, 1\)"),
    (np.ones((1, 4)), r"^b must be a 1-D array, got 2-D"),
    (np.float64(1.0), r"^b must be a 1-D array, got 0-D"),             # a scalar bias would broadcast
], ids=["short", "long", "length1", "col", "row", "scalar"])
def test_conv_bias_of_the_wrong_shape(f, bad_b, match):
    with pytest.raises(ValueError, match=match):
        f(X, W, bad_b)


@pytest.mark.parametrize("f", CONV_FWD + CONV_BWD, ids=_ids(CONV_FWD + CONV_BWD))
@pytest.mark.parametrize("w_shape, settings, match", [
    ((4, 3, 7, 2), {}, r"dilated kernel spans 7 \(kernel=7, dilation=1\) but the padded input has only 6"),
    ((4, 3, 3, 6), {}, r"dilated kernel spans 6 .* has only 5 \(n=5, padding=0 per side\)"),
    ((4, 3, 3, 3), {"dilation": 3}, r"dilated kernel spans 7 \(kernel=3, dilation=3\) .* only 6"),
    ((4, 3, 9, 2), {"padding": 1}, r"dilated kernel spans 9 .* only 8 \(n=6, padding=1 per side\)"),
    ((4, 3, 3, 4), {"dilation": (1, 2)}, r"dilated kernel spans 7 \(kernel=4, dilation=2\) .* only 5"),
], ids=["kh", "kw", "dilated", "padded", "dilated-pair"])
def test_kernel_larger_than_padded_input(f, w_shape, settings, match):
    args = (X, np.ones(w_shape)) if f in CONV_FWD else (np.ones((2, 4, 1, 1)), X, np.ones(w_shape))
    with pytest.raises(ValueError, match=match):
        f(*args, **settings)


SETTING_CASES = [
    # (keyword, value, exception, message)
    ("stride", 0, ValueError, r"^stride must be positive \(>= 1\), got 0"),
    ("stride", -2, ValueError, r"^stride must be positive \(>= 1\), got -2"),
    ("stride", (1, 0), ValueError, r"^stride must be positive \(>= 1\), got \(1, 0\)"),
    ("stride", 2.0, TypeError, r"^stride must be an int or a pair of ints, got 2\.0 of type float"),
    ("stride", True, TypeError, r"^stride must be an int or a pair of ints, got True of type bool"),
    ("stride", (1, 2, 3), ValueError, r"^stride must be an int or a pair \(h, w\), got a sequence of length 3"),
    ("dilation", 0, ValueError, r"^dilation must be positive \(>= 1\), got 0"),
    ("dilation", (0, 1), ValueError, r"^dilation must be positive \(>= 1\), got \(0, 1\)"),
    ("dilation", -1, ValueError, r"^dilation must be positive"),
    ("dilation", [1, 1.5], TypeError, r"^dilation must be an int or a pair of ints, got 1\.5 of type float"),
    ("padding", -1, ValueError, r"^padding must be non-negative \(>= 0\), got -1"),
    ("padding", (0, -1), ValueError, r"^padding must be non-negative \(>= 0\), got \(0, -1\)"),
    ("padding", 1.5, TypeError, r"^padding must be an int or a pair of ints, got 1\.5 of type float"),
    ("padding", 1.0, TypeError, r"^padding must be an int or a pair of ints, got 1\.0 of type float"),
    ("padding", True, TypeError, r"^padding must be an int or a pair of ints, got True of type bool"),
    ("padding", np.bool_(True), TypeError, r"^padding must be an int or a pair of ints, got .*True.* of type bool"),
    ("padding", (True, 0), TypeError, r"^padding must be an int or a pair of ints, got True of type bool"),
    ("padding", "1", TypeError, r"^padding must be an int or a pair of ints, got '1' of type str"),
    ("padding", None, TypeError, r"^padding must be an int or a pair of ints, got None of type NoneType"),
    ("padding", (1,), ValueError, r"^padding must be an int or a pair \(h, w\), got a sequence of length 1"),
    ("padding", np.array([1, 1]), TypeError, r"^padding must be an int or a pair of ints, got array"),
]


@pytest.mark.parametrize("f", CONV_FWD + CONV_BWD, ids=_ids(CONV_FWD + CONV_BWD))
@pytest.mark.parametrize("key, value, exc, match", SETTING_CASES, ids=[f"{k}={v!r}" for k, v, _, _ in SETTING_CASES])
def test_conv_bad_stride_padding_dilation(f, key, value, exc, match):
    args = (X, W) if f in CONV_FWD else (DZ, X, W)
    with pytest.raises(exc, match=match):
        f(*args, **{key: value})


@pytest.mark.parametrize("f", CONV_BWD, ids=_ids(CONV_BWD))
@pytest.mark.parametrize("dz_shape, match", [
    ((2, 4, 4, 3),
     r"^dz must have shape \(2, 4, 4, 4\) \(the shape of conv2d_forward's output .*\), got \(2, 4, 4, 3\)"),
    ((2, 4, 5, 4), r"got \(2, 4, 5, 4\)"),
    ((1, 4, 4, 4), r"got \(1, 4, 4, 4\)"),       # broadcastable over the batch: must not
    ((2, 1, 4, 4), r"got \(2, 1, 4, 4\)"),       # broadcastable over channels
    ((2, 4, 1, 1), r"got \(2, 4, 1, 1\)"),       # broadcastable over space
    ((2, 3, 4, 4), r"got \(2, 3, 4, 4\)"),
    ((1, 2, 4, 4, 4), r"^dz must be a 4-D array, got 5-D array of shape \(1, 2, 4, 4, 4\)"),  # extra leading dim
], ids=["w", "h", "batch1", "chan1", "space1", "chan", "extra-dim"])
def test_conv_dz_must_match_the_forward_output_exactly(f, dz_shape, match):
    with pytest.raises(ValueError, match=match):
        f(np.ones(dz_shape), X, W)


def test_conv_dz_shape_accounts_for_the_settings():
    # with stride 2 and padding 1 the output is (2, 4, 3, 3); the stride-1 shape is wrong
    with pytest.raises(ValueError, match=r"^dz must have shape \(2, 4, 3, 3\)"):
        conv2d_backward(DZ, X, W, stride=2, padding=1)
    conv2d_backward(np.ones((2, 4, 3, 3)), X, W, stride=2, padding=1)  # and the right one works


@pytest.mark.parametrize("f", CONV_FWD, ids=_ids(CONV_FWD))
def test_conv_empty_arrays(f):
    with pytest.raises(ValueError, match=r"^x and w must not be empty, got x \(0, 3, 6, 5\)"):
        f(np.ones((0, 3, 6, 5)), W)
    with pytest.raises(ValueError, match=r"^x and w must not be empty, .*w \(0, 3, 3, 2\)"):
        f(X, np.ones((0, 3, 3, 2)))


# --- correlation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("f", [correlate2d, convolve2d])
@pytest.mark.parametrize("mode", ["bad", "Valid", "", None, 0, "full "])
def test_unknown_mode(f, mode):
    with pytest.raises(ValueError, match=r"^mode must be one of 'valid', 'full', 'same'; got " + re.escape(repr(mode))):
        f(np.ones((4, 4)), np.ones((2, 2)), mode)


@pytest.mark.parametrize("f", [correlate2d, convolve2d])
def test_valid_mode_kernel_larger_than_image(f):
    with pytest.raises(ValueError, match=r"^mode='valid' needs a kernel no larger than the image in each axis; "
                                         r"got image \(4, 3\) and kernel \(2, 4\)"):
        f(np.ones((4, 3)), np.ones((2, 4)))


@pytest.mark.parametrize("f", [correlate2d_loop, convolve2d_loop])
def test_loop_kernel_larger_than_image(f):
    with pytest.raises(ValueError, match=r"kernel \(5, 1\) is larger than image \(4, 3\)"):
        f(np.ones((4, 3)), np.ones((5, 1)))


@pytest.mark.parametrize("f", [correlate2d, convolve2d, correlate2d_loop, convolve2d_loop])
def test_correlation_empty_arrays(f):
    with pytest.raises(ValueError, match=r"^image must not be empty, got shape \(0, 3\)"):
        f(np.ones((0, 3)), np.ones((1, 1)))
    with pytest.raises(ValueError, match=r"^kernel must not be empty, got shape \(2, 0\)"):
        f(np.ones((3, 3)), np.ones((2, 0)))


# --- pooling --------------------------------------------------------------------------------------


POOL_ALL = POOL_FWD + POOL_BWD


def _pool_call(f, size, stride=None, dy=DYP, x=XP):
    return f(x, size, stride) if f in POOL_FWD else f(dy, x, size, stride)


@pytest.mark.parametrize("f", POOL_ALL, ids=_ids(POOL_ALL))
@pytest.mark.parametrize("size, stride, exc, match", [
    (0, None, ValueError, r"^size must be positive \(>= 1\), got 0"),
    ((2, -1), None, ValueError, r"^size must be positive \(>= 1\), got \(2, -1\)"),
    (2, 0, ValueError, r"^stride must be positive \(>= 1\), got 0"),
    (2, (1, 0), ValueError, r"^stride must be positive \(>= 1\), got \(1, 0\)"),
    (1.5, None, TypeError, r"^size must be an int or a pair of ints, got 1\.5 of type float"),
    (2, True, TypeError, r"^stride must be an int or a pair of ints, got True of type bool"),
    (2, 2.0, TypeError, r"^stride must be an int or a pair of ints, got 2\.0"),
    ((2, 2, 2), None, ValueError, r"^size must be an int or a pair \(h, w\), got a sequence of length 3"),
    (6, None, ValueError, r"dilated kernel spans 6 \(kernel=6, dilation=1\) but the padded input has only 5"),
    ((2, 5), None, ValueError, r"dilated kernel spans 5 .* has only 4"),
], ids=["size0", "size-neg", "stride0", "stride-pair0", "size-float", "stride-bool", "stride-float",
        "size-len3", "too-big-h", "too-big-w"])
def test_pool_bad_size_and_stride(f, size, stride, exc, match):
    with pytest.raises(exc, match=match):
        _pool_call(f, size, stride)


@pytest.mark.parametrize("f", POOL_BWD, ids=_ids(POOL_BWD))
@pytest.mark.parametrize("dy_shape, match", [
    ((1, 2, 2, 1), r"^dy must have shape \(1, 2, 2, 2\) \(the shape of the pooling output .*\), got \(1, 2, 2, 1\)"),
    ((1, 1, 2, 2), r"got \(1, 1, 2, 2\)"),       # broadcastable over channels: must not
    ((1, 2, 1, 1), r"got \(1, 2, 1, 1\)"),       # broadcastable over space
    ((1, 2, 3, 2), r"got \(1, 2, 3, 2\)"),       # as if the remainder row 4 made a window
    ((1, 1, 2, 2, 2), r"^dy must be a 4-D array, got 5-D"),
], ids=["w", "chan1", "space1", "remainder", "extra-dim"])
def test_pool_dy_must_match_the_forward_output_exactly(f, dy_shape, match):
    with pytest.raises(ValueError, match=match):
        f(np.ones(dy_shape), XP, 2)


@pytest.mark.parametrize("f", POOL_ALL, ids=_ids(POOL_ALL))
def test_pool_empty_input(f):
    with pytest.raises(ValueError, match=r"^x must not be empty, got shape \(0, 2, 5, 4\)"):
        _pool_call(f, 2, x=np.ones((0, 2, 5, 4)), dy=np.ones((0, 2, 2, 2)))


# --- dense ----------------------------------------------------------------------------------------


def test_dense_feature_mismatch():
    with pytest.raises(ValueError, match=r"^feature mismatch: x has D_in=3 features \(shape \(5, 3\)\) but W "
                                         r"expects D_in=4 \(shape \(2, 4\), \(D_out, D_in\)\)"):
        dense_forward(XD, np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"^feature mismatch: x has D_in=3 .* D_in=2"):
        dense_backward(DYD, XD, np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"^feature mismatch"):
        dense_forward(XD, WD.T)  # (3, 2) is W transposed: not silently accepted


@pytest.mark.parametrize("bad_c, match", [
    (np.ones(3), r"^c must have shape \(2,\) \(one bias per output unit, D_out=2\), got \(3,\)"),
    (np.ones(1), r"^c must have shape \(2,\) .*got \(1,\)"),     # would broadcast
    (np.ones((2, 1)), r"^c must be a 1-D array, got 2-D array of shape \(2, 1\)"),
    (np.ones((1, 2)), r"^c must be a 1-D array, got 2-D"),       # would broadcast
    (np.float64(1.0), r"^c must be a 1-D array, got 0-D"),
])
def test_dense_bias_of_the_wrong_shape(bad_c, match):
    with pytest.raises(ValueError, match=match):
        dense_forward(XD, WD, bad_c)


@pytest.mark.parametrize("dy_shape, match", [
    ((5, 3), r"^dy must have shape \(5, 2\) \(\(N, D_out\), the shape of dense_forward's output\), got \(5, 3\)"),
    ((1, 2), r"got \(1, 2\)"),                   # broadcastable over the batch
    ((5, 1), r"got \(5, 1\)"),
    ((1, 5, 2), r"^dy must be a 2-D array, got 3-D"),
])
def test_dense_dy_must_match_the_forward_output_exactly(dy_shape, match):
    with pytest.raises(ValueError, match=match):
        dense_backward(np.ones(dy_shape), XD, WD)


@pytest.mark.parametrize("d_shape, shape", [((2, 12), (2, 3, 2, 3)), ((3, 12), (2, 3, 2, 2)),
                                            ((2, 12), (2, 12)), ((2, 12), (2, 3, 2, 2, 1))])
def test_unflatten_shape_mismatch(d_shape, shape):
    with pytest.raises(ValueError, match=r"^cannot unflatten an array of shape " + re.escape(str(d_shape)) + " into"):
        unflatten(np.ones(d_shape), shape)


# --- losses ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("f", [half_squared_error, half_squared_error_grad])
@pytest.mark.parametrize("t_shape", [(4, 1), (1, 3), (3,), (4, 3, 1), (3, 4)], ids=str)
def test_half_squared_error_shapes_must_match_exactly(f, t_shape):
    with pytest.raises(ValueError, match=r"^o and t must have the same shape, got o \(4, 3\) and t "):
        f(O, np.zeros(t_shape))


@pytest.mark.parametrize("f, args", [
    (half_squared_error, (O, T)), (half_squared_error_grad, (O, T)),
    (softmax_cross_entropy, (S, LABELS)), (softmax_cross_entropy_grad, (S, LABELS)),
], ids=["sse", "sse_grad", "ce", "ce_grad"])
@pytest.mark.parametrize("reduction", ["avg", "Mean", "none", None, 1])
def test_unknown_reduction(f, args, reduction):
    with pytest.raises(ValueError, match=r"^reduction must be one of 'sum', 'mean'; got " + re.escape(repr(reduction))):
        f(*args, reduction)


@pytest.mark.parametrize("f", [softmax_cross_entropy, softmax_cross_entropy_grad])
@pytest.mark.parametrize("labels, exc, match", [
    (np.array([0, 1, 3, 0]), ValueError, r"^labels must lie in \[0, 2\], got values from 0 to 3"),
    (np.array([0, -1, 2, 0]), ValueError, r"^labels must lie in \[0, 2\], got values from -1 to 2"),
    (np.array([0.0, 1.0, 2.0, 0.0]), TypeError,
     r"^labels must be an integer array of class indices, got dtype float64"),
    (np.array([True, False, True, False]), TypeError, r"^labels must be an integer array .*got dtype bool"),
    (np.array(["0", "1", "2", "0"]), TypeError, r"^labels must be an integer array .*got dtype <U1"),
    (np.array([0, 1, 2]), ValueError, r"^labels must have shape \(N,\) = \(4,\), got \(3,\)"),
    (np.array([[0], [1], [2], [0]]), ValueError, r"^labels must have shape \(N,\) = \(4,\), got \(4, 1\)"),
    (np.array(1), ValueError, r"^labels must have shape \(N,\) = \(4,\), got \(\)"),  # a scalar would broadcast
    (np.eye(3)[[0, 1, 2, 0]].astype(int), ValueError, r"got \(4, 3\)"),            # one-hot is not accepted
], ids=["too-big", "negative", "float", "bool", "str", "short", "column", "scalar", "onehot"])
def test_bad_labels(f, labels, exc, match):
    with pytest.raises(exc, match=match):
        f(S, labels)


@pytest.mark.parametrize("f, args", [
    (half_squared_error, (np.zeros((0, 3)), np.zeros((0, 3)))),
    (half_squared_error_grad, (np.zeros((0, 3)), np.zeros((0, 3)))),
    (softmax_cross_entropy, (np.zeros((0, 3)), np.zeros(0, dtype=int))),
    (softmax_cross_entropy_grad, (np.zeros((0, 3)), np.zeros(0, dtype=int))),
], ids=["sse", "sse_grad", "ce", "ce_grad"])
def test_mean_over_an_empty_batch(f, args):
    # the mean over N = 0 examples is undefined: a ValueError, not a ZeroDivisionError
    with pytest.raises(ValueError, match=r"reduction='mean' needs at least one example, got N=0"):
        f(*args, "mean")
    f(*args, "sum")  # the sum over no examples is fine (0)


# --- matlab ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("f", [convn, conv2])
@pytest.mark.parametrize("shape", ["bad", "Same", "", None])
def test_unknown_matlab_shape(f, shape):
    match = r"^shape must be one of 'full', 'same', 'valid'; got " + re.escape(repr(shape))
    with pytest.raises(ValueError, match=match):
        f(np.ones((3, 3)), np.ones((2, 2)), shape)


@pytest.mark.parametrize("f", [convn, conv2])
def test_matlab_empty_arrays(f):
    with pytest.raises(ValueError, match=r"^a and b must not be empty, got shapes \(0, 3\) and \(2, 2\)"):
        f(np.ones((0, 3)), np.ones((2, 2)))


# --- output_size ----------------------------------------------------------------------------------


@pytest.mark.parametrize("args, exc, match", [
    ((0, 1), ValueError, r"^n must be >= 1, got 0"),
    ((5, 0), ValueError, r"^kernel must be >= 1, got 0"),
    ((5, 3, 0), ValueError, r"^stride must be >= 1, got 0"),
    ((5, 3, -1), ValueError, r"^stride must be >= 1, got -1"),
    ((5, 3, 1, -1), ValueError, r"^padding must be >= 0, got -1"),
    ((5, 3, 1, 0, 0), ValueError, r"^dilation must be >= 1, got 0"),
    ((5, 6), ValueError, r"^the dilated kernel spans 6 \(kernel=6, dilation=1\) but the padded input has only 5 "
                         r"\(n=5, padding=0 per side\); the output would be empty"),
    ((5, 3, 1, 0, 3), ValueError, r"spans 7 \(kernel=3, dilation=3\) .* only 5"),
    ((5.0, 3), TypeError, r"^n must be an int, got 5\.0 of type float"),
    ((5, 3.0), TypeError, r"^kernel must be an int, got 3\.0"),
    ((5, 3, True), TypeError, r"^stride must be an int, got True of type bool"),
    ((5, 3, 1, 1.5), TypeError, r"^padding must be an int, got 1\.5"),
    ((5, 3, 1, True), TypeError, r"^padding must be an int, got True"),
    ((5, 3, 1, 0, "2"), TypeError, r"^dilation must be an int, got '2' of type str"),
    ((5, 3, (1, 1)), TypeError, r"^stride must be an int, got \(1, 1\) of type tuple"),  # one axis at a time
])
def test_output_size_invalid_args(args, exc, match):
    with pytest.raises(exc, match=match):
        output_size(*args)


# --- gradcheck ------------------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [0.0, -1e-3, 1, np.inf * 0, np.inf, "1e-3", None])
def test_numerical_gradient_bad_eps(eps):
    with pytest.raises(ValueError, match=r"^eps must be a positive finite float, got"):
        numerical_gradient(lambda t: float(np.sum(t)), np.ones(3), eps)


def test_relative_error_shapes_must_match():
    with pytest.raises(ValueError, match=r"^a and b must have the same shape, got \(3,\) and \(1,\)"):
        relative_error(np.ones(3), np.ones(1))
    with pytest.raises(ValueError, match=r"got \(2, 3\) and \(3, 2\)"):
        relative_error(np.ones((2, 3)), np.ones((3, 2)))


def test_adjoint_test_checks_the_shapes_it_was_promised():
    A = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"^forward returned shape \(2,\), expected out_shape \(3,\)"):
        adjoint_test(lambda v: A @ v, lambda u: np.zeros(3), (3,), (3,))
    with pytest.raises(ValueError, match=r"^transpose returned shape \(2, 1\), expected in_shape \(3,\)"):
        adjoint_test(lambda v: A @ v, lambda u: np.ones((2, 1)), (3,), (2,))


def test_every_public_function_is_covered_here():
    # A new public function must get its bad-input cases in this file.
    covered = {f.__name__ for f, *_ in DTYPE_TARGETS} | {"output_size"}
    public = {name for name in cnnref.__all__ if callable(getattr(cnnref, name))} - {"gradcheck", "matlab"}
    assert public <= covered, sorted(public - covered)


# --- the helpers themselves ---------------------------------------------------------------------


@pytest.mark.parametrize("value, minimum, exc, match", [
    (0, 1, ValueError, r"^n must be a positive int, got 0$"),
    (-1, 0, ValueError, r"^n must be a non-negative int, got -1$"),
    (2, 3, ValueError, r"^n must be an int >= 3, got 2$"),
    (2.0, 1, TypeError, r"^n must be an int, got 2\.0 of type float$"),
    (np.bool_(True), 0, TypeError, r"^n must be an int, got .*True"),
])
def test_as_int_minimum(value, minimum, exc, match):
    with pytest.raises(exc, match=match):
        as_int(value, "n", minimum=minimum)
    assert as_int(np.int64(5), "n", minimum=minimum) == 5


@pytest.mark.parametrize("shape, kw, exc, match", [
    ((2, 3), dict(ndim=4), ValueError, r"^s must be a sequence of 4 ints, got \(2, 3\)$"),
    (np.array([2, 3]), {}, ValueError, r"^s must be a sequence of ints, got array"),
    ((2, "3"), {}, TypeError, r"^s must be a sequence of ints, got '3' of type str$"),
    ((2, -1), {}, ValueError, r"^s must have entries >= 0, got \(2, -1\)$"),
    ((2, 0), dict(minimum=1, why="NCHW"), ValueError, r"^s must have entries >= 1, got \(2, 0\)$"),
    ((2, 1.0), dict(why="NCHW"), TypeError, r"^s must be a sequence of ints \(NCHW\), got 1\.0"),
])
def test_as_shape(shape, kw, exc, match):
    with pytest.raises(exc, match=match):
        as_shape(shape, "s", **kw)
    assert as_shape([2, np.int64(3)], "s") == (2, 3) and as_shape((), "s") == ()


@pytest.mark.parametrize("labels, n, exc, match", [
    (np.array([0, 3]), None, ValueError, r"^y must lie in \[0, 2\], got values from 0 to 3$"),
    (np.array([0.0]), None, TypeError, r"^y must be an integer array of class indices, got dtype float64$"),
    (np.array([[0]]), None, ValueError, r"^y must have shape \(N,\), got \(1, 1\)$"),
    (np.array([0, 1]), 3, ValueError, r"^y must have shape \(N,\) = \(3,\), got \(2,\)$"),
])
def test_as_labels(labels, n, exc, match):
    with pytest.raises(exc, match=match):
        as_labels(labels, 3, "y", n=n)
    assert as_labels([0, 2], 3, "y", n=2).tolist() == [0, 2]
