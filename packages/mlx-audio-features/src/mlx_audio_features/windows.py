"""Analysis windows as float64 numpy arrays.

Kept in float64: a window rounded to float32 raises the spectral leakage floor to about
-140 dB, which the SeamlessM4T normalization (division by small per-bin deviations) turns
into visible differences on pure tones.
"""

from __future__ import annotations

import numpy as np


def hann_window(length: int, *, periodic: bool = True) -> np.ndarray:
    """Hann window of ``length`` samples (``torch.hann_window`` convention).

    ``periodic=True`` divides by ``length`` (the STFT convention), ``False`` by
    ``length - 1`` (symmetric).
    """
    if length < 1:
        raise ValueError(f"window length must be >= 1, got {length}")
    if length == 1:
        return np.ones(1, dtype=np.float64)
    denom = length if periodic else length - 1
    n = np.arange(length, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / denom)


def povey_window(length: int) -> np.ndarray:
    """Kaldi's "povey" window: a symmetric Hann window raised to the power 0.85."""
    n = np.arange(length, dtype=np.float64)
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / (length - 1))
    return hann**0.85
