"""Grade learner notebooks: run each one and report every graded check as pass or fail.

    python -m cnnref.grade PATH... [--report out.csv|out.json] [--timeout SECONDS] [--released DIR]

PATH is a notebook or a folder (searched recursively for ``*.ipynb``). Each notebook is executed
with nbclient in its own folder, in a fresh kernel, to the end: a failing cell does not stop the
run, and a cell that runs longer than ``--timeout`` seconds is interrupted. A *graded check* is a
code cell tagged ``graded`` whose first line names it, ``# check: <id>``; it passes when it runs
without an exception and fails with the exception's message otherwise (a function still raising
``NotImplementedError`` reads "not implemented yet"). A notebook that cannot run at all (not a
notebook, kernel died, no graded checks) is a failing row of its own, check ``(notebook)``.
With ``--released DIR`` (the assignments as handed out) every graded cell is taken from
``DIR/<same name>.ipynb`` before the run, so a learner who edits or deletes a check gains nothing.

The table has one row per notebook and check; ``--report`` also writes it as CSV or JSON (by the
file's extension). The last line is ``N passed, M failed``; the exit status is 0 only when nothing
failed. The notebooks come from ``make assignments`` (the book's repository,
``book/_ext/make_assignments.py``, which uses the same convention); this module needs only
nbformat, nbclient and a Jupyter kernel beside ``cnnref``, no file of the repository.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

GRADED_TAG = "graded"
NOTEBOOK_ROW = "(notebook)"
_CHECK_LINE = re.compile(r"^#\s*check:\s*(\S+)\s*$")


@dataclass
class Row:
    """One line of the summary: a check of a notebook and how it went."""

    notebook: str
    check: str
    status: str  # "PASS" or "FAIL"
    message: str = ""


def check_id(source: str) -> str | None:
    """The id a graded cell declares on its first line (``# check: weight-gradient/overlap``)."""
    first = source.lstrip("\n").split("\n", 1)[0].strip()
    m = _CHECK_LINE.match(first)
    return m.group(1) if m else None


def is_graded(cell) -> bool:
    return cell.get("cell_type") == "code" and GRADED_TAG in cell.get("metadata", {}).get("tags", [])


def failure_message(error: dict, timeout: float) -> str:
    """What a learner reads for a cell's error output (``ename``, ``evalue``)."""
    name, value = error.get("ename", "Error"), str(error.get("evalue", "")).strip()
    if name == "NotImplementedError":
        return "not implemented yet" + (f": {value}" if value else "")
    if name == "KeyboardInterrupt":
        return f"interrupted: the cell ran longer than the timeout of {timeout:g} s"
    if name == "AssertionError":
        return value or "assertion failed (the check gives no message)"
    return f"{name}: {value}" if value else name


def cell_outcome(cell, timeout: float) -> tuple[str, str]:
    """(status, message) of an executed graded cell."""
    if cell.get("execution_count") is None and not cell.get("outputs"):
        return "FAIL", "not run"
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return "FAIL", failure_message(out, timeout)
    return "PASS", ""


def restore_checks(nb, released) -> list[str]:
    """Put the released graded cells back into a learner's notebook ``nb`` (matched by check id),
    so that an edited check grades as released; return the ids of checks the learner deleted."""
    cells = {check_id(c.source): c for c in released.cells if is_graded(c)}
    present = set()
    for i, cell in enumerate(nb.cells):
        cid = check_id(cell.source) if cell.get("cell_type") == "code" else None
        if cid in cells:
            nb.cells[i] = copy.deepcopy(cells[cid])
            present.add(cid)
    return [cid for cid in cells if cid not in present]


def grade_notebook(path: Path, timeout: float = 120, name: str | None = None,
                   released: Path | None = None) -> list[Row]:
    """Execute the notebook at ``path`` (a copy in memory; the file is not changed) and grade it.

    With ``released`` (the assignment as handed out), its graded cells replace the learner's
    copies first, and a deleted check is a failing row."""
    import nbclient  # the heavy imports only where a notebook is run
    import nbformat
    from nbclient.exceptions import DeadKernelError

    name = name or str(path)
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001 - invalid JSON, not a notebook, unreadable file
        return [Row(name, NOTEBOOK_ROW, "FAIL", f"cannot read the notebook: {type(exc).__name__}: {exc}")]
    missing = []
    if released is not None:
        try:
            missing = restore_checks(nb, nbformat.read(released, as_version=4))
        except Exception as exc:  # noqa: BLE001
            return [Row(name, NOTEBOOK_ROW, "FAIL", f"cannot read the released notebook {released}: {exc}")]
    graded = [c for c in nb.cells if is_graded(c)]
    if not graded:
        return [Row(name, NOTEBOOK_ROW, "FAIL", f"no graded checks (code cells tagged {GRADED_TAG!r})")]
    for cell in nb.cells:  # grade what runs now, never outputs stored in the file
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None

    client = nbclient.NotebookClient(
        nb, timeout=timeout, allow_errors=True, interrupt_on_timeout=True, record_timing=False,
        kernel_name=nb.metadata.get("kernelspec", {}).get("name", "python3"),
        resources={"metadata": {"path": str(Path(path).resolve().parent)}},
    )
    rows, broken = [], None
    try:
        client.execute()
    except DeadKernelError as exc:
        broken = f"the kernel died: {exc}"
    except Exception as exc:  # noqa: BLE001 - no kernel, a timeout nbclient could not interrupt
        broken = f"cannot run the notebook: {type(exc).__name__}: {exc}"
    if broken:
        rows.append(Row(name, NOTEBOOK_ROW, "FAIL", broken))
    for i, cell in enumerate(graded):
        status, message = cell_outcome(cell, timeout)
        if broken and message == "not run":
            message = "not run: the notebook stopped before this check"
        rows.append(Row(name, check_id(cell.source) or f"graded cell {i + 1}", status, message))
    rows += [Row(name, cid, "FAIL", "missing: this check was deleted from the notebook") for cid in missing]
    return rows


def find_notebooks(paths: list[str]) -> list[Path]:
    """The notebooks named by ``paths``: files as given, folders searched recursively."""
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        elif p.exists():
            found.append(p)
        else:
            raise FileNotFoundError(f"no such notebook or folder: {p}")
    return found


def format_table(rows: list[Row]) -> str:
    """The summary as aligned text; a message's further lines are indented under it."""
    w_nb = max([len("notebook"), *(len(r.notebook) for r in rows)])
    w_ck = max([len("check"), *(len(r.check) for r in rows)])
    lines = [f"{'notebook':<{w_nb}}  {'check':<{w_ck}}  result  message"]
    indent = " " * (w_nb + w_ck + 12)
    for r in rows:
        first, *rest = (r.message or "").split("\n")
        lines.append(f"{r.notebook:<{w_nb}}  {r.check:<{w_ck}}  {r.status:<6}  {first}".rstrip())
        lines += [indent + line for line in rest]
    return "\n".join(lines)


def write_report(rows: list[Row], path: Path) -> None:
    """The rows as CSV (``.csv``) or JSON (``.json``: the rows and the two counts)."""
    path = Path(path)
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["notebook", "check", "status", "message"])
            writer.writeheader()
            writer.writerows(asdict(r) for r in rows)
    elif path.suffix == ".json":
        passed = sum(r.status == "PASS" for r in rows)
        doc = {"passed": passed, "failed": len(rows) - passed, "results": [asdict(r) for r in rows]}
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    else:
        raise ValueError(f"--report must end in .csv or .json, got {path.name!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnref.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a notebook, or a folder of notebooks")
    parser.add_argument("--report", metavar="FILE", help="also write the table to FILE (.csv or .json)")
    parser.add_argument("--released", metavar="FOLDER",
                        help="the assignments as handed out: each notebook's graded cells are taken "
                             "from FOLDER/<same name>, so edited or deleted checks still count")
    parser.add_argument("--timeout", type=float, default=120, metavar="S",
                        help="seconds a cell may run before it is interrupted (default 120)")
    args = parser.parse_args(argv)
    if args.report and Path(args.report).suffix not in (".csv", ".json"):
        parser.error(f"--report must end in .csv or .json, got {args.report!r}")
    try:
        notebooks = find_notebooks(args.paths)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    if not notebooks:
        parser.error(f"no notebooks (*.ipynb) in {' '.join(args.paths)}")

    rows = []
    for path in notebooks:
        print(f"grading {path} ...", file=sys.stderr, flush=True)
        released = Path(args.released) / path.name if args.released else None
        if released is not None and not released.exists():
            rows.append(Row(str(path), NOTEBOOK_ROW, "FAIL", f"no released notebook {released}"))
            continue
        rows += grade_notebook(path, args.timeout, released=released)
    print(format_table(rows))
    if args.report:
        write_report(rows, Path(args.report))
    failed = sum(r.status != "PASS" for r in rows)
    print(f"{len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
