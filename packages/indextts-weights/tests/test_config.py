"""WeightsConfig: defaults, environment variables, overrides, and validate()."""

from __future__ import annotations

from pathlib import Path

import pytest

from indextts_weights.config import ENV_BPE_MODEL, ENV_WEIGHTS_DIR, WEIGHT_FILES, WeightsConfig
from indextts_weights.errors import WeightsError, WeightsMissingError

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


def test_validate_names_what_is_missing_in_one_phrase_then_the_command(tmp_path):
    fill(tmp_path, ["gpt", "w2vbert"])
    with pytest.raises(WeightsMissingError) as err:
        WeightsConfig(weights_dir=tmp_path).validate()
    assert isinstance(err.value, WeightsError) and isinstance(err.value, FileNotFoundError)
    phrase, command = str(err.value).splitlines()
    missing = [n for n in [*REQUIRED, "bpe_model"] if n not in ("gpt", "w2vbert")]
    head = f"weights in {tmp_path} are incomplete: missing "
    assert phrase.startswith(head)
    assert sorted(phrase[len(head) :].split(", ")) == sorted(
        WEIGHT_FILES.get(n, "bpe.model") for n in missing
    )
    assert command == f"get them with: indextts-weights download --out {tmp_path}"


def test_validate_of_an_empty_folder_says_so_without_a_listing(tmp_path):
    with pytest.raises(WeightsMissingError) as err:
        WeightsConfig(weights_dir=tmp_path).validate()
    assert str(err.value).splitlines()[0] == f"no IndexTTS-2 weights in {tmp_path}"
    assert len(str(err.value)) < 200


def test_validate_names_a_file_outside_the_folder_by_its_path(tmp_path):
    fill(tmp_path, [*REQUIRED, "bpe_model"])
    elsewhere = tmp_path / "other" / "gpt.npz"
    with pytest.raises(WeightsMissingError, match=f"missing {elsewhere}\n"):
        WeightsConfig(weights_dir=tmp_path, gpt=elsewhere).validate()


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
