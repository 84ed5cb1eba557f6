"""Tests for cnnref.teaching.sourceforms.weight_grad: the sources' weight-gradient equations as printed.

Every printed form is compared with ``jax.vjp`` of an independent jax forward
(cnnref/book/jaxref.py), converted to the source's own kernel convention; where
the book says a form is wrong or holds only under a convention, the test also
asserts the disagreement outside that convention, so it fails if either side changes.
"""

from __future__ import annotations

from cnnref.book import jaxref as jr  # noqa: I001 - sets JAX_PLATFORMS/x64 before jax is used
import numpy as np
import pytest
import scipy.signal
from helpers import LAYER_SHAPES, assert_close, layer_problem

import cnnref
from cnnref.teaching.sourceforms import weight_grad as sw

def _jax_dw(a, w_book, delta):
    """∂E/∂w for E = Σ δ ⊙ z, z = the book's cross-correlation layer (one example)."""
    _, _, dw, _ = jr.conv2d_vjp(a[None], w_book, np.zeros(w_book.shape[0]), delta[None])
    return dw


def _to_source_000(w_book):
    """The book's OIHW kernels as sources 000/002 store them: w_src[n, m] = rot180(w_book[m, n])."""
    return np.ascontiguousarray(w_book.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])


@pytest.mark.parametrize("shape", LAYER_SHAPES)
def test_sum_000_with_conv_placement_is_jax(shape):
    a, w_book, delta = layer_problem(*shape)
    expected = _to_source_000(_jax_dw(a, w_book, delta))  # ∂E/∂w_src = rot180 of ∂E/∂w_book, [n, m] order
    got = sw.weight_grad_sum_000(a, delta, shape[4:], placement="conv")
    assert_close(got, expected)
    # the same numbers as cnnref's backward, rotated into the source's convention
    _, dw, _ = cnnref.conv2d_backward(delta[None], a[None], w_book)
    assert_close(got, _to_source_000(dw))


@pytest.mark.parametrize("shape", LAYER_SHAPES[:3])
@pytest.mark.parametrize("rule", ["zero", "wrap"])
def test_sum_000_with_array_placement_is_wrong(shape, rule):
    """Reading δ at its array index (no K−1 offset): neither zero padding nor wrap-around fixes it."""
    a, w_book, delta = layer_problem(*shape)
    expected = _to_source_000(_jax_dw(a, w_book, delta))
    got = sw.weight_grad_sum_000(a, delta, shape[4:], placement="array", out_of_bounds=rule)
    assert np.max(np.abs(got - expected)) > 0.1 * np.max(np.abs(expected))


def test_sum_000_wrap_is_not_needed_with_conv_placement():
    """With δ at the convolution's own positions the index never leaves the map: both rules agree."""
    a, _, delta = layer_problem(2, 2, 5, 6, 3, 2)
    assert_close(sw.weight_grad_sum_000(a, delta, (3, 2), out_of_bounds="wrap"),
                 sw.weight_grad_sum_000(a, delta, (3, 2), out_of_bounds="zero"))


@pytest.mark.parametrize("shape", LAYER_SHAPES)
def test_rot180_000_is_jax(shape):
    a, w_book, delta = layer_problem(*shape)
    expected = _to_source_000(_jax_dw(a, w_book, delta))
    assert_close(sw.weight_grad_rot180_000(a, delta), expected)
    # per map pair: rot180 of scipy's valid correlation of the input with the delta
    n, m = 0, shape[1] - 1
    assert_close(sw.weight_grad_rot180_000(a, delta)[n, m],
                 scipy.signal.correlate2d(a[n], delta[m], "valid")[::-1, ::-1])


