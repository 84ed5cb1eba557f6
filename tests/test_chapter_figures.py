"""Every figure a chapter draws is captioned, numbered, described and referred to, once.

A figure is a code cell whose YAML options carry ``mystnb: figure:`` (caption and name) and
``mystnb: image: alt:``. Its name is unique in the book, the text refers to it as
{numref}`Figure %s <name>`, and every chapter of Part II (the backward pass) draws at least one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
_OPTIONS = re.compile(r"^```\{code-cell\}[^\n]*\n---\n(.*?)\n---\n", re.S | re.M)


def figures(md: Path) -> list[dict]:
    """The ``mystnb`` options of every figure cell of the chapter ``md``."""
    return figures_in(md.read_text(encoding="utf-8"))


def figures_in(text: str) -> list[dict]:
    found = []
    for m in _OPTIONS.finditer(text):
        opts = yaml.safe_load(m.group(1)) or {}
        nb = opts.get("mystnb") or {}
        if "figure" in nb:
            found.append(nb)
    return found


CHAPTERS = sorted((ROOT / "book").glob("*.md"))
ALL = [(md.stem, f) for md in CHAPTERS for f in figures(md)]
TEXT = "\n".join(md.read_text(encoding="utf-8") for md in CHAPTERS)


def _part(caption_start: str) -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    part = next(p for p in toc["parts"] if p["caption"].startswith(caption_start))
    return [Path(c["file"]).name for c in part["chapters"]]


@pytest.mark.parametrize("chapter, fig", ALL, ids=[f["figure"].get("name", "?") for _, f in ALL])
def test_each_figure_is_captioned_described_and_referred_to(chapter, fig):
    name = fig["figure"].get("name", "")
    assert name.startswith("fig-"), f"{chapter}: a figure without a fig- name"
    assert len(str(fig["figure"].get("caption", ""))) > 40, f"{name}: no caption"
    assert len(str((fig.get("image") or {}).get("alt", ""))) > 40, f"{name}: no alt text"
    assert f"<{name}>`" in TEXT, f"{name} is never referred to ({{numref}}`Figure %s <{name}>`)"


def test_figure_names_are_unique():
    names = [f["figure"]["name"] for _, f in ALL]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("chapter", _part("Part II"))
def test_every_backward_chapter_draws_a_figure(chapter):
    assert figures(ROOT / "book" / f"{chapter}.md"), f"{chapter} has no captioned figure"


def test_the_checks_see_figures():
    md = "```{code-cell} ipython3\n---\nmystnb:\n  figure:\n    caption: c\n    name: fig-x\n---\nx\n```\n"
    assert figures_in(md) == [{"figure": {"caption": "c", "name": "fig-x"}}]
    assert figures_in(md.replace("figure:", "image:")) == []
