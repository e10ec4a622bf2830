"""The whole pipeline on tiny random weights (``indextts_mlx.testing``): real audio in well
under a second per render, every stage run for real."""

from __future__ import annotations

import time

import mlx.core as mx
import numpy as np
import pytest
import soundfile as sf

from indextts_mlx import SAMPLE_RATE, IndexTTS2, models
from indextts_mlx.errors import WeightsLoadError
from indextts_mlx.testing import (
    GPT_DIM,
    SEMANTIC_DIM,
    TINY_BIGVGAN,
    TINY_GPT,
    TINY_S2MEL,
    write_tiny_weights,
)
from indextts_weights import WeightsError
from indextts_weights.npz import read_config
from mlx_indextts_models.emotion import EMO_NUM

pytestmark = pytest.mark.filterwarnings("ignore:segment .* no stop code:RuntimeWarning")

GAP = SAMPLE_RATE * 200 // 1000  # 4410 samples of silence between segments


def expected_samples(code_counts: list[int]) -> int:
    """256 samples per mel frame, floor(n · 1.72) frames per segment of n codes, gaps."""
    return sum(n * 172 // 100 * 256 for n in code_counts) + GAP * (len(code_counts) - 1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    weights = write_tiny_weights(root / "weights", seed=0)
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    rng = np.random.default_rng(1)
    wave = sum(0.3 / k * np.sin(2 * np.pi * 140 * k * t) for k in range(1, 6))
    wave = (wave * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.normal(size=t.size)) / 2
    voice = root / "voice.wav"
    sf.write(voice, wave.astype(np.float32), SAMPLE_RATE)
    other = root / "other.wav"
    sf.write(other, (0.2 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.normal(size=t.size)), 16000)
    return weights, voice, other, root


@pytest.fixture(scope="module")
def tts(tiny):
    return IndexTTS2(tiny[0], progress=False)


def render(tts, voice, text="Hello world.", **kwargs):
    kwargs = {"max_codes": 20, "cfm_steps": 2, **kwargs}
    return tts.render(text, voice, **kwargs)


def test_files_carry_their_config(tiny):
    weights = tiny[0]
    assert weights.missing(require=tuple(weights.files())) == []
    assert read_config(weights.gpt, model="gpt")["model_dim"] == GPT_DIM
    assert read_config(weights.bigvgan, model="bigvgan")["upsample_initial_channel"] == 64
    assert sum(f.stat().st_size for f in weights.weights_dir.iterdir()) < 20_000_000


def test_same_seed_writes_the_same_weights(tiny, tmp_path):
    again = write_tiny_weights(tmp_path / "again", seed=0)
    for name in ("gpt", "s2mel", "bpe_model"):
        assert again.path(name).read_bytes() == tiny[0].path(name).read_bytes(), name


def test_models_load_at_the_tiny_config(tts):
    assert tts.models.gpt.args == TINY_GPT
    assert tts.models.bigvgan.args == TINY_BIGVGAN
    assert tts.models.s2mel.cfm.estimator.args == TINY_S2MEL.dit
    assert tts.models.s2mel.gpt_layer(mx.zeros((1, 2, GPT_DIM))).shape == (1, 2, SEMANTIC_DIM)


def test_render_gives_audio_of_the_length_the_codes_imply(tts, tiny):
    result = render(tts, tiny[1])
    counts = [len(s.codes) for s in result.segments]
    assert result.audio.dtype == np.float32 and result.audio.ndim == 1
    assert result.sample_rate == SAMPLE_RATE == 22050
    assert len(result.segments) == 1 and counts == [20]  # no stop code within 20: all kept
    assert result.audio.shape == (expected_samples(counts),) == (34 * 256,)
    assert result.segments[0].samples == 34 * 256
    assert all(0 <= c < 8192 for c in result.segments[0].codes)
    assert np.all(np.isfinite(result.audio)) and np.abs(result.audio).max() <= 1.0
    assert np.std(result.audio) > 1e-4  # not silence


def test_segments_are_joined_with_200_ms_of_silence(tts, tiny):
    text = "Hello world. The quick brown fox jumps over the lazy dog. One two three."
    result = render(tts, tiny[1], text=text, max_codes=12, max_text_tokens_per_segment=12)
    counts = [len(s.codes) for s in result.segments]
    assert len(counts) >= 2
    assert result.audio.shape == (expected_samples(counts),)
    first = result.segments[0].samples
    assert first == counts[0] * 172 // 100 * 256
    assert np.all(result.audio[first : first + GAP] == 0)
    assert np.any(result.audio[first + GAP : first + GAP + 256] != 0)


def test_same_seed_is_identical_other_seed_differs(tts, tiny):
    start = time.perf_counter()
    a = render(tts, tiny[1], seed=3)
    elapsed = time.perf_counter() - start
    b = render(tts, tiny[1], seed=3)
    c = render(tts, tiny[1], seed=4)
    np.testing.assert_array_equal(a.audio, b.audio)
    assert a.segments[0].codes == b.segments[0].codes
    assert a.segments[0].codes != c.segments[0].codes
    assert not np.array_equal(a.audio[: len(c.audio)], c.audio[: len(a.audio)])
    assert elapsed < 5  # models loaded, prompt cached: the tiny models are fast


def test_emo_vector_uses_the_matrices(tts, tiny):
    plain = render(tts, tiny[1], seed=5)
    zero = render(tts, tiny[1], seed=5, emo_vector=[0.0] * 8)
    happy = render(tts, tiny[1], seed=5, emo_vector=[0.8, 0, 0, 0, 0, 0, 0, 0])
    # weights summing to 0 leave the audio prompt's vector: the same audio
    np.testing.assert_array_equal(plain.audio, zero.audio)
    assert not np.array_equal(plain.audio[: len(happy.audio)], happy.audio[: len(plain.audio)])


def test_emotion_vector_is_the_hand_computed_blend(tts, tiny):
    speaker = tts.encode_speaker(tiny[1])
    emotion = tts.encode_emotion(tiny[2])
    weights = [0.0, 0.3, 0.0, 0.0, 0.0, 0.2, 0.0, 0.0]
    got = np.asarray(tts.emotion_vector(speaker, emotion, alpha=0.5, emo_vector=weights))
    emo_groups, spk_groups = tts.models.emotion_matrices
    assert [g.shape[0] for g in emo_groups] == list(EMO_NUM)
    style = np.asarray(speaker.style)[0].astype(np.float64)
    expected = 0.5 * np.asarray(speaker.emovec) + 0.5 * np.asarray(emotion.emovec)
    expected = (1 - sum(weights)) * expected
    for w, emo, spk in zip(weights, emo_groups, spk_groups, strict=True):
        spk = np.asarray(spk).astype(np.float64)
        cos = spk @ style / (np.linalg.norm(spk, axis=1) * np.linalg.norm(style))
        expected = expected + w * np.asarray(emo)[int(np.argmax(cos))]
    assert got.shape == (1, GPT_DIM)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_disk_cache_serves_a_new_instance(tiny, monkeypatch):
    weights, voice, _, root = tiny
    cache = root / "cache"
    first = render(IndexTTS2(weights, progress=False, cache_dir=cache), voice, seed=7)
    assert sorted(p.name.split("-")[0] for p in cache.glob("*.npz")) == ["emotion", "speaker"]

    def fail(*_, **__):
        raise WeightsError("the encoders must not load: the disk cache has this prompt")

    for name in ("w2vbert", "campplus", "semantic_stats"):
        monkeypatch.setattr(getattr(models.ModelSet, name), "loader", fail)
    second = IndexTTS2(weights, progress=False, cache_dir=cache)
    again = render(second, voice, seed=7)
    np.testing.assert_array_equal(first.audio, again.audio)
    assert not second.models.is_loaded("w2vbert")
    with pytest.raises(WeightsLoadError, match=r"loading w2vbert\.npz: the encoders must not"):
        render(IndexTTS2(weights, progress=False), voice, seed=7)  # no cache: needs them


class _Recorder:
    def __init__(self):
        self.events = []

    def start(self, name, total_bytes):
        self.events.append(["start", name, total_bytes, 0])

    def advance(self, nbytes):
        self.events[-1][3] += nbytes

    def done(self, name, seconds):
        assert self.events[-1][1] == name and seconds >= 0
        self.events[-1][0] = "done"


def test_load_progress_is_told_the_bytes_of_each_file(tiny):
    weights = tiny[0]
    recorder = _Recorder()
    IndexTTS2(weights, progress=recorder, eager=True)
    names = [name for _, name, _, _ in recorder.events]
    assert names == list(models.MODELS)
    for state, name, total, read in recorder.events:
        files = models.ModelSet.__dict__[name].files
        size = sum(weights.path(f).stat().st_size for f in files)
        assert state == "done" and total == size
        assert size <= read <= 1.1 * size + 65536  # the zip directories are read twice
