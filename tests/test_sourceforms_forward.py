"""Tests for cnnref.teaching.sourceforms.forward: the sources' forward-pass equations as printed.

Every printed form is compared with an independent reference (scipy.signal,
jax.lax.conv_general_dilated via cnnref/book/jaxref.py, or an explicit sum
written here), and where the book says a source is wrong or convention-bound,
the test asserts the disagreement too, so it fails if either side changes.
"""

from __future__ import annotations

from fractions import Fraction

from cnnref.book import jaxref as jr  # noqa: I001 - sets JAX_PLATFORMS/x64 before jax is used
import numpy as np
import pytest
import scipy.signal
from helpers import assert_close

import cnnref
from cnnref.teaching.sourceforms import forward as sf

RNG_SEED = 0


def _rng():
    return np.random.default_rng(RNG_SEED)


# --- sources 000/002: convolution and correlation definitions ---------------------------------


@pytest.mark.parametrize("image_shape,kernel_shape", [((5, 6), (3, 3)), ((4, 4), (2, 2)), ((6, 5), (2, 3)), ((3, 3), (1, 1))])
def test_convolution_000_defined_block_is_scipy_valid_convolution(image_shape, kernel_shape):
    rng = _rng()
    img, k = rng.standard_normal(image_shape), rng.standard_normal(kernel_shape)
    v = sf.convolution_000(img, k)
    kh, kw = kernel_shape
    # undefined exactly where x − x_k or y − y_k < 0 for some kernel index: top rows and left columns
    x, y = np.indices(image_shape)
    assert np.array_equal(np.isnan(v), (x < kh - 1) | (y < kw - 1))
    # the defined block, moved to the origin, is the valid convolution (scipy and cnnref)
    assert_close(v[kh - 1 :, kw - 1 :], scipy.signal.convolve2d(img, k, mode="valid"))
    assert_close(v[kh - 1 :, kw - 1 :], cnnref.convolve2d(img, k, "valid"))


@pytest.mark.parametrize("image_shape,kernel_shape", [((5, 6), (3, 3)), ((4, 4), (2, 2)), ((6, 5), (2, 3))])
def test_correlation_000_defined_block_is_scipy_valid_correlation(image_shape, kernel_shape):
    rng = _rng()
    img, k = rng.standard_normal(image_shape), rng.standard_normal(kernel_shape)
    ell = sf.correlation_000(img, k)
    (H, W), (kh, kw) = image_shape, kernel_shape
    x, y = np.indices(image_shape)
    assert np.array_equal(np.isnan(ell), (x > H - kh) | (y > W - kw))  # bottom rows and right columns
    assert_close(ell[: H - kh + 1, : W - kw + 1], scipy.signal.correlate2d(img, k, mode="valid"))


def test_valid_convolution_is_moved_by_kernel_size_minus_one():
    """Source 002: the valid result is the defined part of v moved by (N_k − 1, N_k − 1) to the top left."""
    img = np.zeros((6, 6))
    img[3, 2] = 1.0  # a single impulse
    k = np.arange(1.0, 10.0).reshape(3, 3)
    v = sf.convolution_000(img, k)
    valid = cnnref.convolve2d(img, k, "valid")
    # explicit: v(x, y) = k(x − 3, y − 2) where that kernel index exists
    for x in range(2, 6):
        for y in range(2, 6):
            u, w = x - 3, y - 2
            expected = k[u, w] if (0 <= u < 3 and 0 <= w < 3) else 0.0
            assert v[x, y] == expected
            assert valid[x - 2, y - 2] == expected  # shift by N_k − 1 = 2


def test_undefined_claim_002_differs_from_true_undefined_set():
    shape, nk = (6, 7), 3
    claim = sf.undefined_claim_002(shape, nk)
    truth = np.isnan(sf.convolution_000(np.ones(shape), np.ones((nk, nk))))
    assert not np.array_equal(claim, truth)
    assert claim[nk - 1, nk - 1] and not truth[nk - 1, nk - 1]  # (N_k−1, N_k−1) is defined
    assert truth[0, shape[1] - 1] and not claim[0, shape[1] - 1]  # the whole top band is undefined
    # the corner block of the claim, shrunk by one, is undefined
    assert truth[: nk - 1, : nk - 1].all()


def test_flip_relation_valid_and_full_not_same_for_even_kernels():
    rng = _rng()
    img = rng.standard_normal((5, 6))
    for kshape, same_agrees in (((3, 3), True), ((2, 2), False), ((2, 3), False)):
        k = rng.standard_normal(kshape)
        for mode in ("valid", "full"):
            assert_close(cnnref.convolve2d(img, k, mode), scipy.signal.correlate2d(img, k[::-1, ::-1], mode))
        diff = np.max(np.abs(cnnref.convolve2d(img, k, "same") - cnnref.correlate2d(img, cnnref.rot180(k), "same")))
        assert (diff < 1e-12) == same_agrees


