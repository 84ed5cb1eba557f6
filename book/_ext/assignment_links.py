"""Each chapter that has an assignment says so, with links to open it.

A chapter with solution cells (docs/assignments.md) gets, at the end of its introduction (before
its first ``##`` section), a box naming the functions the learner writes and linking the
assignment ``assignments/X.ipynb`` (committed; ``make assignments``) in Colab and Binder, from the
repository named in ``_config.yml``, and as a download from the built site. The box is added when
the page is read, so the chapter sources carry no copy of it.
"""

from __future__ import annotations

import re
from pathlib import Path

from launch_notebooks import ROOT, repository

import make_assignments as ma

PREFIX = "book/"
_SECTION = re.compile(r"^## ", re.M)


def assignment_box(name: str, functions: list[str], url: str, branch: str) -> str:
    """The MyST admonition that links chapter ``name``'s assignment."""
    repo = url.removeprefix("https://github.com/")
    path = f"assignments/{name}.ipynb"
    colab = f"https://colab.research.google.com/github/{repo}/blob/{branch}/{path}"
    binder = f"https://mybinder.org/v2/gh/{repo}/{branch}?urlpath=lab/tree/{path}"
    names = ", ".join(f"`{f}`" for f in functions)
    return (
        "```{admonition} Write it yourself\n"
        ":class: tip\n\n"
        f"In this chapter's assignment you write {names}; the cells that start with `# check:` "
        "grade your version and say what is wrong and where to read. Open it in "
        f"[Colab]({colab}) or [Binder]({binder}), or "
        f"{{download}}`download the notebook <../{path}>`, and grade it with "
        f"`python -m cnnref.grade {name}.ipynb`.\n"
        "```\n\n"
    )


def with_box(text: str, box: str) -> str:
    """``text`` with ``box`` before its first ``##`` section (at the end if it has none)."""
    m = _SECTION.search(text)
    return text + "\n" + box if m is None else text[: m.start()] + box + text[m.start():]


def add_assignment_box(app, docname, source):
    if not docname.startswith(PREFIX):
        return
    chapter = Path(app.srcdir) / f"{docname}.md"
    if not chapter.exists():
        return
    functions = [f for f in ma.solutions(chapter) if not f.startswith("region ")]
    if not functions:
        return
    if not (ROOT / "assignments" / f"{chapter.stem}.ipynb").exists():
        raise FileNotFoundError(f"assignments/{chapter.stem}.ipynb is missing: run `make assignments`")
    source[0] = with_box(source[0], assignment_box(chapter.stem, functions, *repository()))


def setup(app):
    app.connect("source-read", add_assignment_box)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
