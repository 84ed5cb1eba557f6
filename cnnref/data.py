"""The handwritten-digits data set and its minibatches (book: "Training a CNN on digits").

scikit-learn ships 1,797 greyscale digits of 8 × 8 pixels with integer
intensities 0..16 (no download needed). :func:`load_digits` scales them to
[0, 1], lays them out NCHW with one channel and splits them once, stratified
by class, with a fixed seed:

* ``x_train`` : (N_train, 1, 8, 8) float64 in [0, 1]
* ``y_train`` : (N_train,) int64 class labels 0..9
* ``x_test``  : (N_test, 1, 8, 8)
* ``y_test``  : (N_test,)

with ``N_test = ceil(test_size · 1797)``, ``N_train = 1797 − N_test``.

:func:`batch_indices` / :func:`minibatches` give the minibatches of one epoch:
a permutation of the training set drawn from ``np.random.default_rng([seed, epoch])``,
cut into consecutive slices of ``batch_size`` (the last one may be shorter).
The same ``(seed, epoch)`` always gives the same batches, which is what lets the
book train the same network twice, once with ``cnnref`` and once with jax, and
compare them step for step.

scikit-learn is an optional dependency (``pip install cnnref[data]``); it is
imported only when :func:`load_digits` is called.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

import numpy as np

from ._validate import as_int, as_labels, as_real_array

N_CLASSES = 10
IMAGE_SHAPE = (1, 8, 8)
PIXEL_MAX = 16.0  # sklearn's digits are 4-bit intensities 0..16


class Digits(NamedTuple):
    """A stratified train/test split of the digits, NCHW float64 images in [0, 1] and int labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def check_images(x, name: str = "x") -> np.ndarray:
    """Digit images (N, 1, 8, 8) with N >= 1, as a float array (integers become float64), or raise."""
    x = as_real_array(x, name, ndim=4)
    if x.shape[1:] != IMAGE_SHAPE or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape (N, {', '.join(map(str, IMAGE_SHAPE))}) with N >= 1, got {x.shape}")
    return x


def check_digits(data) -> Digits:
    """``data`` as :class:`Digits`, or raise: a 4-tuple ``(x_train, y_train, x_test, y_test)`` with
    images (N, 1, 8, 8) (N >= 1) and integer labels (N,) in [0, 9], the same N for images and labels.

    Integer images are converted to float64; float images and the labels are returned as they are.
    """
    if not isinstance(data, tuple):
        raise TypeError(f"data must be a Digits tuple (x_train, y_train, x_test, y_test), got {type(data).__name__}")
    if len(data) != 4:
        raise ValueError(f"data must have 4 entries (x_train, y_train, x_test, y_test), got {len(data)}")
    out = []
    for split, x, y in (("train", data[0], data[1]), ("test", data[2], data[3])):
        x = check_images(x, f"x_{split}")
        out += [x, as_labels(y, N_CLASSES, f"y_{split}", n=x.shape[0])]
    return Digits(*out)


def load_digits(test_size: float = 0.2, seed: int = 0) -> Digits:
    """The digits, scaled to [0, 1], split stratified into train and test (fixed by ``seed``).

    test_size: fraction in (0, 1) of the 1,797 images held out for testing.
    seed: int >= 0 for sklearn's ``train_test_split`` (the split is the same for the same seed).
    Returns :class:`Digits` ``(x_train, y_train, x_test, y_test)``, shapes in the module docstring.
    """
    if isinstance(test_size, (bool, np.bool_)) or not isinstance(test_size, (float, int, np.floating, np.integer)):
        raise TypeError(f"test_size must be a float in (0, 1), got {test_size!r} of type {type(test_size).__name__}")
    if not 0.0 < float(test_size) < 1.0:
        raise ValueError(f"test_size must lie strictly between 0 and 1, got {test_size!r}")
    seed = as_int(seed, "seed", "a non-negative int", minimum=0)
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "cnnref.data.load_digits needs scikit-learn (the data set ships with it); "
            "install it with `pip install 'cnnref[data]'` or `pip install scikit-learn`"
        ) from exc
    bunch = _sk_load_digits()
    x = (bunch.images.astype(np.float64) / PIXEL_MAX)[:, None, :, :]  # (1797, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=float(test_size), random_state=seed, stratify=y)
    return Digits(np.ascontiguousarray(x_tr), y_tr, np.ascontiguousarray(x_te), y_te)


def batch_indices(n: int, batch_size: int, *, seed: int, epoch: int) -> list[np.ndarray]:
    """Index arrays of the minibatches of one epoch.

    A permutation of ``range(n)`` from ``np.random.default_rng([seed, epoch])``, cut into
    ``ceil(n / batch_size)`` consecutive slices of ``batch_size`` (the last may be shorter).
    Every index appears exactly once per epoch.
    """
    n, batch_size = as_int(n, "n", minimum=1), as_int(batch_size, "batch_size", minimum=1)
    seed, epoch = as_int(seed, "seed", minimum=0), as_int(epoch, "epoch", minimum=0)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return [perm[i : i + batch_size] for i in range(0, n, batch_size)]


def minibatches(x, y, batch_size: int, *, seed: int, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """An iterator of ``(x[idx], y[idx])`` over the index arrays of :func:`batch_indices` (one epoch).

    x: (N, ...) array; y: (N,) array. Shapes of the batches: (B, ...) and (B,), B <= batch_size.
    The arguments are checked when it is called, not at the first batch.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim < 1 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x must be (N, ...) and y (N,) with the same N, got x {x.shape} and y {y.shape}")
    return ((x[idx], y[idx]) for idx in batch_indices(x.shape[0], batch_size, seed=seed, epoch=epoch))


def one_hot(labels, n_classes: int = N_CLASSES) -> np.ndarray:
    """Targets t (N, K) float64 with ``t[n, labels[n]] = 1`` and 0 elsewhere (for the ½-squared error).

    labels: integer array (N,) with values in [0, K); n_classes: K >= 1.
    """
    n_classes = as_int(n_classes, "n_classes", minimum=1)
    labels = as_labels(labels, n_classes)
    t = np.zeros((labels.shape[0], n_classes))
    t[np.arange(labels.shape[0]), labels] = 1.0
    return t
