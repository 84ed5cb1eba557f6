"""The equation ledger: load, validate and cross-check ``book/ledger.yml``.

Pure Python (PyYAML only), shared by the Sphinx extension that renders the ledger
(``ledger_tables.py``) and by ``tests/test_ledger.py``. The format is described in
CONTRIBUTING.md: a YAML list of mappings, one per equation of the five sources.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LEDGER = ROOT / "book" / "ledger.yml"
BOOK_DIR = ROOT / "book"
# The five source documents are not part of the public repository. Checks that read them run
# only where this variable names their folder (this repository's own CI: .ci/run sets it).
SOURCES_ENV = "CNNBOOK_SOURCES"
SOURCES_HINT = f"set {SOURCES_ENV}=../shared/sources (the folder of the five source documents) to run it"

PENDING = "pending"
CONVENTION = "correct under a stated convention"
VERDICTS = (PENDING, "correct", CONVENTION, "typo", "wrong")
ERRATA_VERDICTS = (CONVENTION, "typo", "wrong")

FIELDS = (
    "id", "source", "section", "source_form", "restatement", "verdict",
    "note", "correction", "label", "evidence", "function", "tests",
)
# Optional: the chapter (book/<name>.md) that covers the entry; used to plan and check coverage.
OPTIONAL_FIELDS = ("chapter",)

ID_RE = re.compile(r"^S(\d{3})-E\d{2,3}$")
SOURCE_RE = re.compile(r"^(\d{3})_[0-9a-f]{16}\.txt$")
LABEL_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)+$")
FUNCTION_RE = re.compile(r"^cnnref(\.[A-Za-z_][A-Za-z0-9_]*)+$")
CHAPTER_RE = re.compile(r"^book/[\w-]+\.md$")
TEST_ID_RE = re.compile(r"^(tests/[\w/]+\.py)::([\w:]+)(\[.*\])?$")

# `$$ ... $$ (eq-label)` (dollarmath), a `{math}` directive's `:label:`, and MyST targets `(name)=`.
_EQ_LABEL_RE = re.compile(r"\$\$[ \t]*\(([A-Za-z0-9_.:-]+)\)[ \t]*$", re.MULTILINE)
_MATH_DIRECTIVE_LABEL_RE = re.compile(
    r"^(`{3,}|:{3,})\{math\}[^\n]*\n(?:[ \t]*:[a-z-]+:[^\n]*\n)*?[ \t]*:label:[ \t]*(\S+)", re.MULTILINE
)
_TARGET_RE = re.compile(r"^\(([A-Za-z0-9_.:-]+)\)=[ \t]*$", re.MULTILINE)


def sources_dir() -> Path | None:
    """The folder of the source documents named by ``$CNNBOOK_SOURCES`` (relative to the
    repository root), or None when the variable is not set. Set to anything but a folder that
    holds ``*.txt`` files: ``FileNotFoundError`` naming the value."""
    value = os.environ.get(SOURCES_ENV, "").strip()
    if not value:
        return None
    path = (ROOT / value).resolve()
    if not path.is_dir() or not any(path.glob("*.txt")):
        raise FileNotFoundError(f"{SOURCES_ENV}={value!r}: {path} is not a folder of source documents (*.txt)")
    return path


def source_names() -> set[str] | None:
    """The file names of the source documents (None when ``$CNNBOOK_SOURCES`` is not set)."""
    folder = sources_dir()
    return None if folder is None else {p.name for p in folder.glob("*.txt")}


def ledger_path(default: Path | str = DEFAULT_LEDGER) -> Path:
    """The ledger in force: ``$CNNBOOK_LEDGER`` if set, else ``default`` (``book/ledger.yml``)."""
    env = os.environ.get("CNNBOOK_LEDGER")
    return Path(env).resolve() if env else Path(default)


def load(path: Path | str) -> list:
    """Parse the ledger file (a YAML list). An empty file is an empty ledger."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return [] if data is None else data


def _is_str(v, allow_empty=False) -> bool:
    return isinstance(v, str) and (allow_empty or v.strip() != "")


