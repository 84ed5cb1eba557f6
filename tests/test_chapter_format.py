"""The chapters' code cells are formatted by ruff (88 columns) and no line is longer than 88.

`python book/_ext/format_cells.py` formats them; this test is its `--check`. The second test shows
that the check sees both kinds of fault (an unformatted cell, a long comment).
"""

from pathlib import Path

from format_cells import LINE_LENGTH, chapter_paths, problems  # book/_ext (on sys.path via conftest.py)


def test_every_code_cell_is_formatted():
    bad = problems(chapter_paths())
    assert not bad, "run `python book/_ext/format_cells.py`, then wrap the long lines by hand:\n" + "\n".join(bad)


def test_the_check_sees_unformatted_cells_and_long_lines(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    md = book / "x.md"
    cell = "```{code-cell} ipython3\n%s\n```\n"
    md.write_text("# x\n\n" + cell % "x=[1,2 ,3]" + "\n" + cell % ("# " + "y" * LINE_LENGTH)
                  + "\n" + cell % "%pip install anything" + "\n" + cell % "z = 1"
                  + "\n" + cell % "---\nmystnb:\n  figure:\n    caption: A figure\n---\nf = 1", encoding="utf-8")
    found = problems([md])
    assert len(found) == 2, found
    assert "not formatted" in found[0] and f"over {LINE_LENGTH} characters" in found[1]
