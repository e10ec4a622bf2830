"""``indextts-tts`` through click's runner, with a stand-in pipeline (argument handling,
output files, errors); tests/test_cli_tiny.py runs the real pipeline on tiny weights."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

import indextts_cli.cli as cli
import indextts_cli.player as player
from indextts_mlx.errors import VoiceNotFoundError
from indextts_mlx.models import Precision
from indextts_mlx.result import SAMPLE_RATE
from indextts_weights import WeightsConfig


@dataclass
class _Result:
    audio: np.ndarray
    sample_rate: int = SAMPLE_RATE

    @property
    def duration(self) -> float:
        return self.audio.shape[0] / self.sample_rate


@dataclass
class FakeTTS:
    """Records each request (as the library's flat options) and returns 0.5 s of a tone."""

    weights: WeightsConfig
    calls: list = field(default_factory=list)
    precision: Precision = field(default_factory=Precision)

    def made(self, *args):
        """``cli._make_tts``'s stand-in: keeps the precision it was asked for."""
        self.precision = args[-1]
        return self

    def run(self, request, on_code=None):
        request = getattr(request, "request", request)  # a PreparedRequest or a request
        self.calls.append((request.text, request.speaker.spk_audio_prompt, request.to_options()))
        if on_code:
            for n in range(1, 4):
                on_code(0, n)
        t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
        return _Result((0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32))


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """A stand-in pipeline; the working folder holds the clips s.wav, v.wav and e.wav."""
    weights = tmp_path / "w"
    weights.mkdir()
    (weights / "bpe.model").write_bytes(b"x")
    for name in ("s", "v", "e"):
        sf.write(tmp_path / f"{name}.wav", np.full(SAMPLE_RATE, 0.1), SAMPLE_RATE)
    monkeypatch.chdir(tmp_path)
    tts = FakeTTS(WeightsConfig(weights_dir=weights))
    monkeypatch.setattr(cli, "_make_tts", tts.made)
    return tts


def run(*args, input=None):
    return CliRunner().invoke(cli.main, list(map(str, args)), input=input)


def test_help_documents_options_and_examples():
    out = run("--help")
    assert out.exit_code == 0
    for text in (
        "--spk-audio-prompt",
        "--emo-vector",
        "--segments-jsonl",
        "--list-voices",
        "--no-use-random",
        "--play",
        "Examples:",
        "indextts-tts --list-voices",
    ):
        assert text in out.output


def test_synthesizes_to_the_format_of_the_extension(fake, tmp_path):
    out = tmp_path / "a.flac"
    result = run("Hello.", "--spk-audio-prompt", "s.wav", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert sf.info(out).format == "FLAC" and sf.info(out).samplerate == SAMPLE_RATE
    ((text, speaker, kwargs),) = fake.calls
    assert text == "Hello." and speaker == Path("s.wav")
    assert kwargs["seed"] == 0 and kwargs["use_random"] is False and kwargs["do_sample"]
    assert kwargs["max_codes"] == 1500 and kwargs["cfm_steps"] == 25 and kwargs["num_beams"] == 3


def test_precision_options_reach_the_pipeline(fake, tmp_path):
    result = run("Hi", "--spk-audio-prompt", "s.wav", "--out", tmp_path / "x.wav", "-q",
                 "--dtype", "bfloat16", "--quantize-gpt", "4")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert fake.precision == Precision("bfloat16", 4)
    assert run("Hi", "--spk-audio-prompt", "s.wav", "--dtype", "float64").exit_code == 2


def test_every_option_reaches_the_pipeline(fake, tmp_path):
    sf.write(tmp_path / "Emma.wav", np.full(SAMPLE_RATE, 0.1), SAMPLE_RATE)
    result = run(
        "Hi",
        "--voice",
        "Emma",
        "--voices-dir",
        tmp_path,
        "--emo-vector",
        "0.8,0,0,0,0,0,0.2,0",
        "--emo-alpha",
        0.5,
        "--emotion",
        1.5,
        "--seed",
        42,
        "--use-random",
        "--max-codes",
        99,
        "--temperature",
        0.5,
        "--top-k",
        5,
        "--top-p",
        0.9,
        "--repetition-penalty",
        2,
        "--num-beams",
        1,
        "--greedy",
        "--cfm-steps",
        10,
        "--cfg-rate",
        0.5,
        "--emo-audio-prompt",
        "e.wav",
        "--out",
        tmp_path / "x.wav",
        "-q",
    )
    assert result.exit_code == 0, result.output
    ((_, _, k),) = fake.calls
    assert k["voice"] == "Emma" and k["voices_dir"] == tmp_path
    assert k["emo_vector"] == "0.8,0,0,0,0,0,0.2,0" and k["emo_alpha"] == 0.5
    assert k["emotion"] == 1.5 and k["seed"] == 42 and k["use_random"] is True
    assert (k["max_codes"], k["temperature"], k["top_k"], k["top_p"]) == (99, 0.5, 5, 0.9)
    assert (k["repetition_penalty"], k["num_beams"], k["do_sample"]) == (2, 1, False)
    assert (k["cfm_steps"], k["cfg_rate"], k["emo_audio_prompt"]) == (10, 0.5, Path("e.wav"))


def test_text_from_a_file_or_stdin(fake, tmp_path):
    (tmp_path / "t.txt").write_text("From a file.")
    assert (
        run(
            "--text-file", tmp_path / "t.txt", "--voice", "v.wav", "--out", tmp_path / "a.wav", "-q"
        ).exit_code
        == 0
    )
    assert (
        run("--voice", "v.wav", "--out", tmp_path / "b.wav", "-q", input="From stdin.").exit_code
        == 0
    )
    assert [c[0] for c in fake.calls] == ["From a file.", "From stdin."]


def test_sample_rate_resamples_the_output(fake, tmp_path):
    out = tmp_path / "a.wav"
    assert run("Hi", "--voice", "v.wav", "--out", out, "--sample-rate", 16000, "-q").exit_code == 0
    assert sf.info(out).samplerate == 16000 and sf.info(out).frames == 8000


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("Hi", "--voice", "v.wav"), "--out"),  # nothing to do with the audio
        (("--list-voices",), "--voices-dir"),
        (("Hi", "--voice", "v.wav", "--out", "x.wav", "--format", "aiff"), "aiff"),
    ],
)
def test_usage_errors_exit_2(fake, args, needle):
    result = run(*args)
    assert result.exit_code == 2 and needle in result.output


