"""The one-dimensional convolutional layer, forward and backward (book: "One, two and more dimensions").

Shapes (NCL / OIL, as ``torch.nn.functional.conv1d`` and ``jax.lax.conv_general_dilated``):

* ``x``  : (N, C_in, L)               input signals ``a^{ℓ-1}``
* ``w``  : (C_out, C_in/G, K)         kernels, ``G = groups``
* ``b``  : (C_out,)                   biases
* ``z``  : (N, C_out, L')             complete input, ``L' = output_size(L, K, s, P, d)``

Forward ([eq-nd-forward], with groups [eq-nd-groups]), 0-based, ``x`` zero-padded by ``P`` on
each side, output map ``o`` in group ``γ = o // (C_out/G)`` reading the input maps
``γ·C_g .. γ·C_g + C_g − 1`` with ``C_g = C_in/G``:

    z[n, o, i] = b[o] + Σ_{c < C_g} Σ_{u < K}  w[o, c, u] · x_pad[n, γ·C_g + c, s i + d u]

Backward, given ``dz = ∂E/∂z`` (the deltas):

* ``db[o] = Σ_{n,i} dz[n, o, i]``                                          ([eq-nd-bias-grad])
* ``dw[o, c, u] = Σ_{n,i} dz[n, o, i] · x_pad[n, γ·C_g + c, s i + d u]``   ([eq-nd-weight-grad])
* ``dx_pad[n, γ·C_g + c, p] = Σ_{o ∈ γ} Σ_u Σ_{i: s i + d u = p} dz[n, o, i] · w[o, c, u]``;
  ``dx`` is ``dx_pad`` with the padding cropped ([eq-nd-input-grad]).

Two tiers. ``conv1d_forward`` / ``conv1d_backward`` are vectorised: pad → im2col (a strided
view of ``x_pad`` copied into one matrix of receptive fields per example and group,
[eq-nd-im2col]) → matrix product (→ col2im, the scatter-add of each kernel tap's share back
onto the positions it read, for the input gradient). ``conv1d_forward_loop`` /
``conv1d_backward_loop`` write the same sums as loops, index for index, for the book and the
tests on tiny inputs. The layer is written on its own, not through the 2-D layer; the book
checks that it equals ``conv2d_forward`` / ``conv2d_backward`` on inputs of height 1.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._validate import as_int, as_real_array, check_shape, result_dtype
from .sizes import output_size

__all__ = ["conv1d_backward", "conv1d_backward_loop", "conv1d_forward", "conv1d_forward_loop"]

_ONE = "an int or a sequence of one int"


def _as_one(v, name: str, minimum: int) -> int:
    """``v`` as one int >= ``minimum``: an int, or a one-element tuple/list (PyTorch accepts both)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise ValueError(f"{name} must be an int or a sequence of one int (a 1-D layer has one axis), "
                             f"got a sequence of length {len(v)}: {v!r}")
        v = v[0]
    n = as_int(v, name, _ONE)
    if n < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be {what} (>= {minimum}), got {n}")
    return n


def _check_conv1d(x, w, b, stride, padding, dilation, groups):
    """``(x, w, b, s, P, d, G, L')`` of a 1-D layer call, or a ValueError/TypeError saying what is wrong."""
    x = as_real_array(x, "x", ndim=3)
    w = as_real_array(w, "w", ndim=3)
    if x.size == 0 or w.size == 0:
        raise ValueError(f"x and w must not be empty, got x {x.shape} and w {w.shape}")
    groups = _as_one(groups, "groups", 1)
    (c_in, c_out) = x.shape[1], w.shape[0]
    if c_in % groups:
        raise ValueError(f"groups={groups} must divide the input channels, but x has C_in={c_in} "
                         f"(shape {x.shape}, NCL)")
    if c_out % groups:
        raise ValueError(f"groups={groups} must divide the output channels, but w has C_out={c_out} "
                         f"(shape {w.shape}, OIL)")
    if w.shape[1] != c_in // groups:
        raise ValueError(
            f"channel mismatch: x has C_in={c_in} channels (shape {x.shape}, NCL), so with groups={groups} "
            f"each kernel must read C_in/groups={c_in // groups}, but w has {w.shape[1]} (shape {w.shape}, "
            f"(C_out, C_in/groups, K))"
        )
    if b is not None:
        b = as_real_array(b, "b", ndim=1)
        check_shape(b, (c_out,), "b", f"one bias per output channel, C_out={c_out}")
    stride = _as_one(stride, "stride", 1)
    padding = _as_one(padding, "padding", 0)
    dilation = _as_one(dilation, "dilation", 1)
    out_len = output_size(x.shape[2], w.shape[2], stride, padding, dilation)
    return x, w, b, stride, padding, dilation, groups, out_len


