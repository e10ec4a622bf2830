"""``load_*``: build each MLX model and load its NPZ strictly.

A file converted with ``--dtype float16|bfloat16`` loads into a model (or arrays) of that
dtype (:func:`~indextts_weights.loading.load_module`); every ``load_*`` also takes a
``dtype`` that overrides the file's (cast as it is read). The model is built at IndexTTS-2's
configuration unless the file carries a ``config`` record
(:func:`~indextts_weights.npz.save_npz` ``config=``; e.g. the tiny test weights of
``indextts_mlx.testing``); an explicit ``args`` argument wins over both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from indextts_weights.errors import WeightsError
from indextts_weights.loading import expected_shapes, load_module, read_weights, to_mx
from indextts_weights.npz import args_from_record, check_state, npz_keys, read_config
from mlx_indextts_models.bigvgan import BigVGAN, BigVGANArgs
from mlx_indextts_models.campplus import CAMPPlus, CAMPPlusArgs
from mlx_indextts_models.config import VectorArgs
from mlx_indextts_models.emotion import EMO_NUM
from mlx_indextts_models.gpt import UnifiedVoice, UnifiedVoiceArgs
from mlx_indextts_models.s2mel.model import S2Mel, S2MelArgs
from mlx_indextts_models.semantic_codec import RepCodec, SemanticCodecArgs
from mlx_indextts_models.w2vbert import W2VBertArgs, W2VBertModel

A = TypeVar("A")
M = TypeVar("M", bound=nn.Module)

#: Output file name (``WEIGHT_FILES`` key) → the model its arrays are the parameters of.
MODELS: dict[str, Callable[[Any], nn.Module]] = {
    "bigvgan": BigVGAN,
    "campplus": CAMPPlus,
    "gpt": UnifiedVoice,
    "s2mel": S2Mel,
    "semantic_codec": RepCodec,
    "w2vbert": W2VBertModel,
}


def expected_arrays(name: str, args: Any) -> dict[str, tuple[int, ...]]:
    """Array name → shape of the file ``name`` for the model at ``args``: the parameters of
    :data:`MODELS`' model (built lazily: nothing is computed), or a table's ``mean``/``std``
    ``(dim,)`` (``semantic_stats``) or ``weight`` ``(73, dim)`` (the emotion matrices)."""
    if name == "semantic_stats":
        return {"mean": (args.dim,), "std": (args.dim,)}
    if name in ("emotion_matrix", "speaker_matrix"):
        return {"weight": (sum(EMO_NUM), args.dim)}
    return expected_shapes(MODELS[name](args))


def _args(
    path: str | Path, model: str, cls: type[A], explicit: A | None, default: Callable[[], A]
) -> A:
    """``explicit`` if given, else the file's config record, else ``default()``."""
    if explicit is not None:
        return explicit
    record = read_config(path, model=model)
    if record is None:
        return default()
    return args_from_record(cls, record, source=str(path))


def _load(
    path: str | Path,
    model: str,
    build: Callable[[A], M],
    cls: type[A],
    args: A | None,
    dtype: mx.Dtype | None,
    default: Callable[[], A] | None = None,
) -> M:
    """``build(args)`` (:func:`_args`: explicit, else the record, else ``default`` or
    ``cls()``) with the file's weights, strictly, in ``dtype`` (None: the file's)."""
    module = build(_args(path, model, cls, args, default or cls))
    return load_module(module, path, model=model, dtype=dtype)


def load_bigvgan(
    path: str | Path, args: BigVGANArgs | None = None, *, dtype: mx.Dtype | None = None
) -> BigVGAN:
    """``bigvgan.npz`` → :class:`BigVGAN` (mel (B, T, 80) → 22.05 kHz waveform (B, 256·T)).

    Args:
        path: the file ``indextts-weights convert`` wrote from ``bigvgan_generator.pt``.
        args: the vocoder's configuration; default the file's config record, else
            ``nvidia/bigvgan_v2_22khz_80band_256x``'s.
    """
    return _load(path, "bigvgan", BigVGAN, BigVGANArgs, args, dtype)


def load_campplus(
    path: str | Path, args: CAMPPlusArgs | None = None, *, dtype: mx.Dtype | None = None
) -> CAMPPlus:
    """``campplus.npz`` → :class:`CAMPPlus` (80-bin fbank → 192-d style), eval mode."""
    return _load(path, "campplus", CAMPPlus, CAMPPlusArgs, args, dtype)


