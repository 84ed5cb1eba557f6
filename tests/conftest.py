"""Project-wide pytest hooks (kept minimal).

1. Strict nbval compares every stored output except stderr: stderr (e.g. a library warning) is
   machine-dependent, and the strict book build already fails on any stderr output.
2. The terminal summary reports how many ledger entries are still pending.
"""

import os
import sys
from pathlib import Path

# Before anything imports jax: the CPU only, without probing for accelerators (no stderr noise);
# and XLA's LLVM optimisation level 0, which changes only how long a kernel takes to compile, not
# what it computes (each new shape that hypothesis draws compiles about twice as fast).
os.environ.setdefault("JAX_PLATFORMS", "cpu")
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))
import ledger  # noqa: E402  (book/_ext/ledger.py)


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        nb = item.parent  # nbval's IPyNbFile holds the keys it does not compare
        if hasattr(nb, "skip_compare") and "stderr" not in nb.skip_compare:
            nb.skip_compare = (*nb.skip_compare, "stderr")


def pytest_terminal_summary(terminalreporter, config):
    here = Path(__file__).resolve().parent
    runs = {Path(a.split("::")[0]).resolve() for a in config.args}
    if not runs & {here, here / "test_ledger.py"}:
        return  # the ledger tests are not part of this run
    path = ledger.ledger_path()
    try:
        pending, total = ledger.pending_count(ledger.load(path))
    except Exception as exc:  # noqa: BLE001 - the ledger tests report the details
        terminalreporter.write_line(f"ledger: cannot read {path}: {type(exc).__name__}: {exc}")
        return
    terminalreporter.write_line(f"ledger: {pending} of {total} entries pending")
