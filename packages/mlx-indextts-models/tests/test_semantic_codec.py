"""MaskGCT semantic codec (RepCodec) on tiny configs, against hand-computed values and an
independent numpy implementation of the reference's forward pass."""

from __future__ import annotations

import math
from dataclasses import replace

from mlx_indextts_models.semantic_codec import (  # first: it loads the fast BLAS before MLX
    ConvNeXtBlock,
    FactorizedVectorQuantize,
    RepCodec,
    SemanticCodecArgs,
    VocosBackbone,
    depthwise_conv1d,
    gelu,
)
from mlx_indextts_models.testing import tiny_semantic_codec_args

# isort: split

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

TINY = tiny_semantic_codec_args()


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter (norm weights, biases, gammas included) seeded random."""
    rng = np.random.default_rng(seed)
    params = [
        (name, mx.array(rng.standard_normal(value.shape).astype(np.float32) * 0.5))
        for name, value in tree_flatten(module.parameters())
    ]
    module.load_weights(params, strict=True)
    return module


def set_params(module: nn.Module, **values) -> None:
    module.load_weights(
        [(k.replace("__", "."), mx.array(np.asarray(v, np.float32))) for k, v in values.items()],
        strict=False,
    )


# --- an independent numpy version of the reference (channels-last) --------------------


def np_gelu(x: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def np_layer_norm(x, weight, bias, eps=1e-6):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def np_conv1d(x, weight, bias):
    """Same-padded conv; ``x`` (T, Cin), ``weight`` (Cout, k, Cin) (MLX layout)."""
    k = weight.shape[1]
    padded = np.pad(x, ((k // 2, k // 2), (0, 0)))
    return (
        np.stack([np.einsum("ki,oki->o", padded[t : t + k], weight) for t in range(len(x))]) + bias
    )


def np_block(block: ConvNeXtBlock, x: np.ndarray) -> np.ndarray:
    p = {k: np.array(v, np.float64) for k, v in tree_flatten(block.parameters())}
    dw = p["dwconv.weight"][:, :, 0]  # (C, k)
    padded = np.pad(x, ((3, 3), (0, 0)))
    h = np.stack([(padded[t : t + 7] * dw.T).sum(0) for t in range(len(x))]) + p["dwconv.bias"]
    h = np_layer_norm(h, p["norm.weight"], p["norm.bias"])
    h = np_gelu(h @ p["pwconv1.weight"].T + p["pwconv1.bias"])
    h = h @ p["pwconv2.weight"].T + p["pwconv2.bias"]
    return x + p["gamma"] * h


def np_backbone(backbone: VocosBackbone, x: np.ndarray) -> np.ndarray:
    p = {k: np.array(v, np.float64) for k, v in tree_flatten(backbone.parameters())}
    h = np_conv1d(x, p["embed.weight"], p["embed.bias"])
    h = np_layer_norm(h, p["norm.weight"], p["norm.bias"])
    for block in backbone.convnext:
        h = np_block(block, h)
    return np_layer_norm(h, p["final_layer_norm.weight"], p["final_layer_norm.bias"])


# --- names ---------------------------------------------------------------------------


def official_tiny_shapes() -> dict[str, tuple[int, ...]]:
    """The official encoder/quantizer names at TINY, in MLX layouts (weight norm folded)."""
    d, i, h, c = 4, 8, 6, 2
    shapes = {
        "encoder.0.embed.weight": (d, 7, h),
        "encoder.0.embed.bias": (d,),
        "encoder.0.norm.weight": (d,),
        "encoder.0.norm.bias": (d,),
        "encoder.0.final_layer_norm.weight": (d,),
        "encoder.0.final_layer_norm.bias": (d,),
        "encoder.1.weight": (h, d),
        "encoder.1.bias": (h,),
        "quantizer.quantizers.0.in_project.weight": (c, 1, h),
        "quantizer.quantizers.0.in_project.bias": (c,),
        "quantizer.quantizers.0.out_project.weight": (h, 1, c),
        "quantizer.quantizers.0.out_project.bias": (h,),
        "quantizer.quantizers.0.codebook.weight": (5, c),
    }
    for n in range(2):
        block = f"encoder.0.convnext.{n}."
        shapes |= {
            block + "gamma": (d,),
            block + "dwconv.weight": (d, 7, 1),
            block + "dwconv.bias": (d,),
            block + "norm.weight": (d,),
            block + "norm.bias": (d,),
            block + "pwconv1.weight": (i, d),
            block + "pwconv1.bias": (i,),
            block + "pwconv2.weight": (d, i),
            block + "pwconv2.bias": (d,),
        }
    return shapes


def test_parameter_names_mirror_the_official_checkpoint():
    ours = {k: tuple(v.shape) for k, v in tree_flatten(RepCodec(TINY).parameters())}
    assert ours == official_tiny_shapes()


def test_real_config_parameter_count():
    """Encoder + quantizer of the official file: 44,289,808 minus the decoder's share."""
    model = RepCodec(SemanticCodecArgs())
    total = sum(v.size for _, v in tree_flatten(model.parameters()))
    backbone = sum(v.size for _, v in tree_flatten(model.encoder[0].parameters()))
    linear = 384 * 1024 + 1024
    quantizer = (1024 * 8 + 8) + (8 * 1024 + 1024) + 8192 * 8
    assert total == backbone + linear + quantizer
    # The official file adds the same-sized decoder and one weight_g per conv output row.
    assert total + backbone + linear + 8 + 1024 == 44_289_808


