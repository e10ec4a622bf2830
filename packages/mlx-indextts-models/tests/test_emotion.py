"""Emotion-matrix vectors: hand-computed selections and blends."""

from __future__ import annotations

import mlx_indextts_models  # noqa: F401  (first: fast BLAS before MLX)

# isort: split

import mlx.core as mx
import numpy as np
import pytest

from mlx_indextts_models.emotion import (
    EMOTIONS,
    blend_emotion_vector,
    emotion_matrix_vector,
    most_similar_cosine,
    select_rows,
)


def test_most_similar_cosine_ignores_scale_and_picks_the_first_tie():
    matrix = mx.array([[1.0, 0.0], [10.0, 10.0], [0.0, 3.0], [2.0, 2.0]])
    assert most_similar_cosine(mx.array([[1.0, 1.1]]), matrix) == 1
    assert most_similar_cosine(mx.array([0.0, -1.0]), matrix) == 0  # cos 0 vs -1
    tie = mx.array([[0.0, 1.0], [4.0, 0.0], [1.0, 0.0]])
    assert most_similar_cosine(mx.array([1.0, 0.0]), tie) == 1  # rows 1 and 2: cos exactly 1
    with pytest.raises(ValueError, match="query of 3 values"):
        most_similar_cosine(mx.array([1.0, 0.0, 0.0]), matrix)


def test_emotion_matrix_vector_weights_the_selected_rows():
    speakers = [mx.array([[1.0, 0.0], [0.0, 1.0]]), mx.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])]
    emotions = [mx.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), mx.array(np.eye(3, dtype=np.float32))]
    style = mx.array([[0.2, 1.0]])  # closest: group 0 row 1, group 1 row 0
    assert select_rows(style, speakers) == [1, 0]
    got = np.array(emotion_matrix_vector([0.5, 0.25], style, emotions, speakers))
    np.testing.assert_allclose(got, [[0.5 * 4 + 0.25, 0.5 * 5, 0.5 * 6]], rtol=1e-6)
    fixed = np.array(emotion_matrix_vector([0.5, 0.25], style, emotions, speakers, [0, 2]))
    np.testing.assert_allclose(fixed, [[0.5, 1.0, 1.75]], rtol=1e-6)
    with pytest.raises(ValueError, match="3 weights for 2"):
        emotion_matrix_vector([0.1, 0.1, 0.1], style, emotions, speakers)


def test_random_rows_come_from_the_generator():
    speakers = [mx.zeros((n, 2)) for n in (3, 17, 2, 8, 4, 5, 10, 24)]
    a = select_rows(mx.ones((1, 2)), speakers, np.random.default_rng(7))
    b = select_rows(mx.ones((1, 2)), speakers, np.random.default_rng(7))
    assert a == b and all(0 <= i < g.shape[0] for i, g in zip(a, speakers, strict=True))
    assert len(EMOTIONS) == 8


def test_blend_keeps_the_audio_vector_for_the_remaining_weight():
    emovec, matrix = mx.array([[2.0, -4.0]]), mx.array([[1.0, 1.0]])
    got = np.array(blend_emotion_vector(emovec, matrix, [0.25, 0.5]))
    np.testing.assert_allclose(got, [[1.0 + 0.25 * 2.0, 1.0 - 0.25 * 4.0]], rtol=1e-6)
