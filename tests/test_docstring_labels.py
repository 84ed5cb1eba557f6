"""Every book label ``[eq-…]`` that a docstring (or comment) in cnnref/ cites exists in the book.

The book's labels are collected by ``ledger.book_labels`` (book/_ext/ledger.py, the same
function that checks the ledger's labels): equation labels ``$$ … $$ (eq-x)``, ``{math}``
directives' ``:label: eq-x`` and MyST targets ``(eq-x)=`` on the pages of ``_toc.yml``.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import ledger
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cnnref"
CITATION_RE = re.compile(r"\[(eq-[A-Za-z0-9_.:-]+)\]")


def cited_labels(source: str) -> set[str]:
    """The ``[eq-…]`` labels in the docstrings (module, class, function) and comments of ``source``."""
    tree = ast.parse(source)
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)))]
    texts = [ast.get_docstring(n, clean=False) or "" for n in nodes]
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    texts += [tok.string for tok in tokens if tok.type == tokenize.COMMENT]
    return {label for text in texts for label in CITATION_RE.findall(text)}


@pytest.fixture(scope="module")
def book_labels() -> set[str]:
    equations, targets = ledger.book_labels()
    return equations | targets


@pytest.fixture(scope="module")
def citations() -> dict[str, set[str]]:
    return {str(path.relative_to(PACKAGE.parent)): cited_labels(path.read_text(encoding="utf-8"))
            for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_cited_label_exists_in_the_book(citations, book_labels):
    missing = {path: sorted(labels - book_labels) for path, labels in citations.items() if labels - book_labels}
    assert not missing, f"labels cited in cnnref/ but not defined in the book: {missing}"


def test_the_scan_finds_the_citations(citations):
    """Not vacuous: the modules that implement the book's equations cite them, in docstrings and comments."""
    assert {"eq-dense-forward", "eq-dense-backward", "eq-flatten"} <= citations["cnnref/dense.py"]
    assert {"eq-sgd-update", "eq-sgd-momentum", "eq-cosine-lr"} <= citations["cnnref/optim.py"]
    assert "eq-adjoint-test" in citations["cnnref/gradcheck.py"]
    assert sum(map(len, citations.values())) > 50


def test_cited_labels_reads_docstrings_and_comments_only():
    source = '''"""Module [eq-a-1]."""
x = "[eq-not-a-docstring]"


class C:
    """Class [eq-b-2]."""

    def f(self):
        """Method [eq-c-3], and [eq-d-4]."""
        return 1  # comment [eq-e-5]
'''
    assert cited_labels(source) == {"eq-a-1", "eq-b-2", "eq-c-3", "eq-d-4", "eq-e-5"}


def test_a_label_missing_from_the_book_would_be_reported(book_labels):
    assert "eq-dense-forward" in book_labels and "eq-no-such-equation" not in book_labels
    assert cited_labels('"""Implements [eq-no-such-equation]."""') - book_labels == {"eq-no-such-equation"}
