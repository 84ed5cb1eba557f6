"""Sphinx extension: render the equation ledger (``book/ledger.yml``) into ``book/ledger.md``.

The page contains a line ``% ledger-tables`` (a MyST comment). At ``source-read`` that line is
replaced by generated MyST Markdown: a summary (per source, how many equations have each verdict),
one compact table per source (the source's form, a verdict badge, the equation number and chapter
where the book derives it) with the source's sections, ``cnnref`` functions and test ids in a
collapsed dropdown, and the errata. Math is set with the ``{math}`` role, so it is typeset like
the rest of the book.

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


def _top_level(tex: str, sign: str = "=") -> list[int]:
    """Positions of ``sign`` (``=`` or ``+``) in ``tex`` outside braces and ``\\left … \\right`` pairs."""
    depth, found, i = 0, [], 0
    while i < len(tex):
        if tex.startswith("\\left", i) and not tex[i + 5 : i + 6].isalpha():
            depth, i = depth + 1, i + 5
            continue
        if tex.startswith("\\right", i) and not tex[i + 6 : i + 7].isalpha():
            depth, i = depth - 1, i + 6
            continue
        sized = re.match(r"\\[bB]igg?[lr]?", tex[i:])
        if sized:  # \Big( and \Big): sized brackets, cut between freely (see _unpair_outer)
            i += sized.end() + 1
            continue
        if sign.startswith("\\") and tex.startswith(sign, i) and not tex[i + len(sign) : i + len(sign) + 1].isalpha() \
                and depth == 0:
            found.append(i)
        c = tex[i]
        if c == "\\":  # an escaped character (\{, \=) is not structure
            i += 2
            continue
        depth += (c in "{([") - (c in "})]")  # no cut inside a group or a bracket
        if c == sign and depth == 0:
            found.append(i)
        i += 1
    return found


LINE = 48  # visible symbols on one line of a broken formula (about the width of a table cell)
_INVISIBLE = re.compile(r"\\(?:left|right|[bB]igg?)\b|\\[,;:! ]|[{}^_\s]")


def _visible(tex: str) -> int:
    """About how many symbols ``tex`` shows: a command counts once, spacing and grouping not at all."""
    return len(re.sub(r"\\[a-zA-Z]+", "x", _INVISIBLE.sub("", tex)))


def _unpair_outer(tex: str) -> str:
    """``f\\left( … \\right)`` ending ``tex`` as ``f\\Big( … \\Big)``: sized brackets that, unlike a
    ``\\left``/``\\right`` pair, may stand on different lines of an aligned block."""
    tex = tex.rstrip()
    if not tex.endswith("\\right)"):
        return tex
    depth, i = 0, len(tex) - len("\\right)")
    for j in range(i, -1, -1):  # the \left that matches the final \right
        if tex.startswith("\\right", j) and not tex[j + 6 : j + 7].isalpha():
            depth += 1
        elif tex.startswith("\\left", j) and not tex[j + 5 : j + 6].isalpha():
            depth -= 1
            if depth == 0:
                if tex[j + 5 : j + 6] != "(":
                    return tex
                return tex[:j] + "\\Big(" + tex[j + 6 : i] + "\\Big)"
    return tex


def _sum_lines(tex: str) -> list[str]:
    """``tex`` cut into lines of at most about LINE symbols, each cut before a top-level ``+``,
    ``\\cdot`` or ``\\quad``, as late as the line allows."""
    if _visible(tex) > LINE and not _top_level(tex, "+"):
        unpaired = _unpair_outer(tex)
        body = unpaired.split("\\Big(", 1)[-1]
        if unpaired != tex and _visible(body) > LINE:  # a long bracket: its content may go on lines of its own
            head, body = unpaired.split("\\Big(", 1)
            return [head + "\\Big(", *_sum_lines(body)]
    points = sorted(_top_level(tex, "+") + _top_level(tex, "\\quad") + _top_level(tex, "\\cdot"))
    lines, start, prev = [], 0, None
    for cut in [*points, len(tex)]:
        if _visible(tex[start:cut]) > LINE and prev is not None and prev > start:
            lines.append(tex[start:prev].strip())
            start = prev
        prev = cut
    return lines + [tex[start:].strip()]


def _chain(tex: str) -> str:
    """A long formula as lines of an ``aligned`` block, so that it fits a table cell: a chain
    ``a = b = c`` one equality a line, and a long right-hand side cut before a ``+``. A formula
    that already has lines of its own, or is short, is unchanged."""
    tex = " ".join(str(tex).split())
    if "aligned" in tex or "\\\\" in tex:
        return tex
    side = min([i for i in (tex.find("\\text{ "), tex.find("\\quad")) if i > 0], default=len(tex))
    cuts = [c for c in _top_level(tex, "=") if c < side]  # no cut in a side condition ("for w = …")
    if not cuts or _visible(tex) <= LINE:
        return tex
    parts = [tex[: cuts[0]]] + [tex[a + 1 : b] for a, b in zip(cuts, cuts[1:] + [len(tex)])]
    lines = []
    for i, part in enumerate(parts[1:]):
        for j, line in enumerate(_sum_lines(part.strip())):
            if j > 0:
                lines.append(f"&\\quad {line}")
            elif i == 0:
                lines.append(f"{parts[0].strip()} &= {line}")
            else:
                lines.append(f"&= {line}")
    if len(lines) == 1:
        return tex
    return "\\begin{aligned}" + " \\\\ ".join(lines) + "\\end{aligned}"


def _source(s) -> str:
    """The source's form: LaTeX (a chain of equalities one per line), or a claim in words
    (``Claim: ...``), shown verbatim."""
    return _text(s) if str(s).lstrip().startswith("Claim:") else _math(_chain(s))


# The verdicts as sphinx-design badges: a colour and a word, readable without the colour too.
BADGES = {
    "correct": "{bdg-success}`correct`",
    L.CONVENTION: "{bdg-info}`convention`",
    "typo": "{bdg-warning}`typo`",
    "wrong": "{bdg-danger}`wrong`",
    L.PENDING: "{bdg-secondary}`pending`",
}
_CHAPTER_TARGET = re.compile(r"^\((ch-[\w-]+)\)=\s*$", re.M)


def chapter_target(srcdir: Path, chapter: str | None) -> str | None:
    """The ``(ch-…)=`` target of the chapter file ``chapter`` (e.g. ``book/forward.md``), if any."""
    if not chapter:
        return None
    path = Path(srcdir, chapter)
    m = _CHAPTER_TARGET.search(path.read_text(encoding="utf-8")) if path.exists() else None
    return m.group(1) if m else None


def _where(e, equations, targets, chapters, missing: list) -> str:
    """The equation's number (a link to it) and the chapter it is in, "(4.2), Chapter 4"."""
    if e["verdict"] == L.PENDING:
        return "not derived yet"
    chapter = chapters.get(e.get("chapter"))
    in_chapter = f", {_role('numref', f'Chapter %s <{chapter}>')}" if chapter else ""
    if e["label"] in equations:
        return _role("eq", e["label"]) + in_chapter
    if e["label"] in targets:
        return _role("ref", f"the text <{e['label']}>") + in_chapter
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


