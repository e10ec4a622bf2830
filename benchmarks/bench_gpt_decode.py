#!/usr/bin/env python
"""Whole GPT code generation (tokens/s), MLX ``UnifiedVoice.generate`` vs the reference's
``inference_speech``, fp32, real config, same weights.

Run in the parity venv: ``.venv-parity/bin/python benchmarks/bench_gpt_decode.py
[--codes N] [--text-tokens L]``.

Both sides decode the same prompt (34 conditioning positions from seeded features, ``L``
random text ids) for exactly ``N`` codes (the stop code is disabled on both sides by the
same ``mel_head.bias`` edit, so the work is equal), with the reference's settings: greedy
with one beam, and sampled with 3 beams (temperature 0.8, top-k 30, top-p 0.8,
repetition penalty 10). Times include the prefill and every search step (logits
processing, sampling, beam bookkeeping, cache reordering); ours is the best of
``--repeats`` runs, the reference (minutes per run) runs once.

The reference runs as installed (transformers 5.x, its KV cache unused: every step
re-runs the whole sequence). Its best configuration, the cache working, is what
``bench_gpt2_decode.py`` times step by step (measured speeds: docs/performance.md);
the bandwidth bound there applies here too. Ours loads ``gpt.npz`` converted by the real
``indextts-weights convert`` from the seeded official-format ``gpt.pth``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from parity.workspace import use_this_checkout

use_this_checkout()

# isort: split
import mlx_indextts_models  # noqa: E402, F401  (first: it loads the fast BLAS before MLX)

# isort: split

from parity.reference import install_torchaudio_shim  # noqa: E402

install_torchaudio_shim()

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_gpt2_decode import measured_bandwidth  # noqa: E402

from indextts_weights.load import load_gpt  # noqa: E402
from mlx_audio_features import blas_status  # noqa: E402
from mlx_indextts_models.sampling import GenerationConfig, Sampler  # noqa: E402
from parity.converted import converted_weights  # noqa: E402
from parity.gpt_reference import reference_gpt  # noqa: E402

SETTINGS = {
    "greedy, 1 beam": {"do_sample": False, "num_beams": 1},
    "sampled, 3 beams": {"do_sample": True, "num_beams": 3},
}
COMMON = {"top_p": 0.8, "top_k": 30, "temperature": 0.8, "repetition_penalty": 10.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=60, help="codes generated per run")
    parser.add_argument("--text-tokens", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0, help="inputs and sampling seed")
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours (best is kept)")
    args = parser.parse_args()
    status = blas_status()
    print(
        f"MLX {mx.__version__} ({status.name or status.reason}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads"
    )
    mx.set_cache_limit(4 << 30)
    ref = reference_gpt()  # the seeded gpt.pth (seed 0), loaded as infer_v2 loads it
    ours = load_gpt(converted_weights(("gpt",)) / "gpt.npz")
    with torch.no_grad():
        ref.mel_head.bias[8193] = -1e4  # never stop: equal work on both sides
    ours.mel_head.bias = mx.array(ref.mel_head.bias.detach().numpy())

    rng = np.random.default_rng(args.seed)
    features = torch.from_numpy(rng.standard_normal((1, 300, 1024)).astype(np.float32))
    text = torch.from_numpy(rng.integers(2, 12000, (1, args.text_tokens)).astype(np.int32))
    with torch.no_grad():
        cond_lengths = torch.tensor([1024])
        emovec = ref.get_emovec(features, cond_lengths)
        latent = ref.get_conditioning(features.transpose(1, 2), cond_lengths)
    conds = ours.conditioning_prefix(mx.array(latent.numpy()), mx.array(emovec.numpy()))
    bandwidth = measured_bandwidth()
    print(
        f"{args.codes} codes after a {34 + args.text_tokens + 3}-position prompt; "
        f"bandwidth {bandwidth:.1f} GB/s => GPT-2 step bound {bandwidth / 1.93:.1f} steps/s"
    )
    print(
        f"{'search':<18} {'reference s':>12} {'ours s':>8} {'ref tok/s':>10} "
        f"{'ours tok/s':>11} {'ratio':>7}"
    )
    ours_times = {}
    for name, setting in SETTINGS.items():
        config = GenerationConfig(
            **setting, **COMMON, length_penalty=0.0, max_new_tokens=args.codes
        )
        ours.generate(conds, text[0].tolist(), GenerationConfig(**setting, max_new_tokens=3))
        ours_s = float("inf")
        for _ in range(args.repeats):  # best of: the closest to an idle machine
            start = time.perf_counter()
            got = ours.generate(conds, text[0].tolist(), config, sampler=Sampler(args.seed))
            ours_s = min(ours_s, time.perf_counter() - start)
        assert len(got.codes) == args.codes, len(got.codes)
        with torch.no_grad():
            start = time.perf_counter()
            codes, _ = ref.inference_speech(
                features,
                text,
                features,
                cond_lengths=cond_lengths,
                emo_cond_lengths=cond_lengths,
                emo_vec=emovec,
                **setting,
                **COMMON,
                length_penalty=0.0,
                max_generate_length=args.codes,
            )
            ref_s = time.perf_counter() - start
        assert codes.shape[1] == args.codes, codes.shape
        ours_times[name] = ours_s
        print(
            f"{name:<18} {ref_s:12.2f} {ours_s:8.2f} {args.codes / ref_s:10.2f} "
            f"{args.codes / ours_s:11.2f} {ref_s / ours_s:6.2f}x"
        )
    beams, single = ours_times["sampled, 3 beams"], ours_times["greedy, 1 beam"]
    print(f"ours: 3 sampled beams cost {beams / single:.2f}x one greedy beam")


if __name__ == "__main__":
    main()
