"""``s2mel.pth`` ``net.cfm`` → ``CFM``: weight norms folded (biases kept), conv kernels to
MLX layout, unused parameters and recomputed buffers dropped by name, unknown / missing /
wrong-rank keys and foreign timestep frequencies named; loads strictly into a tiny CFM."""

from __future__ import annotations

import mlx_indextts_models  # noqa: F401  (first: fast BLAS before MLX)

# isort: split

import math

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from indextts_weights.errors import WeightsError
from indextts_weights.mapping.s2mel_cfm import (
    IGNORED,
    RECOMPUTED,
    expected_keys,
    ignored_keys,
    sanitize_cfm,
)
from mlx_indextts_models.s2mel.cfm import CFM
from mlx_indextts_models.s2mel.dit import DiT
from mlx_indextts_models.testing import tiny_dit_args, tiny_wavenet_args

TINY_DIT, TINY_WN = tiny_dit_args(), tiny_wavenet_args()
DEPTH, LAYERS, H, C = TINY_DIT.depth, TINY_WN.num_layers, TINY_DIT.hidden_dim, TINY_DIT.in_channels


def official_state(seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny ``net['cfm']`` with the official names and PyTorch layouts."""
    rng = np.random.default_rng(seed)
    model = CFM(DiT(TINY_DIT, TINY_WN, style_dim=6))
    state: dict[str, np.ndarray] = {}
    for key, value in tree_flatten(model.parameters()):
        shape = value.shape
        if ".wavenet." in key and key.endswith(".weight"):
            base = key[: -len(".weight")]
            out, k, cin = shape
            state[base + ".weight_v"] = rng.standard_normal((out, cin, k)).astype(np.float32)
            state[base + ".weight_g"] = rng.uniform(0.5, 2, (out, 1, 1)).astype(np.float32)
        elif key == "estimator.final_layer.linear.weight":
            base = key[: -len(".weight")]
            state[base + ".weight_v"] = rng.standard_normal(shape).astype(np.float32)
            state[base + ".weight_g"] = rng.uniform(0.5, 2, (shape[0], 1)).astype(np.float32)
        elif key == "estimator.conv2.weight":
            state[key] = rng.standard_normal((shape[0], shape[2], shape[1])).astype(np.float32)
        else:
            state[key] = rng.standard_normal(shape).astype(np.float32)
    state["estimator.x_embedder.weight_v"] = rng.standard_normal((H, C)).astype(np.float32)
    state["estimator.x_embedder.weight_g"] = np.ones((H, 1), np.float32)
    state["estimator.x_embedder.bias"] = np.zeros(H, np.float32)
    state["estimator.cond_embedder.weight"] = np.zeros((1024, H), np.float32)
    state["estimator.content_mask_embedder.weight"] = np.zeros((1, H), np.float32)
    for i in range(DEPTH // 2 + 1):
        state[f"estimator.transformer.layers.{i}.skip_in_linear.weight"] = np.zeros((H, 2 * H))
        state[f"estimator.transformer.layers.{i}.skip_in_linear.bias"] = np.zeros(H)
    state["estimator.input_pos"] = np.arange(16384)
    freqs = np.exp(-math.log(10000) * np.arange(128, dtype=np.float32) / 128).astype(np.float32)
    state["estimator.t_embedder.freqs"] = freqs
    state["estimator.t_embedder2.freqs"] = freqs.copy()
    return state


def sanitize(state):
    return sanitize_cfm(state, depth=DEPTH, wavenet_layers=LAYERS)


def test_full_size_key_lists():
    """IndexTTS-2: the 256 keys of ``net['cfm']`` (docs/reference/keys/s2mel.txt) = 234 used
    + 19 ignored (x_embedder ×3, cond_embedder, content_mask_embedder, 7 × 2 unused
    skip_in_linear) + 3 buffers (input_pos, t_embedder{,2}.freqs)."""
    used = expected_keys()
    assert len(used) == 234
    assert len(IGNORED) == 5 + 2 * 7 == len(ignored_keys(13))
    assert len(used) + len(IGNORED) + 3 == 256  # + input_pos, t_embedder{,2}.freqs
    assert sum(k.endswith(".weight_g") for k in used) == 18  # + x_embedder's (ignored)
    assert used["estimator.wavenet.in_layers.7.conv.conv.weight_v"] == 3
    assert "estimator.transformer.layers.6.skip_in_linear.weight" in IGNORED
    assert "estimator.transformer.layers.7.skip_in_linear.weight" in used
    assert "estimator.input_pos" in RECOMPUTED


def test_weight_norm_folded_with_bias_and_conv_layout():
    state = official_state()
    out = sanitize(state)
    conv = "estimator.wavenet.in_layers.1.conv.conv"
    g, v = (
        state[conv + ".weight_g"].astype(np.float64),
        state[conv + ".weight_v"].astype(np.float64),
    )
    expected = g * v / np.sqrt((v**2).sum(axis=(1, 2), keepdims=True))
    np.testing.assert_allclose(out[conv + ".weight"], expected.transpose(0, 2, 1), rtol=1e-6)
    assert out[conv + ".weight"].shape == (2 * H, 5, H)
    np.testing.assert_array_equal(out[conv + ".bias"], state[conv + ".bias"])  # bias kept
    lin = "estimator.final_layer.linear"
    v = state[lin + ".weight_v"].astype(np.float64)
    expected = state[lin + ".weight_g"] * v / np.linalg.norm(v, axis=1, keepdims=True)
    np.testing.assert_allclose(out[lin + ".weight"], expected, rtol=1e-6)
    np.testing.assert_array_equal(out[lin + ".bias"], state[lin + ".bias"])
    np.testing.assert_array_equal(
        out["estimator.conv2.weight"], state["estimator.conv2.weight"].transpose(0, 2, 1)
    )
    np.testing.assert_array_equal(
        out["estimator.cond_x_merge_linear.weight"], state["estimator.cond_x_merge_linear.weight"]
    )
    assert all(v.dtype == np.float32 for v in out.values())
    assert not any(k.endswith(("weight_g", "weight_v")) for k in out)


def test_loads_strictly_into_the_model():
    out = sanitize(official_state())
    model = CFM(DiT(TINY_DIT, TINY_WN, style_dim=6))
    model.load_weights([(k, mx.array(v)) for k, v in out.items()], strict=True)
    state = official_state()
    assert set(state) - set(expected_keys(DEPTH, LAYERS)) == set(ignored_keys(DEPTH)) | {
        "estimator.input_pos",
        "estimator.t_embedder.freqs",
        "estimator.t_embedder2.freqs",
    }


def test_buffers_may_be_absent():
    state = official_state()
    for key in ("estimator.input_pos", "estimator.t_embedder.freqs", "estimator.t_embedder2.freqs"):
        del state[key]
    state["estimator.transformer.freqs_cis"] = np.zeros((16384, 4, 2), np.float32)
    assert set(sanitize(state)) == set(sanitize(official_state()))


def test_unknown_missing_and_wrong_rank_keys_are_named():
    state = official_state()
    del state["estimator.conv1.bias"]
    state["estimator.wavenet.in_layers.2.conv.conv.bias"] = np.zeros(2 * H, np.float32)
    state["estimator.transformer.layers.3.attention.wo.weight"] = np.zeros((H, H))
    state["estimator.conv2.weight"] = state["estimator.conv2.weight"][..., 0]
    with pytest.raises(WeightsError) as err:
        sanitize(state)
    message = str(err.value)
    assert (
        "unexpected: estimator.transformer.layers.3.attention.wo.weight, "
        "estimator.wavenet.in_layers.2.conv.conv.bias; " in message
    )
    assert "missing: estimator.conv1.bias" in message
    assert "wrong rank: estimator.conv2.weight (4, 16) (expected 3-D)" in message


def test_foreign_timestep_frequencies_are_refused():
    state = official_state()
    state["estimator.t_embedder2.freqs"] = state["estimator.t_embedder2.freqs"] * 1.01
    with pytest.raises(WeightsError, match=r"timestep frequencies.*t_embedder2\.freqs"):
        sanitize(state)
