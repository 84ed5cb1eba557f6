"""Learner notebooks from the chapters: solutions stubbed out, graded checks kept, outputs cleared.

    python book/_ext/make_assignments.py [book/X.md ...] [--out _build/assignments]

(``make assignments``: every chapter.) A chapter gets an assignment ``<out>/X.ipynb`` only when it
has at least one solution cell. The convention (docs/assignments.md):

* a code cell tagged ``solution`` holds one or more regions ``### BEGIN SOLUTION`` …
  ``### END SOLUTION`` (each marker alone on its line); the assignment replaces each region with
  ``raise NotImplementedError("<function>")`` at the marker's indentation, so the signature
  and docstring written outside the region stay;
* a code cell tagged ``graded`` is a graded check: its first line is ``# check: <id>`` (ids unique
  in the chapter); it is kept as it is and ``python -m cnnref.grade`` reports it;
* a cell tagged ``assignment-remove`` is dropped, and so is every gated exercise solution: the
  Markdown from a ``{solution-start}`` fence to the end of the following ``{solution-end}`` block,
  and every cell in between (jupytext keeps these fences inside Markdown cells), as well as any
  ``{solution}`` directive block;
* everything else is kept (the install cell too), every output and execution count cleared.

Malformed markers stop the run with an ``AssignmentError`` that names the chapter and cell: a
BEGIN without END or the reverse, nested regions, markers that differ in indentation or spelling
(``## BEGIN SOLUTION``), markers outside a ``solution`` cell, a ``solution`` cell without markers,
a graded cell without ``# check:`` (or a ``# check:`` line in an untagged cell), duplicate check ids,
a ``{solution-start}`` without ``{solution-end}``.
"""

from __future__ import annotations

import argparse
import copy
import re
import textwrap
import sys
from pathlib import Path

import jupytext
import nbformat

from cnnref.grade import GRADED_TAG, check_id

ROOT = Path(__file__).resolve().parents[2]
SOLUTION_TAG = "solution"
REMOVE_TAG = "assignment-remove"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
# Anything that looks like a marker; an exact marker is one of BEGIN/END alone on its line.
_MARKER_LIKE = re.compile(r"^\s*#+\s*(BEGIN|END)\s+SOLUTION\b", re.I)
_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)")
YOUR_CODE = "# YOUR CODE HERE"
_STUB = re.compile(r'^(\s*)raise NotImplementedError\("([^"]+)"\)\s*$')
_FENCE = re.compile(r"^\s*(`{3,}|:{3,})\s*(\{[\w-]+\})?")


class AssignmentError(ValueError):
    """A chapter's assignment markers are malformed."""


def stub_source(source: str, where: str, keys: set[str] | None = None) -> tuple[str, dict[str, str]]:
    """``source`` with every solution region replaced by a stub, and the regions' code.

    A region inside ``def f`` becomes ``# YOUR CODE HERE`` and ``raise NotImplementedError("f")``
    at the indentation of its ``### BEGIN SOLUTION``; the key ``"f"`` (``"f (2)"`` for a second region
    of ``f``; ``"region N"`` outside any function) maps to the region's code, dedented. ``keys`` are
    the keys already used in the chapter (updated)."""
    keys = set() if keys is None else keys
    out, bodies, region = [], {}, None  # region: [indent, key, lines] while inside one
    lines = source.split("\n")
    for n, line in enumerate(lines, 1):
        stripped = line.strip()
        if _MARKER_LIKE.match(line) and stripped not in (BEGIN, END):
            raise AssignmentError(f"{where}, line {n}: malformed marker {stripped!r} (write {BEGIN!r} or {END!r})")
        indent = line[: len(line) - len(line.lstrip())]
        if stripped == BEGIN:
            if region:
                raise AssignmentError(f"{where}, line {n}: {BEGIN!r} inside a region (nested regions)")
            region = [indent, _new_key(_enclosing_function(lines[: n - 1], indent), keys), []]
            continue
        if stripped == END:
            if region is None:
                raise AssignmentError(f"{where}, line {n}: {END!r} without {BEGIN!r}")
            if indent != region[0]:
                raise AssignmentError(f"{where}, line {n}: {END!r} is not indented like its {BEGIN!r}")
            out += [f"{indent}{YOUR_CODE}", f'{indent}raise NotImplementedError("{region[1]}")']
            bodies[region[1]] = textwrap.dedent("\n".join(region[2])).strip("\n")
            region = None
            continue
        (out if region is None else region[2]).append(line)
    if region:
        raise AssignmentError(f"{where}: {BEGIN!r} without {END!r}")
    return "\n".join(out), bodies


