"""The reference's audio features, called exactly as the reference calls them.

Shared by the feature parity tests, ``tests/compare_pytorch_mlx.py`` and the feature
benchmark. Inputs and outputs are numpy; torch stays inside.
"""

from __future__ import annotations

import numpy as np
import torch

from parity.reference import reference_module, torchaudio_module

# facebook/w2v-bert-2.0 preprocessor_config.json, as the reference loads it.
W2V_BERT_PREPROCESSOR = dict(
    feature_size=80,
    num_mel_bins=80,
    padding_value=1.0,
    stride=2,
    sampling_rate=16000,
    padding_side="right",
    return_attention_mask=True,
)


def torchaudio_fbank(audio_16k: np.ndarray) -> np.ndarray:
    """CAMPPlus input before mean removal: ``kaldi.fbank(audio_16k, 80 bins, dither 0)``."""
    kaldi = torchaudio_module("compliance.kaldi")
    wav = torch.from_numpy(audio_16k)[None]
    return kaldi.fbank(wav, num_mel_bins=80, dither=0, sample_frequency=16000).numpy()


def knf_fbank(audio_16k: np.ndarray) -> np.ndarray:
    """The same fbank from kaldi-native-fbank (an independent implementation)."""
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = 16000
    opts.mel_opts.num_bins = 80
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(16000, audio_16k.tolist())
    fbank.input_finished()
    return np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])


def seamless_reference(audio_16k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(input_features (T_w, 160), attention_mask (T_w,))`` of the w2v-bert extractor."""
    from transformers import SeamlessM4TFeatureExtractor

    extractor = SeamlessM4TFeatureExtractor(**W2V_BERT_PREPROCESSOR)
    out = extractor(torch.from_numpy(audio_16k)[None], sampling_rate=16000, return_tensors="pt")
    return out["input_features"][0].numpy(), out["attention_mask"][0].numpy()


def reference_mel(audio_22k: np.ndarray) -> np.ndarray:
    """S2Mel reference mel ``(1, 80, T)`` (``mel_spectrogram`` with the config's arguments)."""
    audio = reference_module("s2mel.modules.audio")
    wav = torch.from_numpy(audio_22k)[None]
    return audio.mel_spectrogram(
        wav,
        n_fft=1024,
        num_mels=80,
        sampling_rate=22050,
        hop_size=256,
        win_size=1024,
        fmin=0,
        fmax=None,
        center=False,
    ).numpy()


def reference_resample(audio_22k: np.ndarray) -> np.ndarray:
    """``torchaudio.transforms.Resample(22050, 16000)`` of a 22,050 Hz signal."""
    transforms = torchaudio_module("transforms._transforms")
    return transforms.Resample(22050, 16000)(torch.from_numpy(audio_22k)[None])[0].numpy()
