"""The seeded checkpoints load the way the reference loads the official files."""

from __future__ import annotations

import pytest
import torch

from parity import checkpoints
from parity.checkpoints import EMO_NUM, real_config


def test_real_config_is_the_official_one():
    cfg = real_config()
    assert cfg.gpt.model_dim == 1280 and cfg.gpt.layers == 24 and cfg.gpt.heads == 20
    assert cfg.gpt.stop_mel_token == 8193 and cfg.semantic_codec.codebook_size == 8192
    assert cfg.s2mel.preprocess_params.spect_params.fmax == "None"


def test_campplus_checkpoint_loads_strictly_into_the_reference_model():
    state = torch.load(checkpoints.campplus_checkpoint(0), map_location="cpu", weights_only=True)
    model = checkpoints.campplus_module(seed=123)  # different weights, same architecture
    model.load_state_dict(state, strict=True)
    assert len(state) == 937  # docs/checkpoints.md


def test_semantic_codec_checkpoint_loads_like_the_reference():
    import safetensors.torch

    path = checkpoints.semantic_codec_checkpoint(0)
    model = checkpoints.semantic_codec_module(seed=123)
    missing, unexpected = safetensors.torch.load_model(model, str(path), strict=True)
    assert not missing and not unexpected
    state = safetensors.torch.load_file(str(path))
    assert len(state) == 239 and sum(v.numel() for v in state.values()) == 44_289_808


def test_stats_and_emotion_matrices_have_the_official_structure():
    stats = torch.load(checkpoints.semantic_stats_checkpoint(0), weights_only=True)
    assert set(stats) == {"mean", "var"} and stats["mean"].shape == (1024,)
    assert bool((stats["var"] > 0).all())
    feat1, feat2 = checkpoints.emotion_matrix_checkpoints(0)
    spk, emo = torch.load(feat1, weights_only=True), torch.load(feat2, weights_only=True)
    assert spk.shape == (73, 192) and emo.shape == (73, 1280)
    assert [len(g) for g in torch.split(emo, list(EMO_NUM))] == list(EMO_NUM)


@pytest.mark.parametrize("builder", ["campplus_checkpoint", "semantic_stats_checkpoint"])
def test_same_seed_same_file_other_seed_other_file(builder):
    build = getattr(checkpoints, builder)
    assert build(0) == build(0) != build(1)
