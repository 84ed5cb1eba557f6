"""The package's layout is its map: every module is named in ``cnnref``'s docstring, and no module
reaches into another module's private names (``from .conv import _x`` or ``conv._x``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cnnref

PKG = Path(cnnref.__file__).resolve().parent
MODULES = sorted(p for p in PKG.rglob("*.py") if p.name != "__init__.py")


def test_every_module_is_on_the_map():
    doc = cnnref.__doc__
    missing = [p.stem for p in MODULES if f"``{p.stem}``" not in doc and p.parent == PKG]
    missing += [p.parent.name for p in MODULES if p.parent != PKG and f"``{p.parent.name}``" not in doc
                and f"cnnref.{p.parent.name}" not in doc]
    assert not missing, f"modules missing from cnnref's docstring map: {sorted(set(missing))}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_no_module_imports_another_modules_private_names(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module_aliases = set()
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            for alias in node.names:
                if alias.name.startswith("_") and not node.module:
                    # `from . import _validate`: a private module of the package is fine
                    continue
                if alias.name.startswith("_"):
                    bad.append(f"from {'.' * node.level}{node.module} import {alias.name}")
                if not node.module:
                    module_aliases.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in module_aliases and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            bad.append(f"{node.value.id}.{node.attr} (line {node.lineno})")
    assert not bad, f"{path.name} uses private names of other modules: {bad}"
