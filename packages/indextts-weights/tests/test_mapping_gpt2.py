"""GPT-2 mapping: ``Conv1D`` weights transposed to ``(out, in)``, names kept, the top-level
tables and heads carried over, other models' keys skipped, anything unknown refused."""

from __future__ import annotations

from dataclasses import replace

import mlx.core as mx
import numpy as np
import pytest

from indextts_weights.errors import WeightsError
from indextts_weights.loading import load_module
from indextts_weights.mapping.gpt2 import IGNORED, TOP_LEVEL, owns, sanitize_gpt2
from indextts_weights.npz import save_npz
from mlx_indextts_models.gpt2 import GPT2Args, GPT2Model
from mlx_indextts_models.testing import tiny_gpt2_args

# width 8 (inner 32) and 2 layers: the shapes and keys written out below
TINY = replace(tiny_gpt2_args(), n_embd=8, n_layer=2, n_head=2)


def _arange(*shape: int, start: float = 0.0) -> np.ndarray:
    return (start + np.arange(np.prod(shape), dtype=np.float32)).reshape(shape)


def official_gpt(args: GPT2Args = TINY) -> dict[str, np.ndarray]:
    """``gpt.pth`` keys (real names, tiny shapes), HF ``Conv1D`` weights ``(in, out)``."""
    e, inner = args.n_embd, args.inner_dim
    state = {}
    for i in range(args.n_layer):
        p = f"gpt.h.{i}"
        state |= {
            f"{p}.ln_1.weight": _arange(e, start=i),
            f"{p}.ln_1.bias": _arange(e, start=i + 0.5),
            f"{p}.attn.c_attn.weight": _arange(e, 3 * e, start=i),
            f"{p}.attn.c_attn.bias": _arange(3 * e),
            f"{p}.attn.c_proj.weight": _arange(e, e, start=i),
            f"{p}.attn.c_proj.bias": _arange(e),
            f"{p}.ln_2.weight": _arange(e),
            f"{p}.ln_2.bias": _arange(e),
            f"{p}.mlp.c_fc.weight": _arange(e, inner, start=i),
            f"{p}.mlp.c_fc.bias": _arange(inner),
            f"{p}.mlp.c_proj.weight": _arange(inner, e, start=i),
            f"{p}.mlp.c_proj.bias": _arange(e),
        }
    state["gpt.ln_f.weight"] = _arange(e)
    state["gpt.ln_f.bias"] = _arange(e)
    return state


def top_level() -> dict[str, np.ndarray]:
    return {
        "final_norm.weight": _arange(8),
        "final_norm.bias": _arange(8),
        "mel_head.weight": _arange(10, 8),
        "mel_head.bias": _arange(10),
        "text_head.weight": _arange(6, 8),
        "text_head.bias": _arange(6),
        "mel_embedding.weight": _arange(10, 8),
        "text_embedding.weight": _arange(6, 8),
        "mel_pos_embedding.emb.weight": _arange(12, 8),
        "text_pos_embedding.emb.weight": _arange(5, 8),
    }


def test_conv1d_weights_are_transposed_and_the_rest_kept():
    state = official_gpt() | top_level()
    out = sanitize_gpt2(state)
    assert set(out) == set(state)
    for key in (
        "gpt.h.1.attn.c_attn.weight",
        "gpt.h.0.attn.c_proj.weight",
        "gpt.h.1.mlp.c_fc.weight",
    ):
        np.testing.assert_array_equal(out[key], state[key].T)
        assert out[key].flags["C_CONTIGUOUS"]
    assert out["gpt.h.0.mlp.c_proj.weight"].shape == (8, 32)
    for key in ("gpt.h.1.ln_1.bias", "gpt.h.0.attn.c_attn.bias", "gpt.ln_f.weight", *TOP_LEVEL):
        np.testing.assert_array_equal(out[key], state[key])
    assert all(v.dtype == np.float32 for v in out.values())


def test_other_models_keys_are_skipped_and_ignored_keys_dropped():
    state = official_gpt() | top_level()
    others = {
        "conditioning_encoder.embed.out.0.weight": _arange(4, 4),
        "perceiver_encoder.latents": _arange(2, 4),
        "emo_layer.weight": _arange(4, 4),
        "speed_emb.weight": _arange(2, 8),
    }
    ignored = {
        "gpt.h.0.attn.bias": np.ones((1, 1, 4, 4), dtype=bool),
        "gpt.h.1.attn.masked_bias": np.array(-1e4, dtype=np.float32),
        "gpt.wte.weight": _arange(10, 8),
    }
    out = sanitize_gpt2(state | others | ignored)
    assert set(out) == set(state)
    assert all(IGNORED.fullmatch(k) for k in ignored)
    assert not any(owns(k) for k in others) and all(owns(k) for k in state)


def test_unknown_gpt_keys_and_wrong_ranks_are_refused():
    state = official_gpt()
    with pytest.raises(WeightsError, match=r"gpt\.h\.0\.attn\.q_attn\.weight"):
        sanitize_gpt2(state | {"gpt.h.0.attn.q_attn.weight": _arange(8, 8)})
    with pytest.raises(WeightsError, match=r"gpt\.wpe\.weight"):
        sanitize_gpt2(state | {"gpt.wpe.weight": _arange(16, 8)})
    bad = dict(state)
    bad["gpt.h.0.attn.c_attn.weight"] = _arange(8 * 24)
    with pytest.raises(WeightsError, match="expected 2-D"):
        sanitize_gpt2(bad)
    with pytest.raises(WeightsError, match="expected 2-D"):
        sanitize_gpt2(state | top_level() | {"mel_head.weight": _arange(80)})


def test_the_stack_loads_strictly_and_applies_x_at_w_transposed(tmp_path):
    """Names line up with :class:`GPT2Model` under ``gpt.``, and a ``Conv1D`` weight
    ``W (in, out)`` acts as ``x @ W`` after the conversion."""
    state = official_gpt()
    rng = np.random.default_rng(0)
    state = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in state.items()}
    out = sanitize_gpt2(state)
    stack = {k.removeprefix("gpt."): v for k, v in out.items()}
    path = save_npz(tmp_path / "gpt2.npz", stack, model="gpt2")
    model = load_module(GPT2Model(TINY), path, model="gpt2")
    x = rng.standard_normal((3, TINY.n_embd)).astype(np.float32)
    got = np.array(model.h[0].attn.c_attn(mx.array(x)))
    w, b = state["gpt.h.0.attn.c_attn.weight"], state["gpt.h.0.attn.c_attn.bias"]
    np.testing.assert_allclose(got, x @ w + b, rtol=1e-5, atol=1e-5)
    del stack["h.1.mlp.c_fc.bias"]
    save_npz(path, stack, model="gpt2")
    with pytest.raises(WeightsError, match=r"h\.1\.mlp\.c_fc\.bias"):
        load_module(GPT2Model(TINY), path, model="gpt2")
