"""The converted models of one weights folder, loaded on first use.

Loading is lazy by default: the first synthesis loads what it needs (W2V-BERT, the codec
and CAMPPlus for a new speaker; the GPT; S2Mel; BigVGAN), and a later one reuses them.
``load_all()`` loads everything up front (what ``IndexTTS2(eager=True)`` does). Each load
reports to an optional :class:`LoadProgress`: its start with the bytes to read, the bytes
as they are read (a progress bar), and its end with the seconds it took. A file that
cannot be loaded raises
:class:`~indextts_mlx.errors.WeightsLoadError` naming it, and is tried again on next use.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar, cast, overload, runtime_checkable

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from indextts_mlx.errors import ModelInputError, translate_errors
from indextts_weights import WeightsConfig, load
from indextts_weights.loading import MX_DTYPES, flat_parameters
from indextts_weights.npz import reading_progress
from mlx_indextts_models.gpt import UnifiedVoice
from mlx_indextts_models.gpt2 import QUANTIZE_BITS
from mlx_indextts_models.gpt2 import quantize as quantize_gpt2

T = TypeVar("T")


@runtime_checkable
class LoadProgress(Protocol):
    """Told how the loading of each model goes (the CLI draws a bar from it)."""

    def start(self, name: str, total_bytes: int) -> None:
        """``name`` starts loading; its files hold ``total_bytes``."""

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more were read (they add up to about ``total_bytes``)."""

    def done(self, name: str, seconds: float) -> None:
        """``name`` is loaded, after ``seconds``."""


class WhenLoaded:
    """A :class:`LoadProgress` that only calls ``on_done(name, seconds)`` per model."""

    def __init__(self, on_done: Callable[[str, float], None]) -> None:
        self.on_done = on_done

    def start(self, name: str, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def done(self, name: str, seconds: float) -> None:
        self.on_done(name, seconds)


@dataclass(frozen=True)
class Precision:
    """How the models are held in memory (the files stay as converted).

    Attributes:
        dtype: ``"float32"``, ``"float16"`` or ``"bfloat16"`` for every model, or a
            mapping from model name (:data:`MODELS`) to one of those; models it leaves
            out, and all with None, keep their files' precision (float32 unless converted
            with ``--dtype``). Half precision is for Metal and CUDA: on the CPU, MLX has
            no half-precision BLAS and runs it many times slower than float32.
        quantize_gpt: 8 or 4: the GPT-2 blocks' linear layers quantized to that many
            bits after loading (:func:`~mlx_indextts_models.gpt2.quantize`); None keeps
            them in their dtype.
    """

    dtype: str | Mapping[str, str] | None = None
    quantize_gpt: int | None = None
    _dtypes: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        given = self.dtype if isinstance(self.dtype, Mapping) else dict.fromkeys(MODELS, self.dtype)
        dtypes = {name: value for name, value in given.items() if value is not None}
        unknown = sorted(set(dtypes) - set(MODELS))
        if unknown:
            raise ModelInputError(f"dtype for unknown model(s) {unknown}; models: {list(MODELS)}")
        bad = sorted({v for v in dtypes.values() if v not in MX_DTYPES})
        if bad:
            raise ModelInputError(f"dtype must be one of {list(MX_DTYPES)}, got {bad}")
        if self.quantize_gpt is not None and self.quantize_gpt not in QUANTIZE_BITS:
            raise ModelInputError(
                f"quantize_gpt must be one of {list(QUANTIZE_BITS)} bits, got {self.quantize_gpt}"
            )
        object.__setattr__(self, "_dtypes", dtypes)

    def dtype_of(self, model: str) -> mx.Dtype | None:
        """The dtype ``model`` is loaded in, or None for its file's."""
        name = self._dtypes.get(model)
        return None if name is None else MX_DTYPES[name]

    @property
    def label(self) -> str:
        """A stable description, ``""`` for the default (the files as converted): part of
        the cache keys, since a precision changes the audio."""
        values = set(self._dtypes.values())
        if len(values) == 1 and set(self._dtypes) == set(MODELS):  # one dtype for all
            parts = sorted(values)
        else:
            parts = [f"{name}={value}" for name, value in sorted(self._dtypes.items())]
        if self.quantize_gpt is not None:
            parts.append(f"gpt-q{self.quantize_gpt}")
        return ",".join(parts)


class _Model(Generic[T]):
    """A model of the set: ``loader(*paths of files)``, run on first access and kept."""

    def __init__(self, loader: Callable[..., T], *files: str) -> None:
        self.loader = loader
        self.files = files
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, models: None, owner: type) -> _Model[T]: ...
    @overload
    def __get__(self, models: ModelSet, owner: type) -> T: ...
    def __get__(self, models: ModelSet | None, owner: type) -> _Model[T] | T:
        if models is None:
            return self
        return models._load(self)


