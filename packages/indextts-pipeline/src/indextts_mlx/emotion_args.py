"""Emotion arguments: parsing/validating ``emo_vector``, the reference's ``emo_alpha``
scaling, and which emotion mode applies (docs/promises.md §1 "Emotion", docs/data-flow.md step 2).

Reference (``infer_v2.IndexTTS2.infer_generator``)::

    if use_emo_text or emo_vector is not None: emo_audio_prompt = None
    if use_emo_text: emo_vector = QwenEmotion(emo_text or text)
    if emo_vector is not None:
        scale = max(0.0, min(1.0, emo_alpha))
        if scale != 1.0: emo_vector = [int(x * scale * 10000) / 10000 for x in emo_vector]
    if emo_audio_prompt is None: emo_audio_prompt = spk_audio_prompt; emo_alpha = 1.0

Differences (docs/promises.md §1): ``emo_vector`` beats ``emo_text`` (the text is dropped with a
warning); ``use_emo_text=None`` means "on when ``emo_text`` is given"; text-to-emotion
raises :class:`~indextts_mlx.errors.FeatureNotAvailableError` until the Qwen emotion
model is ported; ignored arguments are warned about, never silently dropped.
"""

from __future__ import annotations

import math
import numbers
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from indextts_mlx.errors import EmotionInputError, FeatureNotAvailableError
from mlx_indextts_models.emotion import EMOTIONS

__all__ = [
    "EMOTIONS",
    "EMOTION_SCALE",
    "EMOTION_SCALE_RANGE",
    "EMO_ALPHA",
    "EMO_ALPHA_RANGE",
    "EmotionMode",
    "EmotionRequest",
    "check_emotion_scale",
    "parse_emo_vector",
    "resolve_emotion_mode",
    "scale_emo_vector",
]

#: Default and allowed range of the ``emotion`` scale (``cond + emotion * emo_vec``).
EMOTION_SCALE = 1.0
EMOTION_SCALE_RANGE = (0.0, 2.0)
#: Default ``emo_alpha`` (the emotion audio's own emotion; the vector unscaled), and the
#: range the CLI and chapter files accept. The Python API takes any finite value, as the
#: reference does: the vector clamps it to this range, the audio blend extrapolates.
EMO_ALPHA = 1.0
EMO_ALPHA_RANGE = (0.0, 1.0)

EMO_TEXT_UNAVAILABLE = "emo_text needs the Qwen emotion model, not available yet"

_N = len(EMOTIONS)


def _is_number(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def _parse_string(value: str) -> list[object]:
    text = value.strip()
    while len(text) >= 2 and text[0] + text[-1] in ("[]", "()"):
        text = text[1:-1].strip()
    if not text:
        return []
    parts = [p for p in re.split(r"[,\s;]+", text) if p]
    out: list[object] = []
    for part in parts:
        try:
            out.append(float(part))
        except ValueError:
            raise EmotionInputError(
                f"emo_vector {value!r}: {part!r} is not a number "
                f"(expected {_N} comma-separated numbers: {', '.join(EMOTIONS)})"
            ) from None
    return out


def parse_emo_vector(value: object) -> list[float]:
    """Parse and validate an emotion vector.

    Accepts a sequence of 8 numbers, a numpy array with 8 values, a string
    ``"0.8,0,0,0,0,0,0.2,0"`` (spaces, ``;`` and surrounding ``[]``/``()`` tolerated),
    or a mapping ``{"happy": 0.8, "calm": 0.2}`` (missing emotions are 0). The order is
    :data:`EMOTIONS`: happy, angry, sad, afraid, disgusted, melancholic, surprised, calm.

    Returns:
        8 Python floats.

    Raises:
        EmotionInputError: wrong length, non-numbers (incl. bools), NaN/inf or negative
            values, unknown emotion names.
    """
    if value is None:
        raise EmotionInputError("emo_vector is None")
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in EMOTIONS]
        if unknown:
            raise EmotionInputError(
                f"emo_vector: unknown emotion(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(EMOTIONS)}"
            )
        items: list[object] = [value.get(name, 0.0) for name in EMOTIONS]
    elif isinstance(value, str):
        items = _parse_string(value)
    elif isinstance(value, np.ndarray):
        if value.dtype.kind not in "iuf":
            raise EmotionInputError(f"emo_vector array has dtype {value.dtype}; expected numbers")
        if value.size != _N or value.ndim > 2 or (value.ndim == 2 and 1 not in value.shape):
            raise EmotionInputError(
                f"emo_vector must have {_N} values ({', '.join(EMOTIONS)}); got shape {value.shape}"
            )
        items = [float(x) for x in value.reshape(-1)]
    elif isinstance(value, (bytes, bytearray)) or not hasattr(value, "__iter__"):
        raise EmotionInputError(
            f"emo_vector must be {_N} numbers, a numpy array or a string; "
            f"got {type(value).__name__}"
        )
    else:
        items = list(value)

    if len(items) != _N:
        raise EmotionInputError(
            f"emo_vector must have {_N} values ({', '.join(EMOTIONS)}); got {len(items)}"
        )
    out: list[float] = []
    for name, x in zip(EMOTIONS, items, strict=True):
        if not _is_number(x):
            raise EmotionInputError(f"emo_vector[{name}] = {x!r} is not a number")
        f = float(x)  # type: ignore[arg-type]
        if not math.isfinite(f):
            raise EmotionInputError(f"emo_vector[{name}] = {f} is not finite")
        if f < 0:
            raise EmotionInputError(f"emo_vector[{name}] = {f} is negative; weights are >= 0")
        out.append(f)
    return out


