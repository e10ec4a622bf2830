"""W2V-BERT parity: our MLX encoder vs ``transformers.Wav2Vec2BertModel``, real config.

The checkpoint is ``Wav2Vec2BertModel(Wav2Vec2BertConfig())`` (the architecture of
``facebook/w2v-bert-2.0``) with a seeded random init, saved as the hub's
``model.safetensors`` + ``config.json``. The reference loads it as IndexTTS-2 does
(``from_pretrained``, eval) and runs all 24 layers with ``output_hidden_states=True``;
we take ``hidden_states[17]``. Ours is the ``w2vbert.npz`` that ``indextts-weights
convert`` writes from that file (torch-free, 17 layers kept), loaded strictly with
``load_w2vbert``, and runs 17 layers.

Inputs are the SeamlessM4T features of espeak-ng speech (``seamless_fbank`` equals the
reference's extractor bit for bit) with their attention mask: ``speech_hello`` (79
fbank frames) and ``speech_sentence`` (403) have an odd frame count, so their last
stacked frame holds padding and has mask 0; ``speech_15s`` (1498) has none.

Tolerances (docs/promises.md §5): hidden[17] max|Δ| < 0.003, normalized semantic features
< 0.002, cos ≥ 0.99999 for both.
"""

from __future__ import annotations

import gc

import mlx_indextts_models  # noqa: F401  (first: it loads the fast BLAS before MLX)

# isort: split

import mlx.core as mx
import numpy as np
import pytest
import torch

from clips import clip
from indextts_weights.load import load_semantic_stats, load_w2vbert
from mlx_audio_features import seamless_fbank
from mlx_indextts_models.w2vbert import (
    SEMANTIC_LAYER,
    W2VBertModel,
    normalize_semantic,
)
from parity.checkpoints import semantic_stats_checkpoint, w2vbert_checkpoint
from parity.harness import assert_close, cached_arrays, compare

HIDDEN_TOL = 3e-3
NORMALIZED_TOL = 2e-3
CLIPS = ("speech_hello", "speech_sentence", "speech_15s")


def features(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``input_features (1, T, 160)`` float32 and ``attention_mask (1, T)`` int32."""
    out = seamless_fbank(clip(name, 16000))
    return np.array(out.input_features)[None], np.array(out.attention_mask)[None]


def reference_stats() -> tuple[torch.Tensor, torch.Tensor]:
    """``build_semantic_model``: mean and ``sqrt(var)`` of ``wav2vec2bert_stats.pt``."""
    stats = torch.load(semantic_stats_checkpoint(0), map_location="cpu", weights_only=True)
    return stats["mean"], torch.sqrt(stats["var"])


@pytest.fixture(scope="module")
def reference() -> dict[str, dict[str, np.ndarray]]:
    """Per clip: the reference's ``hidden_states[17]`` and normalized features (cached).

    The 2.3 GB reference model is loaded only when an output is not cached yet, and freed
    before our model is built.
    """
    from transformers import Wav2Vec2BertModel

    path = w2vbert_checkpoint(0)
    mean, std = reference_stats()
    model = None

    def compute(name: str) -> dict[str, np.ndarray]:
        nonlocal model
        if model is None:
            model = Wav2Vec2BertModel.from_pretrained(str(path.parent)).eval()
        x, mask = features(name)
        with torch.no_grad():
            out = model(
                torch.from_numpy(x),
                attention_mask=torch.from_numpy(mask),
                output_hidden_states=True,
            )
            hidden = out.hidden_states[SEMANTIC_LAYER]
            normalized = (hidden - mean) / std  # IndexTTS2.get_emb
        return {"hidden": hidden.numpy(), "normalized": normalized.numpy()}

    outputs = {
        name: cached_arrays(
            "w2vbert",
            lambda name=name: compute(name),
            checkpoint=path.parent.name,
            stats=semantic_stats_checkpoint(0).parent.name,
            input=name,
        )
        for name in CLIPS
    }
    del model
    gc.collect()
    return outputs


@pytest.fixture(scope="module")
def ours(reference, converted) -> W2VBertModel:
    """Our 17-layer model, loaded from the NPZ that ``indextts-weights convert`` wrote."""
    return load_w2vbert(converted / "w2vbert.npz")


@pytest.fixture(scope="module")
def our_hidden(ours) -> dict[str, np.ndarray]:
    out = {}
    for name in CLIPS:
        x, mask = features(name)
        out[name] = np.array(ours(mx.array(x), mx.array(mask)))
    return out


def test_checkpoint_has_the_official_keys():
    from safetensors import safe_open

    with safe_open(str(w2vbert_checkpoint(0)), framework="numpy") as f:  # header only
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    assert len(shapes) == 773  # docs/reference/keys/w2vbert.txt
    assert shapes["masked_spec_embed"] == (1024,)
    assert shapes["encoder.layers.23.self_attn.distance_embedding.weight"] == (73, 64)
    assert shapes["encoder.layers.0.conv_module.depthwise_conv.weight"] == (1024, 1, 31)


def test_the_short_clips_end_with_a_padded_frame():
    """The masking code paths are exercised: two clips have a masked last frame."""
    masks = {name: features(name)[1] for name in CLIPS}
    assert masks["speech_hello"][0, -1] == 0 and masks["speech_sentence"][0, -1] == 0
    assert masks["speech_15s"].all()
    assert masks["speech_15s"].shape == (1, 749)


@pytest.mark.parametrize("name", CLIPS)
def test_hidden_17_matches_reference(name, reference, our_hidden, record):
    result = record(
        compare(f"W2V-BERT hidden[17] [{name}]", reference[name]["hidden"], our_hidden[name])
    )
    assert_close(result, max_abs=HIDDEN_TOL)


@pytest.mark.parametrize("name", CLIPS)
def test_normalized_semantic_features_match_reference(
    name, reference, our_hidden, converted, record
):
    mean, std = load_semantic_stats(converted / "semantic_stats.npz")
    ours = normalize_semantic(mx.array(our_hidden[name]), mean, std)
    result = record(
        compare(f"normalized semantic features [{name}]", reference[name]["normalized"], ours)
    )
    assert_close(result, max_abs=NORMALIZED_TOL)


def test_ignoring_the_mask_would_fail(reference, ours):
    """The padded last frame matters: without its mask every frame moves out of tolerance."""
    x, _ = features("speech_hello")
    unmasked = np.array(ours(mx.array(x), None))
    result = compare("hidden[17] without mask", reference["speech_hello"]["hidden"], unmasked)
    with pytest.raises(AssertionError):
        assert_close(result, max_abs=HIDDEN_TOL)
