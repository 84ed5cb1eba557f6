"""cnnref.matlab: convn / conv2 / flipall with MATLAB semantics, against hand-worked MATLAB examples.

MATLAB's conv is a true convolution: full[k] = Σ_j A[k − j] B[j]. 'same' is the block of
'full' starting at ⌊nb / 2⌋ (0-based) with A's size; 'valid' starts at nb − 1 and has
size max(na − nb + 1, 0) (empty when the kernel is longer). Every expected array below
was worked out by hand from these rules and is written literally.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from cnnref.matlab import conv2, convn, flipall
from helpers import assert_close

# --- 1-D ----------------------------------------------------------------------------------------

ONE_D = [
    # conv([1 2 3 4], [1 1], shape): even kernel
    ([1, 2, 3, 4], [1, 1], "full", [1, 3, 5, 7, 4]),
    ([1, 2, 3, 4], [1, 1], "same", [3, 5, 7, 4]),          # full[1:5]
    ([1, 2, 3, 4], [1, 1], "valid", [3, 5, 7]),
    # conv([1 2 3], [1 1 1], shape): odd kernel
    ([1, 2, 3], [1, 1, 1], "full", [1, 3, 6, 5, 3]),
    ([1, 2, 3], [1, 1, 1], "same", [3, 6, 5]),             # full[1:4]
    ([1, 2, 3], [1, 1, 1], "valid", [6]),
    # a non-symmetric kernel shows the flip: full[1] = A[1]·B[0] + A[0]·B[1] = 2 + 2
    ([1, 2, 3], [1, 2], "full", [1, 4, 7, 6]),
    ([1, 2, 3], [1, 2], "same", [4, 7, 6]),
    ([1, 2, 3], [1, 2], "valid", [4, 7]),
    # even kernel of length 4: full = [1 4 10 20 30 34 31 20] (Σ = 15 · 10 = 150)
    ([1, 2, 3, 4, 5], [1, 2, 3, 4], "full", [1, 4, 10, 20, 30, 34, 31, 20]),
    ([1, 2, 3, 4, 5], [1, 2, 3, 4], "same", [10, 20, 30, 34, 31]),   # full[2:7]
    ([1, 2, 3, 4, 5], [1, 2, 3, 4], "valid", [20, 30]),               # full[3:5]
    # kernel longer than the signal
    ([1, 2], [1, 1, 1], "full", [1, 3, 3, 2]),
    ([1, 2], [1, 1, 1], "same", [3, 3]),                   # full[1:3]
    ([1, 2], [1, 1, 1], "valid", []),                      # empty, not an error
]


@pytest.mark.parametrize("a, b, shape, expected", ONE_D)
def test_convn_1d_hand_worked(a, b, shape, expected):
    out = convn(np.array(a), np.array(b), shape)
    assert out.shape == (len(expected),)
    np.testing.assert_array_equal(out, np.array(expected, dtype=float))


def test_default_shape_is_full():
    np.testing.assert_array_equal(convn(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0])), [1.0, 4.0, 7.0, 6.0])
    np.testing.assert_array_equal(conv2(np.eye(2), np.ones((1, 1))), np.eye(2))


# --- 2-D ----------------------------------------------------------------------------------------

A3 = np.array([[1.0, 2.0, 3.0],
               [4.0, 5.0, 6.0],
               [7.0, 8.0, 9.0]])
B2 = np.array([[1.0, 2.0],
               [3.0, 4.0]])
# full = A at (0,0) + 2A at (0,1) + 3A at (1,0) + 4A at (1,1), e.g.
#   C[1,1] = A[1,1] + 2 A[1,0] + 3 A[0,1] + 4 A[0,0] = 5 + 8 + 6 + 4 = 23; total Σ = 45 · 10 = 450
FULL_A3_B2 = np.array([[1.0, 4.0, 7.0, 6.0],
                       [7.0, 23.0, 33.0, 24.0],
                       [19.0, 53.0, 63.0, 42.0],
                       [21.0, 52.0, 59.0, 36.0]])

A34 = np.array([[1.0, 2.0, 3.0, 4.0],
                [5.0, 6.0, 7.0, 8.0],
                [9.0, 10.0, 11.0, 12.0]])
B3 = np.array([[1.0, 0.0, 0.0],
               [0.0, 0.0, 0.0],
               [0.0, 0.0, 2.0]])
# full[k, l] = A[k, l] + 2 A[k − 2, l − 2]
FULL_A34_B3 = np.array([[1.0, 2.0, 3.0, 4.0, 0.0, 0.0],
                        [5.0, 6.0, 7.0, 8.0, 0.0, 0.0],
                        [9.0, 10.0, 13.0, 16.0, 6.0, 8.0],
                        [0.0, 0.0, 10.0, 12.0, 14.0, 16.0],
                        [0.0, 0.0, 18.0, 20.0, 22.0, 24.0]])

TWO_D = [
    # 2x2 kernel (even): 'same' starts at (1, 1)
    (A3, B2, "full", FULL_A3_B2),
    (A3, B2, "same", np.array([[23.0, 33.0, 24.0],
                               [53.0, 63.0, 42.0],
                               [52.0, 59.0, 36.0]])),
    (A3, B2, "valid", np.array([[23.0, 33.0],
                                [53.0, 63.0]])),
    # 3x3 kernel (odd) on a 3x4 image: 'same' starts at (1, 1), 'valid' at (2, 2) with size 1x2
    (A34, B3, "full", FULL_A34_B3),
    (A34, B3, "same", np.array([[6.0, 7.0, 8.0, 0.0],
                                [10.0, 13.0, 16.0, 6.0],
                                [0.0, 10.0, 12.0, 14.0]])),
    (A34, B3, "valid", np.array([[13.0, 16.0]])),
    # kernel larger than the image: B2 ⊛ B3-sized dense kernel; 'same' keeps a 2x2 block, 'valid' is empty
    (B2, A3, "full", FULL_A3_B2),                          # convolution commutes in 'full'
    (B2, A3, "same", np.array([[23.0, 33.0],
                               [53.0, 63.0]])),
    (B2, A3, "valid", np.zeros((0, 0))),
]


@pytest.mark.parametrize("a, b, shape, expected", TWO_D)
def test_conv2_and_convn_2d_hand_worked(a, b, shape, expected):
    for f in (conv2, convn):
        out = f(a, b, shape)
        assert out.shape == expected.shape
        np.testing.assert_array_equal(out, expected)


def test_valid_is_empty_along_each_axis_where_the_kernel_is_longer():
    out = conv2(np.ones((2, 5)), np.ones((3, 2)), "valid")
    assert out.shape == (0, 4)  # max(2 − 3 + 1, 0) × (5 − 2 + 1), as MATLAB's 0×4 empty


# --- 3-D ----------------------------------------------------------------------------------------

# A[:, :, 0] = [[1, 2], [3, 4]], A[:, :, 1] = [[5, 6], [7, 8]]
A222 = np.stack([np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[5.0, 6.0], [7.0, 8.0]])], axis=2)
# 2x2x2 kernel with B[0,0,0] = 1 and B[1,1,1] = 2: full[k] = A[k] + 2 A[k − (1,1,1)]
B222 = np.zeros((2, 2, 2))
B222[0, 0, 0], B222[1, 1, 1] = 1.0, 2.0
FULL_A222_B222 = np.stack([
    np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]),      # A[:, :, 0]
    np.array([[5.0, 6.0, 0.0], [7.0, 10.0, 4.0], [0.0, 6.0, 8.0]]),     # A[:, :, 1] + 2 A[:, :, 0] shifted
    np.array([[0.0, 0.0, 0.0], [0.0, 10.0, 12.0], [0.0, 14.0, 16.0]]),  # 2 A[:, :, 1] shifted
], axis=2)

# odd kernel along the third axis: B = [1 0 −1] as a 1x1x3 array; along that axis
# conv([a0 a1 a2], [1 0 −1]) = [a0, a1, a2 − a0, −a1, −a2]
A223 = np.array([[[1.0, 2.0, 4.0], [3.0, 5.0, 9.0]],
                 [[0.0, 1.0, 1.0], [2.0, 2.0, 7.0]]])
B113 = np.array([[[1.0, 0.0, -1.0]]])

THREE_D = [
    (A222, B222, "full", FULL_A222_B222),
    # 'same': start ⌊2/2⌋ = 1 on every axis, size 2x2x2 -> full[1:3, 1:3, 1:3]
    (A222, B222, "same", np.stack([np.array([[10.0, 4.0], [6.0, 8.0]]),
                                   np.array([[10.0, 12.0], [14.0, 16.0]])], axis=2)),
    # 'valid': A[1,1,1]·B[0,0,0] + A[0,0,0]·B[1,1,1] = 8 + 2 = 10
    (A222, B222, "valid", np.array([[[10.0]]])),
    (A223, B113, "full", np.array([[[1.0, 2.0, 3.0, -2.0, -4.0], [3.0, 5.0, 6.0, -5.0, -9.0]],
                                   [[0.0, 1.0, 1.0, -1.0, -1.0], [2.0, 2.0, 5.0, -2.0, -7.0]]])),
    (A223, B113, "same", np.array([[[2.0, 3.0, -2.0], [5.0, 6.0, -5.0]],          # [a1, a2 − a0, −a1]
                                   [[1.0, 1.0, -1.0], [2.0, 5.0, -2.0]]])),
    (A223, B113, "valid", np.array([[[3.0], [6.0]],                               # [a2 − a0]
                                    [[1.0], [5.0]]])),
]


@pytest.mark.parametrize("a, b, shape, expected", THREE_D)
def test_convn_3d_hand_worked(a, b, shape, expected):
    out = convn(a, b, shape)
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("a, b, shape, expected", THREE_D + TWO_D + [
    (np.array(a, float), np.array(b, float), s, np.array(e, float)) for a, b, s, e in ONE_D])
def test_hand_worked_examples_agree_with_scipy_full_and_slicing(a, b, shape, expected):
    # Cross-check of the literal arrays: scipy's full convolution sliced by MATLAB's rules.
    full = scipy.signal.convolve(a, b, mode="full", method="direct")
    if shape == "full":
        ref = full
    elif shape == "same":
        ref = full[tuple(slice(nb // 2, nb // 2 + na) for na, nb in zip(a.shape, b.shape))]
    else:
        ref = full[tuple(slice(nb - 1, nb - 1 + max(na - nb + 1, 0)) for na, nb in zip(a.shape, b.shape))]
    assert ref.shape == expected.shape
    assert_close(ref, expected, 1e-15)


def test_random_3d_against_scipy_with_matlab_slicing():
    rng = np.random.default_rng(0)
    for a_shape, b_shape in (((4, 5, 3), (2, 3, 2)), ((3, 3, 4), (3, 2, 3)), ((2, 4, 2), (3, 3, 3))):
        a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
        full = scipy.signal.convolve(a, b, mode="full", method="direct")
        assert_close(convn(a, b, "full"), full)
        starts = [nb // 2 for nb in b_shape]
        assert_close(convn(a, b, "same"), full[tuple(slice(s, s + n) for s, n in zip(starts, a_shape))])
        valid_shape = tuple(max(na - nb + 1, 0) for na, nb in zip(a_shape, b_shape))
        valid = convn(a, b, "valid")
        assert valid.shape == valid_shape
        if 0 not in valid_shape:
            assert_close(valid, scipy.signal.convolve(a, b, mode="valid", method="direct"))


# --- MATLAB 'same' versus scipy 'same' ----------------------------------------------------------


def test_matlab_same_differs_from_scipy_same_for_even_kernels():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([1.0, 1.0])
    matlab = convn(a, b, "same")
    scipy_same = scipy.signal.convolve(a, b, mode="same")
    np.testing.assert_array_equal(matlab, [3.0, 5.0, 7.0, 4.0])      # full[1:5]
    np.testing.assert_array_equal(scipy_same, [1.0, 3.0, 5.0, 7.0])  # full[0:4]: starts at ⌊(nb − 1)/2⌋
    assert not np.array_equal(matlab, scipy_same)
    # 2-D, even kernel: MATLAB starts at (1, 1), scipy at (0, 0)
    np.testing.assert_array_equal(conv2(A3, B2, "same"), FULL_A3_B2[1:4, 1:4])
    np.testing.assert_array_equal(scipy.signal.convolve2d(A3, B2, "same"), FULL_A3_B2[0:3, 0:3])
    assert not np.array_equal(conv2(A3, B2, "same"), scipy.signal.convolve2d(A3, B2, "same"))


def test_matlab_same_equals_scipy_same_for_odd_kernels():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 6)), rng.standard_normal((3, 5))
    assert_close(conv2(a, b, "same"), scipy.signal.convolve2d(a, b, "same"))


# --- trailing singleton axes, flipall -----------------------------------------------------------


def test_convn_with_2d_kernel_on_a_stack_treats_it_as_hxwx1():
    rng = np.random.default_rng(2)
    stack = rng.standard_normal((5, 4, 3))   # H × W × N, MATLAB's image stack
    k = rng.standard_normal((2, 3))
    for shape in ("full", "same", "valid"):
        out = convn(stack, k, shape)
        # slice by slice it is conv2, and the third axis is neither widened nor shrunk
        expected = np.stack([conv2(stack[:, :, i], k, shape) for i in range(3)], axis=2)
        assert out.shape == expected.shape
        assert out.shape[2] == 3
        assert_close(out, expected)
        # the same as passing the kernel explicitly as H × W × 1
        np.testing.assert_array_equal(out, convn(stack, k[:, :, None], shape))


def test_flipall_hand_worked():
    a = np.array([[1.0, 2.0, 3.0],
                  [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(flipall(a), [[6.0, 5.0, 4.0], [3.0, 2.0, 1.0]])
    np.testing.assert_array_equal(flipall(np.array([1.0, 2.0, 3.0])), [3.0, 2.0, 1.0])
    np.testing.assert_array_equal(flipall(A222), A222[::-1, ::-1, ::-1])
    assert flipall(A222)[0, 0, 0] == 8.0 and flipall(A222)[1, 1, 1] == 1.0
    np.testing.assert_array_equal(flipall(flipall(A223)), A223)


def test_convn_is_correlation_with_flipall_kernel():
    # The usual MATLAB idiom: a correlation is convn(A, flipall(B), 'valid').
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((5, 4, 3)), rng.standard_normal((2, 3, 2))
    assert_close(convn(a, flipall(b), "valid"), scipy.signal.correlate(a, b, mode="valid"))
    assert_close(conv2(a[:, :, 0], flipall(b[:, :, 0]), "valid"),
                 scipy.signal.correlate2d(a[:, :, 0], b[:, :, 0], "valid"))


def test_dtypes():
    a, b = np.arange(6).reshape(2, 3), np.array([[1, -1]])
    assert convn(a, b).dtype == np.float64
    np.testing.assert_array_equal(conv2(a, b, "valid"), [[1.0, 1.0], [1.0, 1.0]])  # a[k] − a[k − 1]
    a32 = np.random.default_rng(4).standard_normal((4, 4)).astype(np.float32)
    for shape in ("full", "same", "valid"):
        assert convn(a32, np.ones((2, 2), np.float32), shape).dtype == np.float32
        assert convn(a32, np.ones((2, 2)), shape).dtype == np.float64
    assert flipall(a).dtype == np.float64
