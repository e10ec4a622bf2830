"""Render a whole chapter from a JSONL file of segments, with a cache and resume.

Each line of the JSONL file is one segment (``schemas/segment.schema.json``): ``text`` and
optional overrides of the call's settings (the flat names of
:class:`~indextts_mlx.settings.SynthesisOptions`, plus pauses, ``sample_rate`` and
``audio_format``). :func:`render_segments_jsonl` is :func:`plan_chapter` then
:func:`render_chapter`:

1. read and validate **every** line first (JSON, schema, voice and emotion files,
   settings), before any model loads, and raise one :class:`SegmentsFileError` listing
   each bad line and field;
2. key each segment by the SHA-256 of everything that affects its audio (text, the
   *content* of its voice and emotion files, the resolved emotion, every synthesis
   setting, the weights' identity, the package versions); a segment whose key is in the
   :class:`~indextts_mlx.segment_cache.SegmentCache` is not synthesized again;
3. synthesize the missing segments, storing each in the cache as soon as it is done, so a
   render killed at any point resumes where it stopped and ends with the same bytes;
4. write the chapter (pauses included, resampled when asked) and a manifest
   ``<output>.manifest.json`` (each segment's start/end seconds, cache key, text), both
   atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from indextts_mlx.audio import file_digest
from indextts_mlx.errors import IndexTTSError
from indextts_mlx.output import audio_format_for, write_audio
from indextts_mlx.result import SAMPLE_RATE, SynthesisResult
from indextts_mlx.segment_cache import SegmentCache, default_cache_dir
from indextts_mlx.segment_schema import segment_errors
from indextts_mlx.settings import OPTION_NAMES, SynthesisOptions, SynthesisRequest
from indextts_mlx.voices import SpeakerRequest
from indextts_weights import WeightsConfig
from indextts_weights.atomic import atomic_path

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from indextts_mlx.models import Precision

__all__ = [
    "ChapterOptions",
    "ChapterPlan",
    "ChapterRenderError",
    "ChapterReport",
    "SegmentPlan",
    "SegmentsFileError",
    "default_cache_dir",
    "plan_chapter",
    "render_chapter",
    "render_segments_jsonl",
]

#: Bumped when cached audio would no longer be valid for the same key (2: the key covers
#: every synthesis setting, defaults included).
CACHE_VERSION = 2
#: Silence after each segment unless the segment or the call says otherwise (ms).
DEFAULT_PAUSE_AFTER_MS = 200
#: Rough speaking rate for ``dry_run`` estimates of segments not cached yet (s per char):
#: about 545 codes (10.9 s) per 200 characters (docs/promises.md §1).
SECONDS_PER_CHAR = 10.9 / 200

#: Per-segment fields that are not synthesis options.
_PAUSES = ("pause_before_ms", "pause_after_ms")
#: Chapter-wide settings: every line that sets one must agree.
_CHAPTER_FIELDS = ("sample_rate", "audio_format")


class ChapterOptions(SynthesisOptions, total=False):
    """A chapter call's settings: a default for each line (None: not set)."""

    spk_audio_prompt: str | os.PathLike[str] | None
    pause_before_ms: int | None
    pause_after_ms: int | None
    sample_rate: int | None
    audio_format: str | None


#: Every setting a call may give.
CHAPTER_OPTIONS = frozenset(ChapterOptions.__annotations__) | frozenset(OPTION_NAMES)
#: Fields naming files, resolved against the JSONL file's folder when relative.
_PATH_FIELDS = ("spk_audio_prompt", "emo_audio_prompt", "voices_dir")
#: The fields that choose a speaker: a line that sets one replaces all of the call's.
_SPEAKER_CHOICE = ("spk_audio_prompt", "reference_audio", "voice")
#: Settings that name files: the key holds the files' contents instead.
_FILE_OPTIONS = ("spk_audio_prompt", "reference_audio", "voice", "voices_dir", "emo_audio_prompt")

Problem = tuple[int, str, str]  # (line, field, message)


