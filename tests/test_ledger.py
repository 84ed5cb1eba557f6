"""The equation ledger (book/ledger.yml, or $CNNBOOK_LEDGER): schema, coverage and references.

For every entry whose verdict is not `pending`: its label is an equation label or target in the
book, its `evidence` target exists, its `cnnref` function imports and each named test exists.
The terminal summary reports how many entries are still pending (tests/conftest.py).
The second half tests the checker itself on small ledgers written to a temporary directory.
"""

import re
import textwrap
from pathlib import Path

import pytest
import yaml

import ledger as L  # book/_ext/ledger.py, put on sys.path by tests/conftest.py

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def entries():
    path = L.ledger_path()
    assert path.exists(), f"the equation ledger {path} does not exist (format: CONTRIBUTING.md)"
    return L.load(path)


@pytest.fixture(scope="module")
def valid_entries(entries):
    errors = L.schema_errors(entries)
    if errors:
        pytest.fail("the ledger is invalid; see test_ledger_schema")
    return entries


def _fail_on(errors):
    if errors:
        pytest.fail(f"{len(errors)} problem(s):\n  " + "\n  ".join(errors))


def test_ledger_schema(entries):
    _fail_on(L.schema_errors(entries, L.source_names()))


def test_every_source_has_entries_numbered_in_order(valid_entries):
    names = L.source_names()
    if names is None:
        pytest.skip(f"needs the source documents: {L.SOURCES_HINT}")
    by_source = {}
    for e in valid_entries:
        by_source.setdefault(e["source"], []).append(e["id"])
    missing = sorted(names - set(by_source))
    assert not missing, f"no ledger entries for source(s) {missing}"
    for src, ids in by_source.items():
        expected = [f"S{src[:3]}-E{k:02d}" for k in range(1, len(ids) + 1)]
        numbers = [int(i.split("-E")[1]) for i in ids]
        assert numbers == list(range(1, len(ids) + 1)), (
            f"{src}: ids must run S{src[:3]}-E01, -E02, ... in order of appearance; got {ids}, expected {expected}")


def test_settled_entries_reference_existing_labels_functions_and_tests(valid_entries):
    _fail_on(L.reference_errors(valid_entries))


def test_ledger_page_renders_the_ledger():
    page = (ROOT / "book" / "ledger.md").read_text(encoding="utf-8")
    assert "% ledger-tables" in page.splitlines(), "book/ledger.md lost its `% ledger-tables` line"
    assert ROOT / "book" / "ledger.md" in L.toc_files(ROOT), "book/ledger is not in _toc.yml"


# --- the checker itself, on ledgers in a temporary directory ---------------------------------

SRC = "000_30ab0f1aa28e306c.txt"


def entry(**kw):
    e = dict(id="S000-E01", source=SRC, section="Convolution", source_form="v = i * k",
             restatement="v = i \\ast k", verdict="pending", note=None, correction=None,
             label=None, evidence=None, function=None, tests=[])
    e.update(kw)
    return e