# --- blocks --------------------------------------------------------------------------


def test_gelu_is_the_exact_erf_gelu():
    x = np.linspace(-10, 10, 20001).astype(np.float32)
    ours = np.array(gelu(mx.array(x)))
    np.testing.assert_allclose(ours, np_gelu(x.astype(np.float64)), rtol=0, atol=2e-6)
    assert ours[0] == 0.0 and ours[-1] == 10.0  # saturates exactly at both ends
    assert abs(float(gelu(mx.array(1.0))) - 0.8413447460685429) < 1e-7  # Φ(1)


def test_depthwise_conv_taps_shift_the_input():
    x = np.arange(1, 11, dtype=np.float32).reshape(1, 5, 2)  # (B, T, C)
    weight = np.zeros((2, 7, 1), np.float32)
    weight[0, 4, 0] = 2.0  # channel 0: 2·x[t+1]
    weight[1, 3, 0] = -1.0  # channel 1: −x[t]
    out = np.array(depthwise_conv1d(mx.array(x), mx.array(weight), mx.array([0.5, 0.0])))
    np.testing.assert_array_equal(
        out[0, :, 0], [2 * 3 + 0.5, 2 * 5 + 0.5, 2 * 7 + 0.5, 2 * 9 + 0.5, 0.5]
    )
    np.testing.assert_array_equal(out[0, :, 1], -x[0, :, 1])


def test_depthwise_conv_matches_grouped_conv():
    conv = randomize(nn.Conv1d(4, 4, kernel_size=7, padding=3, groups=4), seed=3)
    x = mx.array(np.random.default_rng(4).standard_normal((2, 9, 4)).astype(np.float32))
    np.testing.assert_allclose(
        np.array(depthwise_conv1d(x, conv.weight, conv.bias)), np.array(conv(x)), atol=1e-6
    )


def test_convnext_block_with_zero_layer_scale_is_identity():
    block = randomize(ConvNeXtBlock(4, 8))
    set_params(block, gamma=np.zeros(4))
    x = mx.array(np.random.default_rng(1).standard_normal((1, 5, 4)).astype(np.float32))
    np.testing.assert_array_equal(np.array(block(x)), np.array(x))


def test_convnext_block_matches_numpy():
    block = randomize(ConvNeXtBlock(4, 8), seed=5)
    x = np.random.default_rng(2).standard_normal((1, 11, 4)).astype(np.float32)
    ours = np.array(block(mx.array(x)))[0]
    np.testing.assert_allclose(ours, np_block(block, x[0].astype(np.float64)), atol=2e-5)


