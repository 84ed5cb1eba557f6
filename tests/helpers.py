"""Shared test helpers: a strict closeness check, deterministic hypothesis settings and strategies."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Float64 results that differ from a reference only by the order of summation
# agree to a few ulps of the largest entry; 1e-12 of the array's max magnitude
# leaves room for sums of up to a few hundred terms and still fails on any
# real indexing error (which changes entries by O(1) of that magnitude).
RTOL64 = 1e-12
# float32 results compared with a float64 reference: ~1e-7 unit roundoff
# times sums of a few dozen terms.
RTOL32 = 1e-5

# Deterministic, quick property tests: the same examples on every run and
# every machine (derandomize), no example database on disk, no per-example
# deadline (the first call for each new shape includes jax's compilation).
HYPOTHESIS = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Property tests that call jax compile one XLA kernel per new shape (~0.1-0.2 s each): fewer examples.
HYPOTHESIS_JAX = settings(HYPOTHESIS, max_examples=40)


# What Binder and a standalone notebook must not pull in: the book's build and test toolchain.
TOOLCHAIN = ("jupyter-book", "sphinx", "pytest", "nbval", "playwright", "myst-nb", "jupytext", "hypothesis")


def max_abs(a) -> float:
    a = np.asarray(a)
    return float(np.max(np.abs(a), initial=0.0))


def assert_close(actual, expected, rtol: float = RTOL64, *, check_dtype: bool = False) -> None:
    """``max|actual − expected| <= rtol · max|expected|`` with identical shapes (no broadcasting).

    The scale is the reference's largest magnitude, so small entries are
    compared at the precision of the large ones (what summation error allows).
    An all-zero reference must be matched exactly.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}"
    if check_dtype:
        assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != expected {expected.dtype}"
    finite = np.isfinite(expected)
    assert np.array_equal(np.isfinite(actual), finite), "non-finite entries are in different places"
    assert np.array_equal(actual[~finite], expected[~finite], equal_nan=True), "non-finite entries differ"
    err = max_abs(np.where(finite, actual - expected, 0.0))
    scale = max_abs(np.where(finite, expected, 0.0))
    assert err <= rtol * scale, f"max abs error {err:.3e} > {rtol:.1e} x max|expected| {scale:.3e}"


# One example through one layer in the book's convention, for the tests of the sources' printed
# formulas (tests/test_sourceforms_*.py): (C_in, C_out, H, W, K_h, K_w), C_in = maps of layer l,
# C_out = maps of layer l+1; square and non-square images and kernels, one kernel width of 1.
LAYER_SHAPES = [
    (1, 1, 5, 5, 3, 3),
    (2, 3, 5, 6, 2, 3),
    (3, 2, 4, 4, 2, 2),
    (1, 2, 6, 5, 3, 1),
]


def assert_layer_gradients_match_central_differences(forward, backward, dz, x, w, b, eps, rtol, **settings):
    """``backward(dz, x, w)`` = (dx, dw, db) against central differences of E = <dz, forward(x, w, b)>.

    E is linear in each of x, w and b, so a central difference with a step ``eps`` of any size
    is exact up to rounding; ``rtol`` bounds the relative error of each of the three gradients.
    """
    from cnnref.gradcheck import numerical_gradient, relative_error

    def energy(x_, w_, b_):
        return float(np.sum(dz * forward(x_, w_, b_, **settings)))

    dx, dw, db = backward(dz, x, w, **settings)
    assert relative_error(dx, numerical_gradient(lambda t: energy(t, w, b), x, eps)) < rtol
    assert relative_error(dw, numerical_gradient(lambda t: energy(x, t, b), w, eps)) < rtol
    assert relative_error(db, numerical_gradient(lambda t: energy(x, w, t), b, eps)) < rtol


def stride_remainder(cfg) -> int:
    """Input rows the last window of a ``conv_configs`` draw leaves unread: (H + 2P − d(K−1) − 1) mod s."""
    (sh, _), (ph, _), (dh, _) = (as_pair(cfg[k]) for k in ("stride", "padding", "dilation"))
    return (cfg["x_shape"][2] + 2 * ph - dh * (cfg["w_shape"][2] - 1) - 1) % sh


