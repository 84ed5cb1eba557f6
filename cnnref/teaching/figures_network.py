"""Figures of the whole network's gradient flow, drawn from ``cnnref.network`` (book: whole_network.md).

:func:`gradient_flow` runs :func:`cnnref.network.forward` and :func:`cnnref.network.backward`
with a ``trace``, which keeps every intermediate gradient (``∂E/∂s``, ``∂E/∂f``, and per stage
``∂E/∂p``, ``∂E/∂a``, ``δ = ∂E/∂z``, down to ``∂E/∂x``) that the backward pass computes. :func:`gradient_flow_figure` draws them as a block diagram: the forward tensors with
their shapes in one column, the gradients with theirs beside them, the parameter gradients on
the right. Nothing on the picture is typed in by hand: every shape is read off an array that
``cnnref`` computed, and the function returns those arrays.

matplotlib is imported inside the functions only: importing ``cnnref`` never needs it.
"""

from __future__ import annotations

import numpy as np

from ..network import backward, check_params, forward, loss_grad, loss_value, stages

__all__ = ["gradient_flow", "gradient_flow_figure"]


def gradient_flow(params, x, target, *, loss: str = "sse", padding=0, pool=2) -> dict:
    """Every tensor of the forward pass and every gradient of the backward pass of the network.

    params: as :func:`cnnref.network.init_params` (``w1``, ``b1``, …, ``wS``, ``bS``, ``W``, ``c``);
    x: (N, C_0, H, W); target, loss, padding, pool: as :func:`cnnref.network.loss_and_grads`.

    Returns a dict of three dicts, each in the order of the pass, and ``"pool"``, the pooling
    window of every stage:

    * ``"forward"``: ``x``, then per stage ``z{s}``, ``a{s}``, ``p{s}``, then ``f`` (N, D),
      ``s`` (N, n_out), for ``loss="sse"`` also ``o = σ(s)``, and ``E`` (a 0-d array)
      ([eq-layer-forward], [eq-flatten], [eq-dense-forward], [eq-wn-loss] or [eq-softmax-ce]);
    * ``"backward"``: ``dE/do`` (``"sse"`` only), ``dE/ds``, ``dE/df``, then per stage from
      S down to 1 ``dE/dp{s}``, ``dE/da{s}``, ``dE/dz{s}`` (the delta δ^s), and ``dE/dx``; each
      has the shape of the tensor it differentiates ([eq-half-sse-grad] or
      [eq-softmax-ce-grad], [eq-dense-backward], [eq-avgpool-backward] or
      [eq-maxpool-backward], [eq-delta-activation], [eq-input-grad]);
    * ``"grads"``: ``W``, ``c``, then ``w{s}``, ``b{s}`` from S down to 1 ([eq-dense-backward],
      [eq-weight-grad], [eq-bias-grad]); the same numbers as :func:`cnnref.network.backward`,
      computed by the same operations.
    """
    out, cache = forward(params, x, loss=loss, padding=padding, pool=pool)
    p = check_params(params)
    S = stages(p)
    fwd = {"x": cache["x"]}
    for s in range(1, S + 1):
        fwd.update({f"z{s}": cache[f"z{s}"], f"a{s}": cache[f"a{s}"], f"p{s}": cache[f"p{s}"]})
    fwd.update(f=cache["f"], s=cache["s"])
    if loss == "sse":
        fwd["o"] = out
    fwd["E"] = np.asarray(loss_value(out, target, loss=loss))

    dout = loss_grad(out, target, loss=loss)
    trace = {}
    grads = backward(p, cache, dout, trace=trace)
    bwd = {"dE/do": dout} if loss == "sse" else {}
    bwd.update(trace)
    grads = {k: grads[k] for k in ("W", "c", *(f"{k}{s}" for s in range(S, 0, -1) for k in "wb"))}
    return {"forward": fwd, "backward": bwd, "grads": grads, "pool": cache["pool"]}


def _shape_text(a) -> str:
    shape = np.shape(a)
    return "scalar" if shape == () else "(" + ", ".join(map(str, shape)) + (",)" if len(shape) == 1 else ")")


