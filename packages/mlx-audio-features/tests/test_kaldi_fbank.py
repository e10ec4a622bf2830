"""Kaldi log-mel filterbank features (``kaldi_fbank``), checked without torch."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest

from mlx_audio_features import kaldi_fbank

LOG_FLOAT32_EPS = -15.942385152878742  # log(2 ** -23)


def _noise(n, seed=0, scale=0.1):
    return (scale * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def _hand_banks(num_bins, n_fft, sr, low, high):
    """Kaldi's triangular banks, written out loop by loop from the Kaldi docs."""
    if high <= 0:
        high += sr / 2

    def mel(f):
        return 1127.0 * math.log(1.0 + f / 700.0)

    delta = (mel(high) - mel(low)) / (num_bins + 1)
    banks = np.zeros((num_bins, n_fft // 2 + 1))
    for b in range(num_bins):
        left = mel(low) + b * delta
        centre, right = left + delta, left + 2 * delta
        for k in range(n_fft // 2):  # the Nyquist bin stays zero
            m = mel(k * sr / n_fft)
            if left < m <= centre:
                banks[b, k] = (m - left) / (centre - left)
            elif centre < m < right:
                banks[b, k] = (right - m) / (right - centre)
    return banks


def _hand_fbank(
    frames,
    *,
    window,
    n_fft,
    banks,
    preemph=0.97,
    remove_dc=True,
    power=2.0,
    log=True,
):
    """Kaldi's per-frame pipeline, one frame at a time, in float64."""
    out = []
    for frame in np.asarray(frames, dtype=np.float64):
        x = frame.copy()
        if remove_dc:
            x = x - x.mean()
        y = x.copy()
        y[1:] = x[1:] - preemph * x[:-1]
        y[0] = x[0] - preemph * x[0]
        spectrum = np.abs(np.fft.rfft(y * window, n=n_fft)) ** power
        energies = banks @ spectrum
        out.append(np.log(np.maximum(energies, np.finfo(np.float32).eps)) if log else energies)
    return np.array(out)


def _povey(n):
    return np.array([(0.5 - 0.5 * math.cos(2 * math.pi * i / (n - 1))) ** 0.85 for i in range(n)])


def _snip_frames(x, size=400, shift=160):
    count = 1 + (len(x) - size) // shift
    return np.stack([x[i * shift : i * shift + size] for i in range(count)])


@pytest.fixture(scope="module")
def speechlike():
    """Noise plus two tones, with a silent gap: 1.2 s at 16 kHz."""
    rng = np.random.default_rng(7)
    t = np.arange(19200) / 16000.0
    x = 0.05 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 440 * t)
    x += 0.1 * np.sin(2 * np.pi * 3100 * t + 0.3)
    x[8000:11000] = 0.0
    return x.astype(np.float32)


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("n", [400, 559, 560, 16000, 16001, 19200])
def test_frame_count_snip_edges(n):
    feats = kaldi_fbank(_noise(n))
    assert feats.dtype == mx.float32
    assert feats.shape == (1 + (n - 400) // 160, 80)


@pytest.mark.parametrize("n", [400, 479, 480, 555, 16000, 16079, 16080])
def test_frame_count_without_snip_edges(n):
    assert kaldi_fbank(_noise(n), snip_edges=False).shape == ((n + 80) // 160, 80)


# --------------------------------------------------------------------------- hand values


def test_silence_is_log_float32_eps():
    feats = np.array(kaldi_fbank(np.zeros(16000, np.float32)))
    assert feats.shape == (98, 80)
    np.testing.assert_array_equal(feats, np.float32(LOG_FLOAT32_EPS))
    assert float(feats[0, 0]) == pytest.approx(-15.942385, abs=1e-6)


def test_dc_offset_is_removed():
    dc = np.full(4000, 0.5, np.float32)
    np.testing.assert_array_equal(np.array(kaldi_fbank(dc)), np.float32(LOG_FLOAT32_EPS))
    # without DC removal, pre-emphasis leaves 0.015 per sample whose window leaks into
    # the lowest mel bin
    kept = np.array(kaldi_fbank(dc, remove_dc_offset=False))
    assert np.all(kept[:, 0] > LOG_FLOAT32_EPS + 1.0)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 2500.0, 5000.0, 7000.0])
def test_tone_peaks_in_the_bank_centred_nearest_to_it(freq):
    t = np.arange(16000) / 16000.0
    feats = np.array(kaldi_fbank((0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)))
    # centres: mel(20) + (i + 1) * (mel(8000) - mel(20)) / 81, back to Hz
    mel_lo, mel_hi = 1127 * math.log(1 + 20 / 700), 1127 * math.log(1 + 8000 / 700)
    centres = 700 * (np.exp((mel_lo + np.arange(1, 81) * (mel_hi - mel_lo) / 81) / 1127) - 1)
    expected = int(np.argmin(np.abs(centres - freq)))
    np.testing.assert_array_equal(feats.argmax(axis=1), expected)


def test_scaling_input_by_two_adds_log_four():
    x = _noise(8000, seed=1)
    base = np.array(kaldi_fbank(x))
    assert base.min() > LOG_FLOAT32_EPS + 1  # nothing floored
    np.testing.assert_allclose(np.array(kaldi_fbank(2 * x)) - base, math.log(4), atol=2e-5)
    # magnitude spectrum: a factor two adds log 2
    mag = np.array(kaldi_fbank(x, use_power=False))
    np.testing.assert_allclose(
        np.array(kaldi_fbank(2 * x, use_power=False)) - mag, math.log(2), atol=2e-5
    )


def test_matches_hand_computation(speechlike):
    feats = np.array(kaldi_fbank(speechlike))
    expected = _hand_fbank(
        _snip_frames(speechlike),
        window=_povey(400),
        n_fft=512,
        banks=_hand_banks(80, 512, 16000.0, 20.0, 0.0),
    )
    assert feats.shape == expected.shape == (118, 80)
    # frames inside the silent gap are floored
    np.testing.assert_array_equal(feats[52:66], np.float32(LOG_FLOAT32_EPS))
    np.testing.assert_allclose(feats, expected, rtol=0, atol=1e-4)


def test_matches_hand_computation_without_snip_edges(speechlike):
    x = speechlike[:1000]
    feats = np.array(kaldi_fbank(x, snip_edges=False))
    assert feats.shape == (6, 80)
    # frames start at t * 160 - 120; outside the signal it is mirrored, edge sample
    # included: x[119], ..., x[0], x[0], x[1], ... and ..., x[999], x[999], x[998], ...
    first = np.concatenate([x[119::-1], x[:280]])
    last = np.concatenate([x[680:1000], x[999:919:-1]])
    middle = x[2 * 160 - 120 : 2 * 160 + 280]
    expected = _hand_fbank(
        np.stack([first, middle, last]),
        window=_povey(400),
        n_fft=512,
        banks=_hand_banks(80, 512, 16000.0, 20.0, 0.0),
    )
    np.testing.assert_allclose(feats[[0, 2, 5]], expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    "options",
    [
        dict(window_type="hamming"),
        dict(window_type="rectangular", preemphasis_coefficient=0.0),
        dict(window_type="hanning", remove_dc_offset=False),
        dict(window_type="blackman", round_to_power_of_two=False),
        dict(num_mel_bins=40, low_freq=100.0, high_freq=-400.0),
        dict(use_power=False),
    ],
)
def test_options_match_hand_computation(speechlike, options):
    x = speechlike[:6400]
    feats = np.array(kaldi_fbank(x, **options))
    n = np.arange(400)
    windows = {
        "povey": _povey(400),
        "hamming": 0.54 - 0.46 * np.cos(2 * np.pi * n / 399),
        "hanning": 0.5 - 0.5 * np.cos(2 * np.pi * n / 399),
        "rectangular": np.ones(400),
        "blackman": 0.42 - 0.5 * np.cos(2 * np.pi * n / 399) + 0.08 * np.cos(4 * np.pi * n / 399),
    }
    n_fft = 512 if options.get("round_to_power_of_two", True) else 400
    banks = _hand_banks(
        options.get("num_mel_bins", 80),
        n_fft,
        16000.0,
        options.get("low_freq", 20.0),
        options.get("high_freq", 0.0),
    )
    expected = _hand_fbank(
        _snip_frames(x),
        window=windows[options.get("window_type", "povey")],
        n_fft=n_fft,
        banks=banks,
        preemph=options.get("preemphasis_coefficient", 0.97),
        remove_dc=options.get("remove_dc_offset", True),
        power=2.0 if options.get("use_power", True) else 1.0,
    )
    np.testing.assert_allclose(feats, expected, rtol=0, atol=1e-4)


def test_8khz_framing_and_banks_match_hand_computation(speechlike):
    # 25 ms / 10 ms at 8 kHz: 200-sample frames every 80 samples, 256-point FFT
    x = speechlike[::2][:4000]
    feats = np.array(kaldi_fbank(x, sample_frequency=8000.0, num_mel_bins=23))
    assert feats.shape == (1 + (4000 - 200) // 80, 23)
    expected = _hand_fbank(
        _snip_frames(x, 200, 80),
        window=_povey(200),
        n_fft=256,
        banks=_hand_banks(23, 256, 8000.0, 20.0, 0.0),
    )
    np.testing.assert_allclose(feats, expected, rtol=0, atol=1e-4)


def test_linear_energies_without_log(speechlike):
    x = speechlike[:4000]
    energies = np.array(kaldi_fbank(x, use_log_fbank=False))
    expected = _hand_fbank(
        _snip_frames(x),
        window=_povey(400),
        n_fft=512,
        banks=_hand_banks(80, 512, 16000.0, 20.0, 0.0),
        log=False,
    )
    np.testing.assert_allclose(energies, expected, rtol=1e-5, atol=1e-9)
    logged = np.array(kaldi_fbank(x))
    np.testing.assert_allclose(np.log(energies), logged, rtol=0, atol=1e-5)
    # no floor: silence gives exact zeros
    np.testing.assert_array_equal(
        np.array(kaldi_fbank(np.zeros(800, np.float32), use_log_fbank=False)), 0.0
    )


# --------------------------------------------------------------------------- dither


def test_dither_adds_fresh_noise_and_zero_dither_is_deterministic():
    silence = np.zeros(4000, np.float32)
    a = np.array(kaldi_fbank(silence, dither=1.0))
    b = np.array(kaldi_fbank(silence, dither=1.0))
    assert np.all(a > LOG_FLOAT32_EPS + 5)  # unit-variance noise is far above the floor
    assert not np.array_equal(a, b)
    x = _noise(4000, seed=3)
    np.testing.assert_array_equal(np.array(kaldi_fbank(x)), np.array(kaldi_fbank(x)))


# --------------------------------------------------------------------------- inputs


def test_accepts_single_channel_2d_lists_and_mlx_arrays():
    x = _noise(2000, seed=4)
    ref = np.array(kaldi_fbank(x))
    np.testing.assert_array_equal(np.array(kaldi_fbank(x[None, :])), ref)
    np.testing.assert_array_equal(np.array(kaldi_fbank(x.tolist())), ref)
    np.testing.assert_array_equal(np.array(kaldi_fbank(mx.array(x))), ref)
    np.testing.assert_array_equal(np.array(kaldi_fbank(x.astype(np.float64))), ref)


def test_rejects_input_shorter_than_a_frame():
    with pytest.raises(ValueError, match="shorter than one frame"):
        kaldi_fbank(np.zeros(399, np.float32))
    with pytest.raises(ValueError, match="shorter than one frame"):
        kaldi_fbank(np.zeros(399, np.float32), snip_edges=False)


def test_rejects_multichannel_input():
    with pytest.raises(ValueError, match=r"shape \(N,\) or \(1, N\)"):
        kaldi_fbank(np.zeros((2, 16000), np.float32))
    with pytest.raises(ValueError, match=r"shape \(N,\) or \(1, N\)"):
        kaldi_fbank(np.zeros((16000, 1), np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_rejects_non_finite_samples(bad):
    x = _noise(1000)
    x[500] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        kaldi_fbank(x)


def test_rejects_unknown_window_type():
    with pytest.raises(ValueError, match="unknown window_type"):
        kaldi_fbank(_noise(1000), window_type="kaiser")
