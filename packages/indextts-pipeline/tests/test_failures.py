"""Failures a user can meet after the pipeline was built reach them as ``IndexTTSError``:
a weights file corrupted on disk, a model rejecting its input. Real tiny weights
(``indextts_mlx.testing.write_tiny_weights``), the real chapter renderer."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from indextts_mlx import IndexTTS2, render_segments_jsonl
from indextts_mlx.chapter import ChapterRenderError
from indextts_mlx.errors import IndexTTSError, ModelInputError, WeightsLoadError
from indextts_mlx.result import SAMPLE_RATE
from indextts_mlx.testing import write_tiny_weights

pytestmark = pytest.mark.filterwarnings("ignore:segment .* no stop code:RuntimeWarning")
FAST = {"max_codes": 12, "cfm_steps": 2, "num_beams": 1}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("failures")
    weights = write_tiny_weights(root / "pristine", seed=3).weights_dir
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    wave = sum(0.3 / k * np.sin(2 * np.pi * 150 * k * t) for k in range(1, 5))
    wave = wave + 0.01 * np.random.default_rng(0).normal(size=t.size)
    voice = root / "voice.wav"
    sf.write(voice, (wave / 2).astype(np.float32), SAMPLE_RATE)
    return root, weights, voice


@pytest.fixture
def weights(tiny, tmp_path):
    """A private copy of the tiny weights, free to damage."""
    return shutil.copytree(tiny[1], tmp_path / "weights")


def _corrupt(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # a truncated download


def test_a_corrupt_file_after_construction_is_a_weights_load_error(tiny, weights):
    tts = IndexTTS2(weights, progress=False)
    pristine = (weights / "bigvgan.npz").read_bytes()
    _corrupt(weights / "bigvgan.npz")
    with pytest.raises(WeightsLoadError, match=r"loading bigvgan\.npz: ") as err:
        tts.render("Hello there.", tiny[2], **FAST)
    assert isinstance(err.value, IndexTTSError) and isinstance(err.value, OSError)
    assert not tts.models.is_loaded("bigvgan")
    assert tts.models.is_loaded("gpt") and tts.models.is_loaded("s2mel")  # GPT, S2Mel ran
    (weights / "bigvgan.npz").write_bytes(pristine)  # fixed: the next use loads it
    assert tts.render("Hello there.", tiny[2], **FAST).audio.size > 0


def test_a_model_value_error_is_a_model_input_error(tiny, weights):
    tts = IndexTTS2(weights, progress=False)
    speaker = tts.encode_speaker(tiny[2])
    emotion = tts.encode_emotion(tiny[2])
    prefix = tts.conditioning_prefix(speaker, tts.emotion_vector(speaker, emotion))
    too_many = tts.models.gpt.args.number_text_tokens + 1
    with pytest.raises(ModelInputError, match=r"^gpt: text token ids must lie in"):
        tts.generate_codes(prefix, [too_many])


def test_chapter_with_continue_on_error_records_the_failed_line(tiny, weights, tmp_path):
    jsonl = tmp_path / "chapter.jsonl"
    lines = ["First line.", "Second line.", "Third line."]
    jsonl.write_text("".join(json.dumps({"text": t}) + "\n" for t in lines))
    tts = IndexTTS2(weights, progress=False)
    pristine = (weights / "bigvgan.npz").read_bytes()
    _corrupt(weights / "bigvgan.npz")  # after construction: line 1 meets it

    def on_segment(index, count, plan):
        if index == 1:  # repaired before line 2 renders
            (weights / "bigvgan.npz").write_bytes(pristine)

    out = tmp_path / "chapter.wav"
    with pytest.raises(ChapterRenderError) as err:
        render_segments_jsonl(
            jsonl, out, tts, spk_audio_prompt=tiny[2], cache_dir=tmp_path / "cache",
            continue_on_error=True, on_segment=on_segment, **FAST,
        )  # fmt: skip
    failed = [(s.line, s.error) for s in err.value.report.segments if s.error]
    assert [line for line, _ in failed] == [1]
    assert failed[0][1].startswith("loading bigvgan.npz: ")
    assert [s.line for s in err.value.report.segments if s.seconds] == [2, 3]  # rendered
    assert len(list((tmp_path / "cache").glob("*/*.npz"))) == 2
    assert not out.exists()
    assert str(err.value).splitlines()[1:] == [f"  line 1: {failed[0][1]}"]
