"""How the chapters check themselves: one chapter setup call, and assertions that say what they found.

Independent of ``cnnref``'s implementation (``tests/test_book_helpers.py`` checks that nothing here
imports it): the relative error is computed here, not taken from ``cnnref.gradcheck``.

- :func:`setup`: float64 jax on the CPU, four-digit numpy prints, a seeded generator.
- :func:`agree`: assert two arrays agree to a relative tolerance, and print that they do.
- :func:`differ`: assert two arrays do *not* agree (a wrong formula is caught), and print by how much.
- :func:`show_source`: display a function's source, where the book first uses it.
"""

from __future__ import annotations

import inspect

import numpy as np

__all__ = ["agree", "differ", "relative_error", "setup", "show_source"]

NAME_WIDTH = 50  # the printed name column, so that a run of checks lines up


def setup(seed: int = 0) -> np.random.Generator:
    """Prepare a chapter: jax (if installed) in float64 on the CPU, numpy prints with four decimals
    and no scientific notation for small numbers, and ``np.random.default_rng(seed)``, returned."""
    try:
        import jax
    except ImportError:  # a chapter that needs jax imports it itself and says so
        pass
    else:
        jax.config.update("jax_platforms", "cpu")  # no probing for accelerators: nothing on stderr
        jax.config.update("jax_enable_x64", True)
    np.set_printoptions(precision=4, suppress=True)
    return np.random.default_rng(seed)


def relative_error(got, ref) -> float:
    """max|got − ref| / max(max|got|, max|ref|) over arrays of one shape (0.0 when
    both are zero): relative to the largest entry, so tiny entries cannot inflate it."""
    got, ref = np.asarray(got), np.asarray(ref)
    if got.shape != ref.shape:
        raise ValueError(f"shapes differ: {got.shape} and {ref.shape}")
    scale = max(np.max(np.abs(got), initial=0.0), np.max(np.abs(ref), initial=0.0))
    return 0.0 if scale == 0.0 else float(np.max(np.abs(got - ref)) / scale)


def agree(name: str, got, ref, tol: float = 1e-12) -> None:
    """Assert that got and ref have one shape and a relative_error below tol, and
    print that they agree: the bound, not the error (round-off varies by machine)."""
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape, f"{name}: shape {got.shape} != {ref.shape}"
    err = relative_error(got, ref)
    assert err < tol, f"{name}: relative error {err:.1e} >= {tol:.0e}"
    print(f"{name:<{NAME_WIDTH}} agrees (relative error < {tol:.0e})")


def differ(name: str, got, ref, at_least: float = 1e-3) -> None:
    """Assert that got is *not* ref: another shape, or a relative_error of at least
    at_least; print which, with the error to two significant digits."""
    got, ref = np.asarray(got), np.asarray(ref)
    if got.shape != ref.shape:
        print(f"{name:<{NAME_WIDTH}} differs (shape {got.shape} vs {ref.shape})")
        return
    err = relative_error(got, ref)
    assert err >= at_least, f"{name}: relative error {err:.1e} < {at_least:.0e}"
    print(f"{name:<{NAME_WIDTH}} differs (relative error {err:.2g})")


def show_source(*functions):
    """The source of ``functions`` as one Markdown code block, highlighted like the book's own code
    (how a chapter shows a helper it imports, where the helper is first used)."""
    from IPython.display import Markdown

    source = "\n\n\n".join(inspect.getsource(f).rstrip() for f in functions)
    return Markdown(f"```python\n{source}\n```")
