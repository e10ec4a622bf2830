"""S2Mel DiT estimator and WaveNet head on tiny configs, against a float64 numpy
transcription of the reference (``diffusion_transformer.DiT``, ``gpt_fast/model.py``,
``wavenet.WN`` with ``encodec.SConv1d`` reflect padding); IndexTTS-2's config values."""

from __future__ import annotations

from dataclasses import replace

import mlx_indextts_models  # noqa: F401  (first: fast BLAS before MLX)

# isort: split

import math

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_indextts_models.s2mel.dit import DiT, DiTArgs, timestep_frequencies
from mlx_indextts_models.s2mel.wavenet import WN, WaveNetArgs, reflect_pad
from mlx_indextts_models.testing import tiny_dit_args, tiny_wavenet_args

# deeper than the CFM tests' tiny model: 5 blocks, 3 WaveNet layers
TINY_DIT = replace(tiny_dit_args(), depth=5)
TINY_WN = replace(tiny_wavenet_args(), num_layers=3)
STYLE = 6


def randomize(module, seed: int) -> dict[str, np.ndarray]:
    """Give every parameter seeded values of scale 0.3; return them as float64 numpy."""
    rng = np.random.default_rng(seed)
    flat = tree_flatten(module.parameters())
    new = [(k, mx.array((0.3 * rng.standard_normal(v.shape)).astype(np.float32))) for k, v in flat]
    module.load_weights(new, strict=True)
    return {k: np.array(v).astype(np.float64) for k, v in new}


# ---- numpy transcription of the reference (channels-last, float64) -----------------


def linear(p, name, x):
    y = x @ p[f"{name}.weight"].T
    return y + p[f"{name}.bias"] if f"{name}.bias" in p else y


def conv1d(p, name, x, dilation=1):
    """Unpadded Conv1d with MLX-layout weight (out, k, in) on (B, T, C)."""
    w = p[f"{name}.weight"]
    k = w.shape[1]
    span = (k - 1) * dilation
    out = sum(x[:, j * dilation : x.shape[1] - span + j * dilation] @ w[:, j].T for j in range(k))
    return out + p[f"{name}.bias"]


def silu(x):
    return x / (1 + np.exp(-x))


def np_timestep(p, name, t):
    half = 128
    freqs = np.exp(-math.log(10000) * np.arange(half) / half)
    args = 1000 * t[:, None] * freqs[None]
    h = np.concatenate([np.cos(args), np.sin(args)], axis=-1)
    return linear(p, f"{name}.mlp.2", silu(linear(p, f"{name}.mlp.0", h)))


def np_adaptive_rms(p, name, x, c):
    weight, bias = np.split(linear(p, f"{name}.project_layer", c), 2, axis=-1)
    normed = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-5)
    return weight * normed * p[f"{name}.norm.weight"] + bias


