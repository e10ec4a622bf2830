"""``gpt.pth`` (UnifiedVoice) → the GPT-2 stack, embeddings, position tables and heads.

This mapping owns these keys of the official ``gpt.pth`` (``docs/reference/keys/gpt.txt``):

* ``gpt.h.<i>.*`` and ``gpt.ln_f.*``: :class:`mlx_indextts_models.gpt2.GPT2Model` under
  ``gpt.``. The HF ``Conv1D`` weights (``attn.c_attn``, ``attn.c_proj``, ``mlp.c_fc``,
  ``mlp.c_proj``) are stored ``(in, out)`` and are transposed to ``(out, in)``
  (:data:`CONV1D_WEIGHTS`), because our ``nn.Linear`` applies ``x @ W.T``; LayerNorm
  parameters and biases are kept as they are;
* the top-level :data:`TOP_LEVEL` tensors, unchanged: ``final_norm``, ``mel_head``,
  ``text_head`` (``nn.Linear``, already ``(out, in)``), ``mel_embedding``,
  ``text_embedding`` and the learned position tables ``mel_pos_embedding.emb`` (1818 rows)
  and ``text_pos_embedding.emb`` (602 rows).

Everything else in ``gpt.pth`` (the conditioning encoders, perceivers, ``emo_layer``,
``emovec_layer``, ``speed_emb``) belongs to other mappings and is left out of the result
(:func:`owns` says which keys are this mapping's). Under ``gpt.``, a key that is neither
known nor in :data:`IGNORED` is an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from indextts_weights.errors import WeightsError

_LAYER = r"gpt\.h\.\d+"
#: HF ``Conv1D`` weights, ``(in, out)`` in the checkpoint.
CONV1D_WEIGHTS = re.compile(rf"{_LAYER}\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight")
#: 1-D GPT-2 parameters kept as they are: LayerNorms and the ``Conv1D`` biases.
GPT_VECTORS = re.compile(
    rf"{_LAYER}\.(ln_1|ln_2)\.(weight|bias)"
    rf"|{_LAYER}\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.bias"
    r"|gpt\.ln_f\.(weight|bias)"
)
#: Top-level UnifiedVoice tensors this mapping carries over unchanged (name → ndim).
TOP_LEVEL: dict[str, int] = {
    "final_norm.weight": 1,
    "final_norm.bias": 1,
    "mel_head.weight": 2,
    "mel_head.bias": 1,
    "text_head.weight": 2,
    "text_head.bias": 1,
    "mel_embedding.weight": 2,
    "text_embedding.weight": 2,
    "mel_pos_embedding.emb.weight": 2,
    "text_pos_embedding.emb.weight": 2,
}
#: Keys under ``gpt.`` the model deliberately never uses, if a checkpoint holds them:
#: the causal-mask buffers ``attn.bias``/``attn.masked_bias`` that older ``transformers``
#: releases saved with GPT-2 (the attention here builds its own mask), and ``gpt.wte``,
#: which ``UnifiedVoice.post_init_gpt2_config`` points at ``mel_embedding`` (a tied copy
#: of ``mel_embedding.weight``, which is kept). The reference deletes ``gpt.wpe``: GPT-2's
#: own position embedding is zero, the learned tables above replace it.
IGNORED = re.compile(rf"{_LAYER}\.attn\.(bias|masked_bias)|gpt\.wte\.weight")


def owns(key: str) -> bool:
    """Whether ``key`` of ``gpt.pth`` is converted (or deliberately ignored) by this mapping."""
    return key.startswith("gpt.") or key in TOP_LEVEL


def _convert(key: str, value: np.ndarray) -> np.ndarray:
    value = np.asarray(value)
    if CONV1D_WEIGHTS.fullmatch(key):
        ndim = 2
    elif GPT_VECTORS.fullmatch(key):
        ndim = 1
    else:
        ndim = TOP_LEVEL[key]
    if value.ndim != ndim:
        raise WeightsError(f"GPT checkpoint: {key} has shape {value.shape}, expected {ndim}-D")
    value = value.astype(np.float32, copy=False)
    if CONV1D_WEIGHTS.fullmatch(key):
        return np.ascontiguousarray(value.T)
    return value


def sanitize_gpt2(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Official ``gpt.pth`` state dict (numpy) → our GPT-2 stack, embeddings and heads.

    Names are kept (``gpt.h.0.attn.c_attn.weight``, ``mel_head.weight``, ...): the MLX
    UnifiedVoice holds a :class:`~mlx_indextts_models.gpt2.GPT2Model` as ``gpt`` and the
    other modules under their official names. Keys :func:`owns` rejects are skipped.

    Raises:
        WeightsError: naming every key under ``gpt.`` that is neither known nor in
            :data:`IGNORED`, or a key whose number of dimensions does not fit its layer.
            A missing key is caught when loading (strict).
    """
    mine = [k for k in state if owns(k) and not IGNORED.fullmatch(k)]
    unknown = sorted(
        k
        for k in mine
        if k not in TOP_LEVEL and not (CONV1D_WEIGHTS.fullmatch(k) or GPT_VECTORS.fullmatch(k))
    )
    if unknown:
        raise WeightsError(f"GPT checkpoint has unexpected keys: {', '.join(unknown)}")
    return {k: _convert(k, state[k]) for k in mine}
