"""cnnref.teaching.bug_gallery: every injected bug is caught by the check the book says catches it, and
slips through the weaker check the book says misses it.

The checks are the book's ("Checking gradients"): comparison with ``jax.vjp``/``jax.grad``
(cnnref/book/jaxref.py), central differences (cnnref.gradcheck.numerical_gradient), the adjoint
test (cnnref.gradcheck.adjoint_test) and, for max pooling, the sum rule: shifting every entry of
a window by t shifts its maximum by t, so Σ dx = Σ dy for any correct max-pool gradient.
"Caught" means a relative error above 1e-2 (an O(1) discrepancy); "missed" means agreement to
1e-12 (float64 rounding level), i.e. the weak check truly cannot tell the bug from the truth.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnref.book import jaxref as jr
from cnnref import (
    avgpool2d_backward,
    conv2d_backward,
    conv2d_forward,
    half_squared_error,
    half_squared_error_grad,
    maxpool2d_backward,
    maxpool2d_forward,
)
from cnnref.teaching import bug_gallery as bugs
from cnnref.gradcheck import adjoint_test, numerical_gradient, relative_error
from cnnref.transposed import remainder_rows
from helpers import assert_close, distinct_values

jax, jnp = jr.jax, jr.jnp

CAUGHT, MISSED = 1e-2, 1e-12
# The adjoint test scores |<u, Jv> - <Jᵀu, v>| against the Cauchy-Schwarz bound |u| |Jv|, so a
# wrong transpose scores about 1/sqrt(size) (~1e-3 here), not O(1); a correct one scores ~1e-16.
ADJOINT_CAUGHT = 1e-6
CONV_BUGS = [bugs.backward_no_flip, bugs.backward_wrong_flip_axes, bugs.backward_assign_not_accumulate,
             bugs.backward_dropped_remainder]
# The chapter's "generic" problem: several channels, a non-symmetric kernel, stride 2 with
# overlapping windows (K = 3 > s), padding 1, and a stride remainder on both axes:
# (8 + 2 - 3) mod 2 = 1 and (9 + 2 - 2) mod 2 = 1.
GENERIC = dict(x_shape=(2, 3, 8, 9), w_shape=(4, 3, 3, 2), settings=dict(stride=2, padding=1, dilation=1))


def _conv_problem(x_shape, w_shape, settings, seed=0, w=None):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape) if w is None else w
    dz = rng.standard_normal(conv2d_forward(x, w, **settings).shape)
    return x, w, dz


def _jax_error(bug, x, w, dz, settings):
    """Relative error of the bug's dx against jax.vjp; inf when the shapes differ."""
    _, dx_ref, dw_ref, db_ref = jr.conv2d_vjp(x, w, np.zeros(w.shape[0]), dz, **settings)
    dx, dw, db = bug(dz, x, w, **settings)
    assert_close(dw, dw_ref)  # the gallery's conv bugs are in dx only
    assert_close(db, db_ref)
    return relative_error(dx, dx_ref) if dx.shape == dx_ref.shape else np.inf


def test_the_generic_problem_has_remainders_and_overlaps():
    s = GENERIC["settings"]
    (_, _, h, w), (_, _, kh, kw) = GENERIC["x_shape"], GENERIC["w_shape"]
    assert remainder_rows(h, kh, s["stride"], s["padding"]) == 1
    assert remainder_rows(w, kw, s["stride"], s["padding"]) == 1
    assert kh > s["stride"]  # overlapping windows along H


@pytest.mark.parametrize("bug", CONV_BUGS, ids=lambda f: f.__name__)
def test_every_conv_bug_is_caught_by_jax_on_the_generic_problem(bug):
    x, w, dz = _conv_problem(**GENERIC)
    assert _jax_error(bug, x, w, dz, GENERIC["settings"]) > CAUGHT


