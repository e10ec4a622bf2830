#!/usr/bin/env python
"""BigVGAN on 10 s of audio (862 mel frames): MLX port vs the reference, wall time and memory.

Run in the parity venv: ``.venv-parity/bin/python benchmarks/bench_bigvgan.py [--frames N]
[--repeats R]``. Both sides use the same seeded real-config ``bigvgan_generator.pt``
(``tests/parity/checkpoints``) and the same (1, 80, T) mel. The sides are timed alternately
so load from other processes hits both alike. Prints the median wall time of each, the
ratio (reference / ours; > 1 = we are faster) and MLX's peak memory.
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
import numpy as np  # noqa: E402
import torch  # noqa: E402

from indextts_weights.mapping.bigvgan import sanitize  # noqa: E402
from mlx_indextts_models.bigvgan import BigVGAN  # noqa: E402
from parity.checkpoints import bigvgan_checkpoint, bigvgan_reference  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=862)  # 10 s at 22050 Hz / 256
    parser.add_argument("--repeats", type=int, default=1)
    opts = parser.parse_args()

    state = torch.load(bigvgan_checkpoint(0), map_location="cpu", weights_only=True)
    weights = sanitize({k: v.numpy() for k, v in state["generator"].items()})
    ours = BigVGAN()
    ours.load_weights([(k, mx.array(v)) for k, v in weights.items()], strict=True)
    mx.eval(ours.parameters())
    reference = bigvgan_reference(0)

    mel = np.random.default_rng(0).standard_normal((1, 80, opts.frames)).astype(np.float32) - 4
    mel_mx = mx.array(mel.transpose(0, 2, 1))
    mx.eval(ours(mx.array(mel_mx[:, :8])))  # compile the small shapes once
    ref_times, our_times = [], []
    for _ in range(opts.repeats):
        start = time.perf_counter()
        with torch.inference_mode():
            ref = reference(torch.from_numpy(mel))[:, 0].numpy()
        ref_times.append(time.perf_counter() - start)
        mx.reset_peak_memory()
        start = time.perf_counter()
        wave = ours(mel_mx)
        mx.eval(wave)
        our_times.append(time.perf_counter() - start)
    diff = np.abs(np.array(wave) - ref).max()
    t_ref, t_ours = statistics.median(ref_times), statistics.median(our_times)
    seconds = opts.frames * 256 / 22050
    print(f"audio {seconds:.2f} s ({opts.frames} frames), max|Δ| {diff:.3g}")
    print(f"reference {t_ref:.2f} s  (RTF {t_ref / seconds:.3f})")
    peak = mx.get_peak_memory() / 2**30
    print(f"mlx       {t_ours:.2f} s  (RTF {t_ours / seconds:.3f}), peak {peak:.2f} GiB")
    print(f"ratio reference/mlx {t_ref / t_ours:.2f}")


if __name__ == "__main__":
    main()
