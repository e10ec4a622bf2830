"""W2V-BERT 2.0 encoder (``transformers.Wav2Vec2BertModel``, ``facebook/w2v-bert-2.0``).

Mirrors ``transformers/models/wav2vec2_bert/modeling_wav2vec2_bert.py`` in inference mode
(no dropout, no SpecAugment, no adapter) for the configuration IndexTTS-2 uses:
``position_embeddings_type="relative_key"``, ``hidden_act="swish"``. IndexTTS-2 reads
``hidden_states[17]`` (index 0 is the feature projection's output), i.e. the output of the
17th conformer layer, then normalizes it with ``wav2vec2bert_stats.pt``
(:func:`normalize_semantic`). Layers 18-24 are never needed: the converted ``w2vbert.npz``
holds the first 17 and :class:`W2VBertModel` is built with ``num_hidden_layers=17``.

Masking follows the reference exactly. With an ``attention_mask`` (0 = padded frame, as the
SeamlessM4T extractor marks a stacked frame that holds padding):

* the feature projection's output is set to 0 at padded frames;
* every attention score towards a padded key is replaced by the dtype's minimum (queries
  at padded frames are still computed, over the valid keys);
* each conv module sets its layer-normed input to 0 at padded frames before the pointwise
  conv, and its depthwise conv is causal (all ``kernel - 1`` zeros of padding on the left).

Tensors are channels-last, ``(B, T, C)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn

from mlx_indextts_models.cpu_ops import causal_depthwise_conv1d, glu, silu, softmax

#: ``hidden_states`` index IndexTTS-2 takes: the output of this many conformer layers.
SEMANTIC_LAYER = 17

#: Attention scores are computed a few heads at a time so that each (B, heads, T, T)
#: block stays under about this many elements (8 MB): larger blocks fall outside malloc's
#: reusable heap and pay page faults on every allocation.
SCORE_BLOCK_ELEMENTS = 1 << 21


@dataclass
class W2VBertArgs:
    """``Wav2Vec2BertConfig`` fields that shape inference (upstream names; defaults = w2v-bert-2.0).

    ``num_hidden_layers`` is the number of layers *built*: 24 in the official model, 17 for
    the converted ``w2vbert.npz`` IndexTTS-2 uses.
    """

    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    feature_projection_input_dim: int = 160
    hidden_act: str = "swish"
    layer_norm_eps: float = 1e-5
    position_embeddings_type: str = "relative_key"
    left_max_position_embeddings: int = 64
    right_max_position_embeddings: int = 8
    conv_depthwise_kernel_size: int = 31
    add_adapter: bool = False
    use_intermediate_ffn_before_adapter: bool = False

    def __post_init__(self) -> None:
        if self.position_embeddings_type != "relative_key":
            raise ValueError(
                f"only position_embeddings_type='relative_key' (w2v-bert-2.0) is ported, "
                f"got {self.position_embeddings_type!r}"
            )
        if self.add_adapter or self.use_intermediate_ffn_before_adapter:
            raise ValueError("the adapter and the intermediate FFN are not ported")
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"unsupported hidden_act {self.hidden_act!r}")
        if self.conv_depthwise_kernel_size % 2 == 0:
            raise ValueError("conv_depthwise_kernel_size must be odd (as upstream requires)")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")


_ACTIVATIONS = {"swish": silu, "silu": silu, "gelu": nn.gelu, "relu": nn.relu}


def relative_key_index(query_length: int, key_length: int, left: int, right: int) -> mx.array:
    """Row of ``distance_embedding`` used for each (query, key) pair.

    ``clip(key - query, -left, right) + left``, as ``_apply_relative_key_position_encoding``.

    Returns:
        int32 ``(query_length, key_length)`` with values in ``[0, left + right]``.
    """
    distance = mx.arange(key_length)[None, :] - mx.arange(query_length)[:, None]
    return (mx.clip(distance, -left, right) + left).astype(mx.int32)


class FeatureProjection(nn.Module):
    """LayerNorm over the 160 stacked fbank values, then Linear to ``hidden_size``."""

    def __init__(self, args: W2VBertArgs) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(args.feature_projection_input_dim, eps=args.layer_norm_eps)
        self.projection = nn.Linear(args.feature_projection_input_dim, args.hidden_size)

    def __call__(self, x: mx.array) -> mx.array:
        """``x``: (B, T, 160) → (B, T, hidden_size)."""
        return self.projection(self.layer_norm(x))


class FeedForward(nn.Module):
    """Linear → activation → Linear."""

    def __init__(self, args: W2VBertArgs) -> None:
        super().__init__()
        self.intermediate_dense = nn.Linear(args.hidden_size, args.intermediate_size)
        self.output_dense = nn.Linear(args.intermediate_size, args.hidden_size)
        self.act = _ACTIVATIONS[args.hidden_act]

    def __call__(self, x: mx.array) -> mx.array:
        """``x``: (B, T, hidden_size) → (B, T, hidden_size)."""
        return self.output_dense(self.act(self.intermediate_dense(x)))


class SelfAttention(nn.Module):
    """Multi-head self-attention with a ``relative_key`` position bias.

    ``scores = (q·k + q·E[clip(j - i, -left, right) + left]) / sqrt(head_size)``, ``E`` being
    ``distance_embedding.weight``; padded keys get the float32 minimum.
    """

    def __init__(self, args: W2VBertArgs) -> None:
        super().__init__()
        d = args.hidden_size
        self.num_heads = args.num_attention_heads
        self.head_size = d // args.num_attention_heads
        self.scaling = self.head_size**-0.5
        self.linear_q = nn.Linear(d, d)
        self.linear_k = nn.Linear(d, d)
        self.linear_v = nn.Linear(d, d)
        self.linear_out = nn.Linear(d, d)
        num_positions = args.left_max_position_embeddings + args.right_max_position_embeddings + 1
        self.distance_embedding = nn.Embedding(num_positions, self.head_size)

    def __call__(
        self, x: mx.array, position_index: mx.array, key_mask: mx.array | None = None
    ) -> mx.array:
        """Attend over the sequence.

        Args:
            x: (B, T, hidden_size).
            position_index: (T, T) rows of ``distance_embedding`` (:func:`relative_key_index`).
            key_mask: bool (B, T), False at padded frames; None: no padding.

        Returns:
            (B, T, hidden_size).
        """
        b, t, _ = x.shape

        def heads(proj: nn.Linear) -> mx.array:
            return proj(x).reshape(b, t, self.num_heads, self.head_size).transpose(0, 2, 1, 3)

        q = heads(self.linear_q) * self.scaling
        k, v = heads(self.linear_k), heads(self.linear_v)
        # q·E for each of the (left + right + 1) distances; each (i, j) pair then picks its own.
        by_distance = q @ self.distance_embedding.weight.T  # (B, H, T, P)
        floor = float(mx.finfo(q.dtype).min)
        step = max(1, SCORE_BLOCK_ELEMENTS // (b * t * t))
        outs = []
        for h in range(0, self.num_heads, step):
            n = min(step, self.num_heads - h)
            index = mx.broadcast_to(position_index, (b, n, t, t))
            scores = q[:, h : h + n] @ k[:, h : h + n].swapaxes(-1, -2)
            scores = scores + mx.take_along_axis(by_distance[:, h : h + n], index, axis=-1)
            if key_mask is not None:
                scores = mx.where(key_mask[:, None, None, :], scores, floor)
            outs.append(softmax(scores) @ v[:, h : h + n])
        out = mx.concatenate(outs, axis=1) if len(outs) > 1 else outs[0]
        return self.linear_out(out.transpose(0, 2, 1, 3).reshape(b, t, -1))


class ConvolutionModule(nn.Module):
    """LayerNorm → (mask) → pointwise conv → GLU → causal depthwise conv → LayerNorm →
    activation → pointwise conv."""

    def __init__(self, args: W2VBertArgs) -> None:
        super().__init__()
        d, eps = args.hidden_size, args.layer_norm_eps
        self.layer_norm = nn.LayerNorm(d, eps=eps)
        self.pointwise_conv1 = nn.Conv1d(d, 2 * d, kernel_size=1, bias=False)
        self.depthwise_conv = nn.Conv1d(
            d, d, kernel_size=args.conv_depthwise_kernel_size, groups=d, bias=False
        )
        self.depthwise_layer_norm = nn.LayerNorm(d, eps=eps)
        self.pointwise_conv2 = nn.Conv1d(d, d, kernel_size=1, bias=False)
        self.act = _ACTIVATIONS[args.hidden_act]

    def __call__(self, x: mx.array, mask: mx.array | None = None) -> mx.array:
        """``x``: (B, T, hidden_size); ``mask``: bool (B, T) or None → (B, T, hidden_size)."""
        h = self.layer_norm(x)
        if mask is not None:
            h = mx.where(mask[..., None], h, 0.0)
        value, gate = mx.split(self.pointwise_conv1(h), 2, axis=-1)
        h = causal_depthwise_conv1d(glu(value, gate), self.depthwise_conv.weight)
        out: mx.array = self.pointwise_conv2(self.act(self.depthwise_layer_norm(h)))
        return out


class EncoderLayer(nn.Module):
    """Conformer block: ½·FFN, self-attention, conv module, ½·FFN, final LayerNorm."""

    def __init__(self, args: W2VBertArgs) -> None:
        super().__init__()
        d, eps = args.hidden_size, args.layer_norm_eps
        self.ffn1_layer_norm = nn.LayerNorm(d, eps=eps)
        self.ffn1 = FeedForward(args)
        self.self_attn_layer_norm = nn.LayerNorm(d, eps=eps)
        self.self_attn = SelfAttention(args)
        self.conv_module = ConvolutionModule(args)
        self.ffn2_layer_norm = nn.LayerNorm(d, eps=eps)
        self.ffn2 = FeedForward(args)
        self.final_layer_norm = nn.LayerNorm(d, eps=eps)

    def __call__(
        self, x: mx.array, position_index: mx.array, mask: mx.array | None = None
    ) -> mx.array:
        """``x``: (B, T, hidden_size); ``mask``: bool (B, T) or None → (B, T, hidden_size)."""
        x = self.ffn1(self.ffn1_layer_norm(x)) * 0.5 + x
        x = self.self_attn(self.self_attn_layer_norm(x), position_index, mask) + x
        x = x + self.conv_module(x, mask)
        x = self.ffn2(self.ffn2_layer_norm(x)) * 0.5 + x
        out: mx.array = self.final_layer_norm(x)
        return out


class Encoder(nn.Module):
    """The stack of conformer layers (``encoder.layers.{i}``)."""

    def __init__(self, args: W2VBertArgs) -> None:
        super().__init__()
        self.layers = [EncoderLayer(args) for _ in range(args.num_hidden_layers)]


class W2VBertModel(nn.Module):
    """Feature projection and the first ``args.num_hidden_layers`` conformer layers."""

    def __init__(self, args: W2VBertArgs) -> None:
        super().__init__()
        self.args = args
        self.feature_projection = FeatureProjection(args)
        self.encoder = Encoder(args)

    def __call__(
        self,
        input_features: mx.array,
        attention_mask: mx.array | None = None,
        *,
        num_layers: int = SEMANTIC_LAYER,
    ) -> mx.array:
        """Hidden state after ``num_layers`` conformer layers (``hidden_states[num_layers]``).

        Args:
            input_features: (B, T, 160) stacked SeamlessM4T fbank features.
            attention_mask: (B, T), nonzero at real frames, 0 at padded ones; None: all real.
            num_layers: how many layers to run (0 = the masked feature projection). Layers
                beyond it are not computed.

        Returns:
            float32 (B, T, hidden_size).
        """
        available = len(self.encoder.layers)
        if not 0 <= num_layers <= available:
            raise ValueError(f"num_layers must be in [0, {available}], got {num_layers}")
        mask = None if attention_mask is None else attention_mask.astype(mx.bool_)
        if mask is not None and mask.all().item():
            mask = None  # nothing padded: masking would change nothing, skip its cost
        h = self.feature_projection(input_features)
        if mask is not None:
            h = mx.where(mask[..., None], h, 0.0)
        t = h.shape[1]
        index = relative_key_index(
            t, t, self.args.left_max_position_embeddings, self.args.right_max_position_embeddings
        )
        for layer in self.encoder.layers[:num_layers]:
            h = layer(h, index, mask)
        return h


def normalize_semantic(features: mx.array, mean: mx.array, std: mx.array) -> mx.array:
    """``(features - mean) / std`` (``IndexTTS2.get_emb``; ``std = sqrt(var)`` of the stats file).

    Args:
        features: (B, T, 1024) ``hidden_states[17]``.
        mean, std: (1024,).

    Returns:
        (B, T, 1024) ``spk_cond_emb``.
    """
    return (features - mean) / std