def np_rotary(x):
    """gpt-fast ``apply_rotary_emb`` with ``precompute_freqs_cis``: (B, T, H, D)."""
    _, t, _, d = x.shape
    freqs = 1.0 / (10000 ** (np.arange(0, d, 2)[: d // 2] / d))
    angle = np.arange(t)[:, None] * freqs[None]
    cos, sin = np.cos(angle)[None, :, None], np.sin(angle)[None, :, None]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return np.stack([x0 * cos - x1 * sin, x1 * cos + x0 * sin], axis=-1).reshape(x.shape)


def np_attention(p, name, x, heads, key_mask):
    b, t, d = x.shape
    hd = d // heads
    q, k, v = np.split(x @ p[f"{name}.wqkv.weight"].T, 3, axis=-1)
    q, k, v = (a.reshape(b, t, heads, hd) for a in (q, k, v))
    q, k = np_rotary(q), np_rotary(k)
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd)
    if key_mask is not None:
        scores = np.where(key_mask[:, None, None, :], scores, -np.inf)
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    scores /= scores.sum(-1, keepdims=True)
    y = np.einsum("bhqk,bkhd->bqhd", scores, v).reshape(b, t, d)
    return y @ p[f"{name}.wo.weight"].T


def np_wavenet(p, name, x, mask, g, args):
    hidden = args.hidden_dim
    g = conv1d(p, f"{name}.cond_layer.conv.conv", g)
    out = np.zeros_like(x)
    pad = (args.kernel_size - 1) // 2
    for i in range(args.num_layers):
        xp = np.pad(x, ((0, 0), (pad, pad), (0, 0)), mode="reflect")
        a = (
            conv1d(p, f"{name}.in_layers.{i}.conv.conv", xp)
            + g[..., 2 * i * hidden : 2 * (i + 1) * hidden]
        )
        acts = np.tanh(a[..., :hidden]) / (1 + np.exp(-a[..., hidden:]))
        rs = conv1d(p, f"{name}.res_skip_layers.{i}.conv.conv", acts)
        if i < args.num_layers - 1:
            x = (x + rs[..., :hidden]) * mask
            out = out + rs[..., hidden:]
        else:
            out = out + rs
    return out * mask


def np_dit(p, x, prompt_x, x_lens, t, style, cond, args: DiTArgs, wn: WaveNetArgs):
    b, frames, _ = x.shape
    t1 = np_timestep(p, "t_embedder", t)
    parts = [x, prompt_x, linear(p, "cond_projection", cond)]
    parts.append(np.broadcast_to(style[:, None], (b, frames, style.shape[-1])))
    h = linear(p, "cond_x_merge_linear", np.concatenate(parts, axis=-1))
    key_mask = np.arange(frames)[None] < np.asarray(x_lens)[:, None]
    c = t1[:, None]
    skips = []
    n = args.depth
    for i in range(n):
        name = f"transformer.layers.{i}"
        if i > n // 2:
            h = linear(p, f"{name}.skip_in_linear", np.concatenate([h, skips.pop()], axis=-1))
        a = np_adaptive_rms(p, f"{name}.attention_norm", h, c)
        h = h + np_attention(p, f"{name}.attention", a, args.num_heads, key_mask)
        h = h + linear(
            p,
            f"{name}.feed_forward.w2",
            silu(linear(p, f"{name}.feed_forward.w1", np_adaptive_rms(p, f"{name}.ffn_norm", h, c)))
            * linear(p, f"{name}.feed_forward.w3", np_adaptive_rms(p, f"{name}.ffn_norm", h, c)),
        )
        if i < n // 2:
            skips.append(h)
    x_res = np_adaptive_rms(p, "transformer.norm", h, c)
    x_res = linear(p, "skip_linear", np.concatenate([x_res, x], axis=-1))
    mask = key_mask[..., None].astype(np.float64)
    t2 = np_timestep(p, "t_embedder2", t)
    h = np_wavenet(p, "wavenet", linear(p, "conv1", x_res), mask, t2[:, None], wn)
    h = h + linear(p, "res_projection", x_res)
    shift, scale = np.split(linear(p, "final_layer.adaLN_modulation.1", silu(t1)), 2, axis=-1)
    mean = h.mean(-1, keepdims=True)
    var = ((h - mean) ** 2).mean(-1, keepdims=True)
    h = (h - mean) / np.sqrt(var + 1e-6) * (1 + scale[:, None]) + shift[:, None]
    return conv1d(p, "conv2", linear(p, "final_layer.linear", h))


# ---- tests ------------------------------------------------------------------------


def test_config_is_indextts2s():
    """``s2mel.DiT`` / ``s2mel.wavenet`` of the official config.yaml, as package data."""
    dit, wn = DiTArgs(), WaveNetArgs()
    assert (dit.hidden_dim, dit.num_heads, dit.depth, dit.in_channels) == (512, 8, 13, 80)
    assert dit.uvit_skip_connection and dit.long_skip_connection and dit.style_condition
    assert not (dit.time_as_token or dit.style_as_token or dit.is_causal)
    assert (wn.hidden_dim, wn.num_layers, wn.kernel_size, wn.dilation_rate) == (512, 8, 5, 1)


def test_full_size_structure():
    """Kernel 5 convs, SwiGLU 1536, U-ViT skips emitted by blocks 0-5 and received by 7-12."""
    model = DiT()
    shapes = {k: v.shape for k, v in tree_flatten(model.parameters())}
    assert shapes["wavenet.in_layers.0.conv.conv.weight"] == (1024, 5, 512)
    assert shapes["wavenet.cond_layer.conv.conv.weight"] == (8192, 1, 512)
    assert shapes["wavenet.res_skip_layers.7.conv.conv.weight"] == (512, 1, 512)
    assert shapes["transformer.layers.0.feed_forward.w1.weight"] == (1536, 512)
    assert shapes["cond_x_merge_linear.weight"] == (512, 864)
    assert shapes["skip_linear.weight"] == (512, 592)
    assert model.transformer.layers_emit_skip == [0, 1, 2, 3, 4, 5]
    assert model.transformer.layers_receive_skip == [7, 8, 9, 10, 11, 12]
    with_skip = {int(k.split(".")[2]) for k in shapes if "skip_in_linear.weight" in k}
    assert with_skip == {7, 8, 9, 10, 11, 12}
    assert sum(v.size for v in dict(tree_flatten(model.parameters())).values()) > 90_000_000


@pytest.mark.parametrize("flag", ["time_as_token", "style_as_token", "is_causal"])
def test_unsupported_settings_are_refused(flag):
    with pytest.raises(ValueError, match=flag):
        DiT(DiTArgs(**{flag: True}))


@pytest.mark.parametrize("length,left,right", [(7, 2, 2), (3, 2, 2), (9, 1, 0), (5, 0, 3)])
def test_reflect_pad_matches_numpy(length, left, right):
    x = np.arange(2 * length * 3, dtype=np.float32).reshape(2, length, 3)
    got = np.array(reflect_pad(mx.array(x), left, right))
    np.testing.assert_array_equal(got, np.pad(x, ((0, 0), (left, right), (0, 0)), mode="reflect"))


def test_reflect_pad_of_a_too_short_input_follows_encodec():
    """``pad1d`` first appends zeros so reflection is defined, then cuts them: [a, b] with
    (2, 2) → [0, b, a, b, 0, b]."""
    x = mx.array(np.array([[[1.0], [2.0]]], np.float32))
    assert np.array(reflect_pad(x, 2, 2))[0, :, 0].tolist() == [0, 2, 1, 2, 0, 2]


def test_timestep_frequencies():
    half = np.arange(128)
    np.testing.assert_allclose(
        timestep_frequencies(), np.exp(-math.log(10000) * half / 128), rtol=1e-6
    )
    assert timestep_frequencies()[0] == 1.0


def test_wavenet_matches_numpy():
    wn = WN(TINY_WN, gin_channels=8)
    p = randomize(wn, 1)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 11, 16)).astype(np.float32)
    g = rng.standard_normal((2, 1, 8)).astype(np.float32)
    mask = (np.arange(11)[None, :, None] < np.array([11, 7])[:, None, None]).astype(np.float32)
    got = np.array(wn(mx.array(x), mx.array(mask), g=mx.array(g)))
    ref = np_wavenet({f"wn.{k}": v for k, v in p.items()}, "wn", x, mask, g, TINY_WN)
    np.testing.assert_allclose(got, ref, atol=2e-5, rtol=1e-4)
    assert np.abs(got[1, 7:]).max() == 0  # masked frames


