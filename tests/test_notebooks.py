"""Chapters and their paired notebooks: book/X.md (MyST Markdown notebook) <-> notebooks/X.ipynb.

jupytext's own `--sync` (goes by mtime) and `--diff` (exits 0) cannot gate CI, so this compares
the pairs cell by cell, and checks that every notebook is committed executed top to bottom: each
non-empty code cell has an execution count, the counts run 1, 2, 3, ... in order, no cell stored
an error. Whether the stored outputs are the right ones is strict nbval's job (`make nbval`).
With no chapters yet, the checks pass trivially. The second half tests the checks themselves.
"""

from pathlib import Path

import jupytext
import nbformat
import pytest

import ledger  # book/_ext/ledger.py (on sys.path via tests/conftest.py): reads _toc.yml
from launch_notebooks import chapter_paths, is_chapter  # noqa: F401 (book/_ext; is_chapter: tested below)

ROOT = Path(__file__).resolve().parents[1]
BOOK, NOTEBOOKS = ROOT / "book", ROOT / "notebooks"
# Cell metadata that execution or a notebook UI changes without the author meaning it.
VOLATILE_METADATA = {"execution", "ExecuteTime", "scrolled", "collapsed", "trusted", "editable", "deletable"}


def chapters(book=BOOK) -> list[str]:
    return [p.stem for p in chapter_paths(book)]


def notebooks(nb_dir=NOTEBOOKS) -> list[str]:
    return sorted(p.stem for p in Path(nb_dir).glob("*.ipynb"))


def _cells(nb):
    return [
        (c.cell_type, c.source.strip(), {k: v for k, v in c.get("metadata", {}).items() if k not in VOLATILE_METADATA})
        for c in nb.cells
    ]


def pair_problems(md: Path, ipynb: Path) -> list[str]:
    """How the cells of the notebook differ from those of its Markdown source (empty: in sync)."""
    text_nb = jupytext.read(md)
    ipynb_nb = nbformat.read(ipynb, as_version=4)
    a, b = _cells(text_nb), _cells(ipynb_nb)
    problems = []
    if len(a) != len(b):
        problems.append(f"{md.name} has {len(a)} cells, {ipynb.name} has {len(b)}")
    for k, (ca, cb) in enumerate(zip(a, b)):
        for what, x, y in zip(("type", "source", "metadata"), ca, cb):
            if x != y:
                problems.append(f"cell {k + 1}: {what} differs: {md.name} has {x!r:.120}, {ipynb.name} has {y!r:.120}")
                break
        if len(problems) >= 5:
            break
    kernel_md = text_nb.metadata.get("kernelspec", {}).get("name")
    kernel_nb = ipynb_nb.metadata.get("kernelspec", {}).get("name")
    if kernel_md != kernel_nb:
        problems.append(f"kernelspec differs: {kernel_md!r} vs {kernel_nb!r}")
    return problems


def output_problems(ipynb: Path) -> list[str]:
    """How the notebook fails to be stored executed top to bottom (empty: fine)."""
    nb = nbformat.read(ipynb, as_version=4)
    problems = []
    expected = 1
    for k, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        count = cell.get("execution_count")
        if count is None:
            problems.append(f"code cell {k} has no stored execution (execution_count is null)")
        elif count != expected:
            problems.append(f"code cell {k} has execution count {count}, expected {expected} (not run top to bottom)")
        expected = (count or expected) + 1
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"code cell {k} stored an error: {out.get('ename')}: {out.get('evalue')}")
    return problems


def _report(problems: dict, limit: int = 6) -> str:
    out = []
    for name, p in problems.items():
        if p:
            more = [f"... and {len(p) - limit} more"] if len(p) > limit else []
            out.append(f"{name}:\n  " + "\n  ".join(p[:limit] + more))
    return "\n".join(out)


# --- the repository ---------------------------------------------------------------------------

