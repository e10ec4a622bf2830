"""Render a whole chapter from a JSONL file of segments, with a cache and resume.

Each line of the JSONL file is one segment (``schemas/segment.schema.json``): ``text`` and
optional overrides of the render's global settings. :func:`render_segments_jsonl`

1. reads and validates **every** line first (JSON, schema, voice and emotion files,
   settings) and raises one :class:`SegmentsFileError` listing each bad line and field;
2. keys each segment by the SHA-256 of everything that affects its audio (text, the
   *content* of its voice and emotion files, emotion settings, seed, sampling and CFM
   settings, the weights' identity, the package versions); a segment whose key is in
   ``cache_dir`` is not synthesized again, and a damaged cache entry is re-rendered;
3. synthesizes the missing segments, storing each in the cache as soon as it is done
   (temp file + rename), so a render killed at any point resumes where it stopped and
   ends with the same bytes;
4. writes the chapter (pauses included, resampled when asked) and a manifest
   ``<output>.manifest.json`` (each segment's start/end seconds, cache key, text), both
   atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indextts_mlx.audio import file_digest
from indextts_mlx.emotion_args import check_emotion_scale, resolve_emotion_mode
from indextts_mlx.errors import IndexTTSError
from indextts_mlx.output import audio_format_for, write_audio
from indextts_mlx.result import SAMPLE_RATE
from indextts_mlx.segment_schema import segment_errors
from indextts_mlx.voices import resolve_speaker
from indextts_weights.atomic import atomic_path

#: Bumped when cached audio would no longer be valid for the same key.
CACHE_VERSION = 1
#: Silence after each segment unless the segment or the call says otherwise (ms).
DEFAULT_PAUSE_AFTER_MS = 200
#: Rough speaking rate for ``dry_run`` estimates of segments not cached yet (s per char):
#: about 545 codes (10.9 s) per 200 characters, as docs/promises.md §1 says.
SECONDS_PER_CHAR = 10.9 / 200

#: Segment fields that are passed to ``IndexTTS2.render`` (besides the resolved speaker).
_RENDER_FIELDS = ("emo_alpha", "emo_vector", "emotion", "seed", "use_random")
_PATH_FIELDS = ("spk_audio_prompt", "emo_audio_prompt", "voices_dir")


class SegmentsFileError(IndexTTSError, ValueError):
    """The JSONL file has bad lines; :attr:`problems` holds ``(line, field, message)``."""

    def __init__(self, path: Path, problems: list[tuple[int, str, str]]) -> None:
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
    """One segment, resolved: what ``render`` gets and where its audio goes."""

    line: int
    text: str
    speaker: Path
    options: dict[str, Any]
    key: str
    pause_before_ms: int
    pause_after_ms: int
    cached: bool = False
    seconds: float | None = None  # audio length when known (cached or rendered)
    start: float | None = None  # position in the chapter (s)
    end: float | None = None
    error: str | None = None

    @property
    def estimated_seconds(self) -> float:
        return self.seconds if self.seconds is not None else len(self.text) * SECONDS_PER_CHAR


@dataclass
class ChapterReport:
    """The outcome (or, with ``dry_run``, the plan) of a chapter render."""

    segments: list[SegmentPlan]
    output: Path | None = None
    manifest: Path | None = None
    sample_rate: int = SAMPLE_RATE
    duration: float = 0.0
    rendered: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def cache_hits(self) -> int:
        return sum(s.cached for s in self.segments)

    @property
    def estimated_seconds(self) -> float:
        pauses = sum(s.pause_before_ms + s.pause_after_ms for s in self.segments) / 1000
        return pauses + sum(s.estimated_seconds for s in self.segments)


# -- reading and planning -------------------------------------------------------------------


def read_segments(
    path: Path,
) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, str, str]]]:
    """Parse and schema-check every line: ``([(line, segment)], [(line, field, message)])``.

    Blank lines are skipped; line numbers count from 1.
    """
    segments: list[tuple[int, dict[str, Any]]] = []
    problems: list[tuple[int, str, str]] = []
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


def weights_identity(tts: Any) -> str:
    """A digest naming the weights a pipeline uses: the conversion manifest's content when
    there is one, else each file's name, size and modification time; plus ``bpe.model``'s
    content."""
    weights = tts.weights
    h = hashlib.sha256()
    manifest = Path(weights.weights_dir) / "manifest.json"
    if manifest.is_file():
        h.update(manifest.read_bytes())
    else:
        for name, path in sorted(weights.files().items()):
            if name != "bpe_model" and path.is_file():
                stat = path.stat()
                h.update(f"{name}:{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    bpe = Path(weights.bpe_model)
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


def plan_segment(
    line: int,
    values: dict[str, Any],
    base: Path,
    defaults: dict[str, Any],
    render_options: dict[str, Any],
    identity: str,
) -> SegmentPlan:
    """Resolve one segment's files and settings and compute its cache key.

    Args:
        values: the segment's fields; ``defaults``: the call's per-segment defaults (same
            names); ``render_options``: call-wide ``render`` keywords (``cfm_steps``,
            sampling, ``max_codes``...); ``identity``: :func:`weights_identity`.

    Raises:
        IndexTTSError: a voice or emotion file is missing, or a setting is invalid.
    """
    merged = _resolve_paths({**defaults, **values}, base)
    speaker = resolve_speaker(
        merged.get("spk_audio_prompt"), None, merged.get("voice"), merged.get("voices_dir")
    )
    mode = resolve_emotion_mode(
        merged.get("emo_vector"),
        merged.get("emo_text"),
        merged.get("use_emo_text"),
        merged.get("emo_audio_prompt"),
        merged.get("emo_alpha", 1.0),
    )
    check_emotion_scale(merged.get("emotion", 1.0))
    options = {**render_options, **{k: merged[k] for k in _RENDER_FIELDS if k in merged}}
    if mode.emo_audio_prompt is not None:
        options["emo_audio_prompt"] = mode.emo_audio_prompt
    key_fields = {
        "cache": CACHE_VERSION,
        "text": merged["text"],
        "speaker": file_digest(speaker),
        "emotion_audio": file_digest(mode.emo_audio_prompt) if mode.emo_audio_prompt else None,
        "emo_mode": mode.mode,
        "emo_vector": mode.emo_vector,
        "emo_alpha": mode.emo_alpha,
        "options": {k: v for k, v in options.items() if k != "emo_audio_prompt"},
        "weights": identity,
        "versions": _versions(),
    }
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True, default=str).encode()).hexdigest()
    return SegmentPlan(
        line=line,
        text=merged["text"],
        speaker=speaker,
        options=options,
        key=key,
        pause_before_ms=int(merged.get("pause_before_ms", 0)),
        pause_after_ms=int(merged.get("pause_after_ms", DEFAULT_PAUSE_AFTER_MS)),
    )


def _chapter_setting(
    name: str, segments: list[tuple[int, dict[str, Any]]], default: Any
) -> tuple[Any, list[tuple[int, str, str]]]:
    """A chapter-wide setting that segments may set, if they agree."""
    values = {(line, seg[name]) for line, seg in segments if name in seg}
    distinct = {v for _, v in values}
    if len(distinct) > 1:
        first = min(values)
        return default, [
            (
                line,
                name,
                f"differs from line {first[0]}'s {first[1]!r}: one chapter file has one value",
            )
            for line, v in sorted(values)
            if v != first[1]
        ]
    return (distinct.pop() if distinct else default), []


def plan_chapter(
    jsonl: Path,
    tts: Any,
    defaults: dict[str, Any],
    render_options: dict[str, Any],
    cache_dir: Path,
) -> tuple[list[SegmentPlan], int | None, str | None]:
    """Read, validate and plan every segment; raise one :class:`SegmentsFileError` for all
    problems. Returns the plans and the chapter's sample rate and format (None: default)."""
    segments, problems = read_segments(jsonl)
    rate, rate_problems = _chapter_setting("sample_rate", segments, defaults.get("sample_rate"))
    fmt, fmt_problems = _chapter_setting("audio_format", segments, defaults.get("audio_format"))
    problems += rate_problems + fmt_problems
    identity = weights_identity(tts)
    plans = []
    for line, values in segments:
        try:
            plan = plan_segment(line, values, jsonl.parent, defaults, render_options, identity)
        except IndexTTSError as e:
            problems.append((line, "", str(e).splitlines()[0]))
            continue
        audio = _cache_read(cache_dir, plan.key)
        if audio is not None:
            plan.cached, plan.seconds = True, audio.shape[0] / SAMPLE_RATE
        plans.append(plan)
    if problems:
        raise SegmentsFileError(jsonl, sorted(problems))
    return plans, rate, fmt