def test_top_left_padding_gives_the_first_block_of_full_convolution():
    """Source 002: pad K−1 rows/columns at the top and left -> an H x W convolution output (zeros or wrap)."""
    rng = _rng()
    a, k = rng.standard_normal((5, 6)), rng.standard_normal((3, 2))
    (H, W), (kh, kw) = a.shape, k.shape
    by_zeros = cnnref.convolve2d(np.pad(a, ((kh - 1, 0), (kw - 1, 0))), k, "valid")
    assert by_zeros.shape == (H, W)
    assert_close(by_zeros, scipy.signal.convolve2d(a, k, mode="full")[:H, :W])
    by_wrap = cnnref.convolve2d(np.pad(a, ((kh - 1, 0), (kw - 1, 0)), mode="wrap"), k, "valid")
    k_big = np.zeros_like(a)
    k_big[:kh, :kw] = k
    assert_close(by_wrap, np.fft.ifft2(np.fft.fft2(a) * np.fft.fft2(k_big)).real)  # circular convolution
    defined = ~np.isnan(sf.convolution_000(a, k))
    assert_close(by_zeros[defined], by_wrap[defined])
    assert np.max(np.abs(by_zeros - by_wrap)) > 1e-3  # they differ in the filled-in band


def test_bottom_right_padding_gives_a_block_of_full_correlation():
    """Source 002: for the correlation the undefined pixels are bottom/right; padding there by K−1 fixes it."""
    rng = _rng()
    a, k = rng.standard_normal((5, 6)), rng.standard_normal((2, 3))
    (H, W), (kh, kw) = a.shape, k.shape
    out = cnnref.correlate2d(np.pad(a, ((0, kh - 1), (0, kw - 1))), k, "valid")
    assert out.shape == (H, W)
    assert_close(out, scipy.signal.correlate2d(a, k, mode="full")[kh - 1 : kh - 1 + H, kw - 1 : kw - 1 + W])
    ell = sf.correlation_000(a, k)
    defined = ~np.isnan(ell)
    assert_close(out[defined], ell[defined])


# --- sources 000/002: the layer ---------------------------------------------------------------


def test_complete_input_000_equals_layer_forward_with_rotated_kernels():
    rng = _rng()
    c_in, c_out, H, W, K = 2, 3, 6, 5, 3
    o_prev = rng.standard_normal((c_in, H, W))
    w_src = rng.standard_normal((c_in, c_out, K, K))  # source order w_{n,m}
    b = rng.standard_normal(c_out)
    c = sf.complete_input_000(o_prev, w_src, b)
    assert np.isnan(c[:, : K - 1, :]).all() and np.isnan(c[:, :, : K - 1]).all()
    w_book = w_src.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]  # w_book[m, n] = rot180(w_{n,m})
    z_jax = jr.to_numpy(jr.conv2d(o_prev[None], w_book.copy(), b))[0]
    assert_close(c[:, K - 1 :, K - 1 :], z_jax)
    assert_close(cnnref.conv2d_forward(o_prev[None], w_book, b)[0], z_jax)
    # without the flip (the kernel used as a correlation kernel) the numbers are different
    z_noflip = jr.to_numpy(jr.conv2d(o_prev[None], w_src.transpose(1, 0, 2, 3).copy(), b))[0]
    assert np.max(np.abs(c[:, K - 1 :, K - 1 :] - z_noflip)) > 1e-3


def test_single_input_000_is_a_convolution_explicit_sum():
    rng = _rng()
    o, w = rng.standard_normal((4, 5)), rng.standard_normal((2, 2))
    v = sf.single_input_000(o, w)
    for x in range(1, 4):
        for y in range(1, 5):
            explicit = sum(o[x - xp, y - yp] * w[xp, yp] for xp in range(2) for yp in range(2))
            assert abs(v[x, y] - explicit) <= 1e-12 * max(1.0, abs(explicit))


