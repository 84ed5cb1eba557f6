"""Sphinx extension: launch buttons open ``notebooks/X.ipynb``, not the chapter source ``book/X.md``.

sphinx-book-theme builds the Binder/Colab/JupyterHub URLs from the page's source file
(``book/X.md``). Chapters are paired with ``notebooks/X.ipynb`` (committed with outputs), which is
what a reader should open. This handler runs after the theme's (priority 501) and rewrites the
path in those URLs.

On GitHub Actions the repository URL comes from ``GITHUB_REPOSITORY`` so the buttons point at the
repository the book was built from, whatever ``repository.url`` in ``_config.yml`` says.
"""

from __future__ import annotations

import os

PREFIX_BOOK, PREFIX_NB = "book/", "notebooks/"


def notebook_path(pagename: str) -> str | None:
    """``book/X`` -> ``notebooks/X.ipynb``; None for pages outside ``book/``."""
    if not pagename.startswith(PREFIX_BOOK):
        return None
    return PREFIX_NB + pagename[len(PREFIX_BOOK):] + ".ipynb"


def rewrite_launch_urls(app, pagename, templatename, context, doctree):
    target = notebook_path(pagename)
    if target is None:
        return
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            url = button.get("url") or ""
            # Binder: ...?urlpath=tree/book/X.md   Colab: .../blob/main/book/X.md
            for src in (pagename + ".md", pagename + ".ipynb"):
                if url.endswith("/" + src):
                    button["url"] = url[: -len(src)] + target


def use_ci_repository(app, config):
    repo = os.environ.get("GITHUB_REPOSITORY")
    if repo:
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        config.html_theme_options["repository_url"] = f"{server}/{repo}"


def setup(app):
    app.connect("config-inited", use_ci_repository)
    app.connect("html-page-context", rewrite_launch_urls, priority=900)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
