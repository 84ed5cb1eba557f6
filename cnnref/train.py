"""Train the digits CNN with cnnref's hand-derived gradients (book: "Training a CNN on digits").

Command line (``python -m cnnref.train``, or the console script ``cnnref-train``)::

    cnnref-train [--epochs 20] [--batch-size 32] [--lr LR] [--momentum MU]
                 [--schedule cosine|constant] [--seed 0] [--loss ce|sse] [--no-progress]
                 [--save PARAMS.npz] [--load PARAMS.npz] [--history FILE.json|FILE.csv]
                 [--plot CURVES.png] [--version]

prints a tqdm progress bar (to stderr) and ends with the line
``test accuracy: 0.9778 (train time 3.0 s, CPU 3.0 s)`` (the accuracy of the defaults; the
times vary). Set ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1`` in the environment to time it
on one core.

The learning rate follows the cosine schedule of :func:`cnnref.optim.cosine_lr`
(one value per epoch) unless ``--schedule constant``. ``--lr`` and ``--momentum``
default per loss (:data:`LOSS_DEFAULTS`, the same table as :func:`train` uses): 0.05 and
0.9 for ``ce``; 2.0 and 0 for ``sse`` (the sigmoid network's gradients are small, and
momentum makes it diverge).

Files:

* ``--save PATH`` (.npz) writes the trained parameters (the arrays of
  keys of :func:`cnnref.network.param_names` and a string ``loss``).
* ``--load PATH`` (.npz) starts from such parameters instead of the seeded initialisation
  (their shapes are checked; ``loss``, if present, must equal ``--loss``). With
  ``--epochs 0`` it only evaluates them: ``test accuracy: 0.9778 (evaluated, no training)``.
* ``--history PATH`` writes, per epoch, ``epoch, train_loss, train_acc, test_loss,
  test_acc`` (see :class:`TrainResult`): a JSON object of lists for ``.json``, one CSV row per
  epoch for ``.csv``.
* ``--plot PATH`` (.png) draws the learning curves; needs matplotlib (the ``plot`` extra).

The suffixes are checked when the options are parsed. Exit status: 0 on success; 2 for a bad
option (with a message naming it), including a ``--load`` file that does not hold valid
parameters; 1 when the loss diverges, scikit-learn (``data`` extra) or matplotlib is missing,
or an output file cannot be written, each with one ``error:`` line on stderr. A run that ends
near chance (test accuracy below :data:`NEAR_CHANCE`) prints a ``warning:`` line on stderr.

From Python, :func:`train` returns the trained parameters, the per-epoch
history and the test accuracy; the book calls it with ``progress=False``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import __version__, network
from ._validate import as_int, check_mode
from .data import IMAGE_SHAPE, N_CLASSES, Digits, batch_indices, check_digits, load_digits
from .optim import SGD, cosine_lr

# Learning rate and momentum per loss, used by train() and by the command line when none is given.
# ce: ReLU network with momentum; sse: the sigmoid / ½-squared-error network of the sources.
LOSS_DEFAULTS = {"ce": dict(lr=0.05, momentum=0.9), "sse": dict(lr=2.0, momentum=0.0)}
# The defaults reach >= 97 % test accuracy on the fixed split (tests/test_train.py checks it).
DEFAULTS = dict(epochs=20, batch_size=32, **LOSS_DEFAULTS["ce"], schedule="cosine", seed=0, loss="ce")
SSE_DEFAULTS = LOSS_DEFAULTS["sse"]
SCHEDULES = ("cosine", "constant")
# Per-epoch entries of TrainResult.history, in the order of the --history columns (after "epoch").
EPOCH_KEYS = ("train_loss", "train_acc", "test_loss", "test_acc")
# A run whose test accuracy ends below twice the chance level (1/10) has not learned.
NEAR_CHANCE = 2 / N_CLASSES


class TrainResult(NamedTuple):
    """What :func:`train` returns.

    params: the trained parameters (dict, shapes as :func:`cnnref.network.param_shapes`).
    history: dict of lists, one entry per epoch (keys ``train_loss``, ``train_acc``,
    ``test_loss``, ``test_acc``) plus ``step_loss``, the loss of every minibatch.
    test_accuracy: accuracy on the test split after the last epoch.
    train_time: wall-clock seconds of the training loop (including the per-epoch evaluation).
    cpu_time: CPU seconds of this process over the same loop (= train_time on an idle core
    with one thread; smaller than train_time when other processes compete for the core).
    """

    params: dict
    history: dict
    test_accuracy: float
    train_time: float
    cpu_time: float


def _rates(loss: str, lr=None, momentum=None) -> tuple[float, float]:
    """``(lr, momentum)``: the given values, or where one is None, :data:`LOSS_DEFAULTS` of ``loss``."""
    check_mode(loss, network.LOSSES, "loss")
    defaults = LOSS_DEFAULTS[loss]
    return (defaults["lr"] if lr is None else lr), (defaults["momentum"] if momentum is None else momentum)


def train(*, epochs: int = DEFAULTS["epochs"], batch_size: int = DEFAULTS["batch_size"], lr: float | None = None,
          momentum: float | None = None, schedule: str = DEFAULTS["schedule"], seed: int = DEFAULTS["seed"],
          loss: str = DEFAULTS["loss"], channels=(16, 32), params: dict | None = None, data: Digits | None = None,
          progress: bool = False) -> TrainResult:
    """Minibatch SGD on the digits with the network of :mod:`cnnref.network` and :class:`cnnref.optim.SGD`.

    epochs, batch_size: ints >= 1; seed: int >= 0; loss: ``"ce"`` or ``"sse"``; schedule:
    ``"cosine"`` or ``"constant"``. ``lr`` (> 0) and ``momentum`` (in [0, 1)) default to
    :data:`LOSS_DEFAULTS` of ``loss`` when None. ``seed`` fixes the initial parameters
    (:func:`cnnref.network.init_params` of the (1, 8, 8) images with ``channels`` = (C_1, …, C_S)) and the minibatches
    (:func:`cnnref.data.batch_indices` with ``epoch`` = 0, 1, ...). ``params``, if given, are
    the initial parameters instead (shapes :func:`cnnref.network.param_shapes` of ``channels``;
    not modified); the optimizer starts afresh (zero velocity). The rate of epoch e is
    ``cosine_lr(lr, e, epochs)`` or ``lr`` (``schedule="constant"``). ``data`` (a
    :class:`cnnref.data.Digits`, checked by :func:`cnnref.data.check_digits`) defaults to
    ``load_digits()`` (test_size 0.2, split seed 0). ``progress`` (bool) shows a tqdm bar on stderr.
    Raises ``FloatingPointError`` when the loss stops being finite.
    """
    epochs = as_int(epochs, "epochs", minimum=1)
    batch_size = as_int(batch_size, "batch_size", minimum=1)
    seed = as_int(seed, "seed", minimum=0)
    check_mode(schedule, SCHEDULES, "schedule")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool, got {progress!r} of type {type(progress).__name__}")
    lr, momentum = _rates(loss, lr, momentum)
    opt = SGD(lr, momentum)
    if params is None:
        params = network.init_params(IMAGE_SHAPE, channels, seed=seed, loss=loss)
    else:
        params, expected = network.check_params(params), network.param_shapes(IMAGE_SHAPE, channels)
        shapes = {k: v.shape for k, v in params.items()}
        if shapes != expected:
            raise ValueError(f"params must have the shapes of channels={tuple(channels)} {expected}, got {shapes}")
    data = load_digits() if data is None else check_digits(data)
    history = {k: [] for k in (*EPOCH_KEYS, "step_loss")}
    n_train = data.x_train.shape[0]
    steps_per_epoch = math.ceil(n_train / batch_size)
    bar = None
    if progress:
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - tqdm comes with the `data` extra
            print("(install tqdm for a progress bar)", file=sys.stderr)
        else:
            bar = tqdm(total=epochs * steps_per_epoch, unit="step", file=sys.stderr, desc="training")
    t0, c0 = time.perf_counter(), time.process_time()
    for epoch in range(epochs):
        lr_epoch = cosine_lr(lr, epoch, epochs) if schedule == "cosine" else opt.lr
        total, correct = 0.0, 0
        for idx in batch_indices(n_train, batch_size, seed=seed, epoch=epoch):
            if not np.isfinite(total):
                break
            xb, yb = data.x_train[idx], data.y_train[idx]
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below, not warned about
                out, cache = network.forward(params, xb, loss=loss)
                e = network.loss_value(out, yb, loss=loss)
                grads = network.backward(params, cache, network.loss_grad(out, yb, loss=loss))
                params = opt.step(params, grads, lr_epoch)
            history["step_loss"].append(e)
            total += e * idx.size
            correct += int(np.sum(np.argmax(out, axis=1) == yb))
            if bar is not None:
                bar.update(1)
        if not np.isfinite(total):
            if bar is not None:
                bar.close()
            raise FloatingPointError(f"the loss became {total} in epoch {epoch + 1}: the learning rate {lr} is too large")
        test_loss, test_acc = network.evaluate(params, data.x_test, data.y_test, loss=loss)
        # train_loss / train_acc: running averages over the epoch's minibatches (before each step)
        history["train_loss"].append(total / n_train)
        history["train_acc"].append(correct / n_train)
        history["test_loss"].append(test_loss)
        history["test_acc"].append(test_acc)
        if bar is not None:
            bar.set_postfix(epoch=epoch + 1, test_acc=f"{test_acc:.4f}")
    train_time, cpu_time = time.perf_counter() - t0, time.process_time() - c0
    if bar is not None:
        bar.close()
    return TrainResult(params, history, history["test_acc"][-1], train_time, cpu_time)


# --- files of the command line ----------------------------------------------------------------


def _save(path, params: dict, loss: str) -> None:
    """Write ``params`` and the name of their ``loss`` to the .npz file ``path`` (what ``--save`` does)."""
    check_mode(loss, network.LOSSES, "loss")
    np.savez(path, loss=np.array(loss), **network.check_params(params))


def _load(path, loss: str) -> dict:
    """The parameters in the .npz file ``path`` (written by :func:`_save`), checked.

    Raises ``ValueError`` if the file is not such an .npz file, if its arrays are not the keys and
    consistent shapes of :func:`cnnref.network.check_params`, or if it records another ``loss``.
    """
    check_mode(loss, network.LOSSES, "loss")
    try:
        f = np.load(path)  # allow_pickle=False: data only
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise ValueError("it holds one array (.npy format), not named arrays")
        with f:
            saved = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{str(path)!r} is not an .npz file of parameters (written by --save): {exc}") from None
    saved_loss = str(saved.pop("loss", loss))
    if saved_loss != loss:
        raise ValueError(f"{str(path)!r} holds parameters of the {saved_loss!r} network; pass --loss {saved_loss}")
    try:
        params = network.check_params(saved)
        channels = tuple(params[f"w{s}"].shape[0] for s in range(1, network.stages(params) + 1))
        for k, shape in network.param_shapes(IMAGE_SHAPE, channels).items():  # the digits' network
            if params[k].shape != shape:
                raise ValueError(f"params[{k!r}] must have shape {shape}, got {params[k].shape}")
        return params
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{str(path)!r} does not hold valid parameters: {exc}") from None


def _write_history(path, history: dict) -> None:
    """Write the per-epoch entries of ``history`` (:data:`EPOCH_KEYS`, after an ``epoch`` column
    counting from 1) as JSON (an object of lists) or CSV (a header and one row per epoch), by the
    suffix of ``path`` (.json or .csv). Floats are written exactly (shortest round-trip form)."""
    path = Path(path)
    columns = {"epoch": list(range(1, len(history["test_acc"]) + 1)), **{k: list(history[k]) for k in EPOCH_KEYS}}
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(columns, indent=1) + "\n", encoding="utf-8")
        return
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(zip(*columns.values()))


def _figure_class():
    """matplotlib's Figure (imported only for --plot), or ImportError with the command that installs it."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("--plot needs matplotlib: install it with `pip install 'cnnref[plot]'` "
                          "or `pip install matplotlib`") from None
    return Figure


