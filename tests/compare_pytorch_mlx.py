#!/usr/bin/env python
"""Run the reference IndexTTS-2 and the MLX port on the same input; one row per stage.

Run in the parity venv::

    .venv-parity/bin/python tests/compare_pytorch_mlx.py --voice speaker.wav --save-dir out/

Prints ``name | shape | max|Δ| | cos_sim | pt_mean | mlx_mean`` (SPEC.md §5) for the stages
ported so far, and exits 1 when a stage is outside its tolerance. Stages today: the
audio front end (resampling, W2V-BERT input features, CAMPPlus fbank, S2Mel reference
mel) the encoders (W2V-BERT hidden[17], normalized semantic features, semantic codec
codes and S_ref, CAMPPlus style), and the decoder (prompt and inference length regulator,
CFM mel, BigVGAN waveform), each side running from its own previous stage. Until the
text front end and GPT are wired in, ``S_infer`` is a seeded random ``(1, --codes, 1024)``
array, the same on both sides, and the CFM starts from the same noise on both sides. The
official weights cannot be downloaded here, so both sides use the seeded random
checkpoints the reference code writes in the official formats (``--seed``); ours are
converted by ``indextts-weights convert``. ``--text`` is used by the text and GPT stages
once they are ported.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from parity.reference import install_torchaudio_shim

install_torchaudio_shim()

import mlx_audio_features as F  # noqa: E402
from parity.harness import StageResult, compare, format_table  # noqa: E402
from parity.reference_features import (  # noqa: E402
    reference_mel,
    reference_resample,
    seamless_reference,
    torchaudio_fbank,
)

PROMPT_SECONDS = 15  # the reference cuts prompts to 15 s
# max|Δ| per stage (SPEC.md §5 where listed); cos ≥ 0.99999 for all.
TOLERANCE = {
    "resample 16k": 1e-5,
    "seamless fbank": 1e-3,
    "seamless attention mask": 0.0,
    "emotion seamless fbank": 1e-3,
    "CAMPPlus fbank": 2e-2,  # float32 noise floor of torchaudio: see test_features_parity
    "reference mel": 2e-2,
    "W2V-BERT hidden[17]": 3e-3,
    "normalized semantic features": 2e-3,
    "semantic_codec codes": 0.0,
    "semantic_codec S_ref": 5e-4,  # SPEC: 0.000
    "CAMPPlus speaker style": 1.5e-2,
    "prompt regulator": 1e-4,
    "inference regulator": 1e-4,  # same S_infer on both sides
    "CFM mel": 5e-3,  # same noise; measured 1.2e-6 (inputs carry the encoders' float noise)
    "BigVGAN waveform": 1e-3,  # as test_bigvgan_parity; measured 7.8e-8
}
# cos_sim per stage where SPEC.md §5 asks less than 0.99999.
MIN_COS = {"CFM mel": 0.9999, "BigVGAN waveform": 0.9999}


def load_like_reference(path: Path, sr: int | None = None) -> np.ndarray:
    """``librosa.load`` (22,050 Hz by default), cut to 15 s: ``_load_and_cut_audio``."""
    import librosa

    audio, rate = librosa.load(str(path)) if sr is None else librosa.load(str(path), sr=sr)
    return audio[: int(PROMPT_SECONDS * rate)].astype(np.float32)


def reference_stages(audio_22k: np.ndarray, emo_16k: np.ndarray) -> dict[str, np.ndarray]:
    audio_16k = reference_resample(audio_22k)
    features, mask = seamless_reference(audio_16k)
    fbank = torchaudio_fbank(audio_16k)
    return {
        "resample 16k": audio_16k,
        "seamless fbank": features[None],
        "seamless attention mask": mask[None],
        "emotion seamless fbank": seamless_reference(emo_16k)[0][None],
        "CAMPPlus fbank": fbank - fbank.mean(axis=0, keepdims=True),
        "reference mel": reference_mel(audio_22k),
    }


def mlx_stages(audio_22k: np.ndarray, emo_16k: np.ndarray) -> dict[str, np.ndarray]:
    audio_16k = F.resample(audio_22k, orig_freq=22050, new_freq=16000)
    features, mask = F.seamless_fbank(audio_16k)
    emo_features, _ = F.seamless_fbank(emo_16k)
    fbank = np.array(F.kaldi_fbank(audio_16k))
    return {
        "resample 16k": np.array(audio_16k),
        "seamless fbank": np.array(features)[None],
        "seamless attention mask": np.array(mask)[None],
        "emotion seamless fbank": np.array(emo_features)[None],
        "CAMPPlus fbank": fbank - fbank.mean(axis=0, keepdims=True),
        "reference mel": np.array(F.mel_spectrogram(audio_22k)),
    }


def add_encoder_stages(ref: dict, ours: dict, seed: int) -> None:
    """W2V-BERT, normalization, semantic codec and CAMPPlus, each side from its own features."""
    from parity.converted import CONVERTIBLE, converted_weights
    from parity.encoder_stages import mlx_encoders, reference_encoders

    weights = converted_weights(CONVERTIBLE, seed)
    inputs = {
        side: (s["seamless fbank"], s["seamless attention mask"], s["CAMPPlus fbank"])
        for side, s in (("ref", ref), ("ours", ours))
    }
    ref.update(reference_encoders(*inputs["ref"], seed=seed))
    ours.update(mlx_encoders(weights, *inputs["ours"]))


def add_decoder_stages(ref: dict, ours: dict, seed: int, codes: int, steps: int) -> None:
    """Length regulator (prompt and inference), CFM and BigVGAN, each side from its own
    ``S_ref``, reference mel and style; ``S_infer`` is the same seeded array on both sides."""
    from parity.converted import CONVERTIBLE, converted_weights
    from parity.s2mel_stages import mlx_decoder, reference_decoder, seeded_s_infer

    weights = converted_weights(CONVERTIBLE, seed)
    s_infer = seeded_s_infer(codes, seed)
    inputs = {
        side: (s["semantic_codec S_ref"], s["reference mel"], s["CAMPPlus speaker style"])
        for side, s in (("ref", ref), ("ours", ours))
    }
    ref.update(reference_decoder(*inputs["ref"], s_infer, steps=steps, seed=seed))
    ours.update(mlx_decoder(weights, *inputs["ours"], s_infer, steps=steps, seed=seed))


def default_voice(directory: Path) -> Path:
    from clips import clip_wav

    return clip_wav("speech_15s", directory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--voice",
        type=Path,
        help="speaker prompt (any format librosa reads); default: a 15 s espeak-ng clip",
    )
    parser.add_argument(
        "--text",
        default="Hello, this is a parity check.",
        help="text for the text/GPT stages (once ported)",
    )
    parser.add_argument("--save-dir", type=Path, help="write pt_<stage>.npy and mlx_<stage>.npy")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the random official-format checkpoints (default 0)",
    )
    parser.add_argument(
        "--codes",
        type=int,
        default=100,
        help="length n of the seeded random S_infer (1, n, 1024) standing for the GPT codes, "
        "the same array on both sides (default 100)",
    )
    parser.add_argument(
        "--steps", type=int, default=25, help="CFM Euler steps (default 25, as infer_v2)"
    )
    parser.add_argument(
        "--features-only",
        action="store_true",
        help="skip the model stages (no checkpoints are built or loaded)",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        voice = args.voice or default_voice(Path(tmp))
        if not voice.exists():
            parser.error(f"voice file not found: {voice}")
        audio_22k = load_like_reference(voice)
        emo_16k = load_like_reference(voice, sr=16000)
    ref, ours = reference_stages(audio_22k, emo_16k), mlx_stages(audio_22k, emo_16k)
    if not args.features_only:
        add_encoder_stages(ref, ours, args.seed)
        add_decoder_stages(ref, ours, args.seed, args.codes, args.steps)

    results: list[StageResult] = [compare(name, ref[name], ours[name]) for name in ref]
    print(
        f"voice: {voice.name if args.voice else 'espeak-ng speech_15s'}  "
        f"({len(audio_22k) / 22050:.2f} s used)  text: {args.text!r} (text stages not ported yet)"
    )
    if not args.features_only:
        print(
            f"S2Mel: S_infer = the same seeded random (1, {args.codes}, 1024) on both sides "
            f"(GPT not wired yet), CFM {args.steps} steps, cfg 0.7, the same start noise"
        )
    print(format_table(results))
    if args.save_dir:
        args.save_dir.mkdir(parents=True, exist_ok=True)
        for name in ref:
            slug = name.replace(" ", "_")
            np.save(args.save_dir / f"pt_{slug}.npy", ref[name])
            np.save(args.save_dir / f"mlx_{slug}.npy", ours[name])
    failed = [
        r.name
        for r in results
        if r.max_abs > TOLERANCE[r.name] or r.cos < MIN_COS.get(r.name, 0.99999)
    ]
    if failed:
        print(f"outside tolerance: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
