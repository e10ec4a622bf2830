"""Perceiver resampler on tiny configs: hand-computed RMSNorm/GEGLU values, masking, and
an independent float64 numpy implementation of the reference's forward pass."""

from __future__ import annotations

import math

from mlx_indextts_models.perceiver import (  # first: it loads the fast BLAS before MLX
    GEGLU,
    PerceiverArgs,
    PerceiverResampler,
    RMSNorm,
)
from mlx_indextts_models.testing import tiny_perceiver_args

# isort: split

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

TINY = tiny_perceiver_args()


def randomized(args: PerceiverArgs = TINY, seed: int = 0) -> PerceiverResampler:
    module = PerceiverResampler(args)
    rng = np.random.default_rng(seed)
    params = []
    for name, value in tree_flatten(module.parameters()):
        noise = rng.standard_normal(value.shape) * 0.4 + (1.0 if name == "norm.gamma" else 0.0)
        params.append((name, mx.array(noise.astype(np.float32))))
    module.load_weights(params, strict=True)
    return module


def np_gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def np_perceiver(module: PerceiverResampler, context: np.ndarray, mask=None) -> np.ndarray:
    """One sequence ``context (T, dim_context)`` → ``(num_latents, dim)`` in float64."""
    p = {k: np.array(v, np.float64) for k, v in tree_flatten(module.parameters())}
    args = module.args
    x = context @ p["proj_context.weight"].T + p["proj_context.bias"]
    latents = p["latents"]
    for n in range(args.depth):
        pre = f"layers.{n}"
        kv_in = np.concatenate([latents, x])
        q = latents @ p[f"{pre}.0.to_q.weight"].T
        kv = kv_in @ p[f"{pre}.0.to_kv.weight"].T
        inner = args.heads * args.dim_head
        k, v = kv[:, :inner], kv[:, inner:]
        out = np.zeros((len(latents), inner))
        for h in range(args.heads):
            cols = slice(h * args.dim_head, (h + 1) * args.dim_head)
            sim = q[:, cols] @ k[:, cols].T / math.sqrt(args.dim_head)
            if mask is not None:
                sim[:, ~mask] = -np.finfo(np.float32).max
            e = np.exp(sim - sim.max(-1, keepdims=True))
            out[:, cols] = (e / e.sum(-1, keepdims=True)) @ v[:, cols]
        latents = out @ p[f"{pre}.0.to_out.weight"].T + latents
        h = latents @ p[f"{pre}.1.0.weight"].T + p[f"{pre}.1.0.bias"]
        half = h.shape[-1] // 2
        h = h[:, :half] * np_gelu(h[:, half:])
        latents = h @ p[f"{pre}.1.2.weight"].T + p[f"{pre}.1.2.bias"] + latents
    norm = np.linalg.norm(latents, axis=-1, keepdims=True)
    return latents / norm * math.sqrt(args.dim) * p["norm.gamma"]


def test_feed_forward_width():
    assert PerceiverArgs(dim=1280, ff_mult=2).ff_inner == 1706
    assert PerceiverArgs(dim=1024, ff_mult=2).ff_inner == 1365
    assert TINY.ff_inner == 16


def test_rms_norm_hand_values():
    norm = RMSNorm(4)
    norm.gamma = mx.array([1.0, 2.0, 1.0, 1.0])
    out = np.array(norm(mx.array([[3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])))
    # x / ‖x‖ · sqrt(4) · gamma; a zero row stays 0 (norm clamped at 1e-12)
    np.testing.assert_allclose(out, [[1.2, 3.2, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], rtol=1e-6)


def test_geglu_gates_the_first_half_with_gelu_of_the_second():
    out = np.array(GEGLU()(mx.array([[2.0, 3.0, 1.0, -1.0]])))
    expected = [2.0 * np_gelu(1.0), 3.0 * np_gelu(-1.0)]
    np.testing.assert_allclose(out[0], expected, rtol=1e-5)


def test_matches_numpy_reference():
    module = randomized()
    context = np.random.default_rng(1).standard_normal((2, 7, 8)).astype(np.float32)
    out = np.array(module(mx.array(context)))
    assert out.shape == (2, 3, 12)
    for b in range(2):
        np.testing.assert_allclose(out[b], np_perceiver(module, context[b]), atol=2e-5)


def test_mask_hides_masked_context_frames():
    """The mask covers [latents; context] (the caller prepends num_latents Trues). Masked
    frames get weight exactly 0, so masking the last frames equals dropping them."""
    module = randomized(seed=2)
    context = np.random.default_rng(3).standard_normal((1, 9, 8)).astype(np.float32)
    mask = np.array([[True] * 3 + [True] * 6 + [False] * 3])
    masked = np.array(module(mx.array(context), mx.array(mask)))
    dropped = np.array(module(mx.array(context[:, :6])))
    np.testing.assert_allclose(masked, dropped, atol=1e-6)
    np.testing.assert_allclose(masked[0], np_perceiver(module, context[0], mask[0]), atol=2e-5)
    assert np.abs(masked - np.array(module(mx.array(context)))).max() > 1e-3


def test_parameter_names_mirror_the_official_keys():
    shapes = {k: v.shape for k, v in tree_flatten(PerceiverResampler(TINY).parameters())}
    assert shapes == {
        "proj_context.weight": (12, 8),
        "proj_context.bias": (12,),
        "latents": (3, 12),
        **{
            key.format(n): shape
            for n in range(2)
            for key, shape in (
                ("layers.{}.0.to_q.weight", (8, 12)),
                ("layers.{}.0.to_kv.weight", (16, 12)),
                ("layers.{}.0.to_out.weight", (12, 8)),
                ("layers.{}.1.0.weight", (32, 12)),
                ("layers.{}.1.0.bias", (32,)),
                ("layers.{}.1.2.weight", (12, 16)),
                ("layers.{}.1.2.bias", (12,)),
            )
        },
        "norm.gamma": (12,),
    }


@pytest.mark.parametrize("dim_context", [None, 12])
def test_no_context_projection_when_dims_agree(dim_context):
    """Upstream uses ``nn.Identity`` (no parameters) when ``dim_context == dim``."""
    module = PerceiverResampler(PerceiverArgs(dim=12, dim_context=dim_context, num_latents=2))
    names = {k for k, _ in tree_flatten(module.parameters())}
    assert not any(k.startswith("proj_context") for k in names)
    assert module(mx.zeros((1, 5, 12))).shape == (1, 2, 12)
