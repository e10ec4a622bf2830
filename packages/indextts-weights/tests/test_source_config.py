"""The official ``config.yaml`` beside the checkpoints is checked before converting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indextts_weights.convert import convert
from indextts_weights.errors import WeightsError
from indextts_weights.readers.testing import tensor, write_torch_zip
from indextts_weights.source_config import (
    check_source_config,
    config_mismatches,
    expected_config,
    find_config,
    load_yaml,
)

REAL = Path(__file__).resolve().parents[3] / "docs" / "reference" / "indextts2-config.yaml"


def edited(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    text = REAL.read_text()
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_the_official_config_matches_every_constant_we_build_with():
    check_source_config(REAL)
    assert config_mismatches(load_yaml(REAL)) == []
    expected = expected_config()
    assert expected["gpt.layers"] == 24 and expected["emo_num"] == [3, 17, 2, 8, 4, 5, 10, 24]
    assert expected["s2mel.DiT.depth"] == 13 and expected["s2mel.preprocess_params.sr"] == 22050
    assert len(expected) >= 80  # GPT + conditioning, DiT, WaveNet, regulator, codec, mel


def test_changed_layers_and_emo_num_are_listed(tmp_path):
    path = edited(
        tmp_path,
        ("    layers: 24\n", "    layers: 28\n"),
        ("emo_num: [3, 17, 2, 8, 4, 5, 10, 24]", "emo_num: [3, 17, 2, 8, 4, 5, 10, 25]"),
    )
    with pytest.raises(WeightsError) as info:
        check_source_config(path)
    message = str(info.value)
    assert "2 key(s) differ" in message
    assert "gpt.layers: expected 24, found 28" in message
    assert "emo_num: expected [3, 17, 2, 8, 4, 5, 10, 24], found [3, 17, 2, 8, 4, 5, 10, 25]" in (
        message
    )
    assert "version" not in message.split(":")[1]  # the file says 2.0: no version named


def test_another_version_is_named(tmp_path):
    path = edited(
        tmp_path,
        ("version: 2.0", "version: 2.5"),
        ("    depth: 13\n", "    depth: 16\n"),
        ("        num_blocks: 4\n", ""),
    )
    with pytest.raises(WeightsError) as info:
        check_source_config(path)
    message = str(info.value)
    assert message.startswith(
        f"{path} is the config of IndexTTS version 2.5; this converter is for IndexTTS-2 "
        "(version 2.0): 3 key(s) differ: "
    )
    assert "gpt.emo_condition_module.num_blocks: expected 4, found '<absent>'" in message
    assert "s2mel.DiT.depth: expected 13, found 16" in message
    assert "version: expected 2.0, found 2.5" in message


def test_types_are_compared_strictly(tmp_path):
    path = edited(tmp_path, ("    is_causal: false\n", "    is_causal: 0\n"))
    with pytest.raises(WeightsError, match=r"s2mel\.DiT\.is_causal: expected False, found 0"):
        check_source_config(path)


def test_unreadable_yaml_is_one_error(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("gpt: [unclosed\n")
    with pytest.raises(WeightsError, match="is not readable YAML"):
        check_source_config(path)
    path.write_text("- a list\n")
    with pytest.raises(WeightsError, match="is not a YAML mapping"):
        check_source_config(path)


def test_find_config_looks_in_the_folder_then_beside_the_sources(tmp_path):
    snapshot = tmp_path / "models--IndexTeam--IndexTTS-2" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    assert find_config(tmp_path, [snapshot / "gpt.pth"]) is None
    (snapshot / "config.yaml").write_text("version: 2.0\n")
    assert find_config(tmp_path, [snapshot / "gpt.pth"]) == snapshot / "config.yaml"
    (tmp_path / "config.yaml").write_text("version: 2.0\n")
    assert find_config(tmp_path, [snapshot / "gpt.pth"]) == tmp_path / "config.yaml"


@pytest.fixture
def stats_folder(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    mean = np.zeros(1024, np.float32)
    var = np.ones(1024, np.float32)
    write_torch_zip(src / "wav2vec2bert_stats.pt", {"mean": tensor(mean), "var": tensor(var)})
    return src


def test_convert_checks_the_config_first(stats_folder, tmp_path):
    lines: list[str] = []
    (stats_folder / "config.yaml").write_text(REAL.read_text())
    convert(stats_folder, tmp_path / "ok", only=("semantic_stats",), progress=lines.append)
    assert any("config.yaml: matches the IndexTTS-2 configuration" in line for line in lines)
    edited(stats_folder, ("version: 2.0", "version: 2.5"))
    out = tmp_path / "refused"
    with pytest.raises(WeightsError, match=r"IndexTTS version 2\.5"):
        convert(stats_folder, out, only=("semantic_stats",))
    assert not out.exists() or not any(out.iterdir())  # nothing converted


def test_without_config_yaml_convert_is_unchanged(stats_folder, tmp_path):
    written = convert(stats_folder, tmp_path / "w", only=("semantic_stats",))
    assert set(written) == {"semantic_stats"}
