"""Tests for cnnref.teaching.figures_layers: each figure draws the numbers cnnref computes."""

from __future__ import annotations

from figure_helpers import close_figures, texts  # noqa: F401 (close_figures: autouse)

import numpy as np
import pytest
import scipy.signal

import cnnref
from cnnref.teaching import figures_layers as fl



def _ints(rng, lo, hi, shape):
    return rng.integers(lo, hi, size=shape).astype(float)


# --- forward_tensors_figure ------------------------------------------------------------------


def test_forward_tensors_figure_draws_the_layer_and_its_shares():
    rng = np.random.default_rng(3)
    x, w, b = (
        _ints(rng, -2, 3, (2, 4, 4)),
        _ints(rng, -1, 2, (3, 2, 2, 2)),
        _ints(rng, -2, 3, 3),
    )
    fig, drawn = fl.forward_tensors_figure(x, w, b, out_map=1)
    z, shares = drawn["z"], drawn["shares"]
    assert np.array_equal(z, cnnref.conv2d_forward(x[None], w, b)[0])
    for o in range(3):
        for c in range(2):
            assert np.array_equal(
                shares[o, c], scipy.signal.correlate2d(x[c], w[o, c], "valid")
            )
        # small integers: the sum of the shares plus the bias is exact
        assert np.array_equal(z[o], shares[o].sum(axis=0) + b[o])
    assert fig.get_size_inches()[0] <= 8.0
    # the panels write the numbers: inputs, kernels, biases, outputs, then the sum for o = 1
    written = [[t.get_text() for t in ax.texts] for ax in fig.axes]
    assert written[0] == [f"{v:g}" for v in x[0].ravel()]
    assert written[-1] == [f"{v:g}" for v in z[1].ravel()]
    assert [f"{v:g}" for v in shares[1, 0].ravel()] in written
    fig.canvas.draw()


def test_forward_tensors_figure_float_values_agree_with_jax_free_reference():
    rng = np.random.default_rng(5)
    x, w, b = (
        rng.standard_normal((2, 5, 5)),
        rng.standard_normal((2, 2, 3, 3)),
        rng.standard_normal(2),
    )
    fig, drawn = fl.forward_tensors_figure(x, w, b, fmt="{:.1f}")
    ref = np.stack(
        [
            b[o]
            + sum(scipy.signal.correlate2d(x[c], w[o, c], "valid") for c in range(2))
            for o in range(2)
        ]
    )
    np.testing.assert_allclose(drawn["z"], ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "x_shape, w_shape, b_shape, kw, err",
    [
        ((4, 4), (3, 2, 2, 2), (3,), {}, ValueError),  # x not 3-D
        ((2, 4, 4), (3, 3, 2, 2), (3,), {}, ValueError),  # channel mismatch
        ((2, 4, 4), (3, 2, 2, 2), (2,), {}, ValueError),  # one bias per output map
        ((4, 4, 4), (3, 4, 2, 2), (3,), {}, ValueError),  # too many input maps to draw
        ((2, 9, 9), (3, 2, 2, 2), (3,), {}, ValueError),  # maps too large to draw
        ((2, 4, 4), (3, 2, 2, 2), (3,), {"out_map": 3}, ValueError),
        ((2, 4, 4), (3, 2, 2, 2), (3,), {"out_map": 1.0}, TypeError),
    ],
)
def test_forward_tensors_figure_rejects_bad_arguments(
    x_shape, w_shape, b_shape, kw, err
):
    with pytest.raises(err):
        fl.forward_tensors_figure(
            np.ones(x_shape), np.ones(w_shape), np.ones(b_shape), **kw
        )


def test_forward_tensors_figure_needs_a_bias():
    with pytest.raises(ValueError, match="b must be given"):
        fl.forward_tensors_figure(np.ones((2, 4, 4)), np.ones((3, 2, 2, 2)), None)


# --- zero_insertion_figure -------------------------------------------------------------------