# -- the cache ------------------------------------------------------------------------------


def _cache_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / key[:2] / f"{key}.npz"


def _cache_read(cache_dir: Path, key: str) -> np.ndarray | None:
    """The cached audio, or None when missing or damaged (truncated, wrong checksum)."""
    path = _cache_path(cache_dir, key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            audio = data["audio"]
            digest = str(data["sha256"])
    except Exception:  # any unreadable entry is simply rendered again
        return None
    if audio.dtype != np.float32 or audio.ndim != 1:
        return None
    if hashlib.sha256(audio.tobytes()).hexdigest() != digest:
        return None
    return audio


def _cache_write(cache_dir: Path, key: str, audio: np.ndarray) -> None:
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    digest = hashlib.sha256(audio.tobytes()).hexdigest()
    with atomic_path(_cache_path(cache_dir, key)) as tmp, open(tmp, "wb") as f:
        np.savez(f, audio=audio, sha256=np.array(digest))
        f.flush()
        os.fsync(f.fileno())


# -- rendering ------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$INDEXTTS_MLX_CACHE_DIR``, else ``$XDG_CACHE_HOME/indextts-mlx/segments``."""
    env = os.environ.get("INDEXTTS_MLX_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "indextts-mlx" / "segments"


def render_segments_jsonl(
    jsonl: str | os.PathLike[str],
    out: str | os.PathLike[str],
    tts: Any = None,
    voices_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    cfm_steps: int = 25,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    continue_on_error: bool = False,
    dry_run: bool = False,
    on_segment: Callable[[int, int, SegmentPlan], None] | None = None,
    **settings: Any,
) -> ChapterReport:
    """Render every segment of a JSONL chapter file into one audio file.

    Args:
        jsonl: the segments file (one JSON object per line; see the module docstring).
        out: the chapter file; its extension (or ``audio_format``) picks the format.
        tts: an :class:`~indextts_mlx.IndexTTS2` (default: one on the default weights).
        voices_dir, seed, cfm_steps: defaults for every segment (segments may override
            ``voices_dir`` and ``seed``).
        cache_dir: where segment audio is cached (default :func:`default_cache_dir`).
        continue_on_error: render what can be rendered, then raise
            :class:`ChapterRenderError` listing the failures (the chapter is not written).
        dry_run: plan only: validate, look up the cache, estimate; nothing is rendered.
        on_segment: called as ``(index, count, plan)`` before each segment is rendered.
        **settings: more per-segment defaults (``voice``, ``spk_audio_prompt``,
            ``emo_audio_prompt``, ``emo_alpha``, ``emo_vector``, ``emotion``,
            ``use_random``, ``pause_before_ms``, ``pause_after_ms``, ``sample_rate``,
            ``audio_format``) and call-wide ``render`` options (``max_codes``,
            ``temperature``, ``top_k``, ``top_p``, ``repetition_penalty``, ``num_beams``,
            ``do_sample``, ``cfg_rate``).

    Returns:
        A :class:`ChapterReport` (segment times, cache keys, output paths).

    Raises:
        SegmentsFileError: bad lines (all reported at once, before any synthesis).
        ChapterRenderError: with ``continue_on_error``, some segments failed.
    """
    jsonl, out = Path(jsonl).expanduser(), Path(out).expanduser()
    if tts is None:
        from indextts_mlx.pipeline import IndexTTS2

        tts = IndexTTS2()
    segment_fields = set(_RENDER_FIELDS) | set(_PATH_FIELDS) | {
        "voice", "emo_vector", "emo_text", "use_emo_text", "pause_before_ms", "pause_after_ms",
        "sample_rate", "audio_format",
    }  # fmt: skip
    defaults = {k: v for k, v in settings.items() if k in segment_fields and v is not None}
    defaults["seed"] = seed
    if voices_dir is not None:
        defaults["voices_dir"] = voices_dir
    render_options = {k: v for k, v in settings.items() if k not in segment_fields}
    render_options["cfm_steps"] = cfm_steps
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    start = time.perf_counter()
    plans, rate, fmt = plan_chapter(jsonl, tts, defaults, render_options, cache)
    rate = int(rate or SAMPLE_RATE)
    fmt = audio_format_for(out, fmt)
    report = ChapterReport(plans, sample_rate=rate)
    if dry_run:
        return report

    audios: dict[str, np.ndarray] = {}
    for index, plan in enumerate(plans):
        audio = _cache_read(cache, plan.key)
        if audio is None:
            if on_segment is not None:
                on_segment(index, len(plans), plan)
            try:
                audio = tts.render(plan.text, plan.speaker, **plan.options).audio
            except IndexTTSError as e:
                if not continue_on_error:
                    raise IndexTTSError(f"line {plan.line}: {e}") from e
                plan.error = str(e).splitlines()[0]
                continue
            _cache_write(cache, plan.key, audio)
            report.rendered += 1
        plan.seconds = audio.shape[0] / SAMPLE_RATE
        audios[plan.key] = audio
    if any(p.error for p in plans):
        raise ChapterRenderError(report)

    chapter = _assemble(plans, audios)
    if rate != SAMPLE_RATE:
        chapter = _resample(chapter, rate)
    report.output = write_audio(out, chapter, rate, fmt)
    report.duration = chapter.shape[0] / rate
    report.manifest = _write_manifest(out, report)
    report.timings["total"] = time.perf_counter() - start
    return report


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


def _resample(audio: np.ndarray, rate: int) -> np.ndarray:
    import librosa

    return librosa.resample(audio, orig_sr=SAMPLE_RATE, target_sr=rate).astype(np.float32)


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