def schema_errors(entries, source_names=None) -> list[str]:
    """Every schema problem of the ledger, one message each (empty list: valid).

    ``source_names``: the allowed source file names (checked only when given).
    """
    if not isinstance(entries, list):
        return [f"the ledger must be a YAML list of mappings, got {type(entries).__name__}"]
    errors: list[str] = []
    seen: set[str] = set()
    for k, e in enumerate(entries):
        where = f"entry {k}"
        if not isinstance(e, dict):
            errors.append(f"{where}: expected a mapping, got {type(e).__name__}")
            continue
        if isinstance(e.get("id"), str):
            where = f"entry {k} ({e['id']})"
        missing = [f for f in FIELDS if f not in e]
        extra = sorted(set(e) - set(FIELDS) - set(OPTIONAL_FIELDS))
        if missing:
            errors.append(f"{where}: missing keys {missing}")
        if extra:
            errors.append(f"{where}: unknown keys {extra} (allowed: {list(FIELDS)})")
        eid, src, verdict = e.get("id"), e.get("source"), e.get("verdict")
        if not (isinstance(eid, str) and ID_RE.match(eid)):
            errors.append(f"{where}: id must look like S000-E01, got {eid!r}")
        elif eid in seen:
            errors.append(f"{where}: duplicate id {eid}")
        else:
            seen.add(eid)
        if not (isinstance(src, str) and SOURCE_RE.match(src)):
            errors.append(f"{where}: source must be a file name like 000_<16 hex>.txt, got {src!r}")
        else:
            if source_names is not None and src not in source_names:
                errors.append(f"{where}: source {src} is not one of {sorted(source_names)}")
            if isinstance(eid, str) and ID_RE.match(eid) and ID_RE.match(eid).group(1) != src[:3]:
                errors.append(f"{where}: id {eid} does not match source {src}")
        for f in ("section", "source_form", "restatement"):
            if f in e and not _is_str(e[f]):
                errors.append(f"{where}: {f} must be a non-empty string, got {e[f]!r}")
        for f in ("note", "correction", "label", "evidence", "function"):
            if e.get(f) is not None and not _is_str(e[f]):
                errors.append(f"{where}: {f} must be a non-empty string or null, got {e[f]!r}")
        if verdict not in VERDICTS:
            errors.append(f"{where}: verdict must be one of {list(VERDICTS)}, got {verdict!r}")
        for f in ("label", "evidence"):
            if _is_str(e.get(f)) and not LABEL_RE.match(e[f]):
                errors.append(f"{where}: {f} must be a kebab-case label such as eq-layer-forward, got {e[f]!r}")
        if e.get("chapter") is not None and not (isinstance(e["chapter"], str) and CHAPTER_RE.match(e["chapter"])):
            errors.append(f"{where}: chapter must be a path book/<name>.md or null, got {e['chapter']!r}")
        if _is_str(e.get("function")) and not FUNCTION_RE.match(e["function"]):
            errors.append(f"{where}: function must be a dotted path cnnref.module.name, got {e['function']!r}")
        tests = e.get("tests")
        if tests is None:
            tests = []
        if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
            errors.append(f"{where}: tests must be a list of test ids, got {tests!r}")
            tests = []
        for t in tests:
            if not TEST_ID_RE.match(t):
                errors.append(f"{where}: test id must look like tests/test_x.py::test_name, got {t!r}")
        if verdict in VERDICTS and verdict != PENDING:
            if not _is_str(e.get("label")):
                errors.append(f"{where}: a {verdict!r} entry needs the book label where it is derived")
            if not _is_str(e.get("function")):
                errors.append(f"{where}: a {verdict!r} entry needs the cnnref function that computes it")
            if not tests:
                errors.append(f"{where}: a {verdict!r} entry needs at least one test id")
            if verdict in ("typo", "wrong"):
                if not _is_str(e.get("correction")):
                    errors.append(f"{where}: a {verdict!r} entry needs its corrected form in `correction`")
                if not _is_str(e.get("evidence")):
                    errors.append(f"{where}: a {verdict!r} entry needs `evidence`, the target of the cell showing the error")
            if verdict == CONVENTION and not (_is_str(e.get("note")) or _is_str(e.get("correction"))):
                errors.append(f"{where}: a {verdict!r} entry needs a `note` stating the convention")
    return errors


def toc_files(root: Path | str = ROOT, toc: Path | str | None = None) -> list[Path] | None:
    """The Markdown files that the toc (default ``root/_toc.yml``) puts in the book (None: no toc)."""
    toc = Path(toc) if toc else Path(root) / "_toc.yml"
    if not toc.exists():
        return None
    data = yaml.safe_load(toc.read_text(encoding="utf-8")) or {}
    docs = [data["root"]] if data.get("root") else []

    def walk(items):
        for item in items or []:
            if item.get("file"):
                docs.append(item["file"])
            walk(item.get("sections"))
            walk(item.get("chapters"))

    walk(data.get("parts"))
    walk(data.get("chapters"))
    return [Path(root) / (d if d.endswith(".md") else d + ".md") for d in docs]