def scale_emo_vector(vec: list[float], alpha: float) -> list[float]:
    """The reference's ``emo_alpha`` scaling of an emotion vector.

    ``scale = clamp(alpha, 0, 1)``; if ``scale != 1``, each entry becomes
    ``int(x * scale * 10000) / 10000`` (truncated toward zero to 4 decimals), else the
    vector is returned unchanged (no truncation).
    """
    scale = max(EMO_ALPHA_RANGE[0], min(EMO_ALPHA_RANGE[1], alpha))
    if scale != 1.0:
        return [int(x * scale * 10000) / 10000 for x in vec]
    return list(vec)


def check_emotion_scale(x: object) -> float:
    """Validate the ``emotion`` scale (``cond_with_emo = cond + emotion * emo_vec``):
    a finite number in [0, 2] (0 = no emotion, 1 = default, >1 amplifies).

    Raises:
        EmotionInputError: not a number, non-finite or outside [0, 2].
    """
    lo, hi = EMOTION_SCALE_RANGE
    if not _is_number(x):
        raise EmotionInputError(f"emotion scale must be a number in [{lo:g}, {hi:g}]; got {x!r}")
    f = float(x)  # type: ignore[arg-type]
    if not (math.isfinite(f) and lo <= f <= hi):
        raise EmotionInputError(f"emotion scale must be in [{lo:g}, {hi:g}]; got {f}")
    return f


@dataclass(frozen=True)
class EmotionMode:
    """Which emotion source the pipeline uses.

    Attributes:
        mode: ``"vector"`` (matrix emotion from ``emo_vector``, speaker audio as emotion
            audio), ``"audio"`` (``emo_audio_prompt`` blended by ``emo_alpha``) or
            ``"speaker"`` (the speaker audio is the emotion audio).
        emo_vector: the validated vector, already scaled by ``emo_alpha`` as the
            reference does (``"vector"`` mode only, else None).
        emo_audio_prompt: the emotion audio file (``"audio"`` mode only, ``~``
            expanded); None means "use the speaker audio".
        emo_alpha: the alpha for ``merge_emovec`` (``base + alpha * (emo - base)``):
            the given one in ``"audio"`` mode, 1.0 otherwise (as the reference).
    """

    mode: Literal["vector", "audio", "speaker"]
    emo_vector: list[float] | None
    emo_audio_prompt: Path | None
    emo_alpha: float

    def as_request(self, emotion: float = EMOTION_SCALE) -> EmotionRequest:
        """This mode as the request that resolves to it again (without warnings: the
        ignored fields are gone, the vector is already scaled); ``emotion``: the scale."""
        return EmotionRequest(
            self.emo_audio_prompt, self.emo_alpha, self.emo_vector, None, None, emotion
        )


def _check_alpha(emo_alpha: object) -> float:
    if not _is_number(emo_alpha) or not math.isfinite(float(emo_alpha)):  # type: ignore[arg-type]
        raise EmotionInputError(f"emo_alpha must be a finite number; got {emo_alpha!r}")
    return float(emo_alpha)  # type: ignore[arg-type]