def _layer_dx(dz, w, x_hw, s, d):
    x = np.zeros((1, 1) + tuple(x_hw))
    return cnnref.conv2d_backward(
        dz[None, None], x, w[None, None], stride=s, dilation=d
    )[0][0, 0]


@pytest.mark.parametrize(
    "dz_shape, k_shape, x_hw, s, d",
    [
        ((2, 2), (3, 3), (5, 5), 2, 1),
        ((2, 2), (2, 2), (4, 4), 1, 2),
        ((2, 2), (2, 2), (6, 6), 2, 2),  # a stride remainder on both axes
        ((3, 2), (3, 2), (8, 5), 2, (1, 2)),
    ],
)
def test_zero_insertion_figure_equals_conv2d_backward(dz_shape, k_shape, x_hw, s, d):
    rng = np.random.default_rng(1)
    dz, w = _ints(rng, 1, 6, dz_shape), _ints(rng, -2, 3, k_shape)
    fig, drawn = fl.zero_insertion_figure([(dz, w, x_hw, s, d)])
    (row,) = drawn
    # integer data: the drawn input gradient is exactly the layer's
    assert np.array_equal(row["dx"], _layer_dx(dz, w, x_hw, s, d))
    sh, sw = (s, s) if isinstance(s, int) else s
    dh, dw = (d, d) if isinstance(d, int) else d
    spread = cnnref.transposed.dilate_kernel(w[None, None], (dh, dw))[0, 0]
    assert np.array_equal(row["w_rot"], spread[::-1, ::-1])
    inserted = row["dz_full"][
        spread.shape[0] - 1 : row["dz_full"].shape[0] - spread.shape[0] + 1,
        spread.shape[1] - 1 : row["dz_full"].shape[1] - spread.shape[1] + 1,
    ]
    assert np.array_equal(inserted[::sh, ::sw], dz)
    assert np.count_nonzero(row["dz_full"]) == np.count_nonzero(dz)
    assert fig.get_size_inches()[0] <= 8.0
    fig.canvas.draw()


def test_zero_insertion_figure_two_rows_with_random_data():
    rng = np.random.default_rng(2)
    rows = [
        (rng.standard_normal((2, 2)), rng.standard_normal((3, 3)), (5, 6), 2, 1),
        (rng.standard_normal((2, 2)), rng.standard_normal((2, 2)), (4, 4), 1, 2),
    ]
    fig, drawn = fl.zero_insertion_figure(rows, fmt="{:.1f}")
    for (dz, w, x_hw, s, d), row in zip(rows, drawn):
        np.testing.assert_allclose(
            row["dx"], _layer_dx(dz, w, x_hw, s, d), rtol=1e-12, atol=1e-12
        )


@pytest.mark.parametrize(
    "rows, err",
    [
        ([], ValueError),
        ("not rows", ValueError),
        ([(np.ones((2, 2)), np.ones((3, 3)), (5, 5), 2)], ValueError),  # four entries
        (
            [(np.ones((3, 3)), np.ones((3, 3)), (5, 5), 2, 1)],
            ValueError,
        ),  # wrong dz shape
        (
            [(np.ones((2, 2)), np.ones((3, 3)), (5,), 2, 1)],
            ValueError,
        ),  # x_hw not a pair
        ([(np.ones((2, 2)), np.ones((3, 3)), (5, 5), 0, 1)], ValueError),  # stride 0
        ([(np.ones((2, 2)), np.ones((3, 3)), (5, 5), 2.0, 1)], TypeError),
        ([(np.ones((2, 2), bool), np.ones((3, 3)), (5, 5), 2, 1)], TypeError),
        (
            [(np.ones((4, 4)), np.ones((3, 3)), (9, 9), 2, 1)] * 2,
            ValueError,
        ),  # too wide
    ],
)
def test_zero_insertion_figure_rejects_bad_arguments(rows, err):
    with pytest.raises(err):
        fl.zero_insertion_figure(rows)


