"""Pipeline pieces that need no model: set-up errors, segment joining, audio output, the
conditioning cache."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from indextts_mlx.conditioning import ConditioningCache
from indextts_mlx.errors import IndexTTSError, InputTextError, WeightsNotFoundError
from indextts_mlx.output import audio_format_for, write_audio
from indextts_mlx.pipeline import IndexTTS2, join_segments
from indextts_mlx.result import SAMPLE_RATE


def test_missing_weights_are_all_named_in_one_error(tmp_path):
    (tmp_path / "gpt.npz").write_bytes(b"x")
    with pytest.raises(WeightsNotFoundError) as err:
        IndexTTS2(tmp_path, progress=False)
    message = str(err.value)
    for name in ("bigvgan.npz", "campplus.npz", "w2vbert.npz", "bpe.model", "s2mel_pytorch.npz"):
        assert name in message
    assert "gpt.npz" not in message  # present
    assert "indextts-weights" in message  # how to get them


WEIGHT_NAMES = (
    "bigvgan.npz",
    "campplus.npz",
    "gpt.npz",
    "s2mel_pytorch.npz",
    "semantic_codec.npz",
    "semantic_stats.npz",
    "w2vbert.npz",
    "bpe.model",
)


def _complete_weights(tmp_path):
    for name in WEIGHT_NAMES:
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


@pytest.mark.parametrize("text", ["", "   \n\t", None, 3])
def test_empty_or_non_string_text_is_refused_before_any_model_loads(tmp_path, text):
    tts = IndexTTS2(_complete_weights(tmp_path), progress=False)
    with pytest.raises(InputTextError):
        tts.synthesize(text, "speaker.wav")
    assert not any(tts.models.is_loaded(n) for n in ("gpt", "w2vbert", "bigvgan"))


def test_invalid_sampling_settings_are_pipeline_errors(tmp_path):
    tts = IndexTTS2(_complete_weights(tmp_path), progress=False)
    with pytest.raises(IndexTTSError, match="temperature"):
        tts.synthesize("Hello.", "speaker.wav", temperature=0)
    with pytest.raises(IndexTTSError, match="cfm_steps"):
        tts.synthesize("Hello.", "speaker.wav", cfm_steps=0)


def test_segments_are_joined_with_200_ms_of_silence_between_not_after():
    a, b, c = (np.full(n, v, np.float32) for n, v in ((3, 0.5), (2, -0.5), (1, 0.25)))
    out = join_segments([a, b, c], 200)
    gap = int(SAMPLE_RATE * 0.2)  # 4410 samples, as the reference's interval_silence
    assert gap == 4410 and out.shape == (3 + 2 + 1 + 2 * gap,)
    np.testing.assert_array_equal(out[:3], a)
    assert not out[3 : 3 + gap].any()
    np.testing.assert_array_equal(out[3 + gap : 5 + gap], b)
    np.testing.assert_array_equal(out[-1:], c)
    assert join_segments([], 200).shape == (0,)


@pytest.mark.parametrize(("name", "fmt"), [("a.wav", "WAV"), ("b.flac", "FLAC"), ("c.ogg", "OGG")])
def test_audio_is_written_in_the_format_of_its_extension(tmp_path, name, fmt):
    t = np.arange(SAMPLE_RATE // 10) / SAMPLE_RATE
    audio = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = write_audio(tmp_path / "sub" / name, audio, SAMPLE_RATE)
    info = sf.info(path)
    assert info.format == fmt and info.samplerate == SAMPLE_RATE and info.channels == 1
    back, _ = sf.read(path, dtype="float32")
    tol = 1 / 32767 if fmt != "OGG" else 0.05  # 16-bit PCM, or lossy Vorbis
    np.testing.assert_allclose(back, audio, atol=tol * 1.01)
    assert [p.name for p in path.parent.iterdir()] == [name]  # no temp file left


def test_unknown_audio_format_is_a_clear_error(tmp_path):
    with pytest.raises(IndexTTSError, match="wav"):
        audio_format_for(tmp_path / "x.xyz")
    assert audio_format_for(tmp_path / "x.bin", "flac") == "FLAC"


def test_conditioning_cache_round_trips_on_disk_and_skips_damaged_entries(tmp_path):
    arrays = {"style": np.arange(6, dtype=np.float32).reshape(1, 6)}
    ConditioningCache(tmp_path).put("speaker", "abc", arrays)
    fresh = ConditioningCache(tmp_path)  # a new process: memory empty
    np.testing.assert_array_equal(fresh.get("speaker", "abc")["style"], arrays["style"])
    assert fresh.get("speaker", "other") is None
    (entry,) = tmp_path.glob("speaker-*abc.npz")
    entry.write_bytes(entry.read_bytes()[:20])  # truncated
    assert ConditioningCache(tmp_path).get("speaker", "abc") is None


def test_conditioning_cache_in_memory_keeps_the_most_recent(tmp_path):
    cache = ConditioningCache(capacity=2)
    for key in "abc":
        cache.put("speaker", key, {"x": np.zeros(1)})
    assert cache.get("speaker", "a") is None and cache.get("speaker", "c") is not None
    assert not list(tmp_path.iterdir())
