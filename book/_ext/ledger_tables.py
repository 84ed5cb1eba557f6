"""Sphinx extension: render the equation ledger (``book/ledger.yml``) into ``book/ledger.md``.

The page contains a line ``% ledger-tables`` (a MyST comment). At ``source-read`` that line is
replaced by generated MyST Markdown: a summary, one table per source ("equations by source") and
the errata table. Math is set with the ``{math}`` role, so it is typeset like the rest of the book.

Config values (``sphinx: config:`` in ``_config.yml``):

- ``ledger_path``: the ledger file, relative to the book root (the environment variable
  ``CNNBOOK_LEDGER`` overrides it);
- ``ledger_page``: the docname of the page that holds the marker.

A missing or invalid ledger is a build warning, which the strict build (``-W``) turns into a
failure. Label, function and test existence are checked by ``tests/test_ledger.py``; an equation
label that is missing from the book also fails the build here, as an unresolved ``{eq}``.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from sphinx.util import logging

import ledger as L

logger = logging.getLogger(__name__)

MARKER = "% ledger-tables"
SOURCE_KEYS = {f"{k:03d}": f"src{k:03d}" for k in range(5)}
_PUNCT = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|$~^&%:])")


def _text(s) -> str:
    """Plain text, safe inside a table cell (Markdown punctuation escaped, one line)."""
    return _PUNCT.sub(r"\\\1", " ".join(str(s).split())) if s else ""


def _inline(s) -> str:
    """MyST inline markup (e.g. a note with `$...$` math), on one line."""
    return " ".join(str(s).split()) if s else ""


def _role(name: str, content: str) -> str:
    """``{name}`content``` with a backtick fence longer than any run inside the content."""
    content = " ".join(content.split())
    fence = "`" * (max((len(r) for r in re.findall(r"`+", content)), default=0) + 1)
    pad = " " if content.startswith("`") or content.endswith("`") else ""
    return f"{{{name}}}{fence}{pad}{content}{pad}{fence}"


def _math(s) -> str:
    return _role("math", str(s)) if s else "—"


def _code(s) -> str:
    s = " ".join(str(s).split())
    fence = "`" * (max((len(r) for r in re.findall(r"`+", s)), default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _source(s) -> str:
    """The source's form: LaTeX, or a claim in words (``Claim: ...``), shown verbatim."""
    return _code(s) if str(s).lstrip().startswith("Claim:") else _math(s)


def _where(e, equations, targets, missing: list) -> str:
    """Link to the book label where the entry is derived (only for settled entries)."""
    if e["verdict"] == L.PENDING:
        planned = e.get("label") or e.get("chapter")
        return "pending" + (f" ({_code(planned)})" if planned else "")
    if e["label"] in equations:
        return _role("eq", e["label"])
    if e["label"] in targets:
        return _role("ref", f"{e['label']} <{e['label']}>")
    missing.append(f"{e['id']}: label {e['label']!r} is not in the book (is its chapter in the toc?)")
    return _code(e["label"])


def _cell(c) -> str:
    """A cell is a string or a list of paragraphs (indented under the list item)."""
    if isinstance(c, (list, tuple)):
        c = "\n\n    ".join(x for x in c if x)
    return c or "—"


def _list_table(header, rows, widths, cls) -> list[str]:
    out = ["```{list-table}", ":header-rows: 1", f":widths: {' '.join(map(str, widths))}",
           f":class: ledger-table {cls}", ""]
    for row in [header, *rows]:
        out.append(f"* - {_cell(row[0])}")
        out.extend(f"  - {_cell(cell)}" for cell in row[1:])
    out += ["```", ""]
    return out


