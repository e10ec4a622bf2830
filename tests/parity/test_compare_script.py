"""tests/compare_pytorch_mlx.py runs both pipelines on a real WAV file, prints every row of
docs/promises.md §5 and saves every stage (same voice, text and code limit as
test_pipeline_parity, so the reference's run is shared through the cache)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from parity.pipeline_reference import voice_wav
from parity.test_pipeline_parity import MAX_CODES, TEXT

SCRIPT = Path(__file__).resolve().parents[1] / "compare_pytorch_mlx.py"
SPEC_ROWS = (
    "seamless fbank",
    "W2V-BERT hidden[17]",
    "normalized semantic features",
    "CAMPPlus speaker style",
    "semantic_codec S_ref",
    "prompt regulator",
    "GPT latent",
    "GPT latent proj",
    "S_infer",
    "inference regulator",
    "CFM mel",
    "BigVGAN waveform",
)


def load_stage(directory: Path, stage: str) -> tuple[np.ndarray, np.ndarray]:
    slug = stage.replace(" ", "_")
    return np.load(directory / f"pt_{slug}.npy"), np.load(directory / f"mlx_{slug}.npy")


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_compare_script_prints_the_table_and_saves_stages(tmp_path):
    saved = tmp_path / "out"
    out = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--voice",
            str(voice_wav("speech_sentence")),
            "--text",
            TEXT,
            "--max-codes",
            str(MAX_CODES),
            "--save-dir",
            str(saved),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "max|Δ|" in out.stdout and f"at most {MAX_CODES} codes" in out.stdout
    rows = {line.split("|")[0].strip(): line for line in out.stdout.splitlines() if "|" in line}
    for stage in SPEC_ROWS:
        assert stage in rows, stage
        ref, ours = load_stage(saved, stage)
        assert ref.shape == ours.shape and np.abs(ref).max() > 1e-3  # a real signal
        assert cosine(ref, ours) >= 0.999, stage
    ref_codes, our_codes = load_stage(saved, "codes")
    assert ref_codes.shape == (1, MAX_CODES)
    np.testing.assert_array_equal(ref_codes, our_codes)
    frames = int(np.float32(MAX_CODES) * np.float32(1.72))  # 51 generated mel frames
    assert load_stage(saved, "CFM mel")[1].shape == (1, 80, frames)
    assert load_stage(saved, "BigVGAN waveform")[1].shape == (1, 256 * frames)


def test_compare_script_rejects_a_missing_voice(tmp_path):
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--voice", str(tmp_path / "nope.wav")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2 and "voice file not found" in out.stderr
