"""W2V-BERT on tiny configs: hand-computed values and the reference's masking rules."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

import mlx_indextts_models.w2vbert as w2v
from mlx_indextts_models.testing import tiny_w2vbert_args
from mlx_indextts_models.w2vbert import (
    ConvolutionModule,
    EncoderLayer,
    SelfAttention,
    W2VBertArgs,
    W2VBertModel,
    normalize_semantic,
    relative_key_index,
)

TINY = tiny_w2vbert_args()


def tiny_model(num_layers: int, seed: int = 0) -> W2VBertModel:
    mx.random.seed(seed)
    model = W2VBertModel(replace(TINY, num_hidden_layers=num_layers))
    # Non-trivial norms and biases, so that wiring mistakes show.
    params = [(k, v + 0.1 * mx.random.normal(v.shape)) for k, v in tree_flatten(model.parameters())]
    model.load_weights(params)
    mx.eval(model.parameters())
    return model


def test_args_reject_what_is_not_ported():
    for bad in (
        dict(position_embeddings_type="rotary"),
        dict(add_adapter=True),
        dict(conv_depthwise_kernel_size=4),
        dict(hidden_act="tanh"),
    ):
        with pytest.raises(ValueError):
            W2VBertArgs(**bad)


def test_default_args_are_w2v_bert_2():
    args = W2VBertArgs()
    assert (args.hidden_size, args.num_hidden_layers, args.num_attention_heads) == (1024, 24, 16)
    assert (args.intermediate_size, args.feature_projection_input_dim) == (4096, 160)
    assert (args.left_max_position_embeddings, args.right_max_position_embeddings) == (64, 8)
    assert args.conv_depthwise_kernel_size == 31 and w2v.SEMANTIC_LAYER == 17


def test_relative_key_index_by_hand():
    # clip(key - query, -2, 1) + 2
    expected = [
        [2, 3, 3, 3],
        [1, 2, 3, 3],
        [0, 1, 2, 3],
        [0, 0, 1, 2],
    ]
    np.testing.assert_array_equal(np.array(relative_key_index(4, 4, 2, 1)), expected)
    np.testing.assert_array_equal(
        np.array(relative_key_index(2, 5, 1, 2)), [[1, 2, 3, 3, 3], [0, 1, 2, 3, 3]]
    )


def naive_attention(x, attn: SelfAttention, left: int, right: int, valid=None) -> np.ndarray:
    """Loops over heads, queries and keys: scores = (q·k + q·E[clip(j-i)+left]) / sqrt(d)."""
    p = {k: np.array(v, dtype=np.float64) for k, v in tree_flatten(attn.parameters())}
    x = np.array(x, dtype=np.float64)[0]
    t, d = x.shape[0], attn.head_size
    proj = {n: x @ p[f"linear_{n}.weight"].T + p[f"linear_{n}.bias"] for n in "qkv"}
    emb = p["distance_embedding.weight"]
    out = np.zeros((t, attn.num_heads * d))
    for h in range(attn.num_heads):
        q, k, v = (proj[n][:, h * d : (h + 1) * d] for n in "qkv")
        for i in range(t):
            scores = np.empty(t)
            for j in range(t):
                rel = emb[min(max(j - i, -left), right) + left]
                scores[j] = (q[i] @ k[j] + q[i] @ rel) / math.sqrt(d)
                if valid is not None and not valid[j]:
                    scores[j] = -np.inf
            w = np.exp(scores - scores.max())
            out[i, h * d : (h + 1) * d] = (w / w.sum()) @ v
    return out @ p["linear_out.weight"].T + p["linear_out.bias"]


@pytest.mark.parametrize("valid", [None, [1, 1, 0, 1, 1, 1, 0]])
def test_relative_key_attention_matches_loops(valid):
    model = tiny_model(1)
    attn = model.encoder.layers[0].self_attn
    x = mx.random.normal((1, 7, 8))
    index = relative_key_index(7, 7, 3, 2)
    mask = None if valid is None else mx.array(valid, dtype=mx.bool_)[None]
    ours = np.array(attn(x, index, mask))[0]
    np.testing.assert_allclose(ours, naive_attention(x, attn, 3, 2, valid), rtol=1e-4, atol=1e-5)


def test_attention_in_head_blocks_equals_all_heads(monkeypatch):
    attn = tiny_model(1).encoder.layers[0].self_attn
    x = mx.random.normal((2, 9, 8))
    index = relative_key_index(9, 9, 3, 2)
    mask = mx.array([[1] * 9, [1] * 6 + [0] * 3], dtype=mx.bool_)
    whole = np.array(attn(x, index, mask))
    monkeypatch.setattr(w2v, "SCORE_BLOCK_ELEMENTS", 1)  # one head at a time
    np.testing.assert_allclose(np.array(attn(x, index, mask)), whole, rtol=1e-6, atol=1e-6)


def test_layer_residual_wiring_by_hand():
    """With every weight 0, only biases flow: LN(x + ½·b_ffn1 + b_attn_out + ½·b_ffn2)."""
    args = replace(TINY, num_hidden_layers=1)
    layer = EncoderLayer(args)
    zeroed = [(k, mx.zeros(v.shape)) for k, v in tree_flatten(layer.parameters())]
    layer.load_weights(zeroed)
    b1, ba, b2 = (mx.random.normal((8,)) for _ in range(3))
    layer.ffn1.output_dense.bias = b1
    layer.self_attn.linear_out.bias = ba
    layer.ffn2.output_dense.bias = b2
    layer.final_layer_norm.weight = mx.ones((8,))
    x = mx.random.normal((1, 5, 8))
    out = np.array(layer(x, relative_key_index(5, 5, 3, 2)))
    y = np.array(x + 0.5 * b1 + ba + 0.5 * b2, dtype=np.float64)
    expected = (y - y.mean(-1, keepdims=True)) / np.sqrt(y.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_conv_module_ignores_the_content_of_masked_frames():
    conv = tiny_model(1).encoder.layers[0].conv_module
    mask = mx.array([[1, 0, 1, 1, 1, 1, 1, 1]], dtype=mx.bool_)
    x = mx.random.normal((1, 8, 8))
    other = mx.where(mask[..., None], x, 100.0 * mx.random.normal(x.shape))
    a, b = np.array(conv(x, mask)), np.array(conv(other, mask))
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)  # padded frame 1 included
    # Without the mask frame 1 leaks into the next kernel - 1 = 4 frames (causal), not before.
    leaky = np.array(conv(other, None))
    np.testing.assert_allclose(leaky[:, 0], a[:, 0], rtol=1e-6, atol=1e-6)
    assert all(np.abs(leaky[:, t] - a[:, t]).max() > 1e-3 for t in range(1, 6))
    np.testing.assert_allclose(leaky[:, 6:], a[:, 6:], rtol=1e-5, atol=1e-5)


def test_conv_module_zeroes_masked_frames_after_its_layer_norm():
    conv: ConvolutionModule = tiny_model(1).encoder.layers[0].conv_module
    x = mx.random.normal((1, 6, 8))
    mask = mx.array([[1, 1, 0, 1, 1, 1]], dtype=mx.bool_)
    # Same as replacing frame 2's input by one whose layer norm is exactly 0: the norm's bias
    # is then the only output, so zero the bias and use a constant frame.
    conv.layer_norm.bias = mx.zeros((8,))
    constant = mx.where(mask[..., None], x, 3.0)
    np.testing.assert_allclose(
        np.array(conv(x, mask)), np.array(conv(constant, None)), rtol=1e-5, atol=1e-5
    )


def test_model_outputs_at_real_frames_ignore_padded_frames():
    model = tiny_model(3)
    mask = mx.array([[1, 1, 1, 0, 1, 1, 1, 1, 1, 0]], dtype=mx.int32)
    x = mx.random.normal((1, 10, 6))
    other = mx.where(mask[..., None].astype(mx.bool_), x, 50.0 * mx.random.normal(x.shape))
    a = np.array(model(x, mask, num_layers=3))
    b = np.array(model(other, mask, num_layers=3))
    real = np.array(mask[0]).astype(bool)
    np.testing.assert_allclose(a[:, real], b[:, real], rtol=1e-5, atol=1e-5)
    assert np.abs(np.array(model(other, None, num_layers=3))[:, real] - a[:, real]).max() > 1e-2


def test_projection_output_is_zero_at_padded_frames():
    model = tiny_model(2)
    x = mx.random.normal((2, 4, 6))
    mask = mx.array([[1, 1, 1, 0], [1, 1, 1, 1]])
    h0 = np.array(model(x, mask, num_layers=0))
    fp = model.feature_projection
    np.testing.assert_array_equal(h0[0, 3], 0.0)
    np.testing.assert_allclose(h0[1], np.array(fp(x))[1], rtol=1e-6)
    # An all-ones mask is the same as no mask.
    np.testing.assert_array_equal(
        np.array(model(x[1:], mask[1:], num_layers=2)), np.array(model(x[1:], None, num_layers=2))
    )


def test_num_layers_runs_the_first_layers_only():
    full = tiny_model(4)
    x = mx.random.normal((1, 6, 6))
    mask = mx.array([[1, 1, 1, 1, 1, 0]])
    # A 2-layer model holding the first two layers of the 4-layer one.
    two = W2VBertModel(replace(TINY, num_hidden_layers=2))
    two.load_weights(
        [
            (k, v)
            for k, v in tree_flatten(full.parameters())
            if not k.startswith(("encoder.layers.2.", "encoder.layers.3."))
        ]
    )
    np.testing.assert_array_equal(
        np.array(full(x, mask, num_layers=2)), np.array(two(x, mask, num_layers=2))
    )
    outputs = [np.array(full(x, mask, num_layers=n)) for n in range(5)]
    assert all(np.abs(a - b).max() > 1e-3 for a, b in itertools.pairwise(outputs))
    with pytest.raises(ValueError):
        two(x, mask, num_layers=3)
    with pytest.raises(ValueError):
        two(x, mask)  # the default, 17, needs 17 layers


def test_normalize_semantic_by_hand():
    feats = mx.array([[[1.0, 2.0], [3.0, -4.0]]])
    out = normalize_semantic(feats, mx.array([1.0, -2.0]), mx.array([2.0, 0.5]))
    np.testing.assert_allclose(np.array(out), [[[0.0, 8.0], [1.0, -4.0]]])