def test_every_chapter_has_a_notebook_and_every_notebook_a_chapter():
    md, nb = set(chapters()), set(notebooks())
    assert not md - nb, f"chapters without notebooks/X.ipynb (run `make notebooks`): {sorted(md - nb)}"
    assert not nb - md, f"notebooks without a chapter book/X.md: {sorted(nb - md)}"


def test_every_chapter_is_in_the_toc():
    files = set(ledger.toc_files(ROOT) or [])
    missing = [f"book/{name}" for name in chapters() if BOOK / f"{name}.md" not in files]
    assert not missing, f"chapters not listed in _toc.yml (they would not be built): {missing}"


def test_pairs_have_the_same_cells():
    problems = {n: pair_problems(BOOK / f"{n}.md", NOTEBOOKS / f"{n}.ipynb")
                for n in chapters() if (NOTEBOOKS / f"{n}.ipynb").exists()}
    if any(problems.values()):
        pytest.fail("book/*.md and notebooks/*.ipynb differ (run `make notebooks`):\n" + _report(problems))


def test_notebooks_are_stored_executed_in_order():
    problems = {n: output_problems(NOTEBOOKS / f"{n}.ipynb") for n in notebooks()}
    if any(problems.values()):
        pytest.fail("notebooks not stored executed top to bottom (run `make notebooks`):\n" + _report(problems))


# --- the checks themselves ----------------------------------------------------------------------

CHAPTER = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A chapter

```{code-cell} ipython3
x = 1
```

Some text.

```{code-cell} ipython3
:tags: [hide-input]
print(x)
```
"""


@pytest.fixture
def pair(tmp_path):
    """A chapter and its notebook, stored as if executed (no kernel needed)."""
    (tmp_path / "book").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book" / "plain.md").write_text("# Just a page\n", encoding="utf-8")
    md = tmp_path / "book" / "ch.md"
    md.write_text(CHAPTER, encoding="utf-8")
    nb = jupytext.read(md)
    nb.cells[1].execution_count = 1
    nb.cells[3].execution_count = 2
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells[1].metadata["execution"] = {"iopub.status.busy": "2025-01-01T00:00:00"}
    ipynb = tmp_path / "notebooks" / "ch.ipynb"
    nbformat.write(nb, ipynb)
    return md, ipynb


def test_check_finds_chapters_not_plain_pages(pair):
    md, ipynb = pair
    assert chapters(md.parent) == ["ch"]
    assert notebooks(ipynb.parent) == ["ch"]


def test_check_accepts_a_pair_in_sync(pair):
    assert pair_problems(*pair) == []
    assert output_problems(pair[1]) == []


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace("print(x)", "print(x + 1)"), "cell 4: source differs"),
    (lambda s: s.replace("Some text.", "Other text."), "cell 3: source differs"),
    (lambda s: s.replace("[hide-input]", "[hide-output]"), "cell 4: metadata differs"),
    (lambda s: s + "\n```{code-cell} ipython3\ny = 2\n```\n", "has 5 cells"),
])
def test_check_detects_a_changed_chapter(pair, edit, message):
    md, ipynb = pair
    md.write_text(edit(md.read_text(encoding="utf-8")), encoding="utf-8")
    problems = pair_problems(md, ipynb)
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize("counts, message", [
    ((None, 2), "code cell 2 has no stored execution"),
    ((1, None), "code cell 4 has no stored execution"),
    ((2, 1), "expected 1"),
    ((1, 3), "expected 2"),
])
def test_check_detects_unexecuted_or_out_of_order_notebooks(pair, counts, message):
    _, ipynb = pair
    nb = nbformat.read(ipynb, as_version=4)
    nb.cells[1].execution_count, nb.cells[3].execution_count = counts
    nbformat.write(nb, ipynb)
    problems = output_problems(ipynb)
    assert any(message in p for p in problems), problems


def test_check_detects_stored_errors(pair):
    _, ipynb = pair
    nb = nbformat.read(ipynb, as_version=4)
    nb.cells[3].outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[])]
    nbformat.write(nb, ipynb)
    assert any("stored an error: ValueError: bad" in p for p in output_problems(ipynb))
