"""S2Mel length regulator on a tiny config: PyTorch's nearest-index rule, GroupNorm + Mish,
the whole forward and its mask against a float64 numpy transcription of the reference."""

from __future__ import annotations

from dataclasses import replace

import mlx_indextts_models  # noqa: F401  (first: fast BLAS before MLX)

# isort: split

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_indextts_models.layers import length_mask as sequence_mask
from mlx_indextts_models.s2mel.regulator import (
    GroupNorm,
    InterpolateRegulator,
    RegulatorArgs,
    nearest_indices,
    target_lengths,
)
from mlx_indextts_models.testing import tiny_regulator_args

TINY = tiny_regulator_args()


def mish(x: np.ndarray) -> np.ndarray:
    return x * np.tanh(np.log1p(np.exp(x)))


def group_norm(x: np.ndarray, weight, bias, groups: int, eps: float = 1e-5) -> np.ndarray:
    """float64 ``nn.GroupNorm`` on ``(B, T, C)``: consecutive channels per group."""
    b, t, c = x.shape
    g = x.reshape(b, t, groups, c // groups)
    mean = g.mean(axis=(1, 3), keepdims=True)
    var = g.var(axis=(1, 3), keepdims=True)
    return ((g - mean) / np.sqrt(var + eps)).reshape(b, t, c) * weight + bias


def conv1d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``(B, T, Cin)`` with an MLX ``(out, k, in)`` kernel, stride 1, padding ``k // 2``."""
    k = weight.shape[1]
    t = x.shape[1]
    padded = np.pad(x, ((0, 0), (k // 2, k // 2), (0, 0)))
    return sum(padded[:, j : j + t] @ weight[:, j].T for j in range(k)) + bias


def reference_forward(params: dict, x: np.ndarray, ylens: list[int], blocks: int, groups: int):
    """The reference ``InterpolateRegulator.forward`` written out in float64 numpy, with the
    nearest indices from PyTorch's rule worked out by hand by the caller's test."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    h = x.astype(np.float64) @ p["content_in_proj.weight"].T + p["content_in_proj.bias"]
    h = h[:, nearest_indices(x.shape[1], max(ylens))]
    for i in range(blocks):
        h = conv1d(h, p[f"model.{3 * i}.weight"], p[f"model.{3 * i}.bias"])
        h = group_norm(h, p[f"model.{3 * i + 1}.weight"], p[f"model.{3 * i + 1}.bias"], groups)
        h = mish(h)
    h = conv1d(h, p[f"model.{3 * blocks}.weight"], p[f"model.{3 * blocks}.bias"])
    mask = np.arange(max(ylens))[None, :] < np.array(ylens)[:, None]
    return h * mask[..., None]


def randomized(model: InterpolateRegulator, seed: int = 0) -> dict[str, np.ndarray]:
    """Give every parameter (GroupNorm affines included) seeded random values."""
    rng = np.random.default_rng(seed)
    params = {
        k: (0.4 * rng.standard_normal(v.shape)).astype(np.float32)
        for k, v in tree_flatten(model.parameters())
    }
    model.load_weights([(k, mx.array(v)) for k, v in params.items()], strict=True)
    return params


def test_parameter_names_mirror_the_official_state_dict():
    names = {k: v.shape for k, v in tree_flatten(InterpolateRegulator().parameters())}
    convs = {f"model.{i}.weight": (512, 3, 512) for i in (0, 3, 6, 9)}
    norms = {f"model.{i}.{p}": (512,) for i in (1, 4, 7, 10) for p in ("weight", "bias")}
    assert names == {
        "content_in_proj.weight": (512, 1024),
        "content_in_proj.bias": (512,),
        **convs,
        **{f"model.{i}.bias": (512,) for i in (0, 3, 6, 9, 12)},
        **norms,
        "model.12.weight": (512, 1, 512),
    }


@pytest.mark.parametrize(
    ("n", "size", "expected"),
    [
        # scale = float32(n / size); source = min(floor(i * scale), n - 1)
        (3, 5, [0, 0, 1, 1, 2]),  # 0, .6, 1.2, 1.8, 2.4
        (5, 3, [0, 1, 3]),  # 0, 1.67, 3.33
        (10, 17, [0, 0, 1, 1, 2, 2, 3, 4, 4, 5, 5, 6, 7, 7, 8, 8, 9]),
        (4, 8, [0, 0, 1, 1, 2, 2, 3, 3]),  # size == 2n: i >> 1
        (4, 4, [0, 1, 2, 3]),  # same size: identity
        (1, 3, [0, 0, 0]),
        (2, 0, []),
    ],
)
def test_nearest_indices_follow_torch_rule(n, size, expected):
    got = nearest_indices(n, size)
    assert got.dtype == np.int32
    assert got.tolist() == expected


def test_nearest_indices_use_float32_scale_not_exact_division():
    """26 → 44: float32(26/44) is below 26/44, and 22 × it rounds to float32 12.999999, so
    frame 22 (exactly source 13) takes source 12 in PyTorch; likewise 64 → 110, frame 55
    (exactly 32, float32 31.999998) takes 31."""
    assert float(np.float32(26) / np.float32(44)) < 26 / 44  # by 5 / 184549376
    idx = nearest_indices(26, 44)
    assert idx[21:24].tolist() == [12, 12, 13]
    assert nearest_indices(64, 110)[55] == 31
    exact = np.arange(44) * 26 // 44
    assert np.flatnonzero(idx != exact).tolist() == [22]


def test_target_lengths_are_floor_of_1_72_n():
    assert target_lengths(1) == 1
    assert target_lengths(25) == 43  # 43.0 exactly
    assert target_lengths(26) == 44  # 44.72
    assert target_lengths(50) == 86
    assert target_lengths(500) == 860
    assert target_lengths([117, 3]) == [201, 5]  # 201.24, 5.16
    assert isinstance(target_lengths(np.int64(7)), int)


def test_group_norm_one_group_and_mish_by_hand():
    """GroupNorm(1) over all of (T, C) of each row, then Mish, on a 2 × 2 row worked out
    by hand: values 1, 2, 3, 6 → mean 3, variance (4 + 1 + 0 + 9) / 4 = 3.5."""
    norm = GroupNorm(1, 2)
    norm.weight = mx.array([2.0, 1.0])
    norm.bias = mx.array([0.0, 0.5])
    x = mx.array([[[1.0, 2.0], [3.0, 6.0]]])
    z = (np.array([1.0, 2.0, 3.0, 6.0]) - 3.0) / np.sqrt(3.5 + 1e-5)
    normed = np.array([[2 * z[0], z[1] + 0.5], [2 * z[2], z[3] + 0.5]])
    np.testing.assert_allclose(np.array(norm(x))[0], normed, rtol=1e-6, atol=1e-6)
    # Mish(x) = x · tanh(ln(1 + eˣ)): Mish(0) = 0, Mish(1) = tanh(ln(1 + e)) = 0.865098...
    mish_layer = InterpolateRegulator(TINY).model[2]
    np.testing.assert_allclose(
        np.array(mish_layer(mx.array([0.0, 1.0, -1.0]))),
        [0.0, 0.8650983882673103, -0.3034014613741007],
        rtol=1e-6,
    )


def test_group_norm_groups_take_consecutive_channels():
    x = np.random.default_rng(3).standard_normal((2, 7, 6)).astype(np.float32)
    norm = GroupNorm(3, 6)
    weight, bias = np.linspace(0.5, 1.5, 6), np.linspace(-1, 1, 6)
    norm.weight, norm.bias = mx.array(weight, mx.float32), mx.array(bias, mx.float32)
    np.testing.assert_allclose(
        np.array(norm(mx.array(x))), group_norm(x.astype(np.float64), weight, bias, 3), atol=2e-6
    )


def test_group_norm_statistics_stay_accurate_on_long_inputs():
    """A 20 s condition (1720 frames × 512) with a large offset: a flat float32 reduction is
    off by ~1e-3 in relative variance here; the blocked sums stay at float64 accuracy."""
    rng = np.random.default_rng(4)
    x = (3.0 * rng.standard_normal((1, 1720, 512)) + 5.0).astype(np.float32)
    got = np.array(GroupNorm(1, 512)(mx.array(x)))
    expected = group_norm(x.astype(np.float64), 1.0, 0.0, 1)
    assert np.abs(got - expected).max() < 2e-6


@pytest.mark.parametrize("groups", [1, 2])
def test_forward_matches_numpy_reference(groups):
    args = replace(TINY, groups=groups)
    model = InterpolateRegulator(args)
    params = randomized(model, seed=groups)
    x = np.random.default_rng(10).standard_normal((1, 5, 6)).astype(np.float32)
    got = np.array(model(mx.array(x), 9))
    expected = reference_forward(params, x, [9], blocks=2, groups=groups)
    assert got.shape == (1, 9, 8)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_batch_rows_are_stretched_to_the_longest_and_masked():
    model = InterpolateRegulator(TINY)
    params = randomized(model, seed=5)
    x = np.random.default_rng(11).standard_normal((2, 4, 6)).astype(np.float32)
    got = np.array(model(mx.array(x), [7, 5]))
    expected = reference_forward(params, x, [7, 5], blocks=2, groups=1)
    assert got.shape == (2, 7, 8)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert not got[1, 5:].any() and np.abs(got[1, :5]).min() > 0
    assert np.abs(got[0]).min() > 0


def test_sequence_mask():
    assert np.array(sequence_mask([3, 1], 4)).tolist() == [
        [True, True, True, False],
        [True, False, False, False],
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"is_discrete": True},
        {"vector_quantize": True},
        {"n_codebooks": 2},
        {"f0_condition": True},
        {"sampling_ratios": ()},
    ],
)
def test_unsupported_settings_are_refused(change):
    with pytest.raises(ValueError):
        InterpolateRegulator(RegulatorArgs(**change))


def test_bad_inputs_are_refused():
    model = InterpolateRegulator(TINY)
    with pytest.raises(ValueError, match="target lengths"):
        model(mx.zeros((2, 3, 6)), [4])
    with pytest.raises(ValueError, match="expected"):
        model(mx.zeros((3, 6)), 4)
