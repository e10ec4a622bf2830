"""Prompt audio loading (`indextts_mlx.audio`): the reference's cut and resampling, and
validation of bad prompts."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import soundfile as sf

from indextts_mlx.audio import (
    MIN_PROMPT_SECONDS,
    SpeakerAudio,
    file_digest,
    load_emotion_audio,
    load_speaker_audio,
)
from indextts_mlx.errors import AudioInputError


def tone(seconds: float, sr: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path, audio, sr, subtype="FLOAT"):
    sf.write(path, audio, sr, subtype=subtype)
    return path


def test_22k_float_file_is_loaded_sample_exact(tmp_path):
    audio = tone(2.0, 22050) + np.float32(0.01) * np.random.default_rng(0).standard_normal(
        44100
    ).astype(np.float32)
    got = load_speaker_audio(write(tmp_path / "a.wav", audio, 22050))
    assert isinstance(got, SpeakerAudio)
    assert got.audio_22k.dtype == np.float32 and got.audio_16k.dtype == np.float32
    np.testing.assert_array_equal(got.audio_22k, audio)
    assert got.audio_16k.shape == (math.ceil(44100 * 320 / 441),) == (32000,)
    assert got.seconds == pytest.approx(2.0)


def test_16k_is_the_band_limited_resample_of_22k(tmp_path):
    # A 440 Hz tone resampled to 16 kHz is the same tone at 16 kHz sample times
    # (away from the edges, where the sinc kernel sees the zero padding).
    got = load_speaker_audio(write(tmp_path / "a.wav", tone(1.0, 22050), 22050))
    expected = tone(1.0, 16000)
    assert got.audio_16k.shape == (16000,)
    np.testing.assert_allclose(got.audio_16k[200:-200], expected[200:-200], atol=2e-3)


def test_long_prompt_is_cut_to_15_seconds(tmp_path):
    audio = tone(16.0, 22050, freq=220.0)
    got = load_speaker_audio(write(tmp_path / "long.wav", audio, 22050))
    assert got.audio_22k.shape == (330750,)
    np.testing.assert_array_equal(got.audio_22k, audio[:330750])
    assert got.audio_16k.shape == (240000,)
    emo = load_emotion_audio(write(tmp_path / "long16.wav", tone(16.0, 16000), 16000))
    assert emo.shape == (240000,) and emo.dtype == np.float32


def test_stereo_is_mixed_down_to_the_channel_mean(tmp_path):
    left, right = tone(1.0, 22050, 300.0, 0.4), tone(1.0, 22050, 700.0, 0.2)
    path = write(tmp_path / "st.wav", np.stack([left, right], axis=1), 22050)
    got = load_speaker_audio(path)
    np.testing.assert_allclose(got.audio_22k, (left + right) / 2, atol=1e-7)


def test_emotion_audio_is_librosa_at_16k(tmp_path):
    audio = tone(1.0, 16000, 500.0)
    np.testing.assert_array_equal(
        load_emotion_audio(write(tmp_path / "e.wav", audio, 16000)), audio
    )
    # Another rate goes through librosa's resampler: still the same tone at 16 kHz.
    emo = load_emotion_audio(write(tmp_path / "e44.wav", tone(1.0, 44100, 500.0), 44100))
    assert emo.shape == (16000,)
    np.testing.assert_allclose(emo[200:-200], audio[200:-200], atol=2e-3)


def test_pcm16_at_other_rate_and_tilde_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write(tmp_path / "p.wav", tone(1.0, 24000, 440.0), 24000, subtype="PCM_16")
    got = load_speaker_audio("~/p.wav")
    assert got.audio_22k.shape == (22050,)
    np.testing.assert_allclose(got.audio_22k[200:-200], tone(1.0, 22050)[200:-200], atol=2e-3)


def test_flac_is_read(tmp_path):
    audio = tone(1.0, 22050)
    got = load_speaker_audio(write(tmp_path / "a.flac", audio, 22050, subtype="PCM_24"))
    np.testing.assert_allclose(got.audio_22k, audio, atol=2e-7)


def test_missing_file(tmp_path):
    with pytest.raises(AudioInputError, match=r"nope\.wav.*does not exist"):
        load_speaker_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioInputError, match="not a file"):
        load_emotion_audio(tmp_path)


def test_unreadable_file_names_the_path(tmp_path):
    bad = tmp_path / "garbage.wav"
    bad.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(AudioInputError, match=r"cannot read speaker audio file .*garbage\.wav"):
        load_speaker_audio(bad)
    with pytest.raises(AudioInputError, match=r"cannot read emotion audio file .*garbage\.wav"):
        load_emotion_audio(bad)


def test_empty_file(tmp_path):
    path = write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 22050)
    with pytest.raises(AudioInputError, match=r"empty\.wav.*(empty|cannot read)"):
        load_speaker_audio(path)


def test_too_short(tmp_path):
    assert MIN_PROMPT_SECONDS == 0.5
    path = write(tmp_path / "short.wav", tone(0.4, 22050), 22050)
    with pytest.raises(AudioInputError, match=r"short\.wav.*too short \(0\.400 s\)"):
        load_speaker_audio(path)
    with pytest.raises(AudioInputError, match="too short"):
        load_emotion_audio(path)
    # exactly the minimum is accepted
    ok = load_speaker_audio(write(tmp_path / "ok.wav", tone(0.5, 22050), 22050))
    assert ok.audio_22k.shape == (11025,)


def test_silent(tmp_path):
    path = write(tmp_path / "quiet.wav", np.full(22050, 5e-5, dtype=np.float32), 22050)
    with pytest.raises(AudioInputError, match=r"quiet\.wav.*silent \(peak 5\.00e-05"):
        load_speaker_audio(path)
    # Speech after the first 15 s does not count: the cut prompt is silent.
    late = np.zeros(22050 * 16, dtype=np.float32)
    late[-1000:] = 0.5
    with pytest.raises(AudioInputError, match="silent"):
        load_speaker_audio(write(tmp_path / "late.wav", late, 22050))


def test_non_finite(tmp_path):
    audio = tone(1.0, 22050)
    audio[100] = np.nan
    with pytest.raises(AudioInputError, match=r"nan\.wav.* invalid: .*not finite"):
        load_speaker_audio(write(tmp_path / "nan.wav", audio, 22050))


def test_file_digest_is_sha256_of_the_content(tmp_path):
    a = write(tmp_path / "a.wav", tone(1.0, 22050), 22050)
    b = tmp_path / "renamed.wav"
    b.write_bytes(a.read_bytes())
    expected = hashlib.sha256(a.read_bytes()).hexdigest()
    assert file_digest(a) == file_digest(str(b)) == expected
    write(b, tone(1.0, 22050, 441.0), 22050)
    assert file_digest(b) != expected
    with pytest.raises(AudioInputError, match="missing"):
        file_digest(tmp_path / "missing.wav")
