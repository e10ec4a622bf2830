#!/usr/bin/env python
"""CAMPPlus speaker style of a 15 s prompt: MLX port vs the reference, one run.

Run in the parity venv: ``.venv-parity/bin/python benchmarks/bench_campplus.py
[--threads N] [--repeats R]``.
Both sides use the same seeded checkpoint (``campplus_cn_common.bin`` at the real config,
converted for ours) and the same input (the reference's Kaldi fbank minus its mean). A
second row adds the fbank itself (reference: torchaudio, ours: ``kaldi_fbank``). Prints
the median wall time of each side and the ratio (reference / ours; > 1 = we are faster).
The two sides' runs alternate, so a change in the machine's background load hits both.

On a loaded 2-core machine torch's OpenMP threads wait at a barrier whenever one of them
is descheduled, which makes its times swing by 10x; ``--threads 1`` (torch and MKL) gives
steadier numbers there.

MLX's CPU allocator caches at most 32 MiB of freed buffers by default on Linux, so the
head's large intermediates (~8-25 MB each) are returned to the system and page-faulted
back in on every call. The rows marked "cache 4 GiB" rerun ours after
``mx.set_cache_limit(4 GiB)``, which the pipeline can set once.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ARGS = argparse.ArgumentParser(description=__doc__.splitlines()[1])
ARGS.add_argument("--threads", type=int, default=None, help="torch and MKL threads")
ARGS.add_argument("--repeats", type=int, default=7)
OPTIONS = ARGS.parse_args()
if OPTIONS.threads:  # before MKL is loaded
    os.environ["MKL_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(OPTIONS.threads)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from parity.workspace import use_this_checkout  # noqa: E402

use_this_checkout()

# isort: split
import mlx_indextts_models  # noqa: E402  (first: it loads the fast BLAS before MLX)

# isort: split

from parity.reference import install_torchaudio_shim  # noqa: E402

install_torchaudio_shim()

import mlx.core as mx  # noqa: E402
import torch  # noqa: E402

import mlx_audio_features as F  # noqa: E402
from clips import clip  # noqa: E402
from indextts_weights.loading import load_module  # noqa: E402
from indextts_weights.mapping.campplus import sanitize  # noqa: E402
from indextts_weights.npz import save_npz  # noqa: E402
from mlx_indextts_models.campplus import CAMPPlus, CAMPPlusArgs  # noqa: E402
from parity.checkpoints import campplus_checkpoint  # noqa: E402
from parity.reference import reference_module, torchaudio_module  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    out = fn()
    if isinstance(out, mx.array):
        mx.eval(out)
    return time.perf_counter() - start


def median_times(ref_fn, our_fn, repeats: int) -> tuple[float, float]:
    """Median wall time of each, the runs alternating, after one warm-up each."""
    timed(ref_fn), timed(our_fn)
    pairs = [(timed(ref_fn), timed(our_fn)) for _ in range(repeats)]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def main() -> None:
    if OPTIONS.threads:
        torch.set_num_threads(OPTIONS.threads)
    checkpoint = campplus_checkpoint(0)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    reference = reference_module("s2mel.modules.campplus.DTDNN").CAMPPlus(
        feat_dim=80, embedding_size=192
    )
    reference.load_state_dict(state)
    reference.eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = save_npz(
            Path(tmp) / "campplus.npz",
            sanitize({k: v.numpy() for k, v in state.items()}),
            model="campplus",
        )
        ours = load_module(CAMPPlus(CAMPPlusArgs()), path, model="campplus")

    kaldi = torchaudio_module("compliance.kaldi")
    audio = clip("speech_15s", 16000)
    wav = torch.from_numpy(audio)[None]

    def ref_features() -> torch.Tensor:
        feat = kaldi.fbank(wav, num_mel_bins=80, dither=0, sample_frequency=16000)
        return feat - feat.mean(dim=0, keepdim=True)

    def our_features() -> mx.array:
        feat = F.kaldi_fbank(audio, num_mel_bins=80, dither=0.0, sample_frequency=16000)
        return feat - feat.mean(axis=0, keepdims=True)

    feat_t = ref_features()
    feat_m = mx.array(feat_t.numpy())

    def ref_style(feat: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return reference(feat.unsqueeze(0))

    cases = {
        "CAMPPlus (same features)": (lambda: ref_style(feat_t), lambda: ours(feat_m[None])),
        "fbank + CAMPPlus": (
            lambda: ref_style(ref_features()),
            lambda: ours(our_features()[None]),
        ),
    }
    print(
        f"15 s prompt ({feat_t.shape[0]} frames); torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), mlx {mx.__version__}, "
        f"BLAS: {mlx_indextts_models.blas_status().name}"
    )
    print(f"{'stage':<36} {'reference':>11} {'ours':>11} {'ref/ours':>9}")
    for cache in ("MLX default cache", "cache 4 GiB"):
        if cache == "cache 4 GiB":
            mx.set_cache_limit(4 << 30)
        for name, (ref_fn, our_fn) in cases.items():
            ref_t, our_t = median_times(ref_fn, our_fn, OPTIONS.repeats)
            row = f"{name}, {cache}"
            print(f"{row:<36} {ref_t * 1e3:9.1f}ms {our_t * 1e3:9.1f}ms {ref_t / our_t:8.2f}x")


if __name__ == "__main__":
    main()
