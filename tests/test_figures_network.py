"""Tests for cnnref.teaching.figures_network: the gradient-flow figure shows the shapes cnnref.network computes."""

from __future__ import annotations

from figure_helpers import close_figures, texts  # noqa: F401 (close_figures: autouse)

import matplotlib.pyplot as plt
import numpy as np
import pytest

from cnnref import network as nw
from cnnref.gradcheck import numerical_gradient, relative_error
from cnnref.teaching import figures_network as fn
from cnnref.teaching import matlab_net as mn

POOLS = (2, 2)



def _chapter_network():
    """The network of whole_network.md: 12 x 12 inputs, N = 4, stages of 2 and 3 maps, 3 outputs."""
    rng = np.random.default_rng(0)
    params = mn.init_params(rng, (12, 12), channels=(2, 3), kernels=(3, 2), pools=POOLS, n_out=3)
    for v in params.values():
        v += 0.1 * rng.standard_normal(v.shape)
    x = rng.random((12, 12, 4))
    t = np.eye(3)[:, [0, 1, 2, 1]]
    return nw.from_matlab(params, (12, 12), POOLS), nw.stack_to_nchw(x), t.T


def _ce_network():
    params = nw.init_params((1, 8, 8), (3, 4, 5), seed=1, kernel=(3, 3, 1), padding=(1, 1, 0), pool=(2, 1, 2))
    x = np.random.default_rng(2).random((3, 1, 8, 8))
    return params, x, np.array([0, 4, 9])


CASES = {"sse": (_chapter_network, dict(loss="sse", padding=0, pool=POOLS)),
         "ce": (_ce_network, dict(loss="ce", padding=(1, 1, 0), pool=(2, 1, 2)))}


@pytest.mark.parametrize("case", CASES)
def test_forward_arrays_are_the_cache_of_network_forward(case):
    make, kw = CASES[case]
    params, x, t = make()
    flow = fn.gradient_flow(params, x, t, **kw)
    out, cache = nw.forward(params, x, **kw)
    fwd = flow["forward"]
    S = nw.stages(params)
    expected = ["x", *(f"{k}{s}" for s in range(1, S + 1) for k in "zap"), "f", "s"]
    expected += ["o", "E"] if case == "sse" else ["E"]
    assert list(fwd) == expected
    for key in expected[:-1]:
        assert np.array_equal(fwd[key], out if key == "o" else cache[key]), key
    assert fwd["E"].shape == () and float(fwd["E"]) == nw.loss_value(out, t, loss=kw["loss"])


@pytest.mark.parametrize("case", CASES)
def test_parameter_gradients_equal_network_backward_exactly(case):
    make, kw = CASES[case]
    params, x, t = make()
    flow = fn.gradient_flow(params, x, t, **kw)
    _, grads = nw.loss_and_grads(params, x, t, **kw)
    assert set(flow["grads"]) == set(grads)
    for k, g in grads.items():
        assert np.array_equal(flow["grads"][k], g), k  # same operations, bitwise


@pytest.mark.parametrize("case", CASES)
def test_every_gradient_has_the_shape_of_its_tensor(case):
    make, kw = CASES[case]
    params, x, t = make()
    flow = fn.gradient_flow(params, x, t, **kw)
    fwd, bwd = flow["forward"], flow["backward"]
    assert set(bwd) == {f"dE/d{k}" for k in fwd if k != "E"}
    for key, g in bwd.items():
        assert g.shape == fwd[key[4:]].shape, key
    for k, g in flow["grads"].items():
        assert g.shape == params[k].shape, k


def test_intermediate_gradients_match_central_differences():
    """Each gradient the figure draws is the derivative of E: checked by perturbing the tensor.

    E is re-evaluated from a perturbed z2, f or x through cnnref's own layers; float64 central
    differences with eps = 1e-6 are good to ~1e-8 relative here, so 1e-6 is a safe bound.
    """
    from cnnref import activations as act
    from cnnref import avgpool2d_forward, conv2d_forward
    from cnnref.dense import dense_forward, flatten

    params, x, t = _chapter_network()
    flow = fn.gradient_flow(params, x, t, loss="sse", padding=0, pool=POOLS)

    def from_f(f):
        return nw.loss_value(act.sigmoid(dense_forward(f, params["W"], params["c"])), t, loss="sse")

    def from_z2(z2):
        return from_f(flatten(avgpool2d_forward(act.sigmoid(z2), 2)))

    def from_x(x_):
        return nw.loss_value(nw.forward(params, x_, loss="sse", padding=0, pool=POOLS)[0], t, loss="sse")

    fwd, bwd = flow["forward"], flow["backward"]
    for key, fun in [("f", from_f), ("z2", from_z2), ("x", from_x)]:
        num = numerical_gradient(fun, fwd[key].copy(), eps=1e-6)
        assert relative_error(bwd[f"dE/d{key}"], num) < 1e-6, key
    assert np.array_equal(fwd["z2"], conv2d_forward(fwd["p1"], params["w2"], params["b2"]))


def _shape_text(a):
    return "scalar" if a.shape == () else str(tuple(a.shape))


@pytest.mark.parametrize("case", CASES)
def test_figure_writes_every_shape_cnnref_computed(case):
    make, kw = CASES[case]
    params, x, t = make()
    fig, drawn = fn.gradient_flow_figure(params, x, t, **kw)
    joined = "\n".join(texts(fig.axes[0]))
    labels = drawn["labels"]
    arrays = {**drawn["forward"], **drawn["backward"], **drawn["grads"]}
    assert set(labels) == set(arrays)
    for key, label in labels.items():
        assert _shape_text(arrays[key]) in label, key
        assert label in joined, key
    # the chapter's network: the shapes the book quotes
    if case == "sse":
        assert drawn["backward"]["dE/dz1"].shape == (4, 2, 10, 10)
        assert drawn["backward"]["dE/dp1"].shape == (4, 2, 5, 5)
        assert drawn["backward"]["dE/df"].shape == (4, 12)
        assert "(4, 3, 4, 4)" in labels["dE/dz2"] and "(3, 2, 2, 2)" in labels["w2"]
    w, h = fig.get_size_inches()
    assert w <= 8
    assert min(txt.get_fontsize() for txt in fig.axes[0].texts) >= 8
    plt.close(fig)
    assert not plt.get_fignums()


def test_bad_arguments_are_rejected():
    params, x, t = _chapter_network()
    with pytest.raises(ValueError):
        fn.gradient_flow(params, x, t, loss="mse", padding=0, pool=POOLS)
    with pytest.raises(ValueError):
        fn.gradient_flow(params, x[0], t, loss="sse", padding=0, pool=POOLS)
    with pytest.raises(ValueError):
        fn.gradient_flow({k: v for k, v in params.items() if k != "W"}, x, t, loss="sse", padding=0, pool=POOLS)
    with pytest.raises(TypeError):
        fn.gradient_flow_figure(params, x, t, loss="sse", padding=0, pool=2.0)
