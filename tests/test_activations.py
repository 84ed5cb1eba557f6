"""cnnref.activations: sigmoid, ReLU, tanh and their derivatives against jax, scipy and central differences."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.special

from cnnref.book import jaxref as jr
from cnnref import relu, relu_prime, sigmoid, sigmoid_prime, tanh, tanh_prime
from cnnref.gradcheck import numerical_gradient, relative_error
from helpers import RTOL32, assert_close

PAIRS = [
    pytest.param(sigmoid, sigmoid_prime, jr.sigmoid, id="sigmoid"),
    pytest.param(relu, relu_prime, jr.relu, id="relu"),
    pytest.param(tanh, tanh_prime, jr.tanh, id="tanh"),
]


def _z(shape=(3, 4, 5), seed=0, away_from_zero=False):
    z = 3.0 * np.random.default_rng(seed).standard_normal(shape)
    if away_from_zero:  # keep ReLU's kink out of reach of the finite-difference step
        z = np.where(np.abs(z) < 0.1, z + 0.2 * np.sign(z) + 0.2 * (z == 0), z)
    return z


@pytest.mark.parametrize("f, f_prime, f_jax", PAIRS)
def test_forward_matches_jax(f, f_prime, f_jax):
    z = _z()
    assert_close(f(z), np.asarray(f_jax(z)))


@pytest.mark.parametrize("f, f_prime, f_jax", PAIRS)
def test_derivative_matches_jax_grad(f, f_prime, f_jax):
    z = _z(seed=1)
    assert_close(f_prime(z), jr.elementwise_derivative(f_jax, z))


# E(z) = Σ g ⊙ φ(z) has gradient g ⊙ φ'(z). For the smooth sigmoid and tanh the central
# difference has truncation error ε² |φ'''| / 6 ≈ 1e-11 at ε = 1e-5 (|φ'''| <= 2 for tanh) plus
# rounding ~1e-16 |E| / ε ≈ 1e-10 (|E| ≈ 10): 1e-8 relative covers both with margin. ReLU is
# piecewise linear and no z is within ε of its kink, so it is exact up to that rounding.
@pytest.mark.parametrize("f, f_prime, f_jax", PAIRS)
def test_derivative_matches_central_differences(f, f_prime, f_jax):
    z = _z(shape=(4, 5), seed=2, away_from_zero=True)
    g = np.random.default_rng(3).standard_normal(z.shape)
    num = numerical_gradient(lambda t: np.sum(g * f(t)), z, 1e-5)
    assert relative_error(g * f_prime(z), num) < 1e-8


def test_hand_worked_values():
    z = np.array([-2.0, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(relu(z), [0.0, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(relu_prime(z), [0.0, 0.0, 1.0, 1.0])  # 0 at z = 0, as documented
    np.testing.assert_array_equal(sigmoid(np.array([0.0])), [0.5])
    np.testing.assert_array_equal(sigmoid_prime(np.array([0.0])), [0.25])
    np.testing.assert_array_equal(tanh_prime(np.array([0.0])), [1.0])
    assert_close(sigmoid(np.log(np.array([3.0]))), np.array([0.75]), 1e-15)  # 1 / (1 + 1/3)
    assert_close(tanh(np.log(np.array([2.0]))), np.array([0.6]), 1e-15)       # (4 - 1) / (4 + 1)


def test_relu_derivative_at_zero_matches_jax_nn_relu():
    # jax.nn.relu's derivative at 0 is 0, like relu_prime; jnp.maximum(z, 0)'s would be 0.5.
    z = np.array([0.0, -0.0])
    np.testing.assert_array_equal(relu_prime(z), jr.elementwise_derivative(jr.relu, z))


def test_sigmoid_is_stable_for_large_arguments():
    z = np.array([-1000.0, -745.0, -40.0, 0.0, 40.0, 745.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning from exp
        s = sigmoid(z)
        sp = sigmoid_prime(z)
    assert_close(s, scipy.special.expit(z), 1e-15)
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(sp))
    assert s[-1] == 1.0 and s[0] == 0.0
    assert s[1] > 0.0  # e^-745 is subnormal, not flushed to zero by an overflowing 1 + e^745


def test_sigmoid_symmetry():
    z = _z(seed=4)
    assert_close(sigmoid(-z), 1.0 - sigmoid(z), 1e-15)
    assert_close(sigmoid_prime(-z), sigmoid_prime(z), 1e-15)


def test_derivatives_take_the_pre_activation_not_the_output():
    # σ'(z) = a (1 − a) with a = σ(z); evaluating σ' at a instead (the classic slip) is different.
    z = _z(seed=5)
    a = sigmoid(z)
    assert_close(sigmoid_prime(z), a * (1 - a), 1e-15)
    assert relative_error(sigmoid_prime(a), sigmoid_prime(z)) > 0.1
    assert_close(tanh_prime(z), 1 - np.tanh(z) ** 2, 1e-15)
    assert relative_error(tanh_prime(tanh(z)), tanh_prime(z)) > 0.1


@pytest.mark.parametrize("f, f_prime, f_jax", PAIRS)
def test_float32_is_kept_and_integers_are_promoted(f, f_prime, f_jax):
    z = _z(seed=6)
    for g in (f, f_prime):
        out = g(z.astype(np.float32))
        assert out.dtype == np.float32
        assert_close(out, g(z), RTOL32)
    ints = np.array([[-2, 0, 1, 5]])
    for g in (f, f_prime):
        out = g(ints)
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, g(ints.astype(np.float64)))


@pytest.mark.parametrize("f, f_prime, f_jax", PAIRS)
def test_nan_propagates_and_shape_is_kept(f, f_prime, f_jax):
    z = np.array([[np.nan, 1.0], [-1.0, 2.0]])
    out = f(z)
    assert out.shape == z.shape and np.isnan(out[0, 0]) and np.all(np.isfinite(out[~np.isnan(z)]))
    assert f(np.float64(0.5)).shape == ()  # scalars work element-wise too
