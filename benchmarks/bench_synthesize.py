#!/usr/bin/env python
"""Whole IndexTTS-2 synthesis, text + voice file → audio: ours (``indextts_mlx.IndexTTS2``)
vs the reference PyTorch CPU pipeline (``indextts/infer_v2.py: IndexTTS2.infer_generator``).

Run in the parity venv::

    .venv-parity/bin/python benchmarks/bench_synthesize.py [--texts short,200,1000]
        [--codes 250] [--beams 3] [--cfm-steps 25] [--prompt-seconds 3] [--repeats 1]
        [--verify-cache] [--no-cache-patch] [--sides ours,reference] [--weights DIR]

**Same inputs, same weights.** Both sides load the seeded real-config checkpoints (ours: the
NPZ files the real ``indextts-weights convert`` wrote, :func:`parity.pipeline_stages.
our_pipeline`; the reference: :func:`parity.pipeline_reference.build_reference`, its own
``__init__`` with nothing downloaded), the same ``bpe.model`` (:func:`parity.text_corpus.
bpe_model`; ``--weights DIR``: our NPZ files from a folder the CLI converted from the same
seeded checkpoints instead, e.g. while the parity cache's conversion is being rebuilt), the
same voice file (the ``speech_sentence`` clip cut to ``--prompt-seconds``,
default 3 s to keep the CFM affordable: its DiT runs over prompt + generated frames) and the
same texts: ``short`` (one sentence), ``200`` (~200 characters) and ``1000`` (~1,000
characters: several segments).

**Equal work.** Random weights rarely emit the stop code, so it is made impossible on both
sides (``mel_head.bias[8193] = -1e4``) and every segment generates exactly ``--codes``
codes (ours ``max_codes=``, the reference ``max_mel_tokens=``); the code counts are printed
and checked. Same search on both sides: the reference's defaults (sampling, ``--beams`` 3,
top-k 30, top-p 0.8, temperature 0.8, repetition penalty 10), the same ``--cfm-steps``
(``infer_generator`` hardcodes 25, so only 25 is allowed for the reference) and CFG 0.7.

**The reference in its best configuration.** As installed (transformers 5.x) the
reference's ``GPT2InferenceModel.prepare_inputs_for_generation(input_ids,
past_key_values=None, **kwargs)`` never sees its KV cache: ``generate`` now passes it as
``cache=``, which lands in ``**kwargs``, so every step re-runs the whole sequence. This
benchmark maps ``cache`` onto ``past_key_values``, restores the attention mask the cached
branch reads and keeps its code positions those of the installed math, on the instance only
(:func:`enable_kv_cache`; the installed package is not edited): ``generate`` then reorders
the cache between beam steps and the model embeds only the new code each step. ``--verify-cache``
checks that the patched and unpatched ``inference_speech`` give the same codes (greedy, 1
and 3 beams) and prints per-step forward times (flat with the patch, growing without);
``--no-cache-patch`` times the reference as installed.

**What is timed.** Model loading is excluded (reported separately); each side first runs a
short warm-up synthesis, then each text once per repeat with the speaker/emotion caches
cleared, so prompt encoding is in every total. Each side runs in its own subprocess (peak
RSS per side; sides alternate when repeating). Stages (both sides, seconds):
``speaker`` (speaker prompt: W2V-BERT, codec, mel, CAMPPlus, prompt regulator), ``emotion``
(emotion prompt; ours also the emotion vector and GPT prefix), ``gpt generate`` (the code
search), ``gpt latent`` (latent pass + ``gpt_layer`` + ``vq2emb``), ``s2mel`` (length
regulator + CFM), ``bigvgan``, ``other`` (the rest: text front end, segment joining, ...).
Ours from ``SynthesisResult.timings``; the reference's from timing wrappers on its stage
calls. Ratio = reference / ours (> 1: we are faster).

Cost on the shared 2-core CPU (measured, one short text: 250 codes, 3 beams, 5 s of audio):
ours ~2.5-4 min, the reference ~2.7 min with its cache working, plus ~1-1.5 min of loading
and warm-up per side; ``--verify-cache`` adds ~6 min (the uncached reference runs). Each
text costs at least that per segment: ``200`` ~1-2 segments, ``1000`` several, so the full
default run takes well over half an hour per side, more under load.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from parity import workspace
from parity.workspace import use_this_checkout

use_this_checkout()

# isort: split
import mlx_indextts_models  # noqa: E402  (first: it loads the fast BLAS before MLX)

# isort: split

import numpy as np  # noqa: E402

from parity.reference import install_torchaudio_shim  # noqa: E402

install_torchaudio_shim()

STOP_MEL = 8193
NO_STOP_BIAS = -1e4
SAMPLE_RATE = 22050
TEXTS = {
    "short": "The quick brown fox jumps over the lazy dog near the river bank.",
    "200": (
        "In the early hours of the morning, the research team released a new version of "
        "their speech model. It was trained on thousands of hours of audio from podcasts, "
        "audiobooks and lectures."
    ),
    "1000": (
        "In the early hours of March 3rd, 2024, the research team at the lab released version "
        "2.1 of their open-source speech model, which had been trained on more than 55,000 "
        "hours of audio collected from podcasts, audiobooks and public lectures. According to "
        "Dr. Chen, who led the project, the new release cuts the error rate by 12.5% while "
        "running 3 times faster on a single GPU, and it supports both English and Chinese out "
        "of the box. However, she warned that the model still struggles with very long "
        "sentences, rare names and numbers, so the team plans another update before the end "
        "of the year. The quick brown fox jumps over the lazy dog near the river bank, while "
        "the clocks in the old town are striking thirteen on a bright cold day in April. "
        "Meanwhile, listeners who tried the early version said that the voices sounded "
        "natural, although some of them noticed small pauses between sentences and a few "
        "words that were spoken too fast. The team thanked everyone for the feedback."
    ),
}
WARMUP_TEXT = "Hello there."
STAGES = ("speaker", "emotion", "gpt generate", "gpt latent", "s2mel", "bigvgan")
#: our ``SynthesisResult.timings`` key per stage
OUR_KEYS = {
    "speaker": "speaker",
    "emotion": "emotion",
    "gpt generate": "gpt",
    "gpt latent": "latent",
    "s2mel": "s2mel",
    "bigvgan": "bigvgan",
}


# --- memory --------------------------------------------------------------------------


def reset_peak_rss() -> None:
    """Reset the kernel's peak RSS (``VmHWM``) of this process (Linux ``clear_refs`` 5)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_rss_gb() -> float:
    """``VmHWM`` (peak RSS since the last reset), else ``ru_maxrss``, in GB."""
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e6
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