def _plot(path, history: dict, loss: str) -> None:
    """Draw the learning curves of ``history`` (loss and accuracy per epoch, train and test) into ``path``."""
    fig = _figure_class()(figsize=(9, 3.5), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = np.arange(1, len(history["test_acc"]) + 1)
    for split, marker in (("train", "o-"), ("test", "s-")):
        ax_loss.plot(epochs, history[f"{split}_loss"], marker, ms=3, label=split)
        ax_acc.plot(epochs, history[f"{split}_acc"], marker, ms=3, label=split)
    ax_acc.axhline(1 / N_CLASSES, color="gray", ls=":", lw=1, label="chance")
    ax_loss.set(xlabel="epoch", ylabel="mean loss", yscale="log", title=f"loss ({loss})")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02), title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.get_major_locator().set_params(integer=True)  # whole epochs
    ax_loss.legend()
    ax_acc.legend(loc="lower right")
    fig.savefig(path)


# --- command line ------------------------------------------------------------------------------


def _checked(convert, ok, expected: str, show_parsed: bool):
    """An argparse ``type=``: ``convert(text)`` that must satisfy ``ok``, else a message naming what was expected."""

    def parse(text: str):
        try:
            v = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {v if show_parsed else repr(text)}")
        return v

    return parse


def _path(*suffixes: str, existing: bool = False):
    """An argparse ``type=``: a path ending in one of ``suffixes``, to an existing file (``existing``)
    or in an existing folder."""

    def ok(p: Path) -> bool:
        return p.suffix.lower() in suffixes and (p.is_file() if existing else p.parent.is_dir())

    where = "an existing file" if existing else "a file in an existing folder"
    return _checked(Path, ok, f"{where} ending in {' or '.join(suffixes)}", show_parsed=False)