# --- pooling_routing_figure ------------------------------------------------------------------

X_TIE = np.array(
    [
        [1.0, 0.0, 2.0, 1.0, 0.0],
        [3.0, 2.0, 1.0, 0.0, 1.0],
        [0.0, 1.0, 7.0, 2.0, 0.0],
        [2.0, 1.0, 3.0, 6.0, 8.0],
        [1.0, 0.0, 5.0, 8.0, 4.0],
    ]
)
DY = np.array([[1.0, 2.0], [3.0, 4.0]])


def test_pooling_routing_figure_routes_ties_and_adds_overlaps():
    fig, drawn = fl.pooling_routing_figure(X_TIE, DY, 3, 2)
    x4, dy4 = X_TIE[None, None], DY[None, None]
    assert np.array_equal(drawn["y"], cnnref.maxpool2d_forward(x4, 3, 2)[0, 0])
    assert np.array_equal(
        drawn["dx_max"], cnnref.maxpool2d_backward(dy4, x4, 3, 2)[0, 0]
    )
    assert np.array_equal(
        drawn["dx_max"], cnnref.maxpool2d_backward_loop(dy4, x4, 3, 2)[0, 0]
    )
    np.testing.assert_allclose(
        drawn["dx_mean"], cnnref.avgpool2d_backward(dy4, x4, 3, 2)[0, 0], rtol=0, atol=0
    )
    # window (1, 1) has a tie at [3, 4] and [4, 3]; the first in row-major order gets it all
    assert drawn["ties"] == {(1, 1): [(3, 4), (4, 3)]}
    assert drawn["dx_max"][3, 4] == 4.0 and drawn["dx_max"][4, 3] == 0.0
    # x[2, 2] = 7 wins three overlapping windows and collects 1 + 2 + 3
    assert drawn["dx_max"][2, 2] == 6.0 and drawn["dx_max"].sum() == DY.sum()
    # mean pooling: the centre lies in all four windows
    assert np.isclose(drawn["dx_mean"][2, 2], DY.sum() / 9, rtol=1e-15)
    np.testing.assert_allclose(drawn["dx_mean"].sum(), DY.sum(), rtol=1e-12)
    labels = [t.get_text() for t in fig.axes[3].texts]
    assert labels == [f"{v:.2f}" for v in drawn["dx_mean"].ravel()]
    assert fig.get_size_inches()[0] <= 8.0
    fig.canvas.draw()


def test_pooling_routing_figure_non_overlapping_default_stride():
    rng = np.random.default_rng(4)
    x = rng.permutation(36).reshape(6, 6).astype(float)
    dy = rng.standard_normal((3, 3))
    fig, drawn = fl.pooling_routing_figure(x, dy, 2)
    assert drawn["ties"] == {}
    assert np.array_equal(
        drawn["dx_max"],
        cnnref.maxpool2d_backward(dy[None, None], x[None, None], 2)[0, 0],
    )
    np.testing.assert_allclose(
        drawn["dx_mean"], np.kron(dy, np.ones((2, 2))) / 4, rtol=1e-12
    )


@pytest.mark.parametrize(
    "x, dy, size, stride, err",
    [
        (np.ones((1, 5, 5)), DY, 3, 2, ValueError),  # x not 2-D
        (X_TIE, np.ones((3, 3)), 3, 2, ValueError),  # dy not the pooled shape
        (X_TIE, DY, 0, 2, ValueError),
        (X_TIE, DY, 3, 2.0, TypeError),
        (X_TIE.astype(bool), DY, 3, 2, TypeError),
        (np.ones((9, 9)), np.ones((4, 4)), 3, 2, ValueError),  # too large to draw
    ],
)
def test_pooling_routing_figure_rejects_bad_arguments(x, dy, size, stride, err):
    with pytest.raises(err):
        fl.pooling_routing_figure(x, dy, size, stride)
