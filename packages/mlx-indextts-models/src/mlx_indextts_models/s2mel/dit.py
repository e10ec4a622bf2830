"""S2Mel DiT estimator (``indextts/s2mel/modules/diffusion_transformer.py: DiT``) in MLX.

The CFM's velocity field for IndexTTS-2's configuration (``s2mel.DiT``: 13 layers, 512 wide,
8 heads, U-ViT skip connections, long skip, style conditioning by concatenation, WaveNet
final layer). One forward, channels-last:

1. ``t1 = t_embedder(t)`` (sinusoidal, scale 1000, 256 → MLP → 512);
2. ``x_in = cond_x_merge_linear(cat[x, prompt_x, cond_projection(cond), style])``
   (80 + 80 + 512 + 192 = 864 → 512);
3. the gpt-fast ``transformer`` (``gpt_fast/model.py``): per block an adaptive RMSNorm
   (``weight · RMSNorm(x) + bias`` with ``weight, bias`` projected from ``t1``), fused-QKV
   attention with interleaved-pair rotary embeddings (base 10000, head dim 64, positions
   ``0..T-1``) and a key mask from ``x_lens``, a SwiGLU feed-forward (1536); U-ViT:
   blocks ``0..depth//2 - 1`` emit skips, blocks ``> depth//2`` pop them (LIFO) through
   ``skip_in_linear(cat[x, skip])``; a final adaptive RMSNorm;
4. long skip ``skip_linear(cat[x_res, x])``; WaveNet head:
   ``wavenet(conv1(x_res), g=t_embedder2(t)) + res_projection(x_res)``;
   ``final_layer`` (LayerNorm without affine, shift/scale from ``t1``, weight-normed Linear);
   ``conv2`` (1×1, 512 → 80).

Unused by inference and absent here (the mapping drops them by name): ``x_embedder``
(built, weight-normed, but never called by ``forward``), ``cond_embedder`` (discrete
content), ``content_mask_embedder``, ``skip_in_linear`` of the blocks that
receive no skip, the ``input_pos`` / ``freqs`` buffers (recomputed).

Layout: channels-last — ``x``, ``prompt_x`` ``(B, T, 80)`` and the output ``(B, T, 80)``
(the reference takes and returns ``(B, 80, T)``). Attribute names mirror the official
``cfm.estimator.*`` keys.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from mlx_indextts_models.config import unsupported_settings
from mlx_indextts_models.cpu_ops import attention, silu
from mlx_indextts_models.layers import length_mask
from mlx_indextts_models.s2mel.wavenet import WN, WaveNetArgs

#: ``DiT.input_pos`` / ``ModelArgs.block_size``: the rotary table's length (max frames).
MAX_FRAMES = 16384


#: The only values of these :class:`DiTArgs` flags that are ported (IndexTTS-2's).
_SUPPORTED: dict[str, object] = {
    "time_as_token": False,
    "style_as_token": False,
    "is_causal": False,
    "final_layer_type": "wavenet",
    "f0_condition": False,
    "add_resblock_in_transformer": False,
}


@dataclass
class DiTArgs:
    """``s2mel.DiT`` of IndexTTS-2's ``config.yaml`` (upstream names and values).

    ``class_dropout_prob``, ``block_size`` (the reference uses 16384 regardless),
    ``target``, ``content_type``, ``content_codebook_size``, ``content_codebooks``,
    ``f0_condition``, ``n_f0_bins`` and ``add_resblock_in_transformer`` are kept for the
    record; settings other than IndexTTS-2's for the flags checked in :class:`DiT` are
    not supported.
    """

    hidden_dim: int = 512
    num_heads: int = 8
    depth: int = 13
    class_dropout_prob: float = 0.1
    block_size: int = 8192
    in_channels: int = 80
    style_condition: bool = True
    final_layer_type: str = "wavenet"
    target: str = "mel"
    content_dim: int = 512
    content_codebook_size: int = 1024
    content_type: str = "discrete"
    f0_condition: bool = False
    n_f0_bins: int = 512
    content_codebooks: int = 1
    is_causal: bool = False
    long_skip_connection: bool = True
    zero_prompt_speech_token: bool = False
    time_as_token: bool = False
    style_as_token: bool = False
    uvit_skip_connection: bool = True
    add_resblock_in_transformer: bool = False


def find_multiple(n: int, k: int) -> int:
    return n if n % k == 0 else n + k - (n % k)


def timestep_frequencies(
    frequency_embedding_size: int = 256, max_period: int = 10000
) -> np.ndarray:
    """``TimestepEmbedder.freqs``: ``exp(-ln(max_period) · i / half)``, float32 ``(half,)``,
    evaluated in float32 step by step as PyTorch does."""
    half = frequency_embedding_size // 2
    arg = np.float32(-math.log(max_period)) * np.arange(half, dtype=np.float32)
    frequencies: np.ndarray = np.exp(arg / np.float32(half))
    return frequencies.astype(np.float32)


class TimestepEmbedder(nn.Module):
    """Scalar ``t`` ``(B,)`` → ``(B, hidden)``: ``mlp(cat[cos(1000·t·f), sin(1000·t·f)])``."""

    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256) -> None:
        super().__init__()
        self.mlp = [
            nn.Linear(frequency_embedding_size, hidden_size),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size),
        ]
        self.frequency_embedding_size = frequency_embedding_size
        self.scale = 1000.0
        self._freqs = mx.array(timestep_frequencies(frequency_embedding_size))

    def timestep_embedding(self, t: mx.array) -> mx.array:
        args = self.scale * t[:, None].astype(mx.float32) * self._freqs[None]
        embedding = mx.concatenate([mx.cos(args), mx.sin(args)], axis=-1)
        if self.frequency_embedding_size % 2:
            embedding = mx.concatenate([embedding, mx.zeros_like(embedding[:, :1])], axis=-1)
        return embedding

    def __call__(self, t: mx.array) -> mx.array:
        # the angles in float32 always; the MLP in its weights' dtype (a half model's)
        h = self.timestep_embedding(t).astype(self.mlp[0].weight.dtype)
        for layer in self.mlp:
            h = layer(h)
        return h


class RMSNorm(nn.Module):
    """``x · rsqrt(mean(x²) + eps) · weight`` over the last axis."""

    def __init__(self, dims: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = mx.ones((dims,))

    def __call__(self, x: mx.array) -> mx.array:
        return mx.fast.rms_norm(x, self.weight, self.eps)


class AdaptiveLayerNorm(nn.Module):
    """``weight · norm(x) + bias`` with ``weight, bias = split(project_layer(c))``."""

    def __init__(self, d_model: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.project_layer = nn.Linear(d_model, 2 * d_model)
        self.norm = RMSNorm(d_model, eps)
        self.d_model = d_model

    def __call__(self, x: mx.array, c: mx.array) -> mx.array:
        """``x`` ``(B, T, D)``, ``c`` ``(B, 1, D)`` → ``(B, T, D)``."""
        weight, bias = mx.split(self.project_layer(c), 2, axis=-1)
        return weight * self.norm(x) + bias


class Attention(nn.Module):
    """Fused-QKV self-attention with interleaved rotary embeddings (gpt-fast ``Attention``)."""

    def __init__(self, dim: int, n_head: int, head_dim: int, rope_base: float = 10000.0) -> None:
        super().__init__()
        self.wqkv = nn.Linear(dim, 3 * n_head * head_dim, bias=False)
        self.wo = nn.Linear(n_head * head_dim, dim, bias=False)
        self.n_head = n_head
        self.head_dim = head_dim
        self.rope_base = rope_base
        self.scale = head_dim**-0.5

    def __call__(self, x: mx.array, key_lengths: Sequence[int] | None) -> mx.array:
        """``x`` ``(B, T, D)``; ``key_lengths``: valid keys per row (len 1 broadcasts) or None."""
        b, t, _ = x.shape
        qkv = self.wqkv(x).reshape(b, t, 3, self.n_head, self.head_dim).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        return self.wo(attention(q, k, v, self.scale, key_lengths, rope_base=self.rope_base))


class FeedForward(nn.Module):
    """SwiGLU: ``w2(silu(w1 x) · w3 x)``."""

    def __init__(self, dim: int, intermediate_size: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, intermediate_size, bias=False)
        self.w3 = nn.Linear(dim, intermediate_size, bias=False)
        self.w2 = nn.Linear(intermediate_size, dim, bias=False)

    def __call__(self, x: mx.array) -> mx.array:
        return self.w2(silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    """gpt-fast ``TransformerBlock`` with adaptive norms; ``skip_in_linear`` only on the
    blocks that receive a U-ViT skip."""

    def __init__(self, dim: int, n_head: int, intermediate_size: int, receives_skip: bool) -> None:
        super().__init__()
        self.attention = Attention(dim, n_head, dim // n_head)
        self.feed_forward = FeedForward(dim, intermediate_size)
        self.ffn_norm = AdaptiveLayerNorm(dim)
        self.attention_norm = AdaptiveLayerNorm(dim)
        if receives_skip:
            self.skip_in_linear = nn.Linear(2 * dim, dim)

    def __call__(
        self,
        x: mx.array,
        c: mx.array,
        key_lengths: Sequence[int] | None,
        skip: mx.array | None = None,
    ) -> mx.array:
        if skip is not None:
            x = self.skip_in_linear(mx.concatenate([x, skip], axis=-1))
        h = x + self.attention(self.attention_norm(x, c), key_lengths)
        return h + self.feed_forward(self.ffn_norm(h, c))


class Transformer(nn.Module):
    """gpt-fast ``Transformer`` without embeddings: ``(B, T, D)`` → ``(B, T, D)``."""

    def __init__(self, dim: int, n_layer: int, n_head: int, uvit_skip_connection: bool) -> None:
        super().__init__()
        intermediate = find_multiple(int(2 * 4 * dim / 3), 256)
        if uvit_skip_connection:
            self.layers_emit_skip = [i for i in range(n_layer) if i < n_layer // 2]
            self.layers_receive_skip = [i for i in range(n_layer) if i > n_layer // 2]
        else:
            self.layers_emit_skip, self.layers_receive_skip = [], []
        self.layers = [
            TransformerBlock(dim, n_head, intermediate, i in self.layers_receive_skip)
            for i in range(n_layer)
        ]
        self.norm = AdaptiveLayerNorm(dim)

    def __call__(self, x: mx.array, c: mx.array, key_lengths: Sequence[int] | None) -> mx.array:
        """``x`` ``(B, T, D)``, ``c`` ``(B, 1, D)``, ``key_lengths`` as :class:`Attention`'s."""
        skips: list[mx.array] = []
        for i, layer in enumerate(self.layers):
            skip = skips.pop() if i in self.layers_receive_skip else None
            x = layer(x, c, key_lengths, skip)
            if i in self.layers_emit_skip:
                skips.append(x)
        return self.norm(x, c)


