#!/usr/bin/env python
"""W2V-BERT semantic features of a 15 s prompt: MLX port vs the reference, one run.

Run in the parity venv: ``.venv-parity/bin/python benchmarks/bench_w2vbert.py``.
Both sides use the same seeded real-config checkpoint (``tests/parity/checkpoints``) and
the SeamlessM4T features of 15 s of speech ((1, 749, 160), 50 frames/s). The reference
runs as IndexTTS-2 runs it: all 24 layers with ``output_hidden_states=True``, of which
``hidden_states[17]`` is kept; ours runs the 17 layers needed. The reference is also timed
on 17 layers (a truncated copy of its encoder) to separate the per-layer speed from the
layers saved. Sides are timed alternately, so load from other processes hits both alike.
Prints median wall times and ratios (reference / ours; > 1 = we are faster).
"""

from __future__ import annotations

import argparse
import gc
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

from clips import clip  # noqa: E402
from indextts_weights.loading import load_module  # noqa: E402
from indextts_weights.mapping.w2vbert import sanitize  # noqa: E402
from indextts_weights.npz import save_npz  # noqa: E402
from mlx_audio_features import blas_status, seamless_fbank  # noqa: E402
from mlx_indextts_models.w2vbert import SEMANTIC_LAYER, W2VBertArgs, W2VBertModel  # noqa: E402
from parity.checkpoints import w2vbert_checkpoint  # noqa: E402
from parity.harness import cached_file  # noqa: E402


def load_ours(checkpoint: Path) -> W2VBertModel:
    from safetensors.numpy import load_file

    npz = cached_file(
        "w2vbert_npz",
        "w2vbert.npz",
        lambda p: save_npz(p, sanitize(load_file(str(checkpoint))), model="w2vbert"),
        checkpoint=checkpoint.parent.name,
    )
    model = W2VBertModel(W2VBertArgs(num_hidden_layers=SEMANTIC_LAYER))
    return load_module(model, npz, model="w2vbert")


def median_times(cases: dict, repeats: int) -> dict[str, float]:
    for fn in cases.values():
        fn()  # warm-up
    times = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from transformers import Wav2Vec2BertModel

    checkpoint = w2vbert_checkpoint(0)
    ours = load_ours(checkpoint)
    gc.collect()
    reference = Wav2Vec2BertModel.from_pretrained(str(checkpoint.parent)).eval()
    layers = reference.encoder.layers

    feats = seamless_fbank(clip("speech_15s", 16000))
    x, mask = feats.input_features[None], feats.attention_mask[None]
    tx = torch.from_numpy(np.array(x))
    tmask = torch.from_numpy(np.array(mask))

    def reference_24() -> torch.Tensor:
        reference.encoder.layers = layers
        with torch.no_grad():
            return reference(tx, attention_mask=tmask, output_hidden_states=True).hidden_states[17]

    def reference_17() -> torch.Tensor:
        reference.encoder.layers = layers[:SEMANTIC_LAYER]
        with torch.no_grad():
            return reference(tx, attention_mask=tmask).last_hidden_state

    def ours_17() -> None:
        mx.eval(ours(x, mask))

    times = median_times(
        {
            "reference, 24 layers": reference_24,
            "reference, 17 layers": reference_17,
            "ours, 17 layers": ours_17,
        },
        args.repeats,
    )
    reference.encoder.layers = layers
    print(
        f"W2V-BERT hidden[17], 15 s prompt ({x.shape[1]} frames); torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), mlx {mx.__version__}, BLAS: {blas_status().name}; "
        f"median of {args.repeats}"
    )
    ours_t = times["ours, 17 layers"]
    for name, t in times.items():
        print(f"{name:<22} {t:8.2f} s   ref/ours {t / ours_t:5.2f}x")


if __name__ == "__main__":
    main()
