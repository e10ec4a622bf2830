"""Kaldi-compatible log-mel filterbank (``torchaudio.compliance.kaldi.fbank``)."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np

from mlx_audio_features._signal import Waveform, as_mono_float32
from mlx_audio_features.filterbanks import kaldi_mel_banks
from mlx_audio_features.windows import hann_window, povey_window

FLOAT32_EPS = float(np.finfo(np.float32).eps)


def kaldi_window(window_type: str, length: int) -> np.ndarray:
    """Kaldi's window functions (symmetric): povey, hanning, hamming, rectangular, blackman."""
    n = np.arange(length, dtype=np.float64)
    a = 2.0 * np.pi / (length - 1)
    if window_type == "povey":
        return povey_window(length)
    if window_type == "hanning":
        return hann_window(length, periodic=False)
    if window_type == "hamming":
        return 0.54 - 0.46 * np.cos(a * n)
    if window_type == "rectangular":
        return np.ones(length, dtype=np.float64)
    if window_type == "blackman":
        return 0.42 - 0.5 * np.cos(a * n) + 0.08 * np.cos(2 * a * n)
    raise ValueError(f"unknown window_type {window_type!r}")


def frames_numpy(signal: np.ndarray, size: int, shift: int, snip_edges: bool = True) -> np.ndarray:
    """Kaldi framing of a 1-D signal as a read-only ``(T, size)`` view.

    ``snip_edges=True`` drops partial frames; ``False`` centres frames on multiples of
    the shift, extending the signal by reflection at both ends, as Kaldi does.
    """
    if snip_edges:
        if signal.shape[0] < size:
            return np.zeros((0, size), dtype=signal.dtype)
        return np.lib.stride_tricks.sliding_window_view(signal, size)[::shift]
    num_frames = (signal.shape[0] + shift // 2) // shift
    pad = size // 2 - shift // 2
    reversed_signal = signal[::-1]
    if pad > 0:
        extended = np.concatenate([reversed_signal[-pad:], signal, reversed_signal])
    else:
        extended = np.concatenate([signal[-pad:], reversed_signal])
    return np.lib.stride_tricks.sliding_window_view(extended, size)[::shift][:num_frames]


def kaldi_power_spectrum(
    frames: np.ndarray,
    *,
    window: np.ndarray,
    n_fft: int,
    preemphasis_coefficient: float = 0.97,
    remove_dc_offset: bool = True,
    power: float = 2.0,
    spectrum_dtype: type = np.complex128,
) -> np.ndarray:
    """Kaldi's per-frame processing: DC removal, pre-emphasis, window, |FFT|^power.

    Computed in float64: float32 FFT round-off puts a noise floor about 60 dB below a
    frame's power, where float32 implementations (torchaudio, kaldi-native-fbank)
    disagree with each other by up to ~1e-2 in log energy; in float64 ours sits at the
    centre of that spread. Pre-emphasis treats the sample before the frame start as the
    first sample (``x[0] -= c * x[0]``), as Kaldi does.

    Args:
        frames: ``(T, L)`` raw frames.
        window: ``(L,)`` analysis window.
        n_fft: FFT size (>= L; frames are zero-padded).
        power: 2.0 for power, 1.0 for magnitude.
        spectrum_dtype: precision the FFT result is rounded to before taking its power
            (``np.complex64`` reproduces ``transformers``' spectrogram, which stores it so).

    Returns:
        float64 ``(T, n_fft // 2 + 1)``.
    """
    frames = np.array(frames, dtype=np.float64)  # a private copy, modified in place below
    if remove_dc_offset:
        frames -= frames.mean(axis=1, keepdims=True)
    if preemphasis_coefficient != 0.0:
        frames[:, 1:] -= preemphasis_coefficient * frames[:, :-1]
        frames[:, 0] *= 1.0 - preemphasis_coefficient
    frames *= window
    spectrum = np.fft.rfft(frames, n=n_fft, axis=-1)
    if spectrum_dtype != np.complex128:
        spectrum = spectrum.astype(spectrum_dtype)
    real = spectrum.real.astype(np.float64)
    imag = spectrum.imag.astype(np.float64)
    magnitude_sq = real * real
    magnitude_sq += imag * imag
    return magnitude_sq if power == 2.0 else magnitude_sq ** (power / 2.0)


def log_mel_energies(power: np.ndarray, banks: np.ndarray, *, log: bool = True) -> np.ndarray:
    """``log(max(power @ banks.T, float32 eps))`` in float64 (Kaldi's log floor)."""
    energies: np.ndarray = power @ banks.astype(np.float64).T
    return np.log(np.maximum(energies, FLOAT32_EPS)) if log else energies


def kaldi_fbank(
    waveform: Waveform,
    *,
    sample_frequency: float = 16000.0,
    num_mel_bins: int = 80,
    frame_length: float = 25.0,
    frame_shift: float = 10.0,
    dither: float = 0.0,
    preemphasis_coefficient: float = 0.97,
    remove_dc_offset: bool = True,
    window_type: str = "povey",
    round_to_power_of_two: bool = True,
    snip_edges: bool = True,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    use_power: bool = True,
    use_log_fbank: bool = True,
) -> mx.array:
    """Kaldi-compatible filterbank features, as ``torchaudio.compliance.kaldi.fbank``.

    The defaults are torchaudio's, which is how the reference feeds CAMPPlus
    (``fbank(audio_16k, num_mel_bins=80, dither=0, sample_frequency=16000)``). The
    waveform is used as given (no 16-bit scaling).

    Args:
        waveform: ``(N,)`` or ``(1, N)`` samples at ``sample_frequency`` Hz.
        sample_frequency: Hz.
        num_mel_bins: number of mel filters.
        frame_length, frame_shift: milliseconds.
        dither: Gaussian dither amplitude (0 = deterministic; >0 draws fresh noise
            from numpy's default generator on every call).
        snip_edges: True drops partial frames at the end; False centres frames on
            multiples of the shift, reflecting the signal at the edges.
        low_freq, high_freq: mel band edges in Hz (``high_freq <= 0`` is an offset
            from Nyquist).
        use_power: power (True) or magnitude spectrum.
        use_log_fbank: log of the energies floored at float32 epsilon.

    Returns:
        float32 ``(T, num_mel_bins)``; ``T = 1 + (N - 400) // 160`` at the defaults.
    """
    signal = as_mono_float32(waveform)
    size = int(sample_frequency * frame_length * 0.001)
    shift = int(sample_frequency * frame_shift * 0.001)
    if signal.shape[0] < size:
        raise ValueError(
            f"waveform of {signal.shape[0]} samples is shorter than one frame ({size})"
        )
    n_fft = 2 ** math.ceil(math.log2(size)) if round_to_power_of_two else size
    frames = frames_numpy(signal, size, shift, snip_edges)
    if dither != 0.0:
        frames = frames + dither * np.random.default_rng().standard_normal(frames.shape)
    spectrum = kaldi_power_spectrum(
        frames,
        window=kaldi_window(window_type, size),
        n_fft=n_fft,
        preemphasis_coefficient=preemphasis_coefficient,
        remove_dc_offset=remove_dc_offset,
        power=2.0 if use_power else 1.0,
    )
    banks = kaldi_mel_banks(
        num_bins=num_mel_bins,
        n_fft=n_fft,
        sample_frequency=sample_frequency,
        low_freq=low_freq,
        high_freq=high_freq,
    )
    return mx.array(log_mel_energies(spectrum, banks, log=use_log_fbank).astype(np.float32))
