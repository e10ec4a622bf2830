"""The synthesis options of our commands, one table: ``@synthesis_options`` adds them.

Each option is a flat name of :class:`indextts_mlx.settings.SynthesisOptions` (``--top-k``
is ``top_k``), plus the speaker choice; its default and range come from the library
(:data:`~indextts_mlx.settings.DEFAULTS`, ``EMO_ALPHA_RANGE``, ...), so ``--help`` shows
what the code accepts. Any command that synthesizes takes them the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from indextts_mlx.emotion_args import EMO_ALPHA_RANGE, EMOTION_SCALE_RANGE
from indextts_mlx.settings import DEFAULTS, OPTION_NAMES, SynthesisOptions

F = TypeVar("F", bound=Callable[..., Any])

PATH = click.Path(path_type=Path)
POSITIVE = click.FloatRange(min=0, min_open=True)

#: (flag(s), click type or None for a plain string / a flag pair, help). Order = --help's.
SYNTHESIS_OPTIONS: tuple[tuple[str, click.ParamType[Any] | None, str], ...] = (
    ("--spk-audio-prompt", PATH, "Speaker prompt audio (first 15 s used)."),
    ("--reference-audio", PATH, "Old name of --spk-audio-prompt."),
    ("--voice", None, "Voice name in --voices-dir, or an audio file path."),
    ("--voices-dir", PATH, "Folder of voice .wav files (name = file stem)."),
    ("--emo-audio-prompt", PATH, "Emotion reference audio."),
    ("--emo-alpha", click.FloatRange(*EMO_ALPHA_RANGE),
     "Emotion strength: blend towards the emotion audio, or scale --emo-vector."),
    ("--emo-vector", None, "8 weights: happy,angry,sad,afraid,disgusted,melancholic,"
     "surprised,calm (needs the emotion matrices)."),
    ("--emo-text", None, "Describe the emotion in words (not available yet)."),
    ("--use-emo-text/--no-use-emo-text", None,
     "Derive the emotion from text (default: when --emo-text is given)."),
    ("--emotion", click.FloatRange(*EMOTION_SCALE_RANGE),
     "Scale of the emotion in the conditioning (0 = none, 2 = double)."),
    ("--seed", click.IntRange(min=0), "Seed of every random draw."),
    ("--use-random/--no-use-random", None, "Draw a fresh seed each run (non-deterministic)."),
    ("--max-codes", click.IntRange(min=1),
     "GPT code limit per segment (~50 codes per second of speech)."),
    ("--temperature", POSITIVE, "Sampling temperature."),
    ("--top-k", click.IntRange(min=0), "Sample among the k likeliest codes (0: all)."),
    ("--top-p", click.FloatRange(0, 1), "Nucleus sampling: the smallest set of this mass."),
    ("--repetition-penalty", POSITIVE, "Penalty of codes already generated."),
    ("--num-beams", click.IntRange(min=1), "Beams of the GPT's search."),
    ("--cfm-steps", click.IntRange(min=1), "Flow-matching steps (fewer: faster, rougher)."),
    ("--cfg-rate", click.FloatRange(min=0), "Classifier-free guidance rate (0: none)."),
    ("--max-text-tokens-per-segment", click.IntRange(min=1),
     "Split the text into GPT segments of at most this many BPE tokens."),
    ("--interval-silence-ms", click.IntRange(min=0),
     "Silence between the segments of one text (ms)."),
)  # fmt: skip


def _dest(flags: str) -> str:
    return flags.split("/")[0].lstrip("-").replace("-", "_")


def synthesis_options(command: F) -> F:
    """Add every option of :data:`SYNTHESIS_OPTIONS`, and ``--greedy``, to ``command``."""
    command = click.option("--greedy", is_flag=True, help="Greedy decoding instead of sampling.")(
        command
    )
    for flags, kind, text in reversed(SYNTHESIS_OPTIONS):
        default = DEFAULTS.get(_dest(flags))
        option = click.option(
            flags, type=kind, help=text, default=default, show_default=default is not None
        )
        command = option(command)
    return command


def options_from(params: dict[str, Any]) -> SynthesisOptions:
    """The library's flat options from a command's parameters (``--greedy`` included)."""
    options = {name: params[name] for name in OPTION_NAMES if name in params}
    options["do_sample"] = not params["greedy"]
    return cast(SynthesisOptions, options)  # the keys are SynthesisOptions' own
