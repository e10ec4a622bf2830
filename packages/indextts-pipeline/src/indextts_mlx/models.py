"""The converted models of one weights folder, loaded on first use.

Loading is lazy by default: the first synthesis loads what it needs (W2V-BERT, the codec
and CAMPPlus for a new speaker; the GPT; S2Mel; BigVGAN), and a later one reuses them.
``load_all()`` loads everything up front (what ``IndexTTS2(eager=True)`` does). Each load
reports ``(name, seconds)`` to an optional callback, which the pipeline turns into a
progress line on stderr. A file that cannot be loaded raises
:class:`~indextts_mlx.errors.WeightsLoadError` naming it, and is tried again on next use.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, cast

import mlx.core as mx

from indextts_mlx.errors import translate_errors
from indextts_weights import (
    WeightsConfig,
    load_bigvgan,
    load_campplus,
    load_emotion_matrices,
    load_gpt,
    load_s2mel,
    load_semantic_codec,
    load_semantic_stats,
    load_w2vbert,
)
from mlx_indextts_models import BigVGAN, CAMPPlus, RepCodec, UnifiedVoice, W2VBertModel
from mlx_indextts_models.s2mel.model import S2Mel

T = TypeVar("T")
Progress = Callable[[str, float], None]
#: ``(mean, std)``, each ``(1024,)``: the normalization of W2V-BERT ``hidden_states[17]``.
SemanticStats = tuple[mx.array, mx.array]
#: ``(emotion_groups, speaker_groups)``: 8 arrays each, ``(n_i, 1280)`` and ``(n_i, 192)``.
EmotionMatrices = tuple[list[mx.array], list[mx.array]]

#: Every model, in the order :meth:`ModelSet.load_all` loads them.
MODELS = (
    "w2vbert",
    "semantic_stats",
    "semantic_codec",
    "campplus",
    "gpt",
    "s2mel",
    "bigvgan",
    "emotion_matrices",
)
#: The models that only turn a new prompt into conditioning (released by ``release_encoders``).
ENCODERS = ("w2vbert", "semantic_stats", "campplus")


class ModelSet:
    """Lazily loaded models of one :class:`~indextts_weights.WeightsConfig`.

    Each property loads its model on first use and keeps it.
    """

    def __init__(self, weights: WeightsConfig, on_load: Progress | None = None) -> None:
        self.weights = weights
        self.on_load = on_load
        self._loaded: dict[str, object] = {}

    @property
    def w2vbert(self) -> W2VBertModel:
        """W2V-BERT 2.0 (``w2vbert.npz``): SeamlessM4T fbank → ``hidden_states``."""
        return self._load("w2vbert", load_w2vbert, "w2vbert")

    @property
    def semantic_stats(self) -> SemanticStats:
        """``(mean, std)`` of W2V-BERT ``hidden_states[17]`` (``semantic_stats.npz``)."""
        return self._load("semantic_stats", load_semantic_stats, "semantic_stats")

    @property
    def semantic_codec(self) -> RepCodec:
        """MaskGCT's semantic codec (``semantic_codec.npz``): features → codes, ``vq2emb``."""
        return self._load("semantic_codec", load_semantic_codec, "semantic_codec")

    @property
    def campplus(self) -> CAMPPlus:
        """CAMPPlus (``campplus.npz``): 80-bin kaldi fbank → ``(B, 192)`` speaker style."""
        return self._load("campplus", load_campplus, "campplus")

    @property
    def gpt(self) -> UnifiedVoice:
        """The GPT (``gpt.npz``): conditioning, emotion vectors, code generation, latents."""
        return self._load("gpt", load_gpt, "gpt")

    @property
    def s2mel(self) -> S2Mel:
        """S2Mel (``s2mel_pytorch.npz``): ``gpt_layer``, length regulator, DiT + CFM."""
        return self._load("s2mel", load_s2mel, "s2mel")

    @property
    def bigvgan(self) -> BigVGAN:
        """BigVGAN v2 (``bigvgan.npz``): mel ``(B, T, 80)`` → 22,050 Hz waveform."""
        return self._load("bigvgan", load_bigvgan, "bigvgan")

    @property
    def emotion_matrices(self) -> EmotionMatrices:
        """The 8 emotion groups of ``emotion_matrix.npz`` and ``speaker_matrix.npz``."""
        return self._load(
            "emotion_matrices", load_emotion_matrices, "emotion_matrix", "speaker_matrix"
        )

    def _load(self, name: str, loader: Callable[..., T], *files: str) -> T:
        if name in self._loaded:
            return cast(T, self._loaded[name])
        paths: list[Path] = [self.weights.path(f) for f in files]
        start = time.perf_counter()
        with translate_errors(f"loading {', '.join(p.name for p in paths)}", loading=True):
            model = loader(*paths)
            if isinstance(model, mx.array | tuple | list):
                mx.eval(model)  # modules arrive evaluated; tables are made so here
        self._loaded[name] = model
        if self.on_load is not None:
            self.on_load(name, time.perf_counter() - start)
        return model

    def is_loaded(self, name: str) -> bool:
        """Whether ``name`` (one of :data:`MODELS`) is in memory now."""
        return name in self._loaded

    def load_all(self, *, emotion: bool = False) -> None:
        """Load every model now (``emotion``: also the emotion matrices)."""
        for name in MODELS:
            if name != "emotion_matrices" or emotion:
                getattr(self, name)

    def release_encoders(self) -> None:
        """Drop the prompt encoders (W2V-BERT, CAMPPlus, the stats: ~1.7 GB); cached
        speakers keep working, a new prompt loads them again."""
        for name in ENCODERS:
            self._loaded.pop(name, None)
        mx.clear_cache()