def layer_problem(c_in, c_out, h, w, kh, kw, seed=0):
    """Random input maps a (C_in, H, W), kernels w_book (C_out, C_in, K_h, K_w) and deltas of the valid output."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((c_in, h, w))
    w_book = rng.standard_normal((c_out, c_in, kh, kw))
    delta = rng.standard_normal((c_out, h - kh + 1, w - kw + 1))
    return a, w_book, delta


def distinct_values(shape, rng) -> np.ndarray:
    """A random permutation of distinct, well-separated values (no ties anywhere), float64."""
    n = int(np.prod(shape))
    return (rng.permutation(n).astype(np.float64) - n / 2).reshape(shape) / 4.0


def conv_read_mask(h, w, kernel, stride, padding, dilation) -> np.ndarray:
    """Boolean (H, W): True where some output window of the conv reads input pixel (p, q).

    Enumerates p = s·i + d·u − P directly, independently of cnnref.
    """
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    rows = {sh * i + dh * u - ph for i in range(ho) for u in range(kh)}
    cols = {sw * j + dw * v - pw for j in range(wo) for v in range(kw)}
    mask = np.zeros((h, w), dtype=bool)
    for p in rows:
        for q in cols:
            if 0 <= p < h and 0 <= q < w:
                mask[p, q] = True
    return mask


def as_pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def int_or_pair(lo: int, hi: int):
    """An int in [lo, hi] or an (h, w) pair of such ints (both forms are part of the API)."""
    one = st.integers(lo, hi)
    return st.one_of(one, st.tuples(one, one))


@st.composite
def conv_configs(draw, max_n=2, max_c=3, max_k=3, max_extra=4):
    """Small conv problems: shapes, stride, padding, dilation (ints or pairs), always a non-empty output.

    H and W are drawn independently of each other from [span − 2P, span − 2P + max_extra]
    (at least 1), so every remainder (H + 2P − span) mod s occurs, including
    the ones where the stride does not divide it.
    """
    n = draw(st.integers(1, max_n))
    c_in = draw(st.integers(1, max_c))
    c_out = draw(st.integers(1, max_c))
    kh = draw(st.integers(1, max_k))
    kw = draw(st.integers(1, max_k))
    stride = draw(int_or_pair(1, 3))
    padding = draw(int_or_pair(0, 2))
    dilation = draw(int_or_pair(1, 2))
    (sh, sw), (ph, pw), (dh, dw) = as_pair(stride), as_pair(padding), as_pair(dilation)
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    h = draw(st.integers(max(1, span_h - 2 * ph), max(1, span_h - 2 * ph) + max_extra))
    w = draw(st.integers(max(1, span_w - 2 * pw), max(1, span_w - 2 * pw) + max_extra))
    return dict(x_shape=(n, c_in, h, w), w_shape=(c_out, c_in, kh, kw),
                stride=stride, padding=padding, dilation=dilation)


@st.composite
def pool_configs(draw, max_n=2, max_c=2, max_k=3, max_extra=4, overlapping=None):
    """Small pooling problems; ``overlapping=True`` forces stride < size on at least one axis."""
    n = draw(st.integers(1, max_n))
    c = draw(st.integers(1, max_c))
    size = draw(int_or_pair(1, max_k))
    kh, kw = as_pair(size)
    if overlapping:
        # stride < size on an axis needs size >= 2 there.
        if kh == 1 and kw == 1:
            kh = draw(st.integers(2, max_k))
            size = (kh, kw)
        sh = draw(st.integers(1, kh - 1)) if kh > 1 else draw(st.integers(1, 3))
        sw = draw(st.integers(1, max(1, kw - 1))) if kw > 1 else draw(st.integers(1, 3))
        stride = (sh, sw)
    else:
        stride = draw(st.one_of(st.none(), int_or_pair(1, 3)))
    h = draw(st.integers(kh, kh + max_extra))
    w = draw(st.integers(kw, kw + max_extra))
    return dict(x_shape=(n, c, h, w), size=size, stride=stride)
