"""Framing and short-time Fourier transform on MLX arrays."""

from __future__ import annotations

from typing import Literal

import mlx.core as mx
import numpy as np

from mlx_audio_features._signal import Waveform, as_mono_float32
from mlx_audio_features.windows import hann_window

PadMode = Literal[
    "constant", "edge", "linear_ramp", "maximum", "mean", "median", "minimum", "reflect",
    "symmetric", "wrap", "empty",
]
"""The ``mode`` values :func:`numpy.pad` accepts (the padding used when ``center``)."""


def frame_signal(signal: mx.array, *, frame_length: int, hop_length: int) -> mx.array:
    """Cut a 1-D signal into overlapping frames without copying.

    Args:
        signal: ``(N,)`` array (made contiguous first if it is a strided view).
        frame_length: samples per frame.
        hop_length: samples between frame starts.

    Returns:
        ``(T, frame_length)`` with ``T = 1 + (N - frame_length) // hop_length``
        (0 frames when ``N < frame_length``), last partial frame dropped.
    """
    if frame_length < 1 or hop_length < 1:
        raise ValueError("frame_length and hop_length must be >= 1")
    n = signal.shape[0]
    if n < frame_length:
        return mx.zeros((0, frame_length), dtype=signal.dtype)
    num_frames = 1 + (n - frame_length) // hop_length
    signal = mx.contiguous(signal)
    return mx.as_strided(signal, shape=(num_frames, frame_length), strides=(hop_length, 1))


def stft_numpy(
    signal: np.ndarray,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    window: np.ndarray | None = None,
    center: bool = False,
    pad_mode: PadMode = "reflect",
) -> np.ndarray:
    """float64 one-sided STFT of a 1-D numpy signal (see :func:`stft`); complex128 ``(T, F)``."""
    win_length = n_fft if win_length is None else win_length
    window = hann_window(win_length) if window is None else np.asarray(window, np.float64)
    if window.shape != (win_length,) or win_length > n_fft:
        raise ValueError(f"window must have shape ({win_length},) with win_length <= n_fft")
    left = (n_fft - win_length) // 2
    window = np.pad(window, (left, n_fft - win_length - left))
    signal = np.asarray(signal, dtype=np.float64)
    if center:
        signal = np.pad(signal, (n_fft // 2, n_fft // 2), mode=pad_mode)
    if signal.shape[0] < n_fft:
        return np.zeros((0, n_fft // 2 + 1), dtype=np.complex128)
    frames = np.lib.stride_tricks.sliding_window_view(signal, n_fft)[::hop_length]
    return np.fft.rfft(frames * window, axis=-1)


def stft(
    waveform: Waveform,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    window: np.ndarray | None = None,
    center: bool = False,
    pad_mode: PadMode = "reflect",
) -> mx.array:
    """One-sided STFT with ``torch.stft`` conventions (no normalization).

    Computed in float64 (numpy's FFT), returned as complex64: float32 FFT round-off would
    put a noise floor ~60 dB under each frame's peak.

    Args:
        waveform: ``(N,)`` or ``(1, N)`` samples.
        n_fft: FFT size.
        hop_length: hop in samples.
        win_length: window length (default ``n_fft``); shorter windows are zero-padded
            to ``n_fft`` centred, as torch does.
        window: ``(win_length,)`` window; default periodic Hann.
        center: pad ``n_fft // 2`` on both sides with ``pad_mode`` first.
        pad_mode: numpy pad mode used when ``center``.

    Returns:
        complex64 ``(T, n_fft // 2 + 1)``, ``T = 1 + (N' - n_fft) // hop_length`` with
        ``N'`` the (padded) length.
    """
    spectrum = stft_numpy(
        as_mono_float32(waveform),
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
    )
    return mx.array(spectrum.astype(np.complex64))
