"""cnnref.data: the digits split, the minibatches of an epoch, one-hot targets."""

from __future__ import annotations

import numpy as np
import pytest

from cnnref.data import N_CLASSES, Digits, batch_indices, check_digits, load_digits, minibatches, one_hot

sklearn_datasets = pytest.importorskip("sklearn.datasets")


@pytest.fixture(scope="module")
def digits() -> Digits:
    return load_digits()


def test_shapes_dtypes_and_range(digits):
    n_test = int(np.ceil(0.2 * 1797))
    assert digits.x_train.shape == (1797 - n_test, 1, 8, 8)
    assert digits.x_test.shape == (n_test, 1, 8, 8)
    assert digits.y_train.shape == (1797 - n_test,) and digits.y_test.shape == (n_test,)
    assert digits.x_train.dtype == np.float64 and digits.x_test.dtype == np.float64
    assert np.issubdtype(digits.y_train.dtype, np.integer)
    for x in (digits.x_train, digits.x_test):
        assert x.min() == 0.0 and x.max() == 1.0
        assert x.flags.c_contiguous


def test_split_is_a_partition_of_the_scaled_images(digits):
    """Train and test together are exactly sklearn's images / 16 with their labels, each once."""
    bunch = sklearn_datasets.load_digits()
    ours = np.concatenate([digits.x_train, digits.x_test]).reshape(-1, 64)
    ours_y = np.concatenate([digits.y_train, digits.y_test])
    ref = bunch.images.reshape(-1, 64) / 16.0
    key = lambda a, y: np.lexsort(np.column_stack([a, y]).T)  # noqa: E731
    o, r = key(ours, ours_y), key(ref, bunch.target)
    np.testing.assert_array_equal(ours[o], ref[r])
    np.testing.assert_array_equal(ours_y[o], bunch.target[r])


def test_split_is_stratified(digits):
    """Every class is in the test split in proportion: within one image of 20 % of its count."""
    counts = np.bincount(np.concatenate([digits.y_train, digits.y_test]), minlength=N_CLASSES)
    test_counts = np.bincount(digits.y_test, minlength=N_CLASSES)
    assert np.all(np.abs(test_counts - 0.2 * counts) <= 1), (test_counts, counts)


def test_split_is_fixed_by_the_seed(digits):
    again = load_digits()
    for a, b in zip(digits, again):
        np.testing.assert_array_equal(a, b)
    other = load_digits(seed=1)
    assert not np.array_equal(other.y_test, digits.y_test)


def test_test_size(digits):
    d = load_digits(test_size=0.5)
    assert d.x_test.shape[0] == 899 and d.x_train.shape[0] == 898


@pytest.mark.parametrize("kw, exc, text", [
    (dict(test_size=0.0), ValueError, "test_size"),
    (dict(test_size=1.0), ValueError, "test_size"),
    (dict(test_size="0.2"), TypeError, "test_size"),
    (dict(test_size=True), TypeError, "test_size"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=1.5), TypeError, "seed"),
])
def test_load_digits_rejects_bad_arguments(kw, exc, text):
    with pytest.raises(exc, match=text):
        load_digits(**kw)


def test_batch_indices_cover_every_example_once_per_epoch():
    batches = batch_indices(103, 10, seed=3, epoch=2)
    assert [b.size for b in batches] == [10] * 10 + [3]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(103))


def test_batch_indices_are_the_seeded_permutation():
    """Documented recipe: np.random.default_rng([seed, epoch]).permutation(n), cut in order."""
    perm = np.random.default_rng([7, 4]).permutation(50)
    np.testing.assert_array_equal(np.concatenate(batch_indices(50, 8, seed=7, epoch=4)), perm)


def test_batch_indices_change_with_epoch_and_seed():
    a = np.concatenate(batch_indices(100, 32, seed=0, epoch=0))
    np.testing.assert_array_equal(a, np.concatenate(batch_indices(100, 32, seed=0, epoch=0)))
    assert not np.array_equal(a, np.concatenate(batch_indices(100, 32, seed=0, epoch=1)))
    assert not np.array_equal(a, np.concatenate(batch_indices(100, 32, seed=1, epoch=0)))


