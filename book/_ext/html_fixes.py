"""Sphinx extension: keep the built pages free of JavaScript console errors.

sphinx-thebe (loaded by Jupyter Book) registers its inline configuration script,
``const THEBE_JS_URL = ...``, in a way that Sphinx 7 emits twice per page; the second copy throws
"Identifier 'THEBE_JS_URL' has already been declared" (the copies differ only in a filename of None
versus ""). Drop such duplicate script entries.
"""

from __future__ import annotations


def _key(script):
    attrs = getattr(script, "attributes", {}) or {}
    return (getattr(script, "filename", script) or "", tuple(sorted((k, str(v)) for k, v in attrs.items())))


def dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for s in scripts:
        k = _key(s)
        if k not in seen:
            seen.add(k)
            unique.append(s)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
