"""cnnref.conv_transpose: the transposed convolution as a layer, forward and backward.

Checked against three jax routes to the layer (``cnnref.book.jaxref_transposed``: lax.conv_general_dilated
with lhs_dilation, lax.conv_transpose, and jax.vjp of a convolution) and ``jax.vjp`` of the first, against
the loop forms, against cnnref's own convolution with the roles swapped (the book's derivation),
against central differences, and by the adjoint test; bad input is rejected with clear messages, and
planted wrong backward passes are caught.
"""

from __future__ import annotations

from cnnref.book import jaxref_transposed as jt  # noqa: I001  (first: x64 in jax before anything else uses it)
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cnnref import conv2d_backward, conv2d_forward, output_size
from cnnref.conv_transpose import (
    conv_transpose2d_backward,
    conv_transpose2d_backward_loop,
    conv_transpose2d_forward,
    conv_transpose2d_forward_loop,
)
from cnnref.gradcheck import adjoint_test, relative_error
from helpers import HYPOTHESIS, RTOL32, as_pair, assert_close, assert_layer_gradients_match_central_differences, int_or_pair

# assert_close's default tolerance is 1e-12 of the reference's largest magnitude: every output entry
# is a sum of at most C_in/g · K_h · K_w ≤ a few dozen products here, and two float64 evaluations of
# such a sum in different orders differ by a few ulps (~1e-16 relative); a wrong index, a missing
# flip or a wrong crop changes entries by O(1) of that magnitude.

# x is (2, 4, 4, 5) and w is (4, C_out/g, 3, 2): non-square everywhere. Every keyword, as ints and
# as pairs; output_padding both below the stride and (with dilation > stride) at or above it; a
# padding larger than d (K − 1), which crops real rows; groups 1, 2 and 4 (depthwise).
SETTINGS = [
    pytest.param(dict(), id="plain"),
    pytest.param(dict(stride=2), id="stride2"),
    pytest.param(dict(stride=2, padding=1, output_padding=1), id="stride2-pad1-op1"),
    pytest.param(dict(stride=3, padding=1, output_padding=2), id="stride3-op2"),
    pytest.param(dict(stride=(2, 3), padding=(1, 2), output_padding=(1, 0), dilation=(2, 1)), id="pairs"),
    pytest.param(dict(stride=1, dilation=3, output_padding=2, padding=(1, 4)), id="op-from-dilation-big-pad"),
    pytest.param(dict(stride=2, dilation=3, output_padding=(2, 1)), id="op-above-stride"),
    pytest.param(dict(stride=2, padding=1, output_padding=1, groups=2), id="groups2"),
    pytest.param(dict(stride=(1, 2), padding=(0, 1), dilation=2, groups=4), id="depthwise"),
]
X_SHAPE, KERNEL = (2, 4, 4, 5), (3, 2)
C_OUT = 6  # output maps for groups 1 and 2; depthwise (groups 4) has 4 · 1


