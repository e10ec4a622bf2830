"""CAMPPlus on tiny configs, against an independent float64 numpy implementation of the
reference's ``DTDNN.py``/``layers.py`` (channels-first, PyTorch weight layouts) and
against hand-computed values."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_indextts_models.campplus import (
    CAMPPlus,
    repeat_segments,
    segment_means,
    statistics_pooling,
)
from mlx_indextts_models.layers import (
    BatchNorm,
    conv1d_as_matmul,
    conv2d_as_matmul,
)
from mlx_indextts_models.layers import MatmulConv1d as Conv1d
from mlx_indextts_models.layers import MatmulConv2d as Conv2d
from mlx_indextts_models.testing import tiny_campplus_args

TINY = tiny_campplus_args()
EPS = 1e-5


# --- numpy reference (channels-first, PyTorch layouts, float64) ---------------------------


def np_conv1d(x, w, b=None, stride=1, pad=0, dil=1):
    """x (C, T), w (O, C, k)."""
    x = np.pad(x, ((0, 0), (pad, pad)))
    k = w.shape[2]
    t_out = (x.shape[1] - dil * (k - 1) - 1) // stride + 1
    y = sum(
        w[:, :, j] @ x[:, j * dil : j * dil + stride * (t_out - 1) + 1 : stride] for j in range(k)
    )
    return y if b is None else y + b[:, None]


def np_conv2d(x, w, stride=(1, 1), pad=(0, 0)):
    """x (C, H, W), w (O, C, kh, kw)."""
    x = np.pad(x, ((0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    _, _, kh, kw = w.shape
    h_out = (x.shape[1] - kh) // stride[0] + 1
    w_out = (x.shape[2] - kw) // stride[1] + 1
    y = np.zeros((w.shape[0], h_out, w_out))
    for i in range(kh):
        for j in range(kw):
            patch = x[
                :,
                i : i + stride[0] * (h_out - 1) + 1 : stride[0],
                j : j + stride[1] * (w_out - 1) + 1 : stride[1],
            ]
            y += np.einsum("oc,chw->ohw", w[:, :, i, j], patch)
    return y


def np_bn(p, name, x):
    """BatchNorm over axis 0 of x (C, ...), eval mode."""
    shape = (-1,) + (1,) * (x.ndim - 1)
    y = (x - p[f"{name}.running_mean"].reshape(shape)) / np.sqrt(
        p[f"{name}.running_var"].reshape(shape) + EPS
    )
    if f"{name}.weight" in p:
        y = y * p[f"{name}.weight"].reshape(shape) + p[f"{name}.bias"].reshape(shape)
    return y


def relu(x):
    return np.maximum(x, 0)


def np_res_block(p, name, x, stride):
    out = relu(
        np_bn(p, f"{name}.bn1", np_conv2d(x, p[f"{name}.conv1.weight"], (stride, 1), (1, 1)))
    )
    out = np_bn(p, f"{name}.bn2", np_conv2d(out, p[f"{name}.conv2.weight"], (1, 1), (1, 1)))
    if f"{name}.shortcut.0.weight" in p:
        x = np_bn(
            p, f"{name}.shortcut.1", np_conv2d(x, p[f"{name}.shortcut.0.weight"], (stride, 1))
        )
    return relu(out + x)


def np_cam(p, name, x, dil, seg_len):
    y = np_conv1d(x, p[f"{name}.linear_local.weight"], pad=dil, dil=dil)
    t = x.shape[1]
    n_seg = -(-t // seg_len)
    seg = np.stack([x[:, k * seg_len : (k + 1) * seg_len].mean(axis=1) for k in range(n_seg)], 1)
    seg = np.repeat(seg, seg_len, axis=1)[:, :t]
    context = x.mean(axis=1, keepdims=True) + seg
    context = relu(np_conv1d(context, p[f"{name}.linear1.weight"], p[f"{name}.linear1.bias"]))
    m = 1 / (
        1 + np.exp(-np_conv1d(context, p[f"{name}.linear2.weight"], p[f"{name}.linear2.bias"]))
    )
    return y * m


def np_campplus(p, feats, args):
    """feats (T, F) → (embedding_size,), following DTDNN.py/layers.py step by step."""
    x = feats.T[None]  # (1, F, T): one input channel
    x = relu(np_bn(p, "head.bn1", np_conv2d(x, p["head.conv1.weight"], (1, 1), (1, 1))))
    for layer, n in (("layer1", args.head_num_blocks[0]), ("layer2", args.head_num_blocks[1])):
        for i in range(n):
            x = np_res_block(p, f"head.{layer}.{i}", x, 2 if i == 0 else 1)
    x = relu(np_bn(p, "head.bn2", np_conv2d(x, p["head.conv2.weight"], (2, 1), (1, 1))))
    x = x.reshape(-1, x.shape[-1])  # (C·F/8, T)
    x = relu(
        np_bn(
            p,
            "xvector.tdnn.nonlinear.batchnorm",
            np_conv1d(x, p["xvector.tdnn.linear.weight"], stride=2, pad=2),
        )
    )
    for b, (n, dil) in enumerate(
        zip(args.block_num_layers, args.block_dilations, strict=True), start=1
    ):
        for i in range(1, n + 1):
            name = f"xvector.block{b}.tdnnd{i}"
            h = relu(np_bn(p, f"{name}.nonlinear1.batchnorm", x))
            h = relu(
                np_bn(p, f"{name}.nonlinear2.batchnorm", np_conv1d(h, p[f"{name}.linear1.weight"]))
            )
            x = np.concatenate([x, np_cam(p, f"{name}.cam_layer", h, dil, args.seg_len)])
        x = relu(np_bn(p, f"xvector.transit{b}.nonlinear.batchnorm", x))
        x = np_conv1d(x, p[f"xvector.transit{b}.linear.weight"])
    x = relu(np_bn(p, "xvector.out_nonlinear.batchnorm", x))
    stats = np.concatenate([x.mean(axis=1), x.std(axis=1, ddof=1)])
    y = p["xvector.dense.linear.weight"][:, :, 0] @ stats
    return np_bn(p, "xvector.dense.nonlinear.batchnorm", y)


def random_official_state(model: CAMPPlus, seed: int) -> dict[str, np.ndarray]:
    """Random parameters under the official names, in PyTorch layouts (float64)."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, value in tree_flatten(model.parameters()):
        shape = tuple(value.shape)
        if name.endswith("running_var"):
            state[name] = 0.5 + rng.random(shape)
        elif len(shape) == 1:
            state[name] = 0.3 * rng.standard_normal(shape)
        else:  # MLX conv layout (out, *k, in) -> PyTorch (out, in, *k)
            fan_in = int(np.prod(shape[1:]))
            w = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
            state[name] = np.moveaxis(w, -1, 1)
    return state


