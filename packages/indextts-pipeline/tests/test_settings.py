"""Typed settings: the flat reference names map onto the settings each stage takes, and
every default is read from the one place it is defined."""

from __future__ import annotations

import inspect

import pytest

from indextts_mlx import IndexTTS2
from indextts_mlx.emotion_args import EMO_ALPHA, EMOTION_SCALE, EmotionRequest
from indextts_mlx.errors import IndexTTSError
from indextts_mlx.settings import DEFAULTS, OPTION_NAMES, SynthesisOptions, SynthesisRequest
from indextts_mlx.voices import SpeakerRequest
from mlx_indextts_models import GenerationConfig
from mlx_indextts_models.s2mel.cfm import CFG_RATE, CFM_STEPS, CFMSettings


def test_defaults_are_the_reference_values_read_from_their_types():
    generation = GenerationConfig()
    assert (generation.temperature, generation.top_k, generation.top_p) == (0.8, 30, 0.8)
    assert (generation.repetition_penalty, generation.num_beams) == (10.0, 3)
    assert (generation.max_new_tokens, CFM_STEPS, CFG_RATE) == (1500, 25, 0.7)
    assert DEFAULTS["max_codes"] == generation.max_new_tokens
    assert DEFAULTS["top_p"] == generation.top_p and DEFAULTS["do_sample"] is True
    assert (DEFAULTS["cfm_steps"], DEFAULTS["cfg_rate"]) == (CFMSettings().steps, CFG_RATE)
    assert (DEFAULTS["emo_alpha"], DEFAULTS["emotion"]) == (EMO_ALPHA, EMOTION_SCALE)
    assert (DEFAULTS["seed"], DEFAULTS["use_random"], DEFAULTS["interval_silence_ms"]) == (
        0,
        False,
        200,
    )
    assert set(DEFAULTS) == set(OPTION_NAMES) == set(SynthesisOptions.__annotations__)


def test_flat_names_land_in_their_settings():
    request = SynthesisRequest.from_options(
        "Hi.", "s.wav", reference_audio="r.wav", voice="Emma", voices_dir="v",
        emo_audio_prompt="e.wav", emo_alpha=0.4, emo_vector=[0.1] * 8, emo_text="calm",
        use_emo_text=False, emotion=1.5, seed=9, use_random=True, max_codes=77,
        do_sample=False, temperature=0.5, top_k=5, top_p=0.9, repetition_penalty=2.0,
        num_beams=1, cfm_steps=4, cfg_rate=0.3, max_text_tokens_per_segment=50,
        interval_silence_ms=10,
    )  # fmt: skip
    assert request.speaker == SpeakerRequest("s.wav", "r.wav", "Emma", "v")
    assert request.emotion == EmotionRequest("e.wav", 0.4, [0.1] * 8, "calm", False, 1.5)
    assert request.generation == GenerationConfig(
        do_sample=False, temperature=0.5, top_k=5, top_p=0.9, repetition_penalty=2.0,
        num_beams=1, max_new_tokens=77,
    )  # fmt: skip
    assert request.cfm == CFMSettings(4, 0.3)
    assert (request.seed, request.use_random) == (9, True)
    assert (request.max_text_tokens_per_segment, request.interval_silence_ms) == (50, 10)
    flat = request.to_options()
    assert (
        flat["max_codes"] == 77 and flat["cfm_steps"] == 4 and flat["spk_audio_prompt"] == "s.wav"
    )
    again = SynthesisRequest.from_options("Hi.", **flat)  # a round trip
    assert again == request


def test_unknown_names_and_bad_values_are_refused():
    with pytest.raises(TypeError, match="top_q"):
        SynthesisRequest.from_options("Hi.", top_q=0.5)  # type: ignore[call-arg]
    for bad in ({"cfm_steps": 0}, {"cfg_rate": -1.0}, {"top_p": 2.0}, {"temperature": 0.0},
                {"seed": -1}, {"max_text_tokens_per_segment": 0}):  # fmt: skip
        with pytest.raises(IndexTTSError):
            SynthesisRequest.from_options("Hi.", **bad)  # type: ignore[arg-type]


def test_render_takes_exactly_the_flat_options():
    render = inspect.signature(IndexTTS2.render).parameters
    assert list(render)[:3] == ["self", "text", "spk_audio_prompt"]
    assert {"output_path", "audio_format", "on_code", "options"} <= set(render)