def test_pipeline_errors_are_one_line_exit_2_and_traceback_only_with_debug(fake, tmp_path):
    voices = tmp_path / "voices"
    voices.mkdir()
    for name in ("a", "b"):
        sf.write(voices / f"{name}.wav", np.full(SAMPLE_RATE, 0.1), SAMPLE_RATE)
    args = ("Hi", "--voice", "ghost", "--voices-dir", voices, "--out", tmp_path / "a.wav")
    result = run(*args)
    assert result.exit_code == 2
    (line,) = [x for x in result.output.splitlines() if x.startswith("error:")]
    assert "ghost" in line and "a, b" in line and "Traceback" not in result.output
    assert fake.calls == []  # found before any synthesis
    debug = run(*args, "--debug")
    assert isinstance(debug.exception, VoiceNotFoundError)


def test_list_voices(tmp_path):
    for name in ("b", "a"):
        sf.write(tmp_path / f"{name}.wav", np.zeros(100), SAMPLE_RATE)
    result = run("--list-voices", "--voices-dir", tmp_path)
    assert result.exit_code == 0 and result.output.split() == ["a", "b"]


def test_play_without_a_player_is_a_clear_error(fake, monkeypatch):
    monkeypatch.setattr(player.shutil, "which", lambda name: None)
    result = run("Hi", "--voice", "v.wav", "--play", "-q")
    assert result.exit_code == 2 and "no audio player found" in result.output


def test_play_uses_the_first_installed_player(fake, monkeypatch):
    played = []
    monkeypatch.setattr(player.shutil, "which", lambda n: f"/bin/{n}" if n == "aplay" else None)
    monkeypatch.setattr(player.subprocess, "run", lambda cmd, check: played.append(cmd) or None)
    assert run("Hi", "--voice", "v.wav", "--play", "-q").exit_code == 0
    (cmd,) = played
    assert cmd[:2] == ["/bin/aplay", "-q"] and cmd[2].endswith(".wav")


def test_chapter_render_and_dry_run(fake, tmp_path):
    sf.write(tmp_path / "Emma.wav", np.full(SAMPLE_RATE, 0.1), SAMPLE_RATE)
    jsonl = tmp_path / "ch.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t, "voice": "Emma"}) for t in ("A.", "B.")))
    common = (
        "--segments-jsonl",
        jsonl,
        "--voices-dir",
        tmp_path,
        "--cache-dir",
        tmp_path / "cache",
    )
    plan = run(*common, "--dry-run")
    assert plan.exit_code == 0 and "2 segments, 0 cached" in plan.output
    out = tmp_path / "ch.wav"
    result = run(*common, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert sf.info(out).frames == 2 * (SAMPLE_RATE // 2) + 2 * int(0.2 * SAMPLE_RATE)
    assert (tmp_path / "ch.wav.manifest.json").is_file()
    assert "2 segments, 2 cached" in run(*common, "--dry-run").output
    jsonl.write_text('{"text": "A.", "voice": "Emma"}\n{"txt": "B."}\n')
    bad = run(*common, "--out", out)
    assert bad.exit_code == 2 and "line 2" in bad.output and "txt" in bad.output