def _w_shape(groups=1, c_in=X_SHAPE[1], c_out=None, kernel=KERNEL):
    c_out = (C_OUT if groups < 4 else 4) if c_out is None else c_out
    return (c_in, c_out // groups) + tuple(kernel)


def _problem(x_shape=X_SHAPE, w_shape=None, seed=0, **settings):
    rng = np.random.default_rng(seed)
    w_shape = _w_shape(settings.get("groups", 1)) if w_shape is None else w_shape
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    y_shape = jt.output_shape(x_shape, w_shape, **settings)
    b = rng.standard_normal(y_shape[1])
    dy = rng.standard_normal(y_shape)
    return x, w, b, dy


def _conv_settings(settings):
    return {k: settings[k] for k in ("stride", "padding", "dilation") if k in settings}


# --- forward ----------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", SETTINGS)
def test_forward_matches_the_jax_references(settings):
    x, w, b, dy = _problem(**settings)
    y_ref = jt.conv_transpose2d_vjp(x, w, b, dy, **settings)[0]  # lax.conv_general_dilated, lhs_dilation
    y = conv_transpose2d_forward(x, w, b, **settings)
    assert y.shape == jt.output_shape(x.shape, w.shape, **settings)
    assert_close(y, y_ref)
    assert_close(conv_transpose2d_forward_loop(x, w, b, **settings), y_ref)
    assert_close(np.asarray(jt.conv_transpose2d_as_vjp(x, w, b, **settings)), y_ref)  # jax.vjp of a conv
    if settings.get("groups", 1) == 1:  # lax.conv_transpose has no group count
        assert_close(np.asarray(jt.conv_transpose2d_lax(x, w, b, **settings)), y_ref)


def test_forward_hand_worked_stamps():
    # kernel size = stride: the stamps tile the output, y = kron(x, w)
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    w = np.array([[[[1.0, 10.0], [100.0, 1000.0]]]])
    expected = np.kron(x, w)
    np.testing.assert_array_equal(conv_transpose2d_forward(x, w, stride=2), expected)
    np.testing.assert_array_equal(conv_transpose2d_forward_loop(x, w, stride=2), expected)
    # stride 1, 2x2 ones: each output counts the input pixels whose stamp covers it
    #   [[1, 2], [3, 4]] -> [[1, 3, 2], [4, 10, 6], [3, 7, 4]]
    expected = np.array([[[[1.0, 3.0, 2.0], [4.0, 10.0, 6.0], [3.0, 7.0, 4.0]]]])
    np.testing.assert_array_equal(conv_transpose2d_forward(x, np.ones((1, 1, 2, 2))), expected)


def test_forward_hand_worked_padding_crops_and_output_padding_extends():
    # 1-D in effect: x = [1, 2, 3] (one row), w = [1, 1, 1], stride 2. Full scatter (7 columns):
    # stamps at 0-2, 2-4, 4-6 -> [1, 1, 3, 2, 5, 3, 3]. padding=1 crops one column per side:
    # [1, 3, 2, 5, 3]; output_padding=1 keeps one more at the end: [1, 3, 2, 5, 3, 3].
    x = np.array([[[[1.0, 2.0, 3.0]]]])
    w = np.ones((1, 1, 1, 3))
    np.testing.assert_array_equal(conv_transpose2d_forward(x, w, stride=(1, 2))[0, 0, 0], [1, 1, 3, 2, 5, 3, 3])
    np.testing.assert_array_equal(conv_transpose2d_forward(x, w, stride=(1, 2), padding=(0, 1))[0, 0, 0],
                                  [1, 3, 2, 5, 3])
    y = conv_transpose2d_forward(x, w, np.array([0.5]), stride=(1, 2), padding=(0, 1), output_padding=(0, 1))
    np.testing.assert_array_equal(y[0, 0, 0], np.array([1, 3, 2, 5, 3, 3]) + 0.5)
    # padding 2 and output_padding 1: [3, 2, 5, 3] (2 cropped at the front, 1 at the end)
    np.testing.assert_array_equal(
        conv_transpose2d_forward_loop(x, w, stride=(1, 2), padding=(0, 2), output_padding=(0, 1))[0, 0, 0],
        [3, 2, 5, 3])


def test_checkerboard_of_a_constant_input():
    # stride 2, kernel 3: interior columns are covered by 1, 2, 1, 2, ... stamps; products of the
    # row and column counts give the values 1, 2 and 4. Kernel 4 covers every interior pixel twice.
    ones = np.ones((1, 1, 6, 6))
    y3 = conv_transpose2d_forward(ones, np.ones((1, 1, 3, 3)), stride=2)[0, 0]
    counts3 = np.array([1, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 1])
    np.testing.assert_array_equal(y3, np.outer(counts3, counts3))
    y4 = conv_transpose2d_forward(ones, np.ones((1, 1, 4, 4)), stride=2, padding=1)[0, 0]
    assert np.all(y4[1:-1, 1:-1] == 4.0)


@pytest.mark.parametrize("h, kernel, stride, padding, dilation", [
    (4, 3, 3, 1, 1), (5, 2, 2, 0, 1), (3, 3, 2, 2, 2), (6, 1, 4, 0, 1), (2, 2, 1, 0, 3),
])
def test_output_padding_selects_one_of_the_sizes_a_conv_maps_to_h(h, kernel, stride, padding, dilation):
    # [eq-tc-output-size] and its inverse: the convolution with the same settings maps each of the
    # `stride` sizes H_out(op), op = 0 … s − 1, back to H (the floor of [eq-output-size]).
    sizes = []
    for op in range(max(stride, dilation)):
        x = np.ones((1, 1, h, 1))
        w = np.ones((1, 1, kernel, 1))
        y = conv_transpose2d_forward(x, w, stride=(stride, 1), padding=(padding, 0), output_padding=(op, 0),
                                     dilation=(dilation, 1))
        h_out = (h - 1) * stride - 2 * padding + dilation * (kernel - 1) + op + 1
        assert y.shape[2] == h_out
        conv_h = output_size(h_out, kernel, stride, padding, dilation)
        assert conv_h == (h if op < stride else h + op // stride)
        sizes.append(h_out)
    assert sizes == list(range(sizes[0], sizes[0] + max(stride, dilation)))


# --- the derivation: the layer is the input gradient of a convolution ---------------------------


@pytest.mark.parametrize("settings", [s for s in SETTINGS if s.values[0].get("groups", 1) == 1])
def test_forward_is_the_input_gradient_of_a_convolution(settings):
    # [eq-tc-is-input-grad]: y = conv2d_backward's dx of the conv whose kernel is w (as OIHW: C_out -> C_in
    # maps) and input size (H_out, W_out), given x as its deltas; when output_padding >= stride that
    # conv has ⌊op/s⌋ more output rows, and x is extended by zeros (the rows y does not use).
    x, w, _, dy = _problem(**settings)
    conv = _conv_settings(settings)
    (h, wd), conv_hw = x.shape[2:], conv2d_forward(dy, w, **conv).shape[2:]
    x_ext = np.pad(x, ((0, 0), (0, 0), (0, conv_hw[0] - h), (0, conv_hw[1] - wd)))
    y = conv_transpose2d_forward(x, w, **settings)
    assert_close(y, conv2d_backward(x_ext, np.zeros(dy.shape), w, **conv)[0])
    # and its backward: dx = conv2d_forward(dy, w), dw = the conv's weight gradient with input dy, deltas x
    dx, dw, db = conv_transpose2d_backward(dy, x, w, **settings)
    assert_close(dx, conv2d_forward(dy, w, **conv)[:, :, :h, :wd])
    assert_close(dw, conv2d_backward(x_ext, dy, w, **conv)[1])
    assert_close(db, dy.sum(axis=(0, 2, 3)))


@pytest.mark.parametrize("settings", SETTINGS)
def test_transposed_convolution_is_the_transpose_of_the_convolution(settings):
    # <u, 𝒞 v> = <𝒞ᵀ u, v> with 𝒞 = cnnref.conv2d_forward (each group separately) and 𝒞ᵀ =
    # conv_transpose2d_forward; u is padded with zeros when op >= stride, as the layer does.
    x, w, _, dy = _problem(**settings)
    groups, conv = settings.get("groups", 1), _conv_settings(settings)
    c_g, o_g = x.shape[1] // groups, w.shape[1]

    def big_to_small(v):  # 𝒞, per group: (N, C_out, H_out, W_out) -> (N, C_in, H, W)
        out = [conv2d_forward(v[:, k * o_g:(k + 1) * o_g], w[k * c_g:(k + 1) * c_g], **conv) for k in range(groups)]
        return np.concatenate(out, axis=1)[:, :, : x.shape[2], : x.shape[3]]

    err = adjoint_test(big_to_small, lambda u: conv_transpose2d_forward(u, w, **settings), dy.shape, x.shape,
                       rng=np.random.default_rng(3))
    assert err < ADJOINT_TOL


# --- backward ---------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", SETTINGS)
def test_backward_matches_jax_vjp(settings):
    x, w, b, dy = _problem(seed=1, **settings)
    _, dx_ref, dw_ref, db_ref = jt.conv_transpose2d_vjp(x, w, b, dy, **settings)
    dx, dw, db = conv_transpose2d_backward(dy, x, w, **settings)
    assert (dx.shape, dw.shape, db.shape) == (x.shape, w.shape, b.shape)
    assert_close(dx, dx_ref)
    assert_close(dw, dw_ref)
    assert_close(db, db_ref)


@pytest.mark.parametrize("settings", SETTINGS)
def test_backward_loop_matches_vectorised(settings):
    x, w, _, dy = _problem(seed=2, **settings)
    for got, expected in zip(conv_transpose2d_backward_loop(dy, x, w, **settings),
                             conv_transpose2d_backward(dy, x, w, **settings)):
        assert got.shape == expected.shape
        assert_close(got, expected)


# E = Σ G ⊙ y is linear in each of x, w, b separately, so the central difference with ε = 0.5 is
# exact up to rounding (~1e-16 |E| / ε ≈ 1e-14 relative here); 1e-10 is four orders above that
# and far below the O(1) change of a wrong index.
CENTRAL_EPS, CENTRAL_RTOL = 0.5, 1e-10


@pytest.mark.parametrize("settings", [SETTINGS[2], SETTINGS[4], SETTINGS[6], SETTINGS[7]])
def test_backward_matches_central_differences(settings):
    x, w, b, dy = _problem(x_shape=(1, 4, 3, 3), seed=3, **settings)
    assert_layer_gradients_match_central_differences(
        conv_transpose2d_forward, conv_transpose2d_backward, dy, x, w, b, CENTRAL_EPS, CENTRAL_RTOL, **settings
    )


# A correct (map, transpose) pair scores ~1e-16 in float64; 1e-13 leaves room for summation order
# and fails any wrong transpose (which scores 1e-2 or more).
ADJOINT_TOL = 1e-13


@pytest.mark.parametrize("settings", SETTINGS)
def test_adjoint_wrt_x_and_w(settings):
    x, w, _, dy = _problem(seed=4, **settings)
    err_x = adjoint_test(lambda v: conv_transpose2d_forward(v, w, **settings),
                         lambda u: conv_transpose2d_backward(u, np.zeros(x.shape), w, **settings)[0],
                         x.shape, dy.shape, rng=np.random.default_rng(10))
    err_w = adjoint_test(lambda v: conv_transpose2d_forward(x, v, **settings),
                         lambda u: conv_transpose2d_backward(u, x, np.zeros(w.shape), **settings)[1],
                         w.shape, dy.shape, rng=np.random.default_rng(11))
    err_b = adjoint_test(lambda v: conv_transpose2d_forward(np.zeros(x.shape), w, v, **settings),
                         lambda u: conv_transpose2d_backward(u, x, w, **settings)[2],
                         (dy.shape[1],), dy.shape, rng=np.random.default_rng(12))
    assert max(err_x, err_w, err_b) < ADJOINT_TOL


# --- planted bugs are caught --------------------------------------------------------------------


def _wrong_flipped_kernel(dy, x, w, **s):
    """dx with the kernel rotated by 180°: the 'transposed convolution flips the kernel' slip."""
    return conv_transpose2d_backward(dy, x, w[:, :, ::-1, ::-1], **s)[0]


def _wrong_no_output_padding(dy, x, w, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """dw computed as if output_padding were 0: the last rows of dy are dropped."""
    return conv_transpose2d_backward(dy[:, :, :-1, :-1], x, w, stride=stride, padding=padding, dilation=dilation,
                                     groups=groups)[1]


@pytest.mark.parametrize("wrong, which", [(_wrong_flipped_kernel, 0), (_wrong_no_output_padding, 1)])
def test_planted_wrong_backward_passes_are_caught(wrong, which):
    settings = dict(stride=2, padding=1, output_padding=(1, 1))
    x, w, b, dy = _problem(seed=5, **settings)
    got = wrong(dy, x, w, **settings)
    ref = jt.conv_transpose2d_vjp(x, w, b, dy, **settings)[1 + which]
    assert got.shape == ref.shape
    assert relative_error(got, ref) > 0.05  # the checks above allow 1e-12
    with pytest.raises(AssertionError):
        assert_close(got, ref)
    # the adjoint test needs no reference and catches it too
    zeros = np.zeros(x.shape if which == 0 else w.shape)
    if which == 0:
        err = adjoint_test(lambda v: conv_transpose2d_forward(v, w, **settings),
                           lambda u: wrong(u, zeros, w, **settings), x.shape, dy.shape)
    else:
        err = adjoint_test(lambda v: conv_transpose2d_forward(x, v, **settings),
                           lambda u: wrong(u, x, zeros, **settings), w.shape, dy.shape)
    assert err > 1e-3


# --- bad input ----------------------------------------------------------------------------------


X_OK, W_OK = np.zeros((1, 2, 3, 3)), np.zeros((2, 3, 2, 2))


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(stride=2, output_padding=2), ValueError,
     r"^output_padding must be smaller than max\(stride, dilation\) on each axis \(as in PyTorch\), "
     r"got output_padding=2 with stride=2 and dilation=1 for the rows"),
    (dict(stride=(1, 2), output_padding=(0, 3), dilation=(1, 3)), ValueError,
     r"got output_padding=3 with stride=2 and dilation=3 for the columns"),
    (dict(output_padding=1), ValueError, r"output_padding=1 with stride=1 and dilation=1"),
    (dict(padding=3), ValueError, r"^the output would be empty: H_out, W_out = .* = \(-2, -2\) .*padding=\(3, 3\)"),
    (dict(groups=4), ValueError, r"^groups=4 must divide the C_in=2 input channels"),
    (dict(groups=0), ValueError, r"^groups must be a positive int, got 0"),
    (dict(groups=1.0), TypeError, r"^groups must be an int, got 1.0 of type float"),
    (dict(stride=0), ValueError, r"^stride must be positive \(>= 1\), got 0"),
    (dict(padding=-1), ValueError, r"^padding must be non-negative \(>= 0\), got -1"),
    (dict(output_padding=(0, -1), stride=2), ValueError, r"^output_padding must be non-negative"),
    (dict(dilation=True), TypeError, r"^dilation must be an int or a pair of ints, got True"),
])
def test_bad_settings_are_rejected(kwargs, exc, match):
    for f in (conv_transpose2d_forward, conv_transpose2d_forward_loop):
        with pytest.raises(exc, match=match):
            f(X_OK, W_OK, **kwargs)
    for f in (conv_transpose2d_backward, conv_transpose2d_backward_loop):
        with pytest.raises(exc, match=match):
            f(np.zeros((1, 3, 4, 4)), X_OK, W_OK, **kwargs)


