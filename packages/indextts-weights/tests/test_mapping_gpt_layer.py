"""``s2mel.pth`` ``net.gpt_layer`` → :class:`GPTLayer`: ``<i>.*`` → ``layers.<i>.*``, values
kept, strict about keys and shapes; the loaded module is the three Linears in a row."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from indextts_weights.errors import WeightsError
from indextts_weights.loading import expected_shapes, load_module
from indextts_weights.mapping.gpt_layer import SHAPES, sanitize_gpt_layer
from indextts_weights.npz import save_npz
from mlx_indextts_models.s2mel.model import GPTLayer


def official(seed: int = 0) -> dict[str, np.ndarray]:
    """``net.gpt_layer`` as in ``s2mel.pth`` (``docs/reference/keys/s2mel.txt``)."""
    rng = np.random.default_rng(seed)
    return {k: (0.05 * rng.standard_normal(s)).astype(np.float32) for k, s in SHAPES.items()}


def test_keys_are_renamed_and_values_kept():
    state = official()
    out = sanitize_gpt_layer(state)
    assert set(out) == {f"layers.{i}.{p}" for i in range(3) for p in ("weight", "bias")}
    for key, value in state.items():
        np.testing.assert_array_equal(out[f"layers.{key}"], value)
        assert out[f"layers.{key}"].dtype == np.float32
    assert out["layers.0.weight"].shape == (256, 1280)
    assert out["layers.2.weight"].shape == (1024, 128)


def test_fits_gpt_layer_and_computes_the_three_linears(tmp_path):
    state = official()
    out = sanitize_gpt_layer(state)
    assert {k: v.shape for k, v in out.items()} == expected_shapes(GPTLayer())
    path = save_npz(tmp_path / "gpt_layer.npz", out, model="gpt_layer")
    layer = load_module(GPTLayer(), path, model="gpt_layer")
    x = np.random.default_rng(1).standard_normal((2, 3, 1280)).astype(np.float32)
    expected = x
    for i in range(3):  # no activation in between
        expected = expected @ state[f"{i}.weight"].T + state[f"{i}.bias"]
    got = np.array(layer(mx.array(x)))
    assert got.shape == (2, 3, 1024)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_unknown_missing_and_misshaped_keys_are_all_named():
    state = official()
    del state["1.bias"]
    state["3.weight"] = np.zeros((4, 4), np.float32)
    state["0.weight"] = state["0.weight"].T  # (1280, 256)
    with pytest.raises(WeightsError) as info:
        sanitize_gpt_layer(state)
    message = str(info.value)
    assert "unexpected: 3.weight" in message
    assert "missing: 1.bias" in message
    assert r"0.weight (1280, 256) (expected (256, 1280))" in message


def test_prefixed_keys_are_refused():
    """The caller passes the ``gpt_layer`` sub-dict itself, not ``gpt_layer.``-prefixed keys."""
    state = {f"gpt_layer.{k}": v for k, v in official().items()}
    with pytest.raises(WeightsError, match=r"unexpected: gpt_layer\.0\.bias"):
        sanitize_gpt_layer(state)
