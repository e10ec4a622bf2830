#!/usr/bin/env python
"""Run the reference IndexTTS-2 and the MLX port on the same input; one row per stage.

Run in the parity venv::

    .venv-parity/bin/python tests/compare_pytorch_mlx.py --voice speaker.wav --save-dir out/

Prints ``name | shape | max|Δ| | cos_sim | pt_mean | mlx_mean`` (SPEC.md §5) for the stages
ported so far, and exits 1 when a stage is outside its tolerance. Stages today: the
audio front end (resampling, W2V-BERT input features, CAMPPlus fbank, S2Mel reference
mel). Model stages are added as they are ported; ``--text`` is accepted now and used by
the text and GPT stages when they exist.
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
from parity.reference import reference_module, torchaudio_module  # noqa: E402

PROMPT_SECONDS = 15  # the reference cuts prompts to 15 s
W2V_BERT_PREPROCESSOR = dict(
    feature_size=80, num_mel_bins=80, padding_value=1.0, stride=2, sampling_rate=16000
)
# max|Δ| per stage (SPEC.md §5 where listed); cos ≥ 0.99999 for all.
TOLERANCE = {
    "resample 16k": 1e-5,
    "seamless fbank": 1e-3,
    "seamless attention mask": 0.0,
    "emotion seamless fbank": 1e-3,
    "CAMPPlus fbank": 2e-2,  # float32 noise floor of torchaudio: see test_features_parity
    "reference mel": 2e-2,
}


def load_like_reference(path: Path, sr: int | None = None) -> np.ndarray:
    """``librosa.load`` (22,050 Hz by default), cut to 15 s: ``_load_and_cut_audio``."""
    import librosa

    audio, rate = librosa.load(str(path)) if sr is None else librosa.load(str(path), sr=sr)
    return audio[: int(PROMPT_SECONDS * rate)].astype(np.float32)


def reference_stages(audio_22k: np.ndarray, emo_16k: np.ndarray) -> dict[str, np.ndarray]:
    import torch
    from transformers import SeamlessM4TFeatureExtractor

    kaldi = torchaudio_module("compliance.kaldi")
    transforms = torchaudio_module("transforms._transforms")
    mel = reference_module("s2mel.modules.audio")
    extractor = SeamlessM4TFeatureExtractor(**W2V_BERT_PREPROCESSOR)

    wav_22k = torch.from_numpy(audio_22k)[None]
    wav_16k = transforms.Resample(22050, 16000)(wav_22k)
    inputs = extractor(wav_16k, sampling_rate=16000, return_tensors="pt")
    emo = extractor(torch.from_numpy(emo_16k)[None], sampling_rate=16000, return_tensors="pt")
    fbank = kaldi.fbank(wav_16k, num_mel_bins=80, dither=0, sample_frequency=16000)
    ref_mel = mel.mel_spectrogram(
        wav_22k,
        n_fft=1024,
        num_mels=80,
        sampling_rate=22050,
        hop_size=256,
        win_size=1024,
        fmin=0,
        fmax=None,
        center=False,
    )
    return {
        "resample 16k": wav_16k[0].numpy(),
        "seamless fbank": inputs["input_features"].numpy(),
        "seamless attention mask": inputs["attention_mask"].numpy(),
        "emotion seamless fbank": emo["input_features"].numpy(),
        "CAMPPlus fbank": (fbank - fbank.mean(dim=0, keepdim=True)).numpy(),
        "reference mel": ref_mel.numpy(),
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
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        voice = args.voice or default_voice(Path(tmp))
        if not voice.exists():
            parser.error(f"voice file not found: {voice}")
        audio_22k = load_like_reference(voice)
        emo_16k = load_like_reference(voice, sr=16000)
    ref, ours = reference_stages(audio_22k, emo_16k), mlx_stages(audio_22k, emo_16k)

    results: list[StageResult] = [compare(name, ref[name], ours[name]) for name in ref]
    print(
        f"voice: {voice.name if args.voice else 'espeak-ng speech_15s'}  "
        f"({len(audio_22k) / 22050:.2f} s used)  text: {args.text!r} (text stages not ported yet)"
    )
    print(format_table(results))
    if args.save_dir:
        args.save_dir.mkdir(parents=True, exist_ok=True)
        for name in ref:
            slug = name.replace(" ", "_")
            np.save(args.save_dir / f"pt_{slug}.npy", ref[name])
            np.save(args.save_dir / f"mlx_{slug}.npy", ours[name])
    failed = [r.name for r in results if r.max_abs > TOLERANCE[r.name] or r.cos < 0.99999]
    if failed:
        print(f"outside tolerance: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