def test_error_000_summed_is_half_sse_and_its_gradient_is_o_minus_t():
    rng = _rng()
    o, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    printed = sf.error_000(t, o)
    assert printed.shape == o.shape  # as printed: one term per output entry, not a scalar
    E_jax = float(jr.half_squared_error(o, t))
    assert abs(printed.sum() - E_jax) <= 1e-12 * E_jax
    assert abs(cnnref.half_squared_error(o, t) - E_jax) <= 1e-12 * E_jax
    # "mean squared error" (source 002's name) would divide by the number of entries: a different number
    assert abs(np.mean((t - o) ** 2) - E_jax) > 1e-3
    import jax

    g = np.asarray(jax.grad(lambda oo: jr.half_squared_error(oo, t))(o))
    assert_close(cnnref.half_squared_error_grad(o, t), g)


def test_output_000_is_activation_of_complete_input():
    """o_m = a(c_m) (sources 000/002), Y = f(Z) (source 001): the activation acts entry by entry."""
    rng = _rng()
    o_prev, w_src, b = rng.standard_normal((2, 5, 5)), rng.standard_normal((2, 3, 2, 2)), rng.standard_normal(3)
    c = sf.complete_input_000(o_prev, w_src, b)[:, 1:, 1:]
    w_book = w_src.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1].copy()
    z_jax = jr.conv2d(o_prev[None], w_book, b)
    assert_close(cnnref.sigmoid(c), jr.to_numpy(jr.sigmoid(z_jax))[0])
    assert_close(cnnref.tanh(c), jr.to_numpy(jr.tanh(z_jax))[0])
    assert_close(cnnref.relu(c), jr.to_numpy(jr.relu(z_jax))[0])


def test_delta_001_is_gradient_wrt_output_not_preactivation():
    """Source 001's delta = dL/dy differs from the book's dE/dz by the factor phi'(z)."""
    import jax
    import jax.numpy as jnp

    rng = _rng()
    z, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    d_book = np.asarray(jax.grad(lambda zz: 0.5 * jnp.sum((jax.nn.sigmoid(zz) - t) ** 2))(z))
    d_001 = np.asarray(jax.grad(lambda yy: 0.5 * jnp.sum((yy - t) ** 2))(jax.nn.sigmoid(z)))
    assert_close(cnnref.half_squared_error_grad(cnnref.sigmoid(z), t), d_001)
    assert_close(d_001 * cnnref.sigmoid_prime(z), d_book)
    assert np.max(np.abs(d_001 - d_book)) > 1e-2


def test_flattened_maps_feed_a_dense_layer():
    """Sources 001/003: the 3-D output is reshaped into a vector (channel, row, column) for a dense layer."""
    rng = _rng()
    a = rng.standard_normal((2, 3, 4, 5))
    f = cnnref.flatten(a)
    for n in range(2):
        for c in range(3):
            for p in range(4):
                for q in range(5):
                    assert f[n, c * 20 + p * 5 + q] == a[n, c, p, q]
    W, bias = rng.standard_normal((7, 60)), rng.standard_normal(7)
    y = cnnref.dense_forward(f, W, bias)
    assert_close(y, jr.to_numpy(jr.dense(a.reshape(2, -1), W, bias)))
    assert np.array_equal(cnnref.unflatten(f, a.shape), a)


def test_dense_neuron_on_cifar_input_has_3072_weights():
    """Source 003: one fully connected neuron on a 32x32x3 image has 32*32*3 = 3072 weights."""
    rng = _rng()
    img = rng.standard_normal((1, 3, 32, 32))
    W = rng.standard_normal((1, 3 * 32 * 32))
    assert W.size == 3072
    y = cnnref.dense_forward(cnnref.flatten(img), W)
    explicit = sum(W[0, c * 1024 + p * 32 + q] * img[0, c, p, q] for c in range(3) for p in range(32) for q in range(32))
    assert abs(y[0, 0] - explicit) <= 1e-12 * np.sum(np.abs(W[0] * img.ravel()))
    with pytest.raises(ValueError, match="feature mismatch"):
        cnnref.dense_forward(cnnref.flatten(img), np.ones((1, 3071)))


def test_maxpool_2x2_stride_2_is_block_maximum():
    """Source 003: 2x2 max pooling with stride 2 keeps the maximum of each 2x2 block."""
    rng = _rng()
    x = rng.standard_normal((2, 3, 6, 8))
    blocks = x.reshape(2, 3, 3, 2, 4, 2).max(axis=(3, 5))
    y = cnnref.maxpool2d_forward(x, 2)
    assert np.array_equal(y, blocks)
    assert np.array_equal(y, jr.to_numpy(jr.maxpool2d(x, 2)))
    # odd size: the last row/column never fill a block and are dropped (floor)
    x7 = rng.standard_normal((1, 1, 7, 7))
    assert np.array_equal(cnnref.maxpool2d_forward(x7, 2), x7[:, :, :6, :6].reshape(1, 1, 3, 2, 3, 2).max(axis=(3, 5)))


