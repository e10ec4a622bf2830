"""docs/promises.md §4: synthesis from the NPZ files never imports torch (nor the reference's config
stack), even where torch is installed, as it is in the parity venv."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys, tempfile
sys.path.insert(0, {tests!r})
from parity.workspace import use_this_checkout
use_this_checkout()
from pathlib import Path
import numpy as np, soundfile as sf
from indextts_mlx import IndexTTS2
from indextts_mlx.testing import write_tiny_weights

d = Path(tempfile.mkdtemp())
t = np.arange(22050) / 22050
sf.write(d / "v.wav", (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 22050)
tts = IndexTTS2(write_tiny_weights(d / "w"), progress=False)
audio = tts.synthesize("Hello world.", d / "v.wav", max_codes=5, cfm_steps=1, num_beams=1)
print(json.dumps({{"samples": int(audio.size), "modules": sorted(sys.modules)}}))
"""


def test_synthesis_does_not_import_torch():
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", SCRIPT.format(tests=str(TESTS))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["samples"] == int(5 * 1.72) * 256
    roots = {m.split(".")[0] for m in result["modules"]}
    assert "mlx" in roots  # the check runs where it should
    for forbidden in ("torch", "torchaudio", "omegaconf", "transformers", "indextts"):
        assert forbidden not in roots, forbidden
