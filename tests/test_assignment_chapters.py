"""Every chapter's assignment, built and graded.

The committed copies in ``assignments/`` are what ``make assignments`` makes from the chapters
today, and no solution survives in them. Graded with :func:`cnnref.grade.grade_notebook`, each
unmodified assignment fails every graded check, with the solutions put back it passes every
one, and each planted mistake of ``tests/assignment_plants.py`` fails exactly the checks meant
to catch it. The grading tests run every assignment notebook, so they are marked
``assignments`` (``make grade``, a stage of ``make test``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import make_assignments as ma  # noqa: E402
from assignment_plants import PLANTS  # noqa: E402
from launch_notebooks import chapter_paths  # noqa: E402

from cnnref.grade import grade_notebook  # noqa: E402
from cnnref.teaching import bug_gallery  # noqa: E402

COMMITTED = ROOT / "assignments"
ASSIGNMENTS = {p.stem: ma.make_assignment(p) for p in chapter_paths()}
ASSIGNMENTS = {k: nb for k, nb in ASSIGNMENTS.items() if nb is not None}
NAMES = sorted(ASSIGNMENTS)
SOLUTIONS = {name: ma.solutions(ROOT / "book" / f"{name}.md") for name in NAMES}
TIMEOUT = 300  # seconds per cell; a chapter's slowest cell takes a few


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _graded_ids(nb) -> list[str]:
    from cnnref.grade import check_id, is_graded

    return [check_id(c.source) for c in nb.cells if is_graded(c)]


def _grade(nb, tmp_path, name):
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    rows = grade_notebook(path, timeout=TIMEOUT, name=name)
    assert not [r for r in rows if r.check == "(notebook)"], rows
    return {r.check: r for r in rows}


def _planted_body(plant, solution: str) -> str:
    """The wrong body of ``plant``: its ``body``, or its ``replace`` edits of the solution."""
    if "body" in plant:
        return plant["body"]
    for old, new in plant["replace"]:
        assert old in solution, f"{plant['what']}: {old!r} is not in the solution any more"
        solution = solution.replace(old, new)
    return solution


@pytest.mark.parametrize("plant", PLANTS, ids=lambda p: f"{p['chapter']}:{p['what']}")
def test_every_plant_names_a_solution_and_real_checks(plant):
    name = plant["chapter"]
    assert name in ASSIGNMENTS, f"{name} has no assignment"
    bodies = SOLUTIONS[name]
    assert plant["function"] in bodies
    wrong = _planted_body(plant, bodies[plant["function"]])
    assert wrong.strip() != bodies[plant["function"]].strip(), "the plant changes nothing"
    ids = _graded_ids(ASSIGNMENTS[name])
    assert plant["fails"] and set(plant["fails"]) <= set(ids), (plant["fails"], ids)
    assert set(plant["fails"]) != set(ids), "a plant that fails every check names no mistake"


def test_the_chapters_have_assignments():
    assert len(NAMES) >= 10, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_the_committed_assignment_is_what_the_chapter_makes(name):
    path = COMMITTED / f"{name}.ipynb"
    assert path.exists(), f"{path} is missing: run `make assignments`"
    committed = nbformat.read(path, as_version=4)
    made = ASSIGNMENTS[name]
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in made.cells
    ], f"{path} is stale: run `make assignments`"


def test_no_committed_assignment_without_its_chapter():
    stale = sorted({p.stem for p in COMMITTED.glob("*.ipynb")} - set(NAMES))
    assert not stale, f"assignments without a chapter that has solutions: {stale}"


@pytest.mark.parametrize("name", NAMES)
def test_no_solution_survives(name):
    nb, bodies = ASSIGNMENTS[name], SOLUTIONS[name]
    code = "\n".join(_code(nb))
    assert ma.BEGIN not in code and ma.END not in code
    stubs = [s for s in _code(nb) if "raise NotImplementedError(" in s]
    assert len(stubs) >= 1
    for function, body in bodies.items():
        lines = [x.strip() for x in body.splitlines() if x.strip() and not x.strip().startswith("#")]
        assert body.strip() not in code, f"{name}: the solution of {function} survives"
        for stub in stubs:
            kept = {x.strip() for x in stub.splitlines()}
            assert not [x for x in lines if x in kept and len(x) > 8], (name, function)
    assert len(_graded_ids(nb)) >= 3, f"{name}: fewer than 3 graded checks"


def test_every_bug_of_the_gallery_is_planted():
    planted = {p["bug"] for p in PLANTS if p.get("bug")}
    assert planted == set(bug_gallery.__all__), sorted(set(bug_gallery.__all__) - planted)


@pytest.mark.assignments
@pytest.mark.parametrize("name", NAMES)
def test_the_unmodified_assignment_fails_every_check(name, tmp_path):
    rows = _grade(ASSIGNMENTS[name], tmp_path, name)
    assert set(rows) == set(_graded_ids(ASSIGNMENTS[name]))
    passed = [r.check for r in rows.values() if r.status == "PASS"]
    assert not passed, f"{name}: checks pass without any work: {passed}"


@pytest.mark.assignments
@pytest.mark.parametrize("name", NAMES)
def test_the_solutions_put_back_pass_every_check(name, tmp_path):
    solved = ma.fill(ASSIGNMENTS[name], SOLUTIONS[name])
    rows = _grade(solved, tmp_path, name)
    failed = {r.check: r.message for r in rows.values() if r.status != "PASS"}
    assert not failed, f"{name}: {failed}"


@pytest.mark.assignments
@pytest.mark.parametrize("plant", PLANTS, ids=lambda p: f"{p['chapter']}:{p['what']}")
def test_a_planted_mistake_fails_exactly_its_checks(plant, tmp_path):
    name = plant["chapter"]
    bodies = dict(SOLUTIONS[name])
    bodies[plant["function"]] = _planted_body(plant, bodies[plant["function"]])
    rows = _grade(ma.fill(ASSIGNMENTS[name], bodies), tmp_path, name)
    failed = sorted(r.check for r in rows.values() if r.status != "PASS")
    assert failed == sorted(plant["fails"]), (failed, {r.check: r.message for r in rows.values()})
