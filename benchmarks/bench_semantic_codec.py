#!/usr/bin/env python
"""Semantic codec ``quantize`` (S_ref) on a 15 s prompt: MLX port vs the reference, one run.

Run in the parity venv: ``.venv-parity/bin/python benchmarks/bench_semantic_codec.py``.
Both sides use the same seeded real-config checkpoint (``tests/parity/checkpoints``) and
the same (1, 750, 1024) input (W2V-BERT frames of 15 s at 50 Hz). The two sides are
timed alternately so that load from other processes hits both alike. Prints the median
wall time of each and the ratio (reference / ours; > 1 = we are faster).
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
import mlx_indextts_models  # noqa: E402  (first: it loads the fast BLAS before MLX)

# isort: split

from parity.reference import install_torchaudio_shim  # noqa: E402

install_torchaudio_shim()

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from indextts_weights.loading import load_module  # noqa: E402
from indextts_weights.mapping.semantic_codec import sanitize  # noqa: E402
from indextts_weights.npz import save_npz  # noqa: E402
from mlx_indextts_models.semantic_codec import RepCodec, SemanticCodecArgs  # noqa: E402
from parity.checkpoints import (  # noqa: E402
    real_config,
    semantic_codec_checkpoint,
    semantic_codec_module,
)
from parity.harness import cached_file  # noqa: E402

FRAMES = 750  # 15 s of W2V-BERT features at 50 frames/s
REPEATS = 7


def load_models():
    from safetensors.numpy import load_file
    from safetensors.torch import load_model

    checkpoint = semantic_codec_checkpoint(0)
    reference = semantic_codec_module(0)
    load_model(reference, str(checkpoint))
    npz = cached_file(
        "semantic_codec_npz",
        "semantic_codec.npz",
        lambda p: save_npz(p, sanitize(load_file(str(checkpoint))), model="semantic_codec"),
        checkpoint=checkpoint.parent.name,
    )
    ours = load_module(
        RepCodec(SemanticCodecArgs(**dict(real_config().semantic_codec))),
        npz,
        model="semantic_codec",
    )
    return reference, ours


def main() -> None:
    reference, ours = load_models()
    x = np.random.default_rng(0).standard_normal((1, FRAMES, 1024)).astype(np.float32)
    x_torch, x_mlx = torch.from_numpy(x), mx.array(x)

    def run_reference():
        with torch.no_grad():
            return reference.quantize(x_torch)

    def run_ours():
        out = ours.quantize(x_mlx)
        mx.eval(out)
        return out

    (ref_codes, _), (our_codes, _) = run_reference(), run_ours()  # warm-up
    same = np.array_equal(ref_codes.numpy(), np.array(our_codes))
    ref_times, our_times = [], []
    for _ in range(REPEATS):
        for fn, times in ((run_reference, ref_times), (run_ours, our_times)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    ref_t, our_t = statistics.median(ref_times), statistics.median(our_times)
    print(
        f"semantic codec quantize, input (1, {FRAMES}, 1024); torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), mlx {mx.__version__}, "
        f"BLAS: {mlx_indextts_models.blas_status().name}; codes identical: {same}"
    )
    print(f"{'stage':<26} {'reference':>11} {'ours':>11} {'ref/ours':>9}")
    print(
        f"{'quantize (S_ref)':<26} {ref_t * 1e3:9.1f}ms {our_t * 1e3:9.1f}ms {ref_t / our_t:8.2f}x"
    )


if __name__ == "__main__":
    main()
