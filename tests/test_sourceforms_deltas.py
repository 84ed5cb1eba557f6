"""Tests for cnnref.teaching.sourceforms.deltas: the sources' delta / input-gradient equations as printed.

Each printed form is compared with ``jax.vjp`` of an independent jax forward
(cnnref/book/jaxref.py), converted to the source's own kernel convention; where
the book says a form is wrong or holds only under a convention, the test also
asserts the disagreement outside that convention.
"""

from __future__ import annotations

from cnnref.book import jaxref as jr  # noqa: I001 - sets JAX_PLATFORMS/x64 before jax is used
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal
from helpers import LAYER_SHAPES, assert_close, layer_problem

import cnnref
from cnnref import gradcheck, matlab
from cnnref.teaching.sourceforms import deltas as sd

# layer_problem's input maps a only set shapes here: the input gradient of a linear layer does not depend on a.


def _jax_dx(a, w_book, delta):
    """∂E/∂a for E = Σ δ ⊙ z, z = the book's cross-correlation layer (one example)."""
    _, dx, _, _ = jr.conv2d_vjp(a[None], w_book, np.zeros(w_book.shape[0]), delta[None])
    return dx[0]


def _to_source_000(w_book):
    """Sources 000/002 store w_src[m, o] = rot180(w_book[o, m]) (a convolution kernel, input map first)."""
    return np.ascontiguousarray(w_book.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])


@pytest.mark.parametrize("shape", LAYER_SHAPES)
def test_sum_000_with_conv_placement_is_jax(shape):
    a, w_book, delta = layer_problem(*shape)
    expected = _jax_dx(a, w_book, delta)
    got = sd.delta_sum_000(_to_source_000(w_book), delta, placement="conv")
    assert_close(got, expected)
    dx, _, _ = cnnref.conv2d_backward(delta[None], a[None], w_book)
    assert_close(got, dx[0])


@pytest.mark.parametrize("shape", LAYER_SHAPES[:3])
def test_sum_000_with_array_placement_is_wrong(shape):
    a, w_book, delta = layer_problem(*shape)
    expected = _jax_dx(a, w_book, delta)
    got = sd.delta_sum_000(_to_source_000(w_book), delta, placement="array")
    assert np.max(np.abs(got - expected)) > 0.1 * np.max(np.abs(expected))


@pytest.mark.parametrize("shape", LAYER_SHAPES[:3])
@pytest.mark.parametrize("sign", ["printed", "consistent"])
def test_wrap_000_is_wrong_with_either_sign(shape, sign):
    a, w_book, delta = layer_problem(*shape)
    expected = _jax_dx(a, w_book, delta)
    got = sd.delta_wrap_000(_to_source_000(w_book), delta, sign=sign)
    assert np.max(np.abs(got - expected)) > 0.1 * np.max(np.abs(expected))


@pytest.mark.parametrize("shape", LAYER_SHAPES)
def test_rot180_000_full_correlation_is_jax(shape):
    a, w_book, delta = layer_problem(*shape)
    expected = _jax_dx(a, w_book, delta)
    w_src = _to_source_000(w_book)
    assert_close(sd.delta_rot180_000(w_src, delta), expected)
    # per map: rot180 of scipy's *full* correlation of the kernel with the delta, summed over o
    m = shape[0] - 1
    via_scipy = sum(scipy.signal.correlate2d(w_src[m, o], delta[o], "full")[::-1, ::-1] for o in range(shape[1]))
    assert_close(via_scipy, expected[m])


def test_rot180_000_valid_correlation_has_the_wrong_shape():
    """A 'valid' correlation of a 3×3 kernel with a 3×3 delta map has one entry, not the 5×5 of the input."""
    a, w_book, delta = layer_problem(1, 1, 5, 5, 3, 3)
    w_src = _to_source_000(w_book)
    assert scipy.signal.correlate2d(w_src[0, 0], delta[0], "valid").shape == (1, 1)
    assert _jax_dx(a, w_book, delta).shape == (1, 5, 5)


@pytest.mark.parametrize("shape", LAYER_SHAPES)
def test_sum_002_conv_placement_is_jax_array_placement_is_not(shape):
    a, w_book, delta = layer_problem(*shape)
    expected = _jax_dx(a, w_book, delta)
    w_src = _to_source_000(w_book)
    assert_close(sd.delta_sum_002(w_src, delta, placement="conv"), expected)
    shifted = sd.delta_sum_002(w_src, delta, placement="array")
    assert np.max(np.abs(shifted - expected)) > 0.1 * np.max(np.abs(expected))
    # the array reading is the right delta moved by (K_h − 1, K_w − 1) to the top left, cut off at the edge
    kh, kw = shape[4:]
    h, w = shape[2:4]
    assert_close(shifted[:, : h - kh + 1, : w - kw + 1], expected[:, kh - 1 :, kw - 1 :])