def load_s2mel(
    path: str | Path, args: S2MelArgs | None = None, *, dtype: mx.Dtype | None = None
) -> S2Mel:
    """``s2mel_pytorch.npz`` → :class:`S2Mel` (``cfm``: DiT + WaveNet + Euler sampler,
    ``length_regulator``, ``gpt_layer``), at IndexTTS-2's configuration unless the file's
    config record (or ``args``) says otherwise."""
    return _load(path, "s2mel", S2Mel, S2MelArgs, args, dtype)


def load_semantic_codec(
    path: str | Path, args: SemanticCodecArgs | None = None, *, dtype: mx.Dtype | None = None
) -> RepCodec:
    """``semantic_codec.npz`` → :class:`RepCodec` (encoder + quantizer of MaskGCT's codec)."""
    return _load(path, "semantic_codec", RepCodec, SemanticCodecArgs, args, dtype)


def load_gpt(
    path: str | Path, args: UnifiedVoiceArgs | None = None, *, dtype: mx.Dtype | None = None
) -> UnifiedVoice:
    """``gpt.npz`` → :class:`UnifiedVoice` (conditioning, GPT-2 stack, embeddings, heads).

    Args:
        path: the file ``indextts-weights convert`` wrote from ``gpt.pth``.
        args: the model's configuration; default the file's config record, else
            IndexTTS-2's (``cfg.gpt``).
    """
    return _load(path, "gpt", UnifiedVoice, UnifiedVoiceArgs, args, dtype)


def _w2vbert_layers(path: str | Path) -> int:
    keys = npz_keys(path)  # the names only: the 2.3 GB of arrays are read once, by the load
    layers = {int(m.group(1)) for k in keys if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
    if not layers or layers != set(range(len(layers))):
        raise WeightsError(f"{path}: encoder layers {sorted(layers)} are not 0..N-1")
    return len(layers)


def load_w2vbert(
    path: str | Path, args: W2VBertArgs | None = None, *, dtype: mx.Dtype | None = None
) -> W2VBertModel:
    """``w2vbert.npz`` → :class:`W2VBertModel` (the file's config record, else the official
    configuration with as many layers as the file holds: 17 from ``indextts-weights
    convert``, enough for ``hidden_states[17]``)."""

    def layers_in_file() -> W2VBertArgs:
        return W2VBertArgs(num_hidden_layers=_w2vbert_layers(path))

    return _load(path, "w2vbert", W2VBertModel, W2VBertArgs, args, dtype, layers_in_file)


def _dim(path: str | Path, model: str, default: int) -> int:
    return _args(path, model, VectorArgs, None, lambda: VectorArgs(default)).dim


def load_semantic_stats(
    path: str | Path, *, dtype: mx.Dtype | None = None
) -> tuple[mx.array, mx.array]:
    """``semantic_stats.npz`` → ``(mean, std)``, each ``(1024,)`` (or the ``dim`` of the
    file's config record): the normalization of W2V-BERT ``hidden_states[17]``."""
    args = VectorArgs(_dim(path, "semantic_stats", 1024))
    arrays, stored = read_weights(path, model="semantic_stats")
    dtype = dtype or stored
    check_state(arrays, expected_arrays("semantic_stats", args), source=str(path))
    return to_mx(arrays["mean"], dtype), to_mx(arrays["std"], dtype)


def load_emotion_matrices(
    emotion_path: str | Path, speaker_path: str | Path, *, dtype: mx.Dtype | None = None
) -> tuple[list[mx.array], list[mx.array]]:
    """``emotion_matrix.npz`` (73, 1280) and ``speaker_matrix.npz`` (73, 192) (widths from
    the files' config records when they have one), split into the 8 emotion groups of
    :data:`EMO_NUM` (happy, angry, sad, afraid, disgusted, melancholic, surprised, calm).

    Returns:
        ``(emotion_groups, speaker_groups)``: 8 arrays each, ``(n_i, 1280)`` and ``(n_i, 192)``.
    """
    groups = []
    for path, model, dim in (
        (emotion_path, "emotion_matrix", 1280),
        (speaker_path, "speaker_matrix", 192),
    ):
        args = VectorArgs(_dim(path, model, dim))
        arrays, stored = read_weights(path, model=model)
        check_state(arrays, expected_arrays(model, args), source=str(path))
        bounds = np.cumsum(EMO_NUM)[:-1]
        groups.append([to_mx(g, dtype or stored) for g in np.split(arrays["weight"], bounds)])
    return groups[0], groups[1]
