"""Emotion arguments (`indextts_mlx.emotion_args`; docs/promises.md §1, docs/data-flow.md
step 2)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from indextts_mlx.emotion_args import (
    EMOTIONS,
    EmotionMode,
    check_emotion_scale,
    parse_emo_vector,
    resolve_emotion_mode,
    scale_emo_vector,
)
from indextts_mlx.errors import EmotionInputError, FeatureNotAvailableError

VEC = [0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 0.0]


def test_emotion_order_matches_the_reference():
    assert EMOTIONS == (
        "happy", "angry", "sad", "afraid", "disgusted", "melancholic", "surprised", "calm",
    )  # fmt: skip


@pytest.mark.parametrize(
    "value",
    [
        VEC,
        tuple(VEC),
        np.array(VEC),
        np.array([VEC]),
        [0.8, 0, 0, 0, 0, 0, 0.2, 0],
        [np.float64(0.8), 0, 0, 0, 0, 0, np.float64(0.2), np.int64(0)],
        "0.8,0,0,0,0,0,0.2,0",
        " [0.8, 0, 0, 0, 0, 0, 0.2, 0] ",
        "(0.8 0 0 0 0 0 0.2 0)",
        "0.8, 0,0;0,0,0, 2e-1 ,0",
        {"happy": 0.8, "surprised": 0.2},
    ],
)
def test_parse_accepted_forms(value):
    got = parse_emo_vector(value)
    assert got == VEC
    assert all(type(x) is float for x in got)


def test_parse_int_array():
    assert parse_emo_vector(np.array([1, 0, 0, 0, 0, 0, 0, 0])) == [1.0] + [0.0] * 7


@pytest.mark.parametrize(
    "value,message",
    [
        ([0.1] * 7, "must have 8 values .*got 7"),
        ([0.1] * 9, "got 9"),
        ("", "got 0"),
        ("[]", "got 0"),
        ("0.8,0,0,0,0,0,0.2", "got 7"),
        ("0.8,0,0,x,0,0,0.2,0", "'x' is not a number"),
        (np.zeros(9), r"shape \(9,\)"),
        (np.zeros((2, 4)), r"shape \(2, 4\)"),
        (np.array(["a"] * 8), "dtype"),
        (np.zeros(8, dtype=bool), "dtype"),
        ([0.1, "0.2", 0, 0, 0, 0, 0, 0], r"emo_vector\[angry\] = '0.2' is not a number"),
        ([True] + [0] * 7, r"\[happy\] = True is not a number"),
        ([None] * 8, "is not a number"),
        ([0, 0, float("nan"), 0, 0, 0, 0, 0], r"\[sad\] = nan is not finite"),
        ("0,0,0,inf,0,0,0,0", r"\[afraid\] = inf is not finite"),
        ([0, 0, 0, 0, -0.1, 0, 0, 0], r"\[disgusted\] = -0.1 is negative"),
        ({"joy": 1.0}, "unknown emotion.*'joy'"),
        (0.5, "got float"),
        (b"0.8", "got bytes"),
        (None, "None"),
    ],
)
def test_parse_rejects(value, message):
    with pytest.raises(EmotionInputError, match=message):
        parse_emo_vector(value)


def test_scale_is_the_references_truncation():
    # infer_generator: [int(x * clamp(alpha, 0, 1) * 10000) / 10000 for x in emo_vector]
    assert scale_emo_vector(VEC, 0.5) == [0.4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.0]
    # truncation toward zero at 4 decimals (not rounding): 0.33333 * 0.7 = 0.233331
    assert scale_emo_vector([0.33333] + [0.0] * 7, 0.7)[0] == 0.2333
    # float error shows through exactly as in the reference: 0.7 * 0.1 * 10000 = 699.99..
    assert scale_emo_vector([0.7] * 8, 0.1)[0] == 0.0699
    assert scale_emo_vector([0.57] * 8, 0.5)[0] == 0.2849
    assert scale_emo_vector([0.123456] * 8, 2.0) == [0.123456] * 8  # clamped to 1: unchanged
    assert scale_emo_vector([0.123456] * 8, 1.0) == [0.123456] * 8  # no truncation at 1
    assert scale_emo_vector(VEC, -1.0) == [0.0] * 8
    assert scale_emo_vector(VEC, 0.0) == [0.0] * 8


def test_check_emotion_scale():
    assert check_emotion_scale(0) == 0.0
    assert check_emotion_scale(1) == 1.0
    assert check_emotion_scale(2.0) == 2.0
    assert check_emotion_scale(np.float32(1.5)) == 1.5
    for bad in (-0.01, 2.01, float("nan"), float("inf")):
        with pytest.raises(EmotionInputError, match=r"in \[0, 2\]"):
            check_emotion_scale(bad)
    for bad in ("1", None, True):
        with pytest.raises(EmotionInputError, match="must be a number"):
            check_emotion_scale(bad)


def test_mode_speaker_by_default():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_emotion_mode() == EmotionMode("speaker", None, None, 1.0)
        assert resolve_emotion_mode(None, None, None, None, 1.0).mode == "speaker"
        assert resolve_emotion_mode(emo_text="", use_emo_text=None).mode == "speaker"


def test_mode_speaker_ignores_alpha_with_a_warning():
    with pytest.warns(UserWarning, match="emo_alpha=0.5 has no effect"):
        mode = resolve_emotion_mode(emo_alpha=0.5)
    assert mode == EmotionMode("speaker", None, None, 1.0)


def test_mode_audio_keeps_alpha(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mode = resolve_emotion_mode(emo_audio_prompt="~/angry.wav", emo_alpha=0.6)
    assert mode == EmotionMode("audio", None, tmp_path / "angry.wav", 0.6)
    assert isinstance(mode.emo_audio_prompt, Path)
    # alpha outside [0, 1] is passed through for audio (the reference does not clamp it)
    assert resolve_emotion_mode(emo_audio_prompt="a.wav", emo_alpha=1.5).emo_alpha == 1.5


def test_mode_vector_scales_and_uses_speaker_audio():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mode = resolve_emotion_mode(emo_vector="0.8,0,0,0,0,0,0.2,0", emo_alpha=0.5)
    assert mode == EmotionMode("vector", [0.4, 0, 0, 0, 0, 0, 0.1, 0], None, 1.0)
    assert resolve_emotion_mode(emo_vector=VEC).emo_vector == VEC


def test_mode_vector_drops_emo_audio_with_a_warning():
    with pytest.warns(UserWarning, match="emo_audio_prompt is ignored"):
        mode = resolve_emotion_mode(emo_vector=VEC, emo_audio_prompt="x.wav", emo_alpha=0.5)
    assert mode.mode == "vector" and mode.emo_audio_prompt is None and mode.emo_alpha == 1.0
    assert mode.emo_vector == [0.4, 0, 0, 0, 0, 0, 0.1, 0]


@pytest.mark.parametrize("use_emo_text", [None, True])
def test_vector_beats_text_with_a_warning(use_emo_text):
    with pytest.warns(UserWarning, match="emo_vector wins, emo_text is ignored"):
        mode = resolve_emotion_mode(VEC, "I am furious", use_emo_text)
    assert mode.mode == "vector" and mode.emo_vector == VEC
    with pytest.warns(UserWarning, match="emo_text is ignored"):
        assert resolve_emotion_mode(VEC, None, True).mode == "vector"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(emo_text="so happy"),  # tri-state None: on because emo_text is given
        dict(emo_text="so happy", use_emo_text=True),
        dict(use_emo_text=True),  # reference: uses the main text
        dict(emo_text="so happy", emo_audio_prompt="a.wav"),
    ],
)
def test_emo_text_is_not_available_yet(kwargs):
    with pytest.raises(FeatureNotAvailableError, match="Qwen emotion model") as info:
        resolve_emotion_mode(**kwargs)
    assert isinstance(info.value, NotImplementedError)


def test_emo_text_off_explicitly_warns_and_is_ignored():
    with pytest.warns(UserWarning, match="use_emo_text=False"):
        mode = resolve_emotion_mode(emo_text="so happy", use_emo_text=False)
    assert mode.mode == "speaker"


def test_mode_input_errors():
    with pytest.raises(EmotionInputError, match="emo_alpha must be a finite number"):
        resolve_emotion_mode(emo_alpha=math.nan)
    with pytest.raises(EmotionInputError, match="emo_alpha"):
        resolve_emotion_mode(emo_alpha="0.5")
    with pytest.raises(EmotionInputError, match="use_emo_text"):
        resolve_emotion_mode(use_emo_text="yes")
    with pytest.raises(EmotionInputError, match="got 3"):
        resolve_emotion_mode(emo_vector=[1, 0, 0])
