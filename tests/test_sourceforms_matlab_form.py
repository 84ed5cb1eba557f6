"""cnnref.teaching.sourceforms.matlab_form: source 004's equations as printed, and the MATLAB semantics they rely on.

Each printed formula is compared with an independent computation (jax, scipy.signal or a
hand-worked array): the correct ones must agree, the slips must differ (and are shown to
be harmless where the book says so). The first section pins down MATLAB's ``convn`` /
``conv2`` for 'full', 'same' and 'valid' on odd and even kernels in 1-D, 2-D and 3-D with
expected arrays worked out by hand (see book/matlab_convn.md).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from cnnref.book import jaxref as jr  # noqa: F401  (enables float64 in jax, CPU only)
from cnnref.gradcheck import adjoint_test
from cnnref.matlab import conv2, convn, flipall
from cnnref.teaching.matlab_net import conv_layer
from cnnref.teaching.sourceforms import matlab_form as mf
from helpers import assert_close

# --- MATLAB's convn / conv2, hand-worked --------------------------------------------------------

A1 = np.array([1.0, 2, 3, 4])
A2 = np.array([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]])
A3 = np.stack([np.array([[1.0, 2], [3, 4]]), np.array([[5.0, 6], [7, 8]])], axis=2)  # 2x2x2, A3[:, :, n]

HAND = [
    # (id, A, B, {shape: expected}) - every expected array worked out by hand from
    # C(k) = sum_j A(k - j + 1) B(j) (1-based) and MATLAB's rule that 'same' keeps the block
    # of 'full' starting at 1 + floor(b/2) (1-based) along every axis.
    ("1d-odd", A1, np.array([1.0, 2, 3]),
     {"full": [1, 4, 10, 16, 17, 12], "same": [4, 10, 16, 17], "valid": [10, 16]}),
    ("1d-even", A1, np.array([1.0, -1]),
     {"full": [1, 1, 1, 1, -4], "same": [1, 1, 1, -4], "valid": [1, 1, 1]}),
    ("2d-even", A2, np.array([[1.0, 2], [3, 4]]),
     {"full": [[1, 4, 7, 6], [7, 23, 33, 24], [19, 53, 63, 42], [21, 52, 59, 36]],
      "same": [[23, 33, 24], [53, 63, 42], [52, 59, 36]],
      "valid": [[23, 33], [53, 63]]}),
    ("2d-odd-nonsquare", A2, np.array([[1.0], [0], [-1]]),
     {"full": [[1, 2, 3], [4, 5, 6], [6, 6, 6], [-4, -5, -6], [-7, -8, -9]],
      "same": [[4, 5, 6], [6, 6, 6], [-4, -5, -6]],
      "valid": [[6, 6, 6]]}),
    ("3d-even-batch-axis", A3, np.ones((1, 1, 2)),
     {"full": np.stack([A3[:, :, 0], A3[:, :, 0] + A3[:, :, 1], A3[:, :, 1]], axis=2),
      "same": np.stack([A3[:, :, 0] + A3[:, :, 1], A3[:, :, 1]], axis=2),
      "valid": (A3[:, :, 0] + A3[:, :, 1])[:, :, None]}),
    ("3d-odd-third-axis", np.array([[[1.0, 2, 3]], [[4.0, 5, 6]]]), np.array([[[1.0, 2, 3]]]),
     {"full": [[[1, 4, 10, 12, 9]], [[4, 13, 28, 27, 18]]],
      "same": [[[4, 10, 12]], [[13, 28, 27]]],
      "valid": [[[10]], [[28]]]}),
    ("3d-stack-2d-kernel", A3, np.array([[1.0, -1]]),
     {"full": np.stack([[[1, 1, -2], [3, 1, -4]], [[5, 1, -6], [7, 1, -8]]], axis=2),
      "same": np.stack([[[1, -2], [1, -4]], [[1, -6], [1, -8]]], axis=2),
      "valid": np.stack([[[1], [1]], [[1], [1]]], axis=2)}),
]


@pytest.mark.parametrize("shape", ["full", "same", "valid"])
@pytest.mark.parametrize("name, a, b, expected", HAND, ids=[h[0] for h in HAND])
def test_convn_matches_hand_worked_matlab_results(name, a, b, expected, shape):
    got = convn(a, b, shape)
    want = np.asarray(expected[shape], dtype=float)
    assert got.shape == want.shape, f"{name} {shape}: shape {got.shape} != {want.shape}"
    np.testing.assert_array_equal(got, want)  # small integers: exact


@pytest.mark.parametrize("shape", ["full", "same", "valid"])
@pytest.mark.parametrize("name, a, b, expected", [h for h in HAND if h[1].ndim == 2 and h[2].ndim == 2],
                         ids=[h[0] for h in HAND if h[1].ndim == 2 and h[2].ndim == 2])
def test_conv2_matches_hand_worked_matlab_results(name, a, b, expected, shape):
    np.testing.assert_array_equal(conv2(a, b, shape), np.asarray(expected[shape], dtype=float))


def test_same_differs_from_scipy_for_even_kernels_only():
    # MATLAB keeps full[floor(b/2) :], scipy's convolve keeps full[(b-1)//2 :].
    assert not np.array_equal(convn(A1, [1.0, -1], "same"), scipy.signal.convolve(A1, [1.0, -1], "same"))
    np.testing.assert_array_equal(scipy.signal.convolve(A1, [1.0, -1], "same"), [1, 1, 1, 1])
    np.testing.assert_array_equal(convn(A1, [1.0, 2, 3], "same"), scipy.signal.convolve(A1, [1.0, 2, 3], "same"))


def test_valid_with_a_longer_kernel_is_empty_as_in_matlab():
    assert convn(A1, np.ones(6), "valid").shape == (0,)
    assert conv2(np.ones((3, 2)), np.ones((2, 3)), "valid").shape == (2, 0)


def test_conv2_rejects_nd():
    with pytest.raises(ValueError, match="2-D"):
        conv2(A3, np.ones((2, 2)))


# --- the model -----------------------------------------------------------------------------------


def _maps_and_kernels(rng, c_in=2, c_out=3, hw=6, k=3, n=2):
    return (rng.standard_normal((c_in, hw, hw, n)), rng.standard_normal((c_in, c_out, k, k)),
            rng.standard_normal(c_out))


def test_layer_forward_as_printed_differs_unless_one_input_map():
    rng = np.random.default_rng(0)
    maps, k, b = _maps_and_kernels(rng)
    correct = np.stack(conv_layer(list(maps), k, b))
    # independent reference: jax's N-d convolution per (i, j) pair
    ref = np.stack([b[j] + sum(np.asarray(jax.scipy.signal.convolve(maps[i], k[i, j][:, :, None], mode="valid"))
                               for i in range(2)) for j in range(3)])
    assert_close(correct, ref)
    printed = mf.layer_forward_as_printed(maps, k, b, k_index=0)
    assert np.max(np.abs(printed - correct)) > 0.1
    one = mf.layer_forward_as_printed(maps[:1], k[:1], b, k_index=0)
    assert_close(one, np.stack(conv_layer([maps[0]], k[:1], b)))


def test_layer_forward_as_printed_rejects_bad_k_index():
    rng = np.random.default_rng(0)
    maps, k, b = _maps_and_kernels(rng)
    with pytest.raises(ValueError, match="k_index"):
        mf.layer_forward_as_printed(maps, k, b, k_index=2)


# --- the derivative convention and the dense head -----------------------------------------------


def _f(x):
    return jnp.tanh(jnp.array([[1.0, 2, 0], [0, -1, 3]]) @ x) * x[:2]


def test_jacobian_as_printed_is_not_the_jacobian():
    x = jnp.array([0.3, -0.2, 0.5])
    J = np.asarray(jax.jacobian(_f)(x))
    printed = mf.jacobian_as_printed(J)
    assert printed.shape == J.shape
    assert_close(np.diag(printed), np.diag(J))          # agrees on the diagonal only
    assert np.max(np.abs(printed - J)) > 0.1
    # the correct convention: row vector times Jacobian = vjp
    u = np.array([1.0, -2.0])
    assert_close(u @ J, np.asarray(jax.vjp(_f, x)[1](jnp.asarray(u))[0]))


def test_jacobian_as_printed_needs_m_le_n():
    with pytest.raises(ValueError, match="i <= n"):
        mf.jacobian_as_printed(np.ones((3, 2)))


def _head(rng, d_in=4, d_out=3):
    return rng.standard_normal((d_out, d_in)), rng.standard_normal(d_out), rng.standard_normal(d_in)


def _sig_prime(s):
    return jax.nn.sigmoid(s) * (1 - jax.nn.sigmoid(s))


def test_dE_dy_as_printed_is_wrong_and_the_column_form_is_right():
    rng = np.random.default_rng(1)
    W, c, y = _head(rng)
    e = rng.standard_normal(3)

    def E(y):
        return 0.5 * jnp.sum((jax.nn.sigmoid(W @ y + c) - e) ** 2)

    want = np.asarray(jax.grad(E)(jnp.asarray(y)))
    s = W @ y + c
    y_next = np.asarray(jax.nn.sigmoid(s))
    g_next = y_next - e
    sp = lambda v: np.asarray(_sig_prime(jnp.asarray(v)))  # noqa: E731
    printed = mf.dE_dy_as_printed(g_next, y_next, W, sp)
    assert np.max(np.abs(printed - want)) > 1e-3 * np.max(np.abs(want))
    assert_close(mf.dE_dy_column(g_next, s, W, sp), want)
    # σ' written as a function of the output, y(1 - y), is the correct reading
    assert_close(mf.dE_dy_as_printed(g_next, y_next, W, lambda v: v * (1 - v)), want)


def test_dE_dy_shapes_are_checked():
    with pytest.raises(ValueError, match="same shape"):
        mf.dE_dy_as_printed(np.ones(3), np.ones(2), np.ones((3, 4)), lambda v: v)
    with pytest.raises(ValueError, match="same shape"):
        mf.dE_dy_column(np.ones(3), np.ones(2), np.ones((3, 4)), lambda v: v)


def test_affine_term_bias_typo_changes_the_value_not_the_derivative():
    rng = np.random.default_rng(2)
    x, a, b = rng.standard_normal(7), rng.standard_normal(3), 0.4
    printed = mf.affine_term_as_printed(x, a, b)
    intended = convn(x, a, "valid") + b
    assert_close(printed - intended, np.ones(5))
    Jp = np.asarray(jax.jacobian(lambda v: jnp.convolve(v, jnp.asarray(a), mode="valid") + b + 1.0)(jnp.asarray(x)))
    assert_close(Jp, mf.valid_conv_operator(a, 7))


# --- the transpose -------------------------------------------------------------------------------


@pytest.mark.parametrize("n, K", [(5, 1), (6, 2), (7, 3), (4, 4)])
def test_valid_conv_operator_and_its_transpose(n, K):
    rng = np.random.default_rng(n * 10 + K)
    a, x, d = rng.standard_normal(K), rng.standard_normal(n), rng.standard_normal(n - K + 1)
    Wa = mf.valid_conv_operator(a, n)
    assert_close(Wa @ x, scipy.signal.convolve(x, a, mode="valid"))
    assert_close(Wa.T @ d, scipy.signal.convolve(d, a[::-1], mode="full"))      # valid -> full, flipped
    assert_close(np.asarray(jax.jacobian(lambda v: jnp.convolve(v, jnp.asarray(a), mode="valid"))(jnp.asarray(x))), Wa)
    assert adjoint_test(lambda v: convn(v, a, "valid"), lambda u: convn(u, flipall(a), "full"),
                        (n,), (n - K + 1,)) < 1e-14


def test_input_grad_matches_jax_and_the_printed_form_does_not():
    rng = np.random.default_rng(3)
    maps, k, b = _maps_and_kernels(rng, hw=5, k=2)
    t = rng.standard_normal((3, 4, 4, 2))

    def jz(m):
        return jnp.stack([b[j] + sum(jax.scipy.signal.convolve(m[i], jnp.asarray(k[i, j])[:, :, None], mode="valid")
                                     for i in range(2)) for j in range(3)])

    def E(m):
        return 0.5 * jnp.sum((jax.nn.sigmoid(jz(m)) - t) ** 2)

    want = np.asarray(jax.grad(E)(jnp.asarray(maps)))
    z = np.asarray(jz(jnp.asarray(maps)))
    a = np.asarray(jax.nn.sigmoid(z))
    delta_post = a - t                    # source 004's δ = ∂E/∂x^{l+1}
    delta = delta_post * a * (1 - a)      # ∂E/∂z^{l+1}
    for i in range(2):
        assert_close(mf.input_grad(delta, k, i), want[i])
        printed = mf.input_grad_as_printed(delta_post, k, i, 0)
        assert np.max(np.abs(printed - want[i])) > 1e-2 * np.max(np.abs(want[i]))
        # even with f' restored, one j is not enough: the sum over j is needed
        assert np.max(np.abs(mf.input_grad_as_printed(delta, k, i, 0) - want[i])) > 1e-2 * np.max(np.abs(want[i]))


# --- the 1-D derivation --------------------------------------------------------------------------


def test_one_based_indexing_refuses_zero_and_past_the_end():
    v = np.arange(3.0)
    assert mf._at(v, 1) == 0.0 and mf._at(v, 3) == 2.0
    for bad in (0, 4, -1):
        with pytest.raises(IndexError):
            mf._at(v, bad)


@pytest.mark.parametrize("n, l", [(5, 1), (6, 2), (7, 3), (4, 4)])
def test_valid_conv_sums(n, l):
    rng = np.random.default_rng(n + 7 * l)
    x, a = rng.standard_normal(n), rng.standard_normal(l)
    want = scipy.signal.convolve(x, a, mode="valid")
    assert_close(mf.valid_conv_sum_k(x, a), want)
    assert_close(mf.valid_conv_sum_j(x, a, as_printed=False), want)
    assert_close(mf.valid_conv_sum_j(x, a), x[: n - l + 1] * a[-1])   # printed: the single term j = l
    if l > 1:
        assert np.max(np.abs(mf.valid_conv_sum_j(x, a) - want)) > 1e-3


@pytest.mark.parametrize("n, l", [(5, 1), (6, 2), (7, 3), (4, 4)])
def test_df_da_and_the_kernel_gradient_forms(n, l):
    rng = np.random.default_rng(100 + n + 7 * l)
    x, a, d = rng.standard_normal(n), rng.standard_normal(l), rng.standard_normal(n - l + 1)

    def f(a_):
        return jnp.convolve(jnp.asarray(x), a_, mode="valid")

    J = np.asarray(jax.jacobian(f)(jnp.asarray(a)))
    assert_close(mf.df_da(x, l), J)
    want = np.asarray(jax.vjp(f, jnp.asarray(a))[1](jnp.asarray(d))[0])
    assert_close(mf.d_times_df_da(d, x, l), want)
    assert_close(mf.xbar_conv_d_first_form(x, d), want)
    assert_close(mf.xbar_conv_d_second_form(x, d, as_printed=False), want)
    assert_close(mf.kernel_grad_1d(x, d), want)
    printed = mf.xbar_conv_d_second_form(x, d)
    if n >= 2:
        np.testing.assert_array_equal(printed, np.zeros(l))   # empty sum: limits run from n down to 1


def test_1d_forms_check_lengths():
    with pytest.raises(ValueError, match="n − l \\+ 1"):
        mf.d_times_df_da(np.ones(3), np.ones(5), 2)
    with pytest.raises(ValueError, match="longer"):
        mf.valid_conv_sum_k(np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="1..n"):
        mf.df_da(np.ones(3), 4)


# --- the one-liner on stacks ---------------------------------------------------------------------


def test_kernel_grad_one_liner_sums_over_the_batch_and_matches_jax():
    rng = np.random.default_rng(4)
    x, k, t = rng.standard_normal((6, 5, 4)), rng.standard_normal((3, 2)), rng.standard_normal((4, 4, 4))

    def E(k_):
        z = jax.scipy.signal.convolve(jnp.asarray(x), k_[:, :, None], mode="valid")
        return 0.5 * jnp.sum((z - t) ** 2)

    want = np.asarray(jax.grad(E)(jnp.asarray(k)))
    delta = convn(x, k, "valid") - t
    got = mf.kernel_grad_one_liner(x, delta)
    assert_close(got, want)
    per_example = sum(convn(flipall(x[:, :, n]), delta[:, :, n], "valid") for n in range(4))
    assert_close(got, per_example)
    # flipping only the spatial axes pairs example n with example N-1-n: wrong
    spatial_only = convn(x[::-1, ::-1, :], delta, "valid")[:, :, 0]
    assert np.max(np.abs(spatial_only - want)) > 1e-2 * np.max(np.abs(want))


def test_kernel_grad_one_liner_checks_shapes():
    with pytest.raises(ValueError, match="same N"):
        mf.kernel_grad_one_liner(np.ones((5, 5, 3)), np.ones((3, 3, 2)))


def test_kernel_grad_needs_the_pre_activation_delta():
    # S004-E27/E30 hold with δ = ∂E/∂z, not with the source's own δ = ∂E/∂x (after f)
    rng = np.random.default_rng(5)
    x, k, t = rng.standard_normal((6, 5, 3)), rng.standard_normal((2, 2)), rng.standard_normal((5, 4, 3))

    def E(k_):
        z = jax.scipy.signal.convolve(jnp.asarray(x), k_[:, :, None], mode="valid")
        return 0.5 * jnp.sum((jnp.tanh(z) - t) ** 2)

    want = np.asarray(jax.grad(E)(jnp.asarray(k)))
    out = np.tanh(convn(x, k, "valid"))
    post = out - t
    assert_close(mf.kernel_grad_one_liner(x, post * (1 - out**2)), want)
    assert np.max(np.abs(mf.kernel_grad_one_liner(x, post) - want)) > 1e-2 * np.max(np.abs(want))


@pytest.mark.parametrize("hw, kern", [((5, 4), (3, 2)), ((4, 4), (1, 3)), ((3, 5), (3, 5))])
def test_valid_conv_2d_transpose_is_full_with_rot180(hw, kern):
    # S004-E28: the transpose of a 2-D valid convolution is a full convolution with the kernel
    # flipped in both dimensions; the matrix comes from jax.jacobian, independently of cnnref
    rng = np.random.default_rng(sum(hw) + sum(kern))
    k, X = rng.standard_normal(kern), rng.standard_normal(hw)
    out = (hw[0] - kern[0] + 1, hw[1] - kern[1] + 1)
    T = np.asarray(jax.jacobian(lambda v: jax.scipy.signal.convolve2d(v, jnp.asarray(k), mode="valid"))(jnp.asarray(X)))
    T = T.reshape(out[0] * out[1], hw[0] * hw[1])
    d = rng.standard_normal(out)
    assert_close(conv2(d, k[::-1, ::-1], "full").ravel(), T.T @ d.ravel())
    assert_close(mf.input_grad(d[None, :, :, None], k[None, None], 0)[:, :, 0], (T.T @ d.ravel()).reshape(hw))
    if kern != (1, 1):
        assert np.max(np.abs(conv2(d, k, "full").ravel() - T.T @ d.ravel())) > 1e-3
