"""Log-mel spectrogram as IndexTTS-2's S2Mel/BigVGAN computes it."""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from mlx_audio_features._signal import Waveform, as_mono_float32
from mlx_audio_features.filterbanks import mel_filters
from mlx_audio_features.stft import stft_numpy
from mlx_audio_features.windows import hann_window


def mel_spectrogram(
    waveform: Waveform,
    *,
    sr: int = 22050,
    n_fft: int = 1024,
    hop_length: int = 256,
    win_length: int = 1024,
    n_mels: int = 80,
    fmin: float = 0.0,
    fmax: float | None = None,
    center: bool = False,
    clip_val: float = 1e-5,
) -> mx.array:
    """Log-magnitude mel spectrogram (``indextts/s2mel/modules/audio.py: mel_spectrogram``).

    Computed in float64 (the reference's float32 STFT has a round-off floor ~60 dB under
    each frame's peak; ours does not) and returned as float32.

    The signal is reflect-padded by ``(n_fft - hop_length) // 2`` on both sides, then a
    periodic-Hann STFT (``center`` as given; the reference uses ``False``); magnitude
    ``sqrt(re^2 + im^2 + 1e-9)``; Slaney mel filters (librosa defaults; ``fmax=None`` is
    ``sr / 2``, which is what the reference passes); ``log(max(x, clip_val))``.

    Args:
        waveform: ``(N,)`` or ``(1, N)`` samples at ``sr`` Hz (N > (n_fft - hop) / 2).

    Returns:
        float32 ``(1, n_mels, T)`` with ``T = 1 + (N + 2p - n_fft) // hop_length``,
        ``p = (n_fft - hop_length) // 2`` (about ``N / hop_length``).
    """
    signal = as_mono_float32(waveform)
    pad = (n_fft - hop_length) // 2
    if signal.shape[0] <= pad:
        raise ValueError(f"waveform of {signal.shape[0]} samples is too short for reflect padding")
    signal = np.pad(signal, (pad, pad), mode="reflect")
    spectrum = stft_numpy(
        signal,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=hann_window(win_length),
        center=center,
    )
    magnitude = np.sqrt(spectrum.real**2 + spectrum.imag**2 + 1e-9)
    basis = mel_filters(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    mel = basis.astype(np.float64) @ magnitude.T
    return mx.array(np.log(np.maximum(mel, clip_val)).astype(np.float32))[None]