def test_mean_pool_is_box_blur_then_subsample():
    """Source 002's "downscale": mean pooling with stride K = box filter, keep every K-th pixel."""
    rng = _rng()
    x = rng.standard_normal((1, 1, 6, 9))
    for K in (2, 3):
        blur = scipy.signal.correlate2d(x[0, 0], np.full((K, K), 1.0 / K**2), mode="valid")
        ho, wo = 6 // K, 9 // K
        assert_close(cnnref.avgpool2d_forward(x, K)[0, 0], blur[::K, ::K][:ho, :wo])
        assert_close(cnnref.avgpool2d_forward(x, K), jr.to_numpy(jr.avgpool2d(x, K)))


# --- source 001: the 3-D pattern search --------------------------------------------------------


def test_pattern_search_001_corrected_is_layer_forward():
    rng = _rng()
    D, M, N, K, m, n = 3, 6, 5, 4, 3, 2
    X, w, b = rng.standard_normal((D, M, N)), rng.standard_normal((K, D, m, n)), rng.standard_normal(K)
    Z = sf.pattern_search_001(X, w, b, as_printed=False)
    assert Z.shape == (K, M - m + 1, N - n + 1)
    assert_close(Z, jr.to_numpy(jr.conv2d(X[None], w, b))[0])
    # each kernel's map is one 3-D valid cross-correlation (depth D against depth D -> depth 1)
    for k in range(K):
        z3 = scipy.signal.correlate(X, w[k], mode="valid", method="direct")
        assert z3.shape == (1, M - m + 1, N - n + 1)
        assert_close(Z[k], z3[0] + b[k])


def test_pattern_search_001_as_printed_agrees_only_for_first_kernel():
    rng = _rng()
    D, M, N, K = 3, 5, 5, 3
    X, w, b = rng.standard_normal((D, M, N)), rng.standard_normal((K, D, 2, 2)), rng.standard_normal(K)
    printed = sf.pattern_search_001(X, w, b, as_printed=True)
    correct = jr.to_numpy(jr.conv2d(X[None], w, b))[0]
    assert_close(printed[0], correct[0])  # k = 0: X(0 + c, ...) is X(c, ...)
    for k in range(1, K):
        assert np.max(np.abs(printed[k] - correct[k])) > 1e-3
    # explicit: the printed kernel k reads channels k..D−1 only (the rest is past the last channel)
    k = 1
    explicit = b[k] + sum(
        scipy.signal.correlate2d(X[k + c], w[k, c], mode="valid") for c in range(D) if k + c < D
    )
    assert_close(printed[k], explicit)


# --- source 003: the 2×2 filter over a 3×3 input, and the output size --------------------------


def test_listing_003_is_valid_cross_correlation_not_convolution():
    rng = _rng()
    X, F = rng.standard_normal((3, 3)), rng.standard_normal((2, 2))
    O = sf.listing_003(X, F)
    assert_close(O, scipy.signal.correlate2d(X, F, mode="valid"))
    assert_close(O, jr.to_numpy(jr.conv2d(X[None, None], F[None, None]))[0, 0])
    assert np.max(np.abs(O - scipy.signal.convolve2d(X, F, mode="valid"))) > 1e-3
    # with integers the listing is exact
    Xi, Fi = np.arange(1.0, 10.0).reshape(3, 3), np.array([[1.0, 2.0], [3.0, 4.0]])
    assert np.array_equal(sf.listing_003(Xi, Fi), np.array([[37.0, 47.0], [67.0, 77.0]]))


def test_output_size_003_is_floor_formula_when_stride_divides():
    for N in range(1, 12):
        for F in range(1, 5):
            for S in range(1, 4):
                for P in range(0, 3):
                    if F > N + 2 * P:
                        continue
                    printed = sf.output_size_003(N, F, S, P)
                    shape = jr.conv2d_output_shape((1, 1, N, 4), (1, 1, F, 1), stride=(S, 1), padding=(P, 0))
                    assert shape[2] == cnnref.output_size(N, F, S, P)
                    if (N - F + 2 * P) % S == 0:
                        assert printed == shape[2]
                    else:
                        assert printed.denominator != 1
                        assert int(printed) == shape[2]  # floor (printed > 0) gives the framework size


def test_output_size_003_examples_of_the_source():
    assert sf.output_size_003(7, 3, 1) == 5 and sf.output_size_003(7, 3, 2) == 3
    # with the 2×2 filter of the preceding example, stride 2 does not divide: 7/2
    assert sf.output_size_003(7, 2, 2) == Fraction(7, 2)
    assert cnnref.output_size(7, 2, 2) == 3


