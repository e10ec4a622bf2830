"""``s2mel.pth`` ``net.length_regulator`` → ``InterpolateRegulator``: conv kernels to MLX
layout, everything else kept, ``embedding.weight`` and ``mask_token`` dropped by name,
unknown and missing keys named; the loaded module computes the reference's first block."""

from __future__ import annotations

from dataclasses import replace

import mlx_indextts_models  # noqa: F401  (first: fast BLAS before MLX)

# isort: split

import mlx.core as mx
import numpy as np
import pytest

from indextts_weights.errors import WeightsError
from indextts_weights.loading import expected_shapes, load_module
from indextts_weights.mapping.s2mel_regulator import IGNORED, expected_keys, sanitize_regulator
from indextts_weights.npz import save_npz
from mlx_indextts_models.s2mel.regulator import InterpolateRegulator
from mlx_indextts_models.testing import tiny_regulator_args

#: ``docs/reference/keys/s2mel.txt``, ``length_regulator.*`` (PyTorch layouts).
OFFICIAL_SHAPES: dict[str, tuple[int, ...]] = {
    "mask_token": (1, 512),
    **{f"model.{i}.weight": (512, 512, 3) for i in (0, 3, 6, 9)},
    **{f"model.{i}.bias": (512,) for i in (0, 3, 6, 9, 12)},
    **{f"model.{i}.{p}": (512,) for i in (1, 4, 7, 10) for p in ("weight", "bias")},
    "model.12.weight": (512, 512, 1),
    "embedding.weight": (2048, 512),
    "content_in_proj.weight": (512, 1024),
    "content_in_proj.bias": (512,),
}


def official(shapes: dict[str, tuple[int, ...]] = OFFICIAL_SHAPES, seed: int = 0):
    rng = np.random.default_rng(seed)
    return {k: (0.05 * rng.standard_normal(s)).astype(np.float32) for k, s in shapes.items()}


def tiny_official(channels: int = 4, in_channels: int = 3, seed: int = 1):
    """A 2-block regulator's state dict in PyTorch layout."""
    shapes = {
        "content_in_proj.weight": (channels, in_channels),
        "content_in_proj.bias": (channels,),
        "embedding.weight": (16, channels),
        "mask_token": (1, channels),
        "model.6.weight": (channels, channels, 1),
        "model.6.bias": (channels,),
    }
    for i in (0, 3):
        shapes |= {f"model.{i}.weight": (channels, channels, 3), f"model.{i}.bias": (channels,)}
        shapes |= {f"model.{i + 1}.weight": (channels,), f"model.{i + 1}.bias": (channels,)}
    return official(shapes, seed)


def test_official_keys_are_expected_or_ignored():
    assert set(OFFICIAL_SHAPES) == set(expected_keys()) | set(IGNORED)
    assert IGNORED == ("embedding.weight", "mask_token")


def test_conv_kernels_become_mlx_layout_and_the_rest_is_kept():
    state = official()
    out = sanitize_regulator(state)
    assert set(out) == set(state) - set(IGNORED)
    for key, value in out.items():
        assert value.dtype == np.float32
        if value.ndim == 3:  # (out, in, k) -> (out, k, in)
            np.testing.assert_array_equal(value, state[key].transpose(0, 2, 1))
        else:
            np.testing.assert_array_equal(value, state[key])
    assert out["model.3.weight"].shape == (512, 3, 512)
    assert out["model.12.weight"].shape == (512, 1, 512)
    # tap k of the MLX kernel is the PyTorch kernel's [:, :, k]
    np.testing.assert_array_equal(out["model.0.weight"][5, 2, 7], state["model.0.weight"][5, 7, 2])


def test_fits_the_real_config_module(tmp_path):
    out = sanitize_regulator(official())
    assert {k: v.shape for k, v in out.items()} == expected_shapes(InterpolateRegulator())
    path = save_npz(tmp_path / "regulator.npz", out, model="s2mel_regulator")
    load_module(InterpolateRegulator(), path, model="s2mel_regulator")


def test_loaded_tiny_regulator_computes_the_pytorch_layout_conv(tmp_path):
    """The first conv of the loaded module, from PyTorch-layout weights written out by
    hand: ``y[t, o] = b[o] + Σ_{c,k} w[o, c, k] · x[t + k - 1, c]`` (zero padding)."""
    state = tiny_official()
    args = replace(tiny_regulator_args(), channels=4, in_channels=3)
    path = save_npz(tmp_path / "r.npz", sanitize_regulator(state, n_blocks=2), model="reg")
    model = load_module(InterpolateRegulator(args), path, model="reg")
    x = np.random.default_rng(2).standard_normal((1, 5, 4)).astype(np.float32)
    w, b = state["model.0.weight"].astype(np.float64), state["model.0.bias"]
    padded = np.pad(x[0].astype(np.float64), ((1, 1), (0, 0)))
    expected = np.array(
        [[b[o] + np.sum(w[o] * padded[t : t + 3].T) for o in range(4)] for t in range(5)]
    )
    np.testing.assert_allclose(np.array(model.model[0](mx.array(x)))[0], expected, atol=1e-6)
    proj = np.array(model.content_in_proj(mx.array(x[:, :, :3])))[0]
    np.testing.assert_allclose(
        proj,
        x[0, :, :3] @ state["content_in_proj.weight"].T + state["content_in_proj.bias"],
        atol=1e-6,
    )


def test_unknown_missing_and_wrong_rank_keys_are_all_named():
    state = official()
    del state["model.4.bias"]
    del state["content_in_proj.bias"]
    state["model.13.weight"] = np.zeros((4, 4, 1), np.float32)
    state["f0_embedding.weight"] = np.zeros((4, 4), np.float32)
    state["model.9.weight"] = state["model.9.weight"][:, :, 0]
    with pytest.raises(WeightsError) as info:
        sanitize_regulator(state)
    message = str(info.value)
    assert "unexpected: f0_embedding.weight, model.13.weight" in message
    assert "missing: content_in_proj.bias, model.4.bias" in message
    assert "wrong rank: model.9.weight (512, 512) (expected 3-D)" in message


def test_ignored_keys_may_be_absent():
    state = official()
    for key in IGNORED:
        del state[key]
    assert set(sanitize_regulator(state)) == set(expected_keys())


def test_block_count_must_match():
    """With 3 blocks, model.9 would be the final 1×1 conv and model.10/12 are extra."""
    with pytest.raises(WeightsError) as info:
        sanitize_regulator(official(), n_blocks=3)
    assert str(info.value).endswith(
        "unexpected: model.10.bias, model.10.weight, model.12.bias, model.12.weight"
    )
    assert set(sanitize_regulator(tiny_official(), n_blocks=2)) == set(expected_keys(2))


def test_prefixed_keys_are_refused():
    """The caller passes ``net['length_regulator']`` itself, not prefixed keys."""
    state = {f"length_regulator.{k}": v for k, v in official().items()}
    with pytest.raises(WeightsError, match=r"missing: content_in_proj\.weight"):
        sanitize_regulator(state)