def book_labels(book_dir: Path | str = BOOK_DIR, toc: Path | str | None = None) -> tuple[set[str], set[str]]:
    """(equation labels, MyST targets) defined in the book's Markdown sources.

    Only the pages of the toc (default ``_toc.yml`` beside ``book_dir``) count, as only they are
    built; without a toc, every ``*.md`` under ``book_dir``.
    """
    book_dir = Path(book_dir)
    files = toc_files(book_dir.parent, toc)
    if files is None:
        files = [md for md in sorted(book_dir.rglob("*.md"))
                 if not any(part.startswith(("_build", ".")) for part in md.relative_to(book_dir).parts)]
    equations: set[str] = set()
    targets: set[str] = set()
    for md in files:
        if not md.exists():
            continue
        text = md.read_text(encoding="utf-8")
        equations.update(_EQ_LABEL_RE.findall(text))
        equations.update(m.group(2) for m in _MATH_DIRECTIVE_LABEL_RE.finditer(text))
        targets.update(_TARGET_RE.findall(text))
    return equations, targets


def test_names(path: Path | str) -> set[str]:
    """Test node names in a test module: ``test_f`` and ``TestClass::test_m`` (parsed with ast)."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    funcs = (ast.FunctionDef, ast.AsyncFunctionDef)
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, funcs) and node.name.startswith("test"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for sub in node.body:
                if isinstance(sub, funcs) and sub.name.startswith("test"):
                    names.add(f"{node.name}::{sub.name}")
    return names


def resolve_function(dotted: str):
    """Import ``cnnref.x.y`` (an attribute of a module, or a module) and return the object."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        modname = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name == modname and cut > 1:  # not a module: an attribute of its parent
                continue
            raise
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def reference_errors(entries, book_dir: Path | str = BOOK_DIR, root: Path | str = ROOT) -> list[str]:
    """For every non-pending entry: its label and evidence exist in the book, its function
    imports, and each named test exists. Assumes ``schema_errors(entries) == []``."""
    equations, targets = book_labels(book_dir)
    root = Path(root)
    cache: dict[Path, set[str] | str] = {}
    errors: list[str] = []
    for e in entries:
        if e["verdict"] == PENDING:
            continue
        where = e["id"]
        if e["label"] not in equations | targets:
            errors.append(f"{where}: label {e['label']!r} is not an equation label `$$ (label)` "
                          f"or a target `(label)=` in the book's pages (_toc.yml)")
        if e.get("evidence") and e["evidence"] not in targets | equations:
            errors.append(f"{where}: evidence target {e['evidence']!r} is not a target `(label)=` in the book's pages")
        chapter = root / e["chapter"] if e.get("chapter") else None
        if chapter is not None and chapter.exists():  # the chapter named holds what the entry cites
            if chapter not in cache:
                text = chapter.read_text(encoding="utf-8")
                cache[chapter] = (set(_EQ_LABEL_RE.findall(text)) | set(_TARGET_RE.findall(text))
                                  | {m.group(2) for m in _MATH_DIRECTIVE_LABEL_RE.finditer(text)})
            here = cache[chapter]
            for kind in ("label", "evidence"):
                if e.get(kind) and e[kind] in equations | targets and e[kind] not in here:
                    errors.append(f"{where}: {kind} {e[kind]!r} is not in its chapter {e['chapter']}")
        try:
            obj = resolve_function(e["function"])
            if not callable(obj):
                errors.append(f"{where}: {e['function']} is not callable")
        except Exception as exc:  # noqa: BLE001 - report any import failure
            errors.append(f"{where}: function {e['function']} does not import: {type(exc).__name__}: {exc}")
        for t in e["tests"]:
            m = TEST_ID_RE.match(t)
            path = root / m.group(1)
            if path not in cache:
                try:
                    cache[path] = test_names(path)
                except FileNotFoundError:
                    cache[path] = "missing"
                except SyntaxError as exc:
                    cache[path] = f"unparsable ({exc})"
            found = cache[path]
            if isinstance(found, str):
                errors.append(f"{where}: test file {m.group(1)} is {found}")
            elif m.group(2) not in found:
                errors.append(f"{where}: test {m.group(1)}::{m.group(2)} does not exist")
    return errors


def pending_count(entries) -> tuple[int, int]:
    """(pending, total)."""
    return sum(1 for e in entries if isinstance(e, dict) and e.get("verdict") == PENDING), len(entries)