@pytest.mark.parametrize("shape", LAYER_SHAPES[:3])
def test_sum_002_with_the_book_kernel_is_wrong(shape):
    """Plugging the book's cross-correlation kernel into 002's correlation: a flip is missing."""
    a, w_book, delta = layer_problem(*shape)
    expected = _jax_dx(a, w_book, delta)
    got = sd.delta_sum_002(np.ascontiguousarray(w_book.transpose(1, 0, 2, 3)), delta, placement="conv")
    assert np.max(np.abs(got - expected)) > 0.1 * np.max(np.abs(expected))


def test_delta_recursion_forms_include_phi_prime():
    """δ^l = backpropagated error ⊙ a'(c^l), against jax.grad through a sigmoid and the next layer."""
    rng = np.random.default_rng(5)
    c_in, c_out, h, w, kh, kw = 2, 2, 5, 5, 3, 2
    z = rng.standard_normal((c_in, h, w))
    w_book = rng.standard_normal((c_out, c_in, kh, kw))
    d_next = rng.standard_normal((c_out, h - kh + 1, w - kw + 1))

    def E(z):
        return jnp.sum(d_next[None] * jr.conv2d(jax.nn.sigmoid(z)[None], w_book))

    expected = np.asarray(jax.grad(E)(z))
    phi_prime = cnnref.sigmoid_prime(z)
    w_src = _to_source_000(w_book)
    for got in (sd.delta_sum_000(w_src, d_next, phi_prime=phi_prime),
                sd.delta_rot180_000(w_src, d_next, phi_prime=phi_prime),
                sd.delta_sum_002(w_src, d_next, phi_prime=phi_prime)):
        assert_close(got, expected)


@pytest.mark.parametrize("shape", LAYER_SHAPES)
def test_sum_001_and_full_convolution_001_are_jax(shape):
    a, w_book, delta = layer_problem(*shape)
    expected = _jax_dx(a, w_book, delta)
    assert_close(sd.input_grad_sum_001(delta, w_book), expected)
    assert_close(sd.input_grad_conv_001(delta, w_book), expected)
    dx_loop, _, _ = cnnref.conv2d_backward_loop(delta[None], a[None], w_book)
    assert_close(sd.input_grad_sum_001(delta, w_book), dx_loop[0])
    # each term is scipy's full convolution
    g = shape[0] - 1
    assert_close(sum(scipy.signal.convolve2d(delta[k], w_book[k, g], "full") for k in range(shape[1])), expected[g])


def test_zero_rule_001_corner():
    """X[γ, 0, 0] is read by one window only: ∂L/∂X[γ,0,0] = Σ_k ∂L/∂Z_k[0,0] w_k[γ,0,0]."""
    a, w_book, delta = layer_problem(2, 3, 5, 6, 2, 3)
    dX = sd.input_grad_sum_001(delta, w_book)
    for g in range(2):
        assert dX[g, 0, 0] == pytest.approx(float(np.sum(delta[:, 0, 0] * w_book[:, g, 0, 0])), rel=1e-14)
        assert dX[g, -1, -1] == pytest.approx(float(np.sum(delta[:, -1, -1] * w_book[:, g, -1, -1])), rel=1e-14)


def test_listing_003_all_nine_entries_are_jax():
    rng = np.random.default_rng(3)
    X, F, dO = rng.standard_normal((3, 3)), rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
    _, dX, _, _ = jr.conv2d_vjp(X[None, None], F[None, None], np.zeros(1), dO[None, None])
    assert_close(sd.input_grad_listing_003(dO, F), dX[0, 0])


def test_listing_003_entry_by_entry_one_hot():
    """Each of the nine lines on its own: a one-hot ∂L/∂O picks out one shifted copy of F."""
    F = np.array([[1.0, 2.0], [3.0, 4.0]])
    for i in range(2):
        for j in range(2):
            dO = np.zeros((2, 2))
            dO[i, j] = 1.0
            expected = np.zeros((3, 3))
            expected[i : i + 2, j : j + 2] = F
            assert np.array_equal(sd.input_grad_listing_003(dO, F), expected)


