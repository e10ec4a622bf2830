"""Log-magnitude mel spectrogram (IndexTTS-2 S2Mel/BigVGAN), checked against librosa."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest

from mlx_audio_features import mel_spectrogram

librosa = pytest.importorskip("librosa")


def _signal(n, sr=22050, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 2500 * t + 1.0)
    x += 0.02 * rng.standard_normal(n)
    x[n // 2 : n // 2 + 2000] = 0.0
    return x.astype(np.float32)


def _reference(x, *, sr, n_fft, hop_length, win_length, n_mels, fmin=0.0, fmax=None, clip=1e-5):
    """The reference recipe with librosa's STFT and mel basis (``mel_spectrogram``'s names)."""
    hop, win = hop_length, win_length
    pad = (n_fft - hop) // 2
    padded = np.pad(x.astype(np.float64), (pad, pad), mode="reflect")
    spec = librosa.stft(
        padded, n_fft=n_fft, hop_length=hop, win_length=win, window="hann", center=False
    )
    magnitude = np.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    return np.log(np.maximum(basis.astype(np.float64) @ magnitude, clip))


@pytest.mark.parametrize("n", [385, 1000, 1024, 22050, 22051, 40000])
def test_frame_count(n):
    mel = mel_spectrogram(_signal(n))
    assert mel.dtype == mx.float32
    assert mel.shape == (1, 80, 1 + (n + 2 * 384 - 1024) // 256)


def test_matches_librosa_recomputation():
    x = _signal(22050)
    mel = np.array(mel_spectrogram(x))[0]
    expected = _reference(x, sr=22050, n_fft=1024, hop_length=256, win_length=1024, n_mels=80)
    assert mel.shape == expected.shape == (80, 86)
    np.testing.assert_allclose(mel, expected, rtol=0, atol=1e-4)


def test_other_configuration_matches_librosa_recomputation():
    # shorter window than FFT (zero-padded, centred), band-limited filters
    x = _signal(16000, sr=16000, seed=1)
    options = dict(
        sr=16000, n_fft=512, hop_length=128, win_length=400, n_mels=64, fmin=50.0, fmax=7600.0
    )
    mel = np.array(mel_spectrogram(x, **options))[0]
    expected = _reference(x, **options)
    assert mel.shape == expected.shape == (64, 1 + (16000 + 2 * 192 - 512) // 128)
    np.testing.assert_allclose(mel, expected, rtol=0, atol=1e-4)


def test_silence_is_the_clipped_magnitude_floor():
    # |X| = sqrt(0 + 1e-9) in every bin, so mel_i = sqrt(1e-9) * sum_k filter_ik, which
    # is ~1.5e-6 for Slaney filters at 21.5 Hz bins: below 1e-5, so log(1e-5) everywhere
    mel = np.array(mel_spectrogram(np.zeros(5000, np.float32)))[0]
    row_sums = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80).astype(np.float64).sum(1)
    assert np.all(math.sqrt(1e-9) * row_sums < 1e-5)
    np.testing.assert_allclose(mel, math.log(1e-5), rtol=0, atol=1e-6)
    assert float(mel[0, 0]) == pytest.approx(-11.512925, abs=1e-6)


def test_silence_with_a_lower_clip_shows_the_epsilon_in_the_magnitude():
    mel = np.array(mel_spectrogram(np.zeros(5000, np.float32), clip_val=1e-12))[0]
    row_sums = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80).astype(np.float64).sum(1)
    expected = np.log(np.maximum(math.sqrt(1e-9) * row_sums, 1e-12))
    assert mel.shape[1] == 1 + (5000 + 768 - 1024) // 256
    np.testing.assert_allclose(mel, np.repeat(expected[:, None], mel.shape[1], 1), atol=1e-5)


def test_tone_peaks_in_the_filter_centred_nearest_to_it():
    t = np.arange(22050) / 22050
    x = (0.5 * np.sin(2 * np.pi * 1500 * t)).astype(np.float32)
    mel = np.array(mel_spectrogram(x))[0]
    centres = librosa.mel_frequencies(n_mels=82, fmin=0.0, fmax=11025.0)[1:-1]
    np.testing.assert_array_equal(mel.argmax(axis=0), np.argmin(np.abs(centres - 1500)))


def test_accepts_single_channel_2d_and_lists():
    x = _signal(3000, seed=2)
    ref = np.array(mel_spectrogram(x))
    np.testing.assert_array_equal(np.array(mel_spectrogram(x[None])), ref)
    np.testing.assert_array_equal(np.array(mel_spectrogram(x.tolist())), ref)


@pytest.mark.parametrize("n", [1, 100, 384])
def test_rejects_input_too_short_for_reflect_padding(n):
    with pytest.raises(ValueError, match="too short"):
        mel_spectrogram(np.zeros(n, np.float32))


def test_rejects_non_finite_input():
    x = _signal(3000)
    x[3] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        mel_spectrogram(x)
