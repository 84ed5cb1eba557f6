"""Assignments: the stripper (book/_ext/make_assignments.py) and the grader (cnnref.grade), on the
fixture chapter tests/fixtures/assignments/corr1d.md (two solution functions, five graded checks).

The graded notebooks are executed once per module, in four concurrent runs of the command line
``python -m cnnref.grade``: (1) a folder holding the unmodified assignment, the assignment with the
solutions put back, one notebook per planted bug and a file that is not a notebook; (2) the solved
assignment alone in an empty folder (a CSV report); (3) a notebook whose graded check never ends
and one whose kernel dies, with a short timeout; (4) a learner's notebook with an edited and a
deleted check, graded against the released assignment (``--released``).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

import make_assignments as ma  # book/_ext (on sys.path via conftest.py)
from cnnref import grade

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "assignments" / "corr1d.md"
CHECKS = ["corr1d/forward-sum", "corr1d/forward-no-flip", "corr1d/input-grad-fd",
          "corr1d/input-grad-overlap", "corr1d/input-grad-flip"]
# A planted bug: (function, text in its solution, replacement) and the checks meant to catch it;
# every other check must still pass (the bugs are invisible to them).
BUGS = {
    "forward-convolves": (("correlate1d", "np.dot(k, x", "np.dot(k[::-1], x"),
                          {"corr1d/forward-sum", "corr1d/forward-no-flip"}),
    "grad-assigns": (("correlate1d_input_grad", "+=", "="),
                     {"corr1d/input-grad-fd", "corr1d/input-grad-overlap"}),
    "grad-flipped": (("correlate1d_input_grad", "dy[i] * k", "dy[i] * k[::-1]"),
                     {"corr1d/input-grad-fd", "corr1d/input-grad-flip"}),
}


def _cli(args, cwd):
    return subprocess.Popen([sys.executable, "-m", "cnnref.grade", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _notebook(cells):
    return nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(src, metadata={"tags": tags}) for src, tags in cells],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


@pytest.fixture(scope="module")
def assignment():
    return ma.make_assignment(FIXTURE)


@pytest.fixture(scope="module")
def runs(assignment, tmp_path_factory):
    """Run the three gradings at once; {name: (returncode, stdout, stderr, folder)}."""
    sols = ma.solutions(FIXTURE)
    many = tmp_path_factory.mktemp("many")
    nbformat.write(assignment, many / "unmodified.ipynb")
    nbformat.write(ma.fill(assignment, sols), many / "solved.ipynb")
    for bug, ((func, old, new), _) in BUGS.items():
        assert old in sols[func]
        nbformat.write(ma.fill(assignment, {**sols, func: sols[func].replace(old, new)}), many / f"bug-{bug}.ipynb")
    (many / "broken.ipynb").write_text("{ not json", encoding="utf-8")
    alone = tmp_path_factory.mktemp("alone")
    nbformat.write(ma.fill(assignment, sols), alone / "solved.ipynb")
    stuck = tmp_path_factory.mktemp("stuck")
    nbformat.write(_notebook([("# check: t/endless\nimport time\ntime.sleep(600)", ["graded"]),
                              ("# check: t/after\nassert True", ["graded"])]), stuck / "endless.ipynb")
    nbformat.write(_notebook([("# check: t/before\nassert 1 == 1", ["graded"]),
                              ("import os\nos._exit(1)", []),
                              ("# check: t/unreached\nassert True", ["graded"])]), stuck / "dies.ipynb")
    # a learner with a flipped forward pass who "fixed" one check and deleted another
    released, learner = tmp_path_factory.mktemp("released"), tmp_path_factory.mktemp("learner")
    nbformat.write(assignment, released / "corr1d.ipynb")
    func, old, new = BUGS["forward-convolves"][0]
    cheat = ma.fill(assignment, {**sols, func: sols[func].replace(old, new)})
    for cell in cheat.cells:
        if grade.check_id(cell.source) == "corr1d/forward-no-flip":
            cell.source = "# check: corr1d/forward-no-flip\nassert True"
    cheat.cells = [c for c in cheat.cells if grade.check_id(c.source) != "corr1d/input-grad-flip"]
    nbformat.write(cheat, learner / "corr1d.ipynb")
    procs = {"released": (_cli([".", "--released", str(released), "--report", "report.json"], learner), learner),
             "many": (_cli([".", "--report", "report.json"], many), many),
             "alone": (_cli(["solved.ipynb", "--report", "report.csv"], alone), alone),
             "stuck": (_cli([".", "--timeout", "2", "--report", "report.json"], stuck), stuck)}
    return {name: (*p.communicate(timeout=300), p.returncode, folder)
            for name, (p, folder) in procs.items()}


@pytest.fixture(scope="module")
def results(runs):
    """{notebook: {check: (status, message)}} of the first run, from its JSON report."""
    doc = json.loads((runs["many"][3] / "report.json").read_text(encoding="utf-8"))
    table = {}
    for r in doc["results"]:
        table.setdefault(r["notebook"], {})[r["check"]] = (r["status"], r["message"])
    return table


# --- the stripper ---------------------------------------------------------------------------------


def _lines(nb):
    return {line.strip() for cell in nb.cells for line in cell.source.split("\n")}


def test_no_solution_code_survives(assignment):
    sols = ma.solutions(FIXTURE)
    assert set(sols) == {"correlate1d", "correlate1d_input_grad"}
    solution_lines = {line.strip() for body in sols.values() for line in body.split("\n")} - {""}
    assert len(solution_lines) == 6
    assert not solution_lines & _lines(assignment)
    text = "\n".join(c.source for c in assignment.cells)
    for gone in [ma.BEGIN, ma.END, "GATED-SOLUTION-PROSE", "gated_solution_cell", "PLAIN-SOLUTION-PROSE",
                 "solution-start", "solution-end", "{solution}", "numpy's own correlation"]:
        assert gone not in text


def test_stubs_keep_signature_and_docstring(assignment):
    stubs = [c.source for c in assignment.cells if "solution" in c.metadata.get("tags", [])]
    assert stubs[0] == ('def correlate1d(x, k):\n'
                        '    """The valid cross-correlation of eq-corr1d: x (n,), k (K,) -> y (n-K+1,)."""\n'
                        '    # YOUR CODE HERE\n'
                        '    raise NotImplementedError("correlate1d")')
    assert stubs[1].startswith("def correlate1d_input_grad(dy, k, n):\n    \"\"\"dE/dx")
    assert stubs[1].endswith('raise NotImplementedError("correlate1d_input_grad")')


def test_everything_else_is_kept_and_outputs_are_cleared(assignment):
    chapter = jupytext.read(FIXTURE)
    graded = [c.source for c in chapter.cells if "graded" in c.metadata.get("tags", [])]
    assert [c.source for c in assignment.cells if grade.is_graded(c)] == graded
    code = [c for c in assignment.cells if c.cell_type == "code"]
    assert code[0].metadata["tags"] == ["remove-cell"] and "%pip install" in code[0].source  # install cell
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    text = "\n".join(c.source for c in assignment.cells)
    assert ":label: ex-corr1d-1" in text and ":label: ex-corr1d-2" in text  # the exercises stay
    assert "The end of the fixture." in text and "## The input gradient" in text
    assert assignment.cells[0].metadata["tags"] == ["assignment-header"]
    assert "jupytext" not in assignment.metadata


def test_only_chapters_with_solutions_get_an_assignment(tmp_path):
    plain = FIXTURE.read_text(encoding="utf-8").replace(":tags: [solution]\n", "")
    for marker in (ma.BEGIN, ma.END):
        plain = plain.replace(f"    {marker}\n", "")
    (tmp_path / "plain.md").write_text(plain, encoding="utf-8")
    assert ma.make_assignment(tmp_path / "plain.md") is None
    written = ma.write_assignments([FIXTURE, tmp_path / "plain.md"], tmp_path / "out")
    assert written == [tmp_path / "out" / "corr1d.ipynb"]
    nbformat.validate(nbformat.read(written[0], as_version=4))


BODY = "def f(x):\n    \"\"\"Doc.\"\"\"\n{}\n"


@pytest.mark.parametrize("body, error", [
    ("    ### BEGIN SOLUTION\n    return x", "without '### END SOLUTION'"),
    ("    return x\n    ### END SOLUTION", "without '### BEGIN SOLUTION'"),
    ("    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n    ### END SOLUTION",
     "nested"),
    ("    ### BEGIN SOLUTION\n    return x\n### END SOLUTION", "not indented like"),
    ("    ## BEGIN SOLUTION\n    return x\n    ### END SOLUTION", "malformed marker"),
    ("    # end solution", "malformed marker"),
])
def test_malformed_regions_raise(body, error):
    with pytest.raises(ma.AssignmentError, match=error):
        ma.stub_source(BODY.format(body), "x.md, cell 1")


def test_two_regions_and_a_top_level_region_get_their_own_stubs():
    src = ("def f(x):\n    ### BEGIN SOLUTION\n    y = x\n    ### END SOLUTION\n    z = 1\n"
           "    ### BEGIN SOLUTION\n    return y + z\n    ### END SOLUTION\n\n"
           "### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION")
    out, bodies = ma.stub_source(src, "x")
    assert bodies == {"f": "y = x", "f (2)": "return y + z", "region 1": "answer = 42"}
    assert 'raise NotImplementedError("f (2)")' in out and "    z = 1" in out
    assert out.endswith('# YOUR CODE HERE\nraise NotImplementedError("region 1")')


def _chapter(tmp_path, *cells, extra=""):
    head = FIXTURE.read_text(encoding="utf-8").split("(ch-corr1d)=")[0]
    body = "\n".join(f"```{{code-cell}} ipython3\n{opts}\n{src}\n```\n" for opts, src in cells)
    path = tmp_path / "bad.md"
    path.write_text(head + "# Bad\n\n" + body + extra, encoding="utf-8")
    return path


SOLUTION_CELL = (":tags: [solution]\n", "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION")


@pytest.mark.parametrize("cells, extra, error", [
    ([(":tags: [solution]\n", "def f(x):\n    return x")], "", "has no '### BEGIN SOLUTION'"),
    ([("", "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION")], "", "not tagged 'solution'"),
    ([SOLUTION_CELL, (":tags: [graded]\n", "assert f(1) == 1")], "", "must start with a line '# check: <id>'"),
    ([SOLUTION_CELL, ("", "# check: a/b\nassert f(1) == 1")], "", "not tagged 'graded'"),
    ([SOLUTION_CELL, (":tags: [graded]\n", "# check: a/b\nassert 1"), (":tags: [graded]\n", "# check: a/b\nassert 2")],
     "", "'a/b' already used"),
    ([(":tags: [solution, graded]\n", SOLUTION_CELL[1])], "", "tagged both"),
    ([SOLUTION_CELL], "\n```{solution-start} ex-1\n```\n\nno end\n", "without {solution-end}"),
    ([SOLUTION_CELL], "\n```{solution-end}\n```\n", "outside a gated solution"),
    ([SOLUTION_CELL], "\n```{solution} ex-1\nnever closed\n", "never closed"),
])
def test_malformed_chapters_raise(tmp_path, cells, extra, error):
    with pytest.raises(ma.AssignmentError, match=error):
        ma.make_assignment(_chapter(tmp_path, *cells, extra=extra))


def test_the_command_line_fails_loudly_on_a_malformed_chapter(tmp_path):
    bad = _chapter(tmp_path, (":tags: [solution]\n", "def f(x):\n    return x"))
    proc = subprocess.run([sys.executable, ma.__file__, str(bad), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "bad.md, cell" in proc.stderr and "has no" in proc.stderr
    assert not (tmp_path / "out" / "bad.ipynb").exists()


def test_fill_names_a_missing_stub(assignment):
    with pytest.raises(KeyError, match="no_such_function"):
        ma.fill(assignment, {"no_such_function": "return 1"})


# --- the grader ------------------------------------------------------------------------------------


def test_the_unmodified_assignment_fails_every_check(results):
    got = results["unmodified.ipynb"]
    assert list(got) == CHECKS
    assert all(status == "FAIL" and msg.startswith("not implemented yet: correlate1d") for status, msg in got.values())


def test_the_assignment_with_the_solutions_put_back_passes_every_check(results):
    assert results["solved.ipynb"] == {c: ("PASS", "") for c in CHECKS}


@pytest.mark.parametrize("bug", BUGS)
def test_a_planted_bug_fails_exactly_the_checks_meant_to_catch_it(results, bug):
    got = results[f"bug-{bug}.ipynb"]
    assert {c for c, (status, _) in got.items() if status == "FAIL"} == BUGS[bug][1]
    assert all("read " in msg for status, msg in got.values() if status == "FAIL")  # where to read


def test_failure_messages_say_what_failed(results):
    status, msg = results["bug-grad-assigns.ipynb"]["corr1d/input-grad-overlap"]
    assert msg.startswith("overlapping windows: got [1. 1. 1. 1.], expected [1, 2, 2, 1]")
    status, msg = results["bug-forward-convolves.ipynb"]["corr1d/forward-no-flip"]
    assert "gave [2. 2.]" in msg and "read eq-corr1d" in msg


def test_a_file_that_is_not_a_notebook_is_a_failing_row(results):
    (status, msg), = results["broken.ipynb"].values()
    assert status == "FAIL" and msg.startswith("cannot read the notebook")


def test_the_command_line_summary_and_exit_status(runs):
    out, err, rc, folder = runs["many"]
    assert rc == 1, err
    n_rows = 1 + len(CHECKS) * (2 + len(BUGS))
    n_failed = len(CHECKS) + sum(len(c) for _, c in BUGS.values()) + 1
    assert out.rstrip().split("\n")[-1] == f"{n_rows - n_failed} passed, {n_failed} failed"
    assert out.split("\n")[0].split() == ["notebook", "check", "result", "message"]
    doc = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert (doc["passed"], doc["failed"], len(doc["results"])) == (n_rows - n_failed, n_failed, n_rows)


def test_a_solved_notebook_alone_in_a_folder_passes_with_exit_status_0(runs):
    out, err, rc, folder = runs["alone"]
    assert rc == 0, out + err
    assert sorted(p.name for p in folder.iterdir()) == ["report.csv", "solved.ipynb"]
    assert out.rstrip().split("\n")[-1] == f"{len(CHECKS)} passed, 0 failed"
    with (folder / "report.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["notebook"], r["check"], r["status"], r["message"]) for r in rows] == [
        ("solved.ipynb", c, "PASS", "") for c in CHECKS]


def test_an_endless_check_is_interrupted_and_a_dead_kernel_reported(runs):
    out, err, rc, folder = runs["stuck"]
    assert rc == 1
    rows = [(r["notebook"], r["check"], r["status"], r["message"])
            for r in json.loads((folder / "report.json").read_text(encoding="utf-8"))["results"]]
    assert rows[0][:3] == ("dies.ipynb", "(notebook)", "FAIL") and "kernel died" in rows[0][3]
    assert rows[1:] == [
        ("dies.ipynb", "t/before", "PASS", ""),
        ("dies.ipynb", "t/unreached", "FAIL", "not run: the notebook stopped before this check"),
        ("endless.ipynb", "t/endless", "FAIL", "interrupted: the cell ran longer than the timeout of 2 s"),
        ("endless.ipynb", "t/after", "PASS", ""),
    ]
    assert out.rstrip().split("\n")[-1] == "2 passed, 3 failed"


@pytest.mark.parametrize("args, error", [
    (["missing.ipynb"], "no such notebook or folder"),
    ([".", "--report", "out.txt"], "must end in .csv or .json"),
    (["."], "no notebooks"),
])
def test_usage_errors_exit_2(tmp_path, args, error):
    proc = subprocess.run([sys.executable, "-m", "cnnref.grade", *args], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2 and error in proc.stderr


def test_a_notebook_without_graded_checks_fails(tmp_path):
    nbformat.write(_notebook([("x = 1", [])]), tmp_path / "plain.ipynb")
    (row,) = grade.grade_notebook(tmp_path / "plain.ipynb")  # returns before starting a kernel
    assert (row.check, row.status) == ("(notebook)", "FAIL") and "no graded checks" in row.message


@pytest.mark.parametrize("error, message", [
    ({"ename": "NotImplementedError", "evalue": "f"}, "not implemented yet: f"),
    ({"ename": "NotImplementedError", "evalue": ""}, "not implemented yet"),
    ({"ename": "AssertionError", "evalue": "dx is wrong; read eq-x"}, "dx is wrong; read eq-x"),
    ({"ename": "AssertionError", "evalue": ""}, "assertion failed (the check gives no message)"),
    ({"ename": "NameError", "evalue": "name 'f' is not defined"}, "NameError: name 'f' is not defined"),
])
def test_failure_message(error, message):
    assert grade.failure_message(error, 120) == message


def test_check_ids():
    assert grade.check_id("# check: weight-gradient/overlap\nassert 1") == "weight-gradient/overlap"
    assert grade.check_id("\n#check:a/b  \n") == "a/b"
    assert grade.check_id("assert 1  # check: a/b") is None


def test_released_checks_replace_edited_ones_and_deleted_ones_fail(runs):
    out, err, rc, folder = runs["released"]
    assert rc == 1, err
    rows = {r["check"]: (r["status"], r["message"])
            for r in json.loads((folder / "report.json").read_text(encoding="utf-8"))["results"]}
    assert rows["corr1d/forward-no-flip"][0] == "FAIL"  # the learner's `assert True` was replaced
    assert rows["corr1d/input-grad-flip"] == ("FAIL", "missing: this check was deleted from the notebook")
    assert all(rows[c] == ("PASS", "") for c in CHECKS[2:4])