def _new_key(function: str | None, keys: set[str]) -> str:
    base = function or f"region {sum(k.startswith('region ') for k in keys) + 1}"
    key, n = base, 1
    while key in keys:
        n += 1
        key = f"{base} ({n})"
    keys.add(key)
    return key


def fill(nb, bodies: dict[str, str]):
    """A copy of assignment ``nb`` with the stubs named in ``bodies`` replaced by that code.

    ``fill(nb, solutions(chapter))`` puts the book's solutions back; replacing one body plants a
    bug (``{**solutions(ch), "f": "return 0"}``). Raises KeyError for a key with no stub."""
    nb, todo = copy.deepcopy(nb), dict(bodies)
    for cell in nb.cells:
        if cell.cell_type != "code" or SOLUTION_TAG not in cell.metadata.get("tags", []):
            continue
        out = []
        for line in cell.source.split("\n"):
            m = _STUB.match(line)
            if m and m.group(2) in todo:
                if out and out[-1].strip() == YOUR_CODE:
                    out.pop()
                out += textwrap.indent(todo.pop(m.group(2)), m.group(1), lambda _: True).split("\n")
            else:
                out.append(line)
        cell.source = "\n".join(out)
    if todo:
        raise KeyError(f"no stub for {sorted(todo)} in the assignment")
    return nb


def solutions(chapter: str | Path) -> dict[str, str]:
    """The code of every solution region of ``chapter``, by key (see ``stub_source``)."""
    keys, found = set(), {}
    for k, cell in enumerate(jupytext.read(Path(chapter)).cells, 1):
        if cell.cell_type == "code" and SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            found.update(stub_source(cell.source, f"{Path(chapter).name}, cell {k}", keys)[1])
    return found


def _enclosing_function(before: list[str], indent: str) -> str | None:
    """The name of the innermost ``def`` above the region that the region's indentation is inside."""
    for line in reversed(before):
        m = _DEF.match(line)
        if m and len(m.group(1)) < len(indent):
            return m.group(2)
    return None


def _drop_exercise_solutions(text: str, in_solution: bool, where: str) -> tuple[str, bool]:
    """Markdown ``text`` without gated solutions (``solution-start`` … ``solution-end``) and
    ``{solution}`` blocks; ``in_solution`` carries the state across cells."""
    kept, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        directive = m.group(2) if m else None
        if directive in ("{solution-start}", "{solution-end}", "{solution}"):
            if (directive == "{solution-start}") == in_solution and directive != "{solution}":
                state = "inside" if in_solution else "outside"
                raise AssignmentError(f"{where}: {directive} {state} a gated solution")
            if directive == "{solution}" and in_solution:
                raise AssignmentError(f"{where}: {{solution}} inside a gated solution")
            i = _closing_fence(lines, i, m.group(1), where) + 1
            in_solution = directive == "{solution-start}"
            continue
        if not in_solution:
            kept.append(lines[i])
        i += 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n"), in_solution


def _closing_fence(lines: list[str], start: int, fence: str, where: str) -> int:
    for j in range(start + 1, len(lines)):
        s = lines[j].strip()
        if s and set(s) == {fence[0]} and len(s) >= len(fence):
            return j
    raise AssignmentError(f"{where}: the directive opened by {lines[start].strip()!r} is never closed")


def header(name: str, book_url: str | None = None) -> str:
    """The Markdown cell an assignment opens with: what to do, and how it is graded."""
    chapter = f"[the chapter]({book_url.rstrip('/')}/book/{name}.html)" if book_url else "the chapter"
    return (
        f"**Assignment `{name}`.** This notebook is {chapter} with the solutions taken out. Write the "
        "body of every function that raises `NotImplementedError` (keep its name and arguments), then "
        "run all cells. The cells that start with `# check:` are the graded checks: each one fails "
        "with a message saying what is wrong and where to read. Grade yourself with "
        f"`python -m cnnref.grade {name}.ipynb` (needs `cnnref` installed, as the next cell does)."
    )


