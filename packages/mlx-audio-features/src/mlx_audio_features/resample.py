"""Band-limited resampling identical to ``torchaudio.functional.resample`` (sinc, Hann window)."""

from __future__ import annotations

import math
from functools import lru_cache

import mlx.core as mx
import numpy as np

from mlx_audio_features._signal import Waveform, as_mono_float32
from mlx_audio_features.stft import frame_signal


@lru_cache(maxsize=16)
def _cached_kernel(orig: int, new: int, width: int, rolloff: float) -> tuple[np.ndarray, int]:
    kernel, pad = resample_kernel(orig, new, lowpass_filter_width=width, rolloff=rolloff)
    kernel.flags.writeable = False
    return kernel, pad


def resample_kernel(
    orig_freq: int,
    new_freq: int,
    *,
    lowpass_filter_width: int = 6,
    rolloff: float = 0.99,
) -> tuple[np.ndarray, int]:
    """Polyphase windowed-sinc kernel of torchaudio's ``sinc_interp_hann`` method.

    Frequencies are reduced by their gcd first (22050 -> 16000 becomes 441 -> 320).

    Returns:
        ``(kernel, width)``: float32 ``(new, 2 * width + orig)`` filters (one per output
        phase) and the zero padding ``width`` applied on the left.
    """
    gcd = math.gcd(int(orig_freq), int(new_freq))
    orig, new = int(orig_freq) // gcd, int(new_freq) // gcd
    base_freq = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base_freq)
    idx = np.arange(-width, width + orig, dtype=np.float64)[None, :] / orig
    # torchaudio builds the phase offsets in float32 before promoting to float64.
    phase = (np.arange(0, -new, -1, dtype=np.float32) / np.float32(new)).astype(np.float64)
    t = (phase[:, None] + idx) * base_freq
    t = np.clip(t, -lowpass_filter_width, lowpass_filter_width)
    window = np.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t = t * math.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        sinc = np.where(t == 0, 1.0, np.sin(t) / t)
    kernel = sinc * window * (base_freq / orig)
    return kernel.astype(np.float32), width


def resample(
    waveform: Waveform,
    *,
    orig_freq: int,
    new_freq: int,
    lowpass_filter_width: int = 6,
    rolloff: float = 0.99,
) -> mx.array:
    """Resample like ``torchaudio.transforms.Resample(orig_freq, new_freq)``.

    The reference turns its 22,050 Hz prompt into 16 kHz this way (Hann-windowed sinc,
    ``lowpass_filter_width=6``, ``rolloff=0.99``).

    Args:
        waveform: ``(N,)`` or ``(1, N)`` samples at ``orig_freq`` Hz.

    Returns:
        float32 ``(ceil(N * new / orig),)`` at ``new_freq`` Hz (gcd-reduced ratio).
    """
    signal = as_mono_float32(waveform)
    if orig_freq <= 0 or new_freq <= 0:
        raise ValueError("sample rates must be positive")
    if orig_freq == new_freq:
        return mx.array(signal)
    kernel, width = _cached_kernel(int(orig_freq), int(new_freq), lowpass_filter_width, rolloff)
    gcd = math.gcd(int(orig_freq), int(new_freq))
    orig, new = int(orig_freq) // gcd, int(new_freq) // gcd
    padded = np.pad(signal, (width, width + orig))
    frames = frame_signal(mx.array(padded), frame_length=kernel.shape[1], hop_length=orig)
    out = (frames @ mx.array(kernel.T)).reshape(-1)
    target = math.ceil(new * signal.shape[0] / orig)
    return out[:target]
