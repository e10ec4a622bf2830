"""Semantic codec mapping on a hand-made state dict with the official names (tiny sizes)."""

from __future__ import annotations

import numpy as np
import pytest

from indextts_weights.errors import WeightsError
from indextts_weights.loading import expected_shapes
from indextts_weights.mapping.semantic_codec import is_ignored, sanitize
from indextts_weights.npz import check_state
from mlx_indextts_models.semantic_codec import RepCodec
from mlx_indextts_models.testing import tiny_semantic_codec_args

TINY = tiny_semantic_codec_args()


def backbone_keys(prefix: str) -> dict[str, tuple[int, ...]]:
    """A VocosBackbone + Linear in PyTorch layouts (Conv1d weights ``(out, in, k)``)."""
    keys = {
        f"{prefix}.0.embed.weight": (4, 6, 7),
        f"{prefix}.0.embed.bias": (4,),
        f"{prefix}.0.norm.weight": (4,),
        f"{prefix}.0.norm.bias": (4,),
        f"{prefix}.0.final_layer_norm.weight": (4,),
        f"{prefix}.0.final_layer_norm.bias": (4,),
        f"{prefix}.1.weight": (6, 4),
        f"{prefix}.1.bias": (6,),
    }
    for n in range(2):
        block = f"{prefix}.0.convnext.{n}."
        keys |= {
            block + "gamma": (4,),
            block + "dwconv.weight": (4, 1, 7),
            block + "dwconv.bias": (4,),
            block + "norm.weight": (4,),
            block + "norm.bias": (4,),
            block + "pwconv1.weight": (8, 4),
            block + "pwconv1.bias": (8,),
            block + "pwconv2.weight": (4, 8),
            block + "pwconv2.bias": (4,),
        }
    return keys


def official_state() -> dict[str, np.ndarray]:
    """Tiny RepCodec state dict with the official names: encoder, decoder, weight-normed VQ."""
    shapes = backbone_keys("encoder") | backbone_keys("decoder")
    shapes |= {
        "quantizer.quantizers.0.in_project.bias": (2,),
        "quantizer.quantizers.0.in_project.weight_g": (2, 1, 1),
        "quantizer.quantizers.0.in_project.weight_v": (2, 6, 1),
        "quantizer.quantizers.0.out_project.bias": (6,),
        "quantizer.quantizers.0.out_project.weight_g": (6, 1, 1),
        "quantizer.quantizers.0.out_project.weight_v": (6, 2, 1),
        "quantizer.quantizers.0.codebook.weight": (5, 2),
    }
    rng = np.random.default_rng(0)
    state = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    # Hand-checkable weight norm on in_project: rows v = [3, 4, 0, ...], [0, ..., 0, 1, 0]
    # and [0, ..., 2] have norms 5 and 2; g = [10, -1] → w rows [6, 8, 0, ...], [0, ..., -1].
    v = np.zeros((2, 6, 1), np.float32)
    v[0, 0, 0], v[0, 1, 0], v[1, 5, 0] = 3.0, 4.0, 2.0
    state["quantizer.quantizers.0.in_project.weight_v"] = v
    state["quantizer.quantizers.0.in_project.weight_g"] = np.array(
        [10.0, -1.0], np.float32
    ).reshape(2, 1, 1)
    return state


def test_sanitize_folds_weight_norm_and_keeps_the_bias():
    state = official_state()
    out = sanitize(state)
    w = out["quantizer.quantizers.0.in_project.weight"]
    assert w.shape == (2, 1, 6) and w.dtype == np.float32  # MLX (out, k, in)
    np.testing.assert_array_equal(w[:, 0], [[6, 8, 0, 0, 0, 0], [0, 0, 0, 0, 0, -1]])
    np.testing.assert_array_equal(
        out["quantizer.quantizers.0.in_project.bias"],
        state["quantizer.quantizers.0.in_project.bias"],
    )
    assert not any(k.endswith(("weight_g", "weight_v")) for k in out)
    # out_project: every output row has norm |g|.
    g = state["quantizer.quantizers.0.out_project.weight_g"].reshape(6)
    norms = np.linalg.norm(out["quantizer.quantizers.0.out_project.weight"][:, 0], axis=1)
    np.testing.assert_allclose(norms, np.abs(g), rtol=1e-6)


def test_sanitize_converts_conv_layouts_and_keeps_the_rest():
    state = official_state()
    out = sanitize(state)
    embed = state["encoder.0.embed.weight"]  # (out, in, k)
    assert out["encoder.0.embed.weight"].shape == (4, 7, 6)
    assert out["encoder.0.embed.weight"][3, 5, 2] == embed[3, 2, 5]
    dw = state["encoder.0.convnext.1.dwconv.weight"]
    np.testing.assert_array_equal(out["encoder.0.convnext.1.dwconv.weight"][:, :, 0], dw[:, 0])
    for key in ("encoder.0.convnext.0.pwconv1.weight", "encoder.1.weight", "encoder.0.norm.bias"):
        np.testing.assert_array_equal(out[key], state[key])  # Linear keeps (out, in)
    np.testing.assert_array_equal(
        out["quantizer.quantizers.0.codebook.weight"],
        state["quantizer.quantizers.0.codebook.weight"],
    )


def test_sanitize_drops_the_decoder_by_name():
    state = official_state()
    out = sanitize(state)
    decoder = [k for k in state if k.startswith("decoder.")]
    assert len(decoder) == 26 and all(is_ignored(k) for k in decoder)
    assert not any(k.startswith("decoder.") for k in out)
    assert not any(is_ignored(k) for k in state if not k.startswith("decoder."))


def test_sanitized_state_fits_the_model_exactly():
    check_state(sanitize(official_state()), expected_shapes(RepCodec(TINY)), source="tiny")


@pytest.mark.parametrize(
    "key",
    ["encoder.2.weight", "quantizer.quantizers.0.project.weight", "encoder.0.convnext.0.scale"],
)
def test_unexpected_keys_are_rejected(key, refused):
    refused(sanitize, official_state(), key, np.zeros(3, np.float32))


def test_weight_g_without_weight_v_is_rejected():
    state = official_state()
    del state["quantizer.quantizers.0.out_project.weight_v"]
    with pytest.raises(WeightsError, match="out_project"):
        sanitize(state)
