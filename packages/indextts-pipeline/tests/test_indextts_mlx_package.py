"""Package metadata of `indextts_mlx`."""

from __future__ import annotations

import re
from pathlib import Path

import indextts_mlx

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_version_matches_pyproject():
    version = re.search(r'^version = "([^"]+)"', PYPROJECT.read_text(), re.MULTILINE)
    assert version and indextts_mlx.__version__ == version.group(1)


def test_public_names_exist():
    assert indextts_mlx.__all__
    for name in indextts_mlx.__all__:
        assert getattr(indextts_mlx, name) is not None, name
