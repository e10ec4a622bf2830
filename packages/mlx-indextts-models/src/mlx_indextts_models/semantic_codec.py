"""MaskGCT semantic codec (``RepCodec``): W2V-BERT features → semantic codes and embeddings.

Mirrors ``indextts/utils/maskgct/models/codec/kmeans/repcodec_model.py`` (``RepCodec``),
``kmeans/vocos.py`` (``VocosBackbone``, ``ConvNeXtBlock``) and
``amphion_codec/quantize/{residual_vq,factorized_vector_quantize}.py``. IndexTTS-2 uses
two entry points: :meth:`RepCodec.quantize` on the normalized W2V-BERT features of the
speaker prompt (its second output is ``S_ref``) and :meth:`RepCodec.vq2emb` on the GPT's
mel codes. Only the encoder and the quantizer are built; the official checkpoint's
``decoder.*`` (training-time reconstruction) is never used at inference.

Tensors are channels-last: ``(B, T, C)`` where the reference uses ``(B, C, T)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn

from mlx_indextts_models.layers import depthwise_conv1d


@dataclass
class SemanticCodecArgs:
    """``cfg.semantic_codec`` of the IndexTTS-2 ``config.yaml`` (upstream names and defaults)."""

    codebook_size: int = 8192
    hidden_size: int = 1024
    codebook_dim: int = 8
    vocos_dim: int = 384
    vocos_intermediate_dim: int = 2048
    vocos_num_layers: int = 12
    num_quantizers: int = 1
    downsample_scale: int = 1


# Rational approximation of erf on [-4, 4] (Eigen's / XLA's float32 erf; |error| < 5e-7,
# as accurate as mx.erf). MLX's CPU erf is scalar libm code: GELU through mx.erf cost
# more than the block's matmuls, this a fraction of it (measured: docs/performance.md).
_ERF_P = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
_ERF_Q = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)


def _erf(x: mx.array) -> mx.array:
    x = mx.clip(x, -4.0, 4.0)
    x2 = x * x
    p = mx.full(x.shape, _ERF_P[0], dtype=x.dtype)
    for c in _ERF_P[1:]:
        p = p * x2 + c
    q = mx.full(x.shape, _ERF_Q[0], dtype=x.dtype)
    for c in _ERF_Q[1:]:
        q = q * x2 + c
    return x * p / q


@mx.compile
def gelu(x: mx.array) -> mx.array:
    """Exact (erf) GELU, ``torch.nn.GELU()``, to < 2e-6; ``mx.compile`` fuses the polynomial."""
    return 0.5 * x * (1.0 + _erf(x * 0.7071067811865476))


#: :func:`~mlx_indextts_models.layers.depthwise_conv1d` compiled: its shifted products and
#: the bias fuse into one kernel.
compiled_depthwise_conv1d = mx.compile(depthwise_conv1d)


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (k=7) → LayerNorm → Linear → GELU → Linear → layer scale, residual."""

    def __init__(self, dim: int, intermediate_dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = mx.ones((dim,))

    def __call__(self, x: mx.array) -> mx.array:
        """``x``: (B, T, dim) → (B, T, dim)."""
        h = self.norm(compiled_depthwise_conv1d(x, self.dwconv.weight, self.dwconv.bias))
        h = self.pwconv2(gelu(self.pwconv1(h)))
        return x + self.gamma * h


class VocosBackbone(nn.Module):
    """Conv embed (k=7) → LayerNorm → ConvNeXt blocks → LayerNorm (no AdaLayerNorm)."""

    def __init__(
        self, input_channels: int, dim: int, intermediate_dim: int, num_layers: int
    ) -> None:
        super().__init__()
        self.embed = nn.Conv1d(input_channels, dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.convnext = [ConvNeXtBlock(dim, intermediate_dim) for _ in range(num_layers)]
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)

    def __call__(self, x: mx.array) -> mx.array:
        """``x``: (B, T, input_channels) → (B, T, dim)."""
        x = self.norm(self.embed(x))
        for block in self.convnext:
            x = block(x)
        out: mx.array = self.final_layer_norm(x)
        return out


def _l2_normalize(x: mx.array, eps: float = 1e-12) -> mx.array:
    """``torch.nn.functional.normalize`` over the last axis."""
    norm = mx.sqrt(mx.sum(x * x, axis=-1, keepdims=True))
    return x / mx.maximum(norm, eps)


class FactorizedVectorQuantize(nn.Module):
    """Project to ``codebook_dim``, pick the code of maximal cosine, project back.

    ``in_project``/``out_project`` are the reference's weight-normed 1x1 convs (folded at
    conversion); they are identities when ``input_dim == codebook_dim``.
    """

    def __init__(self, input_dim: int, codebook_size: int, codebook_dim: int) -> None:
        super().__init__()
        self.project = input_dim != codebook_dim
        if self.project:
            self.in_project = nn.Conv1d(input_dim, codebook_dim, kernel_size=1)
            self.out_project = nn.Conv1d(codebook_dim, input_dim, kernel_size=1)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)

    def decode_latents(self, latents: mx.array) -> mx.array:
        """Nearest code of each latent, by l2-normalised euclidean (= cosine) distance.

        ``latents``: (B, T, codebook_dim) → indices (B, T) int32. The distance is written
        as the reference writes it (``|e|² − 2 e·c + |c|²``) so near-ties resolve alike.
        """
        encodings = _l2_normalize(latents)
        codebook = _l2_normalize(self.codebook.weight)
        dist = (
            mx.sum(encodings * encodings, axis=-1, keepdims=True)
            - 2 * (encodings @ codebook.T)
            + mx.sum(codebook * codebook, axis=-1)
        )
        return mx.argmax(-dist, axis=-1).astype(mx.int32)

    def _out(self, z: mx.array) -> mx.array:
        return self.out_project(z) if self.project else z

    def __call__(self, z: mx.array) -> tuple[mx.array, mx.array]:
        """``z``: (B, T, input_dim) → (quantized (B, T, input_dim), indices (B, T) int32)."""
        z_e = self.in_project(z) if self.project else z
        indices = self.decode_latents(z_e)
        # The reference's straight-through estimator, kept for identical float32 rounding.
        z_q = z_e + (self.codebook(indices) - z_e)
        return self._out(z_q), indices

    def vq2emb(self, indices: mx.array) -> mx.array:
        """``indices``: (B, T) → (B, T, input_dim)."""
        return self._out(self.codebook(indices))


