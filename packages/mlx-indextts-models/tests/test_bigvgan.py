"""BigVGAN building blocks against hand-written numpy versions of the reference's torch code."""

from __future__ import annotations

import math

import mlx_indextts_models  # noqa: F401  (first: fast BLAS before MLX)
import mlx_indextts_models.bigvgan as bigvgan_module

# isort: split

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_indextts_models.bigvgan import (
    Activation1d,
    BigVGAN,
    BigVGANArgs,
    Conv1d,
    downsample,
    sin_squared,
    snake_beta,
    upsample,
)
from mlx_indextts_models.cpu_ops import portable_paths
from mlx_indextts_models.layers import OverlapAddConvTranspose1d as ConvTranspose1d
from mlx_indextts_models.testing import tiny_bigvgan_args

TINY = tiny_bigvgan_args()


def kaiser_sinc(kernel_size: int = 12, ratio: int = 2) -> np.ndarray:
    """``kaiser_sinc_filter1d(0.5/ratio, 0.6/ratio, K)`` in numpy (the checkpoint's buffers)."""
    cutoff, half_width = 0.5 / ratio, 0.6 / ratio
    half = kernel_size // 2
    a = 2.285 * (half - 1) * math.pi * 4 * half_width + 7.95
    beta = 0.1102 * (a - 8.7) if a > 50 else 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21.0)
    time = np.arange(-half, half) + 0.5
    f = 2 * cutoff * np.kaiser(kernel_size, beta) * np.sinc(2 * cutoff * time)
    return (f / f.sum()).astype(np.float32)


def np_upsample(x: np.ndarray, f: np.ndarray, ratio: int = 2) -> np.ndarray:
    """``UpSample1d.forward`` literally: replicate pad, transposed conv, crop, × ratio. (T,)."""
    k = len(f)
    pad = k // ratio - 1
    pad_left = pad * ratio + (k - ratio) // 2
    pad_right = pad * ratio + (k - ratio + 1) // 2
    xp = np.concatenate([np.full(pad, x[0]), x, np.full(pad, x[-1])])
    full = np.zeros((len(xp) - 1) * ratio + k)
    for j, v in enumerate(xp):
        full[j * ratio : j * ratio + k] += v * f
    return ratio * full[pad_left:-pad_right]


