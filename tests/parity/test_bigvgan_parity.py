"""BigVGAN parity: our MLX vocoder vs the reference's, at the official config.

The checkpoint is the reference ``BigVGAN`` at ``nvidia/bigvgan_v2_22khz_80band_256x``'s
``config.json``, seeded, saved as the official ``bigvgan_generator.pt``
(``{'generator': state_dict}`` with weight norm, 783 keys); ``indextts-weights convert``
turns it into ``bigvgan.npz`` (torch-free), loaded strictly by ``load_bigvgan``. The
reference runs as ``infer_v2`` loads it (``load_state_dict`` then ``remove_weight_norm()``).
Inputs are seeded log-mel-like ``(1, 80, T)`` arrays (−4 + 2·N(0, 1)) for T = 862 frames
(10 s of 22.05 kHz audio) and T = 40 (0.46 s).

Tolerances: cos ≥ 0.9999 and max|Δ| ≤ 1e-3 on the waveform.
"""

from __future__ import annotations

from functools import cache

import mlx_indextts_models  # noqa: F401  (first: it loads the fast BLAS before MLX)

# isort: split

import mlx.core as mx
import numpy as np
import pytest
import torch

from indextts_weights.load import load_bigvgan
from parity.checkpoints import bigvgan_checkpoint, bigvgan_reference
from parity.converted import converted_weights
from parity.harness import assert_close, cached_arrays, compare

LENGTHS = (40, 862)
MAX_ABS = 1e-3
MIN_COS = 0.9999


def make_mel(frames: int) -> np.ndarray:
    rng = np.random.default_rng(2000 + frames)
    return (-4.0 + 2.0 * rng.standard_normal((1, 80, frames))).astype(np.float32)


def reference_wave(frames: int) -> np.ndarray:
    def compute() -> dict[str, np.ndarray]:
        model = bigvgan_reference(0)
        with torch.inference_mode():
            wave = model(torch.from_numpy(make_mel(frames)))
        return {"wave": wave[:, 0].numpy()}

    key = bigvgan_checkpoint(0).parent.name
    return cached_arrays("bigvgan", compute, checkpoint=key, input=f"normal_{frames}")["wave"]


@cache
def our_model():
    return load_bigvgan(converted_weights(("bigvgan",)) / "bigvgan.npz")


@pytest.mark.parametrize("frames", LENGTHS)
def test_waveform_matches_reference(frames, record):
    ref = reference_wave(frames)
    wave = our_model()(mx.array(make_mel(frames).transpose(0, 2, 1)))
    result = record(compare(f"BigVGAN waveform [T={frames}]", ref, np.array(wave)))
    assert result.shape == (1, 256 * frames)
    assert np.abs(ref).max() > 1e-3  # a real signal, not silence
    assert_close(result, max_abs=MAX_ABS, min_cos=MIN_COS)
