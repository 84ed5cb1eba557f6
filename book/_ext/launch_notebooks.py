"""Where a reader runs a chapter: launch buttons, and the install cell that makes Colab work.

1. Launch buttons open ``notebooks/X.ipynb``, not the chapter source ``book/X.md``.
   sphinx-book-theme builds the Binder/Colab URLs from the page's source file; chapters are paired
   with ``notebooks/X.ipynb`` (committed with outputs), which is what a reader should open. The
   page-context handler runs after the theme's (priority 501) and rewrites the path in those URLs.

2. The repository is named in one place, ``repository.url`` and ``repository.branch`` in
   ``_config.yml``. The launch buttons take it from there, and so does each chapter's first code
   cell, which installs ``cnnref`` from that repository where it is missing (a fresh Colab
   runtime) and does nothing where it is importable (the book build, nbval, Binder, a local
   environment). The cell is removed from the HTML (tag ``remove-cell``); the intro page shows the
   same command through the substitution ``{{ cnnref_pip }}``.

   ``python book/_ext/launch_notebooks.py --write`` puts the current cell into every chapter
   (then ``make notebooks``); ``tests/test_launch.py`` fails when a chapter's cell differs.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PREFIX_BOOK, PREFIX_NB = "book/", "notebooks/"
INSTALL_TAG = "remove-cell"
_CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```[ \t]*\n", re.S | re.M)
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)


def is_chapter(md: Path) -> bool:
    """A MyST Markdown notebook: front matter with a kernelspec (plain pages have none)."""
    m = _FRONT_MATTER.match(md.read_text(encoding="utf-8"))
    return bool(m) and "kernelspec" in (yaml.safe_load(m.group(1)) or {})


def chapter_paths(book: Path = ROOT / "book") -> list[Path]:
    """The chapters ``book/X.md`` (the notebooks of the book), sorted by name."""
    return sorted(p for p in Path(book).glob("*.md") if is_chapter(p))


def repository(config: Path = ROOT / "_config.yml") -> tuple[str, str]:
    """(URL, branch) of the book's repository, from ``_config.yml``."""
    repo = yaml.safe_load(config.read_text(encoding="utf-8"))["repository"]
    return repo["url"].rstrip("/"), repo.get("branch", "main")


def pip_requirement(url: str, branch: str) -> str:
    """The pip requirement that installs cnnref from the repository."""
    return f"cnnref @ git+{url}@{branch}"


def install_cell(url: str, branch: str) -> str:
    """The MyST source of the chapters' install cell (the first code cell of every chapter)."""
    return (
        "```{code-cell} ipython3\n"
        f":tags: [{INSTALL_TAG}]\n"
        "\n"
        "# Installs cnnref where it is missing (a fresh Colab runtime); elsewhere it does nothing.\n"
        "import importlib.util\n"
        "\n"
        'if importlib.util.find_spec("cnnref") is None:\n'
        f'    %pip install --quiet "{pip_requirement(url, branch)}"\n'
        "```\n"
    )


def first_code_cell(text: str) -> re.Match | None:
    return _CODE_CELL.search(text)


def code_cells(md: Path) -> list[str]:
    """The code of every code cell of the chapter ``md``, without the cell's ``:key:`` metadata lines."""
    cells = []
    for m in _CODE_CELL.finditer(md.read_text(encoding="utf-8")):
        lines = m.group(1).split("\n")
        while lines and lines[0].startswith(":"):
            lines.pop(0)
        cells.append("\n".join(lines).strip("\n"))
    return cells


def with_install_cell(text: str, cell: str) -> str:
    """The chapter ``text`` with ``cell`` as its first code cell (replacing an older install cell)."""
    m = first_code_cell(text)
    if m is None:
        raise ValueError("the chapter has no code cell")
    if f":tags: [{INSTALL_TAG}]" in m.group(0) and "find_spec(\"cnnref\")" in m.group(0):
        return text[: m.start()] + cell + text[m.end():]
    return text[: m.start()] + cell + "\n" + text[m.start():]


def notebook_path(pagename: str) -> str | None:
    """``book/X`` -> ``notebooks/X.ipynb``; None for pages outside ``book/``."""
    if not pagename.startswith(PREFIX_BOOK):
        return None
    return PREFIX_NB + pagename[len(PREFIX_BOOK):] + ".ipynb"


def rewrite_launch_urls(app, pagename, templatename, context, doctree):
    target = notebook_path(pagename)
    if target is None:
        return
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            url = button.get("url") or ""
            # Binder: ...?urlpath=lab/tree/book/X.md   Colab: .../blob/main/book/X.md
            for src in (pagename + ".md", pagename + ".ipynb"):
                if url.endswith("/" + src):
                    button["url"] = url[: -len(src)] + target


def add_install_substitution(app, config):
    url = config.html_theme_options["repository_url"].rstrip("/")
    branch = config.html_theme_options.get("repository_branch") or "main"
    config.myst_substitutions = {
        **config.myst_substitutions,
        "cnnref_pip": f'`%pip install "{pip_requirement(url, branch)}"`',
    }


def setup(app):
    app.connect("config-inited", add_install_substitution)
    app.connect("html-page-context", rewrite_launch_urls, priority=900)
    return {"version": "0.2", "parallel_read_safe": True, "parallel_write_safe": True}


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print("usage: python book/_ext/launch_notebooks.py --write  (then: make notebooks)")
        return 2
    cell = install_cell(*repository())
    for md in chapter_paths():
        text = md.read_text(encoding="utf-8")
        new = with_install_cell(text, cell)
        if new != text:
            md.write_text(new, encoding="utf-8")
            print(f"updated {md.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
