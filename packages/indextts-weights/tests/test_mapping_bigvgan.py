"""BigVGAN mapping on a hand-made weight-normed state dict with the official names (tiny sizes)."""

from __future__ import annotations

import numpy as np
import pytest

from indextts_weights.errors import WeightsError
from indextts_weights.loading import expected_shapes
from indextts_weights.mapping.bigvgan import sanitize
from indextts_weights.npz import check_state
from mlx_indextts_models.bigvgan import BigVGAN
from mlx_indextts_models.testing import tiny_bigvgan_args

TINY = tiny_bigvgan_args()


def _wn(prefix: str, shape: tuple[int, ...], bias: bool = True) -> dict[str, tuple[int, ...]]:
    keys = {f"{prefix}.weight_g": (shape[0], 1, 1), f"{prefix}.weight_v": shape}
    if bias:
        keys[f"{prefix}.bias"] = (shape[1] if prefix.startswith("ups") else shape[0],)
    return keys


def _act(prefix: str, ch: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.act.alpha": (ch,),
        f"{prefix}.act.beta": (ch,),
        f"{prefix}.upsample.filter": (1, 1, 12),
        f"{prefix}.downsample.lowpass.filter": (1, 1, 12),
    }


def official_shapes() -> dict[str, tuple[int, ...]]:
    """The tiny model's keys as ``BigVGAN(h).state_dict()`` names them, with weight norm."""
    keys = _wn("conv_pre", (8, 6, 7))
    keys |= _wn("ups.0.0", (8, 4, 4)) | _wn("ups.1.0", (4, 2, 4))  # ConvTranspose1d (in, out, k)
    for i, ch in enumerate((4, 2)):
        for j, k in enumerate((3, 5)):
            r = f"resblocks.{2 * i + j}"
            for n in range(2):
                keys |= _wn(f"{r}.convs1.{n}", (ch, ch, k)) | _wn(f"{r}.convs2.{n}", (ch, ch, k))
            for n in range(4):
                keys |= _act(f"{r}.activations.{n}", ch)
    keys |= _act("activation_post", 2) | _wn("conv_post", (1, 2, 7), bias=False)
    return keys


def official_state(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in official_shapes().items()}


def test_sanitize_fits_the_model_strictly():
    out = sanitize(official_state())
    check_state(out, expected_shapes(BigVGAN(TINY)), source="tiny")
    assert not any(k.endswith(("weight_g", "weight_v")) for k in out)


def test_weight_norm_folded_and_layouts():
    state = official_state(1)
    out = sanitize(state)
    g, v = state["ups.0.0.weight_g"], state["ups.0.0.weight_v"]  # (in=8, out=4, k=4)
    w = g * v / np.sqrt((v.astype(np.float64) ** 2).sum(axis=(1, 2), keepdims=True))
    np.testing.assert_allclose(out["ups.0.0.weight"], w.transpose(1, 2, 0), rtol=1e-6)
    assert out["ups.0.0.weight"].shape == (4, 4, 8)  # (out, k, in)
    g, v = state["resblocks.1.convs1.1.weight_g"], state["resblocks.1.convs1.1.weight_v"]
    w = g * v / np.sqrt((v.astype(np.float64) ** 2).sum(axis=(1, 2), keepdims=True))
    np.testing.assert_allclose(out["resblocks.1.convs1.1.weight"], w.transpose(0, 2, 1), rtol=1e-6)
    # every row of a folded weight has the norm g
    row_norms = np.linalg.norm(out["conv_pre.weight"].reshape(8, -1), axis=1)
    np.testing.assert_allclose(row_norms, np.abs(state["conv_pre.weight_g"].ravel()), rtol=1e-5)
    for key in (
        "conv_pre.bias",
        "ups.1.0.bias",
        "resblocks.2.activations.1.act.alpha",
        "resblocks.3.activations.0.upsample.filter",
        "activation_post.downsample.lowpass.filter",
    ):
        np.testing.assert_array_equal(out[key], state[key])
    assert "conv_post.bias" not in out


def test_already_folded_weights_are_accepted():
    state = official_state()
    out = sanitize(state)
    # a state dict after remove_weight_norm() in torch layout maps to the same arrays
    plain = {k: v for k, v in state.items() if not k.endswith(("weight_g", "weight_v"))}
    plain["conv_pre.weight"] = out["conv_pre.weight"].transpose(0, 2, 1)
    plain["ups.0.0.weight"] = out["ups.0.0.weight"].transpose(2, 0, 1)
    partial = sanitize({k: plain[k] for k in ("conv_pre.weight", "ups.0.0.weight")})
    np.testing.assert_allclose(partial["conv_pre.weight"], out["conv_pre.weight"])
    np.testing.assert_allclose(partial["ups.0.0.weight"], out["ups.0.0.weight"])


def test_unknown_keys_are_named():
    state = official_state()
    state["resblocks.0.convs3.0.weight"] = np.zeros(3, np.float32)
    state["discriminator.x"] = np.zeros(3, np.float32)
    with pytest.raises(WeightsError, match=r"discriminator\.x, resblocks\.0\.convs3\.0\.weight"):
        sanitize(state)


def test_half_a_weight_norm_pair_is_an_error():
    state = official_state()
    del state["ups.1.0.weight_v"]
    with pytest.raises(WeightsError, match=r"ups\.1\.0\.weight_g"):
        sanitize(state)
