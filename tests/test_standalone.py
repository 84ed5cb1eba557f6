"""Every chapter runs as a notebook on its own, as on Colab or Binder (``make standalone``).

For each pytest worker: build the cnnref wheel from a copy of the package's files, make a fresh
virtual environment with only Binder's requirements (the runtime packages) and a Jupyter kernel,
then install cnnref *the way Colab does*: by running a chapter's own first cell, with its
``git+<repository>`` requirement pointed at the wheel (nothing else in the cell changes). Then
every notebook is copied alone into an empty temporary folder and executed top to bottom with that
environment's kernel; the install cell finds cnnref and does nothing.

Offline: packages come from the wheelhouse that ``make standalone`` downloads beforehand
(``$CNNBOOK_WHEELHOUSE``), the way ``make venv`` downloads the development environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

import launch_notebooks as launch  # book/_ext/launch_notebooks.py
from helpers import TOOLCHAIN

pytestmark = pytest.mark.standalone

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 120
# The one notebook whose install cell installs cnnref; any chapter would do (the cells are equal).
COLAB_PROBE = "convolution"


def run(*args, **kw):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def execute(path: Path, kernel_dirs: list[str]) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    km = KernelManager(kernel_name="standalone", kernel_spec_manager=KernelSpecManager(kernel_dirs=kernel_dirs))
    NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A fresh environment with the runtime requirements and cnnref installed by an install cell."""
    wheelhouse = os.environ.get("CNNBOOK_WHEELHOUSE")
    if not wheelhouse or not Path(wheelhouse).is_dir():
        pytest.fail("CNNBOOK_WHEELHOUSE does not name the wheelhouse: run `make standalone`")
    tmp = tmp_path_factory.mktemp("standalone")
    offline = ["--no-index", "--find-links", wheelhouse, "--quiet"]

    src = tmp / "src"  # only what the package is built from
    shutil.copytree(ROOT / "cnnref", src / "cnnref", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", *offline, "-w", tmp / "dist", src)
    (wheel,) = (tmp / "dist").glob("cnnref-*.whl")

    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", venv)
    py = venv / "bin" / "python"
    run(py, "-m", "pip", "install", *offline, "-r", ROOT / "binder" / "requirements.txt", "ipykernel")
    run(py, "-m", "ipykernel", "install", "--prefix", venv, "--name", "standalone")
    kernel_dirs = [str(venv / "share" / "jupyter" / "kernels")]
    frozen = run(py, "-m", "pip", "freeze").lower()
    assert "cnnref" not in frozen
    assert not [t for t in TOOLCHAIN if f"\n{t}==" in "\n" + frozen], f"toolchain in the runtime env:\n{frozen}"

    # Colab: a fresh runtime without cnnref runs the chapter's first cell.
    nb = nbformat.read(ROOT / "notebooks" / f"{COLAB_PROBE}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    requirement = launch.pip_requirement(*launch.repository())
    assert f'"{requirement}"' in cell.source
    cell.source = cell.source.replace(requirement, f"cnnref @ {wheel.as_uri()}")
    nb.cells = [cell, nbformat.v4.new_code_cell("import cnnref\nprint(cnnref.__name__)")]
    probe = tmp / "colab" / "probe.ipynb"
    probe.parent.mkdir()
    nbformat.write(nb, probe)
    done = execute(probe, kernel_dirs)
    printed = "".join(o.get("text", "") for o in done.cells[1].outputs if o.output_type == "stream")
    assert printed == "cnnref\n"  # (a print may arrive as several stream messages)
    assert "cnnref" in run(py, "-m", "pip", "freeze").lower()
    return kernel_dirs


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_alone_in_an_empty_folder(notebook, kernel, tmp_path):
    copy = tmp_path / notebook.name
    shutil.copy(notebook, copy)
    nb = execute(copy, kernel)  # raises CellExecutionError, with the traceback, on the first failing cell
    ran = [c.execution_count for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert ran == list(range(1, len(ran) + 1))
