"""Tests for cnnref.teaching.figures_locality: the matrix reproduces cnnref's correlation, the
receptive fields measured from cnnref's backward pass equal the formula."""

from __future__ import annotations

from figure_helpers import close_figures, texts  # noqa: F401 (close_figures: autouse)

import matplotlib.pyplot as plt
import numpy as np
import pytest

import cnnref
from cnnref.teaching import figures_locality as fl



@pytest.mark.parametrize("shape,kshape", [(5, (3, 3)), ((4, 6), (2, 3)), ((6, 5), (1, 1)), (3, (3, 3))])
def test_correlation_matrix_reproduces_correlate2d_and_conv2d_forward(shape, kshape):
    rng = np.random.default_rng(1)
    H, W = (shape, shape) if isinstance(shape, int) else shape
    k = rng.standard_normal(kshape)
    M = fl.correlation_matrix(shape, k)
    assert M.shape == ((H - kshape[0] + 1) * (W - kshape[1] + 1), H * W)
    for _ in range(3):
        a = rng.standard_normal((H, W))
        ref = cnnref.correlate2d(a, k).ravel()
        assert np.max(np.abs(M @ a.ravel() - ref)) <= 1e-12 * np.max(np.abs(ref))
        z = cnnref.conv2d_forward(a[None, None], k[None, None])[0, 0].ravel()
        assert np.max(np.abs(M @ a.ravel() - z)) <= 1e-12 * np.max(np.abs(z))


def test_matrix_is_banded_and_every_row_holds_the_kernel():
    k = np.arange(1.0, 7.0).reshape(2, 3)
    H, W = 5, 6
    M = fl.correlation_matrix((H, W), k)
    Wo = W - 3 + 1
    for r in range(M.shape[0]):
        i, j = divmod(r, Wo)
        cols = [(i + u) * W + (j + v) for u in range(2) for v in range(3)]
        assert np.array_equal(M[r, cols], k.ravel())  # sharing: the same numbers in every row
        assert np.count_nonzero(M[r]) == k.size  # locality: nothing else in the row


def test_tap_matrix_marks_which_kernel_entry_each_nonzero_is():
    k = np.arange(1.0, 10.0).reshape(3, 3)
    M = fl.correlation_matrix(5, k)
    taps = fl.tap_matrix(5, (3, 3))
    assert np.array_equal(taps >= 0, M != 0)
    assert np.array_equal(M[taps >= 0], k.ravel()[taps[taps >= 0]])


def test_shared_matrix_figure_draws_the_matrix_and_its_numbers():
    k = np.arange(1.0, 10.0).reshape(3, 3)
    fig, M, taps = fl.shared_matrix_figure(5, k)
    assert np.array_equal(M, fl.correlation_matrix(5, k))
    assert np.array_equal(taps, fl.tap_matrix(5, (3, 3)))
    assert texts(fig.axes[1]) == [f"{v:g}" for v in M[M != 0]]  # row-major, only the nonzeros
    assert texts(fig.axes[0]) == [f"{v:g}" for v in k.ravel()]
    assert "81 nonzeros, 9 distinct numbers" in fig.axes[1].get_title()
    plt.close(fig)


STACKS = [
    [("conv", 3, 1), ("conv", 3, 1), ("conv", 3, 1)],
    [("conv", 3, 1), ("conv", 3, 1), ("pool", 2, 2), ("conv", 3, 1)],
    [("conv", 5, 1), ("conv", 3, 2), ("conv", 3, 2), ("conv", 3, 1)],
    [("conv", 2, 2), ("pool", 3, 1), ("conv", 1, 1)],
]


@pytest.mark.parametrize("layers", STACKS)
def test_support_of_the_input_gradient_is_the_formula_square(layers):
    size = 31
    grads, units = fl.receptive_field_supports(layers, size)
    rs, Js = fl.receptive_field_formula(layers)
    for g, (c, _), r, J in zip(grads, units, rs, Js):
        start = c * J  # no padding: unit c reads input rows c·J .. c·J + r − 1
        expected = np.zeros((size, size), dtype=bool)
        expected[start : start + r, start : start + r] = True
        assert np.array_equal(g > 0, expected)
        assert (g >= 0).all()


def test_receptive_field_formula_values():
    assert fl.receptive_field_formula(STACKS[0]) == ([3, 5, 7], [1, 1, 1])
    assert fl.receptive_field_formula(STACKS[1]) == ([3, 5, 6, 10], [1, 1, 2, 2])
    assert fl.receptive_field_formula(STACKS[2]) == ([5, 7, 11, 19], [1, 2, 4, 4])


def test_receptive_field_figure_shows_the_supports():
    layers = STACKS[1]
    fig, grads, sides = fl.receptive_field_figure(layers, 16)
    ref, _ = fl.receptive_field_supports(layers, 16)
    assert np.array_equal(grads, ref)
    assert sides == fl.receptive_field_formula(layers)[0]
    assert len(fig.axes) == 4
    assert all(len(ax.patches) == 1 for ax in fig.axes)
    assert fig.axes[3].get_title().endswith("r = 10")
    plt.close(fig)


@pytest.mark.parametrize(
    "call,exc",
    [
        (lambda: fl.correlation_matrix(3, np.ones((4, 4))), ValueError),
        (lambda: fl.correlation_matrix(0, np.ones((1, 1))), ValueError),
        (lambda: fl.correlation_matrix(2.0, np.ones((1, 1))), TypeError),
        (lambda: fl.correlation_matrix(4, np.ones(3)), ValueError),
        (lambda: fl.correlation_matrix(4, np.ones((2, 2), dtype=bool)), TypeError),
        (lambda: fl.tap_matrix(4, (0, 2)), ValueError),
        (lambda: fl.shared_matrix_figure(6, np.ones((4, 4))), ValueError),
        (lambda: fl.receptive_field_formula([]), ValueError),
        (lambda: fl.receptive_field_formula([("dense", 3, 1)]), ValueError),
        (lambda: fl.receptive_field_formula([("conv", 3)]), ValueError),
        (lambda: fl.receptive_field_formula([("conv", 0, 1)]), ValueError),
        (lambda: fl.receptive_field_formula([("conv", 3, 1.5)]), TypeError),
        (lambda: fl.receptive_field_supports([("conv", 3, 1)], 2), ValueError),
        (lambda: fl.receptive_field_supports([("conv", 3, 1)], "9"), TypeError),
        (lambda: fl.receptive_field_figure("conv", 9), ValueError),
    ],
)
def test_bad_arguments_are_rejected(call, exc):
    with pytest.raises(exc):
        call()
