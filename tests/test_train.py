"""cnnref.train: the default training reaches the accuracy bar; train() and the command line share their
defaults; the command line works (files, warnings, errors) and rejects bad options.

No test here asserts a time: speed claims come only from the benchmark scripts.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

import cnnref
from cnnref import network
from cnnref.data import IMAGE_SHAPE, Digits, load_digits
from cnnref.train import DEFAULTS, LOSS_DEFAULTS, SSE_DEFAULTS, build_parser, main, train

ROOT = Path(__file__).resolve().parents[1]
FINAL_LINE = re.compile(r"^test accuracy: (\d\.\d{4}) \(train time \d+\.\d s, CPU \d+\.\d s\)$")
EVAL_LINE = re.compile(r"^test accuracy: (\d\.\d{4}) \(evaluated, no training\)$")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAMES = network.param_names(2)  # w1, b1, w2, b2, W, c: the digits CNN's two stages and dense layer


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "cnnref.train", *args], capture_output=True, text=True,
                          cwd=ROOT, env=_env(), timeout=timeout)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def small(digits):
    """200 training and 100 test images: enough for the tests that compare two runs."""
    return Digits(digits.x_train[:200], digits.y_train[:200], digits.x_test[:100], digits.y_test[:100])


def _same_params(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_default_training_reaches_97_percent(digits):
    """The CLI's defaults (same function, same seed) give >= 97 % on the held-out 360 digits."""
    res = train(**DEFAULTS, data=digits)
    assert res.test_accuracy >= 0.97, f"test accuracy {res.test_accuracy:.4f} < 0.97"
    # the reported accuracy is the model's accuracy on the test split, recomputed independently
    pred = np.argmax(network.forward(res.params, digits.x_test)[0], axis=1)
    assert res.test_accuracy == np.mean(pred == digits.y_test)
    h = res.history
    assert [len(h[k]) for k in ("train_loss", "train_acc", "test_loss", "test_acc")] == [DEFAULTS["epochs"]] * 4
    assert len(h["step_loss"]) == DEFAULTS["epochs"] * int(np.ceil(digits.x_train.shape[0] / DEFAULTS["batch_size"]))
    assert h["train_loss"][-1] < 0.1 * h["train_loss"][0]


def test_training_is_deterministic(digits):
    a = train(epochs=1, data=digits)
    b = train(epochs=1, data=digits)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert a.history["step_loss"] == b.history["step_loss"]


def test_sse_variant_learns(digits):
    """Two epochs of the sigmoid / ½-squared-error network lower its test loss well below the start.

    At the start the ten sigmoid outputs are spread around 0.5 (test loss ≈ 2.5 per example);
    predicting 0 everywhere already gives 0.5, and the trained network must be below that.
    """
    initial_loss, _ = network.evaluate(network.init_params(IMAGE_SHAPE, seed=0, loss="sse"), digits.x_test,
                                       digits.y_test, loss="sse")
    res = train(epochs=2, lr=2.0, momentum=0.0, loss="sse", data=digits)
    assert res.history["test_loss"][-1] < 0.5 < initial_loss


# --- one table of defaults ---------------------------------------------------------------------


def test_the_defaults_table():
    """The values the book prints (book/training.md prints DEFAULTS), from one per-loss table."""
    assert list(DEFAULTS.items()) == [("epochs", 20), ("batch_size", 32), ("lr", 0.05), ("momentum", 0.9),
                                      ("schedule", "cosine"), ("seed", 0), ("loss", "ce")]
    assert SSE_DEFAULTS == {"lr": 2.0, "momentum": 0.0} == LOSS_DEFAULTS["sse"]
    assert {k: DEFAULTS[k] for k in ("lr", "momentum")} == LOSS_DEFAULTS["ce"]
    assert set(LOSS_DEFAULTS) == set(network.LOSSES)