def render(entries, equations, targets=frozenset(), missing=None) -> str:
    """The MyST Markdown that replaces the marker; unresolvable labels are appended to ``missing``."""
    missing = [] if missing is None else missing
    out: list[str] = []
    by_source: dict[str, list] = {}
    for e in entries:
        by_source.setdefault(e["source"], []).append(e)
    counts = Counter(e["verdict"] for e in entries)
    pending = counts[L.PENDING]

    out += ["## Summary", ""]
    out.append(f"{len(entries)} equations from {len(by_source)} sources; "
               f"{pending} still pending." if entries else "The ledger has no entries yet.")
    out.append("")
    verdict_cols = [v for v in L.VERDICTS if v != L.PENDING] + [L.PENDING]
    rows = []
    for src, es in sorted(by_source.items()):
        c = Counter(e["verdict"] for e in es)
        rows.append([_code(src), str(len(es)), *(str(c[v]) for v in verdict_cols)])
    rows.append(["**all**", f"**{len(entries)}**", *(f"**{counts[v]}**" for v in verdict_cols)])
    out += _list_table(["source", "equations", *verdict_cols], rows,
                       [28] + [12] * (len(verdict_cols) + 1), "ledger-summary")

    out += ["## Equations by source", ""]
    for src, es in sorted(by_source.items()):
        num = src[:3]
        key = SOURCE_KEYS.get(num)
        out += [f"### Source {num}", ""]
        cite = f"{_role('cite', key)}, " if key else ""
        out += [f"{cite}file {_code(src)}.", ""]
        rows = []
        for e in es:
            where = [_where(e, equations, targets, missing)]
            if e.get("function"):
                where.append(_code(e["function"]))
            where += [_code(t.removeprefix("tests/")) for t in e.get("tests") or []]
            rows.append([
                [_code(e["id"]), _text(e["section"])], _source(e["source_form"]),
                _math(e["restatement"]), _text(e["verdict"]), where,
            ])
        out += _list_table(
            ["ID and section", "in the source", "in our notation", "verdict", "derived in; code; tests"],
            rows, [13, 27, 27, 12, 21], "ledger-source")

    out += ["## Errata", ""]
    errata = [e for e in entries if e["verdict"] in L.ERRATA_VERDICTS]
    if not errata:
        out += ["No entry is marked a typo, wrong, or correct only under a convention yet.", ""]
    else:
        out += ["Equations that are wrong, contain a typo, or hold only under a convention the "
                "source does not state. Each links to the cell that shows the discrepancy.", ""]
        rows = []
        for e in errata:
            fix = _source(e["correction"]) if e.get("correction") else ""
            note = _inline(e.get("note"))
            evidence = ""
            if e.get("evidence") in targets:
                evidence = _role("ref", f"see the cell <{e['evidence']}>")
            elif e.get("evidence") in equations:
                evidence = _role("eq", e["evidence"])
            elif e.get("evidence"):
                missing.append(f"{e['id']}: evidence target {e['evidence']!r} is not in the book")
                evidence = _code(e["evidence"])
            rows.append([_code(e["id"]), _text(e["verdict"]), _source(e["source_form"]),
                         [fix, note], evidence])
        out += _list_table(["ID", "verdict", "in the source", "corrected form / convention", "evidence"],
                           rows, [10, 13, 28, 37, 12], "ledger-errata")
    return "\n".join(out)


def _ledger_file(app) -> Path:
    return L.ledger_path(Path(app.srcdir, app.config.ledger_path))


def on_source_read(app, docname, source):
    if docname != app.config.ledger_page:
        return
    if MARKER not in source[0]:
        logger.warning(f"ledger: marker line {MARKER!r} not found", location=docname)
        return
    path = _ledger_file(app)
    app.env.note_dependency(str(path))
    if not path.exists():
        logger.warning(f"ledger: {path} does not exist", location=docname)
        generated = "The ledger file is missing."
    else:
        try:
            entries = L.load(path)
            errors = L.schema_errors(entries, L.source_names())
        except Exception as exc:  # noqa: BLE001 - a YAML error is reported as a build warning
            entries, errors = [], [f"cannot read {path}: {exc}"]
        for msg in errors:
            logger.warning(f"ledger: {msg}", location=docname)
        if errors:
            generated = "The ledger is invalid; see the build log."
        else:
            toc = getattr(app.config, "external_toc_path", None)  # `jupyter-book build --toc` may change it
            equations, targets = L.book_labels(Path(app.srcdir, "book"), Path(app.srcdir, toc) if toc else None)
            missing: list[str] = []
            generated = render(entries, equations, targets, missing)
            for msg in missing:
                logger.warning(f"ledger: {msg}", location=docname)
    source[0] = source[0].replace(MARKER, generated, 1)


def always_reread(app, env, added, changed, removed):
    """The ledger page depends on the ledger and on every chapter's labels: re-read it each build."""
    page = app.config.ledger_page
    return [page] if page in env.found_docs and page not in added | changed else []


def setup(app):
    app.add_config_value("ledger_path", "book/ledger.yml", "env")
    app.add_config_value("ledger_page", "book/ledger", "env")
    app.connect("source-read", on_source_read)
    app.connect("env-get-outdated", always_reread)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