def _dropdown(title: str, body: list[str]) -> list[str]:
    return ["`````{dropdown} " + title, *body, "`````", ""]


def render(entries, equations, targets=frozenset(), missing=None, chapters=None) -> str:
    """The MyST Markdown that replaces the marker; unresolvable labels are appended to ``missing``.

    ``chapters`` maps a chapter file (``book/X.md``) to its ``(ch-…)=`` target.
    """
    missing = [] if missing is None else missing
    chapters = chapters or {}
    out: list[str] = []
    by_source: dict[str, list] = {}
    for e in entries:
        by_source.setdefault(e["source"], []).append(e)
    counts = Counter(e["verdict"] for e in entries)

    out += ["## Summary", ""]
    if not entries:
        return "\n".join(out + ["The ledger has no entries yet."])
    verdicts = [v for v in L.VERDICTS if v != L.PENDING] + ([L.PENDING] if counts[L.PENDING] else [])
    rows = []
    for src, es in sorted(by_source.items()):
        c = Counter(e["verdict"] for e in es)
        key = SOURCE_KEYS.get(src[:3])
        rows.append([_role("cite:label", key) if key else _code(src), str(len(es)), *(str(c[v]) for v in verdicts)])
    rows.append(["**all**", f"**{len(entries)}**", *(f"**{counts[v]}**" for v in verdicts)])
    out += _list_table(["source", "equations", *(BADGES[v] for v in verdicts)], rows,
                       [24] + [76 // (len(verdicts) + 1)] * (len(verdicts) + 1), "ledger-summary")

    out += ["## Equations by source", ""]
    for src, es in sorted(by_source.items()):
        num = src[:3]
        key = SOURCE_KEYS.get(num)
        out += [f"### Source {num}", ""]
        if key:
            out += [f"The equations of {_role('cite:label', key)}, in the order they appear in it.", ""]
        rows = [[[f"{_code(e['id'])} {BADGES[e['verdict']]}", _where(e, equations, targets, chapters, missing)],
                 _source(e["source_form"])] for e in es]
        out += _list_table(["entry, verdict, derived in", "in the source"], rows, [18, 82], "ledger-source")
        details = [[_code(e["id"]), _text(e["section"]),
                    [_code(e["function"]) if e.get("function") else "",
                     *(_code(t.removeprefix("tests/")) for t in e.get("tests") or [])]] for e in es]
        out += _dropdown(f"Source {num}: sections, code and tests",
                         _list_table(["entry", "section of the source", "cnnref function; tests"], details,
                                     [13, 32, 55], "ledger-details"))

    out += ["## Errata", ""]
    errata = [e for e in entries if e["verdict"] in L.ERRATA_VERDICTS]
    if not errata:
        out += ["No entry is a typo, wrong, or correct only under a convention.", ""]
        return "\n".join(out)
    out += ["The equations that are wrong, contain a typo, or hold only under a convention the source "
            "does not state: what the source prints, the form that holds, and the cell of the book that "
            "shows the difference.", ""]
    rows = []
    for e in errata:
        evidence = ""
        if e.get("evidence") in targets:
            evidence = _role("ref", f"the cell <{e['evidence']}>")
        elif e.get("evidence") in equations:
            evidence = _role("eq", e["evidence"])
        elif e.get("evidence"):
            missing.append(f"{e['id']}: evidence target {e['evidence']!r} is not in the book")
            evidence = _code(e["evidence"])
        fix = f"holds: {_source(e['correction'])}" if e.get("correction") else ""
        rows.append([[_code(e["id"]), BADGES[e["verdict"]], evidence],
                     [f"printed: {_source(e['source_form'])}", fix, _inline(e.get("note"))]])
    out += _list_table(["entry", "the source's form, the form that holds, and why"], rows, [18, 82], "ledger-errata")
    return "\n".join(out)


_CITATION = re.compile(r"\[(eq-[A-Za-z0-9_.:-]+)\]")


_DISPLAY = re.compile(r"\$\$(.*?)\$\$[ \t]*\(([A-Za-z0-9_.:-]+)\)[ \t]*$", re.S | re.M)


def chapter_equations(path: Path) -> list[str]:
    """The equation labels of the chapter file ``path``, in the order they appear."""
    text = path.read_text(encoding="utf-8")
    found = [(m.start(), m.group(1)) for m in L._EQ_LABEL_RE.finditer(text)]
    found += [(m.start(), m.group(2)) for m in L._MATH_DIRECTIVE_LABEL_RE.finditer(text)]
    return [label for _, label in sorted(found)]


def equation_bodies(path: Path) -> dict[str, str]:
    """Label -> the LaTeX of each ``$$ … $$ (label)`` equation of the chapter file ``path``."""
    return {m.group(2): " ".join(m.group(1).split()) for m in _DISPLAY.finditer(path.read_text(encoding="utf-8"))}


def functions_citing(package: Path) -> dict[str, list[str]]:
    """Book label -> the public cnnref functions whose docstrings cite it as ``[eq-…]``."""
    import ast

    out: dict[str, list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if any(p.startswith("_") for p in parts[1:]):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                for label in _CITATION.findall(ast.get_docstring(node) or ""):
                    out.setdefault(label, []).append(".".join([*parts, node.name]))
    return out


def render_index(chapters, functions: dict[str, list[str]], bodies=None) -> str:
    """The index of the book's own equations: ``chapters`` is a list of (chapter target, labels);
    ``bodies`` maps a label to its LaTeX, shown beside its number."""
    bodies = bodies or {}
    out = ["## The book's own equations", "",
           "Several chapters derive equations that no source prints. Each is listed with "
           "the `cnnref` functions whose documentation cites it, where one does.", ""]
    for target, labels in chapters:
        if not labels:  # tests/test_ledger.py requires every indexed chapter to have equations
            continue
        rows = [[_role("eq", label), [_math(_chain(bodies[label])) if label in bodies else "",
                                      "; ".join(_code(f) for f in functions.get(label, []))]]
                for label in labels]
        out += [_role("numref", f"Chapter {{number}}, {{name}} <{target}>"), ""]
        out += _list_table(["number", "the equation; the functions that compute it"], rows, [12, 88], "ledger-index")
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
            chapters = {e.get("chapter"): chapter_target(Path(app.srcdir), e.get("chapter")) for e in entries}
            generated = render(entries, equations, targets, missing, {k: v for k, v in chapters.items() if v})
            for msg in missing:
                logger.warning(f"ledger: {msg}", location=docname)
    index, bodies = [], {}
    for doc in app.config.ledger_index_chapters:
        path = Path(app.srcdir, doc + ".md")
        app.env.note_dependency(str(path))
        target = chapter_target(Path(app.srcdir), doc + ".md")
        if target is None:
            logger.warning(f"ledger: {doc} (ledger_index_chapters) has no (ch-…)= target", location=docname)
            continue
        index.append((target, chapter_equations(path)))
        bodies.update(equation_bodies(path))
    if index:
        generated += "\n\n" + render_index(index, functions_citing(Path(app.srcdir, "cnnref")), bodies)
    source[0] = source[0].replace(MARKER, generated, 1)


def always_reread(app, env, added, changed, removed):
    """The ledger page depends on the ledger and on every chapter's labels: re-read it each build."""
    page = app.config.ledger_page
    return [page] if page in env.found_docs and page not in added | changed else []


def setup(app):
    app.add_config_value("ledger_path", "book/ledger.yml", "env")
    app.add_config_value("ledger_page", "book/ledger", "env")
    app.add_config_value("ledger_index_chapters", [], "env")  # chapters whose own equations are indexed
    app.connect("source-read", on_source_read)
    app.connect("env-get-outdated", always_reread)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