def load_official(model: CAMPPlus, state: dict[str, np.ndarray]) -> CAMPPlus:
    ours = [
        (k, mx.array(np.moveaxis(v, 1, -1) if v.ndim > 1 else v, dtype=mx.float32))
        for k, v in state.items()
    ]
    model.load_weights(ours, strict=True)
    return model


# --- the whole model -----------------------------------------------------------------------


@pytest.mark.parametrize("frames", [21, 9, 30])
def test_tiny_model_matches_numpy_reference(frames):
    """21 frames -> 11 after the TDNN: three 4-frame segments, the last one partial;
    9 -> 5 (partial); 30 -> 15."""
    model = CAMPPlus(TINY)
    state = random_official_state(model, seed=frames)
    load_official(model, state)
    feats = np.random.default_rng(1).standard_normal((2, frames, TINY.feat_dim))
    ours = np.array(model(mx.array(feats, dtype=mx.float32)))
    ref = np.stack([np_campplus(state, f, TINY) for f in feats])
    assert ours.shape == (2, TINY.embedding_size)
    np.testing.assert_allclose(ours, ref, atol=2e-4, rtol=1e-4)


def test_names_mirror_the_official_state_dict():
    names = {k for k, _ in tree_flatten(CAMPPlus(TINY).parameters())}
    for key in (
        "head.conv1.weight",
        "head.layer1.0.shortcut.0.weight",
        "head.layer1.0.shortcut.1.running_var",
        "head.layer1.1.bn2.bias",
        "xvector.tdnn.linear.weight",
        "xvector.block2.tdnnd3.cam_layer.linear_local.weight",
        "xvector.block1.tdnnd1.cam_layer.linear2.bias",
        "xvector.transit2.nonlinear.batchnorm.running_mean",
        "xvector.out_nonlinear.batchnorm.weight",
        "xvector.dense.linear.weight",
        "xvector.dense.nonlinear.batchnorm.running_var",
    ):
        assert key in names, key
    assert "head.layer1.1.shortcut.0.weight" not in names  # identity shortcut
    assert "xvector.dense.nonlinear.batchnorm.weight" not in names  # batchnorm_: no affine
    assert not any("num_batches_tracked" in k for k in names)