def test_backbone_matches_numpy():
    backbone = randomize(VocosBackbone(6, 4, 8, 2), seed=6)
    x = np.random.default_rng(3).standard_normal((1, 10, 6)).astype(np.float32)
    ours = np.array(backbone(mx.array(x)))[0]
    np.testing.assert_allclose(ours, np_backbone(backbone, x[0].astype(np.float64)), atol=5e-5)


# --- quantizer -----------------------------------------------------------------------


def test_nearest_code_is_the_code_of_maximal_cosine():
    vq = FactorizedVectorQuantize(input_dim=2, codebook_size=3, codebook_dim=2)
    # [7, 5]: largest dot product (70 vs 1.2) and smallest euclidean distance (34 vs
    # 71.6) with code 0, largest cosine (0.986 vs 0.814) with code 1.
    set_params(vq, codebook__weight=[[10.0, 0.0], [0.1, 0.1], [-1.0, 0.0]])
    latents = mx.array([[[7.0, 5.0], [-0.5, 0.2], [1.0, 1.2], [0.0, 5.0]]])
    np.testing.assert_array_equal(np.array(vq.decode_latents(latents)), [[1, 2, 1, 1]])


def test_nearest_code_takes_the_first_of_exact_ties():
    vq = FactorizedVectorQuantize(input_dim=2, codebook_size=3, codebook_dim=2)
    set_params(vq, codebook__weight=[[0.0, 1.0], [2.0, 0.0], [1.0, 0.0]])
    assert np.array(vq.decode_latents(mx.array([[[3.0, 0.0]]]))).tolist() == [[1]]


def projecting_quantizer() -> FactorizedVectorQuantize:
    """in_project keeps dims 0-1 of 6 (plus bias 0); out_project W·c + b by hand."""
    vq = FactorizedVectorQuantize(input_dim=6, codebook_size=4, codebook_dim=2)
    w_in = np.zeros((2, 1, 6))
    w_in[0, 0, 0] = w_in[1, 0, 1] = 1.0
    w_out = np.arange(12, dtype=np.float32).reshape(6, 1, 2) / 10
    set_params(
        vq,
        in_project__weight=w_in,
        in_project__bias=np.zeros(2),
        out_project__weight=w_out,
        out_project__bias=np.arange(6) - 3.0,
        codebook__weight=[[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0], [0.5, -0.5]],
    )
    return vq


def test_a_projected_codebook_vector_maps_to_its_code():
    vq = projecting_quantizer()
    codebook = np.array(vq.codebook.weight)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 4, 6)).astype(np.float32)
    x[0, :, :2] = 3.0 * codebook[[2, 0, 3, 1]]  # scale does not matter to cosine
    quantized, codes = vq(mx.array(x))
    np.testing.assert_array_equal(np.array(codes), [[2, 0, 3, 1]])
    w_out = np.arange(12).reshape(6, 2) / 10
    expected = codebook[[2, 0, 3, 1]] @ w_out.T + (np.arange(6) - 3.0)
    np.testing.assert_allclose(np.array(quantized)[0], expected, atol=1e-6)
    np.testing.assert_allclose(np.array(vq.vq2emb(codes)), np.array(quantized), atol=1e-6)


def test_identity_projection_when_dims_agree():
    vq = FactorizedVectorQuantize(input_dim=2, codebook_size=2, codebook_dim=2)
    assert sorted(k for k, _ in tree_flatten(vq.parameters())) == ["codebook.weight"]
    set_params(vq, codebook__weight=[[1.0, 1.0], [-2.0, 0.5]])
    quantized, codes = vq(mx.array([[[-1.0, 0.2], [5.0, 4.0]]]))
    assert np.array(codes).tolist() == [[1, 0]]
    np.testing.assert_allclose(np.array(quantized), [[[-2.0, 0.5], [1.0, 1.0]]], atol=1e-6)


