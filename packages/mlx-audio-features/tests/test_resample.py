"""Band-limited sinc resampling (``resample``, ``resample_kernel``)."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest

from mlx_audio_features import resample, resample_kernel

RATES = [(22050, 16000), (16000, 22050), (16000, 8000), (8000, 16000), (48000, 16000)]


def _interior(y, fraction=10):
    """Drop the first and last tenth, where zero padding tapers the output."""
    m = len(y) // fraction
    return y[m:-m]


@pytest.mark.parametrize(
    ("orig", "new", "n"),
    [
        (22050, 16000, 22050),
        (22050, 16000, 1001),
        (16000, 22050, 999),
        (16000, 8000, 7),
        (8000, 16000, 5),
        (44100, 16000, 12345),
        (48000, 44100, 480),
    ],
)
def test_output_length_is_ceil_of_scaled_length(orig, new, n):
    y = resample(np.zeros(n, np.float32), orig_freq=orig, new_freq=new)
    assert y.dtype == mx.float32
    assert y.shape == (math.ceil(n * new / orig),)


@pytest.mark.parametrize(
    ("orig", "new", "shape", "width"),
    [
        # 441 -> 320: base 320 * 0.99 = 316.8, width ceil(6 * 441 / 316.8) = ceil(8.35) = 9
        (22050, 16000, (320, 441 + 2 * 9), 9),
        # 320 -> 441: base 316.8, width ceil(6 * 320 / 316.8) = ceil(6.06) = 7
        (16000, 22050, (441, 320 + 2 * 7), 7),
        # 2 -> 1: base 0.99, width ceil(12 / 0.99) = 13
        (16000, 8000, (1, 2 + 2 * 13), 13),
    ],
)
def test_kernel_shape_and_width_by_hand(orig, new, shape, width):
    kernel, w = resample_kernel(orig, new)
    assert kernel.dtype == np.float32
    assert kernel.shape == shape and w == width


def test_kernel_phase_zero_is_a_symmetric_windowed_sinc():
    kernel, width = resample_kernel(22050, 16000)
    row = kernel[0].astype(np.float64)
    # centre tap: sinc(0) * window(0) * base / orig = 316.8 / 441
    assert row[width] == pytest.approx(316.8 / 441, rel=1e-6)
    np.testing.assert_allclose(row[width + 1 : 2 * width + 1], row[width - 1 :: -1], atol=1e-7)
    # one tap by hand: t = 3 / 441 * 316.8, sinc(t) * cos(pi t / 12) ** 2 * 316.8 / 441
    t = 3 / 441 * 316.8
    expected = math.sin(math.pi * t) / (math.pi * t) * math.cos(math.pi * t / 12) ** 2
    assert row[width + 3] == pytest.approx(expected * 316.8 / 441, rel=1e-5)
    # beyond lowpass_filter_width zero crossings the Hann window is zero
    taps_t = np.arange(-width, width + 441) / 441 * 316.8
    np.testing.assert_array_equal(row[np.abs(taps_t) >= 6.0], 0.0)


@pytest.mark.parametrize(("orig", "new"), RATES)
def test_kernel_rows_have_unit_dc_gain(orig, new):
    kernel, _ = resample_kernel(orig, new)
    np.testing.assert_allclose(kernel.astype(np.float64).sum(axis=1), 1.0, atol=2e-3)


@pytest.mark.parametrize(("orig", "new"), RATES)
def test_constant_signal_stays_constant_away_from_edges(orig, new):
    y = np.array(resample(np.ones(orig, np.float32), orig_freq=orig, new_freq=new))
    np.testing.assert_allclose(_interior(y), 1.0, atol=2e-3)
    # zero padding: output 0 sits on input 0 and sees the centre tap plus the right half
    # of a symmetric kernel summing to 1, i.e. (1 + centre) / 2 with
    # centre = 0.99 * min(orig, new) / orig
    centre = 0.99 * min(orig, new) / orig
    assert y[0] == pytest.approx((1 + centre) / 2, abs=2e-3)


@pytest.mark.parametrize(("orig", "new"), RATES)
def test_sine_matches_the_same_sine_sampled_at_the_new_rate(orig, new):
    n = orig // 2
    x = np.sin(2 * np.pi * 440.0 * np.arange(n) / orig + 0.25).astype(np.float32)
    y = np.array(resample(x, orig_freq=orig, new_freq=new))
    expected = np.sin(2 * np.pi * 440.0 * np.arange(len(y)) / new + 0.25)
    assert np.abs(_interior(y - expected)).max() < 1e-3


def test_downsampling_removes_content_above_the_new_nyquist():
    t = np.arange(16000) / 16000.0
    low = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    high = np.sin(2 * np.pi * 5000 * t).astype(np.float32)
    passed = resample(low, orig_freq=16000, new_freq=8000)
    stopped = resample(high, orig_freq=16000, new_freq=8000)
    assert np.abs(_interior(np.array(passed))).max() == pytest.approx(1.0, abs=2e-3)
    # 5 kHz would alias to 3 kHz at 8 kHz; the filter keeps less than 1% of it
    assert np.abs(_interior(np.array(stopped))).max() < 1e-2


def test_integer_downsampling_of_an_impulse_returns_the_kernel():
    kernel, width = resample_kernel(16000, 8000)
    assert width == 13
    x = np.zeros(200, np.float32)
    x[100] = 1.0
    y = np.array(resample(x, orig_freq=16000, new_freq=8000))
    assert y.shape == (100,)
    # output j reads padded[2j : 2j + 28] = x[2j - 13 : 2j + 15]: x[100] is its tap
    # 113 - 2j, so outputs 43..56 see the impulse and the rest are exactly zero
    for j in range(43, 57):
        assert y[j] == pytest.approx(kernel[0, 113 - 2 * j], abs=1e-7), j
    assert y[50] == pytest.approx(0.495, rel=1e-6)  # centre tap 0.99 * 1 / 2
    np.testing.assert_array_equal(y[:43], 0.0)
    np.testing.assert_array_equal(y[57:], 0.0)


@pytest.mark.parametrize(("filter_width", "rolloff"), [(6, 0.5), (16, 0.99), (3, 0.9)])
def test_filter_options_reach_the_kernel(filter_width, rolloff):
    # impulse response at 2:1 is the phase-0 kernel built with the same options
    kernel, width = resample_kernel(16000, 8000, lowpass_filter_width=filter_width, rolloff=rolloff)
    assert width == math.ceil(filter_width * 2 / rolloff)
    assert kernel[0, width] == pytest.approx(rolloff / 2, rel=1e-6)  # centre: base / orig
    x = np.zeros(400, np.float32)
    x[200] = 1.0
    y = np.array(
        resample(
            x, orig_freq=16000, new_freq=8000, lowpass_filter_width=filter_width, rolloff=rolloff
        )
    )
    taps = [kernel[0, 200 + width - 2 * j] for j in range(100, 101 + width // 2)]
    np.testing.assert_allclose(y[100 : 101 + width // 2], taps, atol=1e-7)


def test_lower_rolloff_moves_the_cutoff_down():
    # 16 kHz -> 8 kHz: cutoff 0.99 * 4 kHz by default, 0.5 * 4 kHz with rolloff 0.5
    tone = np.sin(2 * np.pi * 3000 * np.arange(16000) / 16000).astype(np.float32)
    default = np.array(resample(tone, orig_freq=16000, new_freq=8000))
    narrow = np.array(resample(tone, orig_freq=16000, new_freq=8000, rolloff=0.5))
    assert np.abs(_interior(default)).max() > 0.9
    assert np.abs(_interior(narrow)).max() < 0.05


def test_same_rate_is_the_identity():
    x = np.random.default_rng(0).standard_normal(1234).astype(np.float32)
    np.testing.assert_array_equal(np.array(resample(x, orig_freq=16000, new_freq=16000)), x)


def test_accepts_single_channel_2d_and_mlx_arrays():
    x = np.random.default_rng(1).standard_normal(3000).astype(np.float32)
    ref = np.array(resample(x, orig_freq=22050, new_freq=16000))
    np.testing.assert_array_equal(np.array(resample(x[None], orig_freq=22050, new_freq=16000)), ref)
    np.testing.assert_array_equal(
        np.array(resample(mx.array(x), orig_freq=22050, new_freq=16000)), ref
    )


@pytest.mark.parametrize(("orig", "new"), [(0, 16000), (16000, 0), (-22050, 16000)])
def test_rejects_non_positive_rates(orig, new):
    with pytest.raises(ValueError, match="positive"):
        resample(np.zeros(100, np.float32), orig_freq=orig, new_freq=new)


def test_rejects_non_finite_and_multichannel_input():
    with pytest.raises(ValueError, match="NaN or infinite"):
        resample(np.array([0.0, np.nan, 0.0], np.float32), orig_freq=2, new_freq=1)
    with pytest.raises(ValueError, match=r"shape \(N,\) or \(1, N\)"):
        resample(np.zeros((2, 100), np.float32), orig_freq=2, new_freq=1)
