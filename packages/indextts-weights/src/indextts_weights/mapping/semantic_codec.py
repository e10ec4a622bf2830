"""MaskGCT ``semantic_codec/model.safetensors`` → ``mlx_indextts_models.semantic_codec.RepCodec``.

Names are unchanged (the MLX module mirrors the official ones). The conversion:

* drops the ``decoder.*`` keys (``RepCodec.decoder``: a VocosBackbone + Linear that
  only reconstructs features during training; ``quantize`` and ``vq2emb`` never call it);
* folds the weight norm of the quantizers' ``in_project``/``out_project`` 1x1 convs
  (``weight_g``/``weight_v`` → ``weight``; their ``bias`` is kept);
* turns every Conv1d weight from PyTorch ``(out, in, k)`` into MLX ``(out, k, in)``.

Any key that is neither a known encoder/quantizer parameter nor ignored is an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from indextts_weights.layout import conv1d_weight
from indextts_weights.mapping.checks import known_and_folded

#: Official key prefixes the inference deliberately never uses.
IGNORED_PREFIXES: tuple[str, ...] = ("decoder.",)

_CONVNEXT = r"(gamma|dwconv\.(weight|bias)|norm\.(weight|bias)|pwconv[12]\.(weight|bias))"
#: Official names of the parameters the model uses (before weight-norm folding).
KNOWN_KEYS = re.compile(
    r"encoder\.0\.(embed|norm|final_layer_norm)\.(weight|bias)"
    rf"|encoder\.0\.convnext\.\d+\.{_CONVNEXT}"
    r"|encoder\.1\.(weight|bias)"
    r"|quantizer\.quantizers\.\d+\.(in_project|out_project)\.(bias|weight_g|weight_v)"
    r"|quantizer\.quantizers\.\d+\.codebook\.weight"
)
#: Conv1d weights (after folding), converted to MLX's channels-last layout.
CONV_WEIGHTS = re.compile(
    r"encoder\.0\.embed\.weight"
    r"|encoder\.0\.convnext\.\d+\.dwconv\.weight"
    r"|quantizer\.quantizers\.\d+\.(in_project|out_project)\.weight"
)


def is_ignored(key: str) -> bool:
    """Whether an official key is deliberately unused (see :data:`IGNORED_PREFIXES`)."""
    return key.startswith(IGNORED_PREFIXES)


def sanitize(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Official codec state dict (numpy) → our ``RepCodec`` parameters (numpy).

    Raises:
        WeightsError: naming every key that is neither known nor ignored.
    """
    folded = known_and_folded(state, KNOWN_KEYS, is_ignored, source="semantic codec checkpoint")
    return {k: conv1d_weight(v) if CONV_WEIGHTS.fullmatch(k) else v for k, v in folded.items()}
