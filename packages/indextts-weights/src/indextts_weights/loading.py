"""Strict loading of NPZ weights into MLX modules."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten

from indextts_weights.npz import check_state, read_npz


def expected_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    """Dotted parameter name → shape of every parameter of ``module``."""
    return {name: tuple(value.shape) for name, value in tree_flatten(module.parameters())}


def load_module(module: nn.Module, path: str | Path, *, model: str) -> nn.Module:
    """Load ``path`` (written by :func:`~indextts_weights.npz.save_npz`) into ``module``.

    Every parameter must be present with its shape and no extra key may be present.

    Raises:
        WeightsError: naming each missing, unexpected or mis-shaped key.
    """
    arrays = read_npz(path, model=model)
    check_state(arrays, expected_shapes(module), source=str(path))
    # Convert one array at a time, dropping each numpy copy as soon as MLX holds the data,
    # so loading peaks near one copy of the weights instead of two.
    weights = []
    for key in list(arrays):
        value = mx.array(np.asarray(arrays.pop(key)))
        mx.eval(value)
        weights.append((key, value))
    module.load_weights(weights, strict=True)
    mx.eval(module.parameters())
    return module