def make_assignment(chapter: str | Path, book_url: str | None = None):
    """The learner notebook of ``chapter`` (``book/X.md`` or a notebook), or None when the chapter
    has no solution cell. Raises AssignmentError on malformed markers."""
    chapter = Path(chapter)
    src = jupytext.read(chapter)
    cells, in_solution, seen, n_solutions, keys = [], False, {}, 0, set()
    for k, cell in enumerate(src.cells, 1):
        first = cell.source.strip().split("\n", 1)[0][:60]
        where = f"{chapter.name}, cell {k} ({first!r})"
        tags = list(cell.get("metadata", {}).get("tags", []))
        if cell.cell_type == "markdown":
            if any(x.strip() in (BEGIN, END) for x in cell.source.split("\n")):
                raise AssignmentError(f"{where}: solution markers in a Markdown cell (only code cells are stubbed)")
            text, in_solution = _drop_exercise_solutions(cell.source, in_solution, where)
            if text and REMOVE_TAG not in tags:
                cells.append(nbformat.v4.new_markdown_cell(text, metadata=dict(cell.metadata)))
            continue
        if cell.cell_type != "code" or in_solution or REMOVE_TAG in tags:
            continue
        source, graded, solution = cell.source, GRADED_TAG in tags, SOLUTION_TAG in tags
        has_markers = any(_MARKER_LIKE.match(x) for x in source.split("\n"))
        cid = check_id(source)
        if graded and solution:
            raise AssignmentError(f"{where}: tagged both {GRADED_TAG!r} and {SOLUTION_TAG!r}")
        if has_markers and not solution:
            raise AssignmentError(f"{where}: solution markers in a cell not tagged {SOLUTION_TAG!r}")
        if solution:
            if not has_markers:
                raise AssignmentError(f"{where}: tagged {SOLUTION_TAG!r} but has no {BEGIN!r} … {END!r} region")
            source, n_solutions = stub_source(source, where, keys)[0], n_solutions + 1
        if graded and cid is None:
            raise AssignmentError(f"{where}: a {GRADED_TAG!r} cell must start with a line '# check: <id>'")
        if cid is not None and not graded:
            raise AssignmentError(f"{where}: '# check: {cid}' in a cell not tagged {GRADED_TAG!r}")
        if graded and cid in seen:
            raise AssignmentError(f"{where}: check id {cid!r} already used by cell {seen[cid]}")
        if graded:
            seen[cid] = k
        cells.append(nbformat.v4.new_code_cell(source, metadata=dict(cell.metadata)))
    if in_solution:
        raise AssignmentError(f"{chapter.name}: a {{solution-start}} without {{solution-end}}")
    if not n_solutions:
        return None
    cells.insert(0, nbformat.v4.new_markdown_cell(header(chapter.stem, book_url), metadata={"tags": ["assignment-header"]}))
    meta = {k: v for k, v in src.metadata.items() if k in ("kernelspec", "language_info")}
    meta.setdefault("kernelspec", {"display_name": "Python 3", "language": "python", "name": "python3"})
    nb = nbformat.v4.new_notebook(cells=cells, metadata=meta)
    for i, cell in enumerate(nb.cells):  # ids from the position, not random: the same chapter
        cell.id = f"{chapter.stem}-{i:03d}"  # gives the same file (assignments/ is committed)
    nbformat.validate(nb)
    return nb


def write_assignments(chapters: list[Path], out: Path, book_url: str | None = None) -> list[Path]:
    """Write ``out/X.ipynb`` for every chapter that has solution cells; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for chapter in chapters:
        nb = make_assignment(chapter, book_url)
        if nb is not None:
            path = out / f"{Path(chapter).stem}.ipynb"
            nbformat.write(nb, path)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", type=Path, help="chapters (default: every book/*.md chapter)")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "assignments")
    parser.add_argument("--book-url", help="the published book, to link each assignment to its chapter")
    args = parser.parse_args(argv)
    if args.chapters:
        chapters = args.chapters
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from launch_notebooks import chapter_paths

        chapters = chapter_paths()
    try:
        written = write_assignments(chapters, args.out, args.book_url)
    except AssignmentError as exc:
        print(f"make_assignments: {exc}", file=sys.stderr)
        return 1
    if not args.chapters:  # every chapter: an assignment whose chapter lost its solutions goes
        for stale in set(args.out.glob("*.ipynb")) - set(written):
            stale.unlink()
            print(f"removed {stale} (its chapter has no solution cell)")
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} assignment(s) from {len(chapters)} chapter(s) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
