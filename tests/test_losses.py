"""cnnref.losses: ½-squared error and softmax cross-entropy, values and gradients, both reductions."""

from __future__ import annotations

from cnnref.book import jaxref as jr  # noqa: I001  (first: sets JAX_PLATFORMS, XLA_FLAGS and x64 before jax starts)
import jax
import numpy as np
import pytest
import scipy.special

from cnnref import (
    half_squared_error,
    half_squared_error_grad,
    softmax,
    softmax_cross_entropy,
    softmax_cross_entropy_grad,
)
from cnnref.gradcheck import numerical_gradient, relative_error
from helpers import RTOL32, assert_close

REDUCTIONS = ["sum", "mean"]


def _regression(seed=0, shape=(4, 3)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), rng.standard_normal(shape)


def _classification(seed=0, n=5, k=4):
    rng = np.random.default_rng(seed)
    return 2.0 * rng.standard_normal((n, k)), rng.integers(0, k, n)


# --- ½-squared error ----------------------------------------------------------------------------


def test_half_squared_error_hand_worked():
    o = np.array([[1.0, 2.0], [3.0, 5.0]])
    t = np.array([[0.0, 2.0], [1.0, 1.0]])
    # ½ (1 + 0 + 4 + 16) = 10.5; mean over N = 2 examples: 5.25
    assert half_squared_error(o, t) == 10.5
    assert half_squared_error(o, t, "sum") == 10.5
    assert half_squared_error(o, t, "mean") == 5.25
    np.testing.assert_array_equal(half_squared_error_grad(o, t), [[1.0, 0.0], [2.0, 4.0]])
    np.testing.assert_array_equal(half_squared_error_grad(o, t, "mean"), [[0.5, 0.0], [1.0, 2.0]])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_half_squared_error_matches_jax(reduction):
    o, t = _regression(1)
    value = half_squared_error(o, t, reduction)
    assert isinstance(value, float)
    assert abs(value - float(jr.half_squared_error(o, t, reduction))) <= 1e-12 * abs(value)
    grad_ref = np.asarray(jax.grad(jr.half_squared_error)(o, t, reduction))
    assert_close(half_squared_error_grad(o, t, reduction), grad_ref)


# ½-squared error is quadratic in each o_k, so the central difference is exact up to rounding
# (~1e-16 |E| / ε ≈ 1e-15 with ε = 0.5): 1e-10 relative is a wide margin above rounding.
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_half_squared_error_grad_matches_central_differences(reduction):
    o, t = _regression(2)
    num = numerical_gradient(lambda a: half_squared_error(a, t, reduction), o, 0.5)
    assert relative_error(half_squared_error_grad(o, t, reduction), num) < 1e-10


def test_half_squared_error_mean_divides_by_the_batch_axis_only():
    o, t = _regression(3, shape=(6, 2, 3))
    assert abs(half_squared_error(o, t, "mean") - half_squared_error(o, t, "sum") / 6) < 1e-14
    assert_close(half_squared_error_grad(o, t, "mean"), half_squared_error_grad(o, t, "sum") / 6)


# --- softmax and cross-entropy -----------------------------------------------------------------


def test_softmax_matches_jax_and_scipy():
    s, _ = _classification(4)
    p = softmax(s)
    assert_close(p, np.asarray(jr.softmax(s)))
    assert_close(p, scipy.special.softmax(s, axis=1))
    assert_close(p.sum(axis=1), np.ones(s.shape[0]))


