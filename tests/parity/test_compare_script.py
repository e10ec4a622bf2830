"""tests/compare_pytorch_mlx.py runs end to end on a real WAV file and saves every stage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from clips import clip_wav

SCRIPT = Path(__file__).resolve().parents[1] / "compare_pytorch_mlx.py"
CODES = 20  # S_infer length: floor(20 · 1.72) = 34 generated frames
STEPS = 3  # CFM Euler steps (infer_v2: 25)


def load_stage(directory: Path, stage: str) -> tuple[np.ndarray, np.ndarray]:
    slug = stage.replace(" ", "_")
    return np.load(directory / f"pt_{slug}.npy"), np.load(directory / f"mlx_{slug}.npy")


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_compare_script_prints_the_table_and_saves_stages(tmp_path):
    voice = clip_wav("speech_hello", tmp_path)
    saved = tmp_path / "out"
    out = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--voice",
            str(voice),
            "--save-dir",
            str(saved),
            "--codes",
            str(CODES),
            "--steps",
            str(STEPS),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "name" in out.stdout and "max|Δ|" in out.stdout
    assert f"(1, {CODES}, 1024) on both sides" in out.stdout
    assert f"CFM {STEPS} steps" in out.stdout
    for stage in ("seamless fbank", "CAMPPlus fbank", "reference mel", "resample 16k"):
        assert stage in out.stdout
        ref, ours = load_stage(saved, stage)
        assert ref.shape == ours.shape and np.abs(ref - ours).max() < 2e-2

    prompt_frames = load_stage(saved, "reference mel")[0].shape[-1]
    frames = 34  # (torch.LongTensor([20]) * 1.72).long()
    expected = {
        "prompt regulator": (1, prompt_frames, 512),
        "inference regulator": (1, frames, 512),
        "CFM mel": (1, 80, frames),
        "BigVGAN waveform": (1, 256 * frames),
    }
    for stage, shape in expected.items():
        row = next(line for line in out.stdout.splitlines() if line.startswith(stage))
        assert "x".join(map(str, shape)) in row
        ref, ours = load_stage(saved, stage)
        assert ref.shape == ours.shape == shape
        assert np.abs(ref).max() > 1e-3  # a real signal, not silence
        if "regulator" in stage:
            assert np.abs(ref - ours).max() <= 1e-4, stage
        else:  # the same start noise on both sides
            assert cosine(ref, ours) >= 0.9999, stage


def test_compare_script_rejects_a_missing_voice(tmp_path):
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--voice", str(tmp_path / "nope.wav")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2 and "voice file not found" in out.stderr