@pytest.fixture
def mini_repo(tmp_path, monkeypatch):
    """A book with one equation label and one target, and a test module."""
    book = tmp_path / "book"
    book.mkdir()
    (book / "ch.md").write_text(textwrap.dedent("""\
        # A chapter

        $$ z = w \\star a $$ (eq-ok)

        ```{math}
        :label: eq-directive
        y = 1
        ```

        (err-ok)=
        A cell follows.
        """), encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(textwrap.dedent("""\
        import pytest

        def test_a():
            pass

        @pytest.mark.parametrize("n", [1, 2])
        def test_p(n):
            pass

        class TestB:
            def test_c(self):
                pass

        def helper():
            pass
        """), encoding="utf-8")
    ledger = tmp_path / "ledger.yml"
    monkeypatch.setenv("CNNBOOK_LEDGER", str(ledger))
    return tmp_path


def test_ledger_path_is_configurable(mini_repo):
    assert L.ledger_path() == (mini_repo / "ledger.yml").resolve()
    (mini_repo / "ledger.yml").write_text(yaml.safe_dump([entry()]), encoding="utf-8")
    assert L.pending_count(L.load(L.ledger_path())) == (1, 1)


def test_schema_accepts_pending_and_settled_entries():
    good = [
        entry(),
        entry(id="S000-E02", verdict="correct", label="eq-ok", function="cnnref.correlate2d",
              tests=["tests/test_x.py::test_a"]),
        entry(id="S000-E03", verdict="typo", label="eq-ok", function="cnnref.correlate2d",
              correction="v = i \\star k", evidence="err-ok", tests=["tests/test_x.py::test_p[1]"]),
        entry(id="S000-E04", verdict="correct under a stated convention", note="1-based indices",
              label="eq-ok", function="cnnref.conv.conv2d_forward", tests=["tests/test_x.py::TestB::test_c"]),
    ]
    good.append(entry(id="S000-E05", chapter="book/convolution.md"))
    assert L.schema_errors(good, {SRC}) == []


@pytest.mark.parametrize("bad, message", [
    (entry(verdict="maybe"), "verdict must be one of"),
    (entry(id="E01"), "id must look like"),
    (entry(id="S001-E01"), "does not match source"),
    (entry(source="nope.txt"), "source must be a file name"),
    (entry(source="001_b0db46b6fad1522b.txt", id="S001-E01"), "is not one of"),
    ({k: v for k, v in entry().items() if k != "note"}, "missing keys ['note']"),
    (entry(colour="red"), "unknown keys ['colour']"),
    (entry(restatement=""), "restatement must be a non-empty string"),
    (entry(verdict="correct", function="cnnref.x", tests=["tests/test_x.py::test_a"]), "needs the book label"),
    (entry(verdict="correct", label="eq-ok", tests=["tests/test_x.py::test_a"]), "needs the cnnref function"),
    (entry(verdict="correct", label="eq-ok", function="cnnref.x"), "needs at least one test id"),
    (entry(verdict="wrong", label="eq-ok", function="cnnref.x", tests=["tests/test_x.py::test_a"],
           evidence="err-ok"), "needs its corrected form"),
    (entry(verdict="wrong", label="eq-ok", function="cnnref.x", tests=["tests/test_x.py::test_a"],
           correction="y"), "needs `evidence`"),
    (entry(verdict="correct under a stated convention", label="eq-ok", function="cnnref.x",
           tests=["tests/test_x.py::test_a"]), "needs a `note`"),
    (entry(label="Eq_Bad"), "kebab-case label"),
    (entry(function="numpy.sum"), "dotted path cnnref"),
    (entry(tests="tests/test_x.py::test_a"), "tests must be a list"),
    (entry(tests=["test_x.py::test_a"]), "test id must look like"),
    (entry(chapter="convolution"), "chapter must be a path"),
])
def test_schema_rejects(bad, message):
    errors = L.schema_errors([bad], {SRC})
    assert any(message in e for e in errors), errors


def test_schema_rejects_duplicate_ids_and_non_lists():
    assert any("duplicate id" in e for e in L.schema_errors([entry(), entry()]))
    assert L.schema_errors({"id": "S000-E01"})[0].startswith("the ledger must be a YAML list")


def test_book_labels_finds_equations_and_targets(mini_repo):
    equations, targets = L.book_labels(mini_repo / "book")
    assert equations == {"eq-ok", "eq-directive"}
    assert targets == {"err-ok"}


def test_book_labels_counts_only_pages_in_the_toc(mini_repo):
    (mini_repo / "book" / "draft.md").write_text("$$ x $$ (eq-draft)\n\n(err-draft)=\n", encoding="utf-8")
    assert "eq-draft" in L.book_labels(mini_repo / "book")[0]
    (mini_repo / "_toc.yml").write_text(
        "format: jb-book\nroot: book/ch\nparts:\n  - caption: A\n    chapters:\n      - file: book/other\n",
        encoding="utf-8")
    assert L.toc_files(mini_repo) == [mini_repo / "book" / "ch.md", mini_repo / "book" / "other.md"]
    equations, targets = L.book_labels(mini_repo / "book")
    assert equations == {"eq-ok", "eq-directive"} and targets == {"err-ok"}
    other = mini_repo / "other_toc.yml"  # as with `jupyter-book build --toc other_toc.yml`
    other.write_text("format: jb-book\nroot: book/draft\n", encoding="utf-8")
    assert L.book_labels(mini_repo / "book", other) == ({"eq-draft"}, {"err-draft"})


def test_test_names_parses_functions_classes_and_ignores_helpers(mini_repo):
    assert L.test_names(mini_repo / "tests" / "test_x.py") == {"test_a", "test_p", "TestB::test_c"}


def test_reference_errors_accepts_existing_references(mini_repo):
    ok = [
        entry(verdict="correct", label="eq-ok", function="cnnref.correlate2d",
              tests=["tests/test_x.py::test_a", "tests/test_x.py::test_p[2]", "tests/test_x.py::TestB::test_c"]),
        entry(id="S000-E02", verdict="wrong", label="err-ok", evidence="err-ok", correction="y",
              function="cnnref.conv.conv2d_forward", tests=["tests/test_x.py::test_a"]),
        entry(id="S000-E03", label="eq-not-yet", function="cnnref.nope", tests=["tests/test_x.py::test_zz"]),
    ]
    assert L.schema_errors(ok) == []
    assert L.reference_errors(ok, mini_repo / "book", mini_repo) == []  # pending entries are not checked


@pytest.mark.parametrize("kw, message", [
    (dict(label="eq-missing"), "label 'eq-missing' is not an equation label"),
    (dict(evidence="err-missing"), "evidence target 'err-missing'"),
    (dict(function="cnnref.no_such_function"), "does not import"),
    (dict(function="cnnref.no_such_module.f"), "does not import"),
    (dict(function="cnnref.conv"), "is not callable"),
    (dict(tests=["tests/test_x.py::test_missing"]), "tests/test_x.py::test_missing does not exist"),
    (dict(tests=["tests/test_x.py::helper"]), "tests/test_x.py::helper does not exist"),
    (dict(tests=["tests/test_x.py::TestB::test_a"]), "TestB::test_a does not exist"),
    (dict(tests=["tests/test_nofile.py::test_a"]), "test file tests/test_nofile.py is missing"),
])
def test_reference_errors_detects(mini_repo, kw, message):
    e = entry(verdict="correct", label="eq-ok", function="cnnref.correlate2d", tests=["tests/test_x.py::test_a"])
    e.update(kw)
    assert L.schema_errors([e]) == []
    errors = L.reference_errors([e], mini_repo / "book", mini_repo)
    assert len(errors) == 1 and message in errors[0], errors


def test_reference_errors_detects_a_label_outside_the_entrys_chapter(mini_repo):
    (mini_repo / "book" / "other.md").write_text("# Another chapter\n", encoding="utf-8")
    e = entry(verdict="correct", label="eq-ok", function="cnnref.correlate2d", tests=["tests/test_x.py::test_a"])
    assert L.reference_errors([dict(e, chapter="book/ch.md")], mini_repo / "book", mini_repo) == []
    errors = L.reference_errors([dict(e, chapter="book/other.md")], mini_repo / "book", mini_repo)
    assert errors == ["S000-E01: label 'eq-ok' is not in its chapter book/other.md"], errors


def test_pending_count():
    assert L.pending_count([entry(), entry(verdict="correct"), entry()]) == (2, 3)


def test_contributing_documents_the_same_fields_and_verdicts():
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    example = yaml.safe_load(block)[0]
    assert tuple(example) == L.FIELDS
    assert L.schema_errors([example]) == []
    for verdict in L.VERDICTS:
        assert verdict in block


def test_sources_are_opt_in_by_an_explicit_setting(monkeypatch, tmp_path):
    monkeypatch.delenv(L.SOURCES_ENV, raising=False)
    assert L.sources_dir() is None and L.source_names() is None
    (tmp_path / SRC).write_text("a source\n")
    monkeypatch.setenv(L.SOURCES_ENV, str(tmp_path))
    assert L.sources_dir() == tmp_path.resolve() and L.source_names() == {SRC}
    monkeypatch.setenv(L.SOURCES_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="CNNBOOK_SOURCES=.*missing.* is not a folder"):
        L.sources_dir()
    monkeypatch.setenv(L.SOURCES_ENV, str(tmp_path.parent / "empty-dir"))
    (tmp_path.parent / "empty-dir").mkdir()
    with pytest.raises(FileNotFoundError, match="source documents"):
        L.source_names()


# --- the index of the book's own equations (the chapters past the sources) -------------------


def test_every_indexed_chapter_has_equations_that_cnnref_computes():
    import yaml
    from ledger_tables import chapter_equations, chapter_target, functions_citing

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    chapters = config["sphinx"]["config"]["ledger_index_chapters"]
    assert chapters, "no chapter is indexed"
    in_toc = set(L.toc_files(ROOT))
    cited = functions_citing(ROOT / "cnnref")
    for doc in chapters:
        path = ROOT / f"{doc}.md"
        assert path in in_toc, f"{doc} is indexed but not in _toc.yml"
        assert chapter_target(ROOT, f"{doc}.md"), f"{doc} has no (ch-…)= target"
        labels = chapter_equations(path)
        assert labels, f"{doc} has no numbered equation to index"
        assert any(label in cited for label in labels), f"no cnnref function cites an equation of {doc}"


def test_the_index_reads_equations_in_order_and_the_functions_that_cite_them(tmp_path):
    from ledger_tables import chapter_equations, functions_citing

    md = tmp_path / "ch.md"
    md.write_text("$$ a $$ (eq-b)\n\n```{math}\n:label: eq-a\nx\n```\n\n$$ c $$ (eq-c)\n", encoding="utf-8")
    assert chapter_equations(md) == ["eq-b", "eq-a", "eq-c"]
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "m.py").write_text('def f():\n    """[eq-a] and [eq-c]."""\n\n\ndef _g():\n    """[eq-b]"""\n',
                              encoding="utf-8")
    assert functions_citing(pkg) == {"eq-a": ["pkg.m.f"], "eq-c": ["pkg.m.f"]}