# --- the reference's KV cache ----------------------------------------------------------


def enable_kv_cache(inference_model: Any) -> None:
    """Make HF ``generate`` (transformers 5.x) use the reference's KV cache, on this
    instance only, keeping the installed (cache-less) math:

    1. ``generate`` calls ``prepare_inputs_for_generation(input_ids, cache=<DynamicCache>,
       ...)`` but the reference reads ``past_key_values``: the cache is passed under that
       name. With a non-empty cache the reference then keeps only the last id, ``forward``
       hands the cache to the GPT-2 stack (which fills it in place and returns it as
       ``outputs.cache``) and beam search reorders it (``DynamicCache.reorder_cache``).
    2. ``generate`` 5.x no longer passes the (all-ones) ``attention_mask`` on, and the
       cached branch of ``forward`` needs it for the new code's position: it is rebuilt
       as ones over the whole sequence, as transformers 4.x passed it.
    3. That branch embeds the newest code at ``attention_mask.shape[1] - mel_len``, one
       past where the cache-less branch (and the training pass, and ours) put it (code
       ``k`` at mel position ``k``); ``get_fixed_embedding`` is shifted back by one so the
       cached run computes the same codes as the installed one (it costs the same).
    """
    import torch

    assert inference_model.kv_cache, "post_init_gpt2_config(kv_cache=True) expected"
    original = type(inference_model).prepare_inputs_for_generation
    positions = inference_model.text_pos_embedding
    fixed = type(positions).get_fixed_embedding

    @functools.wraps(original)  # generate validates its kwargs against this signature
    def prepare_inputs_for_generation(input_ids: Any, cache: Any = None, **kwargs: Any) -> Any:
        past = kwargs.pop("past_key_values", None)
        if kwargs.get("attention_mask") is None:
            kwargs["attention_mask"] = torch.ones_like(input_ids)
        return original(
            inference_model,
            input_ids,
            past_key_values=cache if cache is not None else past,
            **kwargs,
        )

    def get_fixed_embedding(ind: int, dev: Any) -> Any:
        return fixed(positions, ind - 1, dev)

    inference_model.prepare_inputs_for_generation = prepare_inputs_for_generation
    positions.get_fixed_embedding = get_fixed_embedding


