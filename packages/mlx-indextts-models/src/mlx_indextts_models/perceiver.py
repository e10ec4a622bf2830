"""Perceiver resampler of the IndexTTS-2 GPT (``indextts/gpt/perceiver.py: PerceiverResampler``).

``num_latents`` learned latents cross-attend (``depth`` times, with a GEGLU feed-forward
after each attention) to ``proj_context(context)``; the keys and values are the latents
followed by the context (``cross_attn_include_queries=True``), and a final RMSNorm scales
``x / ‖x‖`` by ``sqrt(dim) · gamma``.

IndexTTS-2 uses two: ``perceiver_encoder`` (dim 1280, context 512, 32 latents, 8 heads of
64, ``ff_mult`` 2 → inner 1706) and ``emo_perceiver_encoder`` (dim 1024, context 512,
1 latent, 4 heads of 64, inner 1365). Attribute names mirror the official keys:
``latents``, ``proj_context``, ``layers.N.0.{to_q,to_kv,to_out}``,
``layers.N.1.{0,2}`` (the reference's ``nn.Sequential(Linear, GEGLU, Linear)``, kept as a
list so the indices match), ``norm.gamma``.

Masking as the reference's ``Attend`` (non-flash path): a mask ``(B, num_latents + T)``
(``UnifiedVoice`` prepends ``num_latents`` Trues for the latents) replaces the logits of
masked keys by ``-finfo(float32).max``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np

_NEG_MAX = -float(np.finfo(np.float32).max)


@dataclass
class PerceiverArgs:
    """``PerceiverResampler`` constructor arguments (upstream names; ``dim_context=None``
    means ``dim``, as upstream)."""

    dim: int
    depth: int = 2
    dim_context: int | None = None
    num_latents: int = 32
    dim_head: int = 64
    heads: int = 8
    ff_mult: float = 4

    @property
    def context_dim(self) -> int:
        return self.dim if self.dim_context is None else self.dim_context

    @property
    def ff_inner(self) -> int:
        """GEGLU width ``int(dim · ff_mult · 2 / 3)`` (1706 for 1280 × 2, 1365 for 1024 × 2)."""
        return int(self.dim * self.ff_mult * 2 / 3)


class GEGLU(nn.Module):
    """``x, gate = chunk(2)``; ``gelu(gate) · x`` (exact, erf-based GELU)."""

    def __call__(self, x: mx.array) -> mx.array:
        value, gate = mx.split(x, 2, axis=-1)
        return nn.gelu(gate) * value


class RMSNorm(nn.Module):
    """``x / max(‖x‖, 1e-12) · sqrt(dim) · gamma`` (``F.normalize`` based, as upstream)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale: float = dim**0.5
        self.gamma = mx.ones((dim,))

    def __call__(self, x: mx.array) -> mx.array:
        norm = mx.sqrt(mx.sum(x * x, axis=-1, keepdims=True))
        return x / mx.maximum(norm, 1e-12) * self.scale * self.gamma


class Attention(nn.Module):
    """Multi-head cross-attention of the latents over ``[latents; context]`` (no biases)."""

    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8) -> None:
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        inner = dim_head * heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def __call__(self, x: mx.array, context: mx.array, mask: mx.array | None = None) -> mx.array:
        """``x (B, n, dim)`` attends to ``cat(x, context) (B, n + T, dim)``; ``mask
        (B, n + T)`` bool marks the valid keys (None: all)."""
        context = mx.concatenate([x, context], axis=1)
        k, v = mx.split(self.to_kv(context), 2, axis=-1)

        def heads(y: mx.array) -> mx.array:  # (B, N, h·d) → (B, h, N, d)
            return y.reshape(y.shape[0], y.shape[1], self.heads, -1).transpose(0, 2, 1, 3)

        q, k, v = heads(self.to_q(x)), heads(k), heads(v)
        sim = (q @ k.transpose(0, 1, 3, 2)) * self.dim_head**-0.5
        if mask is not None:
            sim = mx.where(mask[:, None, None, :], sim, _NEG_MAX)
        out = mx.softmax(sim, axis=-1) @ v
        return self.to_out(out.transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[1], -1))


class PerceiverResampler(nn.Module):
    """``context (B, T, dim_context)`` → ``(B, num_latents, dim)``."""

    def __init__(self, args: PerceiverArgs) -> None:
        super().__init__()
        self.args = args
        if args.context_dim != args.dim:
            self.proj_context = nn.Linear(args.context_dim, args.dim)
        self.latents = mx.zeros((args.num_latents, args.dim))
        # Per layer [attention, [Linear, GEGLU, Linear]]: lists, as the checkpoint's keys
        # (layers.<i>.0.*, layers.<i>.1.<j>.*) are laid out.
        self.layers: list[list[Any]] = [
            [
                Attention(args.dim, args.dim_head, args.heads),
                [
                    nn.Linear(args.dim, args.ff_inner * 2),
                    GEGLU(),
                    nn.Linear(args.ff_inner, args.dim),
                ],
            ]
            for _ in range(args.depth)
        ]
        self.norm = RMSNorm(args.dim)

    def __call__(self, context: mx.array, mask: mx.array | None = None) -> mx.array:
        """Resample.

        Args:
            context: ``(B, T, dim_context)``.
            mask: ``(B, num_latents + T)`` bool over ``[latents; context]`` (the caller
                prepends ``num_latents`` Trues, as ``UnifiedVoice`` does), or None.

        Returns:
            ``(B, num_latents, dim)``.
        """
        if "proj_context" in self:
            context = self.proj_context(context)
        latents = mx.broadcast_to(self.latents, (context.shape[0], *self.latents.shape))
        for attn, feed_forward in self.layers:
            latents = attn(latents, context, mask) + latents
            h = latents
            for module in feed_forward:
                h = module(h)
            latents = h + latents
        return self.norm(latents)
