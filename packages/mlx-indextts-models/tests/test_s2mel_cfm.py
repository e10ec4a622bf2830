"""S2Mel CFM Euler sampler: PyTorch's float32 linspace, the Euler/CFG arithmetic and the
prompt handling with a recording stub estimator (hand-computed results), seeding, and the
output length on a tiny real DiT."""

from __future__ import annotations

import mlx_indextts_models  # noqa: F401  (first: fast BLAS before MLX)

# isort: split

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_indextts_models.s2mel.cfm import CFM, linspace
from mlx_indextts_models.s2mel.dit import DiT
from mlx_indextts_models.testing import tiny_dit_args, tiny_wavenet_args

TINY_DIT = tiny_dit_args()
TINY_WN = tiny_wavenet_args()


def tiny_cfm(seed: int = 0) -> CFM:
    model = CFM(DiT(TINY_DIT, TINY_WN, style_dim=6))
    rng = np.random.default_rng(seed)
    model.load_weights(
        [
            (k, mx.array((0.3 * rng.standard_normal(v.shape)).astype(np.float32)))
            for k, v in tree_flatten(model.parameters())
        ],
        strict=True,
    )
    return model


class StubEstimator:
    """Velocity ``1 + mean(style) + 10·mean(prompt_x) + 100·mean(mu)`` per row, recording calls."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, x, prompt_x, x_lens, t, style, cond, *, from_frame=0):
        self.calls.append(
            {
                "from_frame": from_frame,
                "x": np.array(x),
                "prompt_x": np.array(prompt_x),
                "t": np.array(t),
                "style": np.array(style),
                "cond": np.array(cond),
                "x_lens": x_lens,
            }
        )
        per_row = (
            1 + style.mean(axis=-1) + 10 * prompt_x.mean(axis=(1, 2)) + 100 * cond.mean(axis=(1, 2))
        )
        return mx.broadcast_to(per_row[:, None, None], x.shape)


def test_linspace_is_torchs_float32_formula():
    t = linspace(0.0, 1.0, 26)
    assert t.dtype == np.float32 and t[0] == 0.0 and t[-1] == 1.0
    step = np.float32(1.0) / np.float32(25)
    np.testing.assert_array_equal(t[:13], step * np.arange(13, dtype=np.float32))
    np.testing.assert_array_equal(
        t[13:], np.float32(1.0) - step * np.arange(12, -1, -1, dtype=np.float32)
    )
    np.testing.assert_allclose(t, np.linspace(0, 1, 26), atol=1e-7)
    assert linspace(0.0, 1.0, 1).tolist() == [0.0]


@pytest.mark.parametrize("rate", [0.7, 0.0])
def test_euler_cfg_and_prompt_handling(rate):
    model = CFM(DiT(TINY_DIT, TINY_WN, style_dim=6))
    stub = StubEstimator()
    model.estimator = stub
    rng = np.random.default_rng(0)
    frames, prompt_len, steps = 10, 3, 5
    noise = rng.standard_normal((1, frames, 4)).astype(np.float32)
    prompt = rng.standard_normal((1, prompt_len, 4)).astype(np.float32)
    style = rng.standard_normal((1, 6)).astype(np.float32)
    cond = rng.standard_normal((1, frames, 8)).astype(np.float32)
    out = np.array(
        model.inference(
            mx.array(cond), mx.array(prompt), mx.array(style), steps, rate, noise=mx.array(noise)
        )
    )
    assert out.shape == (1, frames, 4) and not out[:, :prompt_len].any()
    assert len(stub.calls) == steps
    prompt_x = np.zeros((1, frames, 4), np.float32)
    prompt_x[:, :prompt_len] = prompt
    v_cond = 1 + style.mean() + 10 * prompt_x.mean() + 100 * cond.mean()
    expected_v = (1 + rate) * v_cond - rate * 1.0 if rate > 0 else v_cond
    np.testing.assert_allclose(out[:, prompt_len:], noise[:, prompt_len:] + expected_v, rtol=1e-5)
    t_span = linspace(0.0, 1.0, steps + 1)
    t_expected = np.float32(0)
    for k, call in enumerate(stub.calls):
        batch = 2 if rate > 0 else 1
        assert call["x"].shape[0] == batch
        assert call["from_frame"] == prompt_len  # the prompt's velocity is not needed
        assert not call["x"][:, :prompt_len].any()  # prompt frames of x zeroed every step
        np.testing.assert_array_equal(call["prompt_x"][0], prompt_x[0])
        np.testing.assert_array_equal(call["style"][0], style[0])
        np.testing.assert_array_equal(call["t"], np.full(batch, t_expected))
        if rate > 0:  # uncond row: same x and t, prompt/style/mu zeroed
            np.testing.assert_array_equal(call["x"][0], call["x"][1])
            assert not (
                call["prompt_x"][1].any() or call["style"][1].any() or call["cond"][1].any()
            )
        t_expected = np.float32(t_expected + (t_span[k + 1] - t_span[k]))


def test_seeded_noise_is_reproducible_and_output_keeps_the_length():
    model = tiny_cfm()
    rng = np.random.default_rng(1)
    cond = mx.array(rng.standard_normal((1, 12, 8)).astype(np.float32))
    prompt = mx.array(rng.standard_normal((1, 4, 4)).astype(np.float32))
    style = mx.array(rng.standard_normal((1, 6)).astype(np.float32))
    a = np.array(model.inference(cond, prompt, style, 3, seed=7))
    b = np.array(model.inference(cond, prompt, style, 3, seed=7))
    c = np.array(model.inference(cond, prompt, style, 3, seed=8))
    assert a.shape == (1, 12, 4)  # output length = input length
    np.testing.assert_array_equal(a, b)
    assert not a[:, :4].any() and np.abs(a[:, 4:] - c[:, 4:]).min() > 0
    noise = mx.random.normal((1, 12, 4), key=mx.random.key(7))
    np.testing.assert_array_equal(a, np.array(model.inference(cond, prompt, style, 3, noise=noise)))


def test_bad_inputs_are_refused():
    model = tiny_cfm()
    cond = mx.zeros((1, 5, 8))
    with pytest.raises(ValueError, match="noise must be"):
        model.inference(cond, mx.zeros((1, 2, 4)), mx.zeros((1, 6)), 2, noise=mx.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="longer"):
        model.inference(cond, mx.zeros((1, 6, 4)), mx.zeros((1, 6)), 2)
