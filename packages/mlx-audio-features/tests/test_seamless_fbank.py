"""SeamlessM4T / W2V-BERT 2.0 features (``seamless_fbank``), checked without torch."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest

from mlx_audio_features import SeamlessFeatures, kaldi_fbank, seamless_fbank


def _samples_for(frames):
    """Samples giving exactly ``frames`` 25 ms / 10 ms frames at 16 kHz."""
    return 400 + 160 * (frames - 1)


def _signal(n, seed=0):
    """Noise and a tone with a silent stretch, so every bin varies over time."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000.0
    x = 0.05 * rng.standard_normal(n) + 0.2 * np.sin(2 * np.pi * 700 * t)
    x[n // 3 : n // 3 + 1600] = 0.0
    return x.astype(np.float32)


def _hand_features(x, stride=2, padding_value=1.0):
    """The extractor written out: 2**15 scaling, Kaldi frames, normalisation, stacking."""
    x = x.astype(np.float64) * 32768.0
    count = 1 + (len(x) - 400) // 160
    n = np.arange(400)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * n / 399)) ** 0.85

    def mel(f):
        return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    edges = np.linspace(mel(20.0), mel(8000.0), 82)
    fft_mel = mel(np.arange(257) * 16000.0 / 512)
    banks = np.zeros((80, 257))
    for b in range(80):
        up = (fft_mel - edges[b]) / (edges[b + 1] - edges[b])
        down = (edges[b + 2] - fft_mel) / (edges[b + 2] - edges[b + 1])
        banks[b] = np.clip(np.minimum(up, down), 0.0, None)
    banks[:, 256] = 0.0
    log_mel = np.empty((count, 80))
    for i in range(count):
        frame = x[i * 160 : i * 160 + 400]
        frame = frame - frame.mean()
        emphasised = np.concatenate([[0.03 * frame[0]], frame[1:] - 0.97 * frame[:-1]])
        power = np.abs(np.fft.rfft(emphasised * window, 512)) ** 2
        log_mel[i] = np.log(np.maximum(banks @ power, 1.1920928955078125e-07))
    mean = log_mel.mean(axis=0)
    var = ((log_mel - mean) ** 2).sum(axis=0) / (count - 1)
    normed = (log_mel - mean) / np.sqrt(var + 1e-7)
    pad = (-count) % stride
    normed = np.concatenate([normed, np.full((pad, 80), padding_value)])
    mask = np.concatenate([np.ones(count, np.int32), np.zeros(pad, np.int32)])
    return normed.reshape(-1, 80 * stride), mask[stride - 1 :: stride]


# --------------------------------------------------------------------------- layout


def test_even_frame_count_is_stacked_in_pairs_with_a_full_mask():
    out = seamless_fbank(_signal(_samples_for(10)))
    assert isinstance(out, SeamlessFeatures)
    assert out.input_features.dtype == mx.float32
    assert out.input_features.shape == (5, 160)
    assert out.attention_mask.dtype == mx.int32
    np.testing.assert_array_equal(np.array(out.attention_mask), [1, 1, 1, 1, 1])