class ModelSet:
    """Lazily loaded models of one :class:`~indextts_weights.WeightsConfig`.

    Each attribute loads its model on first use and keeps it.
    """

    #: W2V-BERT 2.0 (``w2vbert.npz``): SeamlessM4T fbank → ``hidden_states``.
    w2vbert = _Model(load.load_w2vbert, "w2vbert")
    #: ``(mean, std)``, each ``(1024,)``, of W2V-BERT ``hidden_states[17]``.
    semantic_stats = _Model(load.load_semantic_stats, "semantic_stats")
    #: MaskGCT's semantic codec (``semantic_codec.npz``): features → codes, ``vq2emb``.
    semantic_codec = _Model(load.load_semantic_codec, "semantic_codec")
    #: CAMPPlus (``campplus.npz``): 80-bin kaldi fbank → ``(B, 192)`` speaker style.
    campplus = _Model(load.load_campplus, "campplus")
    #: The GPT (``gpt.npz``): conditioning, emotion vectors, code generation, latents.
    gpt = _Model(load.load_gpt, "gpt")
    #: S2Mel (``s2mel_pytorch.npz``): ``gpt_layer``, length regulator, DiT + CFM.
    s2mel = _Model(load.load_s2mel, "s2mel")
    #: BigVGAN v2 (``bigvgan.npz``): mel ``(B, T, 80)`` → 22,050 Hz waveform.
    bigvgan = _Model(load.load_bigvgan, "bigvgan")
    #: The 8 emotion groups of ``emotion_matrix.npz`` ``(n_i, 1280)`` and
    #: ``speaker_matrix.npz`` ``(n_i, 192)``.
    emotion_matrices = _Model(load.load_emotion_matrices, "emotion_matrix", "speaker_matrix")

    def __init__(
        self,
        weights: WeightsConfig,
        progress: LoadProgress | None = None,
        precision: Precision | None = None,
    ) -> None:
        self.weights = weights
        self.progress = progress
        self.precision = precision or Precision()
        self._loaded: dict[str, object] = {}
        self._dtypes: dict[str, mx.Dtype] = {}  # each loaded model's floating dtype

    def _load(self, model: _Model[T]) -> T:
        if model.name in self._loaded:
            return cast(T, self._loaded[model.name])
        paths: list[Path] = [self.weights.path(f) for f in model.files]
        start = time.perf_counter()
        with translate_errors(f"loading {', '.join(p.name for p in paths)}", loading=True):
            progress = self.progress
            if progress is not None:
                progress.start(model.name, sum(p.stat().st_size for p in paths))
            with reading_progress(progress.advance) if progress else nullcontext():
                loaded = model.loader(*paths, dtype=self.precision.dtype_of(model.name))
            if isinstance(loaded, UnifiedVoice) and self.precision.quantize_gpt is not None:
                quantize_gpt2(loaded.gpt, self.precision.quantize_gpt)
                mx.eval(flat_parameters(loaded))
            if isinstance(loaded, mx.array | tuple | list):
                mx.eval(loaded)  # modules arrive evaluated; tables are made so here
        self._loaded[model.name] = loaded
        self._dtypes[model.name] = _floating_dtype(loaded)
        if self.progress is not None:
            self.progress.done(model.name, time.perf_counter() - start)
        return loaded

    def dtype(self, name: str) -> mx.Dtype:
        """The floating dtype model ``name`` computes in (loading it if needed): inputs
        are cast to it at each stage's boundary."""
        if name not in self._dtypes:
            getattr(self, name)
        return self._dtypes[name]

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


def _floating_dtype(value: object) -> mx.Dtype:
    """The dtype of the first floating array of a module, an array or nested lists of them."""
    leaves: list[object]
    if isinstance(value, nn.Module):
        leaves = list(flat_parameters(value).values())
    else:
        leaves = [leaf for _, leaf in cast("list[tuple[str, object]]", tree_flatten(value))]
    for leaf in leaves:
        if isinstance(leaf, mx.array) and mx.issubdtype(leaf.dtype, mx.floating):
            return leaf.dtype
    return mx.float32


#: Every model, in the order :meth:`ModelSet.load_all` loads them.
MODELS = tuple(name for name, value in vars(ModelSet).items() if isinstance(value, _Model))
#: The models that only turn a new prompt into conditioning (released by ``release_encoders``).
ENCODERS = ("w2vbert", "semantic_stats", "campplus")
