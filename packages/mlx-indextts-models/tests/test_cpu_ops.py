"""The numpy CPU paths of ``cpu_ops`` against hand-computed values and the plain MLX ops."""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

import mlx_indextts_models.cpu_ops as ops


@pytest.fixture
def portable():
    """``portable()`` takes the portable MLX paths (what a GPU runs) until the test ends."""
    with contextlib.ExitStack() as stack:
        yield lambda: stack.enter_context(ops.portable_paths())


def test_causal_depthwise_conv_by_hand(portable):
    x = mx.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1)
    weight = mx.array([1.0, 10.0, 100.0]).reshape(1, 3, 1)  # taps for t-2, t-1, t
    expected = [100.0, 210.0, 321.0, 432.0]
    np.testing.assert_allclose(np.array(ops.causal_depthwise_conv1d(x, weight)).ravel(), expected)
    portable()  # the GPU path: grouped conv1d
    np.testing.assert_allclose(np.array(ops.causal_depthwise_conv1d(x, weight)).ravel(), expected)


def test_cpu_and_mlx_elementwise_paths_agree(portable):
    x = mx.random.normal((2, 7, 12), key=mx.random.key(0)) * 4
    gate = mx.random.normal((2, 7, 12), key=mx.random.key(1)) * 4
    weight = gate[0, :5].T[..., None]

    def run():
        return [
            ops.silu(x),
            ops.glu(x, gate),
            ops.softmax(x),
            ops.tanh_sigmoid_gate(x),
            ops.causal_depthwise_conv1d(x, weight),
        ]

    cpu = run()
    portable()
    other = run()
    plain = [
        nn.silu(x),
        x * mx.sigmoid(gate),
        mx.softmax(x, axis=-1),
        mx.tanh(x[..., :6]) * mx.sigmoid(x[..., 6:]),
    ]
    for a, b in zip(cpu, other, strict=True):
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-5, atol=1e-5)
    for a, b in zip(other, plain, strict=False):
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-6, atol=1e-7)


def test_elementwise_values_by_hand():
    np.testing.assert_allclose(
        np.array(ops.softmax(mx.array([[0.0, math.log(3.0)], [5.0, 5.0]]))),
        [[0.25, 0.75], [0.5, 0.5]],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        np.array(ops.silu(mx.array([0.0, math.log(3.0), -100.0]))),
        [0.0, math.log(3.0) * 0.75, 0.0],
        atol=1e-6,
    )
    np.testing.assert_allclose(
        np.array(ops.glu(mx.array([2.0, 2.0]), mx.array([0.0, math.log(3.0)]))),
        [1.0, 1.5],
        rtol=1e-6,
    )
    # tanh(ln 2) = 3/5, sigmoid(ln 3) = 3/4; tanh(0) = 0; tanh(-100)·sigmoid(-100) ≈ -0
    gated = ops.tanh_sigmoid_gate(
        mx.array([[math.log(2.0), 0.0, -100.0, math.log(3.0), 7.0, -100.0]])
    )
    np.testing.assert_allclose(np.array(gated), [[0.45, 0.0, 0.0]], atol=1e-6)


def naive_attention(q, k, v, scale, lengths):
    """Loops over rows, heads and queries in float64; keys past ``lengths[row]`` dropped."""
    q, k, v = (np.array(a, dtype=np.float64) for a in (q, k, v))
    b, heads, t, d = q.shape
    out = np.zeros((b, t, heads * d))
    for row in range(b):
        n = lengths[row]
        for h in range(heads):
            for i in range(t):
                s = scale * k[row, h, :n] @ q[row, h, i]
                w = np.exp(s - s.max())
                out[row, i, h * d : (h + 1) * d] = (w / w.sum()) @ v[row, h, :n]
    return out