def test_004_transpose_of_valid_convolution_is_full_convolution_with_flipped_kernel():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3, 2))
    shape_in, shape_out = (6, 5), (4, 4)
    err = gradcheck.adjoint_test(lambda x: matlab.conv2(x, a, "valid"), lambda d: sd.input_grad_004(d, a),
                                 shape_in, shape_out, rng=np.random.default_rng(0))
    assert err < 1e-14
    # without the flip the adjoint test fails
    err_noflip = gradcheck.adjoint_test(lambda x: matlab.conv2(x, a, "valid"), lambda d: matlab.conv2(d, a, "full"),
                                        shape_in, shape_out, rng=np.random.default_rng(0))
    assert err_noflip > 1e-2
    # and it is jax's vjp of the same valid convolution
    x = rng.standard_normal(shape_in)
    d = rng.standard_normal(shape_out)
    _, dx, _, _ = jr.conv2d_vjp(x[None, None], a[::-1, ::-1][None, None].copy(), np.zeros(1), d[None, None])
    assert_close(sd.input_grad_004(d, a), dx[0, 0])


def test_bad_input_is_rejected():
    _, w_book, delta = layer_problem(2, 3, 5, 6, 2, 3)
    w_src = _to_source_000(w_book)
    with pytest.raises(ValueError, match="C_out = 3"):
        sd.delta_sum_000(w_src[:, :2], delta)
    with pytest.raises(ValueError, match="placement must be one of"):
        sd.delta_sum_002(w_src, delta, placement="true")
    with pytest.raises(ValueError, match="sign must be one of"):
        sd.delta_wrap_000(w_src, delta, sign="+")
    with pytest.raises(ValueError, match="phi_prime must have shape"):
        sd.delta_sum_000(w_src, delta, phi_prime=np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match="P = 3 filters"):
        sd.input_grad_sum_001(delta, w_book[:2])
    with pytest.raises(ValueError, match=r"must be \(2, 2\)"):
        sd.input_grad_listing_003(np.zeros((2, 2)), np.zeros((3, 3)))
    with pytest.raises(TypeError, match="real numeric"):
        sd.input_grad_004(np.zeros((2, 2), dtype=bool), np.ones((2, 2)))


# --- local derivatives, derivation lines and the 001 details -----------------------------------


def _two_layer(seed=7):
    rng = np.random.default_rng(seed)
    z1 = rng.standard_normal((3, 5, 4))
    w2 = rng.standard_normal((2, 3, 2, 2))
    return z1, w2


def test_local_derivative_through_the_activation_is_the_jacobian():
    """eq-delta-local / eq-delta-src-local (S000-E16..E18): one-hot δ^{l+1} through the printed sum
    with a'(c^l) gives one row of ∂z^{l+1}/∂z^l."""
    z1, w2 = _two_layer()
    J = np.asarray(jax.jacobian(lambda z: jr.conv2d(jnp.tanh(z)[None], w2)[0])(z1))  # (2, 4, 3, 3, 5, 4)
    w_src = _to_source_000(w2)
    phi_prime = cnnref.tanh_prime(z1)
    for o in range(2):
        for i in range(4):
            for j in range(3):
                d = np.zeros((2, 4, 3))
                d[o, i, j] = 1.0
                assert_close(sd.delta_sum_000(w_src, d, phi_prime=phi_prime), J[o, i, j])
                assert_close(sd.delta_sum_002(w_src, d, phi_prime=phi_prime), J[o, i, j])  # eq-delta-src002-local
                dx, _, _ = cnnref.conv2d_backward(d[None], np.tanh(z1)[None], w2)
                assert_close(dx[0] * phi_prime, J[o, i, j])


def test_chain_rule_quotient_reading_is_not_the_derivative():
    """S000-E15: ∂c^{l+1}/c^l without the ∂ in the denominator, read literally, is a quotient of values."""
    z1, w2 = _two_layer()
    z2 = np.asarray(jr.conv2d(np.tanh(z1)[None], w2)[0])
    J = np.asarray(jax.jacobian(lambda z: jr.conv2d(jnp.tanh(z)[None], w2)[0])(z1))
    quotient = z2[:, :, :, None, None, None] / z1[None, None, None]
    assert np.max(np.abs(quotient - J)) > 0.1 * np.max(np.abs(J))


