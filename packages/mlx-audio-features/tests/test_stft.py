"""Framing (MLX strided views) and the one-sided STFT."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from mlx_audio_features import frame_signal, stft


def _noise(n, seed=0):
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32)


# --------------------------------------------------------------------------- frame_signal


@pytest.mark.parametrize(
    ("n", "length", "hop"),
    [(1000, 400, 160), (400, 400, 160), (559, 400, 160), (37, 5, 7), (12, 3, 1), (1024, 1024, 1)],
)
def test_frame_signal_count_and_contents(n, length, hop):
    x = np.arange(n, dtype=np.float32)
    frames = np.array(frame_signal(mx.array(x), frame_length=length, hop_length=hop))
    expected_count = 1 + (n - length) // hop
    assert frames.shape == (expected_count, length)
    for i in range(expected_count):
        np.testing.assert_array_equal(frames[i], x[i * hop : i * hop + length])


def test_frame_signal_hand_example():
    frames = frame_signal(mx.arange(10, dtype=mx.float32), frame_length=4, hop_length=3)
    np.testing.assert_array_equal(np.array(frames), [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]])


def test_frame_signal_shorter_than_one_frame_gives_no_frames():
    frames = frame_signal(mx.arange(5, dtype=mx.float32), frame_length=6, hop_length=2)
    assert frames.shape == (0, 6)


def test_frame_signal_of_offset_and_computed_arrays():
    x = mx.arange(20, dtype=mx.float32)
    np.testing.assert_array_equal(
        np.array(frame_signal(x[3:], frame_length=4, hop_length=5)),
        [[3, 4, 5, 6], [8, 9, 10, 11], [13, 14, 15, 16]],
    )
    # a transposed-then-flattened array is a copy, framed in its logical order
    y = x.reshape(4, 5).T.reshape(-1)
    np.testing.assert_array_equal(
        np.array(frame_signal(y, frame_length=4, hop_length=4)),
        np.array(y).reshape(5, 4),
    )


def test_frame_signal_of_strided_view():
    x = mx.arange(20, dtype=mx.float32)
    frames = frame_signal(x[::2], frame_length=4, hop_length=2)
    np.testing.assert_array_equal(
        np.array(frames), [[0, 2, 4, 6], [4, 6, 8, 10], [8, 10, 12, 14], [12, 14, 16, 18]]
    )


@pytest.mark.parametrize(("length", "hop"), [(0, 1), (4, 0), (-1, 2)])
def test_frame_signal_rejects_bad_sizes(length, hop):
    with pytest.raises(ValueError, match=">= 1"):
        frame_signal(mx.zeros(10), frame_length=length, hop_length=hop)


# --------------------------------------------------------------------------- stft


def test_stft_equals_rfft_of_windowed_frames():
    x = _noise(3000)
    n_fft, hop = 512, 128
    spec = stft(x, n_fft=n_fft, hop_length=hop)
    assert spec.dtype == mx.complex64
    spec = np.array(spec)
    count = 1 + (3000 - n_fft) // hop
    assert spec.shape == (count, n_fft // 2 + 1)
    window = np.hanning(n_fft + 1)[:-1]  # periodic Hann
    x64 = x.astype(np.float64)
    for i in range(count):
        expected = np.fft.rfft(x64[i * hop : i * hop + n_fft] * window)
        np.testing.assert_allclose(spec[i], expected, rtol=0, atol=2e-5 * np.abs(expected).max())


def test_stft_of_sine_at_an_exact_bin():
    # periodic Hann = 0.5 - 0.25 e^{+} - 0.25 e^{-}: a sine of amplitude A at bin k has
    # |X[k]| = A N / 4 and |X[k +- 1]| = A N / 8, and nothing elsewhere
    n_fft, k, amp = 256, 10, 0.8
    n = np.arange(4 * n_fft)
    x = (amp * np.sin(2 * np.pi * k * n / n_fft)).astype(np.float32)
    mag = np.abs(np.array(stft(x, n_fft=n_fft, hop_length=n_fft)))
    assert mag.shape == (4, 129)
    np.testing.assert_array_equal(mag.argmax(axis=1), k)
    np.testing.assert_allclose(mag[:, k], amp * n_fft / 4, rtol=1e-5)
    np.testing.assert_allclose(mag[:, [k - 1, k + 1]], amp * n_fft / 8, rtol=1e-5)
    others = np.delete(mag, [k - 1, k, k + 1], axis=1)
    assert others.max() < 1e-4


def test_stft_short_window_is_centred_in_the_fft():
    x = _noise(2000, seed=1)
    n_fft, win, hop = 512, 400, 160
    spec = np.array(stft(x, n_fft=n_fft, hop_length=hop, win_length=win))
    window = np.zeros(n_fft)
    window[56:456] = np.hanning(win + 1)[:-1]  # left pad (512 - 400) // 2 = 56
    frame = x[hop : hop + n_fft].astype(np.float64)
    expected = np.fft.rfft(frame * window)
    np.testing.assert_allclose(spec[1], expected, rtol=0, atol=2e-5 * np.abs(expected).max())


def test_stft_custom_window():
    x = _noise(1024, seed=2)
    window = np.hamming(256)
    spec = np.array(stft(x, n_fft=256, hop_length=200, window=window))
    expected = np.fft.rfft(x[200:456].astype(np.float64) * window)
    np.testing.assert_allclose(spec[1], expected, rtol=0, atol=2e-5 * np.abs(expected).max())


def test_stft_center_matches_librosa():
    librosa = pytest.importorskip("librosa")
    x = _noise(4000, seed=3)
    spec = np.array(stft(x, n_fft=512, hop_length=128, center=True))
    expected = librosa.stft(
        x.astype(np.float64),
        n_fft=512,
        hop_length=128,
        window="hann",
        center=True,
        pad_mode="reflect",
    ).T
    assert spec.shape == expected.shape == (1 + 4000 // 128, 257)
    np.testing.assert_allclose(spec, expected, rtol=0, atol=2e-5 * np.abs(expected).max())


def test_stft_center_constant_padding():
    x = _noise(1000, seed=4)
    spec = np.array(stft(x, n_fft=256, hop_length=100, center=True, pad_mode="constant"))
    padded = np.concatenate([np.zeros(128), x.astype(np.float64), np.zeros(128)])
    expected = np.fft.rfft(padded[:256] * np.hanning(257)[:-1])
    np.testing.assert_allclose(spec[0], expected, rtol=0, atol=2e-5 * np.abs(expected).max())


def test_stft_accepts_single_channel_2d_and_lists():
    x = _noise(700, seed=5)
    ref = np.array(stft(x, n_fft=256, hop_length=64))
    np.testing.assert_array_equal(np.array(stft(x[None], n_fft=256, hop_length=64)), ref)
    np.testing.assert_array_equal(np.array(stft(x.tolist(), n_fft=256, hop_length=64)), ref)
    np.testing.assert_array_equal(np.array(stft(mx.array(x), n_fft=256, hop_length=64)), ref)


def test_stft_shorter_than_n_fft_gives_no_frames():
    assert stft(np.zeros(100, np.float32), n_fft=256, hop_length=64).shape == (0, 129)


def test_stft_rejects_bad_windows():
    x = np.zeros(1000, np.float32)
    with pytest.raises(ValueError, match="window must have shape"):
        stft(x, n_fft=256, hop_length=64, window=np.ones(200))
    with pytest.raises(ValueError, match="window must have shape"):
        stft(x, n_fft=256, hop_length=64, win_length=300)
    with pytest.raises(ValueError, match=r"shape \(N,\) or \(1, N\)"):
        stft(np.zeros((2, 1000), np.float32), n_fft=256, hop_length=64)