_positive_int = _checked(int, lambda v: v >= 1, "a positive integer", show_parsed=True)
_non_negative_int = _checked(int, lambda v: v >= 0, "a non-negative integer", show_parsed=True)
_positive_float = _checked(float, lambda v: math.isfinite(v) and v > 0, "a positive finite number", show_parsed=False)
_momentum = _checked(float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)", show_parsed=False)
# --epochs 0 is valid only with --load (checked after parsing); the message says "positive" as before.
_epochs = _checked(int, lambda v: v >= 0, "a positive integer", show_parsed=True)


class _Parser(argparse.ArgumentParser):
    """Also checks the options that depend on each other (exit status 2, like any bad option)."""

    def parse_args(self, args=None, namespace=None):
        ns = super().parse_args(args, namespace)
        if ns.epochs == 0 and ns.load is None:
            self.error("argument --epochs: expected a positive integer, got 0 "
                       "(--epochs 0 only evaluates the parameters of --load)")
        if ns.epochs == 0 and (ns.history or ns.plot):
            self.error("argument --history/--plot: needs --epochs >= 1 (--epochs 0 only evaluates)")
        return ns


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(
        prog="python -m cnnref.train",
        description="Train a small CNN on scikit-learn's 8x8 digits with cnnref's hand-derived gradients "
                    "(minibatch SGD) and print the test accuracy.",
    )
    ap.add_argument("--epochs", type=_epochs, default=DEFAULTS["epochs"],
                    help="passes over the training set (positive int, default %(default)s; "
                         "0 with --load: only evaluate)")
    ap.add_argument("--batch-size", type=_positive_int, default=DEFAULTS["batch_size"],
                    help="examples per minibatch (positive int, default %(default)s)")
    ap.add_argument("--lr", type=_positive_float, default=None,
                    help=f"initial learning rate (positive number; default {LOSS_DEFAULTS['ce']['lr']} for ce, "
                         f"{LOSS_DEFAULTS['sse']['lr']} for sse)")
    ap.add_argument("--momentum", type=_momentum, default=None,
                    help=f"momentum in [0, 1) (0 = plain SGD; default {LOSS_DEFAULTS['ce']['momentum']} for ce, "
                         f"{LOSS_DEFAULTS['sse']['momentum']} for sse)")
    ap.add_argument("--schedule", choices=SCHEDULES, default=DEFAULTS["schedule"],
                    help="learning rate per epoch: cosine decay from --lr, or constant (default %(default)s)")
    ap.add_argument("--seed", type=_non_negative_int, default=DEFAULTS["seed"],
                    help="seed of the initial parameters and the minibatch order (default %(default)s)")
    ap.add_argument("--loss", choices=network.LOSSES, default=DEFAULTS["loss"],
                    help="ce: ReLU, max-pool, softmax cross-entropy; sse: sigmoid, mean-pool, "
                         "1/2 squared error (default %(default)s)")
    ap.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    ap.add_argument("--save", type=_path(".npz"), metavar="PATH", help="write the trained parameters (.npz)")
    ap.add_argument("--load", type=_path(".npz", existing=True), metavar="PATH",
                    help="start from parameters written by --save (.npz)")
    ap.add_argument("--history", type=_path(".json", ".csv"), metavar="PATH",
                    help="write the per-epoch loss and accuracy (.json or .csv)")
    ap.add_argument("--plot", type=_path(".png"), metavar="PATH",
                    help="draw the learning curves (.png; needs matplotlib)")
    ap.add_argument("--version", action="version", version=f"%(prog)s (cnnref {__version__})")
    return ap


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    params = None
    if args.load is not None:
        try:
            params = _load(args.load, args.loss)
        except ValueError as exc:
            parser.error(f"argument --load: {exc}")
    try:
        if args.plot is not None:
            _figure_class()  # fail now, not after the training
        data = load_digits()
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    if args.epochs == 0:
        _, accuracy = network.evaluate(params, data.x_test, data.y_test, loss=args.loss)
        print(f"test accuracy: {accuracy:.4f} (evaluated, no training)")
    else:
        channels = (16, 32) if params is None else tuple(params[f"w{s}"].shape[0] for s in range(1, network.stages(params) + 1))
        try:
            res = train(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                        schedule=args.schedule, seed=args.seed, loss=args.loss, channels=channels, params=params,
                        data=data, progress=not args.no_progress)
        except FloatingPointError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        params = res.params
        print(f"test accuracy: {res.test_accuracy:.4f} (train time {res.train_time:.1f} s, CPU {res.cpu_time:.1f} s)")
        if res.test_accuracy < NEAR_CHANCE:
            lr, _ = _rates(args.loss, args.lr)
            print(f"warning: the test accuracy {res.test_accuracy:.4f} is near chance ({1 / N_CLASSES:g} for "
                  f"{N_CLASSES} classes): the network has not learned. Try a smaller --lr than {lr:g}, "
                  f"or more --epochs.", file=sys.stderr)

    outputs = [(args.save, lambda p: _save(p, params, args.loss))]
    if args.epochs > 0:
        outputs += [(args.history, lambda p: _write_history(p, res.history)),
                    (args.plot, lambda p: _plot(p, res.history, args.loss))]
    for path, write in outputs:
        if path is not None:
            try:
                write(path)
            except OSError as exc:
                print(f"error: cannot write {str(path)!r}: {exc}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
