"""The GPT-2 part of UnifiedVoice in MLX, and a decode loop, for the GPT parity tests.

:class:`DecoderParts` holds the modules :func:`indextts_weights.mapping.gpt2.sanitize_gpt2`
maps, under the official names. :func:`decode` runs the reference's code loop on a
``[conditioning][text]`` prefix computed by the reference, with our KV cache and our
:mod:`mlx_indextts_models.sampling` searches. Until the full MLX UnifiedVoice exists, these
let the parity tests check the stack, heads, tables, cache and searches end to end.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from mlx_indextts_models.cache import select_rows
from mlx_indextts_models.gpt2 import GPT2Args, GPT2Model, linear_rows
from mlx_indextts_models.sampling import GenerationConfig, Sampler, make_search, prompt_presence


class PositionTable(nn.Module):
    """``LearnedPositionEmbeddings``: a table under ``emb``."""

    def __init__(self, rows: int, dim: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(rows, dim)


class DecoderParts(nn.Module):
    """``gpt``, ``final_norm``, heads, embeddings and position tables of UnifiedVoice."""

    def __init__(
        self,
        args: GPT2Args,
        *,
        number_text_tokens: int = 12000,
        number_mel_codes: int = 8194,
        max_text_tokens: int = 600,
        max_mel_tokens: int = 1815,
    ) -> None:
        super().__init__()
        dim = args.n_embd
        self.gpt = GPT2Model(args)
        self.final_norm = nn.LayerNorm(dim)
        self.text_head = nn.Linear(dim, number_text_tokens + 1)
        self.mel_head = nn.Linear(dim, number_mel_codes)
        self.text_embedding = nn.Embedding(number_text_tokens + 1, dim)
        self.mel_embedding = nn.Embedding(number_mel_codes, dim)
        self.mel_pos_embedding = PositionTable(max_mel_tokens + 3, dim)
        self.text_pos_embedding = PositionTable(max_text_tokens + 2, dim)

    def mel_input(self, tokens: mx.array, position: int) -> mx.array:
        """``(B,)`` codes at one mel position → ``(B, 1, dim)`` embeddings."""
        return (self.mel_embedding(tokens) + self.mel_pos_embedding.emb.weight[position])[:, None]

    def logits(self, hidden: mx.array) -> mx.array:
        """``(B, dim)`` last hidden states → ``(B, number_mel_codes)``."""
        return linear_rows(self.final_norm(hidden), self.mel_head.weight, self.mel_head.bias)


def decode(
    parts: DecoderParts,
    prefix: np.ndarray,
    config: GenerationConfig,
    *,
    start_mel_token: int = 8192,
    sampler: Sampler | None = None,
    position_shift: int = 0,
) -> list[int]:
    """Mel codes for one ``[conditioning][text]`` prefix ``(1, s, dim)``, as ``inference_speech``.

    The prompt is the prefix then ``start_mel_token`` at mel position 0; the repetition
    penalty starts from ``{1, start_mel_token}`` (the fake prompt ids). Generated code
    ``k`` (1-based) is fed at mel position ``k + position_shift``: 0 reproduces the
    installed reference (transformers 5.x, whose ``generate`` never gives the model its
    cache, so each step re-embeds all codes at positions 0..k); 1 reproduces the cached
    path of transformers 4.x (``get_fixed_embedding(attention_mask.shape[1] - mel_len)``).
    """
    length = prefix.shape[1]
    start = parts.mel_input(mx.array([start_mel_token]), 0)
    cache = parts.gpt.make_cache()
    hidden = parts.gpt(mx.concatenate([mx.array(prefix), start], axis=1), cache)
    logits = parts.logits(hidden[:, -1])
    seen = prompt_presence(length, start_mel_token, parts.mel_head.weight.shape[0])
    search = make_search(config, seen, sampler)
    if config.num_beams > 1:
        select_rows(cache, [0] * config.num_beams)
        logits = mx.repeat(logits, config.num_beams, axis=0)
    generated = 0
    while True:
        step = search.step(logits)
        if step.done:
            return search.result()
        generated += 1
        select_rows(cache, step.parents)
        x = parts.mel_input(mx.array(step.tokens.astype(np.int32)), generated + position_shift)
        logits = parts.logits(parts.gpt(x, cache)[:, 0])
