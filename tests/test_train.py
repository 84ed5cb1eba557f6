"""cnnref.train: the default training reaches the accuracy bar; the command line works and rejects bad options.

No test here asserts a time: speed claims come only from the benchmark scripts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnref import model
from cnnref.data import load_digits
from cnnref.train import DEFAULTS, build_parser, main, train

ROOT = Path(__file__).resolve().parents[1]
FINAL_LINE = re.compile(r"^test accuracy: (\d\.\d{4}) \(train time \d+\.\d s, CPU \d+\.\d s\)$")


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


@pytest.mark.slow
def test_default_training_reaches_97_percent(digits):
    """The CLI's defaults (same function, same seed) give >= 97 % on the held-out 360 digits."""
    res = train(**DEFAULTS, data=digits)
    assert res.test_accuracy >= 0.97, f"test accuracy {res.test_accuracy:.4f} < 0.97"
    # the reported accuracy is the model's accuracy on the test split, recomputed independently
    pred = np.argmax(model.forward(res.params, digits.x_test)[0], axis=1)
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
    initial_loss, _ = model.evaluate(model.init_params(0, loss="sse"), digits.x_test, digits.y_test, loss="sse")
    res = train(epochs=2, lr=2.0, momentum=0.0, loss="sse", data=digits)
    assert res.history["test_loss"][-1] < 0.5 < initial_loss


@pytest.mark.parametrize("kw, exc", [
    (dict(epochs=0), ValueError), (dict(batch_size=0), ValueError), (dict(seed=-1), ValueError),
    (dict(lr=-1.0), ValueError), (dict(momentum=1.0), ValueError), (dict(loss="mse"), ValueError),
    (dict(schedule="step"), ValueError), (dict(epochs=1.5), TypeError),
])
def test_train_rejects_bad_arguments(kw, exc, digits):
    with pytest.raises(exc):
        train(**kw, data=digits)


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
    assert main(["--epochs", "1", "--no-progress", "--loss", "sse"]) == 0
    out, err = capsys.readouterr()
    assert FINAL_LINE.match(out.strip().splitlines()[-1]), out
    assert err == ""


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