class Renderer(Protocol):
    """What the chapter renderer needs of a pipeline (:class:`~indextts_mlx.IndexTTS2`)."""

    weights: WeightsConfig
    precision: Precision

    def run(self, request: SynthesisRequest) -> SynthesisResult: ...


class SegmentsFileError(IndexTTSError, ValueError):
    """The JSONL file has bad lines; :attr:`problems` holds ``(line, field, message)``."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.problems = problems
        lines = [f"  line {n}: {f + ': ' if f else ''}{m}" for n, f, m in problems]
        super().__init__(
            f"{path}: {len(problems)} problem(s), nothing rendered:\n" + "\n".join(lines)
        )


class ChapterRenderError(IndexTTSError):
    """Some segments failed (with ``continue_on_error``); the others are cached."""

    def __init__(self, report: ChapterReport) -> None:
        self.report = report
        lines = [f"  line {s.line}: {s.error}" for s in report.segments if s.error]
        super().__init__(
            f"{len(lines)} segment(s) failed; the chapter was not written "
            "(rendered segments are cached):\n" + "\n".join(lines)
        )


@dataclass
class SegmentPlan:
    """One segment, resolved: its request (speaker and emotion files resolved), its cache
    key and pauses, and (filled in as the render goes) its audio length and position."""

    line: int
    request: SynthesisRequest
    key: str
    pause_before_ms: int
    pause_after_ms: int
    cached: bool = False
    seconds: float | None = None  # audio length when known (cached or rendered)
    start: float | None = None  # position in the chapter (s)
    end: float | None = None
    error: str | None = None

    @property
    def text(self) -> str:
        return self.request.text

    @property
    def speaker(self) -> Path:
        """The speaker file."""
        return Path(self.request.speaker.spk_audio_prompt or "")

    @property
    def estimated_seconds(self) -> float:
        return self.seconds if self.seconds is not None else len(self.text) * SECONDS_PER_CHAR


class _Segments:
    """What a plan and a report both tell about their segments."""

    segments: list[SegmentPlan]

    @property
    def cache_hits(self) -> int:
        return sum(s.cached for s in self.segments)

    @property
    def estimated_seconds(self) -> float:
        """Audio length: known for cached and rendered segments, else estimated; pauses
        included."""
        pauses = sum(s.pause_before_ms + s.pause_after_ms for s in self.segments) / 1000
        return pauses + sum(s.estimated_seconds for s in self.segments)


@dataclass
class ChapterPlan(_Segments):
    """A validated chapter: its segments, output rate and format, and the cache."""

    jsonl: Path
    segments: list[SegmentPlan]
    cache: SegmentCache
    sample_rate: int = SAMPLE_RATE
    audio_format: str | None = None  # None: from the output's extension
    precision: str = ""  # the keys' precision (``Precision.label``; "" = the files' own)


@dataclass
class ChapterReport(_Segments):
    """The outcome (or, with ``dry_run``, the plan) of a chapter render."""

    segments: list[SegmentPlan]
    output: Path | None = None
    manifest: Path | None = None
    sample_rate: int = SAMPLE_RATE
    duration: float = 0.0
    rendered: int = 0
    timings: dict[str, float] = field(default_factory=dict)


# -- reading and planning -------------------------------------------------------------------


def read_segments(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[Problem]]:
    """Parse and schema-check every line: ``([(line, segment)], [(line, field, message)])``.

    Blank lines are skipped; line numbers count from 1.
    """
    segments: list[tuple[int, dict[str, Any]]] = []
    problems: list[Problem] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise IndexTTSError(f"cannot read segments file {path}: {e}") from e
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append((number, "", f"not valid JSON ({e.msg} at column {e.colno})"))
            continue
        errors = segment_errors(value)
        problems += [(number, f, m) for f, m in errors]
        if not errors:
            segments.append((number, value))
    if not segments and not problems:
        problems.append((0, "", "no segments (the file is empty)"))
    return segments, problems


def weights_identity(weights: WeightsConfig, precision: Precision | None = None) -> str:
    """A digest naming a set of weights: the conversion manifest's content when there is
    one, else each file's name, size and modification time; plus ``bpe.model``'s content
    and the precision the models are held in when it is not the files' own."""
    h = hashlib.sha256()
    if precision is not None and precision.label:
        h.update(f"precision:{precision.label};".encode())
    manifest = Path(weights.weights_dir or "") / "manifest.json"
    if manifest.is_file():
        h.update(manifest.read_bytes())
    else:
        for name, path in sorted(weights.files().items()):
            if name != "bpe_model" and path.is_file():
                stat = path.stat()
                h.update(f"{name}:{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    bpe = Path(weights.bpe_model or "")
    if bpe.is_file():
        h.update(bpe.read_bytes())
    return h.hexdigest()


def _versions() -> dict[str, str]:
    import indextts_mlx
    import mlx_indextts_models

    return {"models": mlx_indextts_models.__version__, "pipeline": indextts_mlx.__version__}


def _resolve_paths(values: dict[str, Any], base: Path) -> dict[str, Any]:
    out = dict(values)
    for name in _PATH_FIELDS:
        if out.get(name):
            path = Path(out[name]).expanduser()
            out[name] = path if path.is_absolute() else base / path
    voice = out.get("voice")
    if voice and not out.get("voices_dir"):  # a file path, relative to the JSONL file
        path = Path(voice).expanduser()
        out["voice"] = path if path.is_absolute() else base / path
    return out


def segment_key(request: SynthesisRequest, identity: str) -> str:
    """The cache key of a resolved request (its speaker and emotion audio are files, its
    emotion canonical: see :meth:`~indextts_mlx.emotion_args.EmotionMode.as_request`)."""
    options = request.to_options()
    for name in _FILE_OPTIONS:
        del options[name]
    audio = request.emotion.emo_audio_prompt
    fields = {
        "cache": CACHE_VERSION,
        "text": request.text,
        "speaker": file_digest(Path(request.speaker.spk_audio_prompt or "")),
        "emotion_audio": file_digest(audio) if audio is not None else None,
        "options": options,
        "weights": identity,
        "versions": _versions(),
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def plan_segment(
    line: int, values: dict[str, Any], base: Path, defaults: dict[str, Any], identity: str
) -> SegmentPlan:
    """Resolve one segment's files and settings and compute its cache key.

    Args:
        values: the segment's fields; ``defaults``: the call's settings (same names);
            ``base``: the folder relative paths start from; ``identity``:
            :func:`weights_identity`.

    Raises:
        IndexTTSError: a voice or emotion file is missing, or a setting is invalid.
    """
    if any(name in values for name in _SPEAKER_CHOICE):  # the line's voice, not the call's
        defaults = {k: v for k, v in defaults.items() if k not in _SPEAKER_CHOICE}
    merged = _resolve_paths({**defaults, **values}, base)
    pauses = {"pause_before_ms": 0, "pause_after_ms": DEFAULT_PAUSE_AFTER_MS}
    pauses |= {k: int(merged.pop(k)) for k in _PAUSES if k in merged}
    for name in _CHAPTER_FIELDS:
        merged.pop(name, None)
    text, speaker = merged.pop("text"), merged.pop("spk_audio_prompt", None)
    request = SynthesisRequest.from_options(text, speaker, **merged)
    request = dataclasses.replace(
        request,
        speaker=SpeakerRequest(request.speaker.resolve()),
        emotion=request.emotion.resolve().as_request(request.emotion.emotion),
    )
    key = segment_key(request, identity)
    return SegmentPlan(line, request, key, pauses["pause_before_ms"], pauses["pause_after_ms"])


def _chapter_setting(
    name: str, segments: list[tuple[int, dict[str, Any]]], default: Any
) -> tuple[Any, list[Problem]]:
    """A chapter-wide setting that segments may set, if they agree."""
    values = {(line, seg[name]) for line, seg in segments if name in seg}
    distinct = {v for _, v in values}
    if len(distinct) <= 1:
        return (distinct.pop() if distinct else default), []
    first = min(values)
    message = f"differs from line {first[0]}'s {first[1]!r}: one chapter file has one value"
    return default, [(line, name, message) for line, v in sorted(values) if v != first[1]]


def plan_chapter(
    jsonl: str | os.PathLike[str],
    weights: WeightsConfig,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    precision: Precision | None = None,
    **defaults: Unpack[ChapterOptions],
) -> ChapterPlan:
    """Read, validate and plan every segment, loading no model (the weights' files are
    only hashed for the cache keys, and need not exist yet).

    Args:
        jsonl: the segments file.
        weights: the weights the chapter will be rendered with.
        precision: the precision they will be held in (``IndexTTS2.precision``): part
            of every key; None for the files' own.
        cache_dir: the segment cache (default :func:`default_cache_dir`).
        **defaults: a default for every line: any :class:`SynthesisOptions` name,
            ``spk_audio_prompt``, ``pause_before_ms``, ``pause_after_ms``,
            ``sample_rate``, ``audio_format``; None means "not set".

    Raises:
        TypeError: an unknown setting name.
        SegmentsFileError: every problem of every line, at once.
    """
    unknown = sorted(set(defaults) - CHAPTER_OPTIONS)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
    jsonl = Path(jsonl).expanduser()
    given = {k: v for k, v in defaults.items() if v is not None}
    segments, problems = read_segments(jsonl)
    chapter = {}
    for name in _CHAPTER_FIELDS:
        chapter[name], clashes = _chapter_setting(name, segments, given.get(name))
        problems += clashes
    identity = weights_identity(weights, precision)
    cache = SegmentCache(cache_dir)
    plans = []
    for line, values in segments:
        try:
            plan = plan_segment(line, values, jsonl.parent, given, identity)
        except IndexTTSError as e:
            problems.append((line, "", str(e).splitlines()[0]))
            continue
        audio = cache.get(plan.key)
        if audio is not None:
            plan.cached, plan.seconds = True, audio.shape[0] / SAMPLE_RATE
        plans.append(plan)
    if problems:
        raise SegmentsFileError(jsonl, sorted(problems))
    rate = int(chapter["sample_rate"] or SAMPLE_RATE)
    label = precision.label if precision is not None else ""
    return ChapterPlan(jsonl, plans, cache, rate, chapter["audio_format"], label)


# -- rendering ------------------------------------------------------------------------------


def render_chapter(
    plan: ChapterPlan,
    out: str | os.PathLike[str],
    tts: Renderer,
    *,
    continue_on_error: bool = False,
    on_segment: Callable[[int, int, SegmentPlan], None] | None = None,
) -> ChapterReport:
    """Render the segments the cache lacks, then write the chapter and its manifest.

    Raises:
        IndexTTSError: a segment failed (``line N: ...``), without ``continue_on_error``.
        ChapterRenderError: with ``continue_on_error``, some segments failed; the others
            are cached and the chapter is not written.
    """
    if tts.precision.label != plan.precision:
        raise ValueError(
            f"the chapter was planned for precision {plan.precision or 'as stored'!r}, but the "
            f"pipeline holds {tts.precision.label or 'as stored'!r}: plan it with its precision"
        )
    start = time.perf_counter()
    out = Path(out).expanduser()
    fmt = audio_format_for(out, plan.audio_format)
    report = ChapterReport(plan.segments, sample_rate=plan.sample_rate)
    audios: dict[str, np.ndarray] = {}
    for index, segment in enumerate(plan.segments):
        audio = plan.cache.get(segment.key)
        if audio is None:
            if on_segment is not None:
                on_segment(index, len(plan.segments), segment)
            try:
                audio = tts.run(segment.request).audio
            except IndexTTSError as e:
                if not continue_on_error:
                    raise IndexTTSError(f"line {segment.line}: {e}") from e
                segment.error = str(e).splitlines()[0]
                continue
            plan.cache.put(segment.key, audio)
            report.rendered += 1
        segment.seconds = audio.shape[0] / SAMPLE_RATE
        audios[segment.key] = audio
    if any(s.error for s in plan.segments):
        raise ChapterRenderError(report)
    chapter = _assemble(plan.segments, audios)
    report.output = write_audio(out, chapter, SAMPLE_RATE, fmt, resample_to=plan.sample_rate)
    report.duration = chapter.shape[0] / SAMPLE_RATE
    report.manifest = _write_manifest(out, report)
    report.timings["total"] = time.perf_counter() - start
    return report


def render_segments_jsonl(
    jsonl: str | os.PathLike[str],
    out: str | os.PathLike[str],
    tts: Renderer | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    continue_on_error: bool = False,
    dry_run: bool = False,
    on_segment: Callable[[int, int, SegmentPlan], None] | None = None,
    **defaults: Unpack[ChapterOptions],
) -> ChapterReport:
    """Render every segment of a JSONL chapter file into one audio file.

    Args:
        jsonl: the segments file (one JSON object per line; see the module docstring).
        out: the chapter file; its extension (or ``audio_format``) picks the format.
        tts: an :class:`~indextts_mlx.IndexTTS2` (default: one on the default weights,
            built only after every line has passed validation).
        cache_dir: where segment audio is cached (default :func:`default_cache_dir`).
        continue_on_error: render what can be rendered, then raise
            :class:`ChapterRenderError` listing the failures (the chapter is not written).
        dry_run: plan only: validate, look up the cache, estimate; nothing is rendered.
        on_segment: called as ``(index, count, plan)`` before each segment is rendered.
        **defaults: each line's defaults (see :func:`plan_chapter`): ``voices_dir``,
            ``voice``, ``seed``, ``cfm_steps``, sampling, emotion, pauses, ``sample_rate``,
            ``audio_format``, ...

    Returns:
        A :class:`ChapterReport` (segment times, cache keys, output paths).

    Raises:
        SegmentsFileError: bad lines (all reported at once, before any synthesis).
        ChapterRenderError: with ``continue_on_error``, some segments failed.
    """
    weights = tts.weights if tts is not None else WeightsConfig()
    precision = tts.precision if tts is not None else None
    plan = plan_chapter(jsonl, weights, cache_dir=cache_dir, precision=precision, **defaults)
    audio_format_for(Path(out), plan.audio_format)
    if dry_run:
        return ChapterReport(plan.segments, sample_rate=plan.sample_rate)
    if tts is None:
        from indextts_mlx.pipeline import IndexTTS2

        tts = IndexTTS2(weights)
    return render_chapter(
        plan, out, tts, continue_on_error=continue_on_error, on_segment=on_segment
    )


def _assemble(plans: list[SegmentPlan], audios: dict[str, np.ndarray]) -> np.ndarray:
    """Pauses and segments in order; sets each plan's start/end (seconds at 22,050 Hz)."""
    parts: list[np.ndarray] = []
    position = 0
    for plan in plans:
        before = int(SAMPLE_RATE * plan.pause_before_ms / 1000)
        after = int(SAMPLE_RATE * plan.pause_after_ms / 1000)
        audio = audios[plan.key]
        parts += [np.zeros(before, np.float32), audio, np.zeros(after, np.float32)]
        plan.start = (position + before) / SAMPLE_RATE
        plan.end = plan.start + audio.shape[0] / SAMPLE_RATE
        position += before + audio.shape[0] + after
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _write_manifest(out: Path, report: ChapterReport) -> Path:
    path = out.with_name(out.name + ".manifest.json")
    data = {
        "output": out.name,
        "sample_rate": report.sample_rate,
        "duration": round(report.duration, 6),
        "segments": [
            {
                "line": p.line,
                "start": round(p.start or 0.0, 6),
                "end": round(p.end or 0.0, 6),
                "key": p.key,
                "text": p.text,
                "speaker": p.speaker.name,
            }
            for p in report.segments
        ],
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path
