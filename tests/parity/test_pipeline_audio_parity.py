"""Prompt audio parity: ``indextts_mlx.audio`` vs the reference's own loading code.

The reference's ``IndexTTS2._load_and_cut_audio`` is taken from the installed
``infer_v2.py`` source (compiled on its own, so ``infer_v2`` and its imports, which
change global warning filters, are not loaded) and called exactly as ``infer_v2`` calls
it: for the speaker, ``(path, 15)`` then ``torchaudio.transforms.Resample(sr, 22050)``
and ``Resample(sr, 16000)``; for the emotion audio, ``(path, 15, sr=16000)``.

Inputs are real speech clips written as files the way users supply them: 16 kHz mono
PCM-16, 24 kHz mono float, 44.1 kHz stereo PCM-16 of 30 s (exercises the mixdown and
the 15 s cut). Tolerance: max|Δ| ≤ 1e-6 (resampling is float32 on both sides).
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import numpy as np
import pytest

import mlx_audio_features as F
from clips import clip
from indextts_mlx.audio import load_emotion_audio, load_speaker_audio
from parity.harness import assert_close, compare
from parity.reference import reference_root, torchaudio_module

TOL = 1e-6


def _reference_load_and_cut_audio():
    """``IndexTTS2._load_and_cut_audio`` compiled from the reference source."""
    import librosa
    import torch

    source = (reference_root() / "infer_v2.py").read_text()
    tree = ast.parse(source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "IndexTTS2")
    fn = next(
        n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "_load_and_cut_audio"
    )
    namespace = {"librosa": librosa, "torch": torch, "logger": logging.getLogger("reference")}
    exec(compile(ast.Module([fn], type_ignores=[]), "infer_v2.py", "exec"), namespace)
    return namespace["_load_and_cut_audio"]


def reference_speaker(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(audio_22k, audio_16k)`` as ``IndexTTS2._get_speaker_conditioning`` makes them."""
    transforms = torchaudio_module("transforms._transforms")
    audio, sr = _reference_load_and_cut_audio()(None, str(path), 15)
    audio_22k = transforms.Resample(sr, 22050)(audio)
    audio_16k = transforms.Resample(sr, 16000)(audio)
    return audio_22k[0].numpy(), audio_16k[0].numpy()


def reference_emotion(path: Path) -> np.ndarray:
    """The 16 kHz emotion audio as ``IndexTTS2._get_emotion_conditioning`` loads it."""
    audio, _ = _reference_load_and_cut_audio()(None, str(path), 15, sr=16000)
    return audio[0].numpy()


def _write_case(case: str, folder: Path) -> Path:
    import soundfile as sf

    path = folder / f"{case}.wav"
    if case == "hello_16k_pcm16":
        sf.write(path, clip("speech_hello", 16000), 16000, subtype="PCM_16")
    elif case == "sentence_24k_float":
        audio = np.array(
            F.resample(clip("speech_sentence", 22050), orig_freq=22050, new_freq=24000)
        )
        sf.write(path, audio, 24000, subtype="FLOAT")
    elif case == "speech30s_44k_stereo":
        left = np.array(F.resample(clip("speech_30s", 22050), orig_freq=22050, new_freq=44100))
        right = 0.6 * np.roll(left, 441)  # a different, delayed second channel
        sf.write(path, np.stack([left, right], axis=1), 44100, subtype="PCM_16")
    else:
        raise KeyError(case)
    return path


CASES = ("hello_16k_pcm16", "sentence_24k_float", "speech30s_44k_stereo")


@pytest.mark.parametrize("case", CASES)
def test_prompt_audio_matches_reference(case, tmp_path, record):
    path = _write_case(case, tmp_path)
    ref_22k, ref_16k = reference_speaker(path)
    ours = load_speaker_audio(path)
    r22 = record(compare(f"speaker audio 22k [{case}]", ref_22k, ours.audio_22k))
    r16 = record(compare(f"speaker audio 16k [{case}]", ref_16k, ours.audio_16k))
    emo = record(
        compare(f"emotion audio 16k [{case}]", reference_emotion(path), load_emotion_audio(path))
    )
    assert r22.max_abs == 0.0  # both sides are librosa.load + the same cut
    assert_close(r16, max_abs=TOL, min_cos=0.9999999)
    assert emo.max_abs == 0.0
    if case == "speech30s_44k_stereo":
        assert ours.audio_22k.shape == (330750,) and ours.audio_16k.shape == (240000,)


def test_stereo_mixdown_is_the_channel_mean(tmp_path):
    """librosa (ours and the reference's) averages the channels."""
    import soundfile as sf

    path = _write_case("speech30s_44k_stereo", tmp_path)
    both, sr = sf.read(path, dtype="float32", always_2d=True)
    import librosa

    expected = librosa.resample(both.mean(axis=1), orig_sr=sr, target_sr=22050)[:330750]
    np.testing.assert_allclose(load_speaker_audio(path).audio_22k, expected, atol=1e-6)
