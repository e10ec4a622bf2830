"""The converted models of one weights folder, loaded on first use.

Loading is lazy by default: the first synthesis loads what it needs (W2V-BERT, the codec
and CAMPPlus for a new speaker; the GPT; S2Mel; BigVGAN), and a later one reuses them.
``load_all()`` loads everything up front (what ``IndexTTS2(eager=True)`` does). Each load
reports ``(name, seconds)`` to an optional callback, which the pipeline turns into a
progress line on stderr.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import mlx.core as mx

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

#: Model name → (weights files it needs, loader taking those paths).
_LOADERS: dict[str, tuple[tuple[str, ...], Callable[..., Any]]] = {
    "w2vbert": (("w2vbert",), load_w2vbert),
    "semantic_stats": (("semantic_stats",), load_semantic_stats),
    "semantic_codec": (("semantic_codec",), load_semantic_codec),
    "campplus": (("campplus",), load_campplus),
    "gpt": (("gpt",), load_gpt),
    "s2mel": (("s2mel",), load_s2mel),
    "bigvgan": (("bigvgan",), load_bigvgan),
    "emotion_matrices": (("emotion_matrix", "speaker_matrix"), load_emotion_matrices),
}

#: The models that only turn a new prompt into conditioning (released by ``release_encoders``).
ENCODERS = ("w2vbert", "semantic_stats", "campplus")

Progress = Callable[[str, float], None]


class ModelSet:
    """Lazily loaded models of one :class:`~indextts_weights.WeightsConfig`.

    Attribute access (``models.gpt``, ``models.w2vbert``, ...) loads on first use.
    """

    def __init__(self, weights: WeightsConfig, on_load: Progress | None = None) -> None:
        self.weights = weights
        self.on_load = on_load
        self._loaded: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in _LOADERS:
            raise AttributeError(name)
        if name not in self._loaded:
            files, loader = _LOADERS[name]
            start = time.perf_counter()
            model = loader(*(self.weights.path(f) for f in files))
            if isinstance(model, mx.array | tuple | list):
                mx.eval(model)
            self._loaded[name] = model
            if self.on_load is not None:
                self.on_load(name, time.perf_counter() - start)
        return self._loaded[name]

    def is_loaded(self, name: str) -> bool:
        """Whether ``name`` is in memory now."""
        return name in self._loaded

    def load_all(self, *, emotion: bool = False) -> None:
        """Load every model now (``emotion``: also the emotion matrices)."""
        for name in _LOADERS:
            if name != "emotion_matrices" or emotion:
                getattr(self, name)

    def release_encoders(self) -> None:
        """Drop the prompt encoders (W2V-BERT, CAMPPlus, the stats: ~1.7 GB); cached
        speakers keep working, a new prompt loads them again."""
        for name in ENCODERS:
            self._loaded.pop(name, None)
        mx.clear_cache()