@pytest.mark.parametrize("kw, exc", [
    (dict(n=0, batch_size=4, seed=0, epoch=0), ValueError),
    (dict(n=10, batch_size=0, seed=0, epoch=0), ValueError),
    (dict(n=10, batch_size=4, seed=-1, epoch=0), ValueError),
    (dict(n=10, batch_size=4, seed=0, epoch=-1), ValueError),
    (dict(n=10, batch_size=4.0, seed=0, epoch=0), TypeError),
])
def test_batch_indices_rejects_bad_arguments(kw, exc):
    with pytest.raises(exc):
        batch_indices(**kw)


def test_minibatches_pair_images_with_their_labels():
    x = np.arange(20.0).reshape(20, 1, 1, 1)
    y = np.arange(20)
    seen = []
    for xb, yb in minibatches(x, y, 6, seed=0, epoch=0):
        np.testing.assert_array_equal(xb[:, 0, 0, 0], yb)
        seen.extend(yb)
    assert sorted(seen) == list(range(20))
    with pytest.raises(ValueError, match="same N"):
        next(minibatches(x, y[:5], 6, seed=0, epoch=0))


def test_one_hot_matches_rows_of_the_identity():
    y = np.array([3, 0, 9, 3])
    np.testing.assert_array_equal(one_hot(y), np.eye(10)[y])
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        one_hot(np.array([10]))
    with pytest.raises(TypeError, match="integer"):
        one_hot(np.array([1.0]))


def test_minibatches_checks_its_arguments_when_called():
    """Not lazily at the first batch: a generator function would accept anything until iterated."""
    x, y = np.zeros((10, 1, 8, 8)), np.zeros(10, int)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        minibatches(x, y, 0, seed=0, epoch=0)
    with pytest.raises(ValueError, match="same N"):
        minibatches(x, y[:5], 4, seed=0, epoch=0)
    with pytest.raises(TypeError, match="seed must be an int"):
        minibatches(x, y, 4, seed="0", epoch=0)
    assert [b[1].size for b in minibatches(x, y, 4, seed=0, epoch=0)] == [4, 4, 2]


@pytest.mark.parametrize("n_classes, exc, match", [
    (0, ValueError, "n_classes must be a positive int, got 0"),
    (10.0, TypeError, "n_classes must be an int"),
])
def test_one_hot_checks_n_classes(n_classes, exc, match):
    with pytest.raises(exc, match=match):
        one_hot(np.array([0]), n_classes)


def test_one_hot_rejects_labels_that_are_not_a_vector():
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\), got \(2, 1\)"):
        one_hot(np.array([[1], [2]]))
    with pytest.raises(TypeError, match="got dtype bool"):
        one_hot(np.array([True, False]))


def test_check_digits_accepts_a_split_and_converts_integer_images(digits):
    checked = check_digits(digits)
    assert isinstance(checked, Digits)
    assert all(a is b for a, b in zip(checked, digits))  # float images and labels: the same arrays
    as_tuple = check_digits((np.ones((3, 1, 8, 8), int), np.array([0, 1, 9]), np.zeros((1, 1, 8, 8)), np.array([2])))
    assert as_tuple.x_train.dtype == np.float64


@pytest.mark.parametrize("bad, exc, match", [
    ([1, 2, 3, 4], TypeError, "data must be a Digits tuple"),
    ((1, 2, 3), ValueError, "data must have 4 entries"),
    (lambda d: d._replace(x_test=d.x_test[:, 0]), ValueError, "x_test must be a 4-D array"),
    (lambda d: d._replace(x_test=d.x_test[:, :, :, :4]), ValueError, r"x_test must have shape \(N, 1, 8, 8\)"),
    (lambda d: d._replace(y_test=d.y_test[:-1]), ValueError, r"y_test must have shape \(N,\) = \(360,\), got \(359,\)"),
    (lambda d: d._replace(y_train=d.y_train - 1), ValueError, r"y_train must lie in \[0, 9\]"),
    (lambda d: d._replace(y_train=d.y_train.astype(float)), TypeError, "y_train must be an integer array"),
    (lambda d: d._replace(x_train=d.x_train[:0], y_train=d.y_train[:0]), ValueError, "with N >= 1"),
])
def test_check_digits_rejects_bad_splits(bad, exc, match, digits):
    with pytest.raises(exc, match=match):
        check_digits(bad(digits) if callable(bad) else bad)
