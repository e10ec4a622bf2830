"""``indextts-weights convert`` on the real-size seeded checkpoints, run torch-free.

The ``converted`` fixture runs the CLI in the uv environment (no torch there) and fails if
the conversion imports torch; here we check what it wrote against the sources.
"""

from __future__ import annotations

import numpy as np
import torch

from indextts_weights.config import WEIGHT_FILES
from indextts_weights.load import (
    load_campplus,
    load_emotion_matrices,
    load_semantic_codec,
    load_semantic_stats,
    load_w2vbert,
)
from indextts_weights.npz import read_npz
from parity.checkpoints import emotion_matrix_checkpoints, semantic_stats_checkpoint
from parity.converted import CONVERTIBLE


def test_convert_writes_every_file(converted):
    names = sorted(p.name for p in converted.glob("*.npz"))
    assert names == sorted(WEIGHT_FILES[name] for name in CONVERTIBLE)
    assert {
        "campplus.npz",
        "emotion_matrix.npz",
        "gpt.npz",
        "semantic_codec.npz",
        "semantic_stats.npz",
        "speaker_matrix.npz",
        "w2vbert.npz",
    } <= set(names)


def test_w2vbert_keeps_exactly_17_layers_and_drops_unused_keys(converted):
    arrays = read_npz(converted / "w2vbert.npz", model="w2vbert")
    layers = {k.split(".")[2] for k in arrays if k.startswith("encoder.layers.")}
    assert layers == {str(i) for i in range(17)}
    assert "masked_spec_embed" not in arrays
    assert len(load_w2vbert(converted / "w2vbert.npz").encoder.layers) == 17


def test_stats_and_matrices_equal_their_sources(converted):
    stats = torch.load(semantic_stats_checkpoint(0), weights_only=True)
    mean, std = load_semantic_stats(converted / "semantic_stats.npz")
    np.testing.assert_array_equal(np.array(mean), stats["mean"].numpy())
    # numpy's sqrt is correctly rounded; torch's vectorized CPU sqrt is off by 1 ulp on ~20%
    # of these values, so the reference's std and ours agree to float32 rounding.
    np.testing.assert_allclose(np.array(std), torch.sqrt(stats["var"]).numpy(), rtol=2.5e-7)
    np.testing.assert_array_equal(np.array(std), np.sqrt(stats["var"].numpy()))
    feat1, feat2 = (torch.load(p, weights_only=True) for p in emotion_matrix_checkpoints(0))
    emo, spk = load_emotion_matrices(
        converted / "emotion_matrix.npz", converted / "speaker_matrix.npz"
    )
    assert [g.shape[0] for g in emo] == [3, 17, 2, 8, 4, 5, 10, 24]
    np.testing.assert_array_equal(np.concatenate([np.array(g) for g in emo]), feat2.numpy())
    np.testing.assert_array_equal(np.concatenate([np.array(g) for g in spk]), feat1.numpy())


def test_campplus_and_codec_load_strictly(converted):
    assert load_campplus(converted / "campplus.npz") is not None
    codec = load_semantic_codec(converted / "semantic_codec.npz")
    assert not any(k.startswith("decoder.") for k in read_npz(converted / "semantic_codec.npz"))
    assert codec is not None
