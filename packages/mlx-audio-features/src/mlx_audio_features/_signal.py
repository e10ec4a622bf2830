"""Input coercion shared by the feature functions."""

from __future__ import annotations

from typing import Union

import mlx.core as mx
import numpy as np

Waveform = Union[np.ndarray, mx.array, "list[float]"]


def as_mono_float32(waveform: Waveform, *, name: str = "waveform") -> np.ndarray:
    """Return ``waveform`` as a 1-D contiguous float32 numpy array.

    Accepts shape ``(N,)`` or a single channel ``(1, N)``; anything else is an error
    (mix multi-channel audio down before calling a feature function).
    """
    array = np.asarray(waveform, dtype=np.float32)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1:
        raise ValueError(f"{name} must have shape (N,) or (1, N), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite samples")
    return np.ascontiguousarray(array)