def disable_kv_cache(inference_model: Any) -> None:
    vars(inference_model).pop("prepare_inputs_for_generation", None)
    vars(inference_model.text_pos_embedding).pop("get_fixed_embedding", None)


@contextlib.contextmanager
def step_times(inference_model: Any) -> Iterator[list[float]]:
    """Wall time of each ``generate`` forward call (one per decoding step)."""
    times: list[float] = []
    forward = inference_model.forward

    @functools.wraps(forward)  # generate validates its kwargs against this signature
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = forward(*args, **kwargs)
        times.append(time.perf_counter() - start)
        return out

    inference_model.forward = timed
    try:
        yield times
    finally:
        del inference_model.forward


# --- the reference side --------------------------------------------------------------


class StageTimer:
    """Wraps callables on instances so that their wall time adds to a stage; calls nested
    inside an already timed call are not counted again."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._depth = 0

    def wrap(self, owner: Any, attr: str, stage: str, on_result: Callable | None = None) -> None:
        original = getattr(owner, attr)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            start = time.perf_counter()
            try:
                out = original(*args, **kwargs)
            finally:
                self._depth -= 1
            if self._depth == 0:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start
            if on_result is not None:
                on_result(out)
            return out

        setattr(owner, attr, timed)


def _reference_inputs(tts: Any, voice: Path, text: str) -> tuple[Any, ...]:
    """Speaker features, emovec and the first segment's ids, as ``infer_generator``."""
    import torch

    spk_cond_emb, *_ = tts._get_speaker_conditioning(str(voice))
    emo_cond_emb = tts._get_emotion_conditioning(str(voice))
    tokens = tts.tokenizer.tokenize(text)
    segment = tts.tokenizer.split_segments(tokens, 120)[0]
    ids = torch.tensor(tts.tokenizer.convert_tokens_to_ids(segment), dtype=torch.int32)[None]
    lengths = torch.tensor([spk_cond_emb.shape[-1]])
    emovec = tts.gpt.merge_emovec(spk_cond_emb, emo_cond_emb, lengths, lengths, alpha=1.0)
    return spk_cond_emb, emo_cond_emb, ids, emovec


def verify_cache(tts: Any, voice: Path, codes: int = 24) -> list[str]:
    """Patched vs unpatched ``inference_speech``: same codes (greedy, 1 and 3 beams), and
    per-step forward times. Returns printable lines."""
    import torch

    inference = tts.gpt.inference_model
    spk, emo, ids, emovec = _reference_inputs(tts, voice, TEXTS["short"])
    lengths = torch.tensor([spk.shape[-1]])
    lines = []

    def run(n: int, beams: int, patched: bool) -> tuple[np.ndarray, list[float]]:
        (enable_kv_cache if patched else disable_kv_cache)(inference)
        with step_times(inference) as times, torch.no_grad():
            out, _ = tts.gpt.inference_speech(
                spk, ids, emo, cond_lengths=lengths, emo_cond_lengths=lengths, emo_vec=emovec,
                do_sample=False, num_beams=beams, length_penalty=0.0, repetition_penalty=10.0,
                top_p=0.8, top_k=30, temperature=0.8, max_generate_length=n,
            )  # fmt: skip
        return out.numpy(), list(times)

    for beams in (1, 3):
        plain, plain_t = run(codes, beams, patched=False)
        cached, cached_t = run(codes, beams, patched=True)
        same = plain.shape == cached.shape and bool((plain == cached).all())
        lines.append(
            f"cache check, greedy {beams} beam(s), {codes} codes: codes equal: {same}; "
            f"per-step ms (first 3 / last 3): without {_ms(plain_t[:3])} / {_ms(plain_t[-3:])}, "
            f"with {_ms(cached_t[:3])} / {_ms(cached_t[-3:])}; total {sum(plain_t):.1f} s vs "
            f"{sum(cached_t):.1f} s"
        )
        if not same:
            raise AssertionError(f"the KV cache patch changed the codes:\n{plain}\n{cached}")
    _, long_t = run(120, 3, patched=True)
    lines.append(
        f"cache check, greedy 3 beams, 120 codes with the patch: per-step ms at steps 2-11 "
        f"{np.mean(long_t[1:11]) * 1e3:.0f}, 56-65 {np.mean(long_t[55:65]) * 1e3:.0f}, "
        f"111-120 {np.mean(long_t[-10:]) * 1e3:.0f} (prefill {long_t[0] * 1e3:.0f})"
    )
    enable_kv_cache(inference)
    return lines


