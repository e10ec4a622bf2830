"""W2V-BERT mapping on a hand-made state dict with the official names (tiny sizes)."""

from __future__ import annotations

import numpy as np
import pytest

from indextts_weights.errors import WeightsError
from indextts_weights.loading import expected_shapes
from indextts_weights.mapping.w2vbert import IGNORED_KEYS, sanitize
from indextts_weights.npz import check_state
from mlx_indextts_models.testing import tiny_w2vbert_args
from mlx_indextts_models.w2vbert import W2VBertModel

TINY = tiny_w2vbert_args()  # 2 layers
D, FFN, FEAT = TINY.hidden_size, TINY.intermediate_size, TINY.feature_projection_input_dim
HEAD, K = D // TINY.num_attention_heads, TINY.conv_depthwise_kernel_size  # head size, kernel
POS = TINY.left_max_position_embeddings + TINY.right_max_position_embeddings + 1  # distances


def layer_shapes(i: int) -> dict[str, tuple[int, ...]]:
    p = f"encoder.layers.{i}."
    shapes = {}
    for ffn in ("ffn1", "ffn2"):
        shapes |= {
            f"{p}{ffn}_layer_norm.weight": (D,),
            f"{p}{ffn}_layer_norm.bias": (D,),
            f"{p}{ffn}.intermediate_dense.weight": (FFN, D),
            f"{p}{ffn}.intermediate_dense.bias": (FFN,),
            f"{p}{ffn}.output_dense.weight": (D, FFN),
            f"{p}{ffn}.output_dense.bias": (D,),
        }
    for name in ("self_attn_layer_norm", "final_layer_norm"):
        shapes |= {f"{p}{name}.weight": (D,), f"{p}{name}.bias": (D,)}
    for proj in "qkv":
        shapes |= {
            f"{p}self_attn.linear_{proj}.weight": (D, D),
            f"{p}self_attn.linear_{proj}.bias": (D,),
        }
    shapes |= {
        f"{p}self_attn.linear_out.weight": (D, D),
        f"{p}self_attn.linear_out.bias": (D,),
        f"{p}self_attn.distance_embedding.weight": (POS, HEAD),
        f"{p}conv_module.layer_norm.weight": (D,),
        f"{p}conv_module.layer_norm.bias": (D,),
        f"{p}conv_module.pointwise_conv1.weight": (2 * D, D, 1),
        f"{p}conv_module.depthwise_conv.weight": (D, 1, K),
        f"{p}conv_module.depthwise_layer_norm.weight": (D,),
        f"{p}conv_module.depthwise_layer_norm.bias": (D,),
        f"{p}conv_module.pointwise_conv2.weight": (D, D, 1),
    }
    return shapes


def official_state(num_layers: int = 3) -> dict[str, np.ndarray]:
    """Names and layouts of ``Wav2Vec2BertModel.state_dict()`` (no adapter)."""
    shapes = {
        "masked_spec_embed": (D,),
        "feature_projection.layer_norm.weight": (FEAT,),
        "feature_projection.layer_norm.bias": (FEAT,),
        "feature_projection.projection.weight": (D, FEAT),
        "feature_projection.projection.bias": (D,),
    }
    for i in range(num_layers):
        shapes |= layer_shapes(i)
    rng = np.random.default_rng(0)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


def test_ignored_keys_are_named():
    assert IGNORED_KEYS == ("masked_spec_embed",)


def test_drops_later_layers_and_the_spec_augment_vector():
    state = official_state(3)
    out = sanitize(state, num_layers=2)
    assert "masked_spec_embed" not in out
    assert not any(k.startswith("encoder.layers.2.") for k in out)
    assert len(state) == 5 + 3 * 32 and len(out) == 4 + 2 * 32  # 773 = 5 + 24 * 32 officially
    # Loads strictly into a 2-layer model.
    model = W2VBertModel(TINY)
    check_state(out, expected_shapes(model), source="synthetic")


def test_default_keeps_seventeen_layers():
    out = sanitize(official_state(24))
    layers = {int(k.split(".")[2]) for k in out if k.startswith("encoder.layers.")}
    assert layers == set(range(17))


def test_conv_weights_move_to_mlx_layout_and_the_rest_is_unchanged():
    state = official_state(1)
    out = sanitize(state, num_layers=1)
    p = "encoder.layers.0.conv_module."
    dw = state[p + "depthwise_conv.weight"]  # (out, in/groups, k) = (D, 1, K)
    assert out[p + "depthwise_conv.weight"].shape == (D, K, 1)
    assert out[p + "depthwise_conv.weight"][3, 4, 0] == dw[3, 0, 4]
    pw1 = state[p + "pointwise_conv1.weight"]
    assert out[p + "pointwise_conv1.weight"].shape == (2 * D, 1, D)
    assert out[p + "pointwise_conv1.weight"][11, 0, 5] == pw1[11, 5, 0]
    assert out[p + "pointwise_conv2.weight"].shape == (D, 1, D)
    for key in (
        "feature_projection.projection.weight",
        "encoder.layers.0.self_attn.linear_q.weight",
    ):
        np.testing.assert_array_equal(out[key], state[key])
    np.testing.assert_array_equal(
        out["encoder.layers.0.self_attn.distance_embedding.weight"],
        state["encoder.layers.0.self_attn.distance_embedding.weight"],
    )


def test_unknown_key_is_an_error():
    state = official_state(2)
    state["encoder.layers.0.self_attn.linear_pos.weight"] = np.zeros((D, D), np.float32)
    with pytest.raises(WeightsError, match="linear_pos"):
        sanitize(state, num_layers=2)
    adapter = official_state(2) | {
        "adapter.layers.0.ffn.output_dense.bias": np.zeros(D, np.float32)
    }
    with pytest.raises(WeightsError, match="adapter"):
        sanitize(adapter, num_layers=2)


def test_missing_layer_is_an_error():
    with pytest.raises(WeightsError, match=r"\[2\]"):
        sanitize(official_state(2), num_layers=3)
