"""GPT conditioning mapping on hand-made state dicts with the official ``gpt.pth`` names
(tiny sizes with values; the real sizes as shapes only)."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest

from indextts_weights.errors import WeightsError
from indextts_weights.loading import expected_shapes
from indextts_weights.mapping.gpt_conditioning import (
    CONDITIONING_PREFIXES,
    IGNORED_KEYS,
    is_conditioning_key,
    sanitize_conditioning,
)
from indextts_weights.npz import check_state
from mlx_indextts_models.gpt_conditioning import GPTConditioning, GPTConditioningArgs
from mlx_indextts_models.testing import tiny_gpt_conditioning_args

TINY = tiny_gpt_conditioning_args()
#: Keys of the GPT-2 side of gpt.pth that this mapping must leave alone.
OTHER_KEYS = {
    "gpt.h.0.attn.c_attn.weight": (12, 36),
    "text_embedding.weight": (5, 12),
    "mel_pos_embedding.emb.weight": (4, 12),
    "final_norm.weight": (12,),
    "mel_head.bias": (7,),
}


def conformer_shapes(prefix: str, module: dict, idim: int) -> dict[str, tuple[int, ...]]:
    """A ``ConformerEncoder``'s official keys with PyTorch shapes."""
    d, units, heads = module["output_size"], module["linear_units"], module["attention_heads"]
    shapes = {
        f"{prefix}.embed.conv.0.weight": (d, 1, 3, 3),
        f"{prefix}.embed.conv.0.bias": (d,),
        f"{prefix}.embed.out.0.weight": (d, d * ((idim - 1) // 2)),
        f"{prefix}.embed.out.0.bias": (d,),
        f"{prefix}.embed.pos_enc.pe": (1, 5000, d),
        f"{prefix}.after_norm.weight": (d,),
        f"{prefix}.after_norm.bias": (d,),
    }
    for n in range(module["num_blocks"]):
        layer = f"{prefix}.encoders.{n}"
        shapes |= {
            f"{layer}.self_attn.pos_bias_u": (heads, d // heads),
            f"{layer}.self_attn.pos_bias_v": (heads, d // heads),
            f"{layer}.self_attn.linear_pos.weight": (d, d),
            f"{layer}.feed_forward.w_1.weight": (units, d),
            f"{layer}.feed_forward.w_1.bias": (units,),
            f"{layer}.feed_forward.w_2.weight": (d, units),
            f"{layer}.feed_forward.w_2.bias": (d,),
            f"{layer}.conv_module.pointwise_conv1.weight": (2 * d, d, 1),
            f"{layer}.conv_module.pointwise_conv1.bias": (2 * d,),
            f"{layer}.conv_module.depthwise_conv.weight": (d, 1, 15),
            f"{layer}.conv_module.depthwise_conv.bias": (d,),
            f"{layer}.conv_module.norm.weight": (d,),
            f"{layer}.conv_module.norm.bias": (d,),
            f"{layer}.conv_module.pointwise_conv2.weight": (d, d, 1),
            f"{layer}.conv_module.pointwise_conv2.bias": (d,),
        }
        for name in ("q", "k", "v", "out"):
            shapes |= {
                f"{layer}.self_attn.linear_{name}.weight": (d, d),
                f"{layer}.self_attn.linear_{name}.bias": (d,),
            }
        for name in ("ff", "mha", "conv", "final"):
            shapes |= {f"{layer}.norm_{name}.weight": (d,), f"{layer}.norm_{name}.bias": (d,)}
    return shapes


def perceiver_shapes(prefix: str, dim: int, ctx: int, heads: int, latents: int, mult: int):
    inner, ff = 64 * heads, int(dim * mult * 2 / 3)
    shapes = {
        f"{prefix}.latents": (latents, dim),
        f"{prefix}.proj_context.weight": (dim, ctx),
        f"{prefix}.proj_context.bias": (dim,),
        f"{prefix}.norm.gamma": (dim,),
    }
    for n in range(2):
        layer = f"{prefix}.layers.{n}"
        shapes |= {
            f"{layer}.0.to_q.weight": (inner, dim),
            f"{layer}.0.to_kv.weight": (2 * inner, dim),
            f"{layer}.0.to_out.weight": (dim, inner),
            f"{layer}.1.0.weight": (2 * ff, dim),
            f"{layer}.1.0.bias": (2 * ff,),
            f"{layer}.1.2.weight": (dim, ff),
            f"{layer}.1.2.bias": (dim,),
        }
    return shapes


def official_shapes(args: GPTConditioningArgs) -> dict[str, tuple[int, ...]]:
    """``UnifiedVoice``'s conditioning keys (``gpt.pth`` names, PyTorch layouts)."""
    spk, emo = asdict(args.condition_module), asdict(args.emo_condition_module)
    dim = args.model_dim
    return (
        conformer_shapes("conditioning_encoder", spk, args.feature_size)
        | perceiver_shapes(
            "perceiver_encoder",
            dim,
            spk["output_size"],
            spk["attention_heads"],
            args.condition_num_latent,
            spk["perceiver_mult"],
        )
        | conformer_shapes("emo_conditioning_encoder", emo, args.feature_size)
        | perceiver_shapes(
            "emo_perceiver_encoder",
            args.emo_dim,
            emo["output_size"],
            emo["attention_heads"],
            1,
            emo["perceiver_mult"],
        )
        | {
            "emo_layer.weight": (dim, dim),
            "emo_layer.bias": (dim,),
            "emovec_layer.weight": (dim, args.emo_dim),
            "emovec_layer.bias": (dim,),
            "speed_emb.weight": (2, dim),
        }
    )


def official_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


def tiny_state() -> dict[str, np.ndarray]:
    shapes = official_shapes(TINY)
    # the tiny model's depthwise kernel is the default 15: keep it
    return official_state(shapes | OTHER_KEYS)


def test_sanitized_state_fits_the_model_strictly():
    out = sanitize_conditioning(tiny_state())
    check_state(out, expected_shapes(GPTConditioning(TINY)), source="tiny gpt.pth")


def test_layouts():
    state = tiny_state()
    out = sanitize_conditioning(state)
    conv2d = "emo_conditioning_encoder.embed.conv.0.weight"
    np.testing.assert_array_equal(out[conv2d], state[conv2d].transpose(0, 2, 3, 1))
    assert out[conv2d].shape == (8, 3, 3, 1)
    for name in ("pointwise_conv1", "depthwise_conv", "pointwise_conv2"):
        key = f"conditioning_encoder.encoders.1.conv_module.{name}.weight"
        np.testing.assert_array_equal(out[key], state[key].transpose(0, 2, 1))
    assert out["conditioning_encoder.encoders.1.conv_module.depthwise_conv.weight"].shape == (
        8,
        15,
        1,
    )
    for key in (
        "conditioning_encoder.embed.out.0.weight",  # (channel, feature) column order kept
        "perceiver_encoder.layers.1.1.0.weight",
        "emo_perceiver_encoder.latents",
        "conditioning_encoder.encoders.0.self_attn.pos_bias_u",
        "speed_emb.weight",
    ):
        np.testing.assert_array_equal(out[key], state[key])


def test_position_tables_and_other_models_keys_are_left_out():
    out = sanitize_conditioning(tiny_state())
    assert not set(IGNORED_KEYS) & set(out)
    assert not set(OTHER_KEYS) & set(out)
    assert {k.split(".", 1)[0] for k in out} == set(CONDITIONING_PREFIXES)


@pytest.mark.parametrize(
    "key",
    [
        "conditioning_encoder.encoders.0.self_attn.linear_pos.bias",
        "perceiver_encoder.layers.0.1.1.weight",
        "emo_conditioning_encoder.embed.pos_enc.pe_extra",
        "speed_emb.bias",
        "emo_layer.weight_g",
    ],
)
def test_unknown_conditioning_key_is_an_error(key):
    state = tiny_state() | {key: np.zeros(3, np.float32)}
    with pytest.raises(WeightsError, match=key.replace(".", r"\.")):
        sanitize_conditioning(state)


def test_wrong_rank_conv_weight_is_an_error():
    state = tiny_state()
    key = "conditioning_encoder.encoders.0.conv_module.depthwise_conv.weight"
    state[key] = state[key][:, 0]
    with pytest.raises(WeightsError, match="depthwise_conv"):
        sanitize_conditioning(state)


def test_is_conditioning_key():
    assert is_conditioning_key("emo_conditioning_encoder.after_norm.bias")
    assert is_conditioning_key("speed_emb.weight")
    assert not is_conditioning_key("gpt.h.0.ln_1.weight")
    assert not is_conditioning_key("conditioning_encoder_extra.weight")


def test_real_size_keys_fit_the_real_model():
    """At IndexTTS-2's config (shapes only: zero-stride views, no memory): the 365 official
    conditioning keys (``docs/reference/keys/gpt.txt``) map onto the 363 parameters."""
    shapes = official_shapes(GPTConditioningArgs())
    assert len(shapes) == 365
    for key, shape in {
        "conditioning_encoder.embed.out.0.weight": (512, 261632),
        "conditioning_encoder.encoders.5.self_attn.pos_bias_v": (8, 64),
        "emo_conditioning_encoder.encoders.3.self_attn.pos_bias_u": (4, 128),
        "emo_conditioning_encoder.encoders.0.feed_forward.w_1.weight": (1024, 512),
        "perceiver_encoder.layers.0.1.0.weight": (3412, 1280),
        "perceiver_encoder.layers.0.0.to_kv.weight": (1024, 1280),
        "emo_perceiver_encoder.layers.1.1.2.weight": (1024, 1365),
        "emo_perceiver_encoder.layers.0.0.to_q.weight": (256, 1024),
        "emovec_layer.weight": (1280, 1024),
    }.items():
        assert shapes[key] == shape
    state = {k: np.broadcast_to(np.float32(0), s) for k, s in shapes.items()}
    out = sanitize_conditioning(state)
    expected = expected_shapes(GPTConditioning())
    assert len(expected) == len(out) == 363
    check_state(out, expected, source="real-size gpt.pth")
