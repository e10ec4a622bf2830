"""``bigvgan_generator.pt`` (``nvidia/bigvgan_v2_22khz_80band_256x``) → our ``BigVGAN``.

The file holds ``{'generator': state_dict}`` (unwrapped by the converter) with weight norm
on every conv (``*.weight_g``/``*.weight_v``, 783 keys). Names are unchanged (the MLX
module mirrors the official ones). The conversion:

* folds every weight norm (``w = g·v/‖v‖`` over all dims but 0, as ``remove_weight_norm``;
  for ``ConvTranspose1d`` dim 0 is the input channels); biases are kept;
* turns Conv1d weights ``(out, in, k)`` and ConvTranspose1d weights ``(in, out, k)`` into
  MLX's ``(out, k, in)``;
* keeps the SnakeBeta ``alpha``/``beta`` (log scale) and the anti-alias filters
  (``...upsample.filter``, ``...downsample.lowpass.filter``, ``(1, 1, 12)``) as they are.

No official key is ignored; any key that is not a known parameter is an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from indextts_weights.layout import conv1d_weight, conv_transpose1d_weight
from indextts_weights.mapping.checks import known_and_folded

#: Official keys the model deliberately never uses (none: the generator is used whole).
IGNORED_KEYS: tuple[str, ...] = ()

_WN = r"(bias|weight_g|weight_v|weight)"
_ACT = r"(activations\.\d+|activation_post)"
#: Official names of the parameters the model uses (with or without weight norm).
KNOWN_KEYS = re.compile(
    rf"conv_pre\.{_WN}"
    rf"|ups\.\d+\.0\.{_WN}"
    rf"|resblocks\.\d+\.convs[12]\.\d+\.{_WN}"
    rf"|(resblocks\.\d+\.)?{_ACT}\.(act\.(alpha|beta)|upsample\.filter|downsample\.lowpass\.filter)"
    r"|conv_post\.(weight_g|weight_v|weight)"
)
#: Conv1d weights (after folding).
CONV_WEIGHTS = re.compile(
    r"conv_pre\.weight|resblocks\.\d+\.convs[12]\.\d+\.weight|conv_post\.weight"
)
#: ConvTranspose1d weights (after folding).
CONV_TRANSPOSE_WEIGHTS = re.compile(r"ups\.\d+\.0\.weight")


def sanitize(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Official generator state dict (numpy) → our ``BigVGAN`` parameters (numpy).

    Raises:
        WeightsError: naming every key that is neither known nor ignored, or a weight-norm
            pair with a half missing.
    """
    folded = known_and_folded(
        state, KNOWN_KEYS, lambda k: k in IGNORED_KEYS, source="BigVGAN checkpoint"
    )
    out = {}
    for key, value in folded.items():
        if CONV_WEIGHTS.fullmatch(key):
            value = conv1d_weight(value)
        elif CONV_TRANSPOSE_WEIGHTS.fullmatch(key):
            value = conv_transpose1d_weight(value)
        out[key] = value
    return out
