"""What one synthesis is asked for: typed settings, and the flat names users write.

The outer surfaces (:meth:`~indextts_mlx.IndexTTS2.render` and ``synthesize``, the CLI's
options, a chapter file's fields) keep the reference's flat keyword names
(``emo_alpha``, ``top_k``, ``cfm_steps``, ...); :class:`SynthesisOptions` types them.
:meth:`SynthesisRequest.from_options` groups them into the settings each stage takes:

* :class:`~indextts_mlx.voices.SpeakerRequest`: which voice;
* :class:`~indextts_mlx.emotion_args.EmotionRequest`: the emotion sources and scales;
* :class:`~mlx_indextts_models.GenerationConfig`: the GPT's decoding (``max_codes`` is
  its ``max_new_tokens``);
* :class:`~mlx_indextts_models.s2mel.cfm.CFMSettings`: the flow matching (``cfm_steps``
  is its ``steps``);
* the request itself: ``seed``, ``use_random``, the segment length and the silence
  between segments.

Every default lives once, on its dataclass; :data:`DEFAULTS` reads them back by flat name
(the CLI's option defaults come from there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from indextts_mlx.emotion_args import EmotionRequest, EmoVectorLike
from indextts_mlx.errors import IndexTTSError
from indextts_mlx.result import SEGMENT_SILENCE_MS
from indextts_mlx.text.tokenize import MAX_TEXT_TOKENS_PER_SEGMENT
from indextts_mlx.voices import SpeakerRequest
from mlx_indextts_models import GenerationConfig
from mlx_indextts_models.s2mel.cfm import CFMSettings

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "DEFAULTS",
    "OPTION_NAMES",
    "RenderOptions",
    "SynthesisOptions",
    "SynthesisRequest",
]

PathLikeStr = str | PathLike[str]


class SynthesisOptions(TypedDict, total=False):
    """The flat keyword arguments of :meth:`IndexTTS2.render` (the reference's names),
    besides ``text`` and ``spk_audio_prompt``. Defaults: :data:`DEFAULTS`."""

    reference_audio: PathLikeStr | None
    voice: PathLikeStr | None
    voices_dir: PathLikeStr | None
    emo_audio_prompt: PathLikeStr | None
    emo_alpha: float
    emo_vector: EmoVectorLike | None
    emo_text: str | None
    use_emo_text: bool | None
    emotion: float
    seed: int
    use_random: bool
    max_codes: int
    do_sample: bool
    temperature: float
    top_k: int
    top_p: float
    repetition_penalty: float
    num_beams: int
    cfm_steps: int
    cfg_rate: float
    max_text_tokens_per_segment: int
    interval_silence_ms: int


class RenderOptions(SynthesisOptions, total=False):
    """:class:`SynthesisOptions` plus what :meth:`IndexTTS2.render` does around the
    synthesis: write ``output_path`` (format from its extension, or ``audio_format``) and
    call ``on_code(segment_index, codes_so_far)`` after each GPT step."""

    output_path: str | Path | None
    audio_format: str | None
    on_code: Callable[[int, int], None] | None


#: Flat names whose field in their settings type is called differently.
_RENAMED = {"max_codes": "max_new_tokens", "cfm_steps": "steps"}
#: Which settings type holds each flat name (the rest belong to the request itself).
_GROUPS: dict[str, type] = {
    "speaker": SpeakerRequest,
    "emotion": EmotionRequest,
    "generation": GenerationConfig,
    "cfm": CFMSettings,
}
_FLAT_TO_FIELD = {name: _RENAMED.get(name, name) for name in SynthesisOptions.__annotations__}


def _group_of(name: str) -> str | None:
    fieldname = _FLAT_TO_FIELD[name]
    for group, cls in _GROUPS.items():
        if fieldname in {f.name for f in dataclasses.fields(cls)}:
            return group
    return None


#: Every flat name, in :class:`SynthesisOptions` order.
OPTION_NAMES: tuple[str, ...] = tuple(SynthesisOptions.__annotations__)
#: flat name → (settings group or None for the request itself, field name).
_WHERE = {name: (_group_of(name), _FLAT_TO_FIELD[name]) for name in OPTION_NAMES}


@dataclass(frozen=True)
class SynthesisRequest:
    """One synthesis, fully specified: what :meth:`IndexTTS2.run` takes.

    Attributes:
        text: what to say.
        speaker: the voice.
        emotion: the emotion.
        generation: the GPT's decoding (``max_new_tokens`` = ``max_codes`` per segment).
        cfm: the flow matching's steps and guidance rate.
        seed: the seed of every random draw (ignored with ``use_random``).
        use_random: draw a fresh seed for this synthesis.
        max_text_tokens_per_segment: BPE tokens per GPT segment.
        interval_silence_ms: silence between segments (ms).
    """

    text: str
    speaker: SpeakerRequest = field(default_factory=SpeakerRequest)
    emotion: EmotionRequest = field(default_factory=EmotionRequest)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    cfm: CFMSettings = field(default_factory=CFMSettings)
    seed: int = 0
    use_random: bool = False
    max_text_tokens_per_segment: int = MAX_TEXT_TOKENS_PER_SEGMENT
    interval_silence_ms: int = SEGMENT_SILENCE_MS

    def __post_init__(self) -> None:
        _check_int("seed", self.seed, 0)
        _check_int("max_text_tokens_per_segment", self.max_text_tokens_per_segment, 1)
        _check_int("interval_silence_ms", self.interval_silence_ms, 0)

    @classmethod
    def from_options(
        cls,
        text: str,
        spk_audio_prompt: PathLikeStr | None = None,
        **options: Unpack[SynthesisOptions],
    ) -> SynthesisRequest:
        """The request for ``render(text, spk_audio_prompt, **options)``.

        Raises:
            TypeError: an option name :class:`SynthesisOptions` does not have.
            IndexTTSError: a sampling or CFM setting out of range.
        """
        unknown = sorted(set(options) - set(OPTION_NAMES))
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
        groups: dict[str | None, dict[str, Any]] = {g: {} for g in (*_GROUPS, None)}
        groups["speaker"]["spk_audio_prompt"] = spk_audio_prompt
        for name, value in options.items():
            group, fieldname = _WHERE[name]
            groups[group][fieldname] = value
        try:
            built = {g: cls_(**groups[g]) for g, cls_ in _GROUPS.items()}
            return cls(text=text, **built, **groups[None])
        except ValueError as e:
            raise IndexTTSError(f"invalid setting: {e}") from e

    def to_options(self) -> dict[str, Any]:
        """Every setting under its flat name (``spk_audio_prompt`` included; not ``text``)."""
        out: dict[str, Any] = {"spk_audio_prompt": self.speaker.spk_audio_prompt}
        for name, (group, fieldname) in _WHERE.items():
            holder = self if group is None else getattr(self, group)
            out[name] = getattr(holder, fieldname)
        return out


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise IndexTTSError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _defaults() -> dict[str, Any]:
    options = SynthesisRequest(text="").to_options()
    del options["spk_audio_prompt"]
    return options


#: The default of every flat option, read from the settings types.
DEFAULTS: Mapping[str, Any] = _defaults()