def test_002_expansion_first_term_as_printed_is_not_a_term_of_the_sum():
    """S002-E25: the first term a(c_0(x' − 0, y' − 0)) should be a(c_0(x + x' − 0, y + y' − 0))."""
    a, w_book, _ = layer_problem(2, 2, 5, 6, 3, 2, seed=1)
    w_src = _to_source_000(w_book)
    kh, kw = 3, 2
    o, (x, y), (xp, yp) = 1, (1, 1), (1, 0)
    forward = cnnref.conv2d_forward(a[None], w_book)[0, o, x + xp - (kh - 1), y + yp - (kw - 1)]
    terms = {(m, u, v): w_src[m, o, u, v] * a[m, x + xp - u, y + yp - v]
             for m in range(2) for u in range(kh) for v in range(kw)}
    corrected = sum(terms.values())
    printed = corrected - terms[(0, 0, 0)] + w_src[0, o, 0, 0] * a[0, xp, yp]
    assert abs(corrected - forward) < 1e-12 * max(1.0, abs(forward))
    assert abs(printed - forward) > 1e-3


@pytest.mark.parametrize("shape", LAYER_SHAPES[:3])
def test_002_derivative_line_weight_index_is_wrong(shape):
    """S002-E26: w(x+x', y+y') in place of w(x', y') does not give the delta."""
    a, w_book, delta = layer_problem(*shape)
    expected = _jax_dx(a, w_book, delta)
    got = sd.delta_derivative_line_002(_to_source_000(w_book), delta)
    assert np.max(np.abs(got - expected)) > 0.1 * np.max(np.abs(expected))


@pytest.mark.parametrize("shape", LAYER_SHAPES[:3])
def test_001_without_the_zero_rule_numpy_wraps_and_is_wrong(shape):
    """S001-E27: dropping the zero rule (numpy's negative indices) changes the gradient."""
    a, w_book, delta = layer_problem(*shape)
    expected = _jax_dx(a, w_book, delta)
    got = sd.input_grad_sum_001(delta, w_book, zero_rule=False)
    assert np.max(np.abs(got - expected)) > 0.1 * np.max(np.abs(expected))
    with pytest.raises(TypeError, match="zero_rule must be a bool"):
        sd.input_grad_sum_001(delta, w_book, zero_rule=1)


def test_001_only_the_full_convolution_has_the_input_shape():
    """S001-E25: 'valid' and 'same' convolutions do not return an input-sized gradient."""
    a, w_book, delta = layer_problem(2, 3, 5, 6, 3, 2)
    for mode in ("valid", "same"):
        assert scipy.signal.convolve2d(delta[0], w_book[0, 0], mode).shape != a.shape[1:]
    assert scipy.signal.convolve2d(delta[0], w_book[0, 0], "full").shape == a.shape[1:]


@pytest.mark.parametrize("shape", [(2, 3, 5, 6, 3, 2), (1, 4, 6, 5, 2, 2)])
def test_001_one_3d_convolution_needs_the_filter_axis_reversed(shape):
    """S001-E26: a 3-D convolution pairs δ_k with w_{P−1−k}; reversing the filter stack fixes it."""
    a, w_book, delta = layer_problem(*shape)
    expected = _jax_dx(a, w_book, delta)
    assert_close(sd.input_grad_conv3d_001(delta, w_book, reverse_filters=True), expected)
    got = sd.input_grad_conv3d_001(delta, w_book)
    assert np.max(np.abs(got - expected)) > 0.1 * np.max(np.abs(expected))
    # a single filter has nothing to reverse
    assert_close(sd.input_grad_conv3d_001(delta[:1], w_book[:1]), sd.input_grad_conv_001(delta[:1], w_book[:1]))


def test_001_local_derivative_is_the_jacobian():
    """S001-E19..E23 (eq-dx-local): ∂Z_k[p−α, q−β]/∂X[γ,p,q] = w_k[γ,α,β]; a one-hot ∂L/∂Z through
    source 001's sum returns exactly one row of the Jacobian dZ/dX."""
    a, w_book, _ = layer_problem(2, 3, 5, 4, 3, 2)
    J = np.asarray(jax.jacobian(lambda x_: jr.conv2d(x_[None], w_book)[0])(a))  # (P, M', N', D, M, N)
    P, Mo, No = J.shape[:3]
    for k in range(P):
        for i in range(Mo):
            for j in range(No):
                dz = np.zeros((P, Mo, No))
                dz[k, i, j] = 1.0
                got = sd.input_grad_sum_001(dz, w_book)
                assert np.array_equal(got, J[k, i, j])
                for g in range(2):  # the window at (i, j) carries w_k[γ, α, β] at X[γ, i+α, j+β]
                    assert np.array_equal(got[g, i : i + 3, j : j + 2], w_book[k, g])
