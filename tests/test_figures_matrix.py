"""Tests for cnnref.teaching.figures_matrix: each figure shows the numbers cnnref computes."""

from __future__ import annotations

from figure_helpers import close_figures, texts  # noqa: F401 (close_figures: autouse)

import matplotlib.pyplot as plt
import numpy as np
import pytest
import scipy.signal

import cnnref
from cnnref.teaching import figures_matrix as fm




def test_operator_matrix_reproduces_the_map():
    k = np.array([2.0, -1.0, 0.5])
    M = fm.operator_matrix(lambda v: np.convolve(v, k, "valid"), 7)
    v = np.random.default_rng(0).standard_normal(7)
    assert M.shape == (5, 7)
    np.testing.assert_allclose(M @ v, np.convolve(v, k, "valid"), rtol=1e-12, atol=1e-12)


def test_matrix_1d_figure_shows_the_banded_matrix_and_its_transpose():
    k = np.array([1.0, 2.0, 3.0])
    fig, T, F = fm.matrix_1d_figure(6, k)
    # T[i, p] = w[p - i]: the valid cross-correlation, row by row
    expected = np.zeros((4, 6))
    for i in range(4):
        expected[i, i : i + 3] = k
    assert np.array_equal(T, expected)
    # F is the full convolution's matrix, and it is exactly T's transpose
    assert np.array_equal(F, T.T)
    d = np.random.default_rng(1).standard_normal(4)
    np.testing.assert_allclose(F @ d, scipy.signal.convolve(d, k, "full"), rtol=1e-12)
    x = np.random.default_rng(2).standard_normal(6)
    np.testing.assert_allclose(T @ x, scipy.signal.correlate(x, k, "valid"), rtol=1e-12)
    # the numbers written in the cells are the non-zero entries, row by row
    assert texts(fig.axes[0]) == [f"{v:g}" for v in T.ravel() if v]
    assert texts(fig.axes[1]) == [f"{v:g}" for v in F.ravel() if v]
    assert fig.get_size_inches()[0] <= 8


def test_im2col_figure_draws_cnnref_im2col_and_the_overlap_counts():
    x = np.arange(1.0, 17.0).reshape(4, 4)
    fig, cols, counts = fm.im2col_figure(x, 2, window=(1, 2))
    assert np.array_equal(cols, cnnref.im2col(x[None, None], 2)[0])
    # column (i, j) holds the window x[i:i+2, j:j+2], row (u, v) in w's order
    assert np.array_equal(cols[:, 1 * 3 + 2], x[1:3, 2:4].ravel())
    assert np.array_equal(counts, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])
    assert counts.sum() == cols.size
    assert texts(fig.axes[1]) == [f"{v:g}" for v in cols.ravel()]
    assert texts(fig.axes[2]) == [f"{v:g}" for v in counts.ravel()]
    # the outlined cells of the input are the four entries of that column
    outlined = sorted((round(r.get_y() + 0.5), round(r.get_x() + 0.5)) for r in fig.axes[0].patches)
    assert outlined == [(1, 2), (1, 3), (2, 2), (2, 3)]
    (col_box,) = fig.axes[1].patches
    assert col_box.get_xy() == (5 - 0.5, -0.5) and col_box.get_height() == 4


def test_im2col_figure_with_padding_and_stride_counts_only_real_inputs():
    x = np.arange(1.0, 26.0).reshape(5, 5)
    fig, cols, counts = fm.im2col_figure(x, 3, stride=2, padding=1, window=(0, 0))
    assert np.array_equal(cols, cnnref.im2col(x[None, None], 3, stride=2, padding=1)[0])
    ones = np.ones((1, 1, 3, 3))
    expected = cnnref.conv2d_backward(np.ones((1, 1, 3, 3)), x[None, None], ones, stride=2, padding=1)[0]
    assert np.array_equal(counts, expected[0, 0])
    # window (0, 0) reads the padded corner: only 4 of its 9 entries are inputs
    assert len(fig.axes[0].patches) == 4


@pytest.mark.parametrize("call, error, match", [
    (lambda: fm.matrix_1d_figure(2, [1.0, 2.0, 3.0]), ValueError, r"kernel must have between 1 and m=2"),
    (lambda: fm.matrix_1d_figure(6, np.ones((2, 2))), ValueError, r"^kernel must be a 1-D array"),
    (lambda: fm.matrix_1d_figure(6.0), TypeError, r"^m must be"),
    (lambda: fm.im2col_figure(np.ones((4, 4)), 2, window=(3, 0)), ValueError, r"window must lie in the output grid"),
    (lambda: fm.im2col_figure(np.ones((4, 4)), 2, window=1), ValueError, r"window must be a pair"),
    (lambda: fm.im2col_figure(np.ones((1, 4, 4)), 2), ValueError, r"^x must be a 2-D array"),
    (lambda: fm.operator_matrix("f", 3), TypeError, r"^f must be callable"),
])
def test_bad_arguments_are_rejected(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_figures_close_cleanly():
    for fig in (fm.matrix_1d_figure()[0], fm.im2col_figure(np.ones((3, 3)), 2)[0]):
        plt.close(fig)
    assert plt.get_fignums() == []
