"""What the figure tests share: matplotlib off-screen, every figure closed after each test, and
the texts a figure wrote into an axes. Import ``close_figures`` into a test module to use it."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # tests draw off-screen

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    plt.close("all")
    yield
    plt.close("all")


def texts(ax) -> list[str]:
    """The strings written into ``ax`` (cell values, labels), in drawing order."""
    return [t.get_text() for t in ax.texts]
