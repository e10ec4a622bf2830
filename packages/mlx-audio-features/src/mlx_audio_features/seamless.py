"""SeamlessM4T / W2V-BERT 2.0 input features (``SeamlessM4TFeatureExtractor``)."""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx
import numpy as np

from mlx_audio_features._signal import Waveform, as_mono_float32
from mlx_audio_features.filterbanks import kaldi_mel_banks
from mlx_audio_features.kaldi import frames_numpy, kaldi_power_spectrum, log_mel_energies
from mlx_audio_features.windows import povey_window

# facebook/w2v-bert-2.0 preprocessor_config.json: padding_value 1, stride 2.
W2V_BERT_PADDING_VALUE = 1.0
W2V_BERT_STRIDE = 2


class SeamlessFeatures(NamedTuple):
    """Stacked, normalized fbank features and their mask.

    Attributes:
        input_features: float32 ``(T_w, 80 * stride)``.
        attention_mask: int32 ``(T_w,)``; 0 marks the stacked frame holding padding.
    """

    input_features: mx.array
    attention_mask: mx.array


def seamless_fbank(
    waveform: Waveform,
    *,
    sampling_rate: int = 16000,
    num_mel_bins: int = 80,
    stride: int = W2V_BERT_STRIDE,
    padding_value: float = W2V_BERT_PADDING_VALUE,
    normalize: bool = True,
) -> SeamlessFeatures:
    """W2V-BERT 2.0 features for one utterance, as the reference computes them.

    Same meaning as ``SeamlessM4TFeatureExtractor(...)(audio, sampling_rate=16000)`` with
    the w2v-bert-2.0 preprocessor config: samples scaled by 2**15; 25 ms povey frames
    every 10 ms (snip edges), DC removal, pre-emphasis 0.97, 512-point power spectrum,
    80 Kaldi mel bins (20 Hz - Nyquist), log floored at float32 epsilon; each bin
    normalized over time (mean, ``var`` with ddof=1, ``+1e-7``); the frame count padded
    to a multiple of ``stride`` with ``padding_value`` (mask 0); then ``stride``
    consecutive frames stacked. The stacked frame's mask is the mask of its last frame.

    Args:
        waveform: ``(N,)`` or ``(1, N)`` samples in [-1, 1] at 16 kHz.
        sampling_rate: must be 16000 (the extractor's rate).

    Returns:
        :class:`SeamlessFeatures` with ``T_w = ceil(T / stride)``, ``T = 1 + (N - 400) // 160``.
    """
    if sampling_rate != 16000:
        raise ValueError(f"seamless_fbank expects 16 kHz audio, got {sampling_rate} Hz")
    signal = as_mono_float32(waveform) * np.float32(2**15)
    frames = frames_numpy(signal, 400, 160)
    if frames.shape[0] < 2:
        raise ValueError(
            f"waveform of {signal.shape[0]} samples gives {frames.shape[0]} frame(s); "
            "at least 2 (560 samples) are needed to normalize"
        )
    # The extractor rounds the (float64) FFT to complex64 and normalizes in float32 over a
    # transposed (column-major) array. Doing exactly the same keeps bins of near-zero
    # variance (pure tones, silence), where normalization amplifies float32 round-off of
    # the mean into O(0.1) values, equal to it.
    power = kaldi_power_spectrum(
        frames, window=povey_window(400), n_fft=512, spectrum_dtype=np.complex64
    )
    banks = kaldi_mel_banks(num_bins=num_mel_bins, n_fft=512, sample_frequency=sampling_rate)
    log_mel = np.asfortranarray(log_mel_energies(power, banks).astype(np.float32))
    if normalize:
        mean = log_mel.mean(axis=0, keepdims=True)
        var = log_mel.var(axis=0, ddof=1, keepdims=True)
        log_mel = (log_mel - mean) / np.sqrt(var + np.float32(1e-7))
    features = mx.array(log_mel)
    num_frames = features.shape[0]
    pad = (-num_frames) % stride
    mask = mx.concatenate([mx.ones(num_frames, mx.int32), mx.zeros(pad, mx.int32)])
    if pad:
        filler = mx.full((pad, num_mel_bins), padding_value, dtype=features.dtype)
        features = mx.concatenate([features, filler], axis=0)
    stacked = features.reshape(-1, num_mel_bins * stride)
    return SeamlessFeatures(stacked, mask[stride - 1 :: stride])
