"""Package metadata of `mlx_indextts_models`."""

from __future__ import annotations

import re
from pathlib import Path

import mlx_indextts_models

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_version_matches_pyproject():
    version = re.search(r'^version = "([^"]+)"', PYPROJECT.read_text(), re.MULTILINE)
    assert version and mlx_indextts_models.__version__ == version.group(1)


def test_public_names_exist():
    assert mlx_indextts_models.__all__
    for name in mlx_indextts_models.__all__:
        assert getattr(mlx_indextts_models, name) is not None, name
