"""The book's helpers (cnnref.book): written once, independent of cnnref's implementation, and used.

- ``cnnref.book.checks`` and ``cnnref.book.jaxref`` import nothing of ``cnnref`` outside
  ``cnnref.book``, so they stay an independent oracle for the layers they check.
- No chapter defines a function that another chapter defines too, and every chapter's first
  code cell after the install cell (its setup) is at most 8 lines.
- ``agree`` and ``differ`` fail when they should.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

import launch_notebooks  # book/_ext (on sys.path via conftest.py)
from cnnref.book import agree, checks, differ, jaxref, relative_error, show_source

ROOT = Path(__file__).resolve().parents[1]
ORACLES = [ROOT / "cnnref" / "book" / "checks.py", *sorted((ROOT / "cnnref" / "book").glob("jaxref*.py"))]


def chapters():
    return launch_notebooks.chapter_paths()


code_cells = launch_notebooks.code_cells


@pytest.mark.parametrize("path", ORACLES, ids=lambda p: p.name)
def test_the_oracle_imports_nothing_of_cnnrefs_implementation(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported.append("." * node.level + (node.module or ""))
    bad = [m for m in imported if m.startswith("cnnref") and not m.startswith("cnnref.book")
           or m.startswith("..")]
    assert not bad, f"{path.name} imports {bad}"


def test_no_function_is_defined_in_two_chapters():
    where: dict[str, set[str]] = {}
    for md in chapters():
        for code in code_cells(md):
            for name in re.findall(r"^def ([A-Za-z_]\w*)\(", code, re.M):
                where.setdefault(name, set()).add(md.stem)
    twice = {k: sorted(v) for k, v in where.items() if len(v) > 1}
    assert not twice, f"define these once in cnnref.book and import them: {twice}"


@pytest.mark.parametrize("md", chapters(), ids=lambda p: p.stem)
def test_a_chapter_opens_with_a_short_setup_cell(md):
    cells = [c for c in code_cells(md) if "find_spec(\"cnnref\")" not in c]
    setup = cells[0].splitlines()
    assert len(setup) <= 8, f"{md.name}: the first code cell has {len(setup)} lines:\n" + "\n".join(setup)
    assert re.search(r"^(rng = )?setup\(\)$", cells[0], re.M), f"{md.name}: the first code cell does not call setup()"


def test_agree_passes_and_fails_as_documented(capsys):
    a = np.arange(6.0).reshape(2, 3)
    agree("same", a, a + 1e-14)
    assert capsys.readouterr().out == f"{'same':<50} agrees (relative error < 1e-12)\n"
    with pytest.raises(AssertionError, match="relative error 1.7e-01 >= 1e-12"):
        agree("off", a, a + 1.0)
    with pytest.raises(AssertionError, match=r"shape \(2, 3\) != \(3, 2\)"):
        agree("shape", a, a.T)


def test_differ_passes_and_fails_as_documented(capsys):
    a = np.arange(1.0, 7.0)
    differ("wrong", a, a[::-1])
    assert "differs (relative error 0.83)" in capsys.readouterr().out
    differ("shape", a, a.reshape(2, 3))
    assert "differs (shape (6,) vs (2, 3))" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="relative error 1.7e-10 < 1e-03"):
        differ("close", a, a + 1e-9)


def test_relative_error_is_scaled_by_the_largest_entry():
    assert relative_error([0.0, 0.0], [0.0, 0.0]) == 0.0
    assert relative_error([1.0, 10.0], [1.0, 11.0]) == pytest.approx(1 / 11, rel=1e-15)
    with pytest.raises(ValueError, match="shapes differ"):
        relative_error(np.zeros(2), np.zeros(3))


def test_show_source_shows_the_helper():
    code = show_source(checks.agree)
    assert code.data.startswith("```python\ndef agree(") and code.data.endswith("\n```")
    assert "relative_error(got, ref)" in code.data


def test_jax_network_matches_the_layer_references():
    rng = np.random.default_rng(0)
    p = {"w1": rng.standard_normal((2, 1, 3, 3)), "b1": rng.standard_normal(2),
         "w2": rng.standard_normal((3, 2, 3, 3)), "b2": rng.standard_normal(3),
         "W": rng.standard_normal((10, 12)), "c": rng.standard_normal(10)}
    x = rng.standard_normal((4, 1, 8, 8))
    h = jaxref.maxpool2d(jaxref.relu(jaxref.conv2d(x, p["w1"], p["b1"], padding=1)), 2)
    h = jaxref.maxpool2d(jaxref.relu(jaxref.conv2d(h, p["w2"], p["b2"], padding=1)), 2)
    s = np.asarray(h).reshape(4, -1) @ p["W"].T + p["c"]
    assert relative_error(jaxref.cnn_forward(p, x), s) < 1e-13
    y = np.array([0, 3, 9, 1])
    log_p = s - np.log(np.sum(np.exp(s - s.max(1, keepdims=True)), 1, keepdims=True)) - s.max(1, keepdims=True)
    assert float(jaxref.cnn_loss(p, x, y)) == pytest.approx(-np.mean(log_p[np.arange(4), y]), rel=1e-13)