def test_real_config_shapes():
    shapes = {k: tuple(v.shape) for k, v in tree_flatten(CAMPPlus().parameters())}
    assert len(shapes) == 815  # 937 official keys less 122 num_batches_tracked
    assert shapes["head.conv1.weight"] == (32, 3, 3, 1)
    assert shapes["xvector.tdnn.linear.weight"] == (128, 5, 320)
    assert shapes["xvector.block3.tdnnd16.linear1.weight"] == (128, 1, 512 + 15 * 32)
    assert shapes["xvector.dense.linear.weight"] == (192, 1, 1024)


def test_zero_trunk_gives_hand_computed_style():
    """With every trunk conv at zero, out_nonlinear sees zeros: each channel is the constant
    relu(beta - mu·gamma/sqrt(var+eps)); stats = [that, 0]; then dense and the affine-free BN."""
    model = CAMPPlus(TINY)
    params = dict(tree_flatten(model.parameters()))
    zeroed = {
        k: mx.zeros_like(v)
        for k, v in params.items()
        if k.startswith("xvector.transit") and k.endswith("linear.weight")
    }
    out_c = params["xvector.out_nonlinear.batchnorm.weight"].shape[0]
    gamma, beta = np.linspace(0.5, 2.0, out_c), np.linspace(-1.0, 1.0, out_c)
    mu, var = np.linspace(-0.5, 0.5, out_c), np.linspace(0.5, 1.5, out_c)
    dense = np.arange(TINY.embedding_size * 2 * out_c).reshape(TINY.embedding_size, 2 * out_c)
    dense = (dense % 7 - 3.0) / 10
    d_mu, d_var = np.linspace(-0.2, 0.2, TINY.embedding_size), np.full(TINY.embedding_size, 2.0)
    values = {
        "xvector.out_nonlinear.batchnorm.weight": gamma,
        "xvector.out_nonlinear.batchnorm.bias": beta,
        "xvector.out_nonlinear.batchnorm.running_mean": mu,
        "xvector.out_nonlinear.batchnorm.running_var": var,
        "xvector.dense.linear.weight": dense[:, None, :],
        "xvector.dense.nonlinear.batchnorm.running_mean": d_mu,
        "xvector.dense.nonlinear.batchnorm.running_var": d_var,
    }
    zeroed.update({k: mx.array(v, dtype=mx.float32) for k, v in values.items()})
    model.load_weights(list(zeroed.items()), strict=False)
    level = np.maximum(beta - mu * gamma / np.sqrt(var + EPS), 0)
    expected = (dense @ np.concatenate([level, np.zeros(out_c)]) - d_mu) / np.sqrt(d_var + EPS)
    feats = mx.random.normal((1, 12, TINY.feat_dim), key=mx.random.key(0))
    np.testing.assert_allclose(np.array(model(feats))[0], expected, atol=1e-5)


def test_model_is_in_inference_mode():
    model = CAMPPlus(TINY)
    assert not model.training and not model.head.bn1.training
    feats = mx.random.normal((1, 10, TINY.feat_dim), key=mx.random.key(1))
    first = np.array(model(feats))
    np.testing.assert_array_equal(np.array(model(feats)), first)  # no running-stat updates
    np.testing.assert_array_equal(np.array(model.head.bn1.running_mean), 0.0)


# --- building blocks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "stride", "padding", "dilation"), [(1, 1, 0, 1), (3, 1, 1, 1), (3, 1, 2, 2), (5, 2, 2, 1)]
)
def test_conv1d_as_matmul_matches_mlx_conv(k, stride, padding, dilation):
    rng = np.random.default_rng(k + stride + dilation)
    x = mx.array(rng.standard_normal((2, 13, 6)), dtype=mx.float32)
    w = mx.array(rng.standard_normal((5, k, 6)), dtype=mx.float32)
    b = mx.array(rng.standard_normal(5), dtype=mx.float32)
    ref = mx.conv1d(x, w, stride=stride, padding=padding, dilation=dilation) + b
    ours = conv1d_as_matmul(x, w, b, stride, padding, dilation)
    np.testing.assert_allclose(np.array(ours), np.array(ref), atol=1e-5)


