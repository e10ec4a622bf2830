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
    for name in ("w2vbert", "gpt", "s2mel", "bigvgan"):  # a bar per model as it loads
        assert done.stderr.count(f"loading {name} (") == 1, done.stderr
        assert done.stderr.count(f"loaded {name} (") == 1


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


def _render_chapter(setup, jsonl, out, cache, *extra, **kwargs):
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
            *extra,
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


def test_precision_flags_render_into_a_cache_of_their_own(setup):
    root = setup[0]
    jsonl = _chapter(root, ["Held in half precision."])
    out, cache = root / "half.wav", root / "cache-half"
    assert "1 rendered, 0 from cache" in _render_chapter(setup, jsonl, out, cache).stderr
    half = _render_chapter(setup, jsonl, out, cache, "--dtype", "float16")
    assert half.returncode == 0, half.stderr
    assert "1 rendered, 0 from cache" in half.stderr  # float32 audio is not reused
    again = _render_chapter(setup, jsonl, out, cache, "--dtype", "float16", "--quantize-gpt", "8")
    assert "1 rendered, 0 from cache" in again.stderr
    bad = _render_chapter(setup, jsonl, out, cache, "--quantize-gpt", "3")
    assert bad.returncode == 2 and "--quantize-gpt" in bad.stderr


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


# -- failing fast and plainly ---------------------------------------------------------------


def test_a_corrupt_weights_file_fails_only_its_lines_one_line_each(setup, tmp_path):
    _, weights, voices = setup
    private = shutil.copytree(weights, tmp_path / "weights")
    # a converted folder has a manifest: it names the weights in the cache keys, so a file
    # damaged later on disk does not invalidate what was rendered
    (private / "manifest.json").write_text('{"converted": "tiny"}')
    jsonl = _chapter(tmp_path, ["One fine day.", "The sun was out."])
    out, cache = tmp_path / "ch.wav", tmp_path / "cache"
    args = ["--segments-jsonl", jsonl, "--voices-dir", voices, "--weights-dir", private,
            "--cache-dir", cache, "--out", out, "--continue-on-error", *FAST]  # fmt: skip
    assert _run(args).returncode == 0  # both lines cached
    out.unlink()
    _chapter(tmp_path, ["One fine day.", "The sun was out.", "A new line.", "And another."])
    bigvgan = private / "bigvgan.npz"
    bigvgan.write_bytes(bigvgan.read_bytes()[:1000])
    done = _run(args)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert [e.split(":")[1].strip() for e in errors] == ["line 3", "line 4"]
    assert all("bigvgan.npz" in e for e in errors) and "Traceback" not in done.stderr
    assert "2 of 4 segments failed" in done.stderr and not out.exists()


def test_bad_output_format_fails_before_the_weights_are_needed(setup, tmp_path):
    _, _, voices = setup
    done = _run(["Hi.", "--voice", voices / "alice.wav", "--out", tmp_path / "x.xyz",
                 "--weights-dir", tmp_path / "none"])  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: cannot tell the audio format of") and "weights" not in line


@pytest.mark.parametrize(
    ("flag", "env", "why"),
    [
        ("--no-download", {}, "downloading is off"),
        (None, {"INDEXTTS_MLX_OFFLINE": "1"}, "offline: INDEXTTS_MLX_OFFLINE/HF_HUB_OFFLINE"),
        (None, {"HF_HUB_OFFLINE": "1"}, "offline: INDEXTTS_MLX_OFFLINE/HF_HUB_OFFLINE"),
    ],
)
def test_missing_weights_without_download_give_the_two_commands(setup, tmp_path, flag, env, why):
    _, _, voices = setup
    empty = tmp_path / "none"
    args = ["Hi.", "--voice", voices / "alice.wav", "--out", tmp_path / "a.wav",
            "--weights-dir", empty, *([flag] if flag else [])]  # fmt: skip
    done = _run(args, env={**os.environ, **env})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: no IndexTTS-2 weights in {empty} ({why}); "
        f"get them with: indextts-weights download --out {empty}; "
        f"or, from the official files you have: indextts-weights convert --src DIR --out {empty}"
    ]


