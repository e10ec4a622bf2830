"""Root test configuration.

``tests/parity`` needs torch and the reference implementation, which live only in the
parity venv (``scripts/parity-venv``); ``scripts/test`` runs it there. In any other
environment that folder is not collected, and the report header says so.
"""

from __future__ import annotations

import importlib.util

HAVE_REFERENCE = all(
    importlib.util.find_spec(name) is not None for name in ("torch", "indextts", "transformers")
)

collect_ignore = [] if HAVE_REFERENCE else ["parity", "compare_pytorch_mlx.py"]


def pytest_report_header(config):
    if not HAVE_REFERENCE:
        return "tests/parity not collected: no torch/reference here (scripts/test runs them)"
    return "parity venv: reference implementation available"
