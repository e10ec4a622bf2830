"""UnifiedVoice on a tiny config: prompt layout, decoding vs the latent pass, stop handling."""

from __future__ import annotations

import mlx_indextts_models  # noqa: F401  (first: fast BLAS before MLX)

# isort: split

from dataclasses import replace

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_indextts_models.gpt import UnifiedVoice, UnifiedVoiceArgs, s_infer
from mlx_indextts_models.s2mel.model import GPTLayer
from mlx_indextts_models.sampling import GenerationConfig
from mlx_indextts_models.testing import (
    tiny_condition_module_args,
    tiny_gpt_args,
    tiny_gpt_conditioning_args,
)

# A larger GPT than tiny_gpt_args(): more heads, positions and codes, so decoding runs
# 25 steps; the pipeline's condition modules; 4 latents over 24-wide features.
TINY = replace(
    tiny_gpt_args(),
    model_dim=32, heads=4, max_mel_tokens=60, max_text_tokens=20,
    number_text_tokens=50, number_mel_codes=40, start_mel_token=38, stop_mel_token=39,
    conditioning=replace(
        tiny_gpt_conditioning_args(),
        model_dim=32, condition_num_latent=4, feature_size=24, emo_dim=16,
        condition_module=tiny_condition_module_args(),
        emo_condition_module=tiny_condition_module_args(),
    ),
)  # fmt: skip
GREEDY = GenerationConfig(
    do_sample=False, num_beams=1, repetition_penalty=1.0, eos_token_id=39, max_new_tokens=25
)


@pytest.fixture(scope="module")
def model() -> UnifiedVoice:
    mx.random.seed(3)
    m = UnifiedVoice(TINY)
    # Random init everywhere (LayerNorms too) so every table and norm matters.
    rng = np.random.default_rng(0)
    m.update(
        nn.utils.tree_unflatten(
            [
                (k, mx.array(0.5 * rng.standard_normal(v.shape).astype(np.float32)))
                for k, v in tree_flatten(m.parameters())
            ]
        )
    )
    bias = np.array(m.mel_head.bias)
    bias[TINY.stop_mel_token] = -100.0  # never stop unless a test wants it
    m.mel_head.bias = mx.array(bias)
    return m


@pytest.fixture(scope="module")
def conds() -> mx.array:
    return mx.array(np.random.default_rng(1).standard_normal((1, 6, 32)).astype(np.float32))


def test_text_prefix_layout(model, conds):
    prefix = model.text_prefix(conds, [5, 0, 7, 1, 9])
    # start/stop ids inside the text are dropped: [start, 5, 7, 9, stop] at positions 0..4
    ids = [0, 5, 7, 9, 1]
    table = np.array(model.text_embedding.weight)
    pos = np.array(model.text_pos_embedding.emb.weight)
    expected = np.concatenate([np.array(conds)[0], table[ids] + pos[:5]])
    np.testing.assert_allclose(np.array(prefix)[0], expected, rtol=1e-6, atol=1e-6)


def test_greedy_codes_are_the_argmax_of_the_latent_pass(model, conds):
    """Decoding with the cache feeds code k at mel position k: the full latent pass over the
    same codes must predict each code (teacher forcing reproduces greedy decoding)."""
    text = [3, 4, 5, 6]
    result = model.generate(conds, text, GREEDY)
    assert not result.stopped and len(result.codes) == GREEDY.max_new_tokens
    latent = model.latent(conds, text, result.codes)
    assert latent.shape == (1, len(result.codes), 32)
    predicted = np.array(mx.argmax(model.mel_logits(latent), axis=-1))[0]
    assert predicted.tolist() == result.codes
    first = np.array(model.first_logits(conds, text))
    np.testing.assert_allclose(first[0], np.array(model.mel_logits(latent))[0, 0], atol=1e-4)


def test_position_shift_changes_the_codes(model, conds):
    base = model.generate(conds, [3, 4, 5, 6], GREEDY).codes
    shifted = model.generate(conds, [3, 4, 5, 6], GREEDY, position_shift=1).codes
    assert base[0] == shifted[0] and base != shifted


def test_stop_token_ends_decoding_and_is_dropped(model, conds):
    bias = model.mel_head.bias
    try:
        forced = np.array(bias)
        forced[TINY.stop_mel_token] = 1e4
        model.mel_head.bias = mx.array(forced)
        steps = []
        result = model.generate(conds, [3], GREEDY, progress=steps.append)
        assert result.codes == [] and result.stopped and steps == [1]
        beams = GenerationConfig(do_sample=False, num_beams=3, eos_token_id=39, max_new_tokens=5)
        assert model.generate(conds, [3], beams).codes == []
    finally:
        model.mel_head.bias = bias


def test_beam_search_runs_batched_and_is_deterministic(model, conds):
    config = GenerationConfig(num_beams=3, eos_token_id=39, max_new_tokens=12)
    from mlx_indextts_models.sampling import Sampler

    one = model.generate(conds, [8, 9], config, sampler=Sampler(5)).codes
    two = model.generate(conds, [8, 9], config, sampler=Sampler(5)).codes
    assert one == two and len(one) == 12


def test_generate_refuses_bad_settings(model, conds):
    with pytest.raises(ValueError, match="eos_token_id"):
        model.generate(conds, [3], GenerationConfig(eos_token_id=7))
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(conds, [3], GenerationConfig(eos_token_id=39, max_new_tokens=100))
    with pytest.raises(ValueError, match="text token ids"):
        model.text_prefix(conds, [51])
    with pytest.raises(ValueError, match="mel codes"):
        model.latent(conds, [3], [40])


def test_from_config_reads_cfg_gpt():
    cfg = {"model_dim": 1280, "layers": 24, "heads": 20, "max_mel_tokens": 1815, "unused": 1}
    args = UnifiedVoiceArgs.from_config(cfg)
    assert args.gpt2.n_positions == 1815 + 3 + 602 and args.mel_positions == 1818


def test_gpt_layer_and_s_infer():
    layer = GPTLayer((4, 3, 2, 5))
    x = np.random.default_rng(2).standard_normal((1, 6, 4)).astype(np.float32)
    expected = x
    for lin in layer.layers:
        expected = expected @ np.array(lin.weight).T + np.array(lin.bias)
    got = layer(mx.array(x))
    np.testing.assert_allclose(np.array(got), expected, rtol=1e-5, atol=1e-5)

    class Quantizer:
        def vq2emb(self, vq):
            assert vq.shape == (1, 1, 6)
            return mx.ones((1, 6, 5)) * vq[0][..., None].astype(mx.float32)

    class Codec:
        quantizer = Quantizer()

    codes = mx.arange(6)[None]
    out = s_infer(Codec(), codes, got)
    np.testing.assert_allclose(np.array(out), expected + np.arange(6)[None, :, None], atol=1e-5)
    with pytest.raises(ValueError, match="do not match"):
        s_infer(Codec(), codes[:, :5], got)


def test_generate_steps_yields_each_code_then_the_result(model, conds):
    prefix = model.text_prefix(conds, [3, 4, 5, 6])
    steps = list(model.generate_steps(prefix, GREEDY))
    expected = model.generate(conds, [3, 4, 5, 6], GREEDY)
    assert [s.count for s in steps] == list(range(1, GREEDY.max_new_tokens + 1))
    assert [int(s.tokens[0]) for s in steps] == expected.codes
    assert all(s.result is None for s in steps[:-1]) and steps[-1].result == expected
