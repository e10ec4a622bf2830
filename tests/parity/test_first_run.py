"""A user's first command, end to end: no weights, a hub → download, convert, speak.

``indextts-tts "…" --spk-audio-prompt … --out …`` runs as installed (the torch-free uv
environment, in a subprocess) with an empty weights folder and ``HF_ENDPOINT`` pointing at
a :class:`~indextts_weights.testing_hub.LoopbackHub` in this process, which serves the
official files in the official repositories' layouts: the reference code's own
checkpoints of small models and the config files that describe them
(:mod:`parity.tiny_official`). The real ``huggingface_hub`` client fetches them, the
converter reads the config files and converts, and the pipeline writes audio. A second
command, with the hub gone, speaks from the converted weights alone, to the same samples.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from clips import clip_wav
from indextts_weights.config import WEIGHT_FILES
from indextts_weights.download import OFFICIAL_FILES
from indextts_weights.manifest import MANIFEST_NAME
from indextts_weights.npz import read_config
from indextts_weights.testing_hub import LoopbackHub
from mlx_indextts_models.config import from_dict
from mlx_indextts_models.gpt import UnifiedVoiceArgs
from mlx_indextts_models.s2mel.model import S2MelArgs
from mlx_indextts_models.w2vbert import W2VBertArgs
from parity import tiny_official
from parity.workspace import ROOT

TTS = ROOT / ".venv" / "bin" / "indextts-tts"
TEXT = "HELLO WORLD, THIS IS A GOOD DAY."  # words of the tiny bpe.model


@pytest.fixture(scope="module")
def files() -> dict[tuple[str, str], bytes]:
    if not TTS.exists():
        pytest.fail(f"{TTS} is missing: run uv sync first (scripts/test does)")
    served = tiny_official.official_files()
    assert set(served) == set(OFFICIAL_FILES)
    return served


def _env(tmp_path: Path, endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "INDEXTTS"))}
    env.pop("PYTHONPATH", None)  # the uv environment's own installed packages
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    return env


def _speak(tmp_path: Path, endpoint: str, voice: Path, weights: Path, out: Path):
    args = [TEXT, "--spk-audio-prompt", voice, "--out", out, "--weights-dir", weights,
            "--seed", "7", "--max-codes", "20", "--cfm-steps", "2"]  # fmt: skip
    return subprocess.run(
        [str(TTS), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
        env=_env(tmp_path, endpoint),
    )


def test_the_first_command_downloads_converts_and_speaks(files, tmp_path):
    import soundfile as sf

    voice = clip_wav("speech_sentence", tmp_path)
    weights, out = tmp_path / "weights", tmp_path / "hello.wav"
    with LoopbackHub(files) as hub:
        first = _speak(tmp_path, hub.endpoint, voice, weights, out)
        gets = [r.path for r in hub.requests if r.method == "GET" and "/api/" not in r.path]
    assert first.returncode == 0, first.stderr[-4000:]
    lines = first.stderr.splitlines()
    assert lines[0] == (
        f"first run: fetching the official IndexTTS-2 files and converting them into {weights}"
    )
    total = sum(len(data) for data in files.values())
    assert lines[1].startswith(f"{len(OFFICIAL_FILES)} files from the Hugging Face Hub, ")
    assert len(gets) == len(OFFICIAL_FILES)  # each file fetched once
    assert first.stderr.count("SHA-256 ok") == 10 and first.stderr.count("git blob id ok") == 3
    cache = tmp_path / "cache" / "indextts-mlx" / "official"
    assert sum(p.stat().st_size for p in cache.rglob("*") if p.is_file() and
               ".cache" not in p.parts) == total  # fmt: skip

    # every model at the configuration the served config files describe, recorded
    origins = dict(line.removeprefix("configuration of ").split(": ", 1) for line in lines
                   if line.startswith("configuration of "))  # fmt: skip
    by_name = {name: origin for names, origin in origins.items() for name in names.split(", ")}
    assert set(by_name) == set(WEIGHT_FILES) - {"semantic_stats", "speaker_matrix",
                                                "emotion_matrix"}  # fmt: skip
    for name in ("gpt", "s2mel", "semantic_codec"):
        assert by_name[name] == str(cache / tiny_official.INDEXTTS / "config.yaml")
    assert by_name["w2vbert"] == str(cache / tiny_official.W2V_REPO / "config.json")
    assert by_name["bigvgan"] == str(cache / tiny_official.BIGVGAN_REPO / "config.json")
    assert from_dict(UnifiedVoiceArgs, read_config(weights / "gpt.npz")) == tiny_official.GPT
    s2mel = from_dict(S2MelArgs, read_config(weights / WEIGHT_FILES["s2mel"]))
    assert s2mel == tiny_official.S2MEL
    w2vbert = from_dict(W2VBertArgs, read_config(weights / "w2vbert.npz"))
    assert (w2vbert.hidden_size, w2vbert.num_hidden_layers, w2vbert.intermediate_size) == (
        1024, 17, 8
    )  # fmt: skip
    present = {p.name for p in weights.iterdir()}
    assert present == {*WEIGHT_FILES.values(), "bpe.model", MANIFEST_NAME}

    audio, rate = sf.read(out, dtype="float32")
    assert rate == 22050 and audio.ndim == 1
    assert audio.size % 256 == 0 and audio.size >= 256 * 20  # whole mel frames of speech
    assert np.isfinite(audio).all() and np.abs(audio).max() > 1e-3

    # the hub is gone: the converted weights alone, the same samples for the same seed
    again_out = tmp_path / "again.wav"
    second = _speak(tmp_path, "http://127.0.0.1:9", voice, weights, again_out)
    assert second.returncode == 0, second.stderr[-4000:]
    assert "first run" not in second.stderr
    np.testing.assert_array_equal(sf.read(again_out, dtype="float32")[0], audio)
