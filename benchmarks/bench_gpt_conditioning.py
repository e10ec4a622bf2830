#!/usr/bin/env python
"""GPT conditioning of a 15 s prompt (speaker latents + emotion vector): MLX vs the reference.

Run in the parity venv: ``.venv-parity/bin/python benchmarks/bench_gpt_conditioning.py
[--threads N] [--repeats R]``.
Both sides use the same seeded ``UnifiedVoice(**cfg.gpt)`` weights (ours: its conditioning
keys through ``sanitize_conditioning``) and the same input: seeded standard-normal
features of 749 frames (15 s of prompt, the length ``infer_v2`` cuts prompts to), a
different one for the emotion prompt. ``infer_v2`` runs, for every text segment,
``merge_emovec`` (the emotion conformer twice: speaker and emotion prompt) and
``get_conditioning`` (inside ``inference_speech``); the last row times both. Prints the
median wall time of each side and the ratio (reference / ours; > 1 = we are faster). The
two sides' runs alternate, so a change in the machine's background load hits both.

Most of the time is the conformers' input Linear (512·511 → 512 over 374 frames: 100
GFLOP per conformer, three conformers). Its 391 MB input is page-faulted in on every call
while MLX caches at most 32 MiB of freed buffers (Linux default); the rows marked
"cache 4 GiB" rerun ours after ``mx.set_cache_limit(4 GiB)``, which the pipeline can set.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ARGS = argparse.ArgumentParser(description=__doc__.splitlines()[1])
ARGS.add_argument("--threads", type=int, default=None, help="torch and MKL threads")
ARGS.add_argument("--repeats", type=int, default=3)
ARGS.add_argument("--frames", type=int, default=749, help="prompt frames (50 per second)")
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
import numpy as np  # noqa: E402
import torch  # noqa: E402

from indextts_weights.loading import load_module  # noqa: E402
from indextts_weights.mapping.gpt_conditioning import (  # noqa: E402
    is_conditioning_key,
    sanitize_conditioning,
)
from indextts_weights.npz import save_npz  # noqa: E402
from mlx_indextts_models.gpt_conditioning import (  # noqa: E402
    GPTConditioning,
    GPTConditioningArgs,
)
from parity.checkpoints import gpt_module, real_config  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    out = fn()
    if isinstance(out, (mx.array, tuple)):
        mx.eval(out)
    return time.perf_counter() - start


def median_times(ref_fn, our_fn, repeats: int) -> tuple[float, float]:
    """Median wall time of each, the runs alternating, after one warm-up each."""
    timed(ref_fn), timed(our_fn)
    pairs = [(timed(ref_fn), timed(our_fn)) for _ in range(repeats)]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def load_both():
    """The seeded reference (GPT-2 side dropped) and ours with the same weights."""
    reference = gpt_module(0)
    del reference.gpt, reference.mel_embedding, reference.text_embedding
    gc.collect()
    state = {k: v.numpy() for k, v in reference.state_dict().items() if is_conditioning_key(k)}
    args = GPTConditioningArgs.from_config(real_config().gpt)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_npz(
            Path(tmp) / "gpt_conditioning.npz",
            sanitize_conditioning(state),
            model="gpt_conditioning",
        )
        del state
        ours = load_module(GPTConditioning(args), path, model="gpt_conditioning")
    return reference, ours


def main() -> None:
    if OPTIONS.threads:
        torch.set_num_threads(OPTIONS.threads)
    reference, ours = load_both()
    rng = np.random.default_rng(0)
    frames = OPTIONS.frames
    spk_np = rng.standard_normal((1, frames, 1024)).astype(np.float32)
    emo_np = rng.standard_normal((1, frames, 1024)).astype(np.float32)
    spk_t, emo_t = torch.from_numpy(spk_np), torch.from_numpy(emo_np)
    spk_m, emo_m = mx.array(spk_np), mx.array(emo_np)
    lengths = torch.tensor([1024])  # what infer_v2 passes (the feature size)

    def ref_conditioning():
        with torch.no_grad():
            return reference.get_conditioning(spk_t.transpose(1, 2), lengths)

    def ref_emovec():
        with torch.no_grad():
            return reference.merge_emovec(spk_t, emo_t, lengths, lengths, alpha=0.6)

    cases = {
        "speaker latents": (ref_conditioning, lambda: ours.get_conditioning(spk_m)),
        "emovec (merge, 2 conformers)": (ref_emovec, lambda: ours.merge_emovec(spk_m, emo_m, 0.6)),
        "conditioning + emovec": (
            lambda: (ref_conditioning(), ref_emovec()),
            lambda: (ours.get_conditioning(spk_m), ours.merge_emovec(spk_m, emo_m, 0.6)),
        ),
    }
    print(
        f"{frames} frames ({frames / 50:.1f} s prompt); torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), mlx {mx.__version__}, "
        f"BLAS: {mlx_indextts_models.blas_status().name}"
    )
    print(f"{'stage':<46} {'reference':>10} {'ours':>10} {'ref/ours':>9}")
    for cache in ("MLX default cache", "cache 4 GiB"):
        if cache == "cache 4 GiB":
            mx.set_cache_limit(4 << 30)
        for name, (ref_fn, our_fn) in cases.items():
            ref_t, our_t = median_times(ref_fn, our_fn, OPTIONS.repeats)
            row = f"{name}, {cache}"
            print(f"{row:<46} {ref_t:9.2f}s {our_t:9.2f}s {ref_t / our_t:8.2f}x", flush=True)


if __name__ == "__main__":
    main()
