"""``load_*``: build each MLX model at the IndexTTS-2 config and load its NPZ strictly."""

from __future__ import annotations

import re
from pathlib import Path

import mlx.core as mx
import numpy as np

from indextts_weights.errors import WeightsError
from indextts_weights.loading import load_module
from indextts_weights.npz import check_state, read_npz
from mlx_indextts_models.bigvgan import BigVGAN, BigVGANArgs
from mlx_indextts_models.campplus import CAMPPlus, CAMPPlusArgs
from mlx_indextts_models.gpt import UnifiedVoice, UnifiedVoiceArgs
from mlx_indextts_models.s2mel.model import S2Mel
from mlx_indextts_models.semantic_codec import RepCodec, SemanticCodecArgs
from mlx_indextts_models.w2vbert import W2VBertArgs, W2VBertModel

EMO_NUM = (3, 17, 2, 8, 4, 5, 10, 24)  # rows per emotion in feat1/feat2, 73 in all


def load_bigvgan(path: str | Path, args: BigVGANArgs | None = None) -> BigVGAN:
    """``bigvgan.npz`` → :class:`BigVGAN` (mel (B, T, 80) → 22.05 kHz waveform (B, 256·T)).

    Args:
        path: the file ``indextts-weights convert`` wrote from ``bigvgan_generator.pt``.
        args: the vocoder's configuration; default ``nvidia/bigvgan_v2_22khz_80band_256x``'s.
    """
    return load_module(BigVGAN(args or BigVGANArgs()), path, model="bigvgan")


def load_campplus(path: str | Path) -> CAMPPlus:
    """``campplus.npz`` → :class:`CAMPPlus` (80-bin fbank → 192-d style), eval mode."""
    return load_module(CAMPPlus(CAMPPlusArgs()), path, model="campplus")


def load_s2mel(path: str | Path) -> S2Mel:
    """``s2mel_pytorch.npz`` → :class:`S2Mel` (``cfm``: DiT + WaveNet + Euler sampler,
    ``length_regulator``, ``gpt_layer``) at IndexTTS-2's configuration."""
    return load_module(S2Mel(), path, model="s2mel")


def load_semantic_codec(path: str | Path) -> RepCodec:
    """``semantic_codec.npz`` → :class:`RepCodec` (encoder + quantizer of MaskGCT's codec)."""
    return load_module(RepCodec(SemanticCodecArgs()), path, model="semantic_codec")


def load_gpt(path: str | Path, args: UnifiedVoiceArgs | None = None) -> UnifiedVoice:
    """``gpt.npz`` → :class:`UnifiedVoice` (conditioning, GPT-2 stack, embeddings, heads).

    Args:
        path: the file ``indextts-weights convert`` wrote from ``gpt.pth``.
        args: the model's configuration; default IndexTTS-2's (``cfg.gpt``).
    """
    return load_module(UnifiedVoice(args or UnifiedVoiceArgs()), path, model="gpt")


def _w2vbert_layers(path: str | Path) -> int:
    arrays = read_npz(path, model="w2vbert")
    layers = {int(m.group(1)) for k in arrays if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
    if not layers or layers != set(range(len(layers))):
        raise WeightsError(f"{path}: encoder layers {sorted(layers)} are not 0..N-1")
    return len(layers)


def load_w2vbert(path: str | Path) -> W2VBertModel:
    """``w2vbert.npz`` → :class:`W2VBertModel` with as many layers as the file holds
    (17 from ``indextts-weights convert``: enough for ``hidden_states[17]``)."""
    args = W2VBertArgs(num_hidden_layers=_w2vbert_layers(path))
    return load_module(W2VBertModel(args), path, model="w2vbert")


def load_semantic_stats(path: str | Path) -> tuple[mx.array, mx.array]:
    """``semantic_stats.npz`` → ``(mean, std)``, each ``(1024,)``: the normalization of
    W2V-BERT ``hidden_states[17]``."""
    arrays = read_npz(path, model="semantic_stats")
    check_state(arrays, {"mean": (1024,), "std": (1024,)}, source=str(path))
    return mx.array(arrays["mean"]), mx.array(arrays["std"])


def load_emotion_matrices(
    emotion_path: str | Path, speaker_path: str | Path
) -> tuple[list[mx.array], list[mx.array]]:
    """``emotion_matrix.npz`` (73, 1280) and ``speaker_matrix.npz`` (73, 192), split into the
    8 emotion groups of :data:`EMO_NUM` (happy, angry, sad, afraid, disgusted, melancholic,
    surprised, calm).

    Returns:
        ``(emotion_groups, speaker_groups)``: 8 arrays each, ``(n_i, 1280)`` and ``(n_i, 192)``.
    """
    groups = []
    for path, model, dim in (
        (emotion_path, "emotion_matrix", 1280),
        (speaker_path, "speaker_matrix", 192),
    ):
        arrays = read_npz(path, model=model)
        check_state(arrays, {"weight": (sum(EMO_NUM), dim)}, source=str(path))
        bounds = np.cumsum(EMO_NUM)[:-1]
        groups.append([mx.array(g) for g in np.split(arrays["weight"], bounds)])
    return groups[0], groups[1]
