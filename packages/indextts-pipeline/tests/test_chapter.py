"""The JSONL chapter renderer: validation, cache keys, resume, output and manifest.

A stand-in pipeline makes audio from a hash of everything it is given (text, the speaker
file's bytes, options), so the renderer's own behaviour is what these tests check, fast.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from indextts_mlx.chapter import (
    ChapterRenderError,
    SegmentsFileError,
    render_segments_jsonl,
)
from indextts_mlx.errors import IndexTTSError
from indextts_mlx.models import Precision
from indextts_mlx.result import SAMPLE_RATE
from indextts_weights import WeightsConfig


@dataclass
class _Result:
    audio: np.ndarray


class FakeTTS:
    """``run`` → 0.1-0.3 s of noise seeded by its request; counts calls."""

    def __init__(self, weights_dir: Path, fail_on: str | None = None, delay: float = 0.0):
        (weights_dir / "bpe.model").write_bytes(b"bpe")
        self.weights = WeightsConfig(weights_dir=weights_dir)
        self.precision = Precision()
        self.calls: list[str] = []
        self.fail_on = fail_on
        self.delay = delay

    def run(self, request):
        text, speaker = request.text, request.speaker.spk_audio_prompt
        if self.fail_on is not None and self.fail_on in text:
            raise IndexTTSError(f"cannot say {text!r}")
        time.sleep(self.delay)
        self.calls.append(text)
        options = request.to_options()
        blob = json.dumps(
            [text, Path(speaker).read_bytes().hex(), sorted(options.items())], default=str
        )
        seed = int(hashlib.sha256(blob.encode()).hexdigest()[:8], 16)
        rng = np.random.default_rng(seed)
        n = int(SAMPLE_RATE * (0.1 + 0.2 * rng.random()))
        return _Result((0.1 * rng.standard_normal(n)).astype(np.float32))


@pytest.fixture
def chapter(tmp_path):
    voices = tmp_path / "voices"
    voices.mkdir()
    for name, freq in (("Emma", 220.0), ("Bob", 110.0)):
        t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
        sf.write(voices / f"{name}.wav", 0.3 * np.sin(2 * np.pi * freq * t), SAMPLE_RATE)
    lines = [
        {"text": "Chapter one.", "voice": "Emma", "pause_after_ms": 500},
        {"text": "It was a dark night.", "voice": "Bob"},
        {"text": "The end.", "voice": "Emma", "pause_before_ms": 300, "seed": 7},
    ]
    jsonl = tmp_path / "ch1.jsonl"
    _write_lines(jsonl, lines)
    weights = tmp_path / "weights"
    weights.mkdir()
    return jsonl, voices, weights, tmp_path / "cache", tmp_path / "out" / "ch1.wav"


def _write_lines(path: Path, lines: list) -> None:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")


def test_renders_the_chapter_with_pauses_and_a_manifest(chapter):
    jsonl, voices, weights, cache, out = chapter
    tts = FakeTTS(weights)
    report = render_segments_jsonl(jsonl, out, tts=tts, voices_dir=voices, cache_dir=cache)
    assert tts.calls == ["Chapter one.", "It was a dark night.", "The end."]
    audio, rate = sf.read(out, dtype="float32")
    assert rate == SAMPLE_RATE
    seconds = [s.seconds for s in report.segments]
    # pauses: 500 after #1, 200 (default) after #2, 300 before and 200 after #3
    expected = sum(round(s * SAMPLE_RATE) for s in seconds) + int(SAMPLE_RATE * 1.2)
    assert audio.shape == (expected,)
    manifest = json.loads(out.with_name("ch1.wav.manifest.json").read_text())
    starts = [s["start"] for s in manifest["segments"]]
    assert starts[0] == 0.0
    assert starts[1] == pytest.approx(seconds[0] + 0.5, abs=1e-4)
    assert starts[2] == pytest.approx(starts[1] + seconds[1] + 0.2 + 0.3, abs=1e-4)
    assert [s["text"] for s in manifest["segments"]][2] == "The end."
    assert {s["key"] for s in manifest["segments"]} == {s.key for s in report.segments}
    # the silence really sits where the manifest says
    gap = audio[int(manifest["segments"][0]["end"] * SAMPLE_RATE) + 2 :][
        : int(0.5 * SAMPLE_RATE) - 4
    ]
    assert not gap.any()


def test_rerun_is_free_and_byte_identical(chapter):
    jsonl, voices, weights, cache, out = chapter
    render_segments_jsonl(jsonl, out, tts=FakeTTS(weights), voices_dir=voices, cache_dir=cache)
    first = out.read_bytes()
    again = FakeTTS(weights)
    report = render_segments_jsonl(jsonl, out, tts=again, voices_dir=voices, cache_dir=cache)
    assert again.calls == [] and report.cache_hits == 3 and report.rendered == 0
    assert out.read_bytes() == first


def test_changing_one_segment_rerenders_only_it(chapter):
    jsonl, voices, weights, cache, out = chapter
    render_segments_jsonl(jsonl, out, tts=FakeTTS(weights), voices_dir=voices, cache_dir=cache)
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    lines[1]["text"] = "It was a stormy night."
    _write_lines(jsonl, lines)
    tts = FakeTTS(weights)
    render_segments_jsonl(jsonl, out, tts=tts, voices_dir=voices, cache_dir=cache)
    assert tts.calls == ["It was a stormy night."]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda voices: (voices / "Bob.wav").write_bytes(b"RIFF-other-bytes"), "voice content"),
        (None, "seed"),
        (None, "weights"),
    ],
)
def test_cache_key_covers_voice_content_seed_and_weights(chapter, change, field):
    jsonl, voices, weights, cache, out = chapter
    render_segments_jsonl(jsonl, out, tts=FakeTTS(weights), voices_dir=voices, cache_dir=cache)
    tts = FakeTTS(weights)
    kwargs = {}
    if field == "voice content":
        sf.write(voices / "Bob.wav", np.zeros(SAMPLE_RATE) + 0.01, SAMPLE_RATE)
    elif field == "seed":
        kwargs["seed"] = 1  # lines 1 and 2 use the global seed; line 3 sets its own
    else:
        (weights / "manifest.json").write_text('{"converted": "again"}')
    render_segments_jsonl(jsonl, out, tts=tts, voices_dir=voices, cache_dir=cache, **kwargs)
    expected = {
        "voice content": ["It was a dark night."],
        "seed": ["Chapter one.", "It was a dark night."],
        "weights": ["Chapter one.", "It was a dark night.", "The end."],
    }[field]
    assert tts.calls == expected


def test_every_bad_line_is_reported_before_anything_renders(chapter):
    jsonl, voices, weights, cache, out = chapter
    _write_lines(
        jsonl,
        [
            {"text": "fine", "voice": "Emma"},
            "{not json",
            {"voice": "Emma"},
            {"text": "   "},
            {"text": "x", "emo_vector": [1, 0, 0]},
            {"text": "x", "seed": -3, "pause_after_ms": "long"},
            {"text": "x", "colour": "blue"},
            {"text": "x", "voice": "../weights/secret"},
            {"text": "x", "voice": "Nobody"},
            {"text": "x", "emo_text": "happy"},
            "",
            {"text": "x", "emo_alpha": 3},
        ],
    )
    tts = FakeTTS(weights)
    with pytest.raises(SegmentsFileError) as err:
        render_segments_jsonl(jsonl, out, tts=tts, voices_dir=voices, cache_dir=cache)
    assert tts.calls == [] and not out.exists()
    found = {(line, field) for line, field, _ in err.value.problems}
    for expected in [
        (2, ""),
        (3, "text"),
        (4, "text"),
        (5, "emo_vector"),
        (6, "seed"),
        (6, "pause_after_ms"),
        (7, "colour"),
        (8, ""),
        (9, ""),
        (10, ""),
        (12, "emo_alpha"),
    ]:
        assert expected in found, (expected, err.value.problems)
    assert 1 not in {line for line, _ in found} and 11 not in {line for line, _ in found}
    message = str(err.value)
    assert "line 8" in message and "line 9" in message and "Emma" in message  # lists voices


def test_damaged_cache_entry_is_rendered_again(chapter):
    jsonl, voices, weights, cache, out = chapter
    report = render_segments_jsonl(
        jsonl, out, tts=FakeTTS(weights), voices_dir=voices, cache_dir=cache
    )
    first = out.read_bytes()
    (entry,) = cache.glob(f"*/{report.segments[1].key}.npz")
    entry.write_bytes(entry.read_bytes()[:100])
    tts = FakeTTS(weights)
    render_segments_jsonl(jsonl, out, tts=tts, voices_dir=voices, cache_dir=cache)
    assert tts.calls == ["It was a dark night."]
    assert out.read_bytes() == first


def test_continue_on_error_renders_the_rest_and_reports(chapter):
    jsonl, voices, weights, cache, out = chapter
    tts = FakeTTS(weights, fail_on="dark")
    with pytest.raises(ChapterRenderError, match="line 2"):
        render_segments_jsonl(
            jsonl, out, tts=tts, voices_dir=voices, cache_dir=cache, continue_on_error=True
        )
    assert tts.calls == ["Chapter one.", "The end."] and not out.exists()
    with pytest.raises(IndexTTSError, match="line 2"):  # without: stops at the failure
        render_segments_jsonl(
            jsonl, out, tts=FakeTTS(weights, fail_on="dark"), voices_dir=voices, cache_dir=cache
        )


def test_dry_run_plans_without_rendering(chapter):
    jsonl, voices, weights, cache, out = chapter
    tts = FakeTTS(weights)
    plan = render_segments_jsonl(
        jsonl, out, tts=tts, voices_dir=voices, cache_dir=cache, dry_run=True
    )
    assert tts.calls == [] and plan.cache_hits == 0 and not out.exists()
    assert plan.estimated_seconds > 1.2  # pauses alone are 1.2 s
    render_segments_jsonl(jsonl, out, tts=tts, voices_dir=voices, cache_dir=cache)
    plan = render_segments_jsonl(
        jsonl, out, tts=tts, voices_dir=voices, cache_dir=cache, dry_run=True
    )
    assert plan.cache_hits == 3
    assert plan.estimated_seconds == pytest.approx(sf.info(out).duration, abs=1e-3)


def test_sample_rate_and_format_apply_to_the_chapter(chapter):
    jsonl, voices, weights, cache, out = chapter
    flac = out.with_suffix(".flac")
    render_segments_jsonl(
        jsonl,
        flac,
        tts=FakeTTS(weights),
        voices_dir=voices,
        cache_dir=cache,
        sample_rate=16000,
    )
    info = sf.info(flac)
    assert info.format == "FLAC" and info.samplerate == 16000
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    lines[0]["sample_rate"], lines[2]["sample_rate"] = 16000, 24000
    _write_lines(jsonl, lines)
    with pytest.raises(SegmentsFileError, match="sample_rate"):
        render_segments_jsonl(jsonl, out, tts=FakeTTS(weights), voices_dir=voices, cache_dir=cache)


RESUME = r"""
import sys, time
sys.path.insert(0, {here!r})
from test_chapter import FakeTTS
from pathlib import Path
from indextts_mlx.chapter import render_segments_jsonl

