"""Strict loading of NPZ weights into MLX modules."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar, cast

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten

from indextts_weights.npz import check_state, read_npz

M = TypeVar("M", bound=nn.Module)


def flat_parameters(module: nn.Module) -> dict[str, mx.array]:
    """Dotted parameter name → parameter, for every parameter of ``module``."""
    # tree_flatten is annotated list-or-dict; without a destination it returns a list.
    return dict(cast("list[tuple[str, mx.array]]", tree_flatten(module.parameters())))


def expected_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    """Dotted parameter name → shape of every parameter of ``module``."""
    return {name: tuple(value.shape) for name, value in flat_parameters(module).items()}


def load_module(module: M, path: str | Path, *, model: str) -> M:
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
    mx.eval(flat_parameters(module))
    return module
