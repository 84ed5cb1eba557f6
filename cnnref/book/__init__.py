"""What the book's chapters use besides the layers: checks, the jax oracle, recorded data, ``glue``.

All of it ships with the package, so that a chapter runs as a notebook on its own (Colab, Binder,
a copy in an empty folder) with nothing of the repository around it and none of the book's build
tools installed. Nothing here is needed to *use* ``cnnref``.

- :mod:`cnnref.book.checks`: ``setup()`` of a chapter, and the assertions ``agree`` and
  ``differ`` (re-exported here), independent of ``cnnref``'s implementation.
- :mod:`cnnref.book.jaxref`: the independent oracle in jax (layers, losses, the digits network,
  the probe loss); ``from cnnref.book import jaxref`` (it imports jax).
- :func:`recorded_benchmark`: the benchmark run the speed chapter quotes
  (``benchmark.json`` beside this file, written by ``benchmarks/bench_conv.py --json``).
- :func:`glue`: stores a value in the notebook's outputs under a name, for the book's
  ``{glue}`` roles, in exactly the form ``myst_nb.glue`` writes (without importing myst-nb).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from .checks import agree, differ, relative_error, setup, show_source

__all__ = ["agree", "differ", "glue", "recorded_benchmark", "relative_error", "setup", "show_source"]

# The MIME-type prefix myst-nb (and papermill/scrapbook before it) gives a glued value that is
# stored but not shown.
GLUE_PREFIX = "application/papermill.record/"


def recorded_benchmark() -> dict:
    """The committed benchmark run: a dict with ``machine``, ``repeat``, ``workloads``
    (name -> [N, C_in, H, W, C_out, k, stride, padding]), ``pool_workloads``
    (name -> [N, C, H, W, size, stride]) and ``rows`` (one dict per timing, seconds under
    ``"<library> s"``)."""
    text = resources.files(__name__).joinpath("benchmark.json").read_text(encoding="utf-8")
    return json.loads(text)


def glue(name: str, variable: Any, display: bool = True) -> None:
    """Display ``variable`` with metadata that names it ``name`` for the book's ``{glue}`` roles.

    With ``display=False`` the value is stored in the cell's outputs but not shown in a notebook
    (its MIME types carry :data:`GLUE_PREFIX`). The output is the one ``myst_nb.glue`` produces
    (a test compares them), so the strict build finds the value whichever of the two wrote it.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"glue: name must be a non-empty str, got {name!r}")
    from IPython.core.formatters import format_display_data
    from IPython.display import display as ipy_display

    mimebundle, metadata = format_display_data(variable)
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
    ipy_display({prefix + k: v for k, v in mimebundle.items()}, raw=True, metadata=metadata)