def resolve_emotion_mode(
    emo_vector: object = None,
    emo_text: str | None = None,
    use_emo_text: bool | None = None,
    emo_audio_prompt: str | os.PathLike[str] | None = None,
    emo_alpha: float = EMO_ALPHA,
) -> EmotionMode:
    """Decide the emotion mode (docs/promises.md §1 priorities, reference semantics).

    * ``emo_vector`` given: ``"vector"`` mode; ``emo_text`` / ``use_emo_text=True`` are
      dropped with a warning, ``emo_audio_prompt`` is ignored with a warning (the
      reference drops it too), the vector is scaled by :func:`scale_emo_vector`, and
      the effective alpha is 1.0.
    * else text-to-emotion requested (``use_emo_text=True``, or ``None`` with
      ``emo_text`` given): :class:`FeatureNotAvailableError`.
    * else ``emo_audio_prompt`` given: ``"audio"`` mode with ``emo_alpha``.
    * else ``"speaker"`` mode with alpha 1.0 (a non-default ``emo_alpha`` is warned
      about, since it has no effect).

    Raises:
        EmotionInputError: malformed ``emo_vector`` or non-finite ``emo_alpha``.
        FeatureNotAvailableError: text-to-emotion requested.
    """
    alpha = _check_alpha(emo_alpha)
    has_text = emo_text is not None and str(emo_text).strip() != ""
    if use_emo_text is not None and not isinstance(use_emo_text, (bool, np.bool_)):
        raise EmotionInputError(f"use_emo_text must be True, False or None; got {use_emo_text!r}")
    use_text = has_text if use_emo_text is None else bool(use_emo_text)
    has_audio = emo_audio_prompt is not None and os.fspath(emo_audio_prompt).strip() != ""

    if emo_vector is not None:
        vec = parse_emo_vector(emo_vector)
        if use_text or has_text:
            warnings.warn(
                "emo_vector and emo_text both given: emo_vector wins, emo_text is ignored",
                UserWarning,
                stacklevel=2,
            )
        if has_audio:
            warnings.warn(
                "emo_vector given: emo_audio_prompt is ignored (the speaker audio serves as "
                "emotion audio and emo_alpha scales the vector)",
                UserWarning,
                stacklevel=2,
            )
        return EmotionMode("vector", scale_emo_vector(vec, alpha), None, 1.0)

    if use_text:
        raise FeatureNotAvailableError(EMO_TEXT_UNAVAILABLE)
    if has_text:  # use_emo_text=False explicitly
        warnings.warn("emo_text is ignored because use_emo_text=False", UserWarning, stacklevel=2)

    if has_audio:
        path = Path(os.fspath(emo_audio_prompt)).expanduser()  # type: ignore[arg-type]
        return EmotionMode("audio", None, path, alpha)

    if alpha != 1.0:
        warnings.warn(
            f"emo_alpha={alpha} has no effect without emo_audio_prompt or emo_vector",
            UserWarning,
            stacklevel=2,
        )
    return EmotionMode("speaker", None, None, 1.0)


#: What ``emo_vector`` accepts (see :func:`parse_emo_vector`).
EmoVectorLike = Sequence[float] | Mapping[str, float] | str | np.ndarray


@dataclass(frozen=True)
class EmotionRequest:
    """The emotion a synthesis asks for, under the reference's names (see
    :func:`resolve_emotion_mode` for how they combine).

    Attributes:
        emo_audio_prompt: an emotion reference clip, blended in by ``emo_alpha``.
        emo_alpha: the blend towards the clip's emotion, or the scale of ``emo_vector``.
        emo_vector: 8 weights (:data:`EMOTIONS` order), a string or a mapping.
        emo_text: the emotion described in words.
        use_emo_text: derive the emotion from text (None: when ``emo_text`` is given).
        emotion: the scale of the emotion in the GPT conditioning, in [0, 2].
    """

    emo_audio_prompt: str | os.PathLike[str] | None = None
    emo_alpha: float = EMO_ALPHA
    emo_vector: EmoVectorLike | None = None
    emo_text: str | None = None
    use_emo_text: bool | None = None
    emotion: float = EMOTION_SCALE

    def resolve(self) -> EmotionMode:
        """Validate every field and decide the mode (no model runs).

        Raises:
            EmotionInputError: a malformed field.
            FeatureNotAvailableError: text-to-emotion requested.
        """
        check_emotion_scale(self.emotion)
        return resolve_emotion_mode(
            self.emo_vector, self.emo_text, self.use_emo_text, self.emo_audio_prompt, self.emo_alpha
        )
