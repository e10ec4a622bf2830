"""Pure layout transforms from PyTorch conventions to MLX conventions (numpy in, numpy out)."""

from __future__ import annotations

import numpy as np


def conv1d_weight(weight: np.ndarray) -> np.ndarray:
    """PyTorch Conv1d ``(out, in, k)`` → MLX ``(out, k, in)``."""
    if weight.ndim != 3:
        raise ValueError(f"conv1d weight must be 3-D, got {weight.shape}")
    return np.ascontiguousarray(weight.transpose(0, 2, 1))


def conv2d_weight(weight: np.ndarray) -> np.ndarray:
    """PyTorch Conv2d ``(out, in, kh, kw)`` → MLX ``(out, kh, kw, in)``."""
    if weight.ndim != 4:
        raise ValueError(f"conv2d weight must be 4-D, got {weight.shape}")
    return np.ascontiguousarray(weight.transpose(0, 2, 3, 1))


def conv_transpose1d_weight(weight: np.ndarray) -> np.ndarray:
    """PyTorch ConvTranspose1d ``(in, out, k)`` → MLX ``(out, k, in)``."""
    if weight.ndim != 3:
        raise ValueError(f"conv_transpose1d weight must be 3-D, got {weight.shape}")
    return np.ascontiguousarray(weight.transpose(1, 2, 0))


def fold_weight_norm(weight_g: np.ndarray, weight_v: np.ndarray, *, dim: int = 0) -> np.ndarray:
    """``w = g · v / ‖v‖`` with the norm over every axis except ``dim`` (PyTorch weight_norm).

    Computed in float64 and returned in ``weight_v``'s dtype. The layer's bias is a
    separate key and is kept by the caller.
    """
    v = weight_v.astype(np.float64)
    axes = tuple(i for i in range(v.ndim) if i != dim % v.ndim)
    norm = np.sqrt(np.sum(v * v, axis=axes, keepdims=True))
    g = weight_g.astype(np.float64).reshape(norm.shape)
    w: np.ndarray = g * v / norm
    return w.astype(weight_v.dtype)


def fold_all_weight_norms(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Replace every ``X.weight_g``/``X.weight_v`` pair by ``X.weight``; other keys unchanged.

    Raises:
        ValueError: a ``weight_g`` without its ``weight_v`` or the reverse.
    """
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            base = key[: -len(".weight_g")]
            if base + ".weight_v" not in state:
                raise ValueError(f"{key} has no matching {base}.weight_v")
            out[base + ".weight"] = fold_weight_norm(value, state[base + ".weight_v"])
        elif key.endswith(".weight_v"):
            if key[: -len(".weight_v")] + ".weight_g" not in state:
                raise ValueError(f"{key} has no matching weight_g")
        else:
            out[key] = value
    return out