class ResidualVQ(nn.Module):
    """A stack of :class:`FactorizedVectorQuantize`, each quantizing the previous residual."""

    def __init__(
        self, input_dim: int, num_quantizers: int, codebook_size: int, codebook_dim: int
    ) -> None:
        super().__init__()
        self.quantizers = [
            FactorizedVectorQuantize(input_dim, codebook_size, codebook_dim)
            for _ in range(num_quantizers)
        ]

    def __call__(self, z: mx.array) -> tuple[mx.array, mx.array]:
        """``z``: (B, T, D) → (quantized (B, T, D), indices (N, B, T) int32)."""
        quantized = mx.zeros_like(z)
        residual = z
        all_indices = []
        for quantizer in self.quantizers:
            z_q, indices = quantizer(residual)
            quantized = quantized + z_q
            residual = residual - z_q
            all_indices.append(indices)
        return quantized, mx.stack(all_indices)

    def vq2emb(self, vq: mx.array) -> mx.array:
        """``vq``: (N, B, T) codes of the first N quantizers → (B, T, D), summed."""
        if vq.shape[0] > len(self.quantizers):
            raise ValueError(
                f"codes of {vq.shape[0]} quantizers, the codec has {len(self.quantizers)}"
            )
        out = self.quantizers[0].vq2emb(vq[0])
        for level in range(1, vq.shape[0]):
            out = out + self.quantizers[level].vq2emb(vq[level])
        return out


class RepCodec(nn.Module):
    """The MaskGCT semantic codec's encoder and quantizer (the decoder is not built)."""

    def __init__(self, args: SemanticCodecArgs) -> None:
        super().__init__()
        if args.downsample_scale is not None and args.downsample_scale > 1:
            raise NotImplementedError("RepCodec with downsample_scale > 1 is not ported")
        self.args = args
        self.encoder = [
            VocosBackbone(
                args.hidden_size, args.vocos_dim, args.vocos_intermediate_dim, args.vocos_num_layers
            ),
            nn.Linear(args.vocos_dim, args.hidden_size),
        ]
        self.quantizer = ResidualVQ(
            args.hidden_size, args.num_quantizers, args.codebook_size, args.codebook_dim
        )

    def encode(self, x: mx.array) -> mx.array:
        """``x``: (B, T, hidden_size) → encoder output (B, T, hidden_size)."""
        backbone, linear = self.encoder
        out: mx.array = linear(backbone(x))
        return out

    def quantize(self, x: mx.array) -> tuple[mx.array, mx.array]:
        """Semantic codes and their embedding, as ``RepCodec.quantize`` returns them.

        Args:
            x: normalized W2V-BERT features, (B, T, hidden_size).

        Returns:
            ``(codes, quantized)``: codes (B, T) int32 (``(N, B, T)`` with N > 1
            quantizers, like the reference) and quantized (B, T, hidden_size), which
            IndexTTS-2 calls ``S_ref``.
        """
        quantized, indices = self.quantizer(self.encode(x))
        if indices.shape[0] == 1:
            indices = indices[0]
        return indices, quantized

    def vq2emb(self, codes: mx.array) -> mx.array:
        """Embed codes: ``quantizer.vq2emb(codes.unsqueeze(1)).transpose(1, 2)`` upstream.

        Args:
            codes: (B, T) integer codes of the first quantizer, or (N, B, T).

        Returns:
            (B, T, hidden_size).
        """
        if codes.ndim == 2:
            codes = codes[None]
        return self.quantizer.vq2emb(codes)