@pytest.mark.parametrize("loss", network.LOSSES)
def test_train_without_lr_and_momentum_uses_the_defaults_of_its_loss(loss, small):
    """train(loss=...) = train(loss=..., **LOSS_DEFAULTS[loss]) exactly, and differs from the other loss's rates."""
    implicit = train(epochs=1, loss=loss, data=small).params
    assert _same_params(implicit, train(epochs=1, loss=loss, data=small, **LOSS_DEFAULTS[loss]).params)
    other = LOSS_DEFAULTS["ce" if loss == "sse" else "sse"]
    assert not _same_params(implicit, train(epochs=1, loss=loss, data=small, **other).params)
    # one of the two given: the other one comes from the table
    lr_only = train(epochs=1, loss=loss, lr=0.5, data=small).params
    assert _same_params(lr_only, train(epochs=1, loss=loss, lr=0.5, momentum=LOSS_DEFAULTS[loss]["momentum"],
                                       data=small).params)


def test_the_command_line_uses_the_same_defaults(tmp_path, digits, capsys):
    """`--loss sse` without --lr/--momentum trains exactly what train(loss="sse") trains."""
    assert main(["--epochs", "1", "--loss", "sse", "--no-progress", "--save", str(tmp_path / "p.npz")]) == 0
    capsys.readouterr()
    with np.load(tmp_path / "p.npz") as f:
        saved = {k: f[k] for k in NAMES}
        assert str(f["loss"]) == "sse"
    assert _same_params(saved, train(epochs=1, loss="sse", data=digits).params)
    assert _same_params(saved, train(epochs=1, loss="sse", data=digits, **SSE_DEFAULTS).params)


def test_train_starts_from_given_params_without_modifying_them(small):
    p0 = network.init_params(IMAGE_SHAPE, seed=0)
    copy = {k: v.copy() for k, v in p0.items()}
    res = train(epochs=1, params=p0, data=small)
    assert _same_params(p0, copy)
    assert _same_params(res.params, train(epochs=1, data=small).params)  # init_params(0) is the default start
    other = train(epochs=1, params=network.init_params(IMAGE_SHAPE, (4, 6), seed=5), channels=(4, 6), data=small)
    assert other.params["W"].shape == (10, 24)


@pytest.mark.parametrize("kw, exc, match", [
    (dict(epochs=0), ValueError, "epochs must be a positive int, got 0"),
    (dict(batch_size=0), ValueError, "batch_size must be a positive int"),
    (dict(seed=-1), ValueError, "seed must be a non-negative int"),
    (dict(lr=-1.0), ValueError, "lr must be a positive finite number"),
    (dict(lr="0.1"), TypeError, "lr must be a real number"),
    (dict(momentum=1.0), ValueError, r"momentum must lie in \[0, 1\)"),
    (dict(loss="mse"), ValueError, "loss must be one of 'ce', 'sse'"),
    (dict(schedule="step"), ValueError, "schedule must be one of 'cosine', 'constant'"),
    (dict(epochs=1.5), TypeError, "epochs must be an int, got 1.5"),
    (dict(progress="yes"), TypeError, "progress must be a bool"),
    (dict(channels=()), ValueError, "channels must be a non-empty tuple"),
    (dict(channels=(4, 0)), ValueError, r"channels must have entries >= 1, got \(4, 0\)"),
    # 8 → 4 → 2 → 1: the 1 × 1 maps of a fourth stage are smaller than its 2 × 2 pooling window
    (dict(channels=(4, 4, 4, 4)), ValueError, "stage 4: its 3x3 convolution with padding 1 gives 1x1 maps"),
    (dict(params=network.init_params(IMAGE_SHAPE, (4, 6))), ValueError,
     r"params must have the shapes of channels=\(16, 32\)"),
    (dict(params={"w1": np.zeros((16, 1, 3, 3))}), ValueError,
     re.escape("params must hold w1, b1, …, wS, bS, W, c (S >= 1); missing ['b1', 'W', 'c']")),
    (dict(params=dict(network.init_params(IMAGE_SHAPE), extra=np.zeros(1))), ValueError,
     "params must have exactly the keys"),
])
def test_train_rejects_bad_arguments(kw, exc, match, digits):
    with pytest.raises(exc, match=match):
        train(**kw, data=digits)


