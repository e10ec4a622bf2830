"""GPT-2 stack on tiny configs, against an independent float64 numpy GPT-2 written from
``transformers/models/gpt2/modeling_gpt2.py`` with the checkpoint's ``Conv1D`` ``(in, out)``
weights (``x @ W + b``), and cached decoding against the full causal pass."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest

from mlx_indextts_models.cache import KVCache
from mlx_indextts_models.gpt2 import (
    GPT2Args,
    GPT2Model,
    causal_mask,
    gelu_new,
    linear_rows,
    quantize,
)
from mlx_indextts_models.testing import tiny_gpt2_args

TINY = tiny_gpt2_args()


def hf_weights(args: GPT2Args, seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights in the HF checkpoint layout (``Conv1D``: ``(in, out)``)."""
    rng = np.random.default_rng(seed)
    e, inner = args.n_embd, args.inner_dim
    shapes = {
        "ln_1.weight": (e,),
        "ln_1.bias": (e,),
        "attn.c_attn.weight": (e, 3 * e),
        "attn.c_attn.bias": (3 * e,),
        "attn.c_proj.weight": (e, e),
        "attn.c_proj.bias": (e,),
        "ln_2.weight": (e,),
        "ln_2.bias": (e,),
        "mlp.c_fc.weight": (e, inner),
        "mlp.c_fc.bias": (inner,),
        "mlp.c_proj.weight": (inner, e),
        "mlp.c_proj.bias": (e,),
    }
    state = {}
    for i in range(args.n_layer):
        for name, shape in shapes.items():
            scale = 0.2 if name.endswith("weight") and len(shape) == 2 else 0.1
            offset = 1.0 if name.startswith("ln") and name.endswith("weight") else 0.0
            state[f"h.{i}.{name}"] = (offset + scale * rng.standard_normal(shape)).astype(
                np.float32
            )
    state["ln_f.weight"] = (1 + 0.1 * rng.standard_normal(e)).astype(np.float32)
    state["ln_f.bias"] = (0.1 * rng.standard_normal(e)).astype(np.float32)
    return state


def load(args: GPT2Args, state: dict[str, np.ndarray]) -> GPT2Model:
    """Our model from HF-layout weights: ``Conv1D`` weights transposed to ``(out, in)``."""
    model = GPT2Model(args)
    conv1d = ("c_attn.weight", "c_proj.weight", "c_fc.weight")
    weights = [(k, mx.array(v.T if k.endswith(conv1d) else v)) for k, v in state.items()]
    model.load_weights(weights, strict=True)
    return model


def _layer_norm(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def _gelu_new(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * np.power(x, 3.0))))


def numpy_gpt2(
    args: GPT2Args, state: dict[str, np.ndarray], x: np.ndarray, valid=None
) -> np.ndarray:
    """HF ``GPT2Model(inputs_embeds=x)`` with zero position embeddings, float64.

    ``valid``: optional ``(B, T)`` 0/1 key mask (HF ``attention_mask``).
    """
    s = {k: v.astype(np.float64) for k, v in state.items()}
    h = x.astype(np.float64)
    b, t, e = h.shape
    nh, hd = args.n_head, e // args.n_head
    allowed = np.tril(np.ones((t, t), dtype=bool))[None, None]
    if valid is not None:
        allowed = allowed & valid.astype(bool)[:, None, None, :]
    for i in range(args.n_layer):
        p = lambda name, i=i: s[f"h.{i}.{name}"]  # noqa: E731
        a = _layer_norm(h, p("ln_1.weight"), p("ln_1.bias")) @ p("attn.c_attn.weight") + p(
            "attn.c_attn.bias"
        )
        q, k, v = (
            a[..., j * e : (j + 1) * e].reshape(b, t, nh, hd).transpose(0, 2, 1, 3)
            for j in range(3)
        )
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd)
        scores = np.where(allowed, scores, -np.inf)
        top = np.where(allowed.any(-1, keepdims=True), scores.max(-1, keepdims=True), 0.0)
        weights = np.exp(scores - top)
        # a query that may see no key (a padded position) attends to nothing
        weights /= np.maximum(weights.sum(-1, keepdims=True), 1e-300)
        o = (weights @ v).transpose(0, 2, 1, 3).reshape(b, t, e)
        h = h + o @ p("attn.c_proj.weight") + p("attn.c_proj.bias")
        m = _layer_norm(h, p("ln_2.weight"), p("ln_2.bias")) @ p("mlp.c_fc.weight") + p(
            "mlp.c_fc.bias"
        )
        h = h + _gelu_new(m) @ p("mlp.c_proj.weight") + p("mlp.c_proj.bias")
    return _layer_norm(h, s["ln_f.weight"], s["ln_f.bias"])


