"""Layout transforms and weight-norm folding, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from indextts_weights.layout import (
    conv1d_weight,
    conv2d_weight,
    conv_transpose1d_weight,
    fold_all_weight_norms,
    fold_weight_norm,
)


def test_conv1d_layout_moves_the_kernel_axis():
    w = np.arange(2 * 3 * 4).reshape(2, 3, 4)  # (out, in, k)
    out = conv1d_weight(w)
    assert out.shape == (2, 4, 3)
    assert out[1, 2, 0] == w[1, 0, 2]


def test_conv2d_and_transpose_layouts():
    w = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    assert conv2d_weight(w)[1, 3, 4, 2] == w[1, 2, 3, 4]
    t = np.arange(3 * 2 * 4).reshape(3, 2, 4)  # (in, out, k)
    assert conv_transpose1d_weight(t).shape == (2, 4, 3)
    assert conv_transpose1d_weight(t)[1, 3, 2] == t[2, 1, 3]
    with pytest.raises(ValueError):
        conv1d_weight(np.zeros((2, 3)))


def test_fold_weight_norm_hand_computed():
    v = np.array([[[3.0], [4.0]], [[0.0], [2.0]]])  # (out=2, in=2, k=1); norms 5 and 2
    g = np.array([[[10.0]], [[1.0]]])
    w = fold_weight_norm(g, v)
    np.testing.assert_allclose(w[:, :, 0], [[6.0, 8.0], [0.0, 1.0]])


def test_fold_all_keeps_biases_and_other_keys():
    state = {
        "conv.weight_g": np.ones((2, 1, 1)),
        "conv.weight_v": np.full((2, 3, 1), 2.0),
        "conv.bias": np.array([0.5, -0.5]),
        "norm.weight": np.ones(3),
    }
    out = fold_all_weight_norms(state)
    assert set(out) == {"conv.weight", "conv.bias", "norm.weight"}
    np.testing.assert_allclose(out["conv.weight"], np.full((2, 3, 1), 1 / np.sqrt(3)))
    np.testing.assert_array_equal(out["conv.bias"], [0.5, -0.5])
    with pytest.raises(ValueError, match="weight_v"):
        fold_all_weight_norms({"a.weight_g": np.ones(1)})