@pytest.mark.parametrize("lengths", [None, [5], [5, 3]])
@pytest.mark.parametrize("path", ["cpu", "mlx"])
def test_attention_against_loops(portable, lengths, path):
    if path == "mlx":
        portable()
    keys = [mx.random.key(i) for i in range(3)]
    q, k, v = (mx.random.normal((2, 3, 5, 4), key=key) * 2 for key in keys)
    # v as a strided view, as the DiT passes it (a slice of the fused QKV, transposed)
    v = mx.random.normal((2, 5, 3, 4), key=keys[2]).transpose(0, 2, 1, 3)
    per_row = [5, 5] if lengths is None else (lengths * 2)[:2]  # one length broadcasts
    expected = naive_attention(q, k, v, 0.5, per_row)
    got = np.array(ops.attention(q, k, v, 0.5, lengths))
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-6)


def test_attention_rejects_lengths_that_do_not_fit():
    q = mx.zeros((2, 1, 3, 4))
    with pytest.raises(ValueError, match="key_lengths"):
        ops.attention(q, q, q, 1.0, [3, 3, 3])
    with pytest.raises(ValueError, match="key_lengths"):
        ops.attention(q, q, q, 1.0, [0])


def _smooth(x):
    """A time-local op with edge handling: 5-tap sum over a replicate-padded signal."""
    t = x.shape[1]
    xp = mx.concatenate([mx.repeat(x[:, :1], 2, axis=1), x, mx.repeat(x[:, -1:], 2, axis=1)], 1)
    return sum(xp[:, j : j + t] * (j + 1) for j in range(5))


def test_time_chunks_on_cpu_streams_equal_the_whole():
    x = mx.random.normal((2, 5003, 3), key=mx.random.key(7))
    whole = _smooth(x)
    assert mx.array_equal(ops.over_time_chunks(_smooth, x, halo=2), whole)
    # the test can fail: without enough context the chunk edges are padded, not read
    if ops.THREADS > 1:
        assert not mx.array_equal(ops.over_time_chunks(_smooth, x, halo=0, min_frames=1), whole)
    short = x[:, :100]
    assert mx.array_equal(ops.over_time_chunks(_smooth, short, halo=2), _smooth(short))


