"""Tests for cnnref.teaching.figures_weight_grad: the figure shows cnnref's weight gradient as sums of products."""

from __future__ import annotations

from figure_helpers import close_figures, texts  # noqa: F401 (close_figures: autouse)

import matplotlib.pyplot as plt
import numpy as np
import pytest
import scipy.signal

import cnnref
from cnnref.teaching import figures_weight_grad as fwg




def _small_case(seed=0, shape=(5, 5), delta_shape=(3, 3)):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 5, shape), rng.integers(-2, 3, delta_shape)


def test_reads_sums_are_conv2d_backward_dw_and_scipy():
    a, d = _small_case()
    entries = [(u, v) for u in range(3) for v in range(3)][:4]
    drawn = fwg.weight_gradient_reads(a, d, entries)
    _, dw, _ = cnnref.conv2d_backward(d[None, None].astype(float), a[None, None].astype(float),
                                      np.zeros((1, 1, 3, 3)))
    assert np.array_equal(drawn["dw"], dw[0, 0])
    # integer data: every sum is exact, so equality is exact
    assert np.array_equal(drawn["dw"], scipy.signal.correlate2d(a, d, "valid"))
    for k, (u, v) in enumerate(entries):
        assert np.array_equal(drawn["windows"][k], a[u : u + 3, v : v + 3])
        assert np.array_equal(drawn["products"][k], a[u : u + 3, v : v + 3] * d)
        assert drawn["sums"][k] == dw[0, 0, u, v]


def test_reads_on_float_data_and_a_non_square_kernel():
    rng = np.random.default_rng(3)
    a, d = rng.standard_normal((6, 7)), rng.standard_normal((4, 5))  # kernel 3 x 3
    drawn = fwg.weight_gradient_reads(a, d, [(2, 1), (0, 2)])
    ref = scipy.signal.correlate2d(a, d, "valid")
    assert drawn["dw"].shape == (3, 3)
    np.testing.assert_allclose(drawn["dw"], ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_allclose(drawn["sums"], [ref[2, 1], ref[0, 2]], rtol=0, atol=1e-12 * np.abs(ref).max())


def test_figure_writes_what_it_computed():
    a, d = _small_case()
    fig, drawn = fwg.weight_gradient_reads_figure(a, d, ((0, 0), (1, 2)))
    axes = np.array(fig.axes).reshape(2, 4)
    for r, (u, v) in enumerate([(0, 0), (1, 2)]):
        ax_a, ax_d, ax_p, ax_w = axes[r]
        assert texts(ax_a) == [f"{x:g}" for x in a.ravel()]
        assert texts(ax_d) == [f"{x:g}" for x in d.ravel()]
        assert texts(ax_p) == [f"{x:g}" for x in drawn["products"][r].ravel()]
        assert texts(ax_w) == [f"{x:g}" for x in drawn["dw"].ravel()]
        (block,) = ax_a.patches  # the H' x W' block that starts at (u, v)
        assert block.get_xy() == (v - 0.5, u - 0.5) and block.get_width() == 3 and block.get_height() == 3
        (cell,) = ax_w.patches
        assert cell.get_xy() == (v - 0.5, u - 0.5) and cell.get_width() == 1
        assert f"{drawn['sums'][r]:g}" in ax_p.get_title()
    assert "-0" not in texts(axes[0, 2]) + texts(axes[1, 2])  # no negative zeros written
    assert fig.get_size_inches()[0] <= 8
    plt.close(fig)
    assert not plt.get_fignums()


def test_one_entry_gives_one_row():
    a, d = _small_case()
    fig, drawn = fwg.weight_gradient_reads_figure(a, d, [(2, 2)])
    assert len(fig.axes) == 4 and drawn["entries"] == [(2, 2)]


@pytest.mark.parametrize(
    "a,d,entries,exc",
    [
        (np.ones((4, 4)), np.ones((5, 2)), [(0, 0)], ValueError),  # delta taller than a
        (np.ones((4, 4)), np.ones((0, 2)), [(0, 0)], ValueError),  # empty delta
        (np.ones((4, 4, 1)), np.ones((2, 2)), [(0, 0)], ValueError),  # a not 2-D
        (np.ones((4, 4)), np.ones(2), [(0, 0)], ValueError),  # delta not 2-D
        (np.ones((4, 4), bool), np.ones((2, 2)), [(0, 0)], TypeError),
        (np.ones((4, 4)), np.ones((2, 2)), [(3, 0)], ValueError),  # outside the 3 x 3 kernel
        (np.ones((4, 4)), np.ones((2, 2)), [(0, -1)], ValueError),
        (np.ones((4, 4)), np.ones((2, 2)), [(0.0, 1)], TypeError),
        (np.ones((4, 4)), np.ones((2, 2)), [(0, 1, 2)], ValueError),
        (np.ones((4, 4)), np.ones((2, 2)), [], ValueError),
        (np.ones((4, 4)), np.ones((2, 2)), (0, 0), ValueError),  # a pair, not a list of pairs
        (np.ones((4, 4)), np.ones((2, 2)), [(0, 0)] * 5, ValueError),  # too many rows
    ],
)
def test_bad_arguments_are_rejected(a, d, entries, exc):
    with pytest.raises(exc):
        fwg.weight_gradient_reads(a, d, entries)
    with pytest.raises(exc):
        fwg.weight_gradient_reads_figure(a, d, entries)
    assert not plt.get_fignums()  # nothing drawn before the check