@pytest.mark.parametrize("bug", CONV_BUGS, ids=lambda f: f.__name__)
def test_every_conv_bug_is_caught_by_central_differences(bug):
    # E(x) = Σ dz ⊙ conv(x) is linear in x: central differences are exact for any ε (here 1).
    x, w, dz = _conv_problem(x_shape=(1, 2, 8, 9), w_shape=(2, 2, 3, 2), settings=GENERIC["settings"], seed=1)
    s = GENERIC["settings"]
    num = numerical_gradient(lambda t: float(np.sum(dz * conv2d_forward(t, w, **s))), x, 1.0)
    assert relative_error(conv2d_backward(dz, x, w, **s)[0], num) < 1e-12  # the check itself works
    dx = bug(dz, x, w, **s)[0]
    assert dx.shape != num.shape or relative_error(dx, num) > CAUGHT


@pytest.mark.parametrize("bug", CONV_BUGS, ids=lambda f: f.__name__)
def test_every_conv_bug_is_caught_by_the_adjoint_test(bug):
    x, w, _ = _conv_problem(**GENERIC)
    s = GENERIC["settings"]
    out = conv2d_forward(x, w, **s).shape

    def forward(v):
        return conv2d_forward(v, w, **s)

    assert adjoint_test(forward, lambda u: conv2d_backward(u, x, w, **s)[0], x.shape, out) < 1e-13
    if bug is bugs.backward_dropped_remainder:
        with pytest.raises(ValueError, match="transpose returned shape"):
            adjoint_test(forward, lambda u: bug(u, x, w, **s)[0], x.shape, out)
    else:
        assert adjoint_test(forward, lambda u: bug(u, x, w, **s)[0], x.shape, out) > ADJOINT_CAUGHT


# --- the weak checks that miss each bug -----------------------------------------------------------


def test_no_flip_is_missed_with_a_rot180_symmetric_kernel():
    k = np.array([[1.0, 2.0, 1.0], [0.5, 3.0, 0.5], [1.0, 2.0, 1.0]])  # k == rot180(k)
    w = np.stack([np.stack([k, 2 * k]), np.stack([-k, k])])  # (2, 2, 3, 3), every kernel symmetric
    x, w, dz = _conv_problem((2, 2, 7, 7), w.shape, dict(stride=1), seed=2, w=w)
    assert _jax_error(bugs.backward_no_flip, x, w, dz, dict(stride=1)) < MISSED
    x, w, dz = _conv_problem((2, 2, 7, 7), w.shape, dict(stride=1), seed=2)  # a generic kernel
    assert _jax_error(bugs.backward_no_flip, x, w, dz, dict(stride=1)) > CAUGHT


def test_wrong_flip_axes_is_missed_with_one_channel_in_and_out():
    s = dict(stride=2, padding=1)
    x, w, dz = _conv_problem((2, 1, 8, 9), (1, 1, 3, 2), s, seed=3)
    assert _jax_error(bugs.backward_wrong_flip_axes, x, w, dz, s) < MISSED
    for shapes in (((2, 2, 8, 9), (1, 2, 3, 2)), ((2, 1, 8, 9), (2, 1, 3, 2))):  # 2 in, or 2 out
        x, w, dz = _conv_problem(*shapes, s, seed=3)
        assert _jax_error(bugs.backward_wrong_flip_axes, x, w, dz, s) > CAUGHT


@pytest.mark.parametrize("x_shape, w_shape, settings", [
    ((2, 3, 8, 9), (4, 3, 1, 1), dict(stride=1, padding=1)),             # 1×1 kernel: one tap per pixel
    ((2, 3, 9, 8), (4, 3, 3, 2), dict(stride=(3, 2), padding=1)),        # s = K: windows tile the input
    ((2, 3, 9, 9), (4, 3, 2, 2), dict(stride=3, padding=0)),             # s > K: gaps between windows
    ((2, 3, 9, 9), (4, 3, 2, 2), dict(stride=3, dilation=2)),            # d < s: taps interleave, never collide
])
def test_assign_not_accumulate_is_missed_when_no_two_taps_share_a_pixel(x_shape, w_shape, settings):
    x, w, dz = _conv_problem(x_shape, w_shape, settings, seed=4)
    assert _jax_error(bugs.backward_assign_not_accumulate, x, w, dz, settings) < MISSED


