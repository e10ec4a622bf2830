"""Package metadata of the five workspace packages: version and public names."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

PACKAGES = Path(__file__).resolve().parents[1] / "packages"

# (workspace folder, import name)
WORKSPACE = [
    ("mlx-audio-features", "mlx_audio_features"),
    ("mlx-indextts-models", "mlx_indextts_models"),
    ("indextts-weights", "indextts_weights"),
    ("indextts-pipeline", "indextts_mlx"),
    ("indextts-cli", "indextts_cli"),
]


@pytest.mark.parametrize(("folder", "name"), WORKSPACE, ids=[name for _, name in WORKSPACE])
def test_version_matches_pyproject(folder, name):
    pyproject = (PACKAGES / folder / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE)
    assert version and importlib.import_module(name).__version__ == version.group(1)


@pytest.mark.parametrize(("folder", "name"), WORKSPACE, ids=[name for _, name in WORKSPACE])
def test_public_names_exist(folder, name):
    package = importlib.import_module(name)
    assert package.__all__
    for public in package.__all__:
        assert getattr(package, public) is not None, public


def test_every_workspace_package_is_listed():
    folders = {p.parent.name for p in PACKAGES.glob("*/pyproject.toml")}
    assert folders == {folder for folder, _ in WORKSPACE}
