"""cnnref.sizes.output_size ([eq-output-size]) against hand-worked values, a brute-force window count and jax."""

from __future__ import annotations

import itertools

import pytest

from cnnref.book import jaxref as jr
from cnnref import output_size


@pytest.mark.parametrize(
    "args, expected",
    [
        # (n, kernel, stride, padding, dilation) -> floor((n + 2P - d(K-1) - 1) / s) + 1
        ((5, 3), 3),            # (5 - 3) / 1 + 1
        ((28, 5), 24),          # LeNet's first layer
        ((5, 3, 1, 1), 5),      # "same" padding for an odd kernel
        ((7, 3, 2), 3),         # stride divides 7 - 3 = 4
        ((8, 3, 2), 3),         # 8 - 3 = 5 is odd: floor(5/2) + 1 = 3, the last row is never read
        ((6, 2, 3), 2),         # (6 - 2) / 3 = 1.33 -> 1, + 1
        ((7, 3, 1, 0, 2), 3),   # dilated span 5: 7 - 5 + 1
        ((7, 3, 2, 1, 2), 3),   # (7 + 2 - 5) / 2 + 1
        ((1, 1), 1),
        ((1, 3, 1, 1), 1),      # kernel 3 fits the padded length 3 exactly
        ((4, 4, 5), 1),         # stride larger than the room left
    ],
)
def test_hand_worked_values(args, expected):
    assert output_size(*args) == expected


def _count_windows(n, k, s, p, d):
    """Brute force: the number of start positions i·s with the dilated window inside the padded input."""
    span = d * (k - 1) + 1
    return sum(1 for start in range(0, n + 2 * p) if start % s == 0 and start + span <= n + 2 * p)


GRID = [
    (n, k, s, p, d)
    for n, k, s, p, d in itertools.product(range(1, 10), range(1, 5), range(1, 5), range(0, 3), range(1, 4))
    if d * (k - 1) + 1 <= n + 2 * p
]


def test_matches_brute_force_count_on_a_grid():
    # Every combination on the grid, including the non-divisible remainders.
    assert len(GRID) > 1000
    for n, k, s, p, d in GRID:
        assert output_size(n, k, s, p, d) == _count_windows(n, k, s, p, d), (n, k, s, p, d)


def test_remainder_is_dropped_not_rounded_up():
    # 9 + 0 - 3 = 6 is not divisible by 4: ceil would give 3 windows, the formula gives 2.
    assert output_size(9, 3, 4) == 2
    assert (9 - 3) % 4 != 0


@pytest.mark.parametrize("n, k, s, p, d", GRID[::7])
def test_matches_jax_conv_output_shape(n, k, s, p, d):
    # jax.eval_shape is abstract: no compilation, so a large sample of the grid is cheap.
    # Use non-square problems: the second axis gets a different n and kernel.
    n2, k2 = n + 2, max(1, k - 1)
    shape = jr.conv2d_output_shape((1, 1, n, n2), (1, 1, k, k2), stride=s, padding=p, dilation=d)
    assert shape == (1, 1, output_size(n, k, s, p, d), output_size(n2, k2, s, p, d))


def test_numpy_integers_are_accepted():
    import numpy as np

    assert output_size(np.int64(8), np.int32(3), np.int16(2), np.uint8(1), np.int64(1)) == 4
