"""The transposed convolution as a layer, forward and backward (book: "Transposed convolution as a layer").

Shapes (NCHW; the kernel in PyTorch's layout for ``conv_transpose2d``, input maps first):

* ``x``  : (N, C_in, H, W)                    input maps
* ``w``  : (C_in, C_out/groups, K_h, K_w)     kernels, ``w[c, o, u, v]`` from input map c to output map o
* ``b``  : (C_out,)                           biases
* ``y``  : (N, C_out, H_out, W_out)           output, ``H_out = (H − 1)·s − 2P + d·(K_h − 1) + output_padding + 1``
  ([eq-tc-output-size]), with ``output_padding < max(s, d)`` on each axis, as PyTorch requires.

Forward ([eq-tc-forward]), a scatter: every input pixel stamps its value times the kernel into the
output, the taps ``d`` apart, the stamps ``s`` apart, the first ``P`` rows and columns cropped:

    y_pad[n, o, s_h p + d_h u, s_w q + d_w v] += w[c, o, u, v] · x[n, c, p, q],   y = b + y_pad[P : P + H_out]

It is the input gradient of the convolution ``𝒞`` that has the same stride, padding, dilation and
kernel (read as OIHW: ``w[c, o]`` maps map o to map c) and maps (N, C_out, H_out, W_out) back to
(N, C_in, H, W) ([eq-tc-operator], [eq-tc-is-input-grad]): ``y = 𝒞ᵀ x + b``. Hence the backward pass,
given ``dy = ∂E/∂y``:

* ``dx = 𝒞 dy``, a convolution of the deltas with the same kernel ([eq-tc-dx]);
* ``dw[c, o, u, v] = Σ_{n,p,q} x[n, c, p, q] · dy_pad[n, o, s_h p + d_h u, s_w q + d_w v]``, the weight
  gradient of ``𝒞`` with ``dy`` as its input and ``x`` as its deltas ([eq-tc-dw]);
* ``db[o] = Σ_{n,r,t} dy[n, o, r, t]`` ([eq-tc-db]).

``groups`` splits the channels into that many blocks, each a transposed convolution of its own
([eq-tc-groups]): input maps ``k·C_in/g … (k+1)·C_in/g − 1`` feed output maps
``k·C_out/g … (k+1)·C_out/g − 1`` through ``w[k·C_in/g : (k+1)·C_in/g]``.

Two tiers, as for the convolution: ``conv_transpose2d_forward`` / ``conv_transpose2d_backward`` are
built from :func:`cnnref.conv2d_forward` and :func:`cnnref.conv2d_backward` with the same
``groups``, exactly as the derivation says; ``conv_transpose2d_forward_loop`` /
``conv_transpose2d_backward_loop`` are the sums written as loops, index for index.
The numbers are those of ``torch.nn.functional.conv_transpose2d`` and of its gradients.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validate import as_int, as_pair, as_real_array, check_shape, result_dtype
from .conv import conv2d_backward, conv2d_forward
from .sizes import output_size

__all__ = [
    "conv_transpose2d_forward",
    "conv_transpose2d_backward",
    "conv_transpose2d_forward_loop",
    "conv_transpose2d_backward_loop",
]


class _Layer(NamedTuple):
    """A checked call: the arrays, the settings as (h, w) pairs, and the sizes."""

    x: np.ndarray
    w: np.ndarray
    b: np.ndarray | None
    stride: tuple[int, int]
    padding: tuple[int, int]
    output_padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    out_hw: tuple[int, int]   # (H_out, W_out) of the transposed convolution
    conv_hw: tuple[int, int]  # what the convolution 𝒞 gives for an (H_out, W_out) input: (H, W) or more

    @property
    def c_out(self) -> int:
        return self.w.shape[1] * self.groups


def _check(x, w, b, stride, padding, output_padding, dilation, groups) -> _Layer:
    x = as_real_array(x, "x", ndim=4)
    w = as_real_array(w, "w", ndim=4)
    if x.size == 0 or w.size == 0:
        raise ValueError(f"x and w must not be empty, got x {x.shape} and w {w.shape}")
    groups = as_int(groups, "groups", minimum=1)
    if x.shape[1] != w.shape[0]:
        raise ValueError(
            f"channel mismatch: x has C_in={x.shape[1]} channels (shape {x.shape}, NCHW) but w expects "
            f"C_in={w.shape[0]} (shape {w.shape}, (C_in, C_out/groups, K_h, K_w): input maps first)"
        )
    if x.shape[1] % groups:
        raise ValueError(f"groups={groups} must divide the C_in={x.shape[1]} input channels of x {x.shape}")
    if b is not None:
        b = as_real_array(b, "b", ndim=1)
        check_shape(b, (w.shape[1] * groups,), "b",
                    f"one bias per output channel, C_out = groups · w.shape[1] = {w.shape[1] * groups}")
    stride = as_pair(stride, "stride", 1)
    padding = as_pair(padding, "padding", 0)
    output_padding = as_pair(output_padding, "output_padding", 0)
    dilation = as_pair(dilation, "dilation", 1)
    for a, axis in enumerate(("rows", "columns")):
        if output_padding[a] >= max(stride[a], dilation[a]):
            raise ValueError(
                f"output_padding must be smaller than max(stride, dilation) on each axis (as in PyTorch), "
                f"got output_padding={output_padding[a]} with stride={stride[a]} and dilation={dilation[a]} "
                f"for the {axis}"
            )
    out_hw = tuple(
        (x.shape[2 + a] - 1) * stride[a] - 2 * padding[a] + dilation[a] * (w.shape[2 + a] - 1)
        + output_padding[a] + 1
        for a in (0, 1)
    )
    if min(out_hw) < 1:
        raise ValueError(
            f"the output would be empty: H_out, W_out = (H − 1)·s − 2P + d·(K − 1) + output_padding + 1 = "
            f"{out_hw} for x {x.shape}, w {w.shape}, stride={stride}, padding={padding}, "
            f"output_padding={output_padding}, dilation={dilation}; the padding crops more than there is"
        )
    conv_hw = tuple(output_size(out_hw[a], w.shape[2 + a], stride[a], padding[a], dilation[a]) for a in (0, 1))
    return _Layer(x, w, b, stride, padding, output_padding, dilation, groups, out_hw, conv_hw)


def _check_dy(dy, t: _Layer) -> np.ndarray:
    dy = as_real_array(dy, "dy", ndim=4)
    check_shape(dy, (t.x.shape[0], t.c_out) + t.out_hw, "dy",
                "the shape of conv_transpose2d_forward's output for these x, w and settings")
    return dy


def _conv_settings(t: _Layer) -> dict:
    return dict(stride=t.stride, padding=t.padding, dilation=t.dilation, groups=t.groups)


def _as_conv_deltas(x: np.ndarray, t: _Layer) -> np.ndarray:
    """``x`` with zero rows and columns appended up to the convolution's output size ``conv_hw``.

    That size is (H, W) itself unless output_padding >= stride (possible when dilation > stride):
    then 𝒞 gives ⌊output_padding / s⌋ more rows, which the transposed convolution does not feed.
    """
    (h, w), (hc, wc) = x.shape[2:], t.conv_hw
    if (hc, wc) == (h, w):
        return x
    return np.pad(x, ((0, 0), (0, 0), (0, hc - h), (0, wc - w)))


def conv_transpose2d_forward(
    x, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1
) -> np.ndarray:
    """Output ``y`` of a transposed convolution ([eq-tc-forward]), as the input
    gradient of a convolution ([eq-tc-is-input-grad]).

    x: (N, C_in, H, W); w: (C_in, C_out/groups, K_h, K_w); b: (C_out,) or None.
    stride, padding (rows cropped per side), output_padding (rows added at the
    end, < max(s, d)), dilation: int or (h, w) pair; groups: int dividing C_in.
    Returns y: (N, C_out, H_out, W_out) ([eq-tc-output-size]), the numbers of
    ``torch.nn.functional.conv_transpose2d``.

    ``y = 𝒞ᵀ x``: ``conv2d_backward`` of the grouped convolution 𝒞 with kernel
    ``w`` (read as OIHW, C_out -> C_in maps, the same groups) and input size
    (H_out, W_out), given ``x`` as its deltas, returns ``y`` as its input
    gradient. (It also returns the weight gradient of a zero input, discarded.)
    Then the bias is added to every position.
    """
    t = _check(x, w, b, stride, padding, output_padding, dilation, groups)
    dtype = result_dtype(t.x, t.w) if t.b is None else result_dtype(t.x, t.w, t.b)
    # w (C_in, C_out/groups, K_h, K_w) is the grouped OIHW kernel of 𝒞 (C_out -> C_in
    # maps); the input of 𝒞 only gives its shape
    shape = (t.x.shape[0], t.c_out) + t.out_hw
    conv_input = np.broadcast_to(np.zeros((), dtype), shape)
    deltas = _as_conv_deltas(t.x, t)
    y = conv2d_backward(deltas, conv_input, t.w, **_conv_settings(t))[0]
    if t.b is not None:
        y += t.b[:, None, None]
    return y


def conv_transpose2d_backward(dy, x, w, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """Gradients of a scalar E through [eq-tc-forward], given ``dy = ∂E/∂y``.

    dy: (N, C_out, H_out, W_out), the shape of the forward's output; x, w and the settings as in
    :func:`conv_transpose2d_forward`. Returns ``(dx, dw, db)`` with the shapes of x, w and (C_out,):

    * ``dx = 𝒞 dy``: ``conv2d_forward(dy, w)`` with the forward's stride, padding and dilation
      ([eq-tc-dx]), its first H rows and W columns (all of it unless output_padding >= stride);
    * ``dw``: ``conv2d_backward``'s weight gradient of 𝒞 with ``dy`` as its input and ``x`` as its
      deltas ([eq-tc-dw]); (the input gradient it also returns is discarded);
    * ``db = Σ_{n,r,t} dy`` ([eq-tc-db]).
    """
    t = _check(x, w, None, stride, padding, output_padding, dilation, groups)
    dy = _check_dy(dy, t)
    dtype = result_dtype(dy, t.x, t.w)
    (h, wd), settings = t.x.shape[2:], _conv_settings(t)
    dx = conv2d_forward(dy, t.w, **settings)[:, :, :h, :wd]                     # [eq-tc-dx]
    dw = conv2d_backward(_as_conv_deltas(t.x, t), dy, t.w, **settings)[1]        # [eq-tc-dw]
    dx, dw = dx.astype(dtype, copy=False), dw.astype(dtype, copy=False)
    db = dy.sum(axis=(0, 2, 3)).astype(dtype, copy=False)                         # [eq-tc-db]
    return dx, dw, db


# --- loop forms -------------------------------------------------------------------------------


def conv_transpose2d_forward_loop(
    x, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1
) -> np.ndarray:
    """[eq-tc-forward] as a scatter, loop by loop. Tiny inputs only.

    Every input pixel ``x[n, c, p, q]`` adds ``w[c, o, u, v] · x[n, c, p, q]`` to
    ``y_pad`` at ``(s_h p + d_h u, s_w q + d_w v)``, for every output map o of its
    group and every tap (u, v); ``y`` is ``y_pad`` without its first P rows and
    columns, plus the bias.
    """
    cfg = _check(x, w, b, stride, padding, output_padding, dilation, groups)
    (sh, sw), (ph, pw), (dh, dw) = cfg.stride, cfg.padding, cfg.dilation
    ho, wo = cfg.out_hw
    x, w, b = cfg.x, cfg.w, cfg.b
    N, C, H, W = x.shape
    _, O_g, Kh, Kw = w.shape
    C_g = C // cfg.groups
    dtype = result_dtype(x, w) if b is None else result_dtype(x, w, b)
    y_pad = np.zeros((N, cfg.c_out, ho + 2 * ph, wo + 2 * pw), dtype=dtype)
    for n in range(N):
        for c in range(C):
            k = c // C_g  # the group of input map c
            for p in range(H):
                for q in range(W):
                    x_pq = x[n, c, p, q]
                    for o in range(O_g):
                        for u in range(Kh):
                            for v in range(Kw):
                                r, t = sh * p + dh * u, sw * q + dw * v
                                y_pad[n, k * O_g + o, r, t] += w[c, o, u, v] * x_pq
    y = y_pad[:, :, ph : ph + ho, pw : pw + wo].copy()
    if b is not None:
        for o in range(cfg.c_out):
            y[:, o] += b[o]
    return y


def conv_transpose2d_backward_loop(dy, x, w, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """The chain rule through [eq-tc-forward], one term at a time. Tiny inputs only.

    Each product ``w[c, o, u, v] · x[n, c, p, q]`` that the forward added to ``y_pad`` at
    ``(r, t) = (s_h p + d_h u, s_w q + d_w v)`` sends ``dy_pad[n, o, r, t]`` back to both factors:
    ``dx[n, c, p, q] += dy_pad · w[c, o, u, v]`` ([eq-tc-dx]) and ``dw[c, o, u, v] += dy_pad · x[n, c, p, q]``
    ([eq-tc-dw]). ``dy_pad`` is ``dy`` with P zeros on each side: the cropped rows feed nothing.
    ``db[o]`` adds up ``dy`` over n and every position ([eq-tc-db]).
    """
    cfg = _check(x, w, None, stride, padding, output_padding, dilation, groups)
    dy = _check_dy(dy, cfg)
    (sh, sw), (ph, pw), (dh, dw_) = cfg.stride, cfg.padding, cfg.dilation
    x, w = cfg.x, cfg.w
    N, C, H, W = x.shape
    _, O_g, Kh, Kw = w.shape
    C_g = C // cfg.groups
    dtype = result_dtype(dy, x, w)
    dy_pad = np.pad(dy, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dx = np.zeros(x.shape, dtype=dtype)
    dw = np.zeros(w.shape, dtype=dtype)
    db = np.zeros(cfg.c_out, dtype=dtype)
    for n in range(N):
        for c in range(C):
            k = c // C_g
            for p in range(H):
                for q in range(W):
                    for o in range(O_g):
                        for u in range(Kh):
                            for v in range(Kw):
                                g = dy_pad[n, k * O_g + o, sh * p + dh * u, sw * q + dw_ * v]
                                dx[n, c, p, q] += g * w[c, o, u, v]
                                dw[c, o, u, v] += g * x[n, c, p, q]
    for n in range(N):
        for o in range(cfg.c_out):
            for r in range(dy.shape[2]):
                for t in range(dy.shape[3]):
                    db[o] += dy[n, o, r, t]
    return dx, dw, db
