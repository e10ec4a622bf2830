"""WeightsConfig: defaults, environment variables, overrides, and validate()."""

from __future__ import annotations

from pathlib import Path

import pytest

from indextts_weights.config import ENV_BPE_MODEL, ENV_WEIGHTS_DIR, WEIGHT_FILES, WeightsConfig
from indextts_weights.errors import WeightsError

REQUIRED = sorted(set(WEIGHT_FILES) - {"emotion_matrix", "speaker_matrix"})


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.delenv(ENV_WEIGHTS_DIR, raising=False)
    monkeypatch.delenv(ENV_BPE_MODEL, raising=False)


def fill(directory: Path, names) -> None:
    for name in names:
        target = directory / ("bpe.model" if name == "bpe_model" else WEIGHT_FILES[name])
        target.write_bytes(b"x")


def test_files_default_to_standard_names_in_the_dir(tmp_path):
    config = WeightsConfig(weights_dir=tmp_path)
    assert config.gpt == tmp_path / "gpt.npz"
    assert config.s2mel == tmp_path / "s2mel_pytorch.npz"
    assert config.bpe_model == tmp_path / "bpe.model"
    assert set(config.files()) == set(WEIGHT_FILES) | {"bpe_model"}


def test_env_vars_and_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_WEIGHTS_DIR, str(tmp_path / "w"))
    monkeypatch.setenv(ENV_BPE_MODEL, str(tmp_path / "tok.model"))
    config = WeightsConfig(gpt=tmp_path / "elsewhere.npz")
    assert config.weights_dir == tmp_path / "w"
    assert config.bpe_model == tmp_path / "tok.model"
    assert config.gpt == tmp_path / "elsewhere.npz"
    assert config.campplus == tmp_path / "w" / "campplus.npz"
    assert WeightsConfig(weights_dir=tmp_path, bpe_model="b.model").bpe_model == Path("b.model")


def test_default_dir_without_env(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert WeightsConfig().weights_dir == tmp_path / "indextts-mlx" / "weights"


def test_validate_lists_every_missing_file_and_how_to_get_them(tmp_path):
    fill(tmp_path, ["gpt", "w2vbert"])
    with pytest.raises(WeightsError) as err:
        WeightsConfig(weights_dir=tmp_path).validate()
    message = str(err.value)
    missing = [n for n in [*REQUIRED, "bpe_model"] if n not in ("gpt", "w2vbert")]
    assert f"{len(missing)} weights file(s) missing" in message
    for name in missing:
        assert f"- {name}:" in message
    assert "- gpt:" not in message and "emotion_matrix" not in message
    assert "indextts-weights download" in message and "indextts-weights convert" in message


def test_validate_passes_when_complete_and_checks_emotion_on_request(tmp_path):
    fill(tmp_path, [*REQUIRED, "bpe_model"])
    config = WeightsConfig(weights_dir=tmp_path)
    config.validate()
    with pytest.raises(WeightsError, match="emotion_matrix"):
        config.validate(emotion=True)
    fill(tmp_path, ["emotion_matrix", "speaker_matrix"])
    config.validate(emotion=True)
    config.validate(require=("gpt",))


def test_unknown_file_name_is_an_error(tmp_path):
    with pytest.raises(KeyError):
        WeightsConfig(weights_dir=tmp_path).path("nope")
