"""Emotion vectors from the 8-value emotion weights (``infer_v2``'s ``emo_vector`` path).

The emotion matrix (``feat2.pt``, 73 × 1280 emovec-space rows) and the speaker matrix
(``feat1.pt``, 73 × 192 CAMPPlus-style rows) are split into 8 groups by ``emo_num``
(:data:`EMO_NUM`: happy, angry, sad, afraid, disgusted, melancholic, surprised, calm).
For each emotion, one row is chosen — the one whose speaker row is most cosine-similar to
the prompt's style (``find_most_similar_cosine``), or a random one with ``use_random`` —
and

    matrix_vector = Σ_i weights[i] · emotion_group_i[index_i]          (1, 1280)
    emovec        = matrix_vector + (1 − Σ weights) · emovec_audio     (1, 1280)

where ``emovec_audio`` is the audio path's vector (``merge_emovec``).
"""

from __future__ import annotations

from collections.abc import Sequence

import mlx.core as mx
import numpy as np

#: The emotions, in the order of the weights and of the matrix groups.
EMOTIONS: tuple[str, ...] = (
    "happy",
    "angry",
    "sad",
    "afraid",
    "disgusted",
    "melancholic",
    "surprised",
    "calm",
)

#: Rows per emotion of the emotion and speaker matrices (``emo_num``), 73 in all: the
#: matrices split into the :data:`EMOTIONS` groups in this order.
EMO_NUM: tuple[int, ...] = (3, 17, 2, 8, 4, 5, 10, 24)


def most_similar_cosine(query: mx.array, matrix: mx.array) -> int:
    """Row of ``matrix (n, d)`` with the largest cosine similarity to ``query (d,)`` or
    ``(1, d)`` (first one on ties, as ``torch.argmax``)."""
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    m = np.asarray(matrix, dtype=np.float32)
    if m.ndim != 2 or m.shape[1] != q.shape[0]:
        raise ValueError(f"query of {q.shape[0]} values against a matrix of shape {m.shape}")
    eps = np.float32(1e-8)  # torch.cosine_similarity clamps each norm at eps
    norms = np.maximum(np.linalg.norm(m, axis=1), eps) * max(np.linalg.norm(q), eps)
    return int(np.argmax((m @ q) / norms))


def select_rows(
    style: mx.array,
    speaker_groups: Sequence[mx.array],
    rng: np.random.Generator | None = None,
) -> list[int]:
    """One row index per emotion: by cosine similarity of ``style (1, 192)`` to each
    speaker group, or uniformly at random from ``rng`` (``use_random``)."""
    if rng is not None:
        return [int(rng.integers(0, g.shape[0])) for g in speaker_groups]
    return [most_similar_cosine(style, g) for g in speaker_groups]


def emotion_matrix_vector(
    weights: Sequence[float] | mx.array,
    style: mx.array,
    emotion_groups: Sequence[mx.array],
    speaker_groups: Sequence[mx.array],
    indices: Sequence[int] | None = None,
) -> mx.array:
    """``Σ_i weights[i] · emotion_groups[i][index_i]`` → ``(1, 1280)``.

    Args:
        weights: 8 emotion weights (already scaled by ``emo_alpha`` as the caller wants).
        style: ``(1, 192)`` CAMPPlus style of the speaker prompt.
        emotion_groups / speaker_groups: the 8 groups of each matrix
            (``indextts_weights.load_emotion_matrices``).
        indices: the row per emotion; None = :func:`select_rows` by cosine similarity.
    """
    w = mx.array(np.asarray(weights, dtype=np.float32).reshape(-1))
    if w.shape[0] != len(emotion_groups) or len(emotion_groups) != len(speaker_groups):
        raise ValueError(
            f"{w.shape[0]} weights for {len(emotion_groups)} emotion and "
            f"{len(speaker_groups)} speaker groups"
        )
    if indices is None:
        indices = select_rows(style, speaker_groups)
    rows = mx.stack([g[i] for g, i in zip(emotion_groups, indices, strict=True)])
    return mx.sum(w[:, None] * rows, axis=0, keepdims=True)


def blend_emotion_vector(
    emovec: mx.array, matrix_vector: mx.array, weights: Sequence[float] | mx.array
) -> mx.array:
    """``matrix_vector + (1 − Σ weights) · emovec`` → ``(1, 1280)``."""
    total = float(np.sum(np.asarray(weights, dtype=np.float32)))
    return matrix_vector + (1.0 - total) * emovec