@pytest.fixture(scope="module")
def tiny():
    state = hf_weights(TINY)
    return state, load(TINY, state)


def _x(b: int, t: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((b, t, TINY.n_embd)).astype(np.float32)


def test_gelu_new_values():
    x = mx.array([-3.0, -1.0, 0.0, 0.5, 2.0])
    # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), by hand for x = 2: tanh(1.59577 * 2.35772)
    expected = [-0.0036373, -0.1588080, 0.0, 0.3457140, 1.9545977]
    np.testing.assert_allclose(np.array(gelu_new(x)), expected, atol=2e-6)


def test_full_pass_matches_numpy_gpt2(tiny):
    state, model = tiny
    x = _x(2, 11)
    np.testing.assert_allclose(np.array(model(mx.array(x))), numpy_gpt2(TINY, state, x), atol=2e-5)


@pytest.mark.parametrize("batch", [1, 3])
def test_cached_decoding_equals_full_pass(tiny, batch):
    _, model = tiny
    x = mx.array(_x(batch, 20, seed=batch))
    full = np.array(model(x))
    cache = model.make_cache(step=8)
    parts = [model(x[:, :7], cache)] + [model(x[:, t : t + 1], cache) for t in range(7, 20)]
    assert cache[0].offset == 20 and cache[0].capacity == 24
    np.testing.assert_allclose(np.array(mx.concatenate(parts, axis=1)), full, atol=1e-5)


def test_chunked_prefill_equals_full_pass(tiny):
    """Several positions after cached ones: the causal mask is aligned to the last key."""
    _, model = tiny
    x = mx.array(_x(2, 16, seed=5))
    cache = model.make_cache(step=4)
    parts = [model(x[:, :5], cache), model(x[:, 5:12], cache), model(x[:, 12:], cache)]
    np.testing.assert_allclose(
        np.array(mx.concatenate(parts, axis=1)), np.array(model(x)), atol=1e-5
    )


def test_key_padding_mask_matches_numpy(tiny):
    """Left padding (HF ``attention_mask`` 0): valid positions see only valid keys."""
    state, model = tiny
    x = _x(2, 9, seed=7)
    valid = np.ones((2, 9), dtype=np.int32)
    valid[1, :3] = 0
    mask = causal_mask(9, 0, mx.array(valid))
    got = np.array(model(mx.array(x), mask=mask))
    ref = numpy_gpt2(TINY, state, x, valid)
    np.testing.assert_allclose(got[0], ref[0], atol=2e-5)
    np.testing.assert_allclose(got[1, 3:], ref[1, 3:], atol=2e-5)
    # and a padded row equals the same row run alone without its padding
    alone = np.array(model(mx.array(x[1:, 3:])))
    np.testing.assert_allclose(got[1, 3:], alone[0], atol=2e-5)


def test_causal_mask_forms():
    assert causal_mask(1) is None
    assert causal_mask(5, 3) == "causal"
    mask = np.array(causal_mask(2, 1, mx.array([[0, 1, 1]])))
    assert mask.shape == (1, 1, 2, 3)
    np.testing.assert_array_equal(mask[0, 0], [[False, True, False], [False, True, True]])


def test_beam_reordering_during_decoding(tiny):
    """After ``select`` the cache continues the chosen rows: same as decoding them anew."""
    _, model = tiny
    x = _x(3, 12, seed=9)
    cache = model.make_cache(step=8)
    model(mx.array(x[:, :6]), cache)
    for layer in cache:
        layer.select([2, 0, 0])
    rows = x[[2, 0, 0]]
    steps = [model(mx.array(rows[:, t : t + 1]), cache) for t in range(6, 12)]
    expected = np.array(model(mx.array(rows)))[:, 6:]
    np.testing.assert_allclose(np.array(mx.concatenate(steps, axis=1)), expected, atol=1e-5)


def test_real_config_shapes_and_limits():
    args = GPT2Args()
    assert (args.n_embd, args.n_layer, args.n_head, args.inner_dim) == (1280, 24, 20, 5120)
    assert args.n_positions == 1815 + 2 + 1 + 600 + 2
    with pytest.raises(ValueError, match="gelu_new"):
        GPT2Args(activation_function="relu")
    with pytest.raises(ValueError, match="multiple"):
        GPT2Args(n_embd=30, n_head=4)


def test_sequence_limit_and_cache_count(tiny):
    _, model = tiny
    with pytest.raises(ValueError, match="n_positions"):
        model(mx.zeros((1, 65, TINY.n_embd)))
    with pytest.raises(ValueError, match="one cache per block"):
        model(mx.zeros((1, 2, TINY.n_embd)), [KVCache()])


@pytest.mark.parametrize("rows", [1, 3])
def test_linear_rows_is_x_times_w_transposed_plus_b(rows):
    rng = np.random.default_rng(rows)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((rows, 16), (24, 16), (24,)))
    got = np.array(linear_rows(mx.array(x), mx.array(w), mx.array(b)))
    np.testing.assert_allclose(got, x @ w.T + b, rtol=1e-5, atol=1e-5)