@pytest.mark.parametrize("bad, exc, match", [
    ([1, 2, 3, 4], TypeError, "data must be a Digits tuple"),
    (lambda d: d[:3], ValueError, "data must have 4 entries"),
    (lambda d: (d.x_train[:, :, :7], *d[1:]), ValueError, r"x_train must have shape \(N, 1, 8, 8\)"),
    (lambda d: (d.x_train, d.y_train[:-1], *d[2:]), ValueError, r"y_train must have shape \(N,\) = \(1437,\)"),
    (lambda d: (*d[:3], d.y_test.astype(float)), TypeError, "y_test must be an integer array"),
    (lambda d: (*d[:3], d.y_test + 10), ValueError, r"y_test must lie in \[0, 9\]"),
    (lambda d: (d.x_train.astype(bool), *d[1:]), TypeError, "x_train must be a real numeric array"),
    (lambda d: (*d[:2], d.x_test[:0], d.y_test[:0]), ValueError, "with N >= 1"),
])
def test_train_rejects_bad_data(bad, exc, match, digits):
    data = bad(digits) if callable(bad) else bad
    with pytest.raises(exc, match=match):
        train(epochs=1, data=data)


def test_divergence_is_reported_not_hidden(digits):
    with pytest.raises(FloatingPointError, match="learning rate"):
        train(epochs=1, lr=1e200, data=digits)


@pytest.mark.slow
def test_cli_runs_and_prints_the_final_line():
    r = run_cli("--epochs", "1", "--batch-size", "64")
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    m = FINAL_LINE.match(last)
    assert m, f"unexpected final line {last!r}"
    assert 0.0 <= float(m.group(1)) <= 1.0
    assert "training" in r.stderr and "step" in r.stderr  # the tqdm bar goes to stderr


