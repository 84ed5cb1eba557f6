"""cnnref.transposed: the input gradient as a transposed convolution, the weight gradient as a dilated correlation.

References, none of which uses cnnref.transposed:
* ``jax.vjp`` of ``lax.conv_general_dilated`` (cnnref/book/jaxref.py), over the book's grid
  (every stride 1–3 × padding 0–2 × dilation 1–2, non-square kernels 1–3, sizes with and
  without a stride remainder), computed in ONE jit so the grid compiles once;
* the two formulas written directly as jax primitives: [eq-input-grad-transposed] is
  ``conv_general_dilated`` with ``lhs_dilation = s`` (zero insertion), the rotated kernel and
  padding ``K̃ − 1 − P`` (plus the remainder at the end); [eq-weight-grad-dilated] is a
  ``conv_general_dilated`` of the input with the deltas as kernel, ``rhs_dilation = s`` and
  ``window_strides = d``;
* cnnref.conv2d_backward (col2im scatter, a different algorithm) on hypothesis-drawn problems;
* hand-worked small arrays, the adjoint test, and an explicit enumeration of unread pixels.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnref.book import jaxref as jr
from cnnref import conv2d_backward, conv2d_forward, output_size
from cnnref.gradcheck import adjoint_test
from cnnref import transposed
from cnnref.transposed import dilate_kernel, input_grad_transposed, remainder_rows, weight_grad_dilated, zero_insert
from helpers import HYPOTHESIS, RTOL32, assert_close, conv_configs, conv_read_mask

jax, jnp, lax = jr.jax, jr.jnp, jr.lax

# The book's grid ("Stride, padding and dilation in the backward pass"): every combination of
# stride, padding and dilation, three (H, W, K_h, K_w) problems with non-square kernels of sizes
# 1-3. The chapter uses the same grid; remainders (H + 2P - K̃) mod s > 0 occur on both axes.
STRIDES, PADDINGS, DILATIONS = (1, 2, 3), (0, 1, 2), (1, 2)
PROBLEMS = ((7, 8, 1, 3), (9, 6, 2, 1), (8, 9, 3, 2))
GRID = [dict(stride=s, padding=p, dilation=d, hw=(h, w), k=(kh, kw))
        for s, p, d, (h, w, kh, kw) in itertools.product(STRIDES, PADDINGS, DILATIONS, PROBLEMS)]


def _grid_problem(cfg, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2) + cfg["hw"])
    w = rng.standard_normal((3, 2) + cfg["k"])
    ho, wo = (output_size(cfg["hw"][a], cfg["k"][a], cfg["stride"], cfg["padding"], cfg["dilation"]) for a in (0, 1))
    dz = rng.standard_normal((2, 3, ho, wo))
    return x, w, dz


def _settings(cfg):
    return dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"])


@pytest.fixture(scope="module")
def grid_reference():
    """(x, w, dz, dx_jax, dw_jax) for every grid point, all vjps in a single jit (one compilation)."""
    problems = [_grid_problem(cfg, seed) for seed, cfg in enumerate(GRID)]

    def all_vjps(args):
        out = []
        for cfg, (x, w, dz) in zip(GRID, args):
            f = functools.partial(jr.conv2d, **_settings(cfg))
            _, vjp = jax.vjp(f, x, w)
            out.append(vjp(dz))
        return out

    refs = jax.jit(all_vjps)(problems)
    return [(x, w, dz, np.asarray(dx), np.asarray(dw)) for (x, w, dz), (dx, dw) in zip(problems, refs)]


def test_grid_has_non_divisible_sizes_on_both_axes():
    rem = [(remainder_rows(c["hw"][0], c["k"][0], c["stride"], c["padding"], c["dilation"]),
            remainder_rows(c["hw"][1], c["k"][1], c["stride"], c["padding"], c["dilation"])) for c in GRID]
    assert any(r[0] > 0 for r in rem) and any(r[1] > 0 for r in rem)
    assert any(r[0] > c["padding"] for r, c in zip(rem, GRID))  # unread rows that are real input, not padding


def test_input_grad_transposed_matches_jax_on_the_grid(grid_reference):
    for cfg, (x, w, dz, dx_ref, _) in zip(GRID, grid_reference):
        dx = input_grad_transposed(dz, w, x.shape, **_settings(cfg))
        assert dx.shape == x.shape, cfg
        assert_close(dx, dx_ref)


def test_weight_grad_dilated_matches_jax_on_the_grid(grid_reference):
    for cfg, (x, w, dz, _, dw_ref) in zip(GRID, grid_reference):
        dw = weight_grad_dilated(dz, x, w.shape, **_settings(cfg))
        assert dw.shape == w.shape, cfg
        assert_close(dw, dw_ref)


def test_input_grad_formula_as_a_jax_primitive():
    # [eq-input-grad-transposed] spelled with jax's own parameters: zero insertion = lhs_dilation,
    # full correlation with rot180(w̃) = padding K̃-1 (minus P, cropped) + rhs_dilation, then r
    # extra rows of padding at the end for the remainder.
    for s, p, d, (h, w_, kh, kw) in [(2, 2, 1, (8, 9, 1, 2)), (3, 1, 2, (10, 9, 2, 3)), (2, 0, 1, (7, 6, 3, 3))]:
        rng = np.random.default_rng(s + 10 * p + 100 * d)
        x = rng.standard_normal((2, 2, h, w_))
        w = rng.standard_normal((3, 2, kh, kw))
        dz = rng.standard_normal(conv2d_forward(x, w, stride=s, padding=p, dilation=d).shape)
        pads = []
        for n, k in ((h, kh), (w_, kw)):
            span = d * (k - 1) + 1
            pads.append((span - 1 - p, span - 1 - p + remainder_rows(n, k, s, p, d)))
        k_rot = jnp.flip(jnp.asarray(w), (2, 3)).transpose(1, 0, 2, 3)
        ref = lax.conv_general_dilated(dz, k_rot, (1, 1), pads, lhs_dilation=(s, s), rhs_dilation=(d, d),
                                       dimension_numbers=("NCHW", "OIHW", "NCHW"), precision=lax.Precision.HIGHEST)
        assert_close(input_grad_transposed(dz, w, x.shape, stride=s, padding=p, dilation=d), np.asarray(ref))


def test_weight_grad_formula_as_a_jax_primitive():
    # [eq-weight-grad-dilated]: stride and dilation swap roles. Batch becomes the summed channel.
    for s, p, d, (h, w_, kh, kw) in [(2, 1, 1, (8, 9, 3, 2)), (3, 2, 2, (9, 10, 2, 3)), (1, 0, 2, (7, 6, 3, 1))]:
        rng = np.random.default_rng(s + 10 * p + 100 * d)
        x = rng.standard_normal((2, 2, h, w_))
        w = rng.standard_normal((3, 2, kh, kw))
        dz = rng.standard_normal(conv2d_forward(x, w, stride=s, padding=p, dilation=d).shape)
        x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        full = lax.conv_general_dilated(x_pad.transpose(1, 0, 2, 3), dz.transpose(1, 0, 2, 3), (d, d), "VALID",
                                        rhs_dilation=(s, s), dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                        precision=lax.Precision.HIGHEST)
        ref = np.asarray(full)[:, :, :kh, :kw].transpose(1, 0, 2, 3)
        assert_close(weight_grad_dilated(dz, x, w.shape, stride=s, padding=p, dilation=d), ref)


@HYPOTHESIS
@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
def test_property_matches_conv2d_backward(cfg, seed):
    settings = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(cfg["x_shape"])
    w = rng.standard_normal(cfg["w_shape"])
    dz = rng.standard_normal(conv2d_forward(x, w, **settings).shape)
    dx_ref, dw_ref, _ = conv2d_backward(dz, x, w, **settings)
    assert_close(input_grad_transposed(dz, w, x.shape, **settings), dx_ref)
    assert_close(weight_grad_dilated(dz, x, w.shape, **settings), dw_ref)


def test_unread_pixels_get_exactly_zero():
    # s = 3 > K̃ = 2 leaves gaps between windows; H = 9: rows 2, 5, 8 never read; W = 8 + P = 1 per side.
    x_shape, w_shape, settings = (1, 2, 9, 8), (2, 2, 2, 2), dict(stride=3, padding=(0, 1))
    rng = np.random.default_rng(7)
    w = rng.standard_normal(w_shape)
    dz = rng.standard_normal(conv2d_forward(np.zeros(x_shape), w, **settings).shape)
    dx = input_grad_transposed(dz, w, x_shape, **settings)
    mask = conv_read_mask(9, 8, (2, 2), (3, 3), (0, 1), (1, 1))
    assert sorted(np.flatnonzero(~mask.any(axis=1))) == [2, 5, 8]
    assert np.all(dx[:, :, ~mask] == 0.0)
    assert np.all(dx[:, :, mask] != 0.0)


def test_adjoint_of_the_forward():
    x_shape, w_shape = (2, 3, 8, 7), (4, 3, 3, 2)
    for settings in (dict(), dict(stride=2, padding=1), dict(stride=(3, 2), padding=(2, 0), dilation=(1, 2))):
        w = np.random.default_rng(8).standard_normal(w_shape)
        x = np.random.default_rng(9).standard_normal(x_shape)
        out = conv2d_forward(np.zeros(x_shape), w, **settings).shape
        err_x = adjoint_test(lambda v: conv2d_forward(v, w, **settings),
                             lambda u: input_grad_transposed(u, w, x_shape, **settings), x_shape, out)
        err_w = adjoint_test(lambda v: conv2d_forward(x, v, **settings),
                             lambda u: weight_grad_dilated(u, x, w_shape, **settings), w_shape, out)
        assert err_x < 1e-13 and err_w < 1e-13


# --- the building blocks, hand-worked ---------------------------------------------------------


def test_zero_insert_hand_worked():
    a = np.arange(1.0, 7.0).reshape(1, 1, 2, 3)
    expected = np.array([[1, 0, 0, 2, 0, 0, 3],
                         [0, 0, 0, 0, 0, 0, 0],
                         [4, 0, 0, 5, 0, 0, 6]], dtype=float)
    np.testing.assert_array_equal(zero_insert(a, (2, 3))[0, 0], expected)
    np.testing.assert_array_equal(zero_insert(a, 1), a)


def test_dilate_kernel_hand_worked():
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    expected = np.array([[1, 0, 2], [0, 0, 0], [0, 0, 0], [3, 0, 4]], dtype=float)
    np.testing.assert_array_equal(dilate_kernel(w, (3, 2))[0, 0], expected)


@pytest.mark.parametrize("n, k, s, p, d, expected", [
    (8, 3, 3, 0, 1, 2),   # windows at rows 0-2, 3-5; rows 6, 7 unread
    (7, 3, 2, 0, 1, 0),   # 7 - 3 = 4 is even
    (8, 2, 3, 1, 2, 1),   # padded 10, span 3: windows start at 0, 3, 6 -> read up to row 8 of 0..9
    (9, 1, 1, 2, 1, 0),   # stride 1 never leaves a remainder
])
def test_remainder_rows_hand_worked(n, k, s, p, d, expected):
    assert remainder_rows(n, k, s, p, d) == expected
    # the same count by enumeration: padded rows after the last one any window reads
    n_out = output_size(n, k, s, p, d)
    last_read = max(s * i + d * u for i in range(n_out) for u in range(k))
    assert n + 2 * p - 1 - last_read == expected


def test_float32_is_kept():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((1, 2, 7, 6)).astype(np.float32)
    w = rng.standard_normal((2, 2, 3, 2)).astype(np.float32)
    dz = rng.standard_normal(conv2d_forward(x, w, stride=2).shape).astype(np.float32)
    dx = input_grad_transposed(dz, w, x.shape, stride=2)
    dw = weight_grad_dilated(dz, x, w.shape, stride=2)
    assert dx.dtype == np.float32 and dw.dtype == np.float32
    dx64, dw64, _ = conv2d_backward(dz.astype(float), x.astype(float), w.astype(float), stride=2)
    assert_close(dx, dx64, RTOL32)
    assert_close(dw, dw64, RTOL32)


def test_bad_input_raises():
    w = np.zeros((2, 3, 2, 2))
    x = np.zeros((1, 3, 5, 5))
    dz = np.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match="x_shape must be a sequence of 4 ints"):
        input_grad_transposed(dz, w, (3, 5, 5))
    with pytest.raises(ValueError, match="channel mismatch"):
        input_grad_transposed(dz, w, (1, 2, 5, 5))
    with pytest.raises(ValueError, match=r"dz must have shape \(1, 2, 2, 2\)"):
        input_grad_transposed(dz, w, x.shape, stride=2)
    with pytest.raises(TypeError, match="stride must be an int or a pair"):
        weight_grad_dilated(dz, x, w.shape, stride=True)
    with pytest.raises(ValueError, match="w_shape must be a sequence of 4 ints"):
        weight_grad_dilated(dz, x, (2, 3, 2))
    with pytest.raises(ValueError, match="channel mismatch"):
        weight_grad_dilated(dz, x, (2, 4, 2, 2))
    with pytest.raises(ValueError, match="a must be a 4-D array"):
        zero_insert(np.zeros((3, 3)), 2)
    with pytest.raises(ValueError, match="dilation must be positive"):
        dilate_kernel(w, 0)
    with pytest.raises(ValueError, match="the output would be empty"):
        remainder_rows(2, 3, 1, 0, 1)
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        weight_grad_dilated(dz, x.astype(bool), w.shape)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: zero_insert(np.zeros((1, 1, 0, 3)), 2), ValueError,
     r"a must have at least one row and one column, got shape \(1, 1, 0, 3\)"),
    (lambda: dilate_kernel(np.zeros((2, 3, 2, 0)), 2), ValueError,
     r"w must have at least one row and one column, got shape \(2, 3, 2, 0\)"),
    (lambda: zero_insert(np.zeros((1, 1, 2, 2)), (2, 2, 2)), ValueError, "stride must be an int or a pair"),
    (lambda: zero_insert(np.zeros((1, 1, 2, 2), dtype=complex), 2), TypeError, "a must be a real numeric array"),
    (lambda: dilate_kernel(np.zeros((2, 3, 2)), 2), ValueError, "w must be a 4-D array"),
    (lambda: input_grad_transposed(np.zeros((1, 2, 4, 4)), np.zeros((2, 3, 2, 2)), (1, 3, 5, 0)), ValueError,
     r"x_shape must have entries >= 1, got \(1, 3, 5, 0\)"),
    (lambda: input_grad_transposed(np.zeros((1, 2, 4, 4)), np.zeros((2, 3, 2, 2)), (1, 3, 5.0, 5)), TypeError,
     r"x_shape must be a sequence of 4 ints \(NCHW / OIHW\), got 5.0"),
    (lambda: weight_grad_dilated(np.zeros((1, 2, 4, 4)), np.zeros((1, 3, 5, 5)), np.array([2, 3, 2, 2])), ValueError,
     r"w_shape must be a sequence of 4 ints \(NCHW / OIHW\)"),
    (lambda: remainder_rows(8, 3, 0), ValueError, "stride must be >= 1"),
])
def test_every_function_checks_its_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("step, spread", [((1, 1), (1, 1)), ((2, 1), (1, 2)), ((2, 3), (2, 2))])
def test_correlate_channels_is_the_strided_dilated_layer(step, spread):
    rng = np.random.default_rng(21)
    a, k = rng.standard_normal((2, 3, 9, 10)), rng.standard_normal((4, 3, 2, 3))
    expected = jr.conv2d(a, k, stride=step, dilation=spread)
    got = transposed.correlate_channels(a, k, step=step, spread=spread)
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= 1e-12 * np.max(np.abs(expected))


def test_correlate_channels_rejects_mismatched_maps_and_bad_steps():
    with pytest.raises(ValueError, match="same number of input maps"):
        transposed.correlate_channels(np.zeros((1, 2, 4, 4)), np.zeros((1, 3, 2, 2)))
    with pytest.raises(ValueError, match="step"):
        transposed.correlate_channels(np.zeros((1, 2, 4, 4)), np.zeros((1, 2, 2, 2)), step=0)