def _dequantized(state: dict[str, np.ndarray], bits: int, group_size: int) -> dict[str, np.ndarray]:
    """HF-layout weights with every block linear weight replaced by what ``mx.quantize``
    keeps of it (quantized along the input axis of the ``(out, in)`` MLX layout)."""
    out = dict(state)
    for name, value in state.items():
        if name.startswith("h.") and name.endswith(
            ("c_attn.weight", "c_proj.weight", "c_fc.weight")
        ):
            packed = mx.quantize(mx.array(value.T), group_size=group_size, bits=bits)
            out[name] = np.array(mx.dequantize(*packed, group_size=group_size, bits=bits)).T
    return out


@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_blocks_compute_with_their_dequantized_weights(tiny, bits):
    state, float_model = tiny
    model = load(TINY, state)
    quantize(model, bits)  # widths 32 and 128: groups of 32
    assert model.quantized and not float_model.quantized
    x = _x(2, 11, seed=3)
    got = np.array(model(mx.array(x)))
    np.testing.assert_allclose(got, numpy_gpt2(TINY, _dequantized(state, bits, 32), x), atol=1e-4)
    assert np.abs(got - np.array(float_model(mx.array(x)))).max() > 1e-4  # it did quantize
    # decoding one position at a time (the module path, not the compiled float step)
    cache = model.make_cache(step=8)
    parts = [model(mx.array(x[:, :5]), cache)]
    parts += [model(mx.array(x[:, t : t + 1]), cache) for t in range(5, 11)]
    np.testing.assert_allclose(np.array(mx.concatenate(parts, axis=1)), got, atol=1e-5)


def test_quantize_rejects_bits_and_widths_it_cannot_take(tiny):
    state, _ = tiny
    with pytest.raises(ValueError, match="bits"):
        quantize(load(TINY, state), 3)
    with pytest.raises(ValueError, match="widths"):
        quantize(GPT2Model(GPT2Args(n_embd=48, n_layer=1, n_head=4)), 8)
