"""CAMPPlus mapping: official names kept, conv layouts moved, BatchNorm counters dropped,
anything unknown refused."""

from __future__ import annotations

import numpy as np
import pytest

from indextts_weights.errors import WeightsError
from indextts_weights.loading import expected_shapes, load_module
from indextts_weights.mapping.campplus import IGNORED_SUFFIXES, is_ignored, sanitize
from indextts_weights.npz import save_npz
from mlx_indextts_models.campplus import CAMPPlus
from mlx_indextts_models.testing import tiny_campplus_args

BN_PARTS = ("weight", "bias", "running_mean", "running_var")


def _bn(prefix: str, channels: int, affine: bool = True) -> dict[str, np.ndarray]:
    parts = BN_PARTS if affine else BN_PARTS[2:]
    state = {f"{prefix}.{p}": np.linspace(0.5, 1.5, channels, dtype=np.float32) for p in parts}
    state[f"{prefix}.num_batches_tracked"] = np.array(7, dtype=np.int64)
    return state


def _arange(*shape: int) -> np.ndarray:
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape)


def official_sample() -> dict[str, np.ndarray]:
    """A few representative keys of ``campplus_cn_common.bin`` (real names and shapes)."""
    return {
        "head.conv1.weight": _arange(32, 1, 3, 3),
        **_bn("head.bn1", 32),
        "head.layer1.0.conv1.weight": _arange(32, 32, 3, 3),
        "head.layer1.0.shortcut.0.weight": _arange(32, 32, 1, 1),
        **_bn("head.layer1.0.shortcut.1", 32),
        **_bn("head.layer2.1.bn2", 32),
        "xvector.tdnn.linear.weight": _arange(128, 320, 5),
        **_bn("xvector.tdnn.nonlinear.batchnorm", 128),
        **_bn("xvector.block1.tdnnd1.nonlinear1.batchnorm", 128),
        "xvector.block1.tdnnd1.linear1.weight": _arange(128, 128, 1),
        "xvector.block2.tdnnd24.cam_layer.linear_local.weight": _arange(32, 128, 3),
        "xvector.block2.tdnnd24.cam_layer.linear1.weight": _arange(64, 128, 1),
        "xvector.block2.tdnnd24.cam_layer.linear1.bias": _arange(64),
        "xvector.block3.tdnnd2.cam_layer.linear2.bias": _arange(32),
        "xvector.transit3.linear.weight": _arange(512, 1024, 1),
        **_bn("xvector.out_nonlinear.batchnorm", 512),
        "xvector.dense.linear.weight": _arange(192, 1024, 1),
        **_bn("xvector.dense.nonlinear.batchnorm", 192, affine=False),
    }


def test_names_are_kept_and_counters_dropped():
    state = official_sample()
    out = sanitize(state)
    dropped = sorted(k for k in state if k.endswith(".num_batches_tracked"))
    assert len(dropped) == 7
    assert set(out) == set(state) - set(dropped)
    assert all(is_ignored(k) for k in dropped) and IGNORED_SUFFIXES == (".num_batches_tracked",)
    assert all(v.dtype == np.float32 for v in out.values())


def test_conv2d_weights_become_out_kh_kw_in():
    state = official_sample()
    out = sanitize(state)
    w = state["head.layer1.0.conv1.weight"]  # (out, in, kh, kw)
    assert out["head.layer1.0.conv1.weight"].shape == (32, 3, 3, 32)
    assert out["head.layer1.0.conv1.weight"][5, 2, 1, 7] == w[5, 7, 2, 1]
    assert out["head.conv1.weight"].shape == (32, 3, 3, 1)
    assert out["head.conv1.weight"][3, 0, 2, 0] == state["head.conv1.weight"][3, 0, 0, 2]
    assert out["head.layer1.0.shortcut.0.weight"].shape == (32, 1, 1, 32)


def test_conv1d_weights_become_out_k_in():
    state = official_sample()
    w = state["xvector.tdnn.linear.weight"]  # (out, in, k)
    out = sanitize(state)
    tdnn = out["xvector.tdnn.linear.weight"]
    assert tdnn.shape == (128, 5, 320) and tdnn[9, 4, 300] == w[9, 300, 4]
    local = state["xvector.block2.tdnnd24.cam_layer.linear_local.weight"]
    assert out["xvector.block2.tdnnd24.cam_layer.linear_local.weight"][1, 2, 3] == local[1, 3, 2]
    assert out["xvector.dense.linear.weight"].shape == (192, 1, 1024)


def test_vectors_are_unchanged():
    state = official_sample()
    out = sanitize(state)
    for key in (
        "head.bn1.running_var",
        "xvector.block2.tdnnd24.cam_layer.linear1.bias",
        "xvector.dense.nonlinear.batchnorm.running_mean",
    ):
        np.testing.assert_array_equal(out[key], state[key])


@pytest.mark.parametrize(
    "key",
    [
        "xvector.block1.tdnnd1.cam_layer.linear3.weight",
        "head.layer1.0.bn3.weight",
        "xvector.dense.nonlinear.batchnorm.running_mean_extra",
        "projection.weight",
    ],
)
def test_unexpected_key_is_refused_by_name(key, refused):
    refused(sanitize, official_sample(), key, np.zeros(4, np.float32))


def test_wrong_rank_is_refused():
    state = official_sample()
    state["xvector.tdnn.linear.weight"] = _arange(128, 320)
    with pytest.raises(WeightsError, match=r"xvector\.tdnn\.linear\.weight"):
        sanitize(state)


TINY = tiny_campplus_args()


def _official_from_model(model: CAMPPlus) -> dict[str, np.ndarray]:
    """Every parameter of ``model`` in PyTorch layout, plus a counter per BatchNorm."""
    state = {}
    for name, shape in expected_shapes(model).items():
        value = np.ones(shape, np.float32)
        state[name] = np.moveaxis(value, -1, 1) if len(shape) > 1 else value
        if name.endswith("running_mean"):
            state[name.replace("running_mean", "num_batches_tracked")] = np.array(0, np.int64)
    return state


def test_every_model_parameter_is_mapped_and_loads_strictly(tmp_path):
    model = CAMPPlus(TINY)
    path = save_npz(tmp_path / "c.npz", sanitize(_official_from_model(model)), model="campplus")
    load_module(model, path, model="campplus")


def test_missing_key_fails_loading_by_name(tmp_path):
    model = CAMPPlus(TINY)
    state = _official_from_model(model)
    del state["xvector.block2.tdnnd3.cam_layer.linear2.bias"]
    path = save_npz(tmp_path / "c.npz", sanitize(state), model="campplus")
    with pytest.raises(WeightsError, match=r"missing: xvector\.block2\.tdnnd3\.cam_layer"):
        load_module(model, path, model="campplus")
