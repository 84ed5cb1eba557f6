"""Sphinx extension: the sources are cited by the names the text uses ("Source 004").

The bibliography's entries are the five source documents, keys ``src000`` … ``src004``. pybtex's
numeric labels would call ``src000`` "[1]", one off from the "source 000" of the text; this label
style derives the label from the key instead, so the prose, its citations and the bibliography
all say "Source 004". ``{cite:label}`src004``` writes the label alone (no brackets) as a link to
the entry, for use inside a sentence. Selected with ``bibtex_default_style: sources``.
"""

from __future__ import annotations

import re

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle

_KEY = re.compile(r"^src(\d{3})$")


class SourceLabelStyle(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        for entry in sorted_entries:
            m = _KEY.match(entry.key)
            if m is None:
                raise ValueError(f"bibliography key {entry.key!r}: expected src000 … src999")
            yield f"Source {m.group(1)}"


class SourcesStyle(UnsrtStyle):
    default_label_style = "source-number"


register_plugin("pybtex.style.labels", "source-number", SourceLabelStyle)
register_plugin("pybtex.style.formatting", "sources", SourcesStyle)


def setup(app):
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
