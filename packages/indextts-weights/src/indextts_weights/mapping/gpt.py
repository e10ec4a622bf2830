"""The whole official ``gpt.pth`` → :class:`mlx_indextts_models.gpt.UnifiedVoice`.

Two mappings share the file (``docs/reference/keys/gpt.txt``, 665 keys), each owning
its keys and strict about them:

* :mod:`~indextts_weights.mapping.gpt_conditioning`: the conditioning modules
  (``conditioning_encoder``, ``perceiver_encoder``, their ``emo_`` twins, ``emo_layer``,
  ``emovec_layer``, ``speed_emb``); it drops the two sinusoidal ``embed.pos_enc.pe``
  tables and moves the conv weights to MLX's channels-last layout;
* :mod:`~indextts_weights.mapping.gpt2`: the GPT-2 stack ``gpt.*`` (HF ``Conv1D`` weights
  transposed to ``(out, in)``), ``final_norm``, the heads, the embeddings and the learned
  position tables; it ignores ``gpt.wte`` and the old causal-mask buffers if present.

:func:`sanitize` runs both and refuses any key that neither owns, so no key of the
checkpoint silently vanishes: every key is converted, or dropped on purpose by a mapping
(:func:`ignored`), or named in the error. The names of the result are the official ones,
as the MLX ``UnifiedVoice`` holds the conditioning modules and the GPT-2 parts under the
official top-level names. A missing key is caught when loading (strict).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from indextts_weights.errors import WeightsError
from indextts_weights.mapping import gpt2, gpt_conditioning

_BLOCK = re.compile(r"gpt\.h\.\d+\.")


def owner(key: str) -> str | None:
    """Which mapping converts (or deliberately ignores) ``key``: ``"conditioning"``,
    ``"gpt2"`` or None (a key of no known module)."""
    if gpt_conditioning.is_conditioning_key(key):
        return "conditioning"
    if gpt2.owns(key):
        return "gpt2"
    return None


def ignored(key: str) -> bool:
    """Whether ``key`` is an official key the model deliberately does not load."""
    return key in gpt_conditioning.IGNORED_KEYS or bool(gpt2.IGNORED.fullmatch(key))


def group_of(key: str) -> str:
    """The group ``key`` is converted with when converting one group at a time
    (:func:`indextts_weights.convert.sanitize_in_groups`): a GPT-2 block ``gpt.h.<i>``, a
    top-level module, or ``""`` for the keys of no known module (named together).

    :func:`sanitize` needs no two groups at once, so the converter frees each block's
    official weights before transposing the next (peak memory about the file's size
    instead of that plus the 1.9 GB of transposed ``Conv1D`` weights).
    """
    if owner(key) is None:
        return ""
    block = _BLOCK.match(key)
    return block.group(0) if block else key.split(".", 1)[0]


def sanitize(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Official ``gpt.pth`` state dict (numpy) → our ``UnifiedVoice`` parameters (numpy).

    Raises:
        WeightsError: naming every key that no mapping owns, and every key a mapping
            refuses (unknown under its prefixes, or of the wrong rank), all in one message.
    """
    problems = []
    unowned = sorted(k for k in state if owner(k) is None)
    if unowned:
        problems.append(f"keys of no known module: {', '.join(unowned)}")
    out: dict[str, np.ndarray] = {}
    for sanitize_part in (gpt_conditioning.sanitize_conditioning, gpt2.sanitize_gpt2):
        try:
            part = sanitize_part(state)
        except WeightsError as exc:
            problems.append(str(exc))
            continue
        overlap = sorted(set(out) & set(part))
        if overlap:  # the two mappings' prefixes are disjoint; guard against a future edit
            raise WeightsError(f"gpt checkpoint: keys mapped twice: {', '.join(overlap)}")
        out |= part
    if problems:
        raise WeightsError("gpt checkpoint: " + "; ".join(problems))
    vanished = sorted(k for k in state if k not in out and not ignored(k))
    if vanished:  # names are kept, so every key not ignored must be in the result
        raise WeightsError(f"gpt checkpoint: keys lost by the mapping: {', '.join(vanished)}")
    return out
