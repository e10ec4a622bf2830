"""Conformer conditioning encoder on tiny configs: hand-computed values (subsampled length,
positional table, the un-shifted positional attention term, masking) and an independent
float64 numpy implementation of the reference's forward pass."""

from __future__ import annotations

import math

from mlx_indextts_models.conformer import (  # first: it loads the fast BLAS before MLX
    ConformerArgs,
    ConformerEncoder,
    RelPositionMultiHeadedAttention,
    depthwise_conv1d,
    length_mask,
    positional_encoding,
    subsampled_length,
)

# isort: split

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_indextts_models.config import from_dict
from mlx_indextts_models.gpt_conditioning import ConditionModuleArgs
from mlx_indextts_models.testing import tiny_conformer_args

TINY = tiny_conformer_args()


def randomize(module: nn.Module, seed: int = 0, scale: float = 0.4) -> nn.Module:
    """Every parameter (norm weights and biases included) seeded random."""
    rng = np.random.default_rng(seed)
    params = []
    for name, value in tree_flatten(module.parameters()):
        noise = rng.standard_normal(value.shape) * scale
        if "norm" in name and name.endswith("weight"):
            noise += 1.0
        params.append((name, mx.array(noise.astype(np.float32))))
    module.load_weights(params, strict=True)
    return module


def params64(module: nn.Module) -> dict[str, np.ndarray]:
    return {k: np.array(v, np.float64) for k, v in tree_flatten(module.parameters())}


# --- an independent float64 numpy version of the reference ---------------------------


def np_layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def np_silu(x):
    return x / (1.0 + np.exp(-x))


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_pe(length: int, d: int) -> np.ndarray:
    pe = np.zeros((length, d))
    for p in range(length):
        for i in range(0, d, 2):
            angle = p / 10000.0 ** (i / d)
            pe[p, i], pe[p, i + 1] = math.sin(angle), math.cos(angle)
    return pe


def np_subsample(p: dict, x: np.ndarray) -> np.ndarray:
    """Conv2d(1→C, 3, stride 2) + ReLU on ``x (T, F)``, flattened as the reference's
    ``(B, C, T', F') → transpose(1, 2) → view(B, T', C·F')``, then Linear."""
    w = p["embed.conv.0.weight"][..., 0]  # (C, 3, 3)
    c = w.shape[0]
    t_out, f_out = (x.shape[0] - 3) // 2 + 1, (x.shape[1] - 3) // 2 + 1
    y = np.zeros((c, t_out, f_out))
    for t in range(t_out):
        for f in range(f_out):
            patch = x[2 * t : 2 * t + 3, 2 * f : 2 * f + 3]
            y[:, t, f] = (w * patch).sum(axis=(1, 2)) + p["embed.conv.0.bias"]
    y = np.maximum(y, 0.0).transpose(1, 0, 2).reshape(t_out, c * f_out)
    return y @ p["embed.out.0.weight"].T + p["embed.out.0.bias"]


def np_attention(p: dict, pre: str, x, pos, valid, heads: int) -> np.ndarray:
    t, d = x.shape
    dk = d // heads

    def lin(name, y, bias=True):
        out = y @ p[f"{pre}.{name}.weight"].T
        return out + p[f"{pre}.{name}.bias"] if bias else out

    q = lin("linear_q", x).reshape(t, heads, dk)
    k = lin("linear_k", x).reshape(t, heads, dk)
    v = lin("linear_v", x).reshape(t, heads, dk)
    pp = lin("linear_pos", pos, bias=False).reshape(t, heads, dk)
    out = np.zeros((t, heads, dk))
    for h in range(heads):
        ac = (q[:, h] + p[f"{pre}.pos_bias_u"][h]) @ k[:, h].T
        bd = (q[:, h] + p[f"{pre}.pos_bias_v"][h]) @ pp[:, h].T  # no relative shift
        scores = (ac + bd) / math.sqrt(dk)
        scores[:, ~valid] = -np.inf
        e = np.exp(scores - scores.max(-1, keepdims=True))
        out[:, h] = (e / e.sum(-1, keepdims=True)) @ v[:, h]
    return out.reshape(t, d) @ p[f"{pre}.linear_out.weight"].T + p[f"{pre}.linear_out.bias"]