def test_softmax_is_shift_invariant_and_stable():
    s, _ = _classification(5)
    assert_close(softmax(s + 1000.0), softmax(s))
    big = np.array([[1000.0, 0.0, -1000.0], [800.0, 800.0, 790.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow, no inf - inf
        p = softmax(big)
    assert np.all(np.isfinite(p))
    assert_close(p, scipy.special.softmax(big, axis=1))


def test_softmax_cross_entropy_hand_worked():
    # two classes, equal logits: p = ½ each, E = log 2 per example
    s = np.zeros((3, 2))
    labels = np.array([0, 1, 1])
    assert abs(softmax_cross_entropy(s, labels, "sum") - 3 * np.log(2)) < 1e-15
    assert abs(softmax_cross_entropy(s, labels) - np.log(2)) < 1e-15  # default "mean"
    # ∂E/∂s = softmax − onehot = [[-½, ½], [½, -½], [½, -½]] (sum), /3 (mean)
    expected = np.array([[-0.5, 0.5], [0.5, -0.5], [0.5, -0.5]])
    np.testing.assert_array_equal(softmax_cross_entropy_grad(s, labels, "sum"), expected)
    assert_close(softmax_cross_entropy_grad(s, labels), expected / 3, 1e-15)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_softmax_cross_entropy_matches_jax(reduction):
    s, labels = _classification(6)
    value = softmax_cross_entropy(s, labels, reduction)
    assert isinstance(value, float)
    assert abs(value - float(jr.softmax_cross_entropy(s, labels, reduction))) <= 1e-12 * abs(value)
    # and against the closed form −Σ (s[y] − logsumexp(s)) with scipy
    closed = -np.sum(s[np.arange(len(labels)), labels] - scipy.special.logsumexp(s, axis=1))
    closed = closed / (len(labels) if reduction == "mean" else 1)
    assert abs(value - closed) <= 1e-12 * abs(value)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_softmax_cross_entropy_grad_matches_jax_grad(reduction):
    s, labels = _classification(7)
    grad_ref = np.asarray(jax.grad(jr.softmax_cross_entropy)(s, labels, reduction))
    assert_close(softmax_cross_entropy_grad(s, labels, reduction), grad_ref)


# Cross-entropy is smooth (not polynomial): the central difference has truncation error
# ~ε² |∂³E| / 6 with |∂³E| <= 1 per coordinate, i.e. ~1e-11 at ε = 1e-5, plus rounding
# ~1e-16 |E| / ε ≈ 1e-10 (|E| ≈ 10). Gradients are O(0.1–1), so 1e-8 relative covers both.
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_softmax_cross_entropy_grad_matches_central_differences(reduction):
    s, labels = _classification(8)
    num = numerical_gradient(lambda a: softmax_cross_entropy(a, labels, reduction), s, 1e-5)
    assert relative_error(softmax_cross_entropy_grad(s, labels, reduction), num) < 1e-8


def test_softmax_cross_entropy_grad_rows_sum_to_zero_and_mean_is_sum_over_n():
    s, labels = _classification(9)
    g_sum = softmax_cross_entropy_grad(s, labels, "sum")
    assert np.max(np.abs(g_sum.sum(axis=1))) < 1e-15
    assert_close(softmax_cross_entropy_grad(s, labels, "mean"), g_sum / len(labels))
    assert abs(softmax_cross_entropy(s, labels, "mean") - softmax_cross_entropy(s, labels, "sum") / 5) < 1e-14


def test_jax_reference_losses_are_self_consistent():
    from jax.test_util import check_grads

    s, labels = _classification(10)
    # jit: one compilation instead of one per primitive (check_grads evaluates f many times)
    check_grads(jax.jit(lambda a: jr.softmax_cross_entropy(a, labels, "mean")), (s,), order=1, modes=("fwd", "rev"))
    o, t = _regression(11)
    check_grads(jax.jit(lambda a: jr.half_squared_error(a, t, "sum")), (o,), order=1, modes=("fwd", "rev"))


def test_dtypes_and_label_types():
    s, labels = _classification(12)
    g32 = softmax_cross_entropy_grad(s.astype(np.float32), labels)
    assert g32.dtype == np.float32
    assert_close(g32, softmax_cross_entropy_grad(s, labels), RTOL32)
    assert softmax(s.astype(np.float32)).dtype == np.float32
    o, t = _regression(13)
    assert half_squared_error_grad(o.astype(np.float32), t.astype(np.float32)).dtype == np.float32
    assert half_squared_error_grad(np.array([[1, 2]]), np.array([[0, 0]]), "mean").dtype == np.float64
    # labels may be any integer dtype or a list of ints
    for lab in (labels.astype(np.uint8), labels.astype(np.int32), labels.tolist()):
        assert softmax_cross_entropy(s, lab) == softmax_cross_entropy(s, labels)