def _check_dz(dz, x, w, out_len):
    dz = as_real_array(dz, "dz", ndim=3)
    check_shape(dz, (x.shape[0], w.shape[0], out_len), "dz",
                "the shape of conv1d_forward's output for these x, w and settings")
    return dz


# --- the steps: pad, im2col, col2im ----------------------------------------------------------


def _pad(x: np.ndarray, padding: int, dtype) -> np.ndarray:
    """``x_pad``: x inside ``padding`` zeros on each side, (N, C, L + 2P), in ``dtype``."""
    n, c, length = x.shape
    xp = np.zeros((n, c, length + 2 * padding), dtype=dtype)
    xp[:, :, padding : padding + length] = x
    return xp


def _im2col(xp: np.ndarray, k: int, stride: int, dilation: int, out_len: int, groups: int) -> np.ndarray:
    """The receptive fields, one matrix per example and group: (N, G, C_g·K, L') ([eq-nd-im2col]).

    ``cols[n, γ, (c, u), i] = x_pad[n, γ·C_g + c, s i + d u]``: first a strided view of x_pad
    (steps ``d`` along the tap u, ``s`` along the output i; nothing copied), then one copy into
    a contiguous array whose row order (c, u) matches ``w.reshape(G, C_out/G, C_g·K)``.
    """
    n, c, _ = xp.shape
    s_n, s_c, s_l = xp.strides
    fields = as_strided(xp, (n, c, k, out_len), (s_n, s_c, dilation * s_l, stride * s_l), writeable=False)
    return np.ascontiguousarray(fields).reshape(n, groups, (c // groups) * k, out_len)


def _col2im(dcols: np.ndarray, padded_len: int, stride: int, dilation: int) -> np.ndarray:
    """The scatter-add: ``dx_pad[n, c, s i + d u] += dcols[n, c, u, i]`` for every tap u and output i.

    dcols: (N, C_in, K, L'). One slice per tap: within a tap the positions ``s i + d u`` are
    distinct, and windows that overlap add their contributions tap after tap.
    """
    n, c, k, out_len = dcols.shape
    dxp = np.zeros((n, c, padded_len), dtype=dcols.dtype)
    for u in range(k):
        dxp[:, :, dilation * u : dilation * u + stride * (out_len - 1) + 1 : stride] += dcols[:, :, u]
    return dxp


# --- vectorised forms -------------------------------------------------------------------------


def conv1d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """Complete input ``z`` of a 1-D convolutional layer ([eq-nd-forward], [eq-nd-groups]).

    x: (N, C_in, L); w: (C_out, C_in/groups, K); b: (C_out,) or None.
    stride >= 1, padding >= 0 (zeros per side), dilation >= 1, groups >= 1 dividing C_in and
    C_out: ints (or one-element sequences). Returns z: (N, C_out, L').
    Same numbers as ``torch.nn.functional.conv1d``.

    1. pad:    ``x_pad`` (N, C_in, L + 2P);
    2. im2col: ``cols`` (N, G, C_g·K, L'), the receptive field of every output position;
    3. matrix product, one per example and group: ``z = w_mat @ cols`` with the group's kernels
       as one matrix ``w_mat`` (C_out/G, C_g·K) ([eq-nd-im2col]); then ``+ b``.
    """
    x, w, b, s, p, d, g, out_len = _check_conv1d(x, w, b, stride, padding, dilation, groups)
    dtype = result_dtype(x, w) if b is None else result_dtype(x, w, b)
    (n, _, _), (c_out, c_g, k) = x.shape, w.shape
    cols = _im2col(_pad(x, p, dtype), k, s, d, out_len, g)                  # (N, G, C_g·K, L')
    w_mat = w.reshape(g, c_out // g, c_g * k).astype(dtype, copy=False)     # (G, C_out/G, C_g·K)
    z = np.matmul(w_mat, cols).reshape(n, c_out, out_len)                  # (N, C_out, L')
    if b is not None:
        z += b.astype(dtype, copy=False)[:, None]
    return z


def conv1d_backward(dz, x, w, *, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of a scalar E through [eq-nd-forward], given ``dz = ∂E/∂z``.

    dz: (N, C_out, L'), exactly the forward output's shape; x, w and the settings as in
    :func:`conv1d_forward`. Returns ``(dx, dw, db)`` with the shapes of x, w and (C_out,):
    [eq-nd-input-grad], [eq-nd-weight-grad], [eq-nd-bias-grad]. Input positions that no window
    reads (gaps left by the stride and dilation, or the remainder) get exactly zero.

    The forward's matrix products, transposed (per example n and group γ):

    1. ``dw_mat[γ] = Σ_n dz[n, γ] @ cols[n, γ]ᵀ``: the deltas against the receptive fields;
    2. ``dcols[n, γ] = w_mat[γ]ᵀ @ dz[n, γ]``: what each receptive-field entry passed on;
    3. col2im: every tap adds its row of ``dcols`` back onto the positions ``s i + d u`` it read
       (overlapping windows accumulate), giving ``dx_pad``; ``dx`` drops the padding.
    """
    x, w, _, s, p, d, g, out_len = _check_conv1d(x, w, None, stride, padding, dilation, groups)
    dz = _check_dz(dz, x, w, out_len)
    dtype = result_dtype(dz, x, w)
    (n, c_in, length), (c_out, c_g, k) = x.shape, w.shape
    cols = _im2col(_pad(x, p, dtype), k, s, d, out_len, g)                  # (N, G, C_g·K, L')
    dz_g = dz.astype(dtype, copy=False).reshape(n, g, c_out // g, out_len)  # (N, G, C_out/G, L')
    db = dz_g.sum(axis=(0, 3)).reshape(c_out)                                # [eq-nd-bias-grad]
    dw = np.matmul(dz_g, cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w.shape)  # [eq-nd-weight-grad]
    w_mat = w.reshape(g, c_out // g, c_g * k).astype(dtype, copy=False)
    dcols = np.matmul(w_mat.transpose(0, 2, 1), dz_g)                        # (N, G, C_g·K, L')
    dxp = _col2im(dcols.reshape(n, c_in, k, out_len), length + 2 * p, s, d)  # [eq-nd-input-grad]
    return np.ascontiguousarray(dxp[:, :, p : p + length]), dw, db


# --- loop forms -------------------------------------------------------------------------------


def conv1d_forward_loop(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """[eq-nd-forward] with [eq-nd-groups] as five nested loops. Tiny inputs only."""
    x, w, b, s, p, d, g, out_len = _check_conv1d(x, w, b, stride, padding, dilation, groups)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p)))
    N = x.shape[0]
    O, Cg, K = w.shape
    Og = O // g  # output maps per group
    z = np.zeros((N, O, out_len), dtype=result_dtype(x, w) if b is None else result_dtype(x, w, b))
    for n in range(N):
        for o in range(O):
            first = (o // Og) * Cg  # the first input map of o's group
            for i in range(out_len):
                acc = 0.0 if b is None else b[o]
                for c in range(Cg):
                    for u in range(K):
                        acc += w[o, c, u] * xp[n, first + c, s * i + d * u]
                z[n, o, i] = acc
    return z


def conv1d_backward_loop(dz, x, w, *, stride=1, padding=0, dilation=1, groups=1):
    """The chain rule through [eq-nd-forward], one term at a time. Tiny inputs only.

    Each product ``w[o, c, u] · x_pad[n, first + c, s i + d u]`` that fed ``z[n, o, i]`` sends
    ``dz[n, o, i]`` back to both factors ([eq-nd-weight-grad], [eq-nd-input-grad]), and the
    bias collects ``dz[n, o, i]`` itself ([eq-nd-bias-grad]). The ``+=`` matters: a weight is
    used at every i, and an input position read by several windows collects from each.
    """
    x, w, _, s, p, d, g, out_len = _check_conv1d(x, w, None, stride, padding, dilation, groups)
    dz = _check_dz(dz, x, w, out_len)
    dtype = result_dtype(dz, x, w)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p)))
    N, _, L = x.shape
    O, Cg, K = w.shape
    Og = O // g
    dxp = np.zeros(xp.shape, dtype=dtype)
    dw = np.zeros(w.shape, dtype=dtype)
    db = np.zeros(O, dtype=dtype)
    for n in range(N):
        for o in range(O):
            first = (o // Og) * Cg
            for i in range(out_len):
                delta = dz[n, o, i]
                db[o] += delta
                for c in range(Cg):
                    for u in range(K):
                        q = s * i + d * u  # the padded position this term read
                        dw[o, c, u] += delta * xp[n, first + c, q]
                        dxp[n, first + c, q] += delta * w[o, c, u]
    return dxp[:, :, p : p + L], dw, db
