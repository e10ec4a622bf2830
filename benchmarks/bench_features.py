#!/usr/bin/env python
"""Audio features on 30 s of speech: MLX port vs the reference implementation, one run.

Run in the parity venv: ``.venv-parity/bin/python benchmarks/bench_features.py``.
Prints the median wall time of each side and the ratio (reference / ours; > 1 = we are
faster).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from parity.workspace import use_this_checkout

use_this_checkout()

# isort: split
import mlx_audio_features as F  # noqa: E402  (first: it loads the fast BLAS before MLX)

# isort: split

from parity.reference import install_torchaudio_shim  # noqa: E402

install_torchaudio_shim()

import mlx.core as mx  # noqa: E402
import torch  # noqa: E402

from clips import clip  # noqa: E402
from parity.reference import reference_module, torchaudio_module  # noqa: E402


def median_time(fn, repeats: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        if isinstance(out, mx.array):
            mx.eval(out)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    from transformers import SeamlessM4TFeatureExtractor

    audio_16k, audio_22k = clip("speech_30s", 16000), clip("speech_30s", 22050)
    t16, t22 = torch.from_numpy(audio_16k)[None], torch.from_numpy(audio_22k)[None]
    kaldi = torchaudio_module("compliance.kaldi")
    resampler = torchaudio_module("transforms._transforms").Resample(22050, 16000)
    mel = reference_module("s2mel.modules.audio")
    extractor = SeamlessM4TFeatureExtractor(
        feature_size=80, num_mel_bins=80, padding_value=1.0, stride=2, sampling_rate=16000
    )
    cases = {
        "kaldi fbank (CAMPPlus input)": (
            lambda: kaldi.fbank(t16, num_mel_bins=80, dither=0, sample_frequency=16000),
            lambda: F.kaldi_fbank(audio_16k),
        ),
        "seamless fbank (W2V-BERT input)": (
            lambda: extractor(t16, sampling_rate=16000, return_tensors="pt"),
            lambda: F.seamless_fbank(audio_16k).input_features,
        ),
        "reference mel (S2Mel)": (
            lambda: mel.mel_spectrogram(t22, 1024, 80, 22050, 256, 1024, 0, None, center=False),
            lambda: F.mel_spectrogram(audio_22k),
        ),
        "resample 22.05k -> 16k": (
            lambda: resampler(t22),
            lambda: F.resample(audio_22k, orig_freq=22050, new_freq=16000),
        ),
    }
    print(
        f"30 s of speech; torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"mlx {mx.__version__}, BLAS: {F.blas_status().name}"
    )
    print(f"{'feature':<34} {'reference':>11} {'ours':>11} {'ref/ours':>9}")
    for name, (ref_fn, our_fn) in cases.items():
        ref_t, our_t = median_time(ref_fn), median_time(our_fn)
        print(f"{name:<34} {ref_t * 1e3:9.1f}ms {our_t * 1e3:9.1f}ms {ref_t / our_t:8.2f}x")


if __name__ == "__main__":
    main()