tts = FakeTTS(Path({weights!r}), delay={delay})
render_segments_jsonl({jsonl!r}, {out!r}, tts=tts, voices_dir={voices!r}, cache_dir={cache!r},
                      on_segment=lambda i, n, p: print("segment", i, flush=True))
print("calls", len(tts.calls), flush=True)
"""


def _script(chapter, out: Path, cache: Path, delay: float) -> str:
    jsonl, voices, weights, _, _ = chapter
    return RESUME.format(
        here=str(Path(__file__).parent),
        weights=str(weights),
        delay=delay,
        jsonl=str(jsonl),
        out=str(out),
        voices=str(voices),
        cache=str(cache),
    )


def test_killed_render_resumes_to_identical_bytes(chapter, tmp_path):
    lines = [{"text": f"Sentence number {i}.", "voice": "Emma"} for i in range(6)]
    _write_lines(chapter[0], lines)
    whole = tmp_path / "whole.wav"
    subprocess.run(
        [sys.executable, "-c", _script(chapter, whole, tmp_path / "c1", 0.0)],
        check=True,
        capture_output=True,
    )
    out, cache = tmp_path / "resumed.wav", tmp_path / "c2"
    proc = subprocess.Popen(
        [sys.executable, "-c", _script(chapter, out, cache, 0.5)], stdout=subprocess.PIPE, text=True
    )
    seen = 0
    while seen < 4:  # segments 0-2 are cached by the time segment 3 starts
        if proc.stdout.readline().startswith("segment"):
            seen += 1
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    done = subprocess.run(
        [sys.executable, "-c", _script(chapter, out, cache, 0.0)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "calls 3" in done.stdout  # only the three missing segments
    assert out.read_bytes() == whole.read_bytes()
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


SAMPLES = [
    {"text": "ok"},
    {"text": "ok", "voice": "Emma", "seed": 3, "use_emo_text": None, "emo_alpha": 0.5},
    {"text": "ok", "emo_vector": [0.1] * 8, "pause_before_ms": 0, "audio_format": "flac"},
    {},
    {"text": ""},
    {"text": " "},
    {"text": 5},
    {"text": "x", "seed": 1.5},
    {"text": "x", "seed": True},
    {"text": "x", "emo_vector": [0.1] * 7},
    {"text": "x", "emo_vector": [0.1] * 7 + [-1]},
    {"text": "x", "emo_alpha": 1.01},
    {"text": "x", "audio_format": "aiff"},
    {"text": "x", "sample_rate": 100},
    {"text": "x", "other": 1},
    ["text"],
]


@pytest.mark.parametrize("sample", SAMPLES, ids=range(len(SAMPLES)))
def test_validator_agrees_with_jsonschema(sample):
    jsonschema = pytest.importorskip("jsonschema")
    from indextts_mlx.segment_schema import segment_errors, segment_schema

    jsonschema.Draft202012Validator.check_schema(segment_schema())
    reference = list(jsonschema.Draft202012Validator(segment_schema()).iter_errors(sample))
    assert bool(segment_errors(sample)) == bool(reference)


def test_a_lines_own_voice_replaces_the_calls_speaker(chapter):
    jsonl, voices, weights, cache, out = chapter
    _write_lines(jsonl, [{"text": "Narrated."}, {"text": "Spoken.", "voice": "Bob"}])
    tts = FakeTTS(weights)
    report = render_segments_jsonl(
        jsonl, out, tts=tts, voices_dir=voices, cache_dir=cache,
        spk_audio_prompt=voices / "Emma.wav",
    )  # fmt: skip
    assert [s.speaker.name for s in report.segments] == ["Emma.wav", "Bob.wav"]


def test_lines_are_checked_before_a_default_pipeline_is_built(chapter, monkeypatch):
    jsonl, voices, weights, cache, out = chapter
    _write_lines(jsonl, [{"text": "x", "voice": "Nobody"}])
    monkeypatch.setenv("INDEXTTS_MLX_WEIGHTS_DIR", str(weights / "absent"))
    with pytest.raises(SegmentsFileError, match="Nobody"):  # not the missing weights
        render_segments_jsonl(jsonl, out, voices_dir=voices, cache_dir=cache)
