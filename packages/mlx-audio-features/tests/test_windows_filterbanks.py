"""Analysis windows, Kaldi mel banks and Slaney (librosa) mel filters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlx_audio_features import hann_window, kaldi_mel_banks, mel_filters, povey_window
from mlx_audio_features.filterbanks import _slaney_hz_to_mel, _slaney_mel_to_hz, kaldi_mel_scale
from mlx_audio_features.kaldi import kaldi_window


def _librosa():
    return pytest.importorskip("librosa")


# --------------------------------------------------------------------------- windows


def test_periodic_hann_hand_values():
    # 0.5 - 0.5 cos(2 pi n / N), N = 4 and N = 8
    np.testing.assert_allclose(hann_window(4), [0.0, 0.5, 1.0, 0.5], atol=1e-15)
    expected8 = [0.0, 0.1464466094067262, 0.5, 0.8535533905932737, 1.0]
    np.testing.assert_allclose(hann_window(8)[:5], expected8, atol=1e-15)
    np.testing.assert_allclose(hann_window(8)[5:], expected8[1:4][::-1], atol=1e-15)


def test_symmetric_hann_hand_values():
    np.testing.assert_allclose(
        hann_window(5, periodic=False), [0.0, 0.5, 1.0, 0.5, 0.0], atol=1e-15
    )
    w = hann_window(4, periodic=False)  # 0.5 - 0.5 cos(2 pi n / 3)
    np.testing.assert_allclose(w, [0.0, 0.75, 0.75, 0.0], atol=1e-15)


@pytest.mark.parametrize("length", [2, 7, 400, 1024])
def test_hann_matches_numpy(length):
    # numpy's hanning is the symmetric window; the periodic one is hanning(N + 1)[:-1].
    np.testing.assert_allclose(hann_window(length, periodic=False), np.hanning(length), atol=1e-14)
    np.testing.assert_allclose(hann_window(length), np.hanning(length + 1)[:-1], atol=1e-14)


def test_hann_is_float64_and_length_one_is_one():
    assert hann_window(400).dtype == np.float64
    np.testing.assert_array_equal(hann_window(1), [1.0])
    np.testing.assert_array_equal(hann_window(1, periodic=False), [1.0])


@pytest.mark.parametrize("length", [0, -3])
def test_hann_rejects_non_positive_length(length):
    with pytest.raises(ValueError, match="window length"):
        hann_window(length)


def test_povey_hand_values():
    np.testing.assert_allclose(
        povey_window(5),
        [0.0, 0.5547847360339225, 1.0, 0.5547847360339225, 0.0],
        atol=1e-15,
    )
    w = povey_window(400)
    assert w.dtype == np.float64 and w.shape == (400,)
    # (0.5 - 0.5 cos(2 pi n / 399)) ** 0.85, evaluated with the math module
    for n in (0, 1, 100, 199, 200, 398, 399):
        expected = (0.5 - 0.5 * math.cos(2 * math.pi * n / 399)) ** 0.85
        assert w[n] == pytest.approx(expected, abs=1e-15), n
    assert w[1] == pytest.approx(0.0002651509774601967, rel=1e-12)
    assert w[100] == pytest.approx(0.5566406644983896, rel=1e-12)
    np.testing.assert_allclose(w, w[::-1], atol=1e-15)


def test_povey_is_symmetric_hann_to_the_085():
    np.testing.assert_allclose(povey_window(400), np.hanning(400) ** 0.85, atol=1e-14)


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("hamming", np.hamming),
        ("hanning", np.hanning),
        ("blackman", np.blackman),
        ("povey", lambda n: np.hanning(n) ** 0.85),
        ("rectangular", np.ones),
    ],
)
def test_kaldi_windows_match_numpy(name, reference):
    np.testing.assert_allclose(kaldi_window(name, 400), reference(400), atol=1e-14)


def test_kaldi_window_unknown_type():
    with pytest.raises(ValueError, match="unknown window_type"):
        kaldi_window("triangle", 400)


# --------------------------------------------------------------------------- mel scales


def test_kaldi_mel_scale_hand_values():
    np.testing.assert_allclose(
        kaldi_mel_scale(np.array([0.0, 700.0, 2100.0])),
        [0.0, 1127.0 * math.log(2.0), 1127.0 * math.log(4.0)],
        rtol=1e-14,
    )
    assert kaldi_mel_scale(np.array([700.0]))[0] == pytest.approx(781.1768724910584)


def test_slaney_mel_scale_hand_values():
    # linear below 1 kHz (200/3 Hz per mel), 27 mels per factor 6.4 above
    hz = np.array([0.0, 500.0, 1000.0, 6400.0, 40960.0])
    mel = np.array([0.0, 7.5, 15.0, 42.0, 69.0])
    np.testing.assert_allclose(_slaney_hz_to_mel(hz), mel, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_slaney_mel_to_hz(mel), hz, rtol=1e-12, atol=1e-9)


def test_slaney_mel_scale_matches_librosa():
    librosa = _librosa()
    hz = np.linspace(0.0, 12000.0, 97)
    np.testing.assert_allclose(_slaney_hz_to_mel(hz), librosa.hz_to_mel(hz), rtol=1e-12)
    mel = np.linspace(0.0, 60.0, 61)
    np.testing.assert_allclose(_slaney_mel_to_hz(mel), librosa.mel_to_hz(mel), rtol=1e-12)


# --------------------------------------------------------------------------- Slaney mel filters


@pytest.mark.parametrize(
    "config",
    [
        dict(sr=22050, n_fft=1024, n_mels=80, fmin=0.0, fmax=None),
        dict(sr=16000, n_fft=512, n_mels=80, fmin=0.0, fmax=8000.0),
        dict(sr=24000, n_fft=2048, n_mels=100, fmin=50.0, fmax=11000.0),
        dict(sr=16000, n_fft=400, n_mels=40, fmin=20.0, fmax=7600.0),
    ],
)
def test_mel_filters_match_librosa(config):
    librosa = _librosa()
    ours = mel_filters(**config)
    theirs = librosa.filters.mel(**config)
    assert ours.dtype == np.float32
    assert ours.shape == theirs.shape == (config["n_mels"], config["n_fft"] // 2 + 1)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


def test_mel_filters_match_librosa_for_odd_n_fft():
    librosa = _librosa()
    config = dict(sr=22050, n_fft=1023, n_mels=80, fmin=0.0, fmax=None)
    np.testing.assert_allclose(
        mel_filters(**config), librosa.filters.mel(**config), rtol=0, atol=1e-6
    )


def test_mel_filters_slaney_area_normalisation():
    # Slaney normalisation makes each triangle's area (in Hz) equal to one; with 2.7 Hz
    # bins, a Riemann sum over the bins reproduces that closely for the wide triangles.
    sr, n_fft = 22050, 8192
    filters = mel_filters(sr=sr, n_fft=n_fft, n_mels=40, fmin=0.0, fmax=None)
    area = filters.astype(np.float64).sum(axis=1) * (sr / n_fft)
    np.testing.assert_allclose(area[5:], 1.0, atol=0.01)
    # each triangle peaks at 2 / (right edge - left edge): centre frequency hand-computed
    # from the Slaney scale for filter 30 of 40 (0 - 11025 Hz)
    top = _slaney_hz_to_mel(np.array([sr / 2]))[0]
    edges = _slaney_mel_to_hz(np.linspace(0.0, top, 42))
    peak = 2.0 / (edges[32] - edges[30])
    # the nearest bin is at most half a bin off the apex: the slope costs at most that much
    slack = 0.5 * (sr / n_fft) / min(edges[31] - edges[30], edges[32] - edges[31])
    assert peak * (1.0 - slack) - 1e-9 <= filters[30].max() <= peak * (1.0 + 1e-6)
    assert abs(np.argmax(filters[30]) * sr / n_fft - edges[31]) <= sr / n_fft


# --------------------------------------------------------------------------- Kaldi mel banks


def _kaldi_edges(num_bins=80, low=20.0, high=8000.0):
    """Left edges, centres, right edges in Hz, from 1127 ln(1 + f / 700) by hand."""
    mel_low = 1127.0 * math.log(1.0 + low / 700.0)
    mel_high = 1127.0 * math.log(1.0 + high / 700.0)
    delta = (mel_high - mel_low) / (num_bins + 1)

    def to_hz(m):
        return 700.0 * (math.exp(m / 1127.0) - 1.0)

    return (
        np.array([to_hz(mel_low + i * delta) for i in range(num_bins)]),
        np.array([to_hz(mel_low + (i + 1) * delta) for i in range(num_bins)]),
        np.array([to_hz(mel_low + (i + 2) * delta) for i in range(num_bins)]),
    )


def test_kaldi_mel_banks_shape_and_nyquist_column():
    banks = kaldi_mel_banks()
    assert banks.shape == (80, 257) and banks.dtype == np.float64
    np.testing.assert_array_equal(banks[:, 256], 0.0)
    assert banks.min() >= 0.0 and banks.max() <= 1.0


def test_kaldi_mel_banks_support_lies_inside_hand_computed_edges():
    banks = kaldi_mel_banks()
    freqs = np.arange(257) * 16000.0 / 512
    left, _, right = _kaldi_edges()
    for i in range(80):
        inside = (freqs > left[i] + 1e-6) & (freqs < right[i] - 1e-6)
        inside[256] = False
        assert np.all(banks[i, inside] > 0.0), i
        assert np.all(banks[i, ~inside] == 0.0), i


def test_kaldi_mel_banks_peak_at_hand_computed_centres():
    banks = kaldi_mel_banks()
    bin_hz = 16000.0 / 512
    _, centre, _ = _kaldi_edges()
    freqs = np.arange(257) * bin_hz
    mel_bins = 1127.0 * np.log(1.0 + freqs / 700.0)
    for i in range(80):
        nearest = int(np.argmin(np.abs(mel_bins - 1127.0 * math.log(1.0 + centre[i] / 700.0))))
        assert int(np.argmax(banks[i])) == nearest, i
        if centre[i] > 1500.0:  # triangles at least two bins wide on each side
            assert banks[i].max() > 0.75, i
    # 1 kHz (bin 32) sits between the centres of filters 26 and 27
    assert centre[26] < 1000.0 < centre[27]
    col = banks[:, 32]
    assert set(np.flatnonzero(col)) == {26, 27}
    # weight of filter 27 at 1 kHz: (mel(1000) - left) / (centre - left) in mel
    mel = 1127.0 * math.log(1.0 + 1000.0 / 700.0)
    m_left = 1127.0 * math.log(1.0 + _kaldi_edges()[0][27] / 700.0)
    m_centre = 1127.0 * math.log(1.0 + centre[27] / 700.0)
    assert col[27] == pytest.approx((mel - m_left) / (m_centre - m_left), rel=1e-9)


def test_kaldi_mel_banks_partition_of_unity_between_first_and_last_centre():
    # triangles linear in mel with shared edges sum to one between the outer centres
    for sr, n_fft, num_bins in [(16000.0, 512, 80), (8000.0, 256, 23), (16000.0, 1024, 40)]:
        banks = kaldi_mel_banks(num_bins=num_bins, n_fft=n_fft, sample_frequency=sr)
        _, centre, _ = _kaldi_edges(num_bins, 20.0, sr / 2)
        freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
        interior = (freqs >= centre[0]) & (freqs <= centre[-1])
        assert interior.sum() > n_fft // 4
        np.testing.assert_allclose(banks[:, interior].sum(axis=0), 1.0, atol=1e-12)
        outside = (freqs < centre[0]) | (freqs > centre[-1])
        assert np.all(banks[:, outside].sum(axis=0) < 1.0)


def test_kaldi_mel_banks_low_edge_20hz():
    banks = kaldi_mel_banks(n_fft=4096)  # 3.90625 Hz bins: bins 0..5 lie below 20 Hz
    freqs = np.arange(2049) * 16000.0 / 4096
    np.testing.assert_array_equal(banks[:, freqs <= 20.0], 0.0)
    assert banks[0, 6] > 0.0  # 23.4 Hz


def test_kaldi_mel_banks_high_freq_offset_from_nyquist():
    banks = kaldi_mel_banks(high_freq=-400.0)  # top edge 7600 Hz
    freqs = np.arange(257) * 16000.0 / 512
    np.testing.assert_array_equal(banks[:, freqs >= 7600.0], 0.0)
    assert banks[-1, freqs < 7600.0][-1] > 0.0
    same = kaldi_mel_banks(high_freq=7600.0)
    np.testing.assert_allclose(banks, same, atol=1e-12)


@pytest.mark.parametrize(
    ("low", "high"), [(9000.0, 0.0), (20.0, 9000.0), (4000.0, 3000.0), (-1.0, 0.0)]
)
def test_kaldi_mel_banks_rejects_bad_ranges(low, high):
    with pytest.raises(ValueError, match="bad mel range"):
        kaldi_mel_banks(low_freq=low, high_freq=high)