def test_gelu_tanh_matches_the_formula_on_both_paths(portable):
    x = mx.random.normal((3, 7, 5), key=mx.random.key(4)) * 3
    xs = np.array(x, dtype=np.float64)
    expected = 0.5 * xs * (1 + np.tanh(np.sqrt(2 / np.pi) * (xs + 0.044715 * xs**3)))
    np.testing.assert_allclose(np.array(ops.gelu_tanh(x)), expected, rtol=1e-5, atol=1e-6)
    portable()
    np.testing.assert_allclose(np.array(ops.gelu_tanh(x)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("path", ["cpu", "mlx"])
def test_causal_attention_sees_only_earlier_keys(portable, path):
    if path == "mlx":
        portable()
    keys = [mx.random.key(i) for i in range(10, 13)]
    q, k, v = (mx.random.normal((2, 3, 6, 4), key=key) for key in keys)
    got = np.array(ops.attention(q, k, v, 0.5, causal=True))
    for i in range(6):  # query i over keys 0..i equals attention on the first i + 1 positions
        prefix = naive_attention(
            q[:, :, i : i + 1], k[:, :, : i + 1], v[:, :, : i + 1], 0.5, [i + 1, i + 1]
        )
        np.testing.assert_allclose(got[:, i : i + 1], prefix, rtol=2e-5, atol=2e-6)
    with pytest.raises(ValueError, match="causal"):
        ops.attention(q, k[:, :, :5], v[:, :, :5], 0.5, causal=True)


def test_the_portable_switch_is_explicit_and_scoped():
    x = mx.array([[-100.0, -1.0, 0.0, 2.0]])
    assert ops.on_cpu() and not ops.portable()
    with ops.portable_paths():
        assert not ops.on_cpu() and ops.portable()
        with ops.portable_paths(False):
            assert ops.on_cpu()
        np.testing.assert_allclose(np.array(ops.silu(x)), np.array(nn.silu(x)), atol=1e-7)
    assert ops.on_cpu()
    env = {**os.environ, ops.PORTABLE_ENV: "1"}
    code = "import mlx_indextts_models.cpu_ops as o; print(o.portable(), o.on_cpu())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=env)  # fmt: skip
    assert done.stdout.split() == ["True", "False"]


def naive_conv1d(x, weight, bias, padding, dilation):
    """Loops over frames and taps in float64: ``y[t] = b + Σ_j W[:, j] · x[t + j·d − p]``."""
    x, w = np.array(x, dtype=np.float64), np.array(weight, dtype=np.float64)
    b, t, _ = x.shape
    out_c, k, _ = w.shape
    t_out = t + 2 * padding - dilation * (k - 1)
    y = np.zeros((b, t_out, out_c)) + (0.0 if bias is None else np.array(bias))
    for i in range(t_out):
        for j in range(k):
            src = i + j * dilation - padding
            if 0 <= src < t:
                y[:, i] += x[:, src] @ w[:, j].T
    return y


@pytest.mark.parametrize(
    ("k", "dilation", "padding", "length"),
    [(3, 1, 1, 50), (11, 5, 25, 50), (7, 3, 9, 4), (5, 2, 0, 23), (1, 1, 0, 9)],
)
@pytest.mark.parametrize("path", ["cpu", "mlx"])
def test_conv1d_against_loops(portable, monkeypatch, k, dilation, padding, length, path):
    if path == "mlx":
        portable()
    # small blocks: several per row, edges inside and across blocks (padding > block)
    monkeypatch.setattr(ops, "CONV_BLOCK_FLOATS", 4 * k * 3)
    monkeypatch.setattr(ops, "CONV_MIN_BLOCK_FRAMES", 3)
    keys = [mx.random.key(i) for i in range(3)]
    x = mx.random.normal((2, length, 3), key=keys[0])
    weight = mx.random.normal((4, k, 3), key=keys[1])
    bias = mx.random.normal((4,), key=keys[2])
    for b in (bias, None):
        got = np.array(ops.conv1d(x, weight, b, padding=padding, dilation=dilation))
        want = naive_conv1d(x, weight, b, padding, dilation)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_conv1d_blocks_agree_to_rounding(monkeypatch):
    """Whatever the block size, every output frame is the product of the same taps (the
    BLAS may round a 7-row product differently from a 300-row one)."""
    x = mx.random.normal((1, 300, 24), key=mx.random.key(0))
    weight = mx.random.normal((24, 11, 24), key=mx.random.key(1))
    whole = ops.conv1d(x, weight, None, padding=25, dilation=5)
    monkeypatch.setattr(ops, "CONV_BLOCK_FLOATS", 11 * 24 * 7)
    monkeypatch.setattr(ops, "CONV_MIN_BLOCK_FRAMES", 7)
    np.testing.assert_allclose(
        np.array(ops.conv1d(x, weight, None, padding=25, dilation=5)),
        np.array(whole),
        rtol=1e-5,
        atol=1e-5,
    )


def rotate_by_hand(x, base):
    """Interleaved-pair rotary embedding in float64, pair by pair and frame by frame."""
    x = np.array(x, dtype=np.float64)
    out = np.empty_like(x)
    d = x.shape[-1]
    for t in range(x.shape[-2]):
        for i in range(d // 2):
            angle = t * base ** (-2 * i / d)
            a, b = x[..., t, 2 * i], x[..., t, 2 * i + 1]
            out[..., t, 2 * i] = a * math.cos(angle) - b * math.sin(angle)
            out[..., t, 2 * i + 1] = b * math.cos(angle) + a * math.sin(angle)
    return out


@pytest.mark.parametrize("lengths", [None, [7, 4]])
@pytest.mark.parametrize("path", ["cpu", "mlx"])
def test_attention_with_rotary_positions(portable, lengths, path):
    if path == "mlx":
        portable()
    q, k, v = (mx.random.normal((2, 3, 7, 8), key=mx.random.key(10 + i)) for i in range(3))
    expected = naive_attention(
        rotate_by_hand(q, 100.0), rotate_by_hand(k, 100.0), v, 0.3, lengths or [7, 7]
    )
    got = np.array(ops.attention(q, k, v, 0.3, lengths, rope_base=100.0))
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5)
    unrotated = np.array(ops.attention(q, k, v, 0.3, lengths))
    assert np.abs(unrotated - expected).max() > 1e-2  # the rotation matters here