@pytest.mark.parametrize("shape", LAYER_SHAPES)
def test_rot180_is_only_the_convention_flip(shape):
    """Without the rotation, the correlation is the gradient of the book's (cross-correlation) kernel."""
    a, w_book, delta = layer_problem(*shape)
    unrotated = sw.weight_grad_rot180_000(a, delta)[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    assert_close(unrotated, _jax_dw(a, w_book, delta))


@pytest.mark.parametrize("shape", LAYER_SHAPES)
def test_sum_001_is_jax(shape):
    a, w_book, delta = layer_problem(*shape)
    expected = _jax_dw(a, w_book, delta)
    assert_close(sw.weight_grad_sum_001(a, delta), expected)
    _, dw_loop, _ = cnnref.conv2d_backward_loop(delta[None], a[None], w_book)
    assert_close(sw.weight_grad_sum_001(a, delta), dw_loop)


@pytest.mark.parametrize("shape", LAYER_SHAPES)
def test_star_001_is_jax_and_scipy_needs_input_first(shape):
    a, w_book, delta = layer_problem(*shape)
    expected = _jax_dw(a, w_book, delta)
    got = sw.weight_grad_star_001(a, delta)
    assert_close(got, expected)
    k, c = shape[1] - 1, 0
    # scipy's correlate2d(in1, in2): Σ in1[x+u, y+v] in2[u, v]: the input X_c must come first ...
    assert_close(scipy.signal.correlate2d(a[c], delta[k], "valid"), got[k, c])
    # ... in the printed order scipy silently swaps the arguments and returns the 180° rotation
    swapped = scipy.signal.correlate2d(delta[k], a[c], "valid")
    assert_close(swapped, got[k, c, ::-1, ::-1])
    assert np.max(np.abs(swapped - got[k, c])) > 0.1 * np.max(np.abs(got[k, c]))
    # cnnref refuses a kernel larger than the image instead of swapping
    with pytest.raises(ValueError, match="no larger than the image"):
        cnnref.correlate2d(delta[k], a[c], "valid")


def test_star_001_as_one_3d_correlation():
    """Source 001's 3-D form: one valid 3-D cross-correlation of X (D, M, N) with ∂L/∂z_k (1, M', N')."""
    a, w_book, delta = layer_problem(3, 2, 5, 5, 2, 3)
    got = sw.weight_grad_star_001(a, delta)
    for k in range(2):
        assert_close(scipy.signal.correlate(a, delta[k][None], mode="valid"), got[k])


def test_listing_003_all_four_entries_are_jax():
    rng = np.random.default_rng(3)
    X, F, dO = rng.standard_normal((3, 3)), rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
    _, _, dF, _ = jr.conv2d_vjp(X[None, None], F[None, None], np.zeros(1), dO[None, None])
    assert_close(sw.weight_grad_listing_003(dO, X), dF[0, 0])
    # reading the `*` in "∂L/∂F = ∂L/∂O * ∂O/∂F" as a convolution of dO with X would be wrong
    assert np.max(np.abs(scipy.signal.convolve2d(X, dO, "valid") - dF[0, 0])) > 0.1


def test_listing_003_entry_by_entry_is_the_valid_correlation():
    """Each listed line, checked on its own with one-hot inputs: ∂L/∂F_rs = Σ_ij ∂L/∂O_ij X_{i+r−1, j+s−1}."""
    for r in range(2):
        for s in range(2):
            for i in range(2):
                for j in range(2):
                    dO = np.zeros((2, 2))
                    dO[i, j] = 1.0
                    X = np.arange(1.0, 10.0).reshape(3, 3)
                    assert sw.weight_grad_listing_003(dO, X)[r, s] == X[i + r, j + s]


def test_bad_input_is_rejected():
    a, _, delta = layer_problem(1, 1, 5, 5, 3, 3)
    with pytest.raises(ValueError, match="delta must have shape"):
        sw.weight_grad_sum_000(a, delta[:, :2], (3, 3))
    with pytest.raises(ValueError, match="placement must be one of"):
        sw.weight_grad_sum_000(a, delta, (3, 3), placement="shifted")
    with pytest.raises(ValueError, match="out_of_bounds must be one of"):
        sw.weight_grad_sum_000(a, delta, (3, 3), out_of_bounds="clip")
    with pytest.raises(ValueError, match="3-D"):
        sw.weight_grad_sum_001(a[0], delta)
    with pytest.raises(ValueError, match="no larger than"):
        sw.weight_grad_star_001(delta, a)
    with pytest.raises(ValueError, match=r"dO must be \(2, 2\)"):
        sw.weight_grad_listing_003(np.zeros((3, 3)), np.zeros((3, 3)))
    with pytest.raises(TypeError, match="real numeric"):
        sw.weight_grad_rot180_000(a.astype(complex), delta)


@pytest.mark.parametrize("shape", LAYER_SHAPES)
def test_bias_sum_001_is_jax(shape):
    a, w_book, delta = layer_problem(*shape)
    _, _, _, db = jr.conv2d_vjp(a[None], w_book, np.zeros(w_book.shape[0]), delta[None])
    assert_close(sw.bias_grad_sum_001(delta), db)
    with pytest.raises(ValueError, match="3-D"):
        sw.bias_grad_sum_001(delta[0])


# --- local derivatives and the offset form ----------------------------------------------------


def test_local_derivative_book_convention_is_the_jacobian():
    """eq-wg-local / S001-E10 / S003-E12: a one-hot delta through conv2d_backward is one row of dz/dw."""
    a, w_book, _ = layer_problem(2, 3, 5, 4, 3, 2)
    J = np.asarray(jr.jax.jacobian(lambda w_: jr.conv2d(a[None], w_))(w_book))[0]  # (O, H', W', O, C, Kh, Kw)
    O, Ho, Wo = J.shape[:3]
    for o in range(O):
        for i in range(Ho):
            for j in range(Wo):
                g = np.zeros((1, O, Ho, Wo))
                g[0, o, i, j] = 1.0
                _, dw, _ = cnnref.conv2d_backward(g, a[None], w_book)
                assert np.array_equal(dw, J[o, i, j])
                assert np.array_equal(dw[o], a[:, i : i + 3, j : j + 2])  # a_c[i+u, j+v]


def test_sum_000_one_hot_delta_is_the_source_local_derivative():
    """eq-wg-src-local (S000-E11, S002-E16): ∂c_m(x',y')/∂w_{n,m}(x,y) = o_n(x'−x, y'−y), x' = i + K − 1."""
    c_in, c_out, h, w, kh, kw = 2, 2, 5, 4, 3, 2
    a, w_book, _ = layer_problem(c_in, c_out, h, w, kh, kw)
    w_src = _to_source_000(w_book)

    def forward_src(ws):
        return jr.conv2d(a[None], jr.jnp.transpose(ws, (1, 0, 2, 3))[:, :, ::-1, ::-1])[0]

    J = np.asarray(jr.jax.jacobian(forward_src)(w_src))  # (O, H', W', C, O, Kh, Kw)
    for m in range(c_out):
        for i in range(h - kh + 1):
            for j in range(w - kw + 1):
                delta = np.zeros((c_out, h - kh + 1, w - kw + 1))
                delta[m, i, j] = 1.0
                got = sw.weight_grad_sum_000(a, delta, (kh, kw))
                assert_close(got, J[m, i, j])
                xp, yp = i + kh - 1, j + kw - 1
                for u in range(kh):
                    for v in range(kw):
                        assert np.array_equal(got[:, m, u, v], a[:, xp - u, yp - v])


@pytest.mark.parametrize("shape", LAYER_SHAPES)
def test_offset_form_002_is_jax(shape):
    """eq-wg-offset (S002-E19): Σ_{i,j} o(i + K−1 − x, j + K−1 − y) δ(i, j) with δ stored from 0."""
    a, w_book, delta = layer_problem(*shape)
    c_in, c_out, h, w, kh, kw = shape
    explicit = np.zeros((c_in, c_out, kh, kw))
    for n in range(c_in):
        for m in range(c_out):
            for x in range(kh):
                for y in range(kw):
                    for i in range(h - kh + 1):
                        for j in range(w - kw + 1):
                            explicit[n, m, x, y] += a[n, i + kh - 1 - x, j + kw - 1 - y] * delta[m, i, j]
    expected = _to_source_000(_jax_dw(a, w_book, delta))
    assert_close(explicit, expected)
    assert_close(sw.weight_grad_sum_000(a, delta, (kh, kw), placement="conv"), expected)
