"""Conformer conditioning encoder of the IndexTTS-2 GPT (``UnifiedVoice``).

Mirrors ``indextts/gpt/conformer_encoder.py: ConformerEncoder`` with the modules of
``indextts/gpt/conformer/{subsampling,embedding,attention}.py`` (a WeNet conformer) in the
configuration IndexTTS-2 uses for ``conditioning_encoder`` (6 blocks, 8 heads, FFN 2048) and
``emo_conditioning_encoder`` (4 blocks, 4 heads, FFN 1024): ``input_layer="conv2d2"``,
``pos_enc_layer_type="rel_pos"``, pre-norm, no macaron FFN, conv module with kernel 15,
SiLU activations, every LayerNorm with eps 1e-5. Inference only (no dropout, no cache).

The flow of :class:`ConformerEncoder` for ``x (B, T, 1024)``:

1. :class:`Conv2dSubsampling2`: Conv2d(1 → 512, 3×3, stride 2) + ReLU over (time, feature),
   flattened per frame in the reference's ``(channel, feature)`` order → Linear
   (512·511 → 512). ``T' = (T − 1) // 2`` frames; the frame mask becomes ``mask[:, 2::2]``.
2. :class:`RelPositionalEncoding`: ``x · sqrt(512)`` and the sinusoidal table rows
   ``0 .. T'-1`` (the reference's ``pe`` buffer, recomputed here the way it is built).
3. Conformer blocks (pre-norm): ``x += MHA(norm_mha(x))``, ``x += conv(norm_conv(x))``,
   ``x += FFN(norm_ff(x))``, ``x = norm_final(x)``; then ``after_norm``.

Reference behaviour reproduced on purpose:

* the "relative" attention has **no relative shift** (upstream comments ``rel_shift`` out):
  the positional term is ``(q + pos_bias_v) · linear_pos(pe[j])`` for key ``j``, i.e. an
  absolute-position term; together with ``(q + pos_bias_u) · k_j`` it is divided by
  ``sqrt(d_k)``;
* masking: attention scores towards masked keys are ``-inf`` and their weights then 0
  (queries at masked frames are still computed); the conv module zeroes masked frames
  before its first pointwise conv and after its last (so masked frames reach the
  depthwise conv as ``GLU(bias)``, not as zeros: a padded row of a batch is not exactly
  the same sequence run alone, in the reference as here);
* the "lengths" ``UnifiedVoice`` passes are the feature size, 1024, not the frame count
  (see :mod:`mlx_indextts_models.gpt_conditioning`); that is the caller's business: here
  ``lengths`` are frame counts of the input.

Tensors are channels-last ``(B, T, C)``. Attribute names mirror the official
``conditioning_encoder.*`` keys (``embed.conv.0``, ``embed.out.0``,
``encoders.N.self_attn.linear_pos``, ``encoders.N.conv_module.depthwise_conv``, ...); the
``embed.pos_enc.pe`` buffer is not a parameter (it is recomputed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn
import numpy as np

# CPU fast paths for the transcendental elementwise steps (MLX's CPU exp is scalar code;
# these run numpy's vectorized exp over worker threads, and are plain MLX ops on a GPU).
from mlx_indextts_models.cpu_ops import glu, silu, softmax
from mlx_indextts_models.layers import depthwise_conv1d, length_mask


@dataclass
class ConformerArgs:
    """``ConformerEncoder`` constructor arguments (upstream names; IndexTTS-2's speaker
    encoder by default). Only the variant IndexTTS-2 uses is implemented: other values of
    ``input_layer``, ``pos_enc_layer_type``, ``normalize_before``, ``macaron_style``,
    ``use_cnn_module`` and ``concat_after`` are rejected."""

    input_size: int = 1024
    output_size: int = 512
    attention_heads: int = 8
    linear_units: int = 2048
    num_blocks: int = 6
    input_layer: str = "conv2d2"
    pos_enc_layer_type: str = "rel_pos"
    normalize_before: bool = True
    concat_after: bool = False
    macaron_style: bool = False
    use_cnn_module: bool = True
    cnn_module_kernel: int = 15

    def __post_init__(self) -> None:
        unsupported = {
            "input_layer": (self.input_layer, "conv2d2"),
            "pos_enc_layer_type": (self.pos_enc_layer_type, "rel_pos"),
            "normalize_before": (self.normalize_before, True),
            "concat_after": (self.concat_after, False),
            "macaron_style": (self.macaron_style, False),
            "use_cnn_module": (self.use_cnn_module, True),
        }
        for name, (value, supported) in unsupported.items():
            if value != supported:
                raise ValueError(f"ConformerArgs.{name}={value!r}: only {supported!r} is ported")
        if self.output_size % self.attention_heads:
            raise ValueError("output_size must be a multiple of attention_heads")
        if self.cnn_module_kernel % 2 == 0:
            raise ValueError("cnn_module_kernel must be odd (as upstream asserts)")


def subsampled_length(length: int) -> int:
    """Frames after :class:`Conv2dSubsampling2` (3-tap, stride-2 conv): ``(T − 1) // 2``."""
    return max(0, (length - 3) // 2 + 1)


def positional_encoding(length: int, d_model: int) -> np.ndarray:
    """Rows ``0 .. length-1`` of the reference's sinusoidal ``pe`` table, ``(length, d_model)``.

    ``pe[p, 2i] = sin(p · exp(2i · −ln(10000)/d))``, ``pe[p, 2i+1] = cos(...)``, evaluated in
    float32 in the reference's order. It equals the checkpoint's ``pe`` buffer up to the
    rounding of the float32 ``exp`` (torch's differs by 1 ulp at some frequencies, an angle
    error that grows with ``p``): ``|Δ| ≤ 1.2e-7 · p``, under 3.1e-5 over the 374 rows a 15 s
    prompt uses, with no visible effect downstream (parity max|Δ| ~3e-6).
    """
    position = np.arange(length, dtype=np.float32)[:, None]
    scale = np.float32(-(math.log(10000.0) / d_model))
    div_term = np.exp(np.arange(0, d_model, 2, dtype=np.float32) * scale)
    angle = position * div_term
    pe = np.empty((length, d_model), dtype=np.float32)
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle)
    return pe


