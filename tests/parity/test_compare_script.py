"""tests/compare_pytorch_mlx.py runs end to end on a real WAV file and saves every stage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from clips import clip_wav

SCRIPT = Path(__file__).resolve().parents[1] / "compare_pytorch_mlx.py"


def test_compare_script_prints_the_table_and_saves_stages(tmp_path):
    voice = clip_wav("speech_sentence", tmp_path)
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--voice", str(voice), "--save-dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "name" in out.stdout and "max|Δ|" in out.stdout
    for stage in ("seamless fbank", "CAMPPlus fbank", "reference mel", "resample 16k"):
        assert stage in out.stdout
        slug = stage.replace(" ", "_")
        ref = np.load(tmp_path / "out" / f"pt_{slug}.npy")
        ours = np.load(tmp_path / "out" / f"mlx_{slug}.npy")
        assert ref.shape == ours.shape and np.abs(ref - ours).max() < 2e-2


def test_compare_script_rejects_a_missing_voice(tmp_path):
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--voice", str(tmp_path / "nope.wav")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2 and "voice file not found" in out.stderr
