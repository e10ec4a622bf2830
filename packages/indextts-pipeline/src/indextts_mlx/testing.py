"""Tiny random IndexTTS-2 weights, for tests that run the whole pipeline in a second or two.

:func:`write_tiny_weights` builds every model at a tiny configuration with seeded random
parameters and writes a complete weights folder (the standard file names of
:class:`~indextts_weights.WeightsConfig`, each NPZ carrying its configuration record so
the ``load_*`` functions build the tiny models, plus a small trained ``bpe.model``)::

    weights = write_tiny_weights(tmp_path)
    tts = IndexTTS2(weights, progress=False)
    result = tts.render("Hello world.", voice_wav, max_codes=20, cfm_steps=2)

The audio is noise-like (the weights are random) but every stage runs for real: the text
front end, W2V-BERT, the codec, CAMPPlus, GPT sampling/beam search, S2Mel and BigVGAN,
with the real token ids (stop code 8193), 1.72 mel frames per code, 22,050 Hz and 256
samples per mel frame.

What stays at its real size (the code fixes it): the 80-bin mels and fbanks, the 160-wide
SeamlessM4T features, the 192-d CAMPPlus style (``CFM``'s ``style_dim``), the codec's
8192 codes and the GPT's 8194 mel codes with start 8192 / stop 8193, 17 W2V-BERT layers
(``hidden_states[17]``), 32 speaker latents, the 73 emotion-matrix rows and BigVGAN's 256×
upsampling.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from indextts_weights import WeightsConfig
from indextts_weights.config import WEIGHT_FILES
from indextts_weights.loading import flat_parameters
from indextts_weights.npz import save_npz
from mlx_indextts_models.bigvgan import BigVGAN, BigVGANArgs
from mlx_indextts_models.campplus import CAMPPlus
from mlx_indextts_models.config import VectorArgs
from mlx_indextts_models.emotion import EMO_NUM
from mlx_indextts_models.gpt import UnifiedVoice, UnifiedVoiceArgs
from mlx_indextts_models.s2mel.model import S2Mel, S2MelArgs
from mlx_indextts_models.semantic_codec import RepCodec
from mlx_indextts_models.testing import (
    tiny_bigvgan_args,
    tiny_campplus_args,
    tiny_condition_module_args,
    tiny_dit_args,
    tiny_gpt_args,
    tiny_gpt_conditioning_args,
    tiny_regulator_args,
    tiny_s2mel_args,
    tiny_semantic_codec_args,
    tiny_w2vbert_args,
    tiny_wavenet_args,
)
from mlx_indextts_models.w2vbert import SEMANTIC_LAYER, W2VBertModel

#: Width of the semantic features (W2V-BERT hidden size, codec input, ``S_infer``).
SEMANTIC_DIM = 32
#: Width of the GPT (and of its emotion vectors / the emotion matrix).
GPT_DIM = 32
#: Style width: ``CFM`` builds the DiT with ``style_dim=192``.
STYLE_DIM = 192
#: Pieces of the tiny ``bpe.model``.
BPE_VOCAB = 200

# Each model at its tiny test size (``mlx_indextts_models.testing``) with what the pipeline
# needs instead: the widths that meet (SEMANTIC_DIM, GPT_DIM, STYLE_DIM) and the sizes the
# code fixes (see above), the rest as small as still makes noise-like audio.
TINY_W2VBERT = replace(
    tiny_w2vbert_args(),
    hidden_size=SEMANTIC_DIM, num_hidden_layers=SEMANTIC_LAYER, intermediate_size=32,
    feature_projection_input_dim=160, left_max_position_embeddings=64,
    right_max_position_embeddings=8,
)  # fmt: skip
TINY_CODEC = replace(
    tiny_semantic_codec_args(),
    codebook_size=8192, hidden_size=SEMANTIC_DIM, codebook_dim=8,
    vocos_dim=16, vocos_intermediate_dim=32, vocos_num_layers=1,
)  # fmt: skip
TINY_CAMPPLUS = replace(
    tiny_campplus_args(),
    feat_dim=80, embedding_size=STYLE_DIM, growth_rate=8, init_channels=16,
    head_num_blocks=(1, 1), seg_len=100,
    block_num_layers=(1, 1, 1), block_kernel_sizes=(3, 3, 3), block_dilations=(1, 2, 2),
)  # fmt: skip
TINY_GPT = replace(
    tiny_gpt_args(),
    model_dim=GPT_DIM, layers=1, max_mel_tokens=400, max_text_tokens=200,
    number_text_tokens=BPE_VOCAB, number_mel_codes=8194, start_mel_token=8192,
    stop_mel_token=8193,
    conditioning=replace(
        tiny_gpt_conditioning_args(),
        model_dim=GPT_DIM, condition_num_latent=32, feature_size=SEMANTIC_DIM, emo_dim=16,
        condition_module=tiny_condition_module_args(),
        emo_condition_module=tiny_condition_module_args(),
    ),
)  # fmt: skip
TINY_S2MEL = replace(
    tiny_s2mel_args(),
    dit=replace(tiny_dit_args(), hidden_dim=32, depth=2, in_channels=80, content_dim=16),
    wavenet=replace(tiny_wavenet_args(), hidden_dim=32),
    regulator=replace(
        tiny_regulator_args(), channels=16, in_channels=SEMANTIC_DIM, sampling_ratios=(1,) * 4
    ),
    gpt_layer=(GPT_DIM, 16, 16, SEMANTIC_DIM),
)  # fmt: skip
TINY_BIGVGAN = replace(
    tiny_bigvgan_args(),
    num_mels=80, upsample_rates=(4, 4, 2, 2, 2, 2), upsample_kernel_sizes=(8, 8, 4, 4, 4, 4),
    upsample_initial_channel=64, resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3, 5),),
)  # fmt: skip

_BPE_WORDS = [
    "HELLO",
    "WORLD",
    "THE",
    "QUICK",
    "BROWN",
    "FOX",
    "JUMPS",
    "OVER",
    "LAZY",
    "DOG",
    "ONE",
    "TWO",
    "THREE",
    "FOUR",
    "FIVE",
    "SIX",
    "SEVEN",
    "EIGHT",
    "NINE",
    "TEN",
    "IS",
    "IT",
    "A",
    "GOOD",
    "DAY",
    "TODAY",
    "THIS",
    "TEST",
    "SPEAKS",
    "WITH",
    "VOICE",
    "OF",
    "SMALL",
    "MODEL",
    "AND",
    "WE",
    "HAVE",
    "SOME",
    "MORE",
    "WORDS",
    "FOR",
    "YOU",
    "TO",
    "SAY",
    "ABOUT",
    "TIME",
    "PLACE",
    "NAME",
    "SOUND",
    "MUSIC",
    "WATER",
    "LIGHT",
    "HOUSE",
    "GREEN",
    "BLUE",
    "RED",
    "YELLOW",
    "MORNING",
    "EVENING",
    "NIGHT",
    "WHERE",
    "WHEN",
    "WHY",
    "HOW",
    "WHAT",
]


def _arrays(module: nn.Module) -> dict[str, np.ndarray]:
    return {k: np.array(v, dtype=np.float32) for k, v in flat_parameters(module).items()}


def _s2mel(args: S2MelArgs) -> S2Mel:
    return S2Mel(args)


def _gpt_arrays(args: UnifiedVoiceArgs, rng: np.random.Generator) -> dict[str, np.ndarray]:
    arrays = _arrays(UnifiedVoice(args))
    # Parameters MLX initializes to zero (the checkpoint's are learned): random instead, so
    # the perceiver latents differ from one another.
    for key, value in arrays.items():
        if key.endswith(("latents", "pos_bias_u", "pos_bias_v")):
            arrays[key] = rng.normal(0.0, 0.5, value.shape).astype(np.float32)
    # The start code is never a prediction (the codec has no code 8192): keep it unsampled.
    arrays["mel_head.bias"][args.start_mel_token] = -1e4
    return arrays


def kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> np.ndarray:
    """BigVGAN's anti-aliasing low-pass (``alias_free_activation/torch/filter.py:
    kaiser_sinc_filter1d``), ``(kernel_size,)``: a buffer of the checkpoint, not learned."""
    half = kernel_size // 2
    attenuation = 2.285 * (half - 1) * math.pi * 4 * half_width + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = np.kaiser(kernel_size, beta)
    t = np.arange(-half, half) + 0.5 if kernel_size % 2 == 0 else np.arange(kernel_size) - half
    taps: np.ndarray = 2 * cutoff * window * np.sinc(2 * cutoff * t)
    normalized: np.ndarray = taps / taps.sum()
    return normalized.astype(np.float32)


def _bigvgan_arrays(args: BigVGANArgs) -> dict[str, np.ndarray]:
    arrays = _arrays(BigVGAN(args))
    for key, value in arrays.items():  # ratio 2, 12 taps: cutoff 0.25, half width 0.3
        if key.endswith(("upsample.filter", "lowpass.filter")):
            taps = kaiser_sinc_filter(0.25, 0.3, value.size)
            arrays[key] = taps.reshape(value.shape)
    return arrays


def train_bpe_model(
    lines: Iterable[str], path: str | Path, vocab_size: int, *, hard_vocab_limit: bool = True
) -> Path:
    """Train a SentencePiece BPE model on ``lines`` into ``path``, deterministically (one
    thread; the bytes do not depend on any path), with the official ``bpe.model``'s special
    ids: 0 ``<s>``, 1 ``</s>``, 2 ``<unk>``, no padding."""
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="bpe",
        character_coverage=1.0,
        bos_id=0,
        eos_id=1,
        unk_id=2,
        pad_id=-1,
        num_threads=1,
        hard_vocab_limit=hard_vocab_limit,
        minloglevel=2,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.getvalue())
    return path


def write_bpe_model(path: str | Path, vocab_size: int = BPE_VOCAB) -> Path:
    """A small ``bpe.model`` trained on generated upper-case English (see
    :func:`train_bpe_model`)."""
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(400):
        words = rng.choice(_BPE_WORDS, size=12)
        marks = rng.choice([",", ".", "!", "?", "'", "-"], size=3)
        lines.append(" ".join([*words[:4], marks[0], *words[4:8], marks[1], *words[8:], marks[2]]))
    return train_bpe_model(lines, path, vocab_size)


def write_tiny_weights(
    directory: str | Path, seed: int = 0, *, emotion_matrices: bool = True
) -> WeightsConfig:
    """Write a complete tiny weights folder (random parameters drawn from ``seed``).

    Args:
        directory: where to write (created if needed); the standard file names.
        seed: the same seed writes the same parameters.
        emotion_matrices: also write ``emotion_matrix.npz`` / ``speaker_matrix.npz``.

    Returns:
        The :class:`~indextts_weights.WeightsConfig` of ``directory``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    mx.random.seed(seed)

    def save(name: str, model: str, arrays: dict[str, np.ndarray], config: Any) -> None:
        save_npz(directory / WEIGHT_FILES[name], arrays, model=model, config=config)

    save("w2vbert", "w2vbert", _arrays(W2VBertModel(TINY_W2VBERT)), TINY_W2VBERT)
    stats = {
        "mean": rng.normal(0.0, 0.1, SEMANTIC_DIM).astype(np.float32),
        "std": rng.uniform(0.5, 1.5, SEMANTIC_DIM).astype(np.float32),
    }
    save("semantic_stats", "semantic_stats", stats, VectorArgs(SEMANTIC_DIM))
    save("semantic_codec", "semantic_codec", _arrays(RepCodec(TINY_CODEC)), TINY_CODEC)
    campplus = CAMPPlus(TINY_CAMPPLUS)
    save("campplus", "campplus", _arrays(campplus), TINY_CAMPPLUS)
    save("gpt", "gpt", _gpt_arrays(TINY_GPT, rng), TINY_GPT)
    save("s2mel", "s2mel", _arrays(_s2mel(TINY_S2MEL)), TINY_S2MEL)
    save("bigvgan", "bigvgan", _bigvgan_arrays(TINY_BIGVGAN), TINY_BIGVGAN)
    if emotion_matrices:
        rows = sum(EMO_NUM)
        for name, dim in (("emotion_matrix", GPT_DIM), ("speaker_matrix", STYLE_DIM)):
            weight = rng.normal(0.0, 1.0, (rows, dim)).astype(np.float32)
            save(name, name, {"weight": weight}, VectorArgs(dim))
    write_bpe_model(directory / "bpe.model")
    return WeightsConfig(weights_dir=directory, bpe_model=directory / "bpe.model")


__all__ = [
    "GPT_DIM",
    "SEMANTIC_DIM",
    "STYLE_DIM",
    "TINY_BIGVGAN",
    "TINY_CAMPPLUS",
    "TINY_CODEC",
    "TINY_GPT",
    "TINY_S2MEL",
    "TINY_W2VBERT",
    "write_bpe_model",
    "write_tiny_weights",
]