def test_odd_frame_count_pads_with_ones_and_masks_the_last_pair():
    x = _signal(_samples_for(11))
    feats, mask = seamless_fbank(x)
    feats, mask = np.array(feats), np.array(mask)
    assert feats.shape == (6, 160)
    np.testing.assert_array_equal(mask, [1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(feats[-1, 80:], 1.0)
    # the real frame in the last pair is frame 10 of the unpadded features
    unstacked = feats.reshape(12, 80)
    assert not np.allclose(unstacked[10], 1.0)
    # and the same signal cut to 10 frames is not padded at all
    _, mask10 = seamless_fbank(x[: _samples_for(10)])
    np.testing.assert_array_equal(np.array(mask10), [1] * 5)


def test_each_bin_is_normalised_over_the_real_frames():
    frames = 41
    feats, _ = seamless_fbank(_signal(_samples_for(frames), seed=1))
    real = np.array(feats).reshape(-1, 80)[:frames].astype(np.float64)
    np.testing.assert_allclose(real.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(real.std(axis=0, ddof=1), 1.0, atol=1e-4)
    # ddof=1, not 0: the population std is sqrt(40 / 41) of it
    np.testing.assert_allclose(real.std(axis=0), math.sqrt(40 / 41), atol=1e-4)


@pytest.mark.parametrize("frames", [2, 3, 30, 57])
def test_matches_hand_computation(frames):
    x = _signal(_samples_for(frames) + 77, seed=frames)
    feats, mask = seamless_fbank(x)
    expected, expected_mask = _hand_features(x)
    np.testing.assert_array_equal(np.array(mask), expected_mask)
    np.testing.assert_allclose(np.array(feats), expected, rtol=0, atol=1e-4)


def test_stride_and_padding_value_options():
    x = _signal(_samples_for(7), seed=3)
    feats, mask = seamless_fbank(x, stride=3, padding_value=-7.0)
    expected, expected_mask = _hand_features(x, stride=3, padding_value=-7.0)
    assert feats.shape == (3, 240)
    np.testing.assert_array_equal(np.array(mask), [1, 1, 0])
    np.testing.assert_array_equal(expected_mask, [1, 1, 0])
    np.testing.assert_array_equal(np.array(feats)[-1, 80:], -7.0)
    np.testing.assert_allclose(np.array(feats), expected, rtol=0, atol=1e-4)


def test_without_normalisation_it_is_kaldi_fbank_of_16_bit_samples():
    frames = 20
    x = _signal(_samples_for(frames), seed=4)
    feats, _ = seamless_fbank(x, normalize=False)
    raw = np.array(feats).reshape(frames, 80)
    np.testing.assert_allclose(raw, np.array(kaldi_fbank(x * 32768.0)), rtol=0, atol=1e-4)
    # 2**15 scaling adds log(2**30) = 20.794415 to every value that is not floored;
    # frames inside the silent stretch stay at the floor log(2**-23)
    plain = np.array(kaldi_fbank(x))
    loud = plain > -15.9
    assert 0.5 < loud.mean() < 0.9
    np.testing.assert_allclose((raw - plain)[loud], 20.79441541679836, atol=1e-4)
    np.testing.assert_allclose(raw[~loud], -15.942385152878742, atol=1e-6)


def test_silence_normalises_to_zero():
    # every frame sits at the floor: zero deviation from the mean, divided by sqrt(1e-7)
    feats, mask = seamless_fbank(np.zeros(_samples_for(8), np.float32))
    np.testing.assert_array_equal(np.array(feats), 0.0)
    np.testing.assert_array_equal(np.array(mask), [1, 1, 1, 1])


def test_accepts_single_channel_2d_and_mlx_arrays():
    x = _signal(_samples_for(9), seed=5)
    ref = np.array(seamless_fbank(x).input_features)
    np.testing.assert_array_equal(np.array(seamless_fbank(x[None]).input_features), ref)
    np.testing.assert_array_equal(np.array(seamless_fbank(mx.array(x)).input_features), ref)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_rejects_other_sampling_rates(rate):
    with pytest.raises(ValueError, match="16 kHz"):
        seamless_fbank(_signal(16000), sampling_rate=rate)


@pytest.mark.parametrize("n", [100, 400, 559])
def test_rejects_fewer_than_two_frames(n):
    with pytest.raises(ValueError, match="at least 2"):
        seamless_fbank(_signal(n))


def test_two_frames_is_enough():
    feats, mask = seamless_fbank(_signal(560))
    assert feats.shape == (1, 160)
    np.testing.assert_array_equal(np.array(mask), [1])
    # two frames normalise to +-1/sqrt(2) in every bin (ddof=1), up to the 1e-7 term
    np.testing.assert_allclose(np.abs(np.array(feats)), 1 / math.sqrt(2), atol=1e-3)


def test_rejects_non_finite_and_multichannel_input():
    x = _signal(2000)
    x[10] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        seamless_fbank(x)
    with pytest.raises(ValueError, match=r"shape \(N,\) or \(1, N\)"):
        seamless_fbank(np.zeros((2, 2000), np.float32))