@pytest.mark.parametrize("x, w, b, exc, match", [
    (np.zeros((1, 3, 3, 3)), W_OK, None, ValueError,
     r"^channel mismatch: x has C_in=3 channels \(shape \(1, 3, 3, 3\), NCHW\) but w expects C_in=2 "
     r"\(shape \(2, 3, 2, 2\), \(C_in, C_out/groups, K_h, K_w\): input maps first\)"),
    (X_OK, np.zeros((3, 2, 2, 2)), None, ValueError, r"^channel mismatch: x has C_in=2 .* w expects C_in=3"),
    (X_OK, W_OK, np.zeros(2), ValueError,
     r"^b must have shape \(3,\) \(one bias per output channel, C_out = groups · w.shape\[1\] = 3\), got \(2,\)"),
    (np.zeros((2, 3, 3)), W_OK, None, ValueError, r"^x must be a 4-D array, got 3-D array of shape \(2, 3, 3\)"),
    (X_OK, np.zeros((2, 3, 2)), None, ValueError, r"^w must be a 4-D array"),
    (np.zeros((0, 2, 3, 3)), W_OK, None, ValueError, r"^x and w must not be empty, got x \(0, 2, 3, 3\)"),
    (X_OK.astype(complex), W_OK, None, TypeError, r"^x must be a real numeric array .*got dtype complex128"),
    (X_OK, W_OK.astype(bool), None, TypeError, r"^w must be a real numeric array .*got dtype bool"),
])
def test_bad_arrays_are_rejected(x, w, b, exc, match):
    for f in (conv_transpose2d_forward, conv_transpose2d_forward_loop):
        with pytest.raises(exc, match=match):
            f(x, w, b)