class FinalLayer(nn.Module):
    """``linear(modulate(LayerNorm(x), shift, scale))``, ``shift, scale`` from ``c``."""

    def __init__(self, hidden_size: int, out_channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, out_channels)
        self.adaLN_modulation = [nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size)]

    def __call__(self, x: mx.array, c: mx.array) -> mx.array:
        """``x`` ``(B, T, H)``, ``c`` ``(B, H)`` → ``(B, T, out)``."""
        shift, scale = mx.split(self.adaLN_modulation[1](nn.silu(c)), 2, axis=-1)
        h = mx.fast.layer_norm(x, None, None, 1e-6)
        return self.linear(h * (1 + scale[:, None]) + shift[:, None])


class DiT(nn.Module):
    """The CFM estimator: velocity ``(B, T, 80)`` for noisy mel ``x`` at time ``t``."""

    def __init__(
        self,
        args: DiTArgs | None = None,
        wavenet: WaveNetArgs | None = None,
        style_dim: int = 192,
    ) -> None:
        super().__init__()
        args = args or DiTArgs()
        wavenet = wavenet or WaveNetArgs()
        unsupported = unsupported_settings(args, _SUPPORTED)
        if wavenet.hidden_dim != args.hidden_dim:  # FinalLayer modulates with t1 (DiT width)
            unsupported["wavenet.hidden_dim"] = wavenet.hidden_dim
        if args.style_condition != wavenet.style_condition:
            unsupported["wavenet.style_condition"] = wavenet.style_condition
        if unsupported:
            raise ValueError(f"unsupported DiT settings: {unsupported}")
        self.args = args
        self.wavenet_args = wavenet
        self.style_dim = style_dim
        dim, channels = args.hidden_dim, args.in_channels
        self.transformer = Transformer(dim, args.depth, args.num_heads, args.uvit_skip_connection)
        self.cond_projection = nn.Linear(args.content_dim, dim)
        self.t_embedder = TimestepEmbedder(dim)
        self.t_embedder2 = TimestepEmbedder(wavenet.hidden_dim)
        self.conv1 = nn.Linear(dim, wavenet.hidden_dim)
        self.conv2 = nn.Conv1d(wavenet.hidden_dim, channels, 1)
        self.wavenet = WN(wavenet, gin_channels=wavenet.hidden_dim)
        self.final_layer = FinalLayer(wavenet.hidden_dim, wavenet.hidden_dim)
        self.res_projection = nn.Linear(dim, wavenet.hidden_dim)
        if args.long_skip_connection:
            self.skip_linear = nn.Linear(dim + channels, dim)
        merge_in = dim + 2 * channels + (style_dim if args.style_condition else 0)
        self.cond_x_merge_linear = nn.Linear(merge_in, dim)

    def __call__(
        self,
        x: mx.array,
        prompt_x: mx.array,
        x_lens: Sequence[int] | None,
        t: mx.array,
        style: mx.array,
        cond: mx.array,
        *,
        from_frame: int = 0,
    ) -> mx.array:
        """The reference's ``forward(x, prompt_x, x_lens, t, style, cond)``, channels-last.

        Args:
            x: ``(B, T, 80)`` noisy mel.
            prompt_x: ``(B, T, 80)`` reference mel in the prompt frames, zeros after.
            x_lens: valid frames per row (``len`` 1 broadcasts over the batch, as the
                reference's CFG batch does), or None for all ``T``.
            t: ``(B,)`` flow time in ``[0, 1]``.
            style: ``(B, 192)`` CAMPPlus speaker style.
            cond: ``(B, T, 512)`` semantic condition (prompt + generated).
            from_frame: the first frame whose velocity is wanted (the CFM discards the
                prompt's). The transformer runs over all frames (every frame is a key),
                but the head (long skip, WaveNet, final layer) only over the frames that
                reach ``from_frame..T-1``: the WaveNet's receptive field before it
                (:meth:`WN.reach`) and after. About a third of a short segment's DiT
                work is the head on its prompt frames.

        Returns:
            ``(B, T, 80)`` velocity, zeros before ``from_frame`` (the reference's values
            from there on). Frames past ``x_lens`` are not masked (as upstream).
        """
        b, frames, _ = x.shape
        if frames > MAX_FRAMES:
            raise ValueError(f"{frames} frames exceed the DiT's {MAX_FRAMES} positions")
        t1 = self.t_embedder(t)
        parts = [x, prompt_x, self.cond_projection(cond)]
        if self.args.style_condition:
            parts.append(mx.broadcast_to(style[:, None, :], (b, frames, style.shape[-1])))
        x_in = self.cond_x_merge_linear(mx.concatenate(parts, axis=-1))
        x_mask = None
        key_lengths = None
        if x_lens is not None and min(int(v) for v in x_lens) < frames:
            key_lengths = [int(v) for v in x_lens]
            x_mask = length_mask(x_lens, frames)[:, :, None].astype(x.dtype)  # (B or 1, T, 1)
        x_res = self.transformer(x_in, t1[:, None], key_lengths)
        # The head is frame-local up to the WaveNet's reach: frames from ``start`` on give
        # exact values from ``from_frame`` on (reflect padding at ``start`` reaches no
        # further than ``reach`` frames in).
        start = max(0, min(from_frame, frames) - self.wavenet.reach())
        if start:
            x_res, x = x_res[:, start:], x[:, start:]
            x_mask = None if x_mask is None else x_mask[:, start:]
        if self.args.long_skip_connection:
            x_res = self.skip_linear(mx.concatenate([x_res, x], axis=-1))
        h = self.conv1(x_res)
        t2 = self.t_embedder2(t)
        h = self.wavenet(h, x_mask, g=t2[:, None]) + self.res_projection(x_res)
        h = self.final_layer(h, t1)
        out: mx.array = self.conv2(h)
        skipped = min(from_frame, frames)
        if skipped:
            zeros = mx.zeros((b, skipped, out.shape[-1]), out.dtype)
            out = mx.concatenate([zeros, out[:, skipped - start :]], axis=1)
        return out
