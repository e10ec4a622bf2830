"""``gpt.pth`` conditioning keys → :class:`mlx_indextts_models.gpt_conditioning.GPTConditioning`.

The conditioning side of ``UnifiedVoice`` lives under the top-level names of
:data:`CONDITIONING_PREFIXES`; the GPT-2 side (``gpt.*``, embeddings, heads, ...) has its
own mapping. Names are unchanged (the MLX modules mirror the official ones). The
conversion:

* drops the two conformers' sinusoidal ``embed.pos_enc.pe`` buffers (:data:`IGNORED_KEYS`):
  a fixed table that :func:`mlx_indextts_models.conformer.positional_encoding` recomputes;
* turns the subsampling Conv2d weight from PyTorch ``(out, in, kh, kw)`` into MLX
  ``(out, kh, kw, in)`` (:data:`CONV2D_WEIGHTS`);
* turns the conformer conv modules' Conv1d weights (pointwise and depthwise) from
  ``(out, in, k)`` into ``(out, k, in)`` (:data:`CONV1D_WEIGHTS`);
* keeps everything else as it is (Linear weights stay ``(out, in)``, the input Linear's
  512·511 columns in the reference's ``(channel, feature)`` order).

Keys outside :data:`CONDITIONING_PREFIXES` are not looked at; under them, any key that is
neither a known parameter nor ignored is an error. A missing key is caught when loading
(:func:`indextts_weights.loading.load_module`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from indextts_weights.errors import WeightsError
from indextts_weights.layout import conv1d_weight, conv2d_weight

#: Top-level ``UnifiedVoice`` attributes that make up the conditioning.
CONDITIONING_PREFIXES: tuple[str, ...] = (
    "conditioning_encoder",
    "perceiver_encoder",
    "emo_conditioning_encoder",
    "emo_perceiver_encoder",
    "emo_layer",
    "emovec_layer",
    "speed_emb",
)

#: Official keys the model deliberately does not load: the positional tables (recomputed).
IGNORED_KEYS: tuple[str, ...] = (
    "conditioning_encoder.embed.pos_enc.pe",
    "emo_conditioning_encoder.embed.pos_enc.pe",
)

_ENC = r"(emo_)?conditioning_encoder"
_LAYER = rf"{_ENC}\.encoders\.\d+"
_PERCEIVER = r"(emo_)?perceiver_encoder"
_WB = r"(weight|bias)"
#: Official names of the parameters the model uses.
KNOWN_KEYS = re.compile(
    rf"{_ENC}\.embed\.(conv|out)\.0\.{_WB}"
    rf"|{_ENC}\.after_norm\.{_WB}"
    rf"|{_LAYER}\.self_attn\.(pos_bias_u|pos_bias_v|linear_pos\.weight)"
    rf"|{_LAYER}\.self_attn\.linear_(q|k|v|out)\.{_WB}"
    rf"|{_LAYER}\.feed_forward\.w_[12]\.{_WB}"
    rf"|{_LAYER}\.conv_module\.(pointwise_conv1|depthwise_conv|pointwise_conv2|norm)\.{_WB}"
    rf"|{_LAYER}\.norm_(ff|mha|conv|final)\.{_WB}"
    rf"|{_PERCEIVER}\.(latents|norm\.gamma)"
    rf"|{_PERCEIVER}\.proj_context\.{_WB}"
    rf"|{_PERCEIVER}\.layers\.\d+\.0\.to_(q|kv|out)\.weight"
    rf"|{_PERCEIVER}\.layers\.\d+\.1\.[02]\.{_WB}"
    rf"|(emo_layer|emovec_layer)\.{_WB}"
    r"|speed_emb\.weight"
)
#: The subsampling Conv2d weight, converted to MLX's channels-last layout.
CONV2D_WEIGHTS = re.compile(rf"{_ENC}\.embed\.conv\.0\.weight")
#: The conv modules' Conv1d weights, converted to MLX's channels-last layout.
CONV1D_WEIGHTS = re.compile(
    rf"{_LAYER}\.conv_module\.(pointwise_conv1|depthwise_conv|pointwise_conv2)\.weight"
)


def is_conditioning_key(key: str) -> bool:
    """Whether an official ``gpt.pth`` key belongs to the conditioning."""
    return key.split(".", 1)[0] in CONDITIONING_PREFIXES


def sanitize_conditioning(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The conditioning part of an official ``gpt.pth`` state dict (numpy) → our
    :class:`~mlx_indextts_models.gpt_conditioning.GPTConditioning` parameters (numpy).

    Keys outside :data:`CONDITIONING_PREFIXES` are skipped (the GPT-2 mapping takes them).

    Raises:
        WeightsError: naming every conditioning key that is neither known nor ignored,
            or a convolution weight of the wrong rank.
    """
    kept = {
        k: np.asarray(v)
        for k, v in state.items()
        if is_conditioning_key(k) and k not in IGNORED_KEYS
    }
    unknown = sorted(k for k in kept if not KNOWN_KEYS.fullmatch(k))
    if unknown:
        raise WeightsError(f"gpt checkpoint has unexpected conditioning keys: {', '.join(unknown)}")
    out = {}
    for key, value in kept.items():
        try:
            if CONV2D_WEIGHTS.fullmatch(key):
                value = conv2d_weight(value)
            elif CONV1D_WEIGHTS.fullmatch(key):
                value = conv1d_weight(value)
        except ValueError as exc:
            raise WeightsError(f"gpt checkpoint: {key}: {exc}") from exc
        out[key] = value
    return out