def test_padding_keeps_size_only_for_stride_1_and_odd_kernels():
    """Source 003's claim that padding keeps the size: for s = 1 iff 2P = d(K−1) (eq-same-padding); for s > 1 only with huge P."""
    for n in range(4, 12):
        for K in range(1, 6):
            for d in (1, 2):
                for s in (1, 2, 3):
                    for P in range(0, 5):
                        if d * (K - 1) + 1 > n + 2 * P:
                            continue
                        shape = jr.conv2d_output_shape((1, 1, n, n), (1, 1, K, K), stride=s, padding=P, dilation=d)
                        kept = shape[2] == n
                        if s == 1:
                            assert kept == (2 * P == d * (K - 1))
                        else:  # possible only with padding of about half the map on each side
                            assert kept == ((n - 1) * s <= n + 2 * P - d * (K - 1) - 1 < n * s)
                            assert (not kept) or 2 * P >= (n - 1) * (s - 1) + d * (K - 1)
    # even kernel, stride 1: every symmetric padding misses n by one
    assert [cnnref.output_size(7, 2, 1, P) for P in (0, 1)] == [6, 8]


# --- source 004: the layer with 'valid' convolutions -------------------------------------------


def test_layer_forward_004_matches_layer_forward_with_rotated_kernels():
    rng = _rng()
    c_in, c_out, H, W, K = 3, 2, 6, 6, 3
    x, a, b = rng.standard_normal((c_in, H, W)), rng.standard_normal((c_in, c_out, K, K)), rng.standard_normal(c_out)
    out = sf.layer_forward_004(x, a, b, np.tanh)
    w_book = a.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1].copy()
    assert_close(out, np.tanh(jr.to_numpy(jr.conv2d(x[None], w_book, b))[0]))
    # each term is MATLAB's conv2(x_i, a_ij, 'valid')
    j = 1
    z = b[j] + sum(cnnref.matlab.conv2(x[i], a[i, j], "valid") for i in range(c_in))
    assert_close(out[j], np.tanh(z))
    # the printed summand x_k (k unbound) read as one fixed map gives different numbers
    assert np.max(np.abs(sf.layer_forward_004(x, a, b, np.tanh, printed_k=0) - out)) > 1e-3
    # a partial connection table M_j
    conn = [[0], [1, 2]]
    part = sf.layer_forward_004(x, a, b, np.tanh, conn)
    assert_close(part[0], np.tanh(cnnref.matlab.conv2(x[0], a[0, 0], "valid") + b[0]))


# --- argument checks ----------------------------------------------------------------------------


def test_bad_arguments_raise_with_expected_and_given():
    with pytest.raises(ValueError, match="no larger than image"):
        sf.convolution_000(np.ones((2, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="2-D"):
        sf.correlation_000(np.ones(4), np.ones((1, 1)))
    with pytest.raises(TypeError, match="real numeric"):
        sf.convolution_000(np.ones((3, 3), dtype=complex), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        sf.listing_003(np.ones((4, 4)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="C_in = 2"):
        sf.complete_input_000(np.ones((2, 4, 4)), np.ones((3, 1, 2, 2)), np.ones(1))
    with pytest.raises(ValueError, match="one bias per output map"):
        sf.complete_input_000(np.ones((2, 4, 4)), np.ones((2, 3, 2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="depth D = 3"):
        sf.pattern_search_001(np.ones((3, 4, 4)), np.ones((2, 2, 2, 2)), np.ones(2))
    with pytest.raises(TypeError, match="as_printed"):
        sf.pattern_search_001(np.ones((1, 4, 4)), np.ones((1, 1, 2, 2)), np.ones(1), as_printed=1)
    with pytest.raises(TypeError, match="S must be"):
        sf.output_size_003(7, 3, 2.0)
    with pytest.raises(ValueError, match="S must be >= 1"):
        sf.output_size_003(7, 3, 0)
    with pytest.raises(ValueError, match="must fit"):
        sf.output_size_003(2, 5, 1, 1)
    with pytest.raises(ValueError, match="same shape"):
        sf.error_000(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="pair"):
        sf.undefined_claim_002(5, 3)
    with pytest.raises(TypeError, match="callable"):
        sf.layer_forward_004(np.ones((1, 3, 3)), np.ones((1, 1, 2, 2)), np.ones(1), "tanh")
    with pytest.raises(ValueError, match="printed_k"):
        sf.layer_forward_004(np.ones((1, 3, 3)), np.ones((1, 1, 2, 2)), np.ones(1), np.tanh, printed_k=3)
