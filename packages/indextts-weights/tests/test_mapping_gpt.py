"""The whole ``gpt.pth`` mapping: the conditioning and GPT-2 mappings together claim every
official key, nothing vanishes silently, unknown keys are all named, layouts land where the
MLX ``UnifiedVoice`` needs them (hand-checked values), and ``gpt.npz`` loads strictly."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from indextts_weights.convert import convert, sanitize_in_groups
from indextts_weights.errors import WeightsError
from indextts_weights.load import load_gpt
from indextts_weights.loading import expected_shapes
from indextts_weights.mapping import gpt2, gpt_conditioning
from indextts_weights.mapping.gpt import group_of, ignored, owner, sanitize
from indextts_weights.npz import check_state, read_npz, save_npz
from indextts_weights.readers.testing import tensor, write_torch_zip
from mlx_indextts_models.gpt import UnifiedVoice, UnifiedVoiceArgs
from mlx_indextts_models.testing import tiny_gpt_args

TINY = tiny_gpt_args()
PE_KEYS = gpt_conditioning.IGNORED_KEYS


def official_shapes(args: UnifiedVoiceArgs) -> dict[str, tuple[int, ...]]:
    """``gpt.pth`` keys with PyTorch shapes: our parameters with the layouts undone
    (``Conv1D`` ``(in, out)``, Conv1d ``(out, in, k)``, Conv2d ``(out, in, kh, kw)``) and
    the two sinusoidal tables the model recomputes (shortened: the mapping drops them)."""
    shapes = {}
    for key, shape in expected_shapes(UnifiedVoice(args)).items():
        if gpt2.CONV1D_WEIGHTS.fullmatch(key):
            shape = shape[::-1]
        elif gpt_conditioning.CONV1D_WEIGHTS.fullmatch(key):
            shape = (shape[0], shape[2], shape[1])
        elif gpt_conditioning.CONV2D_WEIGHTS.fullmatch(key):
            shape = (shape[0], shape[3], shape[1], shape[2])
        shapes[key] = shape
    for key in PE_KEYS:
        shapes[key] = (1, 50, args.conditioning.condition_module.output_size)
    return shapes


def official_state(args: UnifiedVoiceArgs = TINY, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        k: (0.1 * rng.standard_normal(s)).astype(np.float32)
        for k, s in official_shapes(args).items()
    }


def _arange(*shape: int) -> np.ndarray:
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape)


def test_every_key_is_claimed_and_the_result_fits_the_model_strictly():
    state = official_state()
    assert all(owner(k) is not None for k in state)
    out = sanitize(state)
    assert set(out) == set(state) - set(PE_KEYS)
    check_state(out, expected_shapes(UnifiedVoice(TINY)), source="tiny gpt.pth")
    assert all(v.dtype == np.float32 and v.flags["C_CONTIGUOUS"] for v in out.values())


def test_layouts_with_hand_checked_values():
    state = official_state()
    state["gpt.h.1.mlp.c_proj.weight"] = _arange(48, 12)  # Conv1D (in=48, out=12)
    depthwise = "emo_conditioning_encoder.encoders.0.conv_module.depthwise_conv.weight"
    state[depthwise] = _arange(8, 1, 15)  # Conv1d (out, in=1, k)
    pointwise = "conditioning_encoder.encoders.1.conv_module.pointwise_conv1.weight"
    state[pointwise] = _arange(16, 8, 1)  # Conv1d (out=16, in=8, k=1)
    subsampling = "conditioning_encoder.embed.conv.0.weight"
    state[subsampling] = _arange(8, 1, 3, 3)  # Conv2d (out, in=1, kh, kw)
    out = sanitize(state)

    c_proj = out["gpt.h.1.mlp.c_proj.weight"]  # (out, in): c_proj[o, i] = W[i, o] = 12 i + o
    assert c_proj.shape == (12, 48)
    assert c_proj[0, 1] == 12 and c_proj[1, 0] == 1 and c_proj[11, 47] == 47 * 12 + 11
    assert out[depthwise].shape == (8, 15, 1)
    assert out[depthwise][2, 4, 0] == 2 * 15 + 4
    assert out[pointwise].shape == (16, 1, 8)
    assert out[pointwise][3, 0, 5] == 3 * 8 + 5
    assert out[subsampling].shape == (8, 3, 3, 1)
    assert out[subsampling][1, 2, 0, 0] == 9 + 6
    for key in (
        "gpt.h.0.attn.c_attn.bias",
        "gpt.ln_f.weight",
        "mel_head.weight",  # nn.Linear: already (out, in)
        "text_embedding.weight",
        "mel_pos_embedding.emb.weight",
        "conditioning_encoder.embed.out.0.weight",
        "emo_perceiver_encoder.latents",
        "speed_emb.weight",
    ):
        np.testing.assert_array_equal(out[key], state[key])


def test_deliberately_ignored_keys_are_dropped_and_only_they():
    extra = {
        "gpt.h.0.attn.bias": np.ones((1, 1, 4, 4), dtype=bool),
        "gpt.h.1.attn.masked_bias": np.array(-1e4, dtype=np.float32),
        "gpt.wte.weight": _arange(10, 12),
    }
    state = official_state() | extra
    out = sanitize(state)
    dropped = set(state) - set(out)
    assert dropped == set(PE_KEYS) | set(extra)
    assert all(ignored(k) for k in dropped)
    assert not any(ignored(k) for k in out)


def test_every_unknown_key_is_named_in_one_error():
    unknown = {
        "inference_model.lm_head.weight": _arange(3, 12),  # no module owns it
        "mel_solo_embedding": _arange(3),  # no module owns it
        "gpt.wpe.weight": _arange(16, 12),  # GPT-2 side, deleted by the reference
        "gpt.h.0.attn.q_attn.weight": _arange(12, 12),  # GPT-2 side, unknown
        "perceiver_encoder.layers.0.1.1.weight": _arange(3),  # conditioning side, unknown
    }
    with pytest.raises(WeightsError) as info:
        sanitize(official_state() | unknown)
    message = str(info.value)
    for key in unknown:
        assert key in message
    assert "keys of no known module: inference_model.lm_head.weight, mel_solo_embedding" in message


def test_wrong_ranks_are_refused():
    state = official_state()
    state["gpt.h.0.attn.c_attn.weight"] = state["gpt.h.0.attn.c_attn.weight"].reshape(-1)
    key = "conditioning_encoder.encoders.0.conv_module.depthwise_conv.weight"
    state[key] = state[key][:, 0]
    with pytest.raises(WeightsError) as info:
        sanitize(state)
    assert "expected 2-D" in str(info.value) and "depthwise_conv" in str(info.value)


def test_group_by_group_conversion_is_the_same_and_names_every_problem():
    state = official_state()
    groups = {group_of(k) for k in state}
    assert {"gpt.h.0.", "gpt.h.1.", "gpt", "conditioning_encoder", "mel_head"} <= groups
    whole = sanitize(state)
    work = dict(state)
    grouped = sanitize_in_groups(sanitize, work, group_of)
    assert work == {}  # every official array left the reader's dict
    assert set(grouped) == set(whole)
    for key, value in whole.items():
        np.testing.assert_array_equal(grouped[key], value)
    bad = state | {"gpt.h.1.attn.q_attn.weight": _arange(2), "odd.weight": _arange(2)}
    bad["gpt.h.0.ln_1.weight"] = _arange(2, 2)
    with pytest.raises(WeightsError) as info:
        sanitize_in_groups(sanitize, bad, group_of)
    for text in ("gpt.h.1.attn.q_attn.weight", "odd.weight", "gpt.h.0.ln_1.weight"):
        assert text in str(info.value)


def test_converted_gpt_pth_loads_strictly_and_computes_with_the_official_values(tmp_path):
    """``{'model': state_dict}`` → ``indextts-weights convert`` → :func:`load_gpt`."""
    state = official_state()
    src = tmp_path / "official" / "checkpoints"
    src.mkdir(parents=True)
    write_torch_zip(src / "gpt.pth", {"model": {k: tensor(v) for k, v in state.items()}})
    written = convert(
        tmp_path / "official", tmp_path / "weights", only=("gpt",), args={"gpt": TINY}
    )
    model = load_gpt(written["gpt"])  # at the configuration the file records

    x = np.random.default_rng(1).standard_normal((2, 12)).astype(np.float32)
    w, b = state["gpt.h.1.attn.c_attn.weight"], state["gpt.h.1.attn.c_attn.bias"]
    got = np.array(model.gpt.h[1].attn.c_attn(mx.array(x)))
    np.testing.assert_allclose(got, x @ w + b, rtol=1e-5, atol=1e-6)  # Conv1D: x @ W + b
    w, b = state["mel_head.weight"], state["mel_head.bias"]
    np.testing.assert_allclose(np.array(model.mel_head(mx.array(x))), x @ w.T + b, atol=1e-6)
    np.testing.assert_array_equal(
        np.array(model.mel_pos_embedding(3, start=2)), state["mel_pos_embedding.emb.weight"][2:5]
    )
    np.testing.assert_array_equal(
        np.array(model.text_embedding.weight), state["text_embedding.weight"]
    )
    np.testing.assert_array_equal(np.array(model.speed_emb.weight), state["speed_emb.weight"])


def test_load_gpt_is_strict(tmp_path):
    arrays = sanitize(official_state())
    del arrays["gpt.h.1.mlp.c_fc.bias"]
    path = save_npz(tmp_path / "gpt.npz", arrays | {"extra.weight": _arange(2)}, model="gpt")
    with pytest.raises(WeightsError, match=r"missing: gpt\.h\.1\.mlp\.c_fc\.bias") as info:
        load_gpt(path, TINY)
    assert "unexpected: extra.weight" in str(info.value)
    save_npz(path, sanitize(official_state()), model="gpt")
    with pytest.raises(WeightsError, match=r"mel_head\.weight"):  # the file is not this config
        load_gpt(path, UnifiedVoiceArgs(**{**TINY.__dict__, "number_mel_codes": 11}))
    assert read_npz(path, model="gpt")  # and the file itself is fine


def test_real_size_names_and_shapes():
    """At IndexTTS-2's config (shapes only, no arrays): the 665 official keys
    (``docs/reference/keys/gpt.txt``) are all claimed and map onto the 663 parameters."""
    shapes = official_shapes(UnifiedVoiceArgs())
    assert len(shapes) == 665
    hand_checked = {
        "text_embedding.weight": (12001, 1280), "text_head.weight": (12001, 1280),
        "mel_embedding.weight": (8194, 1280), "mel_pos_embedding.emb.weight": (1818, 1280),
        "text_pos_embedding.emb.weight": (602, 1280),
        "gpt.h.23.attn.c_attn.weight": (1280, 3840), "gpt.h.0.mlp.c_fc.weight": (1280, 5120),
        "gpt.h.0.mlp.c_proj.weight": (5120, 1280),
        "conditioning_encoder.embed.conv.0.weight": (512, 1, 3, 3),
        "emo_conditioning_encoder.encoders.3.conv_module.depthwise_conv.weight": (512, 1, 15),
    }  # fmt: skip
    for key, shape in hand_checked.items():
        assert shapes[key] == shape
    assert all(owner(k) is not None for k in shapes)
    assert {k for k in shapes if not ignored(k)} == set(expected_shapes(UnifiedVoice()))