# --- RepCodec --------------------------------------------------------------------------


def tiny_codec(seed: int = 0, **overrides) -> RepCodec:
    args = replace(TINY, **overrides)
    return randomize(RepCodec(args), seed)


def test_quantize_returns_codes_then_embedding():
    codec = tiny_codec()
    x = np.random.default_rng(8).standard_normal((2, 7, 6)).astype(np.float32)
    codes, quantized = codec.quantize(mx.array(x))
    assert codes.dtype == mx.int32 and codes.shape == (2, 7) and quantized.shape == (2, 7, 6)
    # Each frame is out_project(codebook[code]); the code is the one of maximal cosine
    # with in_project(encoder(x)).
    vq = codec.quantizer.quantizers[0]
    p = {k: np.array(v, np.float64) for k, v in tree_flatten(vq.parameters())}
    expected = p["codebook.weight"][np.array(codes)] @ p["out_project.weight"][:, 0].T
    np.testing.assert_allclose(np.array(quantized), expected + p["out_project.bias"], atol=1e-5)
    encoded = np.array(codec.encode(mx.array(x)), np.float64)
    latents = encoded @ p["in_project.weight"][:, 0].T + p["in_project.bias"]
    book = p["codebook.weight"] / np.linalg.norm(p["codebook.weight"], axis=1, keepdims=True)
    cosine = latents / np.linalg.norm(latents, axis=-1, keepdims=True) @ book.T
    np.testing.assert_array_equal(np.array(codes), cosine.argmax(-1))


def test_vq2emb_of_the_codes_equals_the_quantized_output():
    codec = tiny_codec(seed=1)
    x = mx.array(np.random.default_rng(9).standard_normal((1, 12, 6)).astype(np.float32))
    codes, quantized = codec.quantize(x)
    np.testing.assert_allclose(np.array(codec.vq2emb(codes)), np.array(quantized), atol=1e-6)


def test_encoder_matches_numpy():
    codec = tiny_codec(seed=2)
    x = np.random.default_rng(10).standard_normal((1, 9, 6)).astype(np.float32)
    backbone, linear = codec.encoder
    w, b = np.array(linear.weight, np.float64), np.array(linear.bias, np.float64)
    expected = np_backbone(backbone, x[0].astype(np.float64)) @ w.T + b
    np.testing.assert_allclose(np.array(codec.encode(mx.array(x)))[0], expected, atol=5e-5)


def test_batch_items_are_independent():
    codec = tiny_codec(seed=3)
    x = np.random.default_rng(11).standard_normal((2, 8, 6)).astype(np.float32)
    codes, quantized = codec.quantize(mx.array(x))
    for i in range(2):
        one_codes, one_quantized = codec.quantize(mx.array(x[i : i + 1]))
        np.testing.assert_array_equal(np.array(one_codes)[0], np.array(codes)[i])
        np.testing.assert_allclose(np.array(one_quantized)[0], np.array(quantized)[i], atol=1e-6)


def test_two_quantizers_quantize_the_residual():
    codec = tiny_codec(seed=4, num_quantizers=2)
    x = mx.array(np.random.default_rng(12).standard_normal((1, 6, 6)).astype(np.float32))
    codes, quantized = codec.quantize(x)
    assert codes.shape == (2, 1, 6)  # (N, B, T) as the reference returns it
    first, second = codec.quantizer.quantizers
    z = codec.encode(x)
    q0, c0 = first(z)
    q1, c1 = second(z - q0)
    np.testing.assert_array_equal(np.array(codes), np.stack([np.array(c0), np.array(c1)]))
    np.testing.assert_allclose(np.array(quantized), np.array(q0 + q1), atol=1e-6)
    np.testing.assert_allclose(np.array(codec.vq2emb(codes)), np.array(quantized), atol=1e-5)


def test_downsampling_codec_is_refused():
    with pytest.raises(NotImplementedError):
        RepCodec(SemanticCodecArgs(downsample_scale=2))
