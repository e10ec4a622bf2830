"""The encoder stages of REFERENCE-FLOW.md steps 5, 6 and 8, on both sides.

Each side runs end to end from its *own* features (as the official baseline table of
SPEC.md §5 does): the reference with its modules loaded from the seeded official-format
checkpoints, ours with the NPZ files ``indextts-weights convert`` made from the same files.
"""

from __future__ import annotations

import gc
from pathlib import Path

import mlx.core as mx
import numpy as np
import torch

from indextts_weights.load import (
    load_campplus,
    load_semantic_codec,
    load_semantic_stats,
    load_w2vbert,
)
from mlx_indextts_models import SEMANTIC_LAYER, normalize_semantic
from parity import checkpoints


def reference_encoders(
    features: np.ndarray, mask: np.ndarray, campplus_fbank: np.ndarray, *, seed: int = 0
) -> dict[str, np.ndarray]:
    """``features (1, T, 160)``, ``mask (1, T)``, ``campplus_fbank (T', 80)`` (mean removed)."""
    import safetensors.torch
    from transformers import Wav2Vec2BertModel

    stats = torch.load(checkpoints.semantic_stats_checkpoint(seed), weights_only=True)
    w2vbert = Wav2Vec2BertModel.from_pretrained(str(checkpoints.w2vbert_checkpoint(seed).parent))
    with torch.no_grad():
        out = w2vbert.eval()(
            torch.from_numpy(features),
            attention_mask=torch.from_numpy(mask),
            output_hidden_states=True,
        )
        hidden = out.hidden_states[SEMANTIC_LAYER]
        normalized = (hidden - stats["mean"]) / torch.sqrt(stats["var"])  # IndexTTS2.get_emb
    del w2vbert, out
    gc.collect()
    codec = checkpoints.semantic_codec_module(seed)
    safetensors.torch.load_model(codec, str(checkpoints.semantic_codec_checkpoint(seed)))
    campplus = checkpoints.campplus_module(seed)
    campplus.load_state_dict(torch.load(checkpoints.campplus_checkpoint(seed), weights_only=True))
    with torch.no_grad():
        codes, s_ref = codec.quantize(normalized)
        style = campplus(torch.from_numpy(campplus_fbank)[None])
    return {
        "W2V-BERT hidden[17]": hidden.numpy(),
        "normalized semantic features": normalized.numpy(),
        "semantic_codec codes": codes.numpy(),
        "semantic_codec S_ref": s_ref.numpy(),
        "CAMPPlus speaker style": style.numpy(),
    }


def mlx_encoders(
    weights: Path, features: np.ndarray, mask: np.ndarray, campplus_fbank: np.ndarray
) -> dict[str, np.ndarray]:
    """Our side, from the converted NPZ files in ``weights``."""
    w2vbert = load_w2vbert(weights / "w2vbert.npz")
    hidden = w2vbert(mx.array(features), mx.array(mask))
    mean, std = load_semantic_stats(weights / "semantic_stats.npz")
    normalized = normalize_semantic(hidden, mean, std)
    codes, s_ref = load_semantic_codec(weights / "semantic_codec.npz").quantize(normalized)
    style = load_campplus(weights / "campplus.npz")(mx.array(campplus_fbank)[None])
    return {
        "W2V-BERT hidden[17]": np.array(hidden),
        "normalized semantic features": np.array(normalized),
        "semantic_codec codes": np.array(codes),
        "semantic_codec S_ref": np.array(s_ref),
        "CAMPPlus speaker style": np.array(style),
    }
