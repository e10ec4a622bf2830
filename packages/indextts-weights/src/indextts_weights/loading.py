"""Strict loading of NPZ weights into MLX modules."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar, cast

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten

from indextts_weights.npz import check_state, read_arrays

M = TypeVar("M", bound=nn.Module)


def flat_parameters(module: nn.Module) -> dict[str, mx.array]:
    """Dotted parameter name → parameter, for every parameter of ``module``."""
    # tree_flatten is annotated list-or-dict; without a destination it returns a list.
    return dict(cast("list[tuple[str, mx.array]]", tree_flatten(module.parameters())))


def expected_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    """Dotted parameter name → shape of every parameter of ``module``."""
    return {name: tuple(value.shape) for name, value in flat_parameters(module).items()}


#: ``save_npz``'s ``dtype`` names → MLX dtypes.
MX_DTYPES: dict[str, mx.Dtype] = {
    "float32": mx.float32,
    "float16": mx.float16,
    "bfloat16": mx.bfloat16,
}


def read_weights(
    path: str | Path, *, model: str | None = None
) -> tuple[dict[str, np.ndarray], mx.Dtype | None]:
    """A file's arrays (:func:`~indextts_weights.npz.read_npz`) and the MLX dtype of its
    floating arrays when it records one, else None."""
    arrays, name = read_arrays(path, model=model)
    return arrays, None if name is None else MX_DTYPES[name]


def to_mx(array: np.ndarray, dtype: mx.Dtype | None) -> mx.array:
    """``array`` as an MLX array, floating ones cast to ``dtype`` when given."""
    value = mx.array(np.asarray(array))
    if dtype is not None and mx.issubdtype(value.dtype, mx.floating) and value.dtype != dtype:
        value = value.astype(dtype)
    return value


def load_module(module: M, path: str | Path, *, model: str, dtype: mx.Dtype | None = None) -> M:
    """Load ``path`` (written by :func:`~indextts_weights.npz.save_npz`) into ``module``.

    Every parameter must be present with its shape and no extra key may be present. A file
    that records a half precision (``convert --dtype float16|bfloat16``) makes a model of
    that dtype: the module's floating parameters are cast (``set_dtype``) and the file's
    arrays loaded in it (bfloat16 read back exactly). ``dtype`` overrides the file's: the
    arrays are cast to it as they are read (``IndexTTS2(dtype=...)``).

    Raises:
        WeightsError: naming each missing, unexpected or mis-shaped key.
    """
    arrays, stored = read_weights(path, model=model)
    check_state(arrays, expected_shapes(module), source=str(path))
    dtype = dtype or stored
    if dtype is not None:
        module.set_dtype(dtype)
    # Convert one array at a time, dropping each numpy copy as soon as MLX holds the data,
    # so loading peaks near one copy of the weights instead of two.
    weights = []
    for key in list(arrays):
        value = to_mx(arrays.pop(key), dtype)
        mx.eval(value)
        weights.append((key, value))
    module.load_weights(weights, strict=True)
    mx.eval(flat_parameters(module))
    return module
