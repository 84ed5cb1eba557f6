"""Tests for cnnref.teaching.figures: each figure shows the numbers cnnref computes (checked against scipy / explicit sums)."""

from __future__ import annotations

from figure_helpers import close_figures, texts  # noqa: F401 (close_figures: autouse)

import matplotlib.pyplot as plt
import numpy as np
import pytest
import scipy.signal
from helpers import conv_read_mask

from cnnref.teaching import figures




def test_annotated_grid_writes_every_value_and_marks_undefined():
    fig, ax = plt.subplots()
    vals = np.array([[1.0, np.nan], [3.5, -2.0]])
    labels = figures.annotated_grid(ax, vals, highlight=(0, 1, 1, 1))
    assert labels == ["1", "?", "3.5", "-2"]
    assert texts(ax) == labels
    (rect,) = ax.patches
    assert rect.get_xy() == (0.5, -0.5) and rect.get_width() == 1 and rect.get_height() == 1


@pytest.mark.parametrize("kind,ref", [("correlation", scipy.signal.correlate2d), ("convolution", scipy.signal.convolve2d)])
def test_sliding_window_figure_shows_scipy_output_and_the_window(kind, ref):
    image = np.arange(20.0).reshape(4, 5)
    kernel = np.array([[1.0, 2.0], [0.0, -1.0]])
    fig, out, laid = figures.sliding_window_figure(image, kernel, (1, 2), kind=kind)
    expected = ref(image, kernel, mode="valid")
    assert np.array_equal(out, expected)
    assert np.array_equal(laid, kernel if kind == "correlation" else kernel[::-1, ::-1])
    # the output panel writes the numbers of the valid result
    assert texts(fig.axes[2]) == [f"{v:g}" for v in expected.ravel()]
    # the window outlined on the image starts at (row 1, column 2) and has the kernel's size
    (rect,) = fig.axes[0].patches
    assert rect.get_xy() == (1.5, 0.5) and (rect.get_height(), rect.get_width()) == (2, 2)
    # the title's sum is the output value at (1, 2)
    assert fig._suptitle.get_text().endswith(f"= {expected[1, 2]:g}")


def test_flip_figure_rotates():
    k = np.arange(6.0).reshape(2, 3)
    fig, rot = figures.flip_figure(k)
    assert np.array_equal(rot, np.array([[5.0, 4.0, 3.0], [2.0, 1.0, 0.0]]))
    assert texts(fig.axes[1]) == ["5", "4", "3", "2", "1", "0"]


def test_boundary_figure_marks_undefined_pixels():
    image = np.ones((4, 5))
    fig, v, ell = figures.boundary_figure(image, np.ones((2, 3)))
    assert texts(fig.axes[0]).count("?") == int(np.isnan(v).sum()) == 4 * 5 - 3 * 3
    assert np.isnan(v[0]).all() and np.isnan(v[:, :2]).all() and not np.isnan(v[1:, 2:]).any()
    assert np.isnan(ell[-1]).all() and np.isnan(ell[:, -2:]).all() and not np.isnan(ell[:3, :3]).any()


@pytest.mark.parametrize("n,k,s,p,d", [(7, 3, 2, 0, 1), (8, 3, 2, 1, 1), (8, 2, 3, 0, 1), (9, 2, 2, 1, 2), (5, 5, 1, 0, 1)])
def test_read_matrix_matches_explicit_enumeration(n, k, s, p, d):
    M = figures.read_matrix(n, k, s, p, d)
    n_out = (n + 2 * p - d * (k - 1) - 1) // s + 1
    assert M.shape == (n_out, n + 2 * p)
    for i in range(n_out):
        assert set(np.flatnonzero(M[i])) == {s * i + d * u for u in range(k)}
    # unpadded positions never read = those outside every window (independent helper)
    never = ~conv_read_mask(n, 1, (k, 1), (s, 1), (p, 0), (d, 1))[:, 0]
    assert np.array_equal(~M[:, p : p + n].any(axis=0), never)


def test_coverage_figure_marks_unread_positions():
    fig, M = figures.coverage_figure(8, 2, 3)  # reads 0,1 3,4 6,7 -> never reads 2 and 5
    marks = [t for t in texts(fig.axes[0]) if t == "×"]
    assert len(marks) == 2 == int((~M.any(axis=0)).sum())


def test_bad_arguments():
    with pytest.raises(ValueError, match="valid output"):
        figures.sliding_window_figure(np.ones((3, 3)), np.ones((2, 2)), (2, 0))
    with pytest.raises(ValueError, match="kind"):
        figures.sliding_window_figure(np.ones((3, 3)), np.ones((2, 2)), (0, 0), kind="conv")
    with pytest.raises(TypeError, match="n must be"):
        figures.read_matrix(7.0, 3)
