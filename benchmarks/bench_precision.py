#!/usr/bin/env python
"""Each opt-in precision against float32, stage by stage, on the seeded real-config weights.

Run in the parity venv::

    .venv-parity/bin/python benchmarks/bench_precision.py [--precisions float16,bfloat16,q8,q4]
        [--codes 30] [--cfm-steps 10] [--prompt-seconds 3] [--seed 0]

A precision is ``float16`` / ``bfloat16`` (every model held in it: ``IndexTTS2(dtype=)``)
or ``q8`` / ``q4`` (the GPT-2 blocks quantized: ``IndexTTS2(quantize_gpt=)``). Each stage
of the precision's pipeline gets the **float32 pipeline's inputs** (cast to its dtype by
the stage), so every row measures that stage's own error, not an accumulation:

- ``speaker``: the encoded prompt (W2V-BERT features, CAMPPlus style, GPT speaker
  latents and emotion vector, prompt condition): the worst cosine similarity of the five;
- ``gpt greedy``: greedy codes (``top_k=1``, exactly ``--codes``, the stop code made
  impossible) from the float32 prefix: how many leading codes equal float32's;
- ``gpt teacher-forced``: the latent pass over float32's codes: latent cosine, and the
  share of positions whose top-1 code (``mel_head``) equals float32's;
- ``s2mel``: the CFM from float32's ``S_infer`` and the same start noise: mel cosine;
- ``bigvgan``: the vocoder on float32's mel: waveform SNR in dB (signal = float32's).

Also printed: the seconds each stage took (CPU: half precision has no BLAS in MLX's CPU
backend and is many times slower; these precisions are for Metal and CUDA) and the bytes
of the models' parameters. Costs minutes per precision on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from parity.workspace import use_this_checkout

use_this_checkout()

# isort: split
import mlx_indextts_models  # noqa: E402, F401  (first: it loads the fast BLAS before MLX)

# isort: split

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402
from mlx.utils import tree_flatten  # noqa: E402

from indextts_mlx import IndexTTS2  # noqa: E402
from indextts_mlx.models import MODELS  # noqa: E402
from mlx_indextts_models import GenerationConfig  # noqa: E402
from mlx_indextts_models.s2mel.regulator import target_lengths  # noqa: E402

STOP_MEL = 8193
TEXT = "The quick brown fox jumps over the lazy dog near the river bank."
PRECISIONS: dict[str, dict[str, Any]] = {
    "float16": {"dtype": "float16"},
    "bfloat16": {"dtype": "bfloat16"},
    "q8": {"quantize_gpt": 8},
    "q4": {"quantize_gpt": 4},
}


def cosine(a: mx.array, b: mx.array) -> float:
    x, y = (np.asarray(v.astype(mx.float32), dtype=np.float64).ravel() for v in (a, b))
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def snr_db(reference: np.ndarray, other: np.ndarray) -> str:
    """Signal-to-noise ratio of ``other`` against ``reference``, in dB ("identical" for 0)."""
    noise = np.sum((reference.astype(np.float64) - other) ** 2)
    if noise == 0:
        return "identical"
    return f"{10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / noise):.1f}"


def parameter_bytes(tts: IndexTTS2) -> int:
    total = 0
    for name in MODELS:
        value = getattr(tts.models, name)
        tree = value.parameters() if hasattr(value, "parameters") else value
        total += sum(leaf.nbytes for _, leaf in tree_flatten(tree) if isinstance(leaf, mx.array))
    return total


@contextmanager
def stopwatch(times: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    times[stage] = time.perf_counter() - start


def pipeline(precision: dict[str, Any]) -> IndexTTS2:
    from indextts_mlx import WeightsConfig
    from parity.converted import CONVERTIBLE, converted_weights
    from parity.text_corpus import bpe_model

    folder = converted_weights(CONVERTIBLE, 0)
    weights = WeightsConfig(weights_dir=folder, bpe_model=bpe_model())
    tts = IndexTTS2(weights, progress=False, **precision)
    tts.models.load_all()  # loading is not a stage's time
    gpt = tts.models.gpt
    bias = np.array(gpt.mel_head.bias.astype(mx.float32))
    bias[STOP_MEL] = -1e4  # exactly --codes codes on every side
    gpt.mel_head.bias = mx.array(bias).astype(gpt.mel_head.bias.dtype)
    return tts


def run_stages(tts: IndexTTS2, voice: Path, args: argparse.Namespace, base: dict | None) -> dict:
    """Every stage of ``tts``; from ``base`` (the float32 run's outputs) when given."""
    times: dict[str, float] = {}
    out: dict[str, Any] = {"times": times}
    with stopwatch(times, "speaker"):
        speaker = tts.encode_speaker(voice)
    out["speaker"] = speaker
    source = base or out
    emovec = tts.emotion_vector(source["speaker"], tts.encode_emotion(voice))
    (ids,) = tts.text_segments(TEXT)
    conds = tts.conditioning_prefix(source["speaker"], emovec)
    config = GenerationConfig(do_sample=True, num_beams=1, top_k=1, max_new_tokens=args.codes)
    with stopwatch(times, "gpt greedy"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no stop code within max_codes: intended
        out["codes"] = list(tts.generate_codes(conds, ids, config).codes)
    codes = source["codes"]
    with stopwatch(times, "gpt latent"):
        latent = tts.models.gpt.latent(conds, ids, codes)
        out["latent"] = latent
        out["top1"] = np.asarray(mx.argmax(tts.models.gpt.mel_logits(latent), axis=-1))
        out["s_infer"] = tts.codes_to_latent(conds, ids, codes)
    frames = source["speaker"].ref_mel.shape[1] + target_lengths(len(codes))  # prompt + target
    noise = mx.random.normal((1, frames, 80), key=mx.random.key(args.seed))
    with stopwatch(times, "s2mel"):
        out["mel"] = tts.latent_to_mel(
            source["s_infer"], source["speaker"], tts_cfm(args), noise=noise
        )
    with stopwatch(times, "bigvgan"):
        out["wave"] = tts.vocode(source["mel"])
    out["bytes"] = parameter_bytes(tts)
    return out


def tts_cfm(args: argparse.Namespace) -> Any:
    from mlx_indextts_models.s2mel.cfm import CFMSettings

    return CFMSettings(steps=args.cfm_steps)


def compare(base: dict, run: dict) -> dict[str, str]:
    fields = ("spk_cond_emb", "style", "spk_latent", "emovec", "prompt_condition")
    worst = min(cosine(getattr(base["speaker"], f), getattr(run["speaker"], f)) for f in fields)
    pairs = zip(base["codes"], run["codes"], strict=True)
    same = next((i for i, (a, b) in enumerate(pairs) if a != b), len(base["codes"]))
    return {
        "speaker cos (worst)": f"{worst:.6f}",
        "greedy codes equal": f"{same}/{len(base['codes'])}",
        "teacher-forced top-1": f"{np.mean(base['top1'] == run['top1']):.3f}",
        "GPT latent cos": f"{cosine(base['latent'], run['latent']):.6f}",
        "mel cos": f"{cosine(base['mel'], run['mel']):.6f}",
        "waveform SNR dB": snr_db(base["wave"], run["wave"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precisions", default="float16,bfloat16,q8,q4")
    parser.add_argument("--codes", type=int, default=30)
    parser.add_argument("--cfm-steps", type=int, default=10)
    parser.add_argument("--prompt-seconds", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    names = [p for p in args.precisions.split(",") if p]
    unknown = sorted(set(names) - set(PRECISIONS))
    if unknown:
        parser.error(f"unknown precision(s) {unknown}; choose from {list(PRECISIONS)}")

    from bench_synthesize import voice_file

    with tempfile.TemporaryDirectory() as tmp:
        voice = voice_file(args.prompt_seconds, Path(tmp))
        setup = f"{args.codes} greedy codes, {args.cfm_steps} CFM steps"
        print(f"{setup}, {args.prompt_seconds:g} s prompt; each stage from float32's inputs")
        runs: dict[str, dict] = {"float32": run_stages(pipeline({}), voice, args, None)}
        for name in names:
            mx.clear_cache()
            runs[name] = run_stages(pipeline(PRECISIONS[name]), voice, args, runs["float32"])
            print(f"  {name} done", flush=True)
    metrics = {name: compare(runs["float32"], runs[name]) for name in names}
    columns = ["float32", *names]
    print(f"{'':26}" + "".join(f"{c:>12}" for c in columns))
    for key in next(iter(metrics.values()), {}):
        print(
            f"{key:26}"
            + "".join(f"{metrics[c][key] if c in metrics else '-':>12}" for c in columns)
        )
    print(f"{'parameters GB':26}" + "".join(f"{runs[c]['bytes'] / 1e9:>12.2f}" for c in columns))
    for stage in runs["float32"]["times"]:
        cells = "".join(f"{runs[c]['times'][stage]:>12.2f}" for c in columns)
        print(f"{stage + ' s (CPU)':26}" + cells)


if __name__ == "__main__":
    main()
