"""Deterministic test audio: real speech from espeak-ng plus synthetic signals.

Every clip exists at 22,050 Hz (espeak-ng's native rate) and at 16 kHz (made by sox, an
implementation independent of ours and torchaudio's). Generated once and cached under
``<cache>/clips`` keyed by the clip's recipe and the espeak-ng/sox versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

SPEECH_SHORT = "Hello."
SPEECH_SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."
SPEECH_PARAGRAPH = (
    "It was a bright cold day in April, and the clocks were striking thirteen. "
    "Winston Smith, his chin nuzzled into his breast in an effort to escape the vile wind, "
    "slipped quickly through the glass doors of Victory Mansions, though not quickly "
    "enough to prevent a swirl of gritty dust from entering along with him."
)
SPEECH_LONG = " ".join([SPEECH_PARAGRAPH] * 3)


def cache_root() -> Path:
    """``$INDEXTTS_MLX_CACHE`` or ``~/.cache/indextts-mlx`` (outside the clone)."""
    env = os.environ.get("INDEXTTS_MLX_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base if env else base / "indextts-mlx"


@dataclass(frozen=True)
class ClipSpec:
    """How to make one clip: ``kind`` is speech/noise/tones/silence/chirp/mixed/clipped."""

    name: str
    kind: str
    seconds: float
    text: str = ""
    seed: int = 0


CLIPS: tuple[ClipSpec, ...] = (
    ClipSpec("speech_hello", "speech", 0.0, SPEECH_SHORT),
    ClipSpec("speech_sentence", "speech", 0.0, SPEECH_SENTENCE),
    ClipSpec("speech_15s", "speech", 15.0, SPEECH_LONG),
    ClipSpec("speech_30s", "speech", 30.0, SPEECH_LONG),
    ClipSpec("noise_half_second", "noise", 0.5, seed=1),
    ClipSpec("noise_2s", "noise", 2.0, seed=2),
    ClipSpec("tones_1500ms", "tones", 1.5),
    ClipSpec("silence_1s", "silence", 1.0),
    ClipSpec("chirp_4s", "chirp", 4.0),
    ClipSpec("speech_noisy_dc_clipped", "mixed", 5.0, SPEECH_SENTENCE, seed=3),
)
CLIP_NAMES = tuple(c.name for c in CLIPS)


def _tool_version(tool: str) -> str:
    if shutil.which(tool) is None:
        raise RuntimeError(f"{tool} is not installed (apt-get install espeak-ng sox)")
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip().splitlines()[0]


def _read_wav(path: Path) -> np.ndarray:
    import soundfile

    audio, _ = soundfile.read(path, dtype="float32", always_2d=True)
    return audio.mean(axis=1).astype(np.float32)


def _espeak(text: str, out: Path) -> None:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "165", "-w", str(out), text], check=True)


def _synth_22k(spec: ClipSpec, workdir: Path) -> np.ndarray:
    sr = 22050
    n = round(spec.seconds * sr)
    t = np.arange(n) / sr
    rng = np.random.default_rng(spec.seed)
    if spec.kind in ("speech", "mixed"):
        _espeak(spec.text, workdir / "speech.wav")
        speech = _read_wav(workdir / "speech.wav")
        if spec.seconds:
            reps = int(np.ceil(n / len(speech)))
            speech = np.tile(speech, reps)[:n]
        if spec.kind == "speech":
            return speech
        noisy = speech + 0.05 * rng.standard_normal(len(speech)) + 0.1
        return np.clip(2.0 * noisy, -1.0, 1.0).astype(np.float32)
    if spec.kind == "noise":
        return (0.3 * rng.standard_normal(n)).astype(np.float32)
    if spec.kind == "tones":
        tones = sum(
            a * np.sin(2 * np.pi * f * t) for f, a in ((220, 0.3), (1000, 0.2), (5500, 0.1))
        )
        return np.asarray(tones, dtype=np.float32)
    if spec.kind == "silence":
        return np.zeros(n, dtype=np.float32)
    if spec.kind == "chirp":
        f0, f1 = 100.0, 7000.0
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * spec.seconds))
        return (0.5 * np.sin(phase)).astype(np.float32)
    raise ValueError(f"unknown clip kind {spec.kind!r}")


def _sox_resample(audio: np.ndarray, workdir: Path, rate: int) -> np.ndarray:
    import soundfile

    src, dst = workdir / "in22k.wav", workdir / f"out{rate}.wav"
    soundfile.write(src, audio, 22050, subtype="FLOAT")
    subprocess.run(
        ["sox", "-V1", str(src), "-e", "floating-point", "-b", "32", "-r", str(rate), str(dst)],
        check=True,
    )
    return _read_wav(dst)


def _key(spec: ClipSpec) -> str:
    recipe = json.dumps([spec.__dict__, _tool_version("espeak-ng"), _tool_version("sox"), 2])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


@cache
def clip(name: str, sample_rate: int = 16000) -> np.ndarray:
    """The clip ``name`` as float32 mono at ``sample_rate`` (22050 or 16000 Hz)."""
    spec = next((c for c in CLIPS if c.name == name), None)
    if spec is None:
        raise KeyError(f"unknown clip {name!r}; known: {CLIP_NAMES}")
    if sample_rate not in (16000, 22050):
        raise ValueError("clips exist at 16000 and 22050 Hz")
    folder = cache_root() / "clips"
    path = folder / f"{name}-{_key(spec)}-{sample_rate}.npy"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            audio_22k = _synth_22k(spec, Path(tmp))
            for rate in (22050, 16000):
                audio = audio_22k if rate == 22050 else _sox_resample(audio_22k, Path(tmp), rate)
                target = folder / f"{name}-{_key(spec)}-{rate}.npy"
                np.save(tmp + "/partial.npy", audio.astype(np.float32))
                os.replace(tmp + "/partial.npy", target)
    return np.load(path, allow_pickle=False)


def clip_wav(name: str, directory: Path, sample_rate: int = 22050) -> Path:
    """Write the clip as a 16-bit WAV file (what a user would pass) and return its path."""
    import soundfile

    path = Path(directory) / f"{name}.wav"
    soundfile.write(path, clip(name, sample_rate), sample_rate, subtype="PCM_16")
    return path
