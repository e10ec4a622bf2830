"""Models held at another precision than their files' (``IndexTTS2(dtype=, quantize_gpt=)``,
``indextts-tts --dtype/--quantize-gpt``): checked up front, applied at load, every stage's
input cast to its model's dtype, and kept apart in the caches (other numbers)."""

from __future__ import annotations

import json

import mlx.core as mx
import numpy as np
import pytest
import soundfile as sf

from indextts_mlx import SAMPLE_RATE, IndexTTS2
from indextts_mlx.chapter import plan_chapter, render_chapter
from indextts_mlx.errors import ModelInputError
from indextts_mlx.models import MODELS, Precision
from indextts_mlx.testing import write_tiny_weights

pytestmark = pytest.mark.filterwarnings("ignore:segment .* no stop code:RuntimeWarning")
OPTIONS = {"max_codes": 12, "cfm_steps": 2, "seed": 3}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("precision")
    weights = write_tiny_weights(root / "weights", seed=0)
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    wave = 0.3 * np.sin(2 * np.pi * 150 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    wave += 0.01 * np.random.default_rng(0).normal(size=t.size)
    voice = root / "voice.wav"
    sf.write(voice, wave.astype(np.float32), SAMPLE_RATE)
    return weights, voice, root


@pytest.fixture(scope="module")
def fp32_audio(tiny):
    weights, voice, _ = tiny
    return IndexTTS2(weights, progress=False).render("Hello world.", voice, **OPTIONS).audio


def test_precision_is_checked_and_labelled():
    assert Precision().label == "" and Precision("bfloat16").label == "bfloat16"
    assert Precision({"gpt": "float16"}, 8).label == "gpt=float16,gpt-q8"
    assert Precision("float16").dtype_of("bigvgan") == mx.float16
    assert Precision({"gpt": "float16"}).dtype_of("bigvgan") is None
    with pytest.raises(ModelInputError, match="float64"):
        Precision("float64")
    with pytest.raises(ModelInputError, match="vocoder"):
        Precision({"vocoder": "float16"})
    with pytest.raises(ModelInputError, match="quantize_gpt"):
        Precision(quantize_gpt=2)


def test_explicit_float32_is_the_files_own(tiny, fp32_audio):
    weights, voice, _ = tiny
    tts = IndexTTS2(weights, progress=False, dtype="float32")
    np.testing.assert_array_equal(tts.render("Hello world.", voice, **OPTIONS).audio, fp32_audio)


@pytest.mark.parametrize(
    ("dtype", "mx_dtype"), [("float16", mx.float16), ("bfloat16", mx.bfloat16)]
)
def test_half_models_render_close_to_float32(tiny, fp32_audio, dtype, mx_dtype, tmp_path):
    weights, voice, _ = tiny
    tts = IndexTTS2(weights, progress=False, dtype=dtype, cache_dir=tmp_path)
    audio = tts.render("Hello world.", voice, **OPTIONS).audio
    assert all(tts.models.dtype(name) == mx_dtype for name in MODELS)
    assert audio.dtype == np.float32 and np.isfinite(audio).all()
    assert audio.shape == fp32_audio.shape  # the same codes: a fixed count, no stop code
    assert 0 < np.abs(audio - fp32_audio).max() < 0.1
    # encoded prompts are cached apart from float32 ones, and reload to the same audio
    assert [p.name for p in tmp_path.iterdir()] == [dtype]
    again = IndexTTS2(weights, progress=False, dtype=dtype, cache_dir=tmp_path)
    assert not again.models.is_loaded("w2vbert")
    np.testing.assert_array_equal(again.render("Hello world.", voice, **OPTIONS).audio, audio)
    assert not again.models.is_loaded("w2vbert")  # the speaker came from the cache


def test_quantized_gpt_renders(tiny, fp32_audio):
    weights, voice, _ = tiny
    tts = IndexTTS2(weights, progress=False, quantize_gpt=8)
    audio = tts.render("Hello world.", voice, **OPTIONS).audio
    assert tts.models.gpt.gpt.quantized
    assert np.isfinite(audio).all() and audio.shape == fp32_audio.shape


def test_chapter_keys_depend_on_the_precision(tiny, tmp_path):
    weights, voice, _ = tiny
    jsonl = tmp_path / "chapter.jsonl"
    jsonl.write_text(json.dumps({"text": "Hello world.", "spk_audio_prompt": str(voice)}) + "\n")
    config = IndexTTS2(weights, progress=False).weights
    plain = plan_chapter(jsonl, config, cache_dir=tmp_path / "cache")
    half = plan_chapter(jsonl, config, cache_dir=tmp_path / "cache", precision=Precision("float16"))
    assert plain.segments[0].key != half.segments[0].key and half.precision == "float16"
    tts = IndexTTS2(weights, progress=False)
    with pytest.raises(ValueError, match="precision"):
        render_chapter(half, tmp_path / "out.wav", tts)
