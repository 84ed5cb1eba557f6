"""The book's independent oracle for the transposed convolution, from jax's primitives alone.

Nothing here imports ``cnnref``'s implementation (only :func:`cnnref.book.jaxref.pair` and
:func:`~cnnref.book.jaxref.to_numpy`). Three independent routes to the same layer, with PyTorch's
conventions (``torch.nn.functional.conv_transpose2d``): x (N, C_in, H, W), w (C_in, C_out/groups,
K_h, K_w), ``padding`` the padding of the convolution it transposes, ``output_padding`` extra rows and
columns at the end:

- :func:`conv_transpose2d`: a *fractionally strided* convolution, ``lax.conv_general_dilated`` with
  ``lhs_dilation = stride`` (s − 1 zeros between the input pixels), the kernel flipped and its two
  channel axes swapped, and ``d (K − 1) − P`` zeros before and ``d (K − 1) − P + output_padding``
  after (negative: a crop); ``feature_group_count = groups``.
- :func:`conv_transpose2d_lax`: ``lax.conv_transpose`` with ``transpose_kernel=True`` and
  ``use_consistent_padding=True`` (groups = 1 only; it has no group count).
- :func:`conv_transpose2d_as_vjp`: the definition the book derives, the input gradient of a
  (grouped) convolution with the same kernel, by ``jax.vjp`` of ``lax.conv_general_dilated``.

Gradients come from ``jax.vjp`` of :func:`conv_transpose2d` (:func:`conv_transpose2d_vjp`), never
from a hand-written backward pass. Importing it enables float64 in jax (via ``jaxref``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from .jaxref import pair, to_numpy

__all__ = [
    "output_shape",
    "conv_transpose2d",
    "conv_transpose2d_lax",
    "conv_transpose2d_as_vjp",
    "conv_transpose2d_vjp",
]


def _sizes(x_shape, w_shape, stride, padding, output_padding, dilation, groups):
    """PyTorch's output size, and its rule output_padding < max(stride, dilation)."""
    s, p, op, d = pair(stride), pair(padding), pair(output_padding), pair(dilation)
    if any(op[a] >= max(s[a], d[a]) for a in (0, 1)):
        raise ValueError(f"output_padding {op} must be smaller than max(stride, dilation) per axis")
    hw = tuple((x_shape[2 + a] - 1) * s[a] - 2 * p[a] + d[a] * (w_shape[2 + a] - 1) + op[a] + 1 for a in (0, 1))
    return (x_shape[0], w_shape[1] * groups) + hw


def output_shape(x_shape, w_shape, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """(N, C_out, H_out, W_out) with H_out = (H − 1) s − 2P + d (K − 1) + output_padding + 1."""
    return _sizes(x_shape, w_shape, stride, padding, output_padding, dilation, groups)


def _swap_kernel(w, groups):
    """PyTorch's (C_in, C_out/g, K_h, K_w) as the OIHW kernel (C_out, C_in/g, K_h, K_w) of a
    grouped convolution, per group its channel axes swapped (no flip)."""
    c_in, c_out_g, kh, kw = w.shape
    return (w.reshape(groups, c_in // groups, c_out_g, kh, kw)
            .transpose(0, 2, 1, 3, 4)
            .reshape(groups * c_out_g, c_in // groups, kh, kw))


def conv_transpose2d(
    x, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1
):
    """The transposed convolution by ``lax.conv_general_dilated``, input dilated."""
    _sizes(x.shape, w.shape, stride, padding, output_padding, dilation, groups)
    s, p, op, d = pair(stride), pair(padding), pair(output_padding), pair(dilation)
    k = _swap_kernel(w, groups)[:, :, ::-1, ::-1]  # rot180 of every kernel
    span = [d[a] * (w.shape[2 + a] - 1) for a in (0, 1)]  # d (K - 1)
    pads = [(span[a] - p[a], span[a] - p[a] + op[a]) for a in (0, 1)]
    y = lax.conv_general_dilated(
        x,
        k,
        window_strides=(1, 1),
        padding=pads,
        lhs_dilation=s,  # s - 1 zeros between the input pixels
        rhs_dilation=d,
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        feature_group_count=groups,
        precision=lax.Precision.HIGHEST,
    )
    return y if b is None else y + b[None, :, None, None]


def conv_transpose2d_lax(x, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1):
    """The same layer by ``lax.conv_transpose`` (PyTorch's padding convention; groups = 1)."""
    _sizes(x.shape, w.shape, stride, padding, output_padding, dilation, 1)
    p, op = pair(padding), pair(output_padding)
    y = lax.conv_transpose(
        x, w, pair(stride), [(p[0], p[0] - op[0]), (p[1], p[1] - op[1])], rhs_dilation=pair(dilation),
        dimension_numbers=("NCHW", "OIHW", "NCHW"), transpose_kernel=True, use_consistent_padding=True,
        precision=lax.Precision.HIGHEST,
    )
    return y if b is None else y + b[None, :, None, None]


def _conv(a, w, stride, padding, dilation, groups):
    """The convolution 𝒞 of the book. w (C_in, C_out/g, K_h, K_w) is its OIHW kernel as it stands:
    C_in output maps, each reading the C_out/g input maps of its group."""
    p = pair(padding)
    return lax.conv_general_dilated(
        a, w, window_strides=pair(stride), padding=[(p[0], p[0]), (p[1], p[1])], rhs_dilation=pair(dilation),
        dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=groups,
        precision=lax.Precision.HIGHEST,
    )


def conv_transpose2d_as_vjp(x, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """The layer by its definition: ``jax.vjp`` of the convolution 𝒞 (input (N, C_out, H_out, W_out),
    kernel w as OIHW, the same stride, padding, dilation and groups) applied to x, zero-padded at the
    end to 𝒞's output size when output_padding >= stride."""
    shape = _sizes(x.shape, w.shape, stride, padding, output_padding, dilation, groups)
    f = functools.partial(_conv, w=w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    out, vjp = jax.vjp(f, jnp.zeros(shape, dtype=jnp.result_type(x, w)))
    (h, wd), (hc, wc) = x.shape[2:], out.shape[2:]
    y = vjp(jnp.pad(x, ((0, 0), (0, 0), (0, hc - h), (0, wc - wd))))[0]
    return y if b is None else y + b[None, :, None, None]


@functools.partial(jax.jit, static_argnames=("stride", "padding", "output_padding", "dilation", "groups"))
def _vjp(x, w, b, dy, stride, padding, output_padding, dilation, groups):
    f = functools.partial(conv_transpose2d, stride=stride, padding=padding, output_padding=output_padding,
                          dilation=dilation, groups=groups)
    y, vjp = jax.vjp(f, x, w, b)
    return (y,) + vjp(dy)


def conv_transpose2d_vjp(x, w, b, dy, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """``(y, dx, dw, db)`` as numpy arrays: :func:`conv_transpose2d` and ``jax.vjp`` of it applied to dy."""
    return to_numpy(*_vjp(x, w, b, dy, pair(stride), pair(padding), pair(output_padding), pair(dilation),
                          int(groups)))
