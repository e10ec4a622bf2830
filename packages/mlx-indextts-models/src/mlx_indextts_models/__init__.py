"""Pure MLX model definitions for IndexTTS-2 (no file I/O).

Importing this package first runs the fast-BLAS bootstrap of ``mlx_audio_features`` so
that MLX uses an optimized BLAS on Linux CPU. The model modules (GPT, W2V-BERT,
CAMPPlus, semantic codec, S2Mel, BigVGAN) are added by the model issues.
"""

from mlx_audio_features.fast_blas import blas_status, ensure_fast_blas

ensure_fast_blas()

__version__ = "0.1.0"

__all__ = ["blas_status", "ensure_fast_blas"]
