"""The official config files beside the checkpoints give each converted model's configuration."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from indextts_weights.convert import convert, convert_file
from indextts_weights.errors import WeightsError
from indextts_weights.npz import read_config
from indextts_weights.readers.testing import tensor, write_torch_zip
from indextts_weights.source_config import (
    FIXED_KEYS,
    ModelConfig,
    config_mismatches,
    config_with,
    expected_config,
    find_config,
    load_yaml,
    model_configs,
    read_json_config,
    read_yaml_config,
)
from mlx_indextts_models.bigvgan import BigVGANArgs
from mlx_indextts_models.campplus import CAMPPlusArgs
from mlx_indextts_models.config import VectorArgs
from mlx_indextts_models.gpt import UnifiedVoiceArgs
from mlx_indextts_models.gpt_conditioning import GPTConditioningArgs
from mlx_indextts_models.s2mel.model import S2MelArgs
from mlx_indextts_models.semantic_codec import SemanticCodecArgs
from mlx_indextts_models.w2vbert import W2VBertArgs

REFERENCE = Path(__file__).resolve().parents[3] / "docs" / "reference"
REAL = REFERENCE / "indextts2-config.yaml"
W2VBERT_JSON = REFERENCE / "w2v-bert-2.0-config.json"
BIGVGAN_JSON = REFERENCE / "bigvgan_v2_22khz_80band_256x.json"


def edited(folder: Path, *replacements: tuple[str, str]) -> Path:
    text = REAL.read_text()
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = folder / "config.yaml"
    path.write_text(text)
    return path


def test_the_official_config_gives_exactly_the_published_configuration():
    configs, notes = read_yaml_config(REAL)
    assert notes == [] and config_mismatches(load_yaml(REAL)) == []
    assert configs["gpt"].args == UnifiedVoiceArgs()
    assert configs["s2mel"].args == S2MelArgs()
    assert configs["semantic_codec"].args == SemanticCodecArgs()
    assert {c.origin for c in configs.values()} == {str(REAL)}
    expected = expected_config()
    assert expected["gpt.layers"] == 24 and expected["emo_num"] == [3, 17, 2, 8, 4, 5, 10, 24]
    assert expected["s2mel.DiT.depth"] == 13 and expected["s2mel.preprocess_params.sr"] == 22050
    assert len(expected) >= 80  # GPT + conditioning, DiT, WaveNet, regulator, codec, mel
    assert set(expected) >= FIXED_KEYS


def test_sizes_are_read_from_the_file_and_reported(tmp_path):
    path = edited(
        tmp_path,
        ("    layers: 24\n", "    layers: 2\n"),
        ("    depth: 13\n", "    depth: 3\n"),
        ("    vocos_num_layers: 12\n", "    vocos_num_layers: 1\n"),
    )
    configs, notes = read_yaml_config(path)
    assert configs["gpt"].args == dataclasses.replace(UnifiedVoiceArgs(), layers=2)
    assert configs["s2mel"].args.dit.depth == 3
    assert configs["semantic_codec"].args.vocos_num_layers == 1
    assert notes == [
        "gpt.layers: published 24, this file 2",
        "s2mel.DiT.depth: published 13, this file 3",
        "semantic_codec.vocos_num_layers: published 12, this file 1",
    ]


def test_settings_the_pipeline_fixes_must_be_indextts2s(tmp_path):
    path = edited(
        tmp_path,
        ("    layers: 24\n", "    layers: 28\n"),  # a size: read, not listed
        ("emo_num: [3, 17, 2, 8, 4, 5, 10, 24]", "emo_num: [3, 17, 2, 8, 4, 5, 10, 25]"),
        ("            n_mels: 80\n", "            n_mels: 100\n"),
    )
    with pytest.raises(WeightsError) as info:
        read_yaml_config(path)
    message = str(info.value)
    assert message.startswith(f"{path} does not describe the IndexTTS-2 models this converter")
    assert "2 key(s) differ" in message and "gpt.layers" not in message
    assert "emo_num: expected [3, 17, 2, 8, 4, 5, 10, 24], found [3, 17, 2, 8, 4, 5, 10, 25]" in (
        message
    )
    assert "s2mel.preprocess_params.spect_params.n_mels: expected 80, found 100" in message


def test_another_version_is_named_with_the_keys_we_cannot_read(tmp_path):
    path = edited(
        tmp_path,
        ("version: 2.0", "version: 2.5"),
        ("    depth: 13\n", "    depth: 16\n"),
        ("        num_blocks: 4\n", ""),
    )
    with pytest.raises(WeightsError) as info:
        read_yaml_config(path)
    message = str(info.value)
    assert message.startswith(
        f"{path} is the config of IndexTTS version 2.5; this converter is for IndexTTS-2 "
        "(version 2.0): 2 key(s) differ: "
    )
    assert "gpt.emo_condition_module.num_blocks: expected 4, found '<absent>'" in message
    assert "version: expected 2.0, found 2.5" in message


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ('    condition_type: "conformer_perceiver"\n', '    condition_type: "perceiver"\n',
         "only 'conformer_perceiver' is ported"),
        ("        is_causal: false\n", "        is_causal: true\n",
         r"unsupported DiT settings: \{'is_causal': True\}"),
        ("        vector_quantize: false\n", "        vector_quantize: true\n", "vector_quantize"),
        ("    heads: 20\n", "    heads: 7\n", "gpt"),  # 1280 is not a multiple of 7
    ],
)  # fmt: skip
def test_a_variant_the_models_do_not_implement_is_one_error(tmp_path, old, new, match):
    path = edited(tmp_path, (old, new))
    with pytest.raises(WeightsError, match=match) as info:
        read_yaml_config(path)
    assert str(info.value).startswith(f"{path}: ")


def test_unreadable_yaml_is_one_error(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("gpt: [unclosed\n")
    with pytest.raises(WeightsError, match="is not readable YAML"):
        read_yaml_config(path)
    path.write_text("- a list\n")
    with pytest.raises(WeightsError, match="is not a YAML mapping"):
        read_yaml_config(path)


def test_find_config_looks_in_the_folder_then_beside_the_sources(tmp_path):
    snapshot = tmp_path / "models--IndexTeam--IndexTTS-2" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    assert find_config(tmp_path, [snapshot / "gpt.pth"]) is None
    (snapshot / "config.yaml").write_text("version: 2.0\n")
    assert find_config(tmp_path, [snapshot / "gpt.pth"]) == snapshot / "config.yaml"
    (tmp_path / "config.yaml").write_text("version: 2.0\n")
    assert find_config(tmp_path, [snapshot / "gpt.pth"]) == tmp_path / "config.yaml"


def _json(tmp_path: Path, source: Path, **changes: object) -> Path:
    data = {**json.loads(source.read_text()), **changes}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


def test_the_auxiliary_models_config_json_files():
    w2vbert = read_json_config(W2VBERT_JSON, "w2vbert")
    assert w2vbert is not None and w2vbert.args == W2VBertArgs(num_hidden_layers=17)
    bigvgan = read_json_config(BIGVGAN_JSON, "bigvgan")
    assert bigvgan is not None and bigvgan.args == BigVGANArgs()
    # a flat folder's one config.json is only one of the two models'
    assert read_json_config(BIGVGAN_JSON, "w2vbert") is None
    assert read_json_config(W2VBERT_JSON, "bigvgan") is None


def test_config_json_sizes_are_read_and_fixed_settings_checked(tmp_path):
    small = read_json_config(
        _json(tmp_path, W2VBERT_JSON, hidden_size=64, num_attention_heads=2, intermediate_size=8),
        "w2vbert",
    )
    assert small is not None
    assert small.args == W2VBertArgs(
        hidden_size=64, num_attention_heads=2, intermediate_size=8, num_hidden_layers=17
    )
    with pytest.raises(WeightsError, match="num_hidden_layers is 12; IndexTTS-2 needs 17"):
        read_json_config(_json(tmp_path, W2VBERT_JSON, num_hidden_layers=12), "w2vbert")
    with pytest.raises(WeightsError, match="feature_projection_input_dim: expected 160, found 80"):
        read_json_config(_json(tmp_path, W2VBERT_JSON, feature_projection_input_dim=80), "w2vbert")
    with pytest.raises(WeightsError, match="num_mels: expected 80, found 100"):
        read_json_config(_json(tmp_path, BIGVGAN_JSON, num_mels=100), "bigvgan")
    with pytest.raises(WeightsError, match="multiply to 128, not hop_size 256"):
        read_json_config(
            _json(tmp_path, BIGVGAN_JSON, upsample_rates=[4, 4, 2, 2, 2, 1]), "bigvgan"
        )
    with pytest.raises(WeightsError, match="only AMPBlock1"):
        read_json_config(_json(tmp_path, BIGVGAN_JSON, resblock="2"), "bigvgan")


def test_model_configs_without_config_files_are_the_published_ones(tmp_path):
    configs, notes = model_configs(tmp_path, {"w2vbert": tmp_path / "model.safetensors"})
    assert notes == []
    assert configs["gpt"].args == UnifiedVoiceArgs()
    assert configs["gpt"].origin == "IndexTTS-2's published configuration (no config.yaml found)"
    assert configs["w2vbert"].args == W2VBertArgs(num_hidden_layers=17)
    assert "no w2vbert config.json beside its checkpoint" in configs["w2vbert"].origin
    assert configs["campplus"].args == CAMPPlusArgs()
    assert configs["semantic_stats"].args == VectorArgs(1024)
    assert configs["emotion_matrix"].args == VectorArgs(1280)
    assert configs["speaker_matrix"].args == VectorArgs(192)


def test_model_configs_follow_the_files_beside_the_sources(tmp_path):
    gpt_dir, w2v_dir = tmp_path / "IndexTTS-2", tmp_path / "w2v-bert-2.0"
    gpt_dir.mkdir()
    w2v_dir.mkdir()
    edited(gpt_dir, ("    model_dim: 1280\n", "    model_dim: 640\n"))
    _json(w2v_dir, W2VBERT_JSON, hidden_size=512, num_attention_heads=8)
    sources = {"gpt": gpt_dir / "gpt.pth", "w2vbert": w2v_dir / "model.safetensors"}
    configs, notes = model_configs(tmp_path, sources)
    assert configs["gpt"].args.model_dim == 640 and notes == [
        "gpt.model_dim: published 1280, this file 640"
    ]
    assert configs["w2vbert"].origin == str(w2v_dir / "config.json")
    # the tables are as wide as the models they feed
    assert configs["semantic_stats"].args == VectorArgs(512)
    assert configs["emotion_matrix"].args == VectorArgs(640)


@pytest.fixture
def stats_folder(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    mean = np.zeros(1024, np.float32)
    var = np.ones(1024, np.float32)
    write_torch_zip(src / "wav2vec2bert_stats.pt", {"mean": tensor(mean), "var": tensor(var)})
    return src


def test_convert_reads_the_config_first_and_records_it(stats_folder, tmp_path):
    lines: list[str] = []
    (stats_folder / "config.yaml").write_text(REAL.read_text())
    convert(stats_folder, tmp_path / "ok", only=("semantic_stats",), progress=lines.append)
    assert not any(line.startswith("configuration of") for line in lines)  # models only
    assert read_config(tmp_path / "ok" / "semantic_stats.npz") == {"dim": 1024}
    edited(stats_folder, ("version: 2.0", "version: 2.5"))
    out = tmp_path / "refused"
    with pytest.raises(WeightsError, match=r"IndexTTS version 2\.5"):
        convert(stats_folder, out, only=("semantic_stats",))
    assert not out.exists() or not any(out.iterdir())  # nothing converted


def test_a_table_that_does_not_fit_its_model_is_refused(stats_folder, tmp_path):
    source = stats_folder / "wav2vec2bert_stats.pt"
    config = ModelConfig(VectorArgs(512), "a 512-wide W2V-BERT")
    with pytest.raises(WeightsError, match=r"expected mean/var of shape \(512,\)"):
        convert_file("semantic_stats", source, tmp_path / "s.npz", config=config)
    assert not (tmp_path / "s.npz").exists()


def test_config_with_writes_sizes_that_read_back(tmp_path):
    import yaml

    from mlx_indextts_models.testing import tiny_s2mel_args, tiny_semantic_codec_args

    gpt = UnifiedVoiceArgs(
        model_dim=256, heads=4, layers=3, conditioning=GPTConditioningArgs(model_dim=256)
    )
    codec = dataclasses.replace(tiny_semantic_codec_args(), codebook_size=8192)
    s2mel = dataclasses.replace(
        tiny_s2mel_args(), dit=dataclasses.replace(tiny_s2mel_args().dit, in_channels=80)
    )
    written = config_with(load_yaml(REAL), gpt=gpt, s2mel=s2mel, semantic_codec=codec)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(written))
    configs, notes = read_yaml_config(path)
    assert configs["gpt"].args == gpt and configs["semantic_codec"].args == codec
    assert configs["s2mel"].args == dataclasses.replace(s2mel, gpt_layer=S2MelArgs().gpt_layer)
    assert "gpt.layers: published 24, this file 3" in notes
    assert load_yaml(REAL)["gpt"]["layers"] == 24  # the original is not changed