def test_bad_dy_is_rejected():
    for f in (conv_transpose2d_backward, conv_transpose2d_backward_loop):
        with pytest.raises(ValueError, match=r"^dy must have shape \(1, 3, 6, 6\) \(the shape of "
                                             r"conv_transpose2d_forward's output .*\), got \(1, 3, 4, 4\)"):
            f(np.zeros((1, 3, 4, 4)), X_OK, W_OK, stride=2)
        with pytest.raises(ValueError, match=r"^dy must have shape \(1, 3, 7, 7\) .* got \(1, 3, 6, 6\)"):
            f(np.zeros((1, 3, 6, 6)), X_OK, W_OK, stride=2, output_padding=1)  # op changes the shape
        with pytest.raises(TypeError, match=r"^dy must be a real numeric array"):
            f(np.zeros((1, 3, 4, 4), dtype=complex), X_OK, W_OK)


# --- dtypes and inputs ------------------------------------------------------------------------


def test_float32_is_kept_and_close_to_float64():
    settings = dict(stride=2, padding=1, output_padding=1, groups=2)
    x, w, b, dy = _problem(**settings)
    x32, w32, b32, dy32 = (a.astype(np.float32) for a in (x, w, b, dy))
    for f in (conv_transpose2d_forward, conv_transpose2d_forward_loop):
        y32 = f(x32, w32, b32, **settings)
        assert y32.dtype == np.float32
        assert_close(y32, conv_transpose2d_forward(x, w, b, **settings), RTOL32)
    for f in (conv_transpose2d_backward, conv_transpose2d_backward_loop):
        for got, expected in zip(f(dy32, x32, w32, **settings), conv_transpose2d_backward(dy, x, w, **settings)):
            assert got.dtype == np.float32
            assert_close(got, expected, RTOL32)
    assert conv_transpose2d_forward(x32, w, **settings).dtype == np.float64
    assert all(g.dtype == np.float64 for g in conv_transpose2d_backward(dy, x32, w32, **settings))


