"""What a prompt contributes to synthesis, computed once per prompt *content*.

:class:`SpeakerConditioning` holds docs/data-flow.md steps 3-9 and 15 for one speaker
prompt (the reference's ``_get_speaker_conditioning`` plus the GPT speaker latents);
:func:`semantic_features` is steps 4-5, shared with the emotion prompt (step 11).
:class:`ConditioningCache` keeps both in memory keyed by the file's SHA-256, and optionally
as ``.npz`` files in a folder (written atomically), so a re-render skips the encoders.
"""

from __future__ import annotations

import zipfile
from collections import OrderedDict
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import mlx.core as mx
import numpy as np

from indextts_weights.atomic import atomic_path
from mlx_audio_features import kaldi_fbank, mel_spectrogram, seamless_fbank
from mlx_indextts_models import normalize_semantic

if TYPE_CHECKING:
    from indextts_mlx.models import ModelSet

#: Bumped when what is cached changes meaning (old disk entries are then ignored).
CACHE_FORMAT = 2


@dataclass
class SpeakerConditioning:
    """One speaker prompt, encoded. Batch 1, channels-last.

    Attributes:
        spk_cond_emb: ``(1, T_w, 1024)`` normalized W2V-BERT ``hidden_states[17]``.
        style: ``(1, 192)`` CAMPPlus speaker style.
        prompt_condition: ``(1, T_ref, 512)`` length-regulated ``S_ref`` (S2Mel prompt).
        ref_mel: ``(1, T_ref, 80)`` log-mel of the 22,050 Hz prompt.
        spk_latent: ``(1, 32, 1280)`` GPT speaker latents (``get_conditioning``).
        emovec: ``(1, 1280)`` the speaker's own emotion vector (``get_emovec``: the
            ``base`` of ``merge_emovec``).
    """

    spk_cond_emb: mx.array
    style: mx.array
    prompt_condition: mx.array
    ref_mel: mx.array
    spk_latent: mx.array
    emovec: mx.array

    def to_numpy(self) -> dict[str, np.ndarray]:
        return _to_numpy(self)

    @classmethod
    def from_numpy(cls, arrays: dict[str, np.ndarray]) -> SpeakerConditioning:
        return cls(**{f.name: mx.array(arrays[f.name]) for f in fields(cls)})


def _to_numpy(conditioning: SpeakerConditioning | EmotionConditioning) -> dict[str, np.ndarray]:
    """The arrays for the cache, in float32: numpy has no bfloat16, and a half model's
    values widen exactly (each stage casts its inputs to its model's dtype again)."""
    return {k: np.asarray(v.astype(mx.float32)) for k, v in asdict(conditioning).items()}


def semantic_features(models: ModelSet, audio_16k: np.ndarray) -> mx.array:
    """``get_emb``: SeamlessM4T fbank → W2V-BERT ``hidden_states[17]`` → normalized.

    Args:
        models: a :class:`~indextts_mlx.models.ModelSet`.
        audio_16k: float32 ``(N,)`` at 16 kHz.

    Returns:
        ``(1, T_w, 1024)``.
    """
    features, mask = seamless_fbank(audio_16k)
    features_mx = mx.array(features)[None].astype(models.dtype("w2vbert"))
    hidden = models.w2vbert(features_mx, mx.array(mask)[None])
    mean, std = models.semantic_stats
    out = normalize_semantic(hidden, mean, std)
    mx.eval(out)
    return out


def speaker_conditioning(
    models: ModelSet, audio_22k: np.ndarray, audio_16k: np.ndarray
) -> SpeakerConditioning:
    """docs/data-flow.md steps 4-9 and 15 for one prompt (``audio_*``: float32 ``(N,)``)."""
    spk_cond_emb = semantic_features(models, audio_16k)
    _, s_ref = models.semantic_codec.quantize(spk_cond_emb.astype(models.dtype("semantic_codec")))
    ref_mel = mx.array(mel_spectrogram(audio_22k)).transpose(0, 2, 1)  # (1, T_ref, 80)
    fbank = mx.array(kaldi_fbank(audio_16k))
    fbank = fbank - fbank.mean(axis=0, keepdims=True)
    style = models.campplus(fbank[None].astype(models.dtype("campplus")))
    s_ref = s_ref.astype(models.dtype("s2mel"))
    prompt_condition = models.s2mel.length_regulator(s_ref, ref_mel.shape[1])
    gpt_input = spk_cond_emb.astype(models.dtype("gpt"))
    spk_latent = models.gpt.get_conditioning(gpt_input)
    emovec = models.gpt.get_emovec(gpt_input)
    out = SpeakerConditioning(spk_cond_emb, style, prompt_condition, ref_mel, spk_latent, emovec)
    mx.eval(*asdict(out).values())
    return out


@dataclass
class EmotionConditioning:
    """One emotion prompt, encoded: ``emo_cond_emb (1, T_w, 1024)`` (normalized W2V-BERT
    features of the 16 kHz audio) and its emotion vector ``emovec (1, 1280)``."""

    emo_cond_emb: mx.array
    emovec: mx.array

    def to_numpy(self) -> dict[str, np.ndarray]:
        return _to_numpy(self)

    @classmethod
    def from_numpy(cls, arrays: dict[str, np.ndarray]) -> EmotionConditioning:
        return cls(**{f.name: mx.array(arrays[f.name]) for f in fields(cls)})


def emotion_conditioning(models: ModelSet, audio_16k: np.ndarray) -> EmotionConditioning:
    """docs/data-flow.md step 11 and ``get_emovec`` (step 14) for one emotion prompt."""
    emb = semantic_features(models, audio_16k)
    out = EmotionConditioning(emb, models.gpt.get_emovec(emb.astype(models.dtype("gpt"))))
    mx.eval(out.emovec)
    return out


class ConditioningCache:
    """Encoded prompts keyed by content digest: in memory (the last ``capacity`` of each
    kind) and, with ``directory``, on disk as ``<kind>-<digest>.npz``."""

    def __init__(self, directory: str | Path | None = None, capacity: int = 8) -> None:
        self.directory = Path(directory).expanduser() if directory else None
        self.capacity = capacity
        self._memory: OrderedDict[tuple[str, str], dict[str, np.ndarray]] = OrderedDict()

    def _path(self, kind: str, digest: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / f"{kind}-v{CACHE_FORMAT}-{digest}.npz"

    def get(self, kind: str, digest: str) -> dict[str, np.ndarray] | None:
        """The cached arrays, or None (a damaged disk entry counts as missing)."""
        key = (kind, digest)
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        path = self._path(kind, digest)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            return None
        self._remember(key, arrays)
        return arrays

    def put(self, kind: str, digest: str, arrays: dict[str, np.ndarray]) -> None:
        """Store in memory, and on disk (temp file + rename) when a folder is set."""
        self._remember((kind, digest), arrays)
        path = self._path(kind, digest)
        if path is None:
            return
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            # numpy's stub lets **arrays fill savez's allow_pickle: bool; the keys are names.
            np.savez(f, **arrays)  # type: ignore[arg-type]

    def _remember(self, key: tuple[str, str], arrays: dict[str, np.ndarray]) -> None:
        self._memory[key] = arrays
        self._memory.move_to_end(key)
        while len(self._memory) > self.capacity:
            self._memory.popitem(last=False)
