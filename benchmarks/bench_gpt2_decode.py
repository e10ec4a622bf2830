#!/usr/bin/env python
"""GPT-2 decode speed (tokens/s), MLX vs the reference's HF GPT2Model, fp32, KV cache.

Run in the parity venv: ``.venv-parity/bin/python benchmarks/bench_gpt2_decode.py``.
Both sides hold the same weights: the reference's own ``build_hf_gpt_transformer`` (24
layers, 1280, 20 heads, seeded init) plus ``final_norm`` and ``mel_head`` (8194 codes);
ours is the same state converted by ``sanitize_gpt2``. One *step* feeds one position per
sequence after a prefill of ``--context`` positions and produces ``(B, 8194)`` logits:
the reference with its ``DynamicCache`` (the cache working, as with transformers 4.x),
ours with :class:`KVCache`. With 3 beams each step also reorders the cache rows (rows
``[0, 0, 1]``), as beam search does. Ours runs the compiled decode step; "ours eager"
runs the same blocks op by op (no ``mx.compile``), to show what compiling buys.

The bandwidth bound: a step must read every weight once (GPT-2 blocks, ``ln_f``,
``final_norm``, ``mel_head``: 1.93 GB in fp32), so tokens/s ≤ bandwidth / bytes. The
bandwidth is measured here as MLX matrix-vector throughput over 1 GB of 26 MB matrices
(out of cache), best of the repeats. Sides are timed alternately, so load from other
processes hits all alike; the minimum over repeats is reported (the median beside it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from parity.workspace import use_this_checkout

use_this_checkout()

# isort: split
import mlx_indextts_models  # noqa: E402, F401  (first: it loads the fast BLAS before MLX)

# isort: split

from parity.reference import install_torchaudio_shim  # noqa: E402

install_torchaudio_shim()

import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mlx.utils import tree_flatten  # noqa: E402

from indextts_weights.mapping.gpt2 import sanitize_gpt2  # noqa: E402
from mlx_audio_features import blas_status  # noqa: E402
from mlx_indextts_models.cache import select_rows  # noqa: E402
from mlx_indextts_models.gpt2 import GPT2Args, GPT2Model, linear_rows  # noqa: E402
from parity.reference import reference_module  # noqa: E402

DIM, CODES = 1280, 8194


class Ours(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gpt = GPT2Model(GPT2Args())
        self.final_norm = nn.LayerNorm(DIM)
        self.mel_head = nn.Linear(DIM, CODES)

    def step(self, x: mx.array, cache, eager: bool = False) -> mx.array:
        if eager:
            h = x
            for block, layer in zip(self.gpt.h, cache, strict=True):
                h = block(h, None, layer)
            h = self.gpt.ln_f(h)
        else:
            h = self.gpt(x, cache)
        h = self.final_norm(h[:, -1])
        return linear_rows(h, self.mel_head.weight, self.mel_head.bias)


def build(seed: int):
    """The reference modules (seeded) and ours with the same weights."""
    model_v2 = reference_module("gpt.model_v2")
    torch.manual_seed(seed)
    gpt = model_v2.build_hf_gpt_transformer(24, DIM, 20, 1818, 602, False)[0].eval()
    final_norm, mel_head = torch.nn.LayerNorm(DIM).eval(), torch.nn.Linear(DIM, CODES).eval()
    state = {f"gpt.{k}": v.numpy() for k, v in gpt.state_dict().items()}
    state |= {f"final_norm.{k}": v.numpy() for k, v in final_norm.state_dict().items()}
    state |= {f"mel_head.{k}": v.numpy() for k, v in mel_head.state_dict().items()}
    ours = Ours()
    ours.load_weights([(k, mx.array(v)) for k, v in sanitize_gpt2(state).items()], strict=True)
    mx.eval(ours.parameters())
    return (gpt, final_norm, mel_head), ours


def weight_bytes(ours: Ours) -> int:
    return sum(v.nbytes for _, v in tree_flatten(ours.parameters()))


def measured_bandwidth(repeats: int = 5) -> float:
    """GB/s of MLX matrix-vector products over 40 matrices of 5120x1280 fp32 (1 GB)."""
    mats = [mx.random.normal((5120, 1280)) for _ in range(40)]
    x = mx.random.normal((1, 1280))
    mx.eval(mats, x)
    mx.eval([x @ w.T for w in mats])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        mx.eval([x @ w.T for w in mats])
        best = min(best, time.perf_counter() - start)
    return 40 * 5120 * 1280 * 4 / best / 1e9


def reference_runner(ref, beams: int, context: int):
    from transformers import DynamicCache

    gpt, final_norm, mel_head = ref
    generator = torch.Generator().manual_seed(0)
    prefix = torch.randn(1, context, DIM, generator=generator)
    token = torch.randn(beams, 1, DIM, generator=generator)
    rows = torch.tensor([0, 0, 1][:beams])

    def run(steps: int) -> float:
        with torch.no_grad():
            cache = DynamicCache(config=gpt.config)
            gpt(inputs_embeds=prefix, cache=cache, use_cache=True)
            if beams > 1:
                cache.reorder_cache(torch.zeros(beams, dtype=torch.long))
            start = time.perf_counter()
            for _ in range(steps):
                h = gpt(inputs_embeds=token, cache=cache, use_cache=True).last_hidden_state
                mel_head(final_norm(h[:, -1]))
                if beams > 1:
                    cache.reorder_cache(rows)
            return (time.perf_counter() - start) / steps

    return run


def our_runner(ours: Ours, beams: int, context: int, eager: bool):
    rng = np.random.default_rng(0)
    prefix = mx.array(rng.standard_normal((1, context, DIM)).astype(np.float32))
    token = mx.array(rng.standard_normal((beams, 1, DIM)).astype(np.float32))
    rows = [0, 0, 1][:beams]

    def run(steps: int) -> float:
        cache = ours.gpt.make_cache()
        mx.eval(ours.gpt(prefix, cache))
        if beams > 1:
            select_rows(cache, [0] * beams)
        mx.eval([c.state for c in cache])
        start = time.perf_counter()
        for _ in range(steps):
            logits = ours.step(token, cache, eager)
            if beams > 1:
                select_rows(cache, rows)
            mx.eval(logits, [c.state for c in cache])
        return (time.perf_counter() - start) / steps

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--context", type=int, default=100, help="prefill positions")
    parser.add_argument("--steps", type=int, default=24, help="decode steps per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    status = blas_status()
    print(
        f"MLX {mx.__version__} ({status.name or status.reason}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads"
    )
    ref, ours = build(args.seed)
    nbytes = weight_bytes(ours)
    cases = {}
    for beams in (1, 3):
        cases[("reference", beams)] = reference_runner(ref, beams, args.context)
        cases[("ours", beams)] = our_runner(ours, beams, args.context, eager=False)
        cases[("ours eager", beams)] = our_runner(ours, beams, args.context, eager=True)
    for run in cases.values():
        run(2)  # warm-up (and compile)
    times = {key: [] for key in cases}
    bandwidths = []
    for _ in range(args.repeats):
        bandwidths.append(measured_bandwidth())
        for key, run in cases.items():
            times[key].append(run(args.steps))
    # Minimum over repeats: the closest to an idle machine (other processes only slow a run).
    step = {key: min(t) for key, t in times.items()}
    median = {key: statistics.median(t) for key, t in times.items()}
    bandwidth = max(bandwidths)
    bound = bandwidth * 1e9 / nbytes
    print(
        f"weights read per step: {nbytes / 1e9:.3f} GB; measured bandwidth {bandwidth:.1f} GB/s "
        f"=> bound {bound:.1f} steps/s; context {args.context}, {args.steps} steps"
    )
    print(
        f"{'side':<12} {'beams':>5} {'ms/step':>9} {'(median)':>9} {'tok/s':>7} {'x bound':>8} "
        f"{'vs ref':>7}"
    )
    for (side, beams), seconds in step.items():
        speedup = step[("reference", beams)] / seconds
        print(
            f"{side:<12} {beams:>5} {seconds * 1e3:9.1f} {median[(side, beams)] * 1e3:9.1f} "
            f"{1 / seconds:7.2f} {(1 / seconds) / bound:8.2f} {speedup:6.2f}x"
        )
    for side in ("reference", "ours", "ours eager"):
        print(f"{side}: 3 beams cost {step[(side, 3)] / step[(side, 1)]:.2f}x one beam")


if __name__ == "__main__":
    main()
