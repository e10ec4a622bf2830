"""``indextts-tts`` as users run it: the installed entry point in real subprocesses, on tiny
random weights (``indextts_mlx.testing.write_tiny_weights``), so the whole pipeline runs.

Covers a single synthesis, a chapter render with its cache (unchanged: nothing rendered;
one line changed: one segment rendered) and a chapter render killed mid-way and resumed,
which must give the bytes of an uninterrupted render.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from indextts_mlx.result import SAMPLE_RATE
from indextts_mlx.testing import write_tiny_weights

FAST = ("--max-codes", "20", "--cfm-steps", "2", "--num-beams", "1")


def _cli() -> list[str]:
    exe = shutil.which("indextts-tts", path=str(Path(sys.executable).parent))
    assert exe, "the indextts-tts entry point is not installed in this environment"
    return [exe]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-cli")
    weights = write_tiny_weights(root / "weights").weights_dir
    voices = root / "voices"
    voices.mkdir()
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    rng = np.random.default_rng(0)
    for name, f0 in (("alice", 210.0), ("bob", 120.0)):
        wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
        wave = 0.2 * wave * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(
            t.size
        )
        sf.write(voices / f"{name}.wav", wave.astype(np.float32), SAMPLE_RATE)
    return root, Path(weights), voices


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*_cli(), *map(str, args)], capture_output=True, text=True, **kwargs)


def test_single_synthesis_writes_the_file(setup):
    root, weights, voices = setup
    out = root / "hello.flac"
    done = _run(
        [
            "Hello world.",
            "--voices-dir",
            voices,
            "--voice",
            "alice",
            "--weights-dir",
            weights,
            "--out",
            out,
            *FAST,
        ]
    )
    assert done.returncode == 0, done.stderr
    info = sf.info(out)
    assert info.format == "FLAC" and info.samplerate == SAMPLE_RATE
    assert info.frames == int(20 * 1.72) * 256  # 20 codes (no stop) → 34 frames → 8704 samples
    assert "wrote" in done.stderr and "Traceback" not in done.stderr


def test_bad_voice_is_one_line_exit_2(setup):
    root, weights, voices = setup
    done = _run(
        [
            "Hi.",
            "--voices-dir",
            voices,
            "--voice",
            "carol",
            "--weights-dir",
            weights,
            "--out",
            root / "x.wav",
            *FAST,
        ]
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error:") and "carol" in line and "alice" in line


def _chapter(root: Path, lines: list[str]) -> Path:
    jsonl = root / "chapter.jsonl"
    voices = ["alice", "bob"]
    jsonl.write_text(
        "".join(
            json.dumps({"text": text, "voice": voices[i % 2]}) + "\n"
            for i, text in enumerate(lines)
        )
    )
    return jsonl


def _render_chapter(setup, jsonl, out, cache, **kwargs):
    _, weights, voices = setup
    return _run(
        [
            "--segments-jsonl",
            jsonl,
            "--voices-dir",
            voices,
            "--weights-dir",
            weights,
            "--cache-dir",
            cache,
            "--out",
            out,
            *FAST,
        ],
        **kwargs,
    )


def test_chapter_cache_rerenders_only_what_changed(setup):
    root = setup[0]
    jsonl = _chapter(root, ["One fine day.", "The sun was out.", "They went home."])
    out, cache = root / "ch.wav", root / "cache-a"
    first = _render_chapter(setup, jsonl, out, cache)
    assert first.returncode == 0, first.stderr
    assert "3 rendered, 0 from cache" in first.stderr
    audio = out.read_bytes()
    again = _render_chapter(setup, jsonl, out, cache)
    assert "0 rendered, 3 from cache" in again.stderr and out.read_bytes() == audio
    _chapter(root, ["One fine day.", "The rain came.", "They went home."])
    changed = _render_chapter(setup, jsonl, out, cache)
    assert "1 rendered, 2 from cache" in changed.stderr
    manifest = json.loads((root / "ch.wav.manifest.json").read_text())
    assert [s["text"] for s in manifest["segments"]][1] == "The rain came."


def test_killed_chapter_resumes_to_identical_bytes(setup):
    root = setup[0]
    jsonl = _chapter(root, [f"Line number {n}." for n in ("one", "two", "three", "four", "five")])
    whole = root / "whole.wav"
    assert _render_chapter(setup, jsonl, whole, root / "cache-whole").returncode == 0
    out, cache = root / "resumed.wav", root / "cache-resume"
    proc = subprocess.Popen(
        [
            *_cli(),
            "--segments-jsonl",
            str(jsonl),
            "--voices-dir",
            str(setup[2]),
            "--weights-dir",
            str(setup[1]),
            "--cache-dir",
            str(cache),
            "--out",
            str(out),
            *FAST,
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    started = 0
    for line in proc.stderr:  # "  line N: ..." is printed as each segment starts
        if line.startswith("  line "):
            started += 1
            if started == 3:  # two segments are cached by now
                os.kill(proc.pid, signal.SIGKILL)
                break
    proc.wait()
    assert not out.exists()
    cached = list(cache.glob("*/*.npz"))
    assert 2 <= len(cached) < 5
    resumed = _render_chapter(setup, jsonl, out, cache)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{5 - len(cached)} rendered, {len(cached)} from cache" in resumed.stderr
    assert out.read_bytes() == whole.read_bytes()