def test_assign_not_accumulate_is_caught_at_stride_1_with_a_kernel_larger_than_1():
    # The question the book asks: does a stride-1 test miss `=` vs `+=`? No: at s = 1 every
    # kernel wider than 1 makes neighbouring windows overlap, which is exactly where `=` loses terms.
    x, w, dz = _conv_problem((2, 3, 8, 9), (4, 3, 2, 2), dict(stride=1), seed=5)
    assert _jax_error(bugs.backward_assign_not_accumulate, x, w, dz, dict(stride=1)) > CAUGHT


@pytest.mark.parametrize("x_shape, w_shape, settings", [
    ((2, 3, 8, 9), (4, 3, 3, 2), dict(stride=1, padding=2, dilation=2)),  # s = 1: never a remainder
    ((2, 3, 9, 8), (4, 3, 3, 2), dict(stride=2, padding=1)),              # (9+2-3) and (8+2-2) even
    ((2, 3, 7, 10), (4, 3, 3, 3), dict(stride=3, padding=1)),             # (7+2-3) and (10+2-3) divisible by 3
])
def test_dropped_remainder_is_missed_when_the_stride_divides(x_shape, w_shape, settings):
    x, w, dz = _conv_problem(x_shape, w_shape, settings, seed=6)
    assert _jax_error(bugs.backward_dropped_remainder, x, w, dz, settings) < MISSED


def test_dropped_remainder_shows_as_a_shape_error():
    x, w, dz = _conv_problem(**GENERIC)
    dx = bugs.backward_dropped_remainder(dz, x, w, **GENERIC["settings"])[0]
    assert dx.shape == (2, 3, 7, 8)  # one row and one column short of x's (2, 3, 8, 9)


# --- pooling and loss bugs --------------------------------------------------------------------------


def test_avgpool_dropped_mean_is_a_constant_factor_that_a_direction_check_misses():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 7, 8))
    for size, stride in ((2, None), (3, 2), ((2, 3), 1)):
        dy = rng.standard_normal(maxpool2d_forward(x, size, stride).shape)
        _, dx_ref = jr.avgpool2d_vjp(x, dy, size, stride)
        bad = bugs.avgpool_backward_dropped_mean(dy, x, size, stride)
        k = np.prod(size if isinstance(size, tuple) else (size, size))
        assert relative_error(bad, dx_ref) > CAUGHT
        assert_close(bad, k * dx_ref)
        cosine = np.vdot(bad, dx_ref) / (np.linalg.norm(bad) * np.linalg.norm(dx_ref))
        assert abs(cosine - 1.0) < MISSED  # same direction: a direction-only check misses it