def np_downsample(x: np.ndarray, f: np.ndarray, ratio: int = 2) -> np.ndarray:
    """``LowPassFilter1d(stride=ratio)`` literally: replicate pad (K/2−1, K/2), correlate. (N,)."""
    k = len(f)
    xp = np.concatenate([np.full(k // 2 - 1, x[0]), x, np.full(k // 2, x[-1])])
    n_out = (len(xp) - k) // ratio + 1
    return np.array([np.dot(xp[i * ratio : i * ratio + k], f) for i in range(n_out)])


def test_snake_beta_matches_formula():
    x = np.array([[[-2.0, 0.3], [0.0, 1.5], [3.0, -0.7]]], np.float32)  # (1, 3, 2)
    alpha = np.array([0.2, -0.5], np.float32)
    beta = np.array([-0.1, 0.4], np.float32)
    want = x + 1.0 / (np.exp(beta) + 1e-9) * np.sin(x * np.exp(alpha)) ** 2
    got = np.array(snake_beta(mx.array(x), mx.array(alpha), mx.array(beta)))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    # hand value: x=1.5, alpha=-0.5, beta=0.4 → 1.5 + e^-0.4 · sin²(1.5 e^-0.5)
    assert got[0, 1, 1] == pytest.approx(1.5 + math.exp(-0.4) * math.sin(1.5 * math.exp(-0.5)) ** 2)


def test_sin_squared_matches_numpy():
    z = np.concatenate(
        [np.linspace(-60, 60, 100_001), [0.0, math.pi / 2, math.pi, -3 * math.pi / 2, 1e3]]
    ).astype(np.float32)
    want = np.sin(z.astype(np.float64)) ** 2
    np.testing.assert_allclose(np.array(sin_squared(mx.array(z))), want, atol=5e-7)
    assert float(sin_squared(mx.array(np.float32(0.5)))) == pytest.approx(math.sin(0.5) ** 2)


def test_kaiser_filter_is_lowpass():
    f = kaiser_sinc()
    assert f.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(f, f[::-1], atol=1e-7)  # symmetric, even length
    assert f[5] == pytest.approx(0.4432, abs=1e-4)  # the value in the seeded checkpoint


@pytest.mark.parametrize("length", [1, 5, 17])
def test_upsample_matches_transposed_conv(length):
    rng = np.random.default_rng(length)
    x = rng.standard_normal((2, length, 3)).astype(np.float32)
    f = kaiser_sinc()
    got = np.array(upsample(mx.array(x), mx.array(f.reshape(1, 1, 12))))
    assert got.shape == (2, 2 * length, 3)
    for b in range(2):
        for c in range(3):
            np.testing.assert_allclose(got[b, :, c], np_upsample(x[b, :, c], f), atol=1e-6)


@pytest.mark.parametrize("length", [2, 6, 34])
def test_downsample_matches_strided_lowpass(length):
    rng = np.random.default_rng(length)
    x = rng.standard_normal((1, length, 4)).astype(np.float32)
    f = kaiser_sinc() + rng.standard_normal(12).astype(np.float32) * 0.01  # asymmetric too
    got = np.array(downsample(mx.array(x), mx.array(f.reshape(1, 1, 12))))
    assert got.shape == (1, length // 2, 4)
    for c in range(4):
        np.testing.assert_allclose(got[0, :, c], np_downsample(x[0, :, c], f), atol=1e-6)


def random_activation(channels: int, seed: int) -> Activation1d:
    """An ``Activation1d`` with kaiser filters (the decimator's made asymmetric) and random
    SnakeBeta parameters."""
    rng = np.random.default_rng(seed)
    act = Activation1d(channels)
    act.act.alpha = mx.array(rng.standard_normal(channels).astype(np.float32) * 0.3)
    act.act.beta = mx.array(rng.standard_normal(channels).astype(np.float32) * 0.3)
    act.upsample.filter = mx.array(kaiser_sinc().reshape(1, 1, 12))
    act.downsample.lowpass.filter = mx.array(
        (kaiser_sinc() + rng.standard_normal(12).astype(np.float32) * 0.01).reshape(1, 1, 12)
    )
    return act


@pytest.mark.parametrize("length", [1, 2, 7, 40])
@pytest.mark.parametrize("portable", [False, True])
def test_fused_activation_matches_composition(length, portable):
    act = random_activation(3, length)
    x = mx.array(np.random.default_rng(length).standard_normal((2, length, 3)).astype(np.float32))
    x = x * 2
    want = np.zeros((2, length, 3))
    fu, fd = np.array(act.upsample.filter).ravel(), np.array(act.downsample.lowpass.filter).ravel()
    a, b = np.exp(np.array(act.act.alpha)), np.exp(np.array(act.act.beta))
    for i in range(2):
        for c in range(3):
            u = np_upsample(np.array(x)[i, :, c].astype(np.float64), fu)
            u = u + 1.0 / (b[c] + 1e-9) * np.sin(u * a[c]) ** 2
            want[i, :, c] = np_downsample(u, fd)
    with portable_paths(portable):  # numpy blocks on the CPU; compiled MLX (GPU) otherwise
        np.testing.assert_allclose(np.array(act(x)), want, atol=2e-5)


@pytest.mark.parametrize("length", [1, 3, 4, 5, 9, 64])
def test_numpy_activation_blocks_equal_the_compiled_mlx(monkeypatch, length):
    """The CPU path in blocks of 4 frames (edges inside the first and last blocks) gives
    what the compiled MLX path gives for the whole signal."""
    act = random_activation(5, length)
    x = mx.array(np.random.default_rng(length).standard_normal((2, length, 5)).astype(np.float32))
    with portable_paths():
        want = np.array(act(x * 3))
    monkeypatch.setattr(bigvgan_module, "ACTIVATION_BLOCK_FLOATS", 4 * 5)
    np.testing.assert_allclose(np.array(act(x * 3)), want, rtol=1e-5, atol=2e-6)


def test_upsample_then_downsample_keeps_a_slow_sine():
    t = np.arange(200)
    x = np.sin(2 * np.pi * t / 50).astype(np.float32)[None, :, None]
    f = mx.array(kaiser_sinc().reshape(1, 1, 12))
    y = np.array(downsample(upsample(mx.array(x), f), f))
    np.testing.assert_allclose(y[0, 20:-20, 0], x[0, 20:-20, 0], atol=0.02)


@pytest.mark.parametrize(("k", "d"), [(3, 3), (5, 2), (11, 5)])
def test_dilated_conv_matches_mlx_conv(k, d):
    rng = np.random.default_rng(k * d)
    conv = Conv1d(4, 3, k, dilation=d, padding=(k * d - d) // 2)
    x = mx.array(rng.standard_normal((2, 23, 4)).astype(np.float32))
    want = mx.conv1d(x, conv.weight, padding=(k * d - d) // 2, dilation=d) + conv.bias
    np.testing.assert_allclose(np.array(conv(x)), np.array(want), atol=1e-5)


@pytest.mark.parametrize(("u", "k"), [(4, 8), (2, 4)])
def test_upsampling_conv_matches_conv_transpose(u, k):
    rng = np.random.default_rng(u)
    conv = ConvTranspose1d(5, 3, k, u, (k - u) // 2)
    x = mx.array(rng.standard_normal((2, 9, 5)).astype(np.float32))
    want = mx.conv_transpose1d(x, conv.weight, stride=u, padding=(k - u) // 2) + conv.bias
    got = conv(x)
    assert got.shape == (2, 9 * u, 3)
    np.testing.assert_allclose(np.array(got), np.array(want), atol=1e-5)


def test_tiny_model_shapes_names_and_clamp():
    model = BigVGAN(TINY)
    names = {k for k, _ in tree_flatten(model.parameters())}
    assert "ups.1.0.weight" in names and "conv_post.bias" not in names
    assert "resblocks.3.activations.3.downsample.lowpass.filter" in names
    assert "activation_post.act.beta" in names and "resblocks.0.convs2.1.weight" in names
    assert len(model.resblocks) == 4 and TINY.upsample_factor == 4
    mel = mx.array(np.random.default_rng(0).standard_normal((1, 7, 6)).astype(np.float32))
    f = mx.array(kaiser_sinc().reshape(1, 1, 12))
    for act in [model.activation_post] + [a for r in model.resblocks for a in r.activations]:
        act.upsample.filter = f
        act.downsample.lowpass.filter = f
    model.conv_post.weight = model.conv_post.weight * 1000.0
    wave = np.array(model(mel))
    assert wave.shape == (1, 28)
    assert np.abs(wave).max() == pytest.approx(1.0)  # clamped, no tanh


def test_default_args_are_the_official_config():
    args = BigVGANArgs()
    assert args.upsample_factor == 256 and args.upsample_initial_channel == 1536
    assert not args.use_tanh_at_final and not args.use_bias_at_final and args.snake_logscale
