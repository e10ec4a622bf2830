"""Logits processors, seeded sampling and the decoding state machines on hand-made inputs
with hand-computed results (HF ``generate`` semantics)."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest

from mlx_indextts_models.sampling import (
    BeamSearch,
    GenerationConfig,
    Sampler,
    SingleSearch,
    greedy,
    log_softmax,
    make_search,
    presence,
    process_logits,
    prompt_presence,
    repetition_penalty,
    temperature,
    top_k,
    top_p,
)

INF = np.inf


def _np(a: mx.array) -> np.ndarray:
    return np.array(a)


def test_repetition_penalty_divides_positive_and_multiplies_negative_scores():
    scores = mx.array([[2.0, -1.0, 0.5, -3.0]])
    present = mx.array([[True, True, False, False]])
    np.testing.assert_array_equal(
        _np(repetition_penalty(scores, present, 2.0)), [[1.0, -2.0, 0.5, -3.0]]
    )
    assert repetition_penalty(scores, present, 1.0) is scores


def test_temperature_divides():
    np.testing.assert_allclose(_np(temperature(mx.array([[1.0, -2.0]]), 0.5)), [[2.0, -4.0]])


def test_top_k_keeps_ties_and_min_tokens():
    scores = mx.array([[1.0, 3.0, 2.0, 3.0]])
    np.testing.assert_array_equal(_np(top_k(scores, 2)), [[-INF, 3.0, -INF, 3.0]])
    np.testing.assert_array_equal(
        _np(top_k(scores, 2, min_tokens_to_keep=3)), [[-INF, 3.0, 2.0, 3.0]]
    )
    np.testing.assert_array_equal(_np(top_k(scores, 0)), _np(scores))
    np.testing.assert_array_equal(_np(top_k(scores, 10)), _np(scores))


def test_top_p_removes_the_low_tail():
    # probabilities 0.5, 0.3, 0.13, 0.07: ascending cumulative 0.07, 0.20, 0.50, 1.0
    scores = mx.array(np.log([[0.5, 0.3, 0.13, 0.07]]).astype(np.float32))
    logp = _np(scores)[0]
    np.testing.assert_array_equal(_np(top_p(scores, 0.75))[0], [logp[0], logp[1], -INF, -INF])
    np.testing.assert_array_equal(_np(top_p(scores, 0.75, 3))[0], [logp[0], logp[1], logp[2], -INF])
    np.testing.assert_array_equal(_np(top_p(scores, 0.9))[0], [logp[0], logp[1], logp[2], -INF])
    np.testing.assert_array_equal(_np(top_p(scores, 0.3))[0], [logp[0], -INF, -INF, -INF])
    np.testing.assert_array_equal(_np(top_p(scores, 1.0)), _np(scores))


def test_process_logits_order_for_beams_and_one_beam():
    """log_softmax → penalty → temperature → top-k → top-p, by hand."""
    probs = np.array([0.5, 0.25, 0.15, 0.06, 0.04])
    logits = mx.array(np.log(probs)[None].astype(np.float32))
    present = mx.array([[False, True, False, False, False]])
    beams = GenerationConfig(
        temperature=0.5, top_k=3, top_p=0.9, repetition_penalty=2.0, num_beams=3
    )
    got = _np(process_logits(logits, present, beams))[0]
    # penalty: log 0.25 * 2; / 0.5; top-3: tokens 0, 2, 1; top-p 0.9 over their softmax
    # (0.9045, 0.0814, 0.0141: ascending cumulative 0.0141, 0.0955, 1) removes tokens 1 and 2,
    # but min_tokens_to_keep=2 with beams keeps token 2.
    expected = [2 * math.log(0.5), -INF, 2 * math.log(0.15), -INF, -INF]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    single = GenerationConfig(
        temperature=0.5, top_k=3, top_p=0.9, repetition_penalty=2.0, num_beams=1
    )
    got = _np(process_logits(logits, present, single))[0]
    np.testing.assert_allclose(got, [2 * math.log(0.5), -INF, -INF, -INF, -INF], rtol=1e-6)
    # without sampling only the penalty applies (to log-probs with beams, logits without)
    greedy_beams = GenerationConfig(do_sample=False, repetition_penalty=2.0, num_beams=3)
    got = _np(process_logits(logits, present, greedy_beams))[0]
    np.testing.assert_allclose(got, np.log(probs) * [1, 2, 1, 1, 1], rtol=1e-6)


def test_log_softmax():
    got = _np(log_softmax(mx.array([[1.0, 2.0, 3.0]])))[0]
    np.testing.assert_allclose(
        got, np.array([1.0, 2.0, 3.0]) - np.log(np.exp([1.0, 2.0, 3.0]).sum()), rtol=1e-6
    )


def test_presence_of_the_reference_prompt():
    seen = prompt_presence(40, 8192, 8194)
    assert seen.seen.shape == (1, 8194)
    assert np.flatnonzero(seen.seen[0]).tolist() == [1, 8192]
    seen.add([5])
    assert np.flatnonzero(seen.seen[0]).tolist() == [1, 5, 8192]


def test_presence_ignores_padding_and_out_of_vocab_ids():
    seen = presence([[1, 1, 7, 9, 12], [0, 3, 3, 3, 3]], 10, prompt_ignore_length=[2, 0])
    assert np.flatnonzero(seen.seen[0]).tolist() == [7, 9]
    assert np.flatnonzero(seen.seen[1]).tolist() == [0, 3]
    seen.select([1, 1])
    assert np.flatnonzero(seen.seen[0]).tolist() == [0, 3]


def test_sampling_is_seeded_and_follows_the_distribution():
    scores = mx.array([[math.log(0.5), math.log(0.3), math.log(0.2), -INF]] * 4000)
    first = _np(Sampler(7).sample(scores))
    np.testing.assert_array_equal(first, _np(Sampler(7).sample(scores)))
    assert not np.array_equal(first, _np(Sampler(8).sample(scores)))
    sampler = Sampler(7)
    sampler.sample(scores)
    assert not np.array_equal(first, _np(sampler.sample(scores)))  # the key advances
    freq = np.bincount(first, minlength=4) / len(first)
    np.testing.assert_allclose(freq, [0.5, 0.3, 0.2, 0.0], atol=0.03)


def test_sampling_without_replacement():
    scores = mx.array([[0.0, -INF, 1.0, -INF, 2.0]] * 200)
    draws = _np(Sampler(3).sample_without_replacement(scores, 3))
    assert all(sorted(row) == [0, 2, 4] for row in draws.tolist())
    firsts = np.bincount(draws[:, 0], minlength=5) / len(draws)
    p = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    np.testing.assert_allclose(firsts[[0, 2, 4]], p, atol=0.08)


def test_greedy():
    np.testing.assert_array_equal(
        _np(greedy(mx.array([[0.1, 0.3, 0.2], [1.0, 0.0, -1.0]]))), [1, 0]
    )


def test_single_search_penalizes_each_id_once():
    """Logits 2.0, 1.9, 0.5, -5 every step, prompt ids {1, 2}, penalty 10: token 0 wins
    (2.0 > 0.19), then stays ahead (0.2 > 0.19) because a seen id is penalized only once."""
    config = GenerationConfig(
        do_sample=False, repetition_penalty=10.0, num_beams=1, eos_token_id=3, max_new_tokens=4
    )
    search = SingleSearch(config, presence([[1, 1, 2]], 4))
    logits = mx.array([[2.0, 1.9, 0.5, -5.0]])
    steps = [search.step(logits) for _ in range(4)]
    assert [s.done for s in steps] == [False, False, False, True]
    assert search.result() == [0, 0, 0, 0]


def test_single_search_stops_at_eos():
    config = GenerationConfig(
        do_sample=False, repetition_penalty=1.0, num_beams=1, eos_token_id=2, max_new_tokens=9
    )
    search = make_search(config, presence([[0]], 3))
    assert isinstance(search, SingleSearch)
    assert not search.step(mx.array([[0.0, 1.0, 0.5]])).done
    assert search.step(mx.array([[0.0, 1.0, 2.0]])).done
    assert search.result() == [1, 2]


# A scripted model for beam search: next-token probabilities by prefix (V=4, EOS=3).
_TABLE = {
    (): [0.5, 0.4, 0.06, 0.04],
    (0,): [0.35, 0.3, 0.25, 0.1],
    (1,): [0.04, 0.04, 0.02, 0.9],
}
_DEFAULT = [0.4, 0.3, 0.2, 0.1]


def _run(search, rows: int, table=None, default=None) -> tuple[list[int], int]:
    table, default = table or _TABLE, default or _DEFAULT
    sequences = [[] for _ in range(rows)]
    steps = 0
    while True:
        probs = [table.get(tuple(s), default) for s in sequences]
        logits = mx.array(np.log(probs).astype(np.float32))
        step = search.step(logits)
        steps += 1
        if step.done:
            return search.result(), steps
        sequences = [
            sequences[p] + [int(t)] for p, t in zip(step.parents, step.tokens, strict=True)
        ]


def test_beam_search_finds_the_better_finished_sequence():
    """Greedy follows 0 (p 0.5) and never ends; two beams keep [1] (0.4) whose EOS (0.9)
    finishes at log(0.36) = -1.02, above every 5-token continuation of [0] (≤ log(0.5 *
    0.35 * 0.4^3) = -4.49), so the answer is [1, EOS] after the length limit stops the search."""
    config = GenerationConfig(
        do_sample=False, repetition_penalty=1.0, num_beams=2, eos_token_id=3, max_new_tokens=5
    )
    beams = make_search(config, presence([[2]], 4))
    assert isinstance(beams, BeamSearch) and beams.candidates == 4
    result, steps = _run(beams, 2)
    assert result == [1, 3] and steps == 5
    assert beams.finished_scores[0] == pytest.approx(math.log(0.4 * 0.9), rel=1e-6)
    greedy_search = SingleSearch(
        GenerationConfig(
            do_sample=False, repetition_penalty=1.0, num_beams=1, eos_token_id=3, max_new_tokens=5
        ),
        presence([[2]], 4),
    )
    assert _run(greedy_search, 1)[0] == [0, 0, 0, 0, 0]


def test_beam_search_stops_early_when_no_running_beam_can_improve():
    """Both beams finish at step 2 ([1, EOS] and [0, EOS] with EOS 0.9 after 0 as well):
    with every slot finished and no running beam above the worst, the search stops."""
    table = {
        (): [0.5, 0.4, 0.06, 0.04],
        (0,): [0.02, 0.04, 0.04, 0.9],
        (1,): [0.04, 0.04, 0.02, 0.9],
    }
    config = GenerationConfig(
        do_sample=False, repetition_penalty=1.0, num_beams=2, eos_token_id=3, max_new_tokens=50
    )
    search = BeamSearch(config, presence([[2]], 4))
    result, steps = _run(search, 2, table)
    assert steps == 2
    assert result == [0, 3]
    assert search.finished[1] == [1, 3]
    np.testing.assert_allclose(search.finished_scores, np.log([0.45, 0.36]), rtol=1e-6)


def test_sampled_beam_search_is_seeded():
    unfiltered = dict(top_k=4, top_p=1.0, temperature=1.0, repetition_penalty=1.0)
    config = GenerationConfig(num_beams=2, eos_token_id=3, max_new_tokens=4, **unfiltered)
    flat = [0.3, 0.3, 0.3, 0.1]

    def run(seed):
        return tuple(
            _run(BeamSearch(config, presence([[2]], 4), Sampler(seed)), 2, {(): flat}, flat)[0]
        )

    assert run(11) == run(11)
    assert len({run(s) for s in range(8)}) > 1


def test_config_validation():
    assert GenerationConfig().min_tokens_to_keep == 2
    assert GenerationConfig(num_beams=1).min_tokens_to_keep == 1
    with pytest.raises(ValueError):
        GenerationConfig(temperature=0.0)
    with pytest.raises(ValueError):
        SingleSearch(GenerationConfig(), presence([[0]], 3))
    with pytest.raises(ValueError):
        BeamSearch(GenerationConfig(), presence([[0], [1]], 3))