def np_conv_module(p: dict, pre: str, x, valid) -> np.ndarray:
    x = np.where(valid[:, None], x, 0.0)
    h = x @ p[f"{pre}.pointwise_conv1.weight"][:, 0].T + p[f"{pre}.pointwise_conv1.bias"]
    c = x.shape[1]
    h = h[:, :c] * np_sigmoid(h[:, c:])
    w = p[f"{pre}.depthwise_conv.weight"][:, :, 0]  # (C, k)
    k = w.shape[1]
    padded = np.pad(h, ((k // 2, k // 2), (0, 0)))
    h = np.stack([(padded[t : t + k] * w.T).sum(0) for t in range(len(h))])
    h = h + p[f"{pre}.depthwise_conv.bias"]
    h = np_silu(np_layer_norm(h, p[f"{pre}.norm.weight"], p[f"{pre}.norm.bias"]))
    h = h @ p[f"{pre}.pointwise_conv2.weight"][:, 0].T + p[f"{pre}.pointwise_conv2.bias"]
    return np.where(valid[:, None], h, 0.0)


def np_encoder(module: ConformerEncoder, x: np.ndarray, length: int | None = None):
    """One sequence ``x (T, F)`` → ``(y (T', d), valid (T',))``."""
    p, args = params64(module), module.args
    valid = np.arange(len(x)) < (len(x) if length is None else length)
    valid = valid[2::2]
    h = np_subsample(p, x.astype(np.float64)) * math.sqrt(args.output_size)
    pos = np_pe(len(h), args.output_size)

    def norm(name, y):
        return np_layer_norm(y, p[f"{name}.weight"], p[f"{name}.bias"])

    for n in range(args.num_blocks):
        pre = f"encoders.{n}"
        h = h + np_attention(
            p, f"{pre}.self_attn", norm(f"{pre}.norm_mha", h), pos, valid, args.attention_heads
        )
        h = h + np_conv_module(p, f"{pre}.conv_module", norm(f"{pre}.norm_conv", h), valid)
        ff = norm(f"{pre}.norm_ff", h) @ p[f"{pre}.feed_forward.w_1.weight"].T
        ff = np_silu(ff + p[f"{pre}.feed_forward.w_1.bias"])
        h = h + ff @ p[f"{pre}.feed_forward.w_2.weight"].T + p[f"{pre}.feed_forward.w_2.bias"]
        h = norm(f"{pre}.norm_final", h)
    return norm("after_norm", h), valid


# --- tests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "expected"), [(3, 1), (4, 1), (5, 2), (6, 2), (40, 19), (749, 374), (1024, 511)]
)
def test_subsampled_length(length, expected):
    assert subsampled_length(length) == expected
    # the reference's mask slice [2::2] keeps exactly as many frames as the conv makes
    assert len(range(length)[2::2]) == expected


def test_subsampling_output_and_mask_lengths():
    enc = randomize(ConformerEncoder(TINY))
    for t in (3, 8, 11):
        y, mask = enc(mx.zeros((2, t, TINY.input_size)))
        assert y.shape == (2, (t - 1) // 2, TINY.output_size)
        assert mask.shape == (2, (t - 1) // 2) and bool(mx.all(mask))
    # the feature axis too: input_size 9 gives 4 conv columns → out.0 takes 8·4 inputs
    assert enc.embed.out[0].weight.shape == (8, 8 * 4)
    with pytest.raises(ValueError, match="at least 3 frames"):
        enc(mx.zeros((1, 2, TINY.input_size)))


def test_positional_encoding_values():
    pe = positional_encoding(3, 4)
    expected = [
        [0.0, 1.0, 0.0, 1.0],
        [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)],  # 10000^(-2/4) = 0.01
        [math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)],
    ]
    np.testing.assert_allclose(pe, expected, atol=1e-7)
    assert pe.dtype == np.float32
    big = positional_encoding(400, 512)
    position = np.arange(400)[:, None]
    assert np.all(np.abs(big - np_pe(400, 512)) <= 1.5e-7 * (position + 1))


def test_positional_term_is_not_shifted():
    """With q = 0 and pos_bias_u = 0 the logits are (pos_bias_v · linear_pos(pe_j)) / sqrt(d_k):
    the same for every query row (the reference comments its rel_shift out; a shifted
    version would depend on i − j)."""
    attn = RelPositionMultiHeadedAttention(2, 8)
    rng = np.random.default_rng(3)
    bias_v = rng.standard_normal((2, 4)).astype(np.float32)
    attn.load_weights(
        [
            ("linear_q.weight", mx.zeros((8, 8))),
            ("linear_q.bias", mx.zeros((8,))),
            ("pos_bias_u", mx.zeros((2, 4))),
            ("pos_bias_v", mx.array(bias_v)),
            ("linear_pos.weight", mx.eye(8)),
        ],
        strict=False,
    )
    t = 6
    pos = positional_encoding(t, 8)
    scores, _ = attn.scores(
        mx.array(rng.standard_normal((1, t, 8)).astype(np.float32)), mx.array(pos[None])
    )
    scores = np.array(scores)[0]  # (h, T, T)
    for h in range(2):
        row = pos[:, 4 * h : 4 * h + 4] @ bias_v[h] / 2.0  # sqrt(d_k) = 2
        np.testing.assert_allclose(scores[h], np.broadcast_to(row, (t, t)), atol=1e-6)


def test_depthwise_conv_hand_values():
    x = mx.array(np.arange(1, 6, dtype=np.float32).reshape(1, 5, 1))  # 1..5
    weight = mx.array(np.array([1.0, 10.0, 100.0], np.float32).reshape(1, 3, 1))
    out = np.array(depthwise_conv1d(x, weight, mx.array([0.5])))[0, :, 0]
    # out[t] = x[t-1] + 10 x[t] + 100 x[t+1] + 0.5, zeros outside
    np.testing.assert_allclose(out, [210.5, 321.5, 432.5, 543.5, 54.5])


def test_encoder_matches_numpy_reference():
    enc = randomize(ConformerEncoder(TINY), seed=1)
    x = np.random.default_rng(2).standard_normal((1, 23, TINY.input_size)).astype(np.float32)
    y, mask = enc(mx.array(x))
    expected, valid = np_encoder(enc, x[0])
    np.testing.assert_allclose(np.array(y)[0], expected, atol=2e-5, rtol=1e-5)
    assert np.array(mask)[0].tolist() == valid.tolist()


def test_padding_is_masked_as_the_reference_masks_it():
    """With lengths, the padded frames' values never reach the valid frames (attention
    ignores masked keys; the conv module zeroes masked frames before its first pointwise
    conv; subsampled frame t' is kept iff input frame 2t'+2 is valid). As in the
    reference, the masked frames still enter the depthwise conv as GLU(bias) rather than
    zeros, so a padded row differs from running the short sequence alone."""
    enc = randomize(ConformerEncoder(TINY), seed=4)
    rng = np.random.default_rng(5)
    long = rng.standard_normal((23, TINY.input_size)).astype(np.float32)
    short = rng.standard_normal((14, TINY.input_size)).astype(np.float32)
    outputs = []
    for fill in (7.0, -3.0):
        pad = np.full((9, TINY.input_size), fill, np.float32)
        padded = np.stack([long, np.concatenate([short, pad])])
        y, mask = enc(mx.array(padded), lengths=[23, 14])
        outputs.append(np.array(y))
        assert np.array(mask).tolist() == [[True] * 11, [True] * 6 + [False] * 5]
    np.testing.assert_allclose(outputs[0][:, :6], outputs[1][:, :6], atol=1e-6)
    np.testing.assert_allclose(outputs[0][0], outputs[1][0], atol=1e-6)
    alone_long, _ = enc(mx.array(long[None]))
    np.testing.assert_allclose(outputs[0][0], np.array(alone_long)[0], atol=1e-5)
    expected, _ = np_encoder(enc, padded[1], length=14)
    np.testing.assert_allclose(outputs[1][1], expected, atol=2e-5, rtol=1e-5)
    alone_short, _ = enc(mx.array(short[None]))
    assert np.abs(outputs[1][1, :6] - np.array(alone_short)[0]).max() > 1e-3
    # a frame mask is the same as the lengths it encodes
    frames = mx.array(np.arange(23)[None, :] < np.array([[23], [14]]))
    by_mask, _ = enc(mx.array(padded), mask=frames)
    np.testing.assert_array_equal(np.array(by_mask), outputs[1])
    with pytest.raises(ValueError, match="not both"):
        enc(mx.array(padded), lengths=[23, 14], mask=frames)


def test_lengths_beyond_the_sequence_mask_nothing():
    enc = randomize(ConformerEncoder(TINY), seed=6)
    x = mx.array(np.random.default_rng(7).standard_normal((1, 15, 9)).astype(np.float32))
    y_none, _ = enc(x)
    y_long, mask = enc(x, lengths=[1024])
    np.testing.assert_array_equal(np.array(y_none), np.array(y_long))
    assert bool(mx.all(mask))
    assert np.array(length_mask([2, 4], 4)).tolist() == [[True, True, False, False], [True] * 4]


def test_parameter_names_mirror_the_official_keys():
    names = {k for k, _ in tree_flatten(ConformerEncoder(TINY).parameters())}
    assert names >= {
        "embed.conv.0.weight",
        "embed.out.0.bias",
        "after_norm.weight",
        "encoders.1.self_attn.pos_bias_u",
        "encoders.1.self_attn.linear_pos.weight",
        "encoders.0.conv_module.depthwise_conv.weight",
        "encoders.0.conv_module.norm.bias",
        "encoders.0.feed_forward.w_2.weight",
        "encoders.0.norm_final.bias",
    }
    assert "encoders.0.self_attn.linear_pos.bias" not in names
    assert not any("pos_enc" in k for k in names)  # the table is recomputed, not loaded
    shapes = dict(tree_flatten(ConformerEncoder(TINY).parameters()))
    assert shapes["embed.conv.0.weight"].shape == (8, 3, 3, 1)
    assert shapes["encoders.0.conv_module.depthwise_conv.weight"].shape == (8, 5, 1)
    assert shapes["encoders.0.conv_module.pointwise_conv1.weight"].shape == (16, 1, 8)


def test_unsupported_variants_are_rejected():
    with pytest.raises(ValueError, match="input_layer"):
        ConformerArgs(input_layer="conv2d")
    with pytest.raises(ValueError, match="macaron_style"):
        ConformerArgs(macaron_style=True)
    record = {"output_size": 512, "num_blocks": 4, "perceiver_mult": 2}
    module = from_dict(ConditionModuleArgs, record)
    args = module.conformer(1024)
    assert (args.output_size, args.num_blocks, args.input_size) == (512, 4, 1024)
