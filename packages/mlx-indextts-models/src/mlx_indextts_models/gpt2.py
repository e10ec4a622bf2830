"""GPT-2 transformer stack of UnifiedVoice (``transformers.GPT2Model`` without ``wte``/``wpe``).

Mirrors ``transformers/models/gpt2/modeling_gpt2.py`` in inference mode for the
configuration ``indextts/gpt/model_v2.py: build_hf_gpt_transformer`` builds: 24 pre-norm
blocks of width 1280 with 20 heads, ``activation_function="gelu_new"`` (the tanh
approximation), ``layer_norm_epsilon=1e-5``, attention scaled by ``1/sqrt(head_dim)``,
then ``ln_f``. The reference deletes the token embedding and replaces the position
embedding by zeros, so the stack takes ``inputs_embeds`` and the caller adds its own
learned position tables (``mel_pos_embedding``/``text_pos_embedding``).

Linear weights are stored ``(out, in)`` (``nn.Linear``, applied as ``x @ W.T``): the
checkpoint's HF ``Conv1D`` weights are ``(in, out)`` and are transposed once by the
conversion, because a small batch (3 beams) against ``(in, out)`` weights costs MKL about
2x one row (docs/performance.md).

Decoding reuses a :class:`~mlx_indextts_models.cache.KVCache` per layer. A one-position
step (:func:`_step_block`) runs each block as two compiled pieces around the cache update
and attention (:func:`_pre_attention`, :func:`_post_attention`), so MLX dispatches a few
fused kernels per layer instead of ~25 small ones (measured: docs/performance.md), and
computes its projections as ``(W @ x.T).T`` (:func:`linear_rows`).

Tensors are ``(B, L, n_embd)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn

from mlx_indextts_models.cache import DEFAULT_STEP, KVCache
from mlx_indextts_models.cpu_ops import attention, gelu_tanh


@dataclass
class GPT2Args:
    """``GPT2Config`` fields that shape inference (upstream names; defaults = IndexTTS-2's GPT).

    ``n_positions`` (``max_mel_tokens + 2 + 1 + max_text_tokens + 2`` = 2420) only bounds the
    sequence length: the stack has no position table of its own.
    """

    n_embd: int = 1280
    n_layer: int = 24
    n_head: int = 20
    n_positions: int = 2420
    n_inner: int | None = None
    activation_function: str = "gelu_new"
    layer_norm_epsilon: float = 1e-5

    def __post_init__(self) -> None:
        if self.activation_function != "gelu_new":
            raise ValueError(
                f"only activation_function='gelu_new' is ported, got {self.activation_function!r}"
            )
        if self.n_embd % self.n_head:
            raise ValueError("n_embd must be a multiple of n_head")

    @property
    def inner_dim(self) -> int:
        """MLP width: ``n_inner`` or ``4 * n_embd`` (as upstream)."""
        return self.n_inner if self.n_inner is not None else 4 * self.n_embd


def gelu_new(x: mx.array) -> mx.array:
    """HF ``gelu_new``: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""
    return 0.5 * x * (1.0 + mx.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * (x * x * x))))


class Attention(nn.Module):
    """Causal multi-head self-attention (``GPT2Attention``): fused ``c_attn`` then ``c_proj``."""

    def __init__(self, args: GPT2Args) -> None:
        super().__init__()
        self.n_head = args.n_head
        self.head_dim = args.n_embd // args.n_head
        self.scale = self.head_dim**-0.5
        self.c_attn = nn.Linear(args.n_embd, 3 * args.n_embd)
        self.c_proj = nn.Linear(args.n_embd, args.n_embd)

    def heads(self, qkv: mx.array) -> tuple[mx.array, mx.array, mx.array]:
        """``(B, L, 3 n_embd)`` → queries, keys, values, each ``(B, n_head, L, head_dim)``."""
        b, length, _ = qkv.shape
        qkv = qkv.reshape(b, length, 3, self.n_head, self.head_dim).transpose(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]

    def attend(
        self, q: mx.array, k: mx.array, v: mx.array, mask: mx.array | str | None
    ) -> mx.array:
        """Scaled dot-product attention; returns ``(B, L, n_embd)`` before ``c_proj``.

        A full causal pass (``mask == "causal"``, no cache offset) goes through
        :func:`~mlx_indextts_models.cpu_ops.attention`, numpy's softmax on the CPU."""
        if isinstance(mask, str) and mask == "causal" and q.shape[2] == k.shape[2]:
            return attention(q, k, v, self.scale, causal=True)
        out = mx.fast.scaled_dot_product_attention(q, k, v, scale=self.scale, mask=mask)
        b, _, length, _ = out.shape
        return out.transpose(0, 2, 1, 3).reshape(b, length, -1)

    def __call__(
        self, x: mx.array, mask: mx.array | str | None = None, cache: KVCache | None = None
    ) -> mx.array:
        q, k, v = self.heads(self.c_attn(x))
        if cache is not None:
            k, v = cache.update_and_fetch(k, v)
        return self.c_proj(self.attend(q, k, v, mask))


