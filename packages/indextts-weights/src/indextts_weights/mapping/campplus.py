"""``campplus_cn_common.bin`` → :class:`mlx_indextts_models.campplus.CAMPPlus`.

Names are unchanged (the MLX module mirrors the official ones). The conversion:

* drops every BatchNorm ``*.num_batches_tracked`` counter (:data:`IGNORED_SUFFIXES`): it
  only sets the momentum during training; inference uses ``running_mean``/``running_var``,
  which are kept;
* turns the FCM head's Conv2d weights from PyTorch ``(out, in, kh, kw)`` into MLX
  ``(out, kh, kw, in)`` (:data:`CONV2D_WEIGHTS`);
* turns the x-vector trunk's Conv1d weights from ``(out, in, k)`` into ``(out, k, in)``
  (:data:`CONV1D_WEIGHTS`);
* keeps BatchNorm affine parameters and statistics, conv biases and PReLU slopes as they
  are (1-D), in float32.

Any key that is neither a known parameter nor ignored is an error; a missing key is
caught when loading (:func:`indextts_weights.loading.load_module`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from indextts_weights.errors import WeightsError
from indextts_weights.layout import conv1d_weight, conv2d_weight

#: Official key suffixes the inference deliberately never uses: the BatchNorm step counters.
IGNORED_SUFFIXES: tuple[str, ...] = (".num_batches_tracked",)

_HEAD_BLOCK = r"head\.layer\d+\.\d+"
_TRUNK_LAYER = r"xvector\.block\d+\.tdnnd\d+"
_BN = r"(weight|bias|running_mean|running_var)"
#: Conv2d weights of the FCM head.
CONV2D_WEIGHTS = re.compile(
    rf"head\.conv[12]\.weight|{_HEAD_BLOCK}\.(conv[12]|shortcut\.0)\.weight"
)
#: Conv1d weights of the x-vector trunk (``linear*`` in the reference are all Conv1d).
CONV1D_WEIGHTS = re.compile(
    rf"xvector\.(tdnn|transit\d+|dense)\.linear\.weight"
    rf"|{_TRUNK_LAYER}\.linear1\.weight"
    rf"|{_TRUNK_LAYER}\.cam_layer\.(linear_local|linear1|linear2)\.weight"
)
#: Parameters kept as they are: BatchNorm, conv biases, PReLU slopes (all 1-D).
VECTORS = re.compile(
    rf"head\.bn[12]\.{_BN}"
    rf"|{_HEAD_BLOCK}\.(bn[12]|shortcut\.1)\.{_BN}"
    rf"|xvector\.(tdnn|transit\d+|dense)\.nonlinear\.batchnorm\.{_BN}"
    rf"|xvector\.out_nonlinear\.batchnorm\.{_BN}"
    rf"|{_TRUNK_LAYER}\.nonlinear[12]\.batchnorm\.{_BN}"
    rf"|xvector\.(tdnn|transit\d+|dense|out_nonlinear)(\.nonlinear)?\.prelu\.weight"
    rf"|{_TRUNK_LAYER}\.nonlinear[12]\.prelu\.weight"
    rf"|{_TRUNK_LAYER}\.cam_layer\.(linear_local|linear1|linear2)\.bias"
)


def is_ignored(key: str) -> bool:
    """Whether an official key is deliberately unused (see :data:`IGNORED_SUFFIXES`)."""
    return key.endswith(IGNORED_SUFFIXES)


def _convert(key: str, value: np.ndarray) -> np.ndarray:
    value = np.asarray(value)
    if CONV2D_WEIGHTS.fullmatch(key):
        layout, ndim = conv2d_weight, 4
    elif CONV1D_WEIGHTS.fullmatch(key):
        layout, ndim = conv1d_weight, 3
    else:
        layout, ndim = None, 1
    if value.ndim != ndim:
        raise WeightsError(f"CAMPPlus checkpoint: {key} has shape {value.shape}, expected {ndim}-D")
    value = value.astype(np.float32, copy=False)
    return layout(value) if layout else value


def sanitize(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Official CAMPPlus state dict (numpy) → our ``CAMPPlus`` parameters (numpy, float32).

    Raises:
        WeightsError: naming every key that is neither known nor ignored, or a known key
            whose number of dimensions does not fit its layer.
    """
    kept = {k: v for k, v in state.items() if not is_ignored(k)}
    known = (CONV2D_WEIGHTS, CONV1D_WEIGHTS, VECTORS)
    unknown = sorted(k for k in kept if not any(p.fullmatch(k) for p in known))
    if unknown:
        raise WeightsError(f"CAMPPlus checkpoint has unexpected keys: {', '.join(unknown)}")
    return {k: _convert(k, v) for k, v in kept.items()}