def test_a_first_run_fetches_the_official_files_from_the_hub(setup, tmp_path):
    from indextts_weights.download import CONFIG_FILES, OFFICIAL_FILES
    from indextts_weights.testing_hub import LoopbackHub

    _, _, voices = setup
    empty, out = tmp_path / "weights", tmp_path / "a.wav"
    rng = np.random.default_rng(5)  # random bytes: fetched for real, then refused by convert
    files = {key: rng.integers(0, 256, 4096, dtype=np.uint8).tobytes() for key in OFFICIAL_FILES}
    hf = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    with LoopbackHub(files) as hub:
        env = {**hf, "HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf"),
               "HF_HUB_DISABLE_TELEMETRY": "1",
               "XDG_CACHE_HOME": str(tmp_path / "cache")}  # fmt: skip
        done = _run(["Hi.", "--voice", voices / "alice.wav", "--out", out,
                     "--weights-dir", empty], env=env)  # fmt: skip
        fetched = [r for r in hub.requests if r.method == "GET" and "/api/" not in r.path]
    lines = done.stderr.splitlines()
    assert lines[0] == (
        f"first run: fetching the official IndexTTS-2 files and converting them into {empty}"
    )
    assert lines[1].startswith(f"{len(OFFICIAL_FILES)} files from the Hugging Face Hub, ")
    assert len(fetched) == len(OFFICIAL_FILES)  # every file came from the loopback hub
    # the checkpoints from its CDN (LFS), the config files from the hub (regular files)
    assert sum(r.server == "hub" for r in fetched) == len(CONFIG_FILES) == 3
    cached = tmp_path / "cache" / "indextts-mlx" / "official"
    assert all((cached / repo / name).read_bytes() == files[repo, name] for repo, name in files)
    assert done.returncode == 2 and lines[-1].startswith("error: first-run download: ")
    assert not out.exists() and not list(empty.glob("*.npz"))  # nothing half-written


def test_a_chapter_is_checked_before_the_weights(setup, tmp_path):
    _, _, voices = setup
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"text": "Fine.", "voice": "alice"}\n{"text": "x", "voice": "carol"}\n')
    args = ["--segments-jsonl", jsonl, "--voices-dir", voices, "--weights-dir", tmp_path / "no"]
    done = _run([*args, "--out", tmp_path / "ch.wav"])
    assert done.returncode == 2 and "line 2" in done.stderr and "carol" in done.stderr
    assert "weights" not in done.stderr
    jsonl.write_text('{"text": "Fine.", "voice": "alice"}\n')
    plan = _run([*args, "--dry-run", "--cache-dir", tmp_path / "cache"])  # no weights needed
    assert plan.returncode == 0 and "1 segments, 0 cached" in plan.stdout


def test_emo_alpha_outside_its_documented_range_is_refused(setup, tmp_path):
    _, weights, voices = setup
    help_text = _run(["--help"]).stdout
    assert "--emo-alpha FLOAT RANGE" in help_text and "0.0<=x<=1.0" in help_text
    done = _run(["Hi.", "--voice", voices / "alice.wav", "--emo-audio-prompt",
                 voices / "bob.wav", "--emo-alpha", "-1", "--out", tmp_path / "a.wav",
                 "--weights-dir", weights])  # fmt: skip
    assert done.returncode == 2 and "-1" in done.stderr and "0.0<=x<=1.0" in done.stderr
    assert not (tmp_path / "a.wav").exists()


def test_a_warning_is_one_plain_line_once(setup, tmp_path):
    _, weights, voices = setup
    done = _run(["Hello world.", "--voice", voices / "alice.wav", "--weights-dir", weights,
                 "--out", tmp_path / "a.wav", "--quiet", *FAST])  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "warning: segment 1: no stop code within max_codes=20 (3 text tokens); the audio may "
        "be cut off. Raise max_codes or shorten the segment."
    ]


def test_a_first_run_replaces_nothing_in_a_partial_folder(setup, tmp_path):
    _, weights, voices = setup
    partial = tmp_path / "weights"
    partial.mkdir()
    shutil.copy(weights / "gpt.npz", partial / "gpt.npz")
    done = _run(["Hi.", "--voice", voices / "alice.wav", "--out", tmp_path / "a.wav",
                 "--weights-dir", partial])  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"error: weights in {partial} are incomplete: missing ")
    assert line.endswith(f"it holds gpt.npz; replace them all with: "
                         f"indextts-weights download --out {partial} --force")  # fmt: skip
    assert sorted(p.name for p in partial.iterdir()) == ["gpt.npz"]
