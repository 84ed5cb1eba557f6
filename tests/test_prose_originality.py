"""The book restates the sources in its own words: no run of 8 prose words from a source may appear in a chapter.

Math (``$...$``, ``$$...$$``, ``\\(...\\)``) and HTML tags are removed first, so
shared formulas do not count; only prose does. Eight words is long enough that
generic phrases ("the derivative of a scalar function") do not trip it and
short enough that a copied clause does.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import ledger  # book/_ext/ledger.py (on sys.path via tests/conftest.py): finds the sources

ROOT = Path(__file__).resolve().parents[1]
RUN = 8


def prose_words(text: str) -> list[str]:
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]*\$", " ", text)
    text = re.sub(r"\\\\?\(.*?\\\\?\)", " ", text, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower())


def runs(words: list[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + RUN]) for i in range(len(words) - RUN + 1)}


def test_detector_finds_a_copied_clause():
    source = "We can resolve this by wrapping around the indexes, thus rewriting the sum."
    chapter = "As one post puts it, we can resolve this by wrapping around the indexes here."
    assert runs(prose_words(source)) & runs(prose_words(chapter))
    assert not runs(prose_words(source)) & runs(prose_words("Wrapping indices around does not fix the offset."))


def test_no_chapter_copies_source_prose():
    sources = ledger.sources_dir()
    if sources is None:
        pytest.skip(f"needs the source documents: {ledger.SOURCES_HINT}")
    source_runs = {p.name: runs(prose_words(p.read_text(encoding="utf-8"))) for p in sorted(sources.glob("*.txt"))}
    assert len(source_runs) == 5
    copied = []
    for chapter in sorted((ROOT / "book").glob("*.md")):
        mine = runs(prose_words(chapter.read_text(encoding="utf-8")))
        for name, theirs in source_runs.items():
            copied += [f"{chapter.name} <- {name}: {' '.join(r)!r}" for r in sorted(mine & theirs)]
    assert not copied, "prose copied from the sources:\n" + "\n".join(copied)