class RelPositionalEncoding(nn.Module):
    """Scales the input by ``sqrt(d_model)`` and returns the table rows for its frames
    (``max_len`` 5000 as upstream, whose ``position_encoding`` asserts ``T' < 5000``)."""

    def __init__(self, d_model: int, max_len: int = 5000) -> None:
        super().__init__()
        self.d_model = d_model
        self.xscale = math.sqrt(d_model)
        self.max_len = max_len

    def __call__(self, x: mx.array) -> tuple[mx.array, mx.array]:
        """``x (B, T', d)`` → ``(x · sqrt(d), pos_emb (1, T', d))``."""
        if x.shape[1] >= self.max_len:
            raise ValueError(f"{x.shape[1]} frames: the reference supports < {self.max_len}")
        pos_emb = mx.array(positional_encoding(x.shape[1], self.d_model))[None]
        return x * self.xscale, pos_emb.astype(x.dtype)  # a half model stays half


class Conv2dSubsampling2(nn.Module):
    """Conv2d(1 → odim, 3, stride 2) + ReLU, then Linear(odim · ((idim − 1) // 2) → odim).

    ``conv.0.weight`` has the MLX conv2d layout ``(odim, 3, 3, 1)``; the conv runs as one
    small matmul per output frame producing ``(B, T', odim, F')`` directly, the reference's
    ``(channel, feature)`` order, so ``out.0.weight`` keeps the official layout.
    """

    def __init__(self, idim: int, odim: int) -> None:
        super().__init__()
        self.conv = [nn.Conv2d(1, odim, kernel_size=3, stride=2)]
        self.out = [nn.Linear(odim * ((idim - 1) // 2), odim)]
        self.pos_enc = RelPositionalEncoding(odim)

    def conv_relu(self, x: mx.array) -> mx.array:
        """``x (B, T, F)`` → ``ReLU(conv(x))`` as ``(B, T', C·F')`` in ``(c, f)`` order."""
        conv = self.conv[0]
        b, t, f = x.shape
        t_out, f_out = subsampled_length(t), subsampled_length(f)
        taps = [
            x[:, i : i + 2 * (t_out - 1) + 1 : 2, j : j + 2 * (f_out - 1) + 1 : 2]
            for i in range(3)
            for j in range(3)
        ]
        patches = mx.stack(taps, axis=2)  # (B, T', 9, F'), taps in (kh, kw) order
        weight = conv.weight.reshape(conv.weight.shape[0], 9)  # (C, kh·kw), in = 1
        h = mx.maximum(weight @ patches + conv.bias[:, None], 0.0)  # (B, T', C, F')
        return h.reshape(b, t_out, -1)

    def __call__(
        self, x: mx.array, mask: mx.array | None
    ) -> tuple[mx.array, mx.array, mx.array | None]:
        """``x (B, T, idim)``, ``mask (B, T)`` or None → ``(x (B, T', odim) · sqrt(odim),
        pos_emb (1, T', odim), mask[:, 2::2])``."""
        if x.shape[1] < 3:
            raise ValueError(f"the conv2d2 subsampling needs at least 3 frames, got {x.shape[1]}")
        # The Linear over C·F' = 261632 inputs is most of the encoder's time (100 GFLOP for
        # 374 frames); the conv's (B, T', C·F') output, 391 MB for 15 s, is its input.
        x, pos_emb = self.pos_enc(self.out[0](self.conv_relu(x)))
        return x, pos_emb, None if mask is None else mask[:, 2::2]


class RelPositionMultiHeadedAttention(nn.Module):
    """WeNet ``RelPositionMultiHeadedAttention`` as upstream runs it (no relative shift)."""

    def __init__(self, n_head: int, n_feat: int) -> None:
        super().__init__()
        self.h = n_head
        self.d_k = n_feat // n_head
        self.linear_q = nn.Linear(n_feat, n_feat)
        self.linear_k = nn.Linear(n_feat, n_feat)
        self.linear_v = nn.Linear(n_feat, n_feat)
        self.linear_out = nn.Linear(n_feat, n_feat)
        self.linear_pos = nn.Linear(n_feat, n_feat, bias=False)
        self.pos_bias_u = mx.zeros((n_head, self.d_k))
        self.pos_bias_v = mx.zeros((n_head, self.d_k))

    def scores(self, x: mx.array, pos_emb: mx.array) -> tuple[mx.array, mx.array]:
        """Attention logits ``(B, h, T, T)`` and the values ``(B, h, T, d_k)``:
        ``((q + u) · k_j + (q + v) · linear_pos(pe_j)) / sqrt(d_k)``."""
        t = x.shape[1]

        def split(y: mx.array) -> mx.array:  # (B, T, h·d_k) → (B, T, h, d_k)
            return y.reshape(y.shape[0], t, self.h, self.d_k)

        q = split(self.linear_q(x))
        k = split(self.linear_k(x)).transpose(0, 2, 3, 1)  # (B, h, d_k, T)
        v = split(self.linear_v(x)).transpose(0, 2, 1, 3)
        p = split(self.linear_pos(pos_emb)).transpose(0, 2, 3, 1)  # (1, h, d_k, T)
        q_u = (q + self.pos_bias_u).transpose(0, 2, 1, 3)
        q_v = (q + self.pos_bias_v).transpose(0, 2, 1, 3)
        return (q_u @ k + q_v @ p) / math.sqrt(self.d_k), v

    def __call__(self, x: mx.array, pos_emb: mx.array, mask: mx.array | None) -> mx.array:
        """Self-attention of ``x (B, T, d)``; ``mask (B, T)`` marks the valid keys."""
        scores, v = self.scores(x, pos_emb)
        if mask is None:
            attn = softmax(scores)
        else:
            keys = mask[:, None, None, :]
            attn = mx.where(keys, softmax(mx.where(keys, scores, -mx.inf)), 0.0)
        out = (attn @ v).transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[1], -1)
        return self.linear_out(out)


class PositionwiseFeedForward(nn.Module):
    """``w_2(SiLU(w_1(x)))``."""

    def __init__(self, idim: int, hidden_units: int) -> None:
        super().__init__()
        self.w_1 = nn.Linear(idim, hidden_units)
        self.w_2 = nn.Linear(hidden_units, idim)

    def __call__(self, x: mx.array) -> mx.array:
        return self.w_2(silu(self.w_1(x)))


def pointwise(conv: nn.Conv1d, x: mx.array) -> mx.array:
    """A kernel-1 Conv1d (MLX weight ``(out, 1, in)``) as a matmul over ``x (B, T, in)``."""
    return mx.addmm(conv.bias, x.reshape(-1, x.shape[-1]), conv.weight[:, 0, :].T).reshape(
        x.shape[0], x.shape[1], -1
    )


class ConvolutionModule(nn.Module):
    """Pointwise conv (C → 2C) → GLU → depthwise conv (k) → LayerNorm → SiLU → pointwise
    conv (C → C), with masked frames zeroed at the input and the output."""

    def __init__(self, channels: int, kernel_size: int = 15) -> None:
        super().__init__()
        self.pointwise_conv1 = nn.Conv1d(channels, 2 * channels, kernel_size=1)
        self.depthwise_conv = nn.Conv1d(
            channels, channels, kernel_size, padding=kernel_size // 2, groups=channels
        )
        self.norm = nn.LayerNorm(channels, eps=1e-5)
        self.pointwise_conv2 = nn.Conv1d(channels, channels, kernel_size=1)

    def __call__(self, x: mx.array, mask: mx.array | None) -> mx.array:
        """``x (B, T, C)``, ``mask (B, T)`` or None → ``(B, T, C)``."""
        if mask is not None:
            x = mx.where(mask[..., None], x, 0.0)
        value, gate = mx.split(pointwise(self.pointwise_conv1, x), 2, axis=-1)
        h = depthwise_conv1d(glu(value, gate), self.depthwise_conv.weight, self.depthwise_conv.bias)
        h = pointwise(self.pointwise_conv2, silu(self.norm(h)))
        return h if mask is None else mx.where(mask[..., None], h, 0.0)


class ConformerEncoderLayer(nn.Module):
    """Pre-norm conformer block without macaron FFN."""

    def __init__(self, args: ConformerArgs) -> None:
        super().__init__()
        d = args.output_size
        self.self_attn = RelPositionMultiHeadedAttention(args.attention_heads, d)
        self.feed_forward = PositionwiseFeedForward(d, args.linear_units)
        self.conv_module = ConvolutionModule(d, args.cnn_module_kernel)
        self.norm_ff = nn.LayerNorm(d, eps=1e-5)
        self.norm_mha = nn.LayerNorm(d, eps=1e-5)
        self.norm_conv = nn.LayerNorm(d, eps=1e-5)
        self.norm_final = nn.LayerNorm(d, eps=1e-5)

    def __call__(self, x: mx.array, pos_emb: mx.array, mask: mx.array | None) -> mx.array:
        x = x + self.self_attn(self.norm_mha(x), pos_emb, mask)
        x = x + self.conv_module(self.norm_conv(x), mask)
        x = x + self.feed_forward(self.norm_ff(x))
        out: mx.array = self.norm_final(x)
        return out


class ConformerEncoder(nn.Module):
    """``ConformerEncoder(input_size=1024, ...)`` of ``UnifiedVoice``."""

    def __init__(self, args: ConformerArgs) -> None:
        super().__init__()
        self.args = args
        self.embed = Conv2dSubsampling2(args.input_size, args.output_size)
        self.encoders = [ConformerEncoderLayer(args) for _ in range(args.num_blocks)]
        self.after_norm = nn.LayerNorm(args.output_size, eps=1e-5)

    def __call__(
        self,
        x: mx.array,
        lengths: Sequence[int] | mx.array | None = None,
        mask: mx.array | None = None,
    ) -> tuple[mx.array, mx.array]:
        """Encode features.

        Args:
            x: ``(B, T, input_size)`` (the normalized W2V-BERT features).
            lengths: ``(B,)`` valid frame counts of ``x``; a length ``≥ T`` leaves every
                frame valid (as the reference's mask does).
            mask: ``(B, T)`` bool frame validity, instead of ``lengths``. Neither: every
                frame is valid.

        Returns:
            ``(y, mask)``: ``y (B, T', output_size)`` with ``T' = (T − 1) // 2`` and the
            subsampled validity ``mask (B, T')`` (bool).
        """
        b, t, _ = x.shape
        if lengths is not None:
            if mask is not None:
                raise ValueError("pass lengths or mask, not both")
            mask = length_mask(lengths, t)
        if mask is not None and bool(mx.all(mask)):
            mask = None  # nothing padded: skip the masking work (same result)
        x, pos_emb, mask = self.embed(x, mask)
        for layer in self.encoders:
            x = layer(x, pos_emb, mask)
        x = self.after_norm(x)
        if mask is None:
            mask = mx.ones((b, x.shape[1]), dtype=mx.bool_)
        return x, mask