@pytest.mark.parametrize(
    ("c_in", "k", "stride", "padding"),
    [
        (1, 3, (1, 1), (1, 1)),
        (4, 3, (2, 1), (1, 1)),
        (4, 3, (1, 1), (1, 1)),
        (4, 1, (2, 1), (0, 0)),
    ],
)
def test_conv2d_as_matmul_matches_mlx_conv(c_in, k, stride, padding):
    """Both of its paths: full im2col (1 input channel) and shifted kernel columns."""
    rng = np.random.default_rng(c_in + k)
    x = mx.array(rng.standard_normal((2, 9, 11, c_in)), dtype=mx.float32)
    w = mx.array(rng.standard_normal((6, k, k, c_in)), dtype=mx.float32)
    ref = mx.conv2d(x, w, stride=stride, padding=padding)
    np.testing.assert_allclose(
        np.array(conv2d_as_matmul(x, w, None, stride, padding)), np.array(ref), atol=1e-5
    )


def test_conv2d_as_matmul_refuses_a_width_stride():
    with pytest.raises(ValueError, match="width stride"):
        conv2d_as_matmul(mx.zeros((1, 4, 4, 1)), mx.zeros((1, 3, 3, 1)), None, (1, 2), (1, 1))


def _random_bn(channels: int, seed: int, affine: bool = True) -> BatchNorm:
    rng = np.random.default_rng(seed)
    bn = BatchNorm(channels, affine=affine)
    bn.running_mean = mx.array(rng.standard_normal(channels), dtype=mx.float32)
    bn.running_var = mx.array(0.5 + rng.random(channels), dtype=mx.float32)
    if affine:
        bn.weight = mx.array(rng.standard_normal(channels), dtype=mx.float32)
        bn.bias = mx.array(rng.standard_normal(channels), dtype=mx.float32)
    return bn.eval()


@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_matches_mlx_batchnorm_in_eval_mode(affine):
    ours = _random_bn(5, 0, affine)
    plain = nn.BatchNorm(5, affine=affine)
    plain.update(ours.parameters())
    plain.eval()
    x = mx.random.normal((2, 7, 3, 5), key=mx.random.key(2))
    np.testing.assert_allclose(np.array(ours(x)), np.array(plain(x)), atol=1e-5)


def test_batchnorm_folded_into_convolutions():
    bn = _random_bn(6, 1)
    conv1 = Conv1d(4, 6, 3, padding=2, dilation=2, bias=True)
    x1 = mx.random.normal((2, 10, 4), key=mx.random.key(3))
    np.testing.assert_allclose(np.array(conv1(x1, bn)), np.array(bn(conv1(x1))), atol=1e-5)
    conv2 = Conv2d(4, 6, 3, stride=(2, 1), padding=1, bias=False)
    x2 = mx.random.normal((2, 8, 10, 4), key=mx.random.key(4))
    np.testing.assert_allclose(np.array(conv2(x2, bn)), np.array(bn(conv2(x2))), atol=1e-5)


@pytest.mark.parametrize("frames", [1, 3, 4, 7, 8, 10])
def test_segment_means_follow_avg_pool_ceil_mode(frames):
    x = np.arange(2 * frames * 3, dtype=np.float32).reshape(2, frames, 3) ** 1.5
    means = np.array(segment_means(mx.array(x), 4))
    expected = np.stack([x[:, s : s + 4].mean(axis=1) for s in range(0, frames, 4)], axis=1)
    np.testing.assert_allclose(means, expected, rtol=1e-6)
    repeated = np.array(repeat_segments(mx.array(expected), 4, frames))
    np.testing.assert_array_equal(repeated, np.repeat(expected, 4, axis=1)[:, :frames])


def test_statistics_pooling_is_mean_then_unbiased_std():
    x = np.array([[[1.0, 0.0], [2.0, 0.0], [4.0, 3.0]]], dtype=np.float32)  # (1, T=3, C=2)
    np.testing.assert_allclose(
        np.array(statistics_pooling(mx.array(x))),
        [[7 / 3, 1.0, np.sqrt(7 / 3), np.sqrt(3.0)]],
        rtol=1e-6,
    )
