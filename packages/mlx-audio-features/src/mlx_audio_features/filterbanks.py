"""Mel filterbanks: Kaldi's (triangles in mel space) and librosa's Slaney filters."""

from __future__ import annotations

import numpy as np


def kaldi_mel_scale(freq_hz: np.ndarray) -> np.ndarray:
    """Kaldi/HTK mel scale: ``1127 ln(1 + f / 700)``."""
    return 1127.0 * np.log1p(np.asarray(freq_hz, dtype=np.float64) / 700.0)


def kaldi_mel_banks(
    *,
    num_bins: int = 80,
    n_fft: int = 512,
    sample_frequency: float = 16000.0,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
) -> np.ndarray:
    """Kaldi's mel filterbank (``torchaudio.compliance.kaldi.get_mel_banks``, no VTLN).

    Triangles are linear in the mel domain. ``high_freq <= 0`` is an offset from
    Nyquist, as in Kaldi.

    Returns:
        float64 array ``(num_bins, n_fft // 2 + 1)``; the Nyquist column is zero.
    """
    nyquist = 0.5 * sample_frequency
    if high_freq <= 0.0:
        high_freq += nyquist
    if not 0.0 <= low_freq < high_freq <= nyquist:
        raise ValueError(f"bad mel range low={low_freq} high={high_freq} (nyquist {nyquist})")
    num_fft_bins = n_fft // 2
    mel_low, mel_high = kaldi_mel_scale(np.array([low_freq, high_freq]))
    delta = (mel_high - mel_low) / (num_bins + 1)
    index = np.arange(num_bins, dtype=np.float64)[:, None]
    left, center, right = (mel_low + (index + k) * delta for k in (0, 1, 2))
    mel = kaldi_mel_scale(sample_frequency / n_fft * np.arange(num_fft_bins))[None, :]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = np.maximum(0.0, np.minimum(up, down))
    return np.pad(banks, ((0, 0), (0, 1)))


def _slaney_hz_to_mel(freq_hz: np.ndarray) -> np.ndarray:
    freq_hz = np.asarray(freq_hz, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    mel = freq_hz / f_sp
    high = freq_hz >= min_log_hz
    mel[high] = min_log_mel + np.log(freq_hz[high] / min_log_hz) / logstep
    return mel


def _slaney_mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    freq = f_sp * mel
    high = mel >= min_log_mel
    freq[high] = min_log_hz * np.exp(logstep * (mel[high] - min_log_mel))
    return freq


def mel_filters(
    *,
    sr: float,
    n_fft: int,
    n_mels: int = 80,
    fmin: float = 0.0,
    fmax: float | None = None,
) -> np.ndarray:
    """Slaney-style, Slaney-normalized mel filterbank (librosa's ``filters.mel`` defaults).

    Args:
        sr: sample rate in Hz.
        n_fft: FFT size; the filters cover ``n_fft // 2 + 1`` bins.
        n_mels: number of filters.
        fmin, fmax: band edges in Hz; ``fmax=None`` means ``sr / 2``.

    Returns:
        float32 array ``(n_mels, n_fft // 2 + 1)``.
    """
    fmax = sr / 2.0 if fmax is None else float(fmax)
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_edges = np.linspace(
        _slaney_hz_to_mel(np.array([fmin]))[0], _slaney_hz_to_mel(np.array([fmax]))[0], n_mels + 2
    )
    hz_edges = _slaney_mel_to_hz(mel_edges)
    widths = np.diff(hz_edges)
    ramps = hz_edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights: np.ndarray = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_edges[2:] - hz_edges[:-2]))[:, None]
    return weights.astype(np.float32)