def test_integer_inputs_are_promoted_and_inputs_not_modified():
    x = np.arange(8).reshape(1, 2, 2, 2)
    w = np.ones((2, 1, 2, 2), dtype=np.int32)
    y = conv_transpose2d_forward(x, w, np.array([1, 2]), stride=2, groups=2)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y[0, 1], np.kron(x[0, 1], np.ones((2, 2))) + 2)
    x, w, b, dy = _problem(stride=2, padding=1)
    copies = [a.copy() for a in (x, w, b, dy)]
    conv_transpose2d_forward(x, w, b, stride=2, padding=1)
    conv_transpose2d_backward(dy, x, w, stride=2, padding=1)
    for a, c in zip((x, w, b, dy), copies):
        np.testing.assert_array_equal(a, c)


# --- property tests against jax ---------------------------------------------------------------


@st.composite
def transpose_configs(draw, max_n=2, max_k=3, max_h=4):
    """Small transposed-convolution problems: every keyword drawn (ints or pairs), output never empty.

    output_padding is drawn in [0, max(s, d) − 1] per axis (so at or above the stride whenever the
    dilation exceeds it), and padding up to what keeps H_out >= 1 (so it can crop real rows).
    """
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out_g = draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, max_k)), draw(st.integers(1, max_k)))
    stride, dilation = as_pair(draw(int_or_pair(1, 3))), as_pair(draw(int_or_pair(1, 3)))
    hw = (draw(st.integers(1, max_h)), draw(st.integers(1, max_h)))
    padding, output_padding = [], []
    for a in (0, 1):
        op = draw(st.integers(0, max(stride[a], dilation[a]) - 1))
        room = ((hw[a] - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + op) // 2
        padding.append(draw(st.integers(0, min(2, room))))
        output_padding.append(op)
    return dict(x_shape=(draw(st.integers(1, max_n)), c_in) + hw, w_shape=(c_in, c_out_g) + kernel,
                settings=dict(stride=stride, padding=tuple(padding), output_padding=tuple(output_padding),
                              dilation=dilation, groups=groups))


# One XLA compilation of the forward and its vjp per new shape and setting (~0.3 s each): 25 examples.
@settings(HYPOTHESIS, max_examples=25)
@given(cfg=transpose_configs(), seed=st.integers(0, 2**16))
@example(cfg=dict(x_shape=(1, 2, 3, 2), w_shape=(2, 2, 3, 2),
                  settings=dict(stride=(2, 1), padding=(2, 1), output_padding=(2, 2), dilation=(3, 3), groups=1)),
         seed=0)  # output_padding above the stride on both axes, padding > d (K − 1) on W
def test_property_forward_and_gradients_match_jax(cfg, seed):
    s = cfg["settings"]
    x, w, b, dy = _problem(cfg["x_shape"], cfg["w_shape"], seed=seed, **s)
    y_ref, dx_ref, dw_ref, db_ref = jt.conv_transpose2d_vjp(x, w, b, dy, **s)
    assert_close(conv_transpose2d_forward(x, w, b, **s), y_ref)
    dx, dw, db = conv_transpose2d_backward(dy, x, w, **s)
    assert_close(dx, dx_ref)
    assert_close(dw, dw_ref)
    assert_close(db, db_ref)


@settings(HYPOTHESIS, max_examples=40)
@given(cfg=transpose_configs(max_h=3), seed=st.integers(0, 2**16))
def test_property_loop_forms_match_vectorised(cfg, seed):
    s = cfg["settings"]
    x, w, b, dy = _problem(cfg["x_shape"], cfg["w_shape"], seed=seed, **s)
    assert_close(conv_transpose2d_forward_loop(x, w, b, **s), conv_transpose2d_forward(x, w, b, **s))
    for got, expected in zip(conv_transpose2d_backward_loop(dy, x, w, **s), conv_transpose2d_backward(dy, x, w, **s)):
        assert_close(got, expected)


def test_property_examples_reach_the_interesting_cases():
    from hypothesis import find

    def op_at_or_above_stride(cfg):
        s = cfg["settings"]
        return any(s["output_padding"][a] >= s["stride"][a] for a in (0, 1))

    def pad_beyond_kernel(cfg):
        s = cfg["settings"]
        return s["groups"] > 1 and any(s["padding"][a] > s["dilation"][a] * (cfg["w_shape"][2 + a] - 1)
                                       for a in (0, 1))

    for condition in (op_at_or_above_stride, pad_beyond_kernel):
        assert condition(find(transpose_configs(), condition, settings=HYPOTHESIS))


# --- the jax references themselves, and the optional torch cross-check ----------------------------


def test_jax_reference_gradients_are_self_consistent():
    import jax
    from jax.test_util import check_grads

    s = dict(stride=(2, 1), padding=1, output_padding=(1, 0), dilation=(1, 2), groups=2)
    x, w, b, _ = _problem(x_shape=(1, 4, 3, 3), seed=7, **s)
    check_grads(jax.jit(lambda x_, w_, b_: jt.conv_transpose2d(x_, w_, b_, **s)), (x, w, b), order=1,
                modes=("fwd", "rev"))


def test_jax_reference_rejects_what_pytorch_rejects():
    with pytest.raises(ValueError, match="output_padding"):
        jt.conv_transpose2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)), stride=2, output_padding=2)


def test_matches_torch_if_installed():
    torch = pytest.importorskip("torch")
    settings = dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2), dilation=(1, 2), groups=2)
    x, w, b, dy = _problem(**settings)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv_transpose2d(xt, wt, bt, **settings)
    yt.backward(torch.tensor(dy))
    assert_close(conv_transpose2d_forward(x, w, b, **settings), yt.detach().numpy())
    dx, dw, db = conv_transpose2d_backward(dy, x, w, **settings)
    assert_close(dx, xt.grad.numpy())
    assert_close(dw, wt.grad.numpy())
    assert_close(db, bt.grad.numpy())
