"""GPT conditioning (``UnifiedVoice`` speaker latents, emotion vectors, prefix) on a tiny
config: the prefix layout, the emovec blend, the reference's "length = 1024" masking."""

from __future__ import annotations

from mlx_indextts_models.gpt_conditioning import (  # first: it loads the fast BLAS before MLX
    REFERENCE_LENGTH,
    GPTConditioning,
    GPTConditioningArgs,
)

# isort: split

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_indextts_models.testing import tiny_gpt_conditioning_args

TINY = tiny_gpt_conditioning_args()


@pytest.fixture(scope="module")
def model() -> GPTConditioning:
    module = GPTConditioning(TINY)
    rng = np.random.default_rng(0)
    params = [
        (name, mx.array((rng.standard_normal(v.shape) * 0.4).astype(np.float32)))
        for name, v in tree_flatten(module.parameters())
    ]
    module.load_weights(params, strict=True)
    return module


def features(length: int, seed: int) -> mx.array:
    rng = np.random.default_rng(seed)
    return mx.array(rng.standard_normal((1, length, 9)).astype(np.float32))


def test_attribute_names_are_unified_voices():
    top = {k.split(".", 1)[0] for k, _ in tree_flatten(GPTConditioning(TINY).parameters())}
    assert top == {
        "conditioning_encoder", "perceiver_encoder", "emo_conditioning_encoder",
        "emo_perceiver_encoder", "emo_layer", "emovec_layer", "speed_emb",
    }  # fmt: skip


def test_real_config_sizes():
    common = {"input_layer": "conv2d2", "perceiver_mult": 2}
    args = GPTConditioningArgs.from_config(
        {
            "model_dim": 1280,
            "layers": 24,
            "condition_type": "conformer_perceiver",
            "condition_module": {**common, "output_size": 512, "attention_heads": 8},
            "emo_condition_module": {**common, "output_size": 512, "attention_heads": 4},
        }
    )
    p, e = args.perceiver, args.emo_perceiver
    assert (p.dim, p.context_dim, p.heads, p.dim_head, p.num_latents, p.ff_inner) == (
        1280,
        512,
        8,
        64,
        32,
        1706,
    )
    assert (e.dim, e.context_dim, e.heads, e.num_latents, e.ff_inner) == (1024, 512, 4, 1, 1365)
    with pytest.raises(ValueError, match="conformer_perceiver"):
        GPTConditioningArgs(condition_type="perceiver")


def test_shapes(model):
    x = features(20, 1)
    assert model.get_conditioning(x).shape == (1, 3, 12)
    assert model.get_emo_conditioning(x).shape == (1, 10)
    assert model.get_emovec(x).shape == (1, 12)


def test_emovec_is_the_two_layers_over_the_emotion_latent(model):
    x = features(17, 2)
    latent = model.get_emo_conditioning(x)
    expected = model.emo_layer(model.emovec_layer(latent))
    np.testing.assert_array_equal(np.array(model.get_emovec(x)), np.array(expected))


@pytest.mark.parametrize("alpha", [1.0, 0.6, 0.0])
def test_merge_emovec_blends_base_towards_emotion(model, alpha):
    spk, emo = features(21, 3), features(15, 4)
    base, target = np.array(model.get_emovec(spk)), np.array(model.get_emovec(emo))
    merged = np.array(model.merge_emovec(spk, emo, alpha))
    np.testing.assert_allclose(merged, base + alpha * (target - base), atol=1e-6)
    assert np.abs(base - target).max() > 1e-2  # the blend is visible


def test_conditioning_prefix_layout(model):
    latent = mx.array(np.arange(2 * 3 * 12, dtype=np.float32).reshape(2, 3, 12))
    emovec = mx.array(np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 12))
    speed = np.array(model.speed_emb.weight)
    for scale in (1.0, 0.5):
        prefix = np.array(model.conditioning_prefix(latent, emovec, emotion_scale=scale))
        assert prefix.shape == (2, 5, 12)
        np.testing.assert_allclose(
            prefix[:, :3], np.array(latent) + scale * np.array(emovec)[:, None], rtol=1e-6
        )
        # then speed_emb[1] (the reference's duration_emb_half), then speed_emb[0]
        np.testing.assert_array_equal(prefix[:, 3], np.broadcast_to(speed[1], (2, 12)))
        np.testing.assert_array_equal(prefix[:, 4], np.broadcast_to(speed[0], (2, 12)))


def test_default_lengths_are_the_references_1024(model):
    """infer_v2 passes 1024 (the feature size) as every length: frames from 1024 on are
    masked, earlier ones never are. ``lengths=None`` reproduces that."""
    assert REFERENCE_LENGTH == 1024
    long = features(1030, 5)
    default = np.array(model.get_conditioning(long))
    np.testing.assert_array_equal(default, np.array(model.get_conditioning(long, [1024])))
    assert np.abs(default - np.array(model.get_conditioning(long, [1030]))).max() > 1e-4
    short = features(40, 6)
    np.testing.assert_array_equal(
        np.array(model.get_emovec(short)), np.array(model.get_emovec(short, [40]))
    )