class MLP(nn.Module):
    """``c_fc`` → ``gelu_new`` → ``c_proj``."""

    def __init__(self, args: GPT2Args) -> None:
        super().__init__()
        self.c_fc = nn.Linear(args.n_embd, args.inner_dim)
        self.c_proj = nn.Linear(args.inner_dim, args.n_embd)

    def __call__(self, x: mx.array) -> mx.array:
        # gelu_tanh: numpy on the CPU; the compiled decode step keeps gelu_new
        return self.c_proj(gelu_tanh(self.c_fc(x)))


class Block(nn.Module):
    """Pre-norm block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, args: GPT2Args) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(args.n_embd, eps=args.layer_norm_epsilon)
        self.attn = Attention(args)
        self.ln_2 = nn.LayerNorm(args.n_embd, eps=args.layer_norm_epsilon)
        self.mlp = MLP(args)

    def __call__(
        self, x: mx.array, mask: mx.array | str | None = None, cache: KVCache | None = None
    ) -> mx.array:
        h = x + self.attn(self.ln_1(x), mask, cache)
        return h + self.mlp(self.ln_2(h))


def causal_mask(
    length: int, offset: int = 0, key_padding: mx.array | None = None
) -> mx.array | str | None:
    """Attention mask for ``length`` new positions after ``offset`` cached ones.

    Args:
        length: queries in this call.
        offset: positions already in the cache.
        key_padding: optional ``(B, offset + length)`` bool/0-1 array, false/0 at padded
            positions (HF's ``attention_mask``): those keys are never attended to.

    Returns:
        ``None`` (one query, no padding: it may see every key), ``"causal"``
        (lower-right aligned, handled inside the attention kernel), or a boolean
        ``(B, 1, length, offset + length)`` mask, true where attending is allowed.
    """
    if key_padding is None:
        return None if length == 1 else "causal"
    total = offset + length
    rows = mx.arange(offset, total)[:, None]
    allowed = rows >= mx.arange(total)[None, :]
    return mx.logical_and(allowed[None, None], key_padding.astype(mx.bool_)[:, None, None, :])


class GPT2Model(nn.Module):
    """``h`` (``n_layer`` blocks) and ``ln_f``: ``inputs_embeds (B, L, n_embd)`` → hidden states."""

    def __init__(self, args: GPT2Args) -> None:
        super().__init__()
        self.args = args
        self.h = [Block(args) for _ in range(args.n_layer)]
        self.ln_f = nn.LayerNorm(args.n_embd, eps=args.layer_norm_epsilon)

    @property
    def quantized(self) -> bool:
        """Whether :func:`quantize` replaced the blocks' linear layers."""
        return isinstance(self.h[0].attn.c_attn, nn.QuantizedLinear)

    def make_cache(self, step: int = DEFAULT_STEP) -> list[KVCache]:
        """One empty :class:`KVCache` per block."""
        return [KVCache(step) for _ in self.h]

    def __call__(
        self,
        inputs_embeds: mx.array,
        cache: list[KVCache] | None = None,
        mask: mx.array | str | None = None,
    ) -> mx.array:
        """Run the stack.

        Args:
            inputs_embeds: ``(B, L, n_embd)``, position embeddings already added.
            cache: one :class:`KVCache` per block, or ``None`` for a full causal pass;
                each cache's ``offset`` advances by ``L``.
            mask: overrides the default :func:`causal_mask` (e.g. one with key padding).

        Returns:
            ``(B, L, n_embd)`` after ``ln_f`` (HF's ``last_hidden_state``).
        """
        if cache is not None and len(cache) != len(self.h):
            raise ValueError(f"need one cache per block ({len(self.h)}), got {len(cache)}")
        length = inputs_embeds.shape[1]
        offset = cache[0].offset if cache else 0
        if offset + length > self.args.n_positions:
            raise ValueError(
                f"sequence of {offset + length} exceeds n_positions={self.args.n_positions}"
            )
        if mask is None:
            mask = causal_mask(length, offset)
        x = inputs_embeds
        if (
            length == 1
            and cache is not None
            and not isinstance(mask, mx.array)
            and not self.quantized
        ):
            x = x.reshape(x.shape[0], -1)
            for block, layer_cache in zip(self.h, cache, strict=True):
                x = _step_block(block, x, layer_cache)
            x = x[:, None]
        else:
            for i, block in enumerate(self.h):
                x = block(x, mask, None if cache is None else cache[i])
        out: mx.array = self.ln_f(x)
        return out


#: The bit widths :func:`quantize` takes (``mx.quantize``'s affine mode).
QUANTIZE_BITS = (4, 8)


def quantize(model: GPT2Model, bits: int, group_size: int | None = None) -> None:
    """Replace the blocks' linear layers (``c_attn``, ``c_proj``, ``c_fc``: nearly all the
    bytes a decode step reads) by ``bits``-bit :class:`mlx.nn.QuantizedLinear` layers, in
    place (affine: a scale and a bias per ``group_size`` weights; default 64, or 32 when
    the widths are not multiples of 64). Decoding then runs each block as a module
    (:meth:`Block.__call__`), not through the compiled float step.

    Raises:
        ValueError: ``bits`` not in :data:`QUANTIZE_BITS`, or widths no group size divides.
    """
    if bits not in QUANTIZE_BITS:
        raise ValueError(f"GPT quantization takes {QUANTIZE_BITS} bits, got {bits}")
    widths = (model.args.n_embd, model.args.inner_dim)
    if group_size is None:
        group_size = next((g for g in (64, 32) if all(w % g == 0 for w in widths)), 0)
    if not group_size or any(w % group_size for w in widths):
        raise ValueError(f"cannot quantize a GPT of widths {widths} in groups of 64 or 32")
    nn.quantize(
        model,
        group_size=group_size,
        bits=bits,
        class_predicate=lambda path, layer: isinstance(layer, nn.Linear) and path.startswith("h."),
    )


# ---------------------------------------------------------------------------------------
# The one-token decode step: per block, the work before the cache update (ln_1 + c_attn)
# and after attention (c_proj, residual, ln_2, MLP, residual) is compiled; the cache
# update and attention run eagerly because their shapes grow every step.


def linear_rows(x: mx.array, w: mx.array, b: mx.array) -> mx.array:
    """``x @ w.T + b`` for a few rows ``x (R, in)`` (an ``nn.Linear`` with weight ``w``,
    bias ``b``), computed as ``(w @ x.T).T``: use it for heads in a decode step too.

    Same result, but MKL handles this product (M = out, N = R) far better for 3 rows
    than ``x @ w.T`` (M = 3) (measured: docs/performance.md). ``x`` is made row-major
    first: as a
    column-major array (the transposed output of a previous product, passed through an
    elementwise op) ``x.T`` would reach the BLAS as a plain ``(in, R)`` operand, which is
    slower than a transposed one.
    """
    return mx.addmm(b[:, None], w, mx.contiguous(x).T).T


@mx.compile
def _pre_attention(
    x: mx.array, ln_w: mx.array, ln_b: mx.array, w: mx.array, b: mx.array, eps: float
) -> mx.array:
    return linear_rows(mx.fast.layer_norm(x, ln_w, ln_b, eps), w, b)


@mx.compile
def _post_attention(
    x: mx.array,
    attn: mx.array,
    proj_w: mx.array,
    proj_b: mx.array,
    ln_w: mx.array,
    ln_b: mx.array,
    fc_w: mx.array,
    fc_b: mx.array,
    out_w: mx.array,
    out_b: mx.array,
    eps: float,
) -> mx.array:
    h = x + linear_rows(attn, proj_w, proj_b)
    inner = gelu_new(linear_rows(mx.fast.layer_norm(h, ln_w, ln_b, eps), fc_w, fc_b))
    return h + linear_rows(inner, out_w, out_b)


def _step_block(block: Block, x: mx.array, cache: KVCache) -> mx.array:
    """One block on one position per sequence, ``x (B, C)`` → ``(B, C)``, with its cache:
    the math of ``block(x[:, None], None, cache)``."""
    attn, mlp = block.attn, block.mlp
    b = x.shape[0]
    qkv = _pre_attention(
        x, block.ln_1.weight, block.ln_1.bias, attn.c_attn.weight, attn.c_attn.bias, block.ln_1.eps
    )
    q, k, v = attn.heads(qkv[:, None])
    k, v = cache.update_and_fetch(k, v)
    out = attn.attend(q, k, v, None)
    return _post_attention(
        x,
        out.reshape(b, -1),
        attn.c_proj.weight,
        attn.c_proj.bias,
        block.ln_2.weight,
        block.ln_2.bias,
        mlp.c_fc.weight,
        mlp.c_fc.bias,
        mlp.c_proj.weight,
        mlp.c_proj.bias,
        block.ln_2.eps,
    )
