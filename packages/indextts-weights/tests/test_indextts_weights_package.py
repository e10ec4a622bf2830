"""Package metadata of `indextts_weights`."""

from __future__ import annotations

import re
from pathlib import Path

import indextts_weights

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_version_matches_pyproject():
    version = re.search(r'^version = "([^"]+)"', PYPROJECT.read_text(), re.MULTILINE)
    assert version and indextts_weights.__version__ == version.group(1)


def test_public_names_exist():
    assert indextts_weights.__all__
    for name in indextts_weights.__all__:
        assert getattr(indextts_weights, name) is not None, name