def test_cli_in_process_without_progress(capsys):
    assert main(["--epochs", "1", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert FINAL_LINE.match(out.strip().splitlines()[-1]), out
    assert err == ""


def test_a_run_that_ends_near_chance_prints_a_warning(capsys):
    """One epoch of the sigmoid network still sits at chance (0.1028): a warning line on stderr, exit 0."""
    assert main(["--epochs", "1", "--no-progress", "--loss", "sse"]) == 0
    out, err = capsys.readouterr()
    acc = float(FINAL_LINE.match(out.strip().splitlines()[-1]).group(1))
    assert acc < 0.2
    assert err == (f"warning: the test accuracy {acc:.4f} is near chance (0.1 for 10 classes): the network has not "
                   f"learned. Try a smaller --lr than 2, or more --epochs.\n")


@pytest.mark.parametrize("args, text", [
    (["--epochs", "0"], "--epochs: expected a positive integer, got 0"),
    (["--epochs", "two"], "--epochs: expected a positive integer, got 'two'"),
    (["--batch-size", "-3"], "--batch-size: expected a positive integer"),
    (["--lr", "-0.1"], "--lr: expected a positive finite number"),
    (["--lr", "inf"], "--lr: expected a positive finite number"),
    (["--momentum", "1"], "--momentum: expected a number in [0, 1)"),
    (["--seed", "-1"], "--seed: expected a non-negative integer"),
    (["--loss", "mse"], "--loss: invalid choice: 'mse'"),
    (["--schedule", "step"], "--schedule: invalid choice"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--epochs", "-1"], "--epochs: expected a positive integer, got -1"),
    (["--save", "p.npy"], "--save: expected a file in an existing folder ending in .npz, got 'p.npy'"),
    (["--save", "no/such/folder/p.npz"], "--save: expected a file in an existing folder ending in .npz"),
    (["--load", "p.txt"], "--load: expected an existing file ending in .npz, got 'p.txt'"),
    (["--load", "no_such_file.npz"], "--load: expected an existing file ending in .npz, got 'no_such_file.npz'"),
    (["--history", "h.txt"], "--history: expected a file in an existing folder ending in .json or .csv, got 'h.txt'"),
    (["--history", "h"], "--history: expected a file in an existing folder ending in .json or .csv, got 'h'"),
    (["--plot", "c.jpg"], "--plot: expected a file in an existing folder ending in .png, got 'c.jpg'"),
])
def test_bad_options_exit_2_with_a_message(args, text, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(args)
    assert exc.value.code == 2
    assert text in capsys.readouterr().err


def test_bad_option_from_the_command_line():
    r = run_cli("--lr", "0", timeout=60)
    assert r.returncode == 2
    assert "--lr: expected a positive finite number, got '0'" in r.stderr
    assert r.stdout == ""


def test_divergence_exits_1_from_the_command_line():
    r = run_cli("--epochs", "1", "--lr", "1e200", "--no-progress")
    assert r.returncode == 1
    assert "error: the loss became nan" in r.stderr


def test_version_is_the_pyproject_version(capsys):
    with open(ROOT / "pyproject.toml", "rb") as fh:
        project = tomllib.load(fh)["project"]
    assert cnnref.__version__ == project["version"]
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip().endswith(f"(cnnref {project['version']})")
    # the console script and the extras the command line's messages name
    assert project["scripts"]["cnnref-train"] == "cnnref.train:main"
    extras = {k: " ".join(v) for k, v in project["optional-dependencies"].items()}
    assert "scikit-learn" in extras["data"] and "tqdm" in extras["data"] and "matplotlib" in extras["plot"]


# --- files: --save, --load, --history, --plot --------------------------------------------------


@pytest.mark.parametrize("args", [["--epochs", "0"], ["--epochs", "0", "--history", "h.csv", "--load", "p.npz"],
                                  ["--epochs", "0", "--plot", "c.png", "--load", "p.npz"]])
def test_epochs_0_is_only_for_evaluating_loaded_parameters(args, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.npz").write_bytes(b"")
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert ("--epochs: expected a positive integer, got 0" in err if "--load" not in args
            else "--history/--plot: needs --epochs >= 1" in err)


def test_save_then_load_with_0_epochs_gives_the_same_accuracy(tmp_path, digits, capsys):
    path = tmp_path / "params.npz"
    assert main(["--epochs", "2", "--no-progress", "--save", str(path)]) == 0
    trained = FINAL_LINE.match(capsys.readouterr().out.strip()).group(1)
    expected = train(epochs=2, data=digits)
    with np.load(path) as f:
        assert sorted(f.files) == sorted((*NAMES, "loss"))
        assert _same_params({k: f[k] for k in NAMES}, expected.params)
    assert main(["--epochs", "0", "--load", str(path)]) == 0
    out, err = capsys.readouterr()
    assert EVAL_LINE.match(out.strip()).group(1) == trained == f"{expected.test_accuracy:.4f}"
    assert err == ""


def test_load_starts_the_training_from_the_file(tmp_path, digits, capsys):
    """Parameters of other channels too: one epoch from them = train(params=them) for one epoch."""
    start = network.init_params(IMAGE_SHAPE, (4, 6), seed=3)
    path, out = tmp_path / "start.npz", tmp_path / "out.npz"
    np.savez(path, **start)  # without a "loss" entry: accepted
    assert main(["--epochs", "1", "--no-progress", "--load", str(path), "--save", str(out)]) == 0
    capsys.readouterr()
    with np.load(out) as f:
        got = {k: f[k] for k in NAMES}
    assert _same_params(got, train(epochs=1, params=start, channels=(4, 6), data=digits).params)


def test_load_starts_from_a_file_of_three_stages(tmp_path, small, monkeypatch, capsys):
    """The number of stages comes from the file: w1, b1, …, w3, b3, W, c train as train(channels=(4, 6, 8))."""
    import cnnref.train as train_module
    monkeypatch.setattr(train_module, "load_digits", lambda: small)
    start = network.init_params(IMAGE_SHAPE, (4, 6, 8), seed=2)
    assert start["W"].shape == (10, 8)   # 8 → 4 → 2 → 1
    path, out = tmp_path / "start.npz", tmp_path / "out.npz"
    np.savez(path, **start)
    assert main(["--epochs", "1", "--no-progress", "--load", str(path), "--save", str(out)]) == 0
    capsys.readouterr()
    with np.load(out) as f:
        got = {k: f[k] for k in network.param_names(3)}
        assert sorted(f.files) == sorted((*network.param_names(3), "loss"))
    assert _same_params(got, train(epochs=1, params=start, channels=(4, 6, 8), data=small).params)


@pytest.mark.parametrize("epochs", ["0", "1"])
def test_load_rejects_parameters_that_do_not_fit_the_digits_with_exit_2(epochs, tmp_path, capsys):
    """Keys and channel chain consistent, but W does not fit the last maps of the 8 × 8 images."""
    path = tmp_path / "bad.npz"
    np.savez(path, **dict(network.init_params(IMAGE_SHAPE), W=np.zeros((10, 5))))
    with pytest.raises(SystemExit) as exc:
        main(["--epochs", epochs, "--no-progress", "--load", str(path)])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and re.search(r"argument --load: .*does not hold valid parameters: params\['W'\]", err), err


@pytest.mark.parametrize("content, message", [
    (lambda p: np.savez(p, **dict(network.init_params(IMAGE_SHAPE), W=np.zeros((10, 5)))),
     r"does not hold valid parameters: params\['W'\] must have .*128.*got .*\(10, 5\)"),
    (lambda p: np.savez(p, **{k: v for k, v in network.init_params(IMAGE_SHAPE).items() if k != "c"}),
     re.escape("does not hold valid parameters: params must hold w1, b1, …, wS, bS, W, c (S >= 1); missing ['c']")),
    # a file of cnnref 0.1, whose dense layer was named W3, c3
    (lambda p: np.savez(p, loss=np.array("ce"), **{{"W": "W3", "c": "c3"}.get(k, k): v
                                                  for k, v in network.init_params(IMAGE_SHAPE).items()}),
     re.escape("does not hold valid parameters: params must hold w1, b1, …, wS, bS, W, c (S >= 1); "
               "missing ['W', 'c']")),
    (lambda p: np.savez(p, loss=np.array("sse"), **network.init_params(IMAGE_SHAPE)),
     "holds parameters of the 'sse' network; pass --loss sse"),
    (lambda p: p.write_text("not numpy"), "is not an .npz file of parameters"),
    (lambda p: p.write_bytes(b"PK\x03\x04 broken zip"), "is not an .npz file of parameters"),
    (lambda p: np.save(open(p, "wb"), np.zeros(3)), r"is not an .npz file of parameters .*one array \(.npy"),
])
def test_load_rejects_a_bad_file_with_exit_2(content, message, tmp_path, capsys):
    path = tmp_path / "bad.npz"
    content(path)
    with pytest.raises(SystemExit) as exc:
        main(["--epochs", "0", "--load", str(path)])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and re.search("argument --load: .*" + message, err), err


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_history_file_holds_the_per_epoch_values(suffix, tmp_path, digits, capsys):
    path = tmp_path / f"history{suffix}"
    assert main(["--epochs", "2", "--no-progress", "--history", str(path)]) == 0
    capsys.readouterr()
    h = train(epochs=2, data=digits).history
    expected = {"epoch": [1, 2], **{k: h[k] for k in ("train_loss", "train_acc", "test_loss", "test_acc")}}
    if suffix == ".json":
        got = json.loads(path.read_text())
    else:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == list(expected)
        got = {k: [(int if k == "epoch" else float)(r[i]) for r in rows[1:]] for i, k in enumerate(rows[0])}
    assert got == expected  # exact: the floats are written in their shortest round-trip form


def test_plot_writes_a_png(tmp_path, capsys):
    path = tmp_path / "curves.png"
    assert main(["--epochs", "2", "--no-progress", "--plot", str(path)]) == 0
    assert capsys.readouterr().err == ""
    assert path.read_bytes()[:8] == PNG_SIGNATURE and path.stat().st_size > 10_000


def test_missing_matplotlib_is_one_line_before_any_training(tmp_path, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    path = tmp_path / "curves.png"
    assert main(["--epochs", "1", "--no-progress", "--plot", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and not path.exists()
    assert err == ("error: --plot needs matplotlib: install it with `pip install 'cnnref[plot]'` "
                   "or `pip install matplotlib`\n")


def test_missing_scikit_learn_is_one_line_and_exit_1():
    code = ("import sys; sys.modules['sklearn'] = None; from cnnref.train import main; "
            "raise SystemExit(main(['--epochs', '1', '--no-progress']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=60)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: cnnref.data.load_digits needs scikit-learn")
    assert "pip install 'cnnref[data]'" in r.stderr


def test_an_output_that_cannot_be_written_is_one_line_and_exit_1(tmp_path, capsys):
    (tmp_path / "taken.npz").mkdir()  # a folder where the file should go
    assert main(["--epochs", "1", "--no-progress", "--save", str(tmp_path / "taken.npz")]) == 1
    out, err = capsys.readouterr()
    assert FINAL_LINE.match(out.strip())
    assert err.startswith(f"error: cannot write {str(tmp_path / 'taken.npz')!r}: ") and err.count("\n") == 1