@pytest.mark.parametrize("x_lens", [[13, 13], [13, 9]])
def test_dit_matches_numpy(x_lens):
    model = DiT(TINY_DIT, TINY_WN, style_dim=STYLE)
    p = randomize(model, 3)
    rng = np.random.default_rng(4)
    b, frames = 2, 13
    x = rng.standard_normal((b, frames, 4))
    prompt_x = rng.standard_normal((b, frames, 4))
    prompt_x[:, 5:] = 0
    cond = rng.standard_normal((b, frames, 8))
    style = rng.standard_normal((b, STYLE))
    t = np.array([0.2, 0.84])
    want = np_dit(p, x, prompt_x, x_lens, t, style, cond, TINY_DIT, TINY_WN)
    got = model(
        *(mx.array(a.astype(np.float32)) for a in (x, prompt_x)),
        x_lens,
        *(mx.array(a.astype(np.float32)) for a in (t, style, cond)),
    )
    np.testing.assert_allclose(np.array(got), want, atol=5e-5, rtol=1e-4)


def test_dit_full_length_mask_equals_no_mask():
    model = DiT(TINY_DIT, TINY_WN, style_dim=STYLE)
    randomize(model, 5)
    rng = np.random.default_rng(6)
    args = [mx.array(rng.standard_normal(s).astype(np.float32)) for s in ((1, 9, 4), (1, 9, 4))]
    rest = [
        mx.array([0.5]),
        mx.array(rng.standard_normal((1, STYLE)).astype(np.float32)),
        mx.array(rng.standard_normal((1, 9, 8)).astype(np.float32)),
    ]
    a = np.array(model(*args, [9], *rest))
    b = np.array(model(*args, None, *rest))
    np.testing.assert_array_equal(a, b)
    c = np.array(model(*args, [6], *rest))
    assert np.abs(c - a).max() > 1e-3  # a shorter length changes the result


@pytest.mark.parametrize(("frames", "from_frame"), [(40, 25), (40, 3), (40, 40), (12, 0)])
def test_head_from_a_frame_gives_the_whole_forwards_values_there(frames, from_frame):
    """The head runs only over the frames that reach ``from_frame..T-1`` (the WaveNet's
    3 layers of kernel 5 reach 6 frames back); those equal the whole forward's (numpy, as
    hand-written above), and the frames before are zeros."""
    model = DiT(TINY_DIT, TINY_WN, style_dim=STYLE)
    p = randomize(model, 7)
    assert model.wavenet.reach() == 6
    rng = np.random.default_rng(8)
    x, prompt_x = rng.standard_normal((2, frames, 4)), rng.standard_normal((2, frames, 4))
    cond, style = rng.standard_normal((2, frames, 8)), rng.standard_normal((2, STYLE))
    t = np.array([0.3, 0.3])
    want = np_dit(p, x, prompt_x, [frames, frames], t, style, cond, TINY_DIT, TINY_WN)
    args = [mx.array(a.astype(np.float32)) for a in (x, prompt_x)]
    rest = [mx.array(a.astype(np.float32)) for a in (t, style, cond)]
    got = np.array(model(*args, None, *rest, from_frame=from_frame))
    np.testing.assert_allclose(got[:, from_frame:], want[:, from_frame:], atol=5e-5, rtol=1e-4)
    assert np.abs(got[:, :from_frame]).max(initial=0.0) == 0.0
    if 0 < from_frame < frames:  # the test can fail: a head cut too late differs
        model.wavenet.reach = lambda: 0
        cut = np.array(model(*args, None, *rest, from_frame=from_frame))
        assert np.abs(cut[:, from_frame:] - want[:, from_frame:]).max() > 1e-3
