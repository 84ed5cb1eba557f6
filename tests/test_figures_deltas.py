"""Tests for cnnref.teaching.figures_deltas: the figure shows the numbers cnnref computes."""

from __future__ import annotations

from figure_helpers import close_figures, texts  # noqa: F401 (close_figures: autouse)

import matplotlib.pyplot as plt
import numpy as np
import pytest
import scipy.signal

import cnnref
from cnnref.teaching import figures_deltas




@pytest.mark.parametrize(
    "delta_shape,kernel_shape,position",
    [((2, 3), (3, 3), (1, 2)), ((3, 3), (2, 2), (0, 0)), ((1, 4), (3, 2), (2, 4))],
)
def test_full_convolution_figure_shows_the_input_gradient(delta_shape, kernel_shape, position):
    rng = np.random.default_rng(0)
    delta = rng.standard_normal(delta_shape)
    kernel = rng.standard_normal(kernel_shape)
    fig, padded, rotated, dx = figures_deltas.full_convolution_figure(delta, kernel, position)
    kh, kw = kernel.shape
    H, W = delta.shape[0] + kh - 1, delta.shape[1] + kw - 1
    # the drawn input gradient is conv2d_backward's dx ...
    dx_ref = cnnref.conv2d_backward(delta[None, None], np.zeros((1, 1, H, W)), kernel[None, None])[0]
    assert np.array_equal(dx, dx_ref[0, 0])
    # ... and equals the full convolution shown: padded deltas correlated with rot180(w)
    assert np.array_equal(rotated, kernel[::-1, ::-1])
    assert padded.shape == (H + kh - 1, W + kw - 1)
    np.testing.assert_allclose(cnnref.correlate2d(padded, rotated), dx, rtol=0, atol=1e-12)
    np.testing.assert_allclose(scipy.signal.convolve2d(delta, kernel, "full"), dx, rtol=0, atol=1e-12)
    # the border is zeros, the middle the deltas
    assert np.array_equal(padded[kh - 1 : kh - 1 + delta.shape[0], kw - 1 : kw - 1 + delta.shape[1]], delta)
    border = padded.copy()
    border[kh - 1 : kh - 1 + delta.shape[0], kw - 1 : kw - 1 + delta.shape[1]] = 0.0
    assert not border.any()
    # the window outlined on the padded map starts at (p, q) and has the kernel's size;
    # the outlined input-gradient entry is (p, q)
    p, q = position
    (window,) = fig.axes[0].patches
    assert window.get_xy() == (q - 0.5, p - 0.5)
    assert (window.get_height(), window.get_width()) == (kh, kw)
    (entry,) = fig.axes[2].patches
    assert entry.get_xy() == (q - 0.5, p - 0.5)
    # the sum in the title is the outlined entry
    value = float(np.sum(padded[p : p + kh, q : q + kw] * rotated))
    assert abs(value - dx[p, q]) <= 1e-12
    plt.close(fig)


def test_full_convolution_figure_writes_the_numbers_it_returns():
    delta = np.array([[4, 1, 1], [1, 1, 4]])
    kernel = np.arange(1, 10).reshape(3, 3)
    fig, padded, _rotated, dx = figures_deltas.full_convolution_figure(delta, kernel, (1, 2))
    # every border cell is written "0", every delta cell its value
    assert texts(fig.axes[0]) == [f"{v:g}" for v in padded.ravel()]
    assert texts(fig.axes[1]) == ["9", "8", "7", "6", "5", "4", "3", "2", "1"]
    assert texts(fig.axes[2]) == [f"{v:g}" for v in dx.ravel()]
    assert dx[1, 2] == 42.0
    assert fig._suptitle.get_text().endswith("= 42")
    plt.close(fig)
    assert not plt.get_fignums()


@pytest.mark.parametrize(
    "args,error",
    [
        ((np.ones(3), np.ones((2, 2)), (0, 0)), ValueError),  # delta not 2-D
        ((np.ones((2, 2)), np.ones((2, 2, 1)), (0, 0)), ValueError),  # kernel not 2-D
        ((np.ones((2, 2), dtype=bool), np.ones((2, 2)), (0, 0)), TypeError),
        ((np.ones((2, 2)), np.ones((2, 2)), (3, 0)), ValueError),  # outside the 3 x 3 input
        ((np.ones((2, 2)), np.ones((2, 2)), (0, -1)), ValueError),
        ((np.ones((2, 2)), np.ones((2, 2)), (0,)), ValueError),
        ((np.ones((2, 2)), np.ones((2, 2)), (0.0, 1)), TypeError),
        ((np.ones((0, 2)), np.ones((2, 2)), (0, 0)), ValueError),
    ],
)
def test_full_convolution_figure_rejects_bad_arguments(args, error):
    with pytest.raises(error):
        figures_deltas.full_convolution_figure(*args)
    assert not plt.get_fignums()  # nothing drawn before the check
