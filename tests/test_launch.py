"""The ways to reach the book agree with each other: Colab install cells, Binder, the pins.

- Every chapter's first code cell is the install cell for the repository named in
  ``_config.yml`` (the launch buttons' one source), hidden from the HTML.
- Binder installs the runtime requirements only (no docs or test toolchain), and those carry the
  same versions as the lock (``constraints.txt``).
- The recorded benchmark ships inside the package and describes the script's workloads.
The standalone execution of every notebook is ``tests/test_standalone.py`` (``make standalone``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import launch_notebooks as launch  # book/_ext/launch_notebooks.py (on sys.path via conftest.py)
from helpers import TOOLCHAIN

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = launch.chapter_paths()
_PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;]+)(?:\s*;\s*(.+))?$")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a pip requirements file, following ``-r`` includes."""
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            lines += requirement_lines((path.parent / line[3:].strip()).resolve())
        elif line and not line.startswith("-"):
            lines.append(line)
    return lines


def pins(path: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for line in requirement_lines(path):
        m = _PIN.match(line)
        assert m, f"{path.name}: not an exact pin: {line!r}"
        out.setdefault(norm(m.group(1)), set()).add(m.group(2))
    return out


def test_there_are_chapters():
    assert len(CHAPTERS) >= 18


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_first_code_cell_installs_cnnref_from_the_configured_repository(chapter):
    expected = launch.install_cell(*launch.repository())
    m = launch.first_code_cell(chapter.read_text(encoding="utf-8"))
    assert m is not None and m.group(0) == expected, (
        f"{chapter.name}: the first code cell is not the install cell for {launch.repository()} "
        "(run `python book/_ext/launch_notebooks.py --write`, then `make notebooks`)")


def test_install_cell_is_removed_from_the_html_and_skips_when_cnnref_is_importable():
    cell = launch.install_cell("https://example.org/o/r", "dev")
    assert ":tags: [remove-cell]" in cell
    body = cell.split("\n\n", 1)[1]
    assert 'if importlib.util.find_spec("cnnref") is None:\n    %pip install' in body
    assert '"cnnref @ git+https://example.org/o/r@dev"' in body


def test_writing_the_install_cell_is_idempotent_and_replaces_an_old_one():
    text = "---\nkernelspec: {}\n---\n# T\n\n```{code-cell} ipython3\nimport cnnref\n```\n"
    old = launch.with_install_cell(text, launch.install_cell("https://a/b", "main"))
    assert old.count("{code-cell}") == 2 and old.index("find_spec") < old.index("import cnnref")
    new = launch.with_install_cell(old, launch.install_cell("https://c/d", "main"))
    assert new.count("{code-cell}") == 2 and "git+https://c/d@main" in new and "https://a/b" not in new
    assert launch.with_install_cell(new, launch.install_cell("https://c/d", "main")) == new


def test_launch_buttons_open_the_paired_notebook():
    assert launch.notebook_path("book/deltas") == "notebooks/deltas.ipynb"
    assert launch.notebook_path("index") is None


def test_binder_installs_the_runtime_requirements_only():
    binder = requirement_lines(ROOT / "binder" / "requirements.txt")
    runtime = requirement_lines(ROOT / "requirements-runtime.txt")
    assert binder == runtime, "binder/requirements.txt should be exactly the runtime requirements"
    names = {norm(_PIN.match(line).group(1)) for line in runtime}
    assert not names & set(TOOLCHAIN), f"runtime requirements pull in the toolchain: {sorted(names & set(TOOLCHAIN))}"
    assert {"numpy", "scipy", "matplotlib", "jax", "jaxlib", "scikit-learn"} <= names


def test_binder_has_no_constraints_that_fight_its_jupyter_server():
    text = (ROOT / "binder" / "requirements.txt").read_text(encoding="utf-8")
    assert not re.search(r"^\s*-c\b", text, re.M), "binder/requirements.txt must not apply constraints.txt"


def test_runtime_and_development_pins_agree_with_the_lock():
    lock = pins(ROOT / "constraints.txt")
    for name, versions in {**pins(ROOT / "requirements.txt"), **pins(ROOT / "requirements-lab.txt")}.items():
        assert lock.get(name) and versions <= lock[name], (
            f"{name}=={versions} is not what constraints.txt locks ({lock.get(name)}): run `make lock`")


def test_python_floor_is_stated_once_and_enforced():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    floor = re.search(r'^requires-python = ">=(3\.\d+)"', pyproject, re.M).group(1)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(rf"^PYTHON_MIN\s*:=\s*{re.escape(floor)}$", makefile, re.M)
    assert f"Python ≥ {floor}" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == f"python-{floor}"
    assert re.search(r"^#    make lock$", (ROOT / "constraints.txt").read_text(), re.M)


def test_the_recorded_benchmark_ships_with_the_package_and_matches_the_script():
    from cnnref.book import recorded_benchmark

    results = recorded_benchmark()
    tree = ast.parse((ROOT / "benchmarks" / "bench_conv.py").read_text(encoding="utf-8"))
    script = {t.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
              for t in node.targets if getattr(t, "id", None) in ("WORKLOADS", "POOL_WORKLOADS")}
    assert {k: tuple(v) for k, v in results["workloads"].items()} == script["WORKLOADS"]
    assert {k: tuple(v) for k, v in results["pool_workloads"].items()} == script["POOL_WORKLOADS"]
    assert {r["workload"] for r in results["rows"]} == set(script["WORKLOADS"]) | set(script["POOL_WORKLOADS"])
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"cnnref.book" = ["benchmark.json"]' in pyproject, "benchmark.json must be package data"


def test_no_chapter_imports_the_build_toolchain_or_reads_repository_files():
    bad = []
    for chapter in CHAPTERS:
        for pat in (r"^\s*(from|import)\s+(myst_nb|sphinx|jupyter_book|docutils)\b", r"\.\./", r"\bbenchmarks/"):
            for code in launch.code_cells(chapter):
                if re.search(pat, code, re.M):
                    bad.append(f"{chapter.name}: {pat}")
    assert not bad, "chapters must run with only the runtime packages, outside the repository:\n" + "\n".join(bad)


def test_glue_writes_what_myst_nb_glue_writes():
    myst_glue = pytest.importorskip("myst_nb").glue
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import Markdown

    from cnnref.book import glue

    shell = InteractiveShell.instance()
    shown = []
    publish = shell.display_pub.publish
    shell.display_pub.publish = lambda data, metadata=None, **kw: shown.append((data, metadata))
    try:
        for value in (0.8125, 7, Markdown("**W2**")):
            for display in (True, False):
                myst_glue("x", value, display=display)
                glue("x", value, display=display)
    finally:
        shell.display_pub.publish = publish
    assert len(shown) == 12
    for ours, theirs in zip(shown[1::2], shown[0::2]):
        assert ours == theirs
    with pytest.raises(TypeError, match="non-empty str"):
        glue("", 1)