def test_avgpool_dropped_mean_is_plain_upscale_of_source_002():
    # [S002-E07] "upscale" read as nearest-neighbour replication (np.kron with ones) is exactly
    # this bug for non-overlapping windows that tile the input: K_h K_w times the true gradient.
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 2, 6, 6))
    dy = rng.standard_normal((1, 2, 3, 3))
    replicated = np.kron(dy, np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(bugs.avgpool_backward_dropped_mean(dy, x, 2), replicated)
    _, dx_ref = jr.avgpool2d_vjp(x, dy, 2)
    assert_close(replicated / 4, dx_ref)
    assert relative_error(replicated, dx_ref) > CAUGHT
    assert_close(avgpool2d_backward(dy, x, 2), dx_ref)


def test_loss_dropped_mean_is_caught_by_jax_grad_and_missed_with_a_batch_of_one():
    rng = np.random.default_rng(9)
    for n, caught in ((4, True), (1, False)):
        o, t = rng.standard_normal((n, 5)), rng.standard_normal((n, 5))
        ref = np.asarray(jax.grad(lambda a: jr.half_squared_error(a, t, "mean"))(o))
        assert_close(half_squared_error_grad(o, t, reduction="mean"), ref)
        bad = bugs.half_squared_error_grad_dropped_mean(o, t)
        assert_close(bad, n * ref)
        assert (relative_error(bad, ref) > CAUGHT) if caught else (relative_error(bad, ref) < MISSED)
        # central differences catch it too (E is quadratic in each entry: exact for any ε)
        num = numerical_gradient(lambda a: half_squared_error(a, t, "mean"), o, 1.0)
        assert (relative_error(bad, num) > CAUGHT) if caught else (relative_error(bad, num) < MISSED)


def test_double_counted_ties_are_missed_by_random_inputs():
    rng = np.random.default_rng(10)
    x = distinct_values((2, 3, 7, 8), rng)  # no ties anywhere (as for continuous random data)
    for size, stride in ((2, None), (3, 2), (2, 1)):
        dy = rng.standard_normal(maxpool2d_forward(x, size, stride).shape)
        _, dx_ref = jr.maxpool2d_vjp(x, dy, size, stride)
        assert relative_error(bugs.maxpool_backward_double_counted_ties(dy, x, size, stride), dx_ref) < MISSED


def test_double_counted_ties_are_caught_by_jax_and_by_the_sum_rule_on_tied_inputs():
    rng = np.random.default_rng(11)
    x = rng.integers(0, 3, (2, 3, 6, 8)).astype(float)  # small integers: ties in most windows
    for size, stride in ((2, None), (3, 2)):
        dy = rng.standard_normal(maxpool2d_forward(x, size, stride).shape)
        _, dx_ref = jr.maxpool2d_vjp(x, dy, size, stride)  # reduce_window: first maximum gets all
        good = maxpool2d_backward(dy, x, size, stride)
        bad = bugs.maxpool_backward_double_counted_ties(dy, x, size, stride)
        assert_close(good, dx_ref)
        assert relative_error(bad, dx_ref) > CAUGHT
        # sum rule per example and channel: Σ dx = Σ dy for the correct gradient, not for the bug
        assert_close(good.sum(axis=(2, 3)), dy.sum(axis=(2, 3)))
        assert relative_error(bad.sum(axis=(2, 3)), dy.sum(axis=(2, 3))) > CAUGHT


def test_double_counted_ties_hand_worked():
    x = np.array([[[[1.0, 3.0, 3.0, 0.0],
                    [2.0, 3.0, 1.0, 1.0],
                    [0.0, 0.0, 5.0, 5.0],
                    [0.0, 0.0, 5.0, 5.0]]]])
    dy = np.array([[[[1.0, 10.0], [100.0, 1000.0]]]])
    expected = np.array([[[[0.0, 1.0, 10.0, 0.0],
                           [0.0, 1.0, 0.0, 0.0],
                           [100.0, 100.0, 1000.0, 1000.0],
                           [100.0, 100.0, 1000.0, 1000.0]]]])
    np.testing.assert_array_equal(bugs.maxpool_backward_double_counted_ties(dy, x, 2), expected)


def test_gallery_functions_validate_their_input():
    x, w, dz = _conv_problem(**GENERIC)
    for bug in CONV_BUGS:
        with pytest.raises(ValueError, match="dz must have shape"):
            bug(dz[:, :, :-1], x, w, **GENERIC["settings"])
        with pytest.raises(ValueError, match="channel mismatch"):
            bug(dz, x[:, :2], w, **GENERIC["settings"])
    with pytest.raises(ValueError, match="dy must have shape"):
        bugs.maxpool_backward_double_counted_ties(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 6, 6)), 2)
    with pytest.raises(ValueError, match="dy must have shape"):
        bugs.avgpool_backward_dropped_mean(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 6, 6)), 2)
    with pytest.raises(ValueError, match="o and t must have the same shape"):
        bugs.half_squared_error_grad_dropped_mean(np.zeros((2, 3)), np.zeros((2, 4)))