def gradient_flow_figure(params, x, target, *, loss: str = "sse", padding=0, pool=2):
    """Block diagram of the forward and the backward pass, with the shape of every array.

    Arguments as :func:`gradient_flow`. Three columns, one row per forward tensor (input at the
    top, the loss at the bottom): the forward tensors with the operation between them
    ([eq-layer-forward], [eq-flatten], [eq-dense-forward]); in the same row, the gradient of
    the loss with respect to that tensor, the arrows running upwards from the loss to the input
    ([eq-delta-activation], [eq-input-grad]); on the right, the parameter gradients that leave
    the backward pass at ``∂E/∂s`` and at each delta ([eq-dense-backward], [eq-weight-grad],
    [eq-bias-grad]).

    Returns ``(fig, drawn)``: ``drawn`` is the dict of :func:`gradient_flow`, the arrays whose
    shapes are written on the picture, with ``"labels"`` added: the text of each box, by the
    key of its array (``"x"``, ``"dE/dz1"``, ``"w1"``, …).
    """
    from matplotlib.patches import FancyBboxPatch

    import matplotlib.pyplot as plt  # lazy: only the book's figure cells need matplotlib

    drawn = gradient_flow(params, x, target, loss=loss, padding=padding, pool=pool)
    fwd, bwd, grads = drawn["forward"], drawn["backward"], drawn["grads"]
    S = stages(params)
    cfg_pool = drawn["pool"]
    phi = r"$\sigma$" if loss == "sse" else "ReLU"
    pool_name = "mean" if loss == "sse" else "max"

    # one row per forward tensor: (key, label, operation that produced it, gradient key, label,
    # backward operation from the row below to this one, parameter gradients that leave here)
    rows = [("x", "$x$ (input)", None)]
    for s in range(1, S + 1):
        below = "x" if s == 1 else f"p^{s - 1}"
        rows += [(f"z{s}", f"$z^{s}$", f"conv $w^{s}$, $b^{s}$"),
                 (f"a{s}", f"$a^{s}$", phi),
                 (f"p{s}", f"$p^{s}$", f"{pool_name} pool {cfg_pool[s - 1]}×{cfg_pool[s - 1]}")]
    rows += [("f", "$f$", "flatten"), ("s", "$s$", "dense $W$, $c$")]
    if loss == "sse":
        rows += [("o", "$o$", r"$\sigma$"), ("E", "$E$", r"$\sum\Vert o-t\Vert^2/(2N)$")]
    else:
        rows += [("E", "$E$", "softmax CE,\nmean")]
    grad_of = {"x": ("dE/dx", r"$\partial E/\partial x$"), "f": ("dE/df", r"$\partial E/\partial f$"),
               "s": ("dE/ds", r"$\partial E/\partial s$"), "o": ("dE/do", r"$\partial E/\partial o$")}
    back_op = {"x": "conv backward", "f": r"$\cdot\,W$", "s": r"$\odot\,\sigma'(s)$"}
    if loss == "ce":
        back_op["s"] = None
    params_at = {"s": ("W", "c")}
    for s in range(1, S + 1):
        grad_of[f"z{s}"] = (f"dE/dz{s}", rf"$\delta^{s} = \partial E/\partial z^{s}$")
        grad_of[f"a{s}"] = (f"dE/da{s}", rf"$\partial E/\partial a^{s}$")
        grad_of[f"p{s}"] = (f"dE/dp{s}", rf"$\partial E/\partial p^{s}$")
        back_op[f"z{s}"] = rf"$\odot\,${'σ' if loss == 'sse' else 'ReLU'}$'(z^{s})$"
        back_op[f"a{s}"] = f"{pool_name} pool backward"
        back_op[f"p{s}"] = "unflatten" if s == S else "conv backward"
        params_at[f"z{s}"] = (f"w{s}", f"b{s}")

    n = len(rows)
    dy, bh, top, bottom = 0.66, 0.46, 0.45, 0.2
    height = top + n * dy + bottom
    fig = plt.figure(figsize=(8, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 8)
    ax.set_ylim(0, height)
    ax.axis("off")
    xf, wf = 2.2, 1.55  # forward column: centre, box width (inches)
    xb, wb = 4.45, 2.0  # backward column
    xp, wp = 6.85, 2.05  # parameter-gradient column
    y_of = {key: height - top - (i + 0.5) * dy for i, (key, _, _) in enumerate(rows)}

    def box(xc, yc, w, text, face):
        ax.add_patch(FancyBboxPatch((xc - w / 2, yc - bh / 2), w, bh, boxstyle="round,pad=0,rounding_size=0.06",
                                    facecolor=face, edgecolor="0.3", linewidth=0.8))
        ax.text(xc, yc, text, ha="center", va="center", fontsize=9, linespacing=1.35)

    def arrow(x0, y0, x1, y1, color):
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color=color, linewidth=1.1, shrinkA=0, shrinkB=0))

    head_y = height - top / 2
    for xc, text in [(xf, "forward: tensor, shape"), (xb, "backward: gradient, shape"),
                     (xp, "parameter gradients")]:
        ax.text(xc, head_y, text, ha="center", va="center", fontsize=9.5, fontweight="bold")

    texts = {}
    for i, (key, label, op) in enumerate(rows):
        y = y_of[key]
        texts[key] = f"{label}\n{_shape_text(fwd[key])}"
        box(xf, y, wf, texts[key], "#deebf7")
        if op is not None:
            y_up = y_of[rows[i - 1][0]]
            arrow(xf, y_up - bh / 2, xf, y + bh / 2, "#2171b5")
            ax.text(xf - 0.1, (y + y_up) / 2, op, ha="right", va="center", fontsize=8.5, color="#08519c")
        if key in grad_of:
            gkey, glabel = grad_of[key]
            texts[gkey] = f"{glabel}\n{_shape_text(bwd[gkey])}"
            box(xb, y, wb, texts[gkey], "#fdd0a2")
        if key in params_at:
            k1, k2 = params_at[key]
            texts[k1] = (rf"$\partial E/\partial {k1[0]}^{{{k1[1:]}}}$: {_shape_text(grads[k1])}" if k1 != "W"
                         else rf"$\partial E/\partial W$: {_shape_text(grads[k1])}")
            texts[k2] = (rf"$\partial E/\partial {k2[0]}^{{{k2[1:]}}}$: {_shape_text(grads[k2])}" if k2 != "c"
                         else rf"$\partial E/\partial c$: {_shape_text(grads[k2])}")
            box(xp, y, wp, f"{texts[k1]}\n{texts[k2]}", "#c7e9c0")
            arrow(xb + wb / 2, y, xp - wp / 2, y, "#238b45")
    # backward arrows: upwards through the gradient column
    gkeys = [key for key, _, _ in rows if key in grad_of]
    for lower, upper in zip(gkeys[::-1][:-1], gkeys[::-1][1:]):
        y0, y1 = y_of[lower], y_of[upper]
        arrow(xb, y0 + bh / 2, xb, y1 - bh / 2, "#d94801")
        op = back_op.get(upper)
        if op:
            ax.text(xb + 0.08, (y0 + y1) / 2, op, ha="left", va="center", fontsize=8.5, color="#a63603")
    # the loss starts the backward pass
    last = gkeys[-1]
    yE, yl = y_of["E"], y_of[last]
    start = r"$(o-t)/N$" if loss == "sse" else r"$(\mathrm{softmax}(s)-\mathrm{onehot})/N$"
    ax.annotate("", xy=(xb, yl - bh / 2), xytext=(xf + wf / 2, yE),
                arrowprops=dict(arrowstyle="-|>", color="#d94801", linewidth=1.1, shrinkA=0, shrinkB=0,
                                connectionstyle="angle,angleA=0,angleB=90"))
    ax.text(xf + wf / 2 + 0.1, yE - 0.14, start, ha="left", va="top", fontsize=8.5, color="#a63603")
    drawn["labels"] = texts  # what each box says, by array key
    return fig, drawn