def _ms(times: list[float]) -> str:
    return "/".join(f"{t * 1e3:.0f}" for t in times)


def reference_worker(args: argparse.Namespace, voice: Path) -> dict[str, Any]:
    import torch

    from parity.pipeline_reference import build_reference, no_network
    from parity.reference import torchaudio_module
    from parity.text_corpus import bpe_model

    if args.cfm_steps != 25:
        raise SystemExit("infer_generator hardcodes 25 CFM steps: use --cfm-steps 25")
    torch.manual_seed(args.seed)
    reset_peak_rss()
    start = time.perf_counter()
    tts = build_reference(bpe_model(), seed=0)
    load_s = time.perf_counter() - start
    out: dict[str, Any] = {"load_s": load_s, "load_peak_rss_gb": peak_rss_gb(), "notes": []}
    out["threads"] = torch.get_num_threads()
    # The shim's torchaudio.transforms is a bare package: give it the real Resample (as
    # parity.pipeline_reference.run_reference does).
    resample = torchaudio_module("transforms._transforms").Resample
    torchaudio_module("compliance.kaldi")
    transforms = torchaudio_module("transforms")
    transforms.Resample = resample
    inference = tts.gpt.inference_model
    with torch.no_grad(), no_network(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if args.verify_cache:
            out["notes"] += verify_cache(tts, voice)
        if args.cache_patch:
            enable_kv_cache(inference)
        tts.gpt.mel_head.bias[STOP_MEL] = NO_STOP_BIAS

        timer = StageTimer()
        counts: list[int] = []

        def count_codes(result: Any) -> None:
            codes = result[0]
            stops = (codes[0] == STOP_MEL).nonzero()
            counts.append(int(stops[0, 0]) if len(stops) else int(codes.shape[1]))

        timer.wrap(tts, "_get_speaker_conditioning", "speaker")
        timer.wrap(tts, "_get_emotion_conditioning", "emotion")
        timer.wrap(tts.gpt, "inference_speech", "gpt generate", count_codes)
        timer.wrap(tts.gpt, "forward", "gpt latent")
        timer.wrap(tts.s2mel.models["gpt_layer"], "forward", "gpt latent")
        timer.wrap(tts.semantic_codec.quantizer, "vq2emb", "gpt latent")
        timer.wrap(tts.s2mel.models["length_regulator"], "forward", "s2mel")
        timer.wrap(tts.s2mel.models["cfm"], "inference", "s2mel")
        timer.wrap(tts.bigvgan, "forward", "bigvgan")

        def synth(text: str, codes: int) -> dict[str, Any]:
            tts._init_cache()  # the prompt is encoded in every run, as ours
            timer.seconds.clear()
            counts.clear()
            reset_peak_rss()
            start = time.perf_counter()
            outputs = list(
                tts.infer_generator(
                    str(voice), text, None, num_beams=args.beams, top_k=30, top_p=0.8,
                    temperature=0.8, repetition_penalty=10.0, max_mel_tokens=codes,
                )
            )  # fmt: skip
            total = time.perf_counter() - start
            sample_rate, wav = outputs[-1]
            assert sample_rate == SAMPLE_RATE
            stages = {s: timer.seconds.get(s, 0.0) for s in STAGES}
            return {
                "stages": stages,
                "total": total,
                "audio_s": len(wav) / SAMPLE_RATE,
                "codes": list(counts),
                "peak_rss_gb": peak_rss_gb(),
            }

        start = time.perf_counter()
        synth(WARMUP_TEXT, args.warmup_codes)
        out["warmup_s"] = time.perf_counter() - start
        out["runs"] = {name: synth(TEXTS[name], args.codes) for name in args.texts}
    return out


# --- our side ------------------------------------------------------------------------


def ours_worker(args: argparse.Namespace, voice: Path) -> dict[str, Any]:
    import mlx.core as mx

    from indextts_mlx import IndexTTS2, WeightsConfig
    from indextts_mlx.conditioning import ConditioningCache
    from parity.pipeline_stages import our_pipeline
    from parity.text_corpus import bpe_model

    reset_peak_rss()
    if args.weights is None:
        tts = our_pipeline(bpe_model())
    else:
        weights = WeightsConfig(weights_dir=args.weights, bpe_model=bpe_model())
        tts = IndexTTS2(weights, progress=False)
    start = time.perf_counter()
    tts.models.load_all()
    tts.front_end  # noqa: B018  (loads the text front end)
    load_s = time.perf_counter() - start
    blas = mlx_indextts_models.blas_status()
    out: dict[str, Any] = {"load_s": load_s, "load_peak_rss_gb": peak_rss_gb(), "notes": [],
                           "blas": f"{blas.name} ({blas.chosen_by})"}  # fmt: skip
    gpt = tts.models.gpt
    bias = np.array(gpt.mel_head.bias)
    bias[STOP_MEL] = NO_STOP_BIAS
    gpt.mel_head.bias = mx.array(bias)
    settings = dict(
        seed=args.seed, num_beams=args.beams, top_k=30, top_p=0.8, temperature=0.8,
        repetition_penalty=10.0, do_sample=True, cfm_steps=args.cfm_steps, cfg_rate=0.7,
    )  # fmt: skip

    def synth(text: str, codes: int) -> dict[str, Any]:
        tts.cache = ConditioningCache()  # the prompt is encoded in every run
        reset_peak_rss()
        mx.reset_peak_memory()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no stop code within max_codes": intended
            result = tts.render(text, voice, max_codes=codes, **settings)
        timings = result.timings
        return {
            "stages": {s: timings.get(key, 0.0) for s, key in OUR_KEYS.items()},
            "total": timings["total"],
            "audio_s": len(result.audio) / result.sample_rate,
            "codes": [len(s.codes) for s in result.segments],
            "peak_rss_gb": peak_rss_gb(),
            "mlx_peak_gb": mx.get_peak_memory() / 1e9,
        }

    start = time.perf_counter()
    synth(WARMUP_TEXT, args.warmup_codes)
    out["warmup_s"] = time.perf_counter() - start
    out["runs"] = {name: synth(TEXTS[name], args.codes) for name in args.texts}
    return out


# --- driver --------------------------------------------------------------------------


def voice_file(seconds: float, folder: Path) -> Path:
    """The ``speech_sentence`` clip (22,050 Hz) cut to ``seconds``, as a PCM-16 WAV."""
    import soundfile

    from clips import clip

    audio = clip("speech_sentence", SAMPLE_RATE)[: int(seconds * SAMPLE_RATE)]
    path = folder / f"voice_{seconds:g}s.wav"
    soundfile.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
    return path


def run_side(side: str, args: argparse.Namespace, voice: Path, folder: Path) -> dict[str, Any]:
    out = folder / f"{side}.json"
    cmd = [sys.executable, __file__, "--worker", side, "--voice", str(voice), "--out", str(out)]
    cmd += ["--texts", ",".join(args.texts), "--codes", str(args.codes)]
    cmd += ["--beams", str(args.beams), "--cfm-steps", str(args.cfm_steps)]
    cmd += ["--seed", str(args.seed), "--warmup-codes", str(args.warmup_codes)]
    cmd += [] if args.cache_patch else ["--no-cache-patch"]
    cmd += [] if args.weights is None else ["--weights", str(args.weights)]
    cmd += ["--verify-cache"] if args.verify_cache and side == "reference" else []
    env = dict(os.environ)
    if side == "ours":  # alone in its process: the bootstrap's own choice (parity.workspace)
        env["MLX_FAST_BLAS"] = workspace.CALLER_FAST_BLAS or "auto"
    load = os.getloadavg()[0]
    print(f"[{time.strftime('%H:%M:%S')}] running {side} (load average {load:.2f})", flush=True)
    subprocess.run(cmd, check=True, env=env)
    result = json.loads(out.read_text())
    result["load_before"] = load
    result["load_after"] = os.getloadavg()[0]
    print(f"{side}: {json.dumps(result)}", flush=True)  # raw numbers, kept if a later side fails
    return result


def report(args: argparse.Namespace, results: list[dict[str, dict[str, Any]]]) -> None:
    first = results[0]
    for side in ("ours", "reference"):
        for note in first.get(side, {}).get("notes", []):
            print(note)
    for i, res in enumerate(results):
        line = ", ".join(
            f"{side}: load {r['load_s']:.1f} s (peak RSS {r['load_peak_rss_gb']:.2f} GB), "
            f"warm-up {r['warmup_s']:.1f} s, load average {r['load_before']:.2f} -> "
            f"{r['load_after']:.2f}"
            for side, r in res.items()
        )
        print(f"repeat {i + 1}: {line}")
    if len(first) < 2:
        for side, r in first.items():
            for name, run in r["runs"].items():
                print(f"{side} {name}: {json.dumps(run)}")
        return
    for name in args.texts:
        ref = [r["reference"]["runs"][name] for r in results]
        ours = [r["ours"]["runs"][name] for r in results]
        best_ref = min(ref, key=lambda run: run["total"])
        best_ours = min(ours, key=lambda run: run["total"])
        ref_codes, our_codes = best_ref["codes"], best_ours["codes"]
        equal = "equal" if ref_codes == our_codes else "DIFFERENT"
        print(
            f"\ntext {name!r} ({len(TEXTS[name])} characters): codes per segment reference "
            f"{ref_codes}, ours {our_codes} ({equal}); best of {len(results)} run(s) per side"
        )
        print(f"{'stage':<14} {'reference s':>12} {'ours s':>9} {'ratio':>8}")
        rows = [(s, best_ref["stages"][s], best_ours["stages"][s]) for s in STAGES]
        rows.append(
            (
                "other",
                best_ref["total"] - sum(best_ref["stages"].values()),
                best_ours["total"] - sum(best_ours["stages"].values()),
            )
        )
        rows.append(("total", best_ref["total"], best_ours["total"]))
        for stage, r, o in rows:
            ratio = f"{r / o:7.2f}x" if o > 1e-3 else "     -"
            print(f"{stage:<14} {r:12.2f} {o:9.2f} {ratio:>8}")
        print(
            f"{'audio s':<14} {best_ref['audio_s']:12.2f} {best_ours['audio_s']:9.2f}\n"
            f"{'RTF':<14} {best_ref['total'] / best_ref['audio_s']:12.2f} "
            f"{best_ours['total'] / best_ours['audio_s']:9.2f}\n"
            f"{'peak RSS GB':<14} {best_ref['peak_rss_gb']:12.2f} {best_ours['peak_rss_gb']:9.2f}"
            f"   (per run, models loaded; ours MLX peak {best_ours['mlx_peak_gb']:.2f} GB)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--texts", default="short,200,1000", help="comma list of " + "/".join(TEXTS)
    )
    parser.add_argument("--codes", type=int, default=250, help="codes per segment (both)")
    parser.add_argument("--beams", type=int, default=3)
    parser.add_argument("--cfm-steps", type=int, default=25)
    parser.add_argument("--prompt-seconds", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs per side")
    parser.add_argument("--warmup-codes", type=int, default=8)
    parser.add_argument("--sides", default="ours,reference")
    parser.add_argument("--verify-cache", action="store_true", help="check the cache patch")
    parser.add_argument("--no-cache-patch", dest="cache_patch", action="store_false")
    parser.add_argument(
        "--weights",
        type=Path,
        help="our converted weights folder (default: the parity cache's CLI conversion)",
    )
    parser.add_argument("--worker", choices=("ours", "reference"), help=argparse.SUPPRESS)
    parser.add_argument("--voice", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.texts = [t.strip() for t in args.texts.split(",") if t.strip()]
    unknown = set(args.texts) - set(TEXTS)
    if unknown:
        parser.error(f"unknown texts {sorted(unknown)}; choose from {list(TEXTS)}")
    if args.worker:
        worker = ours_worker if args.worker == "ours" else reference_worker
        args.out.write_text(json.dumps(worker(args, args.voice)))
        return

    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    print(
        f"texts {args.texts}, {args.codes} codes per segment, {args.beams} beam(s) sampled, "
        f"{args.cfm_steps} CFM steps, {args.prompt_seconds:g} s voice prompt; reference KV "
        f"cache patch {'on' if args.cache_patch else 'off'}; {os.cpu_count()} CPUs",
        flush=True,
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        voice = voice_file(args.prompt_seconds, folder)
        for i in range(args.repeats):
            order = sides if i % 2 == 0 else sides[::-1]
            results.append({side: run_side(side, args, voice, folder) for side in order})
    report(args, results)


if __name__ == "__main__":
    main()
