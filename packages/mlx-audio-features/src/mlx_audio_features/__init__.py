"""Audio front-end features in MLX/numpy: Kaldi fbank, SeamlessM4T fbank, mel spectrogram.

Importing this package first loads an optimized BLAS on Linux (see
:mod:`mlx_audio_features.fast_blas`); the feature functions below need only mlx and numpy.
"""

from mlx_audio_features.fast_blas import blas_status, ensure_fast_blas

ensure_fast_blas()

from mlx_audio_features.filterbanks import kaldi_mel_banks, mel_filters  # noqa: E402
from mlx_audio_features.kaldi import kaldi_fbank  # noqa: E402
from mlx_audio_features.mel import mel_spectrogram  # noqa: E402
from mlx_audio_features.resample import resample, resample_kernel  # noqa: E402
from mlx_audio_features.seamless import SeamlessFeatures, seamless_fbank  # noqa: E402
from mlx_audio_features.stft import frame_signal, stft  # noqa: E402
from mlx_audio_features.windows import hann_window, povey_window  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "SeamlessFeatures",
    "blas_status",
    "ensure_fast_blas",
    "frame_signal",
    "hann_window",
    "kaldi_fbank",
    "kaldi_mel_banks",
    "mel_filters",
    "mel_spectrogram",
    "povey_window",
    "resample",
    "resample_kernel",
    "seamless_fbank",
    "stft",
]
