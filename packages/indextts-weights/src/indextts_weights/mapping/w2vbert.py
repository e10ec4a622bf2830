"""``facebook/w2v-bert-2.0``'s ``model.safetensors`` → our ``w2vbert.W2VBertModel``.

Names are unchanged (the MLX module mirrors ``Wav2Vec2BertModel``'s). The conversion:

* drops :data:`IGNORED_KEYS` (``masked_spec_embed``: the SpecAugment vector, training only);
* drops encoder layers ``>= num_layers``: IndexTTS-2 reads ``hidden_states[17]``, the output
  of the 17th layer, so layers 17-23 (0-based) are never run. Keeping 17 of 24 layers makes
  ``w2vbert.npz`` about 1.7 GB instead of 2.3 GB;
* turns the conv module's Conv1d weights (``pointwise_conv1``, ``depthwise_conv``,
  ``pointwise_conv2``) from PyTorch ``(out, in, k)`` into MLX ``(out, k, in)``.

Any key that is neither a known parameter nor ignored is an error, and so is a missing
layer below ``num_layers``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from indextts_weights.errors import WeightsError
from indextts_weights.layout import conv1d_weight
from mlx_indextts_models.w2vbert import SEMANTIC_LAYER

#: Official keys the inference deliberately never uses.
IGNORED_KEYS: tuple[str, ...] = ("masked_spec_embed",)

_LAYER_PARAM = (
    r"(ffn[12]_layer_norm|self_attn_layer_norm|final_layer_norm)\.(weight|bias)"
    r"|ffn[12]\.(intermediate_dense|output_dense)\.(weight|bias)"
    r"|self_attn\.linear_(q|k|v|out)\.(weight|bias)"
    r"|self_attn\.distance_embedding\.weight"
    r"|conv_module\.(layer_norm|depthwise_layer_norm)\.(weight|bias)"
    r"|conv_module\.(pointwise_conv1|depthwise_conv|pointwise_conv2)\.weight"
)
LAYER_KEY = re.compile(rf"encoder\.layers\.(\d+)\.(?:{_LAYER_PARAM})")
#: Official names of the parameters the model uses.
KNOWN_KEYS = re.compile(
    rf"feature_projection\.(layer_norm|projection)\.(weight|bias)|{LAYER_KEY.pattern}"
)
#: Conv1d weights, converted to MLX's channels-last layout.
CONV_WEIGHTS = re.compile(
    r"encoder\.layers\.\d+\.conv_module\.(pointwise_conv1|depthwise_conv|pointwise_conv2)\.weight"
)


def sanitize(
    state: Mapping[str, np.ndarray], *, num_layers: int = SEMANTIC_LAYER
) -> dict[str, np.ndarray]:
    """Official W2V-BERT state dict (numpy) → our parameters for the first ``num_layers`` layers.

    Raises:
        WeightsError: a key neither known nor in :data:`IGNORED_KEYS`, or a layer below
            ``num_layers`` absent from ``state``.
    """
    unknown = sorted(k for k in state if k not in IGNORED_KEYS and not KNOWN_KEYS.fullmatch(k))
    if unknown:
        raise WeightsError(f"w2v-bert checkpoint has unexpected keys: {', '.join(unknown[:20])}")
    present = {int(m.group(1)) for k in state if (m := LAYER_KEY.fullmatch(k))}
    missing = sorted(set(range(num_layers)) - present)
    if missing:
        raise WeightsError(
            f"w2v-bert checkpoint lacks encoder layers {missing} (need the first {num_layers})"
        )
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if key in IGNORED_KEYS:
            continue
        layer = LAYER_KEY.fullmatch(key)
        if layer and int(layer.group(1)) >= num_layers:
            continue
        value = np.asarray(value)
        out[key] = conv1d_weight(value) if CONV_WEIGHTS.fullmatch(key) else value
    return out
