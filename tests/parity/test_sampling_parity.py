"""Sampling and decoding parity with the reference's HF ``generate`` (transformers 5.x).

A tiny seeded ``UnifiedVoice`` (2 layers, width 64, the real vocabularies and special
tokens) runs the reference's own ``inference_speech``. From it:

* the ``LogitsProcessorList`` exactly as ``generate`` builds it for the reference's
  settings (captured from ``_get_logits_processor``), applied to fixed seeded logits
  (V = 8194) with a fake id history, must equal our :func:`process_logits` (same ``-inf``
  positions, finite values to 1e-6 relative), for sampling and greedy, 3 beams and 1;
* the scores ``generate`` itself reports (``output_scores``) must equal ours on the
  logits it reports (``output_logits``), given the ids the penalty saw;
* greedy decoding (``do_sample=False``), 1 beam and 3 beams, must give the reference's
  codes exactly: our :class:`UnifiedVoice` (converted by the ``gpt.pth`` mapping) decoding
  from the reference's ``[conditioning][text]`` prefix with its KV cache and searches.
  ``mel_head.bias[8193]`` is raised so that one setting stops on EOS and another on the
  length limit.

Sampled decoding cannot match token for token (torch's random stream is not ours); its
filtering is covered by the first two checks.
"""

from __future__ import annotations

import mlx_indextts_models  # noqa: F401  (first: it loads the fast BLAS before MLX)

# isort: split

import mlx.core as mx
import numpy as np
import pytest
import torch

from indextts_weights.mapping.gpt import sanitize
from mlx_indextts_models.gpt import UnifiedVoice, UnifiedVoiceArgs
from mlx_indextts_models.sampling import (
    GenerationConfig,
    log_softmax,
    presence,
    process_logits,
    process_scores,
)
from parity.gpt_reference import INFER_V2_SETTINGS, generation_config
from parity.harness import cached_arrays, seeded_module
from parity.reference import reference_module

CONDITIONING = dict(
    output_size=32, linear_units=64, attention_heads=2, num_blocks=1, input_layer="conv2d2",
    perceiver_mult=2,
)  # fmt: skip
TINY = dict(
    layers=2, model_dim=64, heads=4, max_text_tokens=40, max_mel_tokens=60,
    number_text_tokens=100, number_mel_codes=8194, start_mel_token=8192, stop_mel_token=8193,
    start_text_token=0, stop_text_token=1, condition_type="conformer_perceiver",
    condition_module=CONDITIONING, emo_condition_module=CONDITIONING,
)  # fmt: skip
REFERENCE = INFER_V2_SETTINGS
SETTINGS = {
    "sample_beams3": REFERENCE,
    "sample_beam1": {**REFERENCE, "num_beams": 1},
    "greedy_beams3": {**REFERENCE, "do_sample": False},
    "greedy_beam1": {**REFERENCE, "do_sample": False, "num_beams": 1},
}
V = 8194
EOS_RANKS = (30, 60)  # EOS bias: as high as the 30th/60th largest first-step logit
MAX_CODES = 40


def config(name: str, max_new_tokens: int = MAX_CODES) -> GenerationConfig:
    return generation_config(SETTINGS[name], max_new_tokens)


class Reference:
    """The tiny reference model and its ``inference_speech`` runs."""

    def __init__(self) -> None:
        model_v2 = reference_module("gpt.model_v2")
        self.unified = seeded_module(lambda: model_v2.UnifiedVoice(**TINY), 0)
        self.unified.post_init_gpt2_config(kv_cache=True)
        generator = torch.Generator().manual_seed(5)
        self.cond = torch.randn(1, 50, 1024, generator=generator)
        self.text = torch.randint(2, 100, (1, 12), generator=generator)
        self.eos_bias = float(self.unified.mel_head.bias.detach()[8193])

    def run(self, settings: dict, max_codes: int):
        """``inference_speech`` as ``infer_v2`` calls it; returns (output, processors)."""
        model = self.unified.inference_model
        captured = {}
        original = model._get_logits_processor

        def capture(*args, **kwargs):
            captured["processors"] = original(*args, **kwargs)
            return captured["processors"]

        model._get_logits_processor = capture
        try:
            with torch.no_grad():
                out, _ = self.unified.inference_speech(
                    self.cond,
                    self.text,
                    self.cond,
                    cond_lengths=torch.tensor([self.cond.shape[-1]]),
                    emo_cond_lengths=torch.tensor([self.cond.shape[-1]]),
                    num_return_sequences=1,
                    max_generate_length=max_codes,
                    output_scores=True,
                    output_logits=True,
                    return_dict_in_generate=True,
                    **settings,
                )
        finally:
            del model._get_logits_processor
        return out, captured["processors"]

    def prefix(self) -> np.ndarray:
        """The ``[conditioning][text]`` embeddings of the last run, ``(1, s, 64)``."""
        return self.unified.inference_model.cached_mel_emb.numpy()

    def set_eos_rank(self, first_logits: torch.Tensor, rank: int | None) -> None:
        """Raise ``mel_head.bias[8193]`` so EOS's first logit equals the ``rank``-th largest."""
        with torch.no_grad():
            self.unified.mel_head.bias[8193] = self.eos_bias
            if rank is not None:
                others = first_logits.clone()
                others[8193] = -torch.inf
                self.unified.mel_head.bias[8193] += (
                    others.topk(rank).values[-1] - first_logits[8193]
                )

    def state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().numpy().copy() for k, v in self.unified.state_dict().items()}


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference()


def fixed_logits() -> tuple[np.ndarray, np.ndarray]:
    """Six seeded rows at different scales, and a fake history per row: the reference's
    fake prompt (47 ones, 8192) then 30 seeded codes."""
    rng = np.random.default_rng(0)
    scales = np.array([0.5, 1.0, 2.0, 3.0, 4.0, 6.0])[:, None]
    logits = (rng.standard_normal((6, V)) * scales).astype(np.float32)
    prompt = np.concatenate([np.ones(47, dtype=np.int64), [8192]])
    history = np.stack([np.concatenate([prompt, rng.integers(0, 8194, 30)]) for _ in range(6)])
    return logits, history


def apply_hf(processors, ids: np.ndarray, scores: torch.Tensor) -> np.ndarray:
    """Apply a captured list; a per-row ``prompt_ignore_length`` fixes its batch size."""
    penalty = processors[0]
    group = ids.shape[0]
    if isinstance(penalty.prompt_ignore_length, torch.Tensor):
        group = penalty.prompt_ignore_length.shape[0]
    out = [
        processors(torch.from_numpy(ids[i : i + group]), scores[i : i + group].clone())
        for i in range(0, ids.shape[0], group)
    ]
    return torch.cat(out).numpy()


def assert_same_scores(ours: np.ndarray, hf: np.ndarray, atol: float = 1e-6) -> None:
    """Same ``-inf`` positions; finite values equal to 1e-6 relative and ``atol``."""
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(hf))
    finite = np.isfinite(hf)
    np.testing.assert_allclose(ours[finite], hf[finite], rtol=1e-6, atol=atol)


#: ``log_softmax`` over 8194 ids: torch's float32 normalizer is ~3e-6 from the exact value,
#: ours (summed in float64) closer; the difference is one shift per row, which the
#: penalty (x10) and temperature (/0.8) scale by up to 12.5. The processors alone, given
#: the same log-probabilities, match to 1e-6.
LOG_SOFTMAX_ATOL = 5e-6
BEAM_ATOL = LOG_SOFTMAX_ATOL * 10.0 / 0.8


@pytest.fixture(scope="module")
def processors(reference) -> dict:
    return {name: reference.run(settings, 1)[1] for name, settings in SETTINGS.items()}


def test_generate_builds_penalty_then_temperature_top_k_top_p(processors):
    from transformers.generation import logits_process as lp

    sample = processors["sample_beams3"]
    assert [type(p) for p in sample] == [
        lp.RepetitionPenaltyLogitsProcessor,
        lp.TemperatureLogitsWarper,
        lp.TopKLogitsWarper,
        lp.TopPLogitsWarper,
    ]
    assert sample[0].penalty == 10.0 and sample[1].temperature == 0.8
    assert sample[2].top_k == 30 and sample[3].top_p == 0.8 and sample[3].min_tokens_to_keep == 2
    assert processors["sample_beam1"][3].min_tokens_to_keep == 1
    assert [type(p) for p in processors["greedy_beams3"]] == [lp.RepetitionPenaltyLogitsProcessor]
    # the penalty covers the whole prompt: no padding to ignore for one text
    ignore = sample[0].prompt_ignore_length
    assert ignore is None or not bool(ignore.any())


@pytest.mark.parametrize("name", list(SETTINGS))
def test_processed_scores_equal_hf_on_fixed_logits(processors, name):
    """HF's list and ours on the same input scores (the logits, or with beams torch's
    ``log_softmax`` of them): same ``-inf`` positions, values to 1e-6."""
    logits, history = fixed_logits()
    scores = torch.from_numpy(logits)
    if SETTINGS[name]["num_beams"] > 1:  # _beam_search processes log-probabilities
        scores = torch.log_softmax(scores, dim=-1)
    hf = apply_hf(processors[name], history, scores)
    ours = np.array(
        process_scores(mx.array(scores.numpy()), presence(history, V).mask, config(name))
    )
    assert_same_scores(ours, hf)
    kept = np.isfinite(hf).sum(-1)
    if SETTINGS[name]["do_sample"]:  # the filters really cut, to different counts per row
        assert kept.min() >= config(name).min_tokens_to_keep and kept.max() <= 30
        assert len(set(kept.tolist())) > 1


@pytest.mark.parametrize("name", list(SETTINGS))
def test_processed_logits_equal_hf_from_raw_logits(processors, name):
    """The whole step from raw logits, our ``log_softmax`` included."""
    logits, history = fixed_logits()
    scores = torch.from_numpy(logits)
    beams = SETTINGS[name]["num_beams"] > 1
    if beams:
        scores = torch.log_softmax(scores, dim=-1)
        ours_lsm = np.array(log_softmax(mx.array(logits)))
        np.testing.assert_allclose(ours_lsm, scores.numpy(), rtol=0, atol=LOG_SOFTMAX_ATOL)
    hf = apply_hf(processors[name], history, scores)
    ours = np.array(process_logits(mx.array(logits), presence(history, V).mask, config(name)))
    assert_same_scores(ours, hf, atol=BEAM_ATOL if beams else 1e-6)


def _generate_scores(reference, name: str) -> dict[str, np.ndarray]:
    reference.set_eos_rank(torch.zeros(V), None)
    out, _ = reference.run(SETTINGS[name], 12)
    return {
        "logits": torch.stack(out.logits).numpy(),
        "scores": torch.stack(out.scores).numpy(),
        "sequences": out.sequences.numpy(),
        "prefix_length": np.array(reference.prefix().shape[1]),
    }


def test_scores_reported_by_generate_equal_ours(reference):
    """Sampling with 1 beam: every step's scores, given the codes drawn so far; with 3 beams:
    the first step (all beams hold the prompt)."""
    for name in ("sample_beam1", "sample_beams3"):
        got = cached_arrays(
            "gpt_generate_scores",
            lambda name=name: _generate_scores(reference, name),
            tiny=TINY,
            run=name,
        )
        prompt = np.concatenate([np.ones(int(got["prefix_length"]), dtype=np.int64), [8192]])
        steps = len(got["scores"]) if name == "sample_beam1" else 1
        for k in range(steps):
            rows = got["logits"][k].shape[0]
            history = np.tile(np.concatenate([prompt, got["sequences"][0, :k]]), (rows, 1))
            ours = process_logits(
                mx.array(got["logits"][k]), presence(history, V).mask, config(name)
            )
            assert_same_scores(
                np.array(ours), got["scores"][k], atol=BEAM_ATOL if rows > 1 else 1e-6
            )


def _greedy_codes(reference: Reference) -> dict[str, np.ndarray]:
    reference.set_eos_rank(torch.zeros(V), None)
    first, _ = reference.run(SETTINGS["greedy_beam1"], 1)
    first_logits = first.logits[0][0]
    out = {}
    for rank in EOS_RANKS:
        reference.set_eos_rank(first_logits, rank)
        for name in ("greedy_beam1", "greedy_beams3"):
            seq, _ = reference.run(SETTINGS[name], MAX_CODES)
            out[f"{name}_eos{rank}"] = seq.sequences[0].numpy()
        out[f"state_eos{rank}"] = reference.state()["mel_head.bias"]
    out["prefix"] = reference.prefix()
    reference.set_eos_rank(first_logits, None)
    return out


@pytest.fixture(scope="module")
def greedy_reference(reference) -> dict[str, np.ndarray]:
    return cached_arrays(
        "gpt_greedy_codes", lambda: _greedy_codes(reference), tiny=TINY, ranks=EOS_RANKS
    )


def ours_for(reference: Reference, mel_head_bias: np.ndarray) -> UnifiedVoice:
    """Our tiny UnifiedVoice with the reference's weights (``mel_head.bias`` replaced)."""
    state = {k: v for k, v in reference.state().items() if not k.startswith("inference_model.")}
    state["mel_head.bias"] = mel_head_bias
    model = UnifiedVoice(UnifiedVoiceArgs.from_config(TINY))
    model.load_weights([(k, mx.array(v)) for k, v in sanitize(state).items()], strict=True)
    return model


def decode(model: UnifiedVoice, prefix: np.ndarray, settings: GenerationConfig, **kw) -> list:
    """Our codes from the reference's prefix, ending with the stop code when it stopped
    (as the reference's sequences do)."""
    result = model.generate_from_prefix(mx.array(prefix), settings, **kw)
    return result.codes + ([8193] if result.stopped else [])


@pytest.mark.parametrize("rank", EOS_RANKS)
@pytest.mark.parametrize("name", ["greedy_beam1", "greedy_beams3"])
def test_greedy_codes_equal_the_reference(reference, greedy_reference, name, rank):
    parts = ours_for(reference, greedy_reference[f"state_eos{rank}"])
    expected = greedy_reference[f"{name}_eos{rank}"].tolist()
    got = decode(parts, greedy_reference["prefix"], config(name))
    assert got == expected
    if rank == 30:  # stops on EOS
        assert expected[-1] == 8193 and 5 < len(expected) < MAX_CODES
    else:  # runs to the length limit
        assert expected[-1] != 8193 and len(expected) == MAX_CODES


def _cached_path_codes(reference: Reference, bias: np.ndarray) -> dict[str, np.ndarray]:
    """Greedy codes of the reference's ``GPT2InferenceModel`` driven with its KV cache as
    transformers 4.x's ``generate`` drives it (the path the official runtime takes): the
    fake ids and all-ones mask first, then one id at a time with the mask grown by one."""
    from transformers import DynamicCache
    from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

    model = reference.unified.inference_model
    with torch.no_grad():
        reference.unified.mel_head.bias.copy_(torch.from_numpy(bias))
        reference.run(SETTINGS["greedy_beam1"], 1)  # stores the prefix in the model
        length = reference.prefix().shape[1]
        ids = torch.ones(1, length + 1, dtype=torch.long)
        ids[0, -1] = 8192
        cache = DynamicCache(config=model.config)
        penalty = RepetitionPenaltyLogitsProcessor(10.0)
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), past_key_values=cache)
        for _ in range(MAX_CODES):
            token = penalty(ids, out.logits[:, -1]).argmax(-1, keepdim=True)
            ids = torch.cat([ids, token], dim=1)
            if int(token) == 8193:
                break
            out = model(input_ids=token, attention_mask=torch.ones_like(ids), past_key_values=cache)
        reference.set_eos_rank(torch.zeros(V), None)
    return {"codes": ids[0, length + 1 :].numpy()}


def test_cached_path_feeds_code_k_at_position_k_plus_1(reference, greedy_reference):
    """``get_fixed_embedding(attention_mask.shape[1] - mel_len)`` puts generated code k at
    mel position k + 1 on the cached path (the cache-less path of transformers 5.x re-embeds
    codes at 0..k): ``decode(position_shift=1)`` reproduces it, and the two paths differ."""
    bias = greedy_reference["state_eos30"]
    got = cached_arrays(
        "gpt_cached_path_codes", lambda: _cached_path_codes(reference, bias), tiny=TINY, rank=30
    )
    parts = ours_for(reference, bias)
    shifted = decode(parts, greedy_reference["prefix"], config("greedy_beam1"), position_shift=1)
    assert shifted == got["codes"].tolist()
    assert shifted != greedy_reference["greedy_beam1_eos30"].tolist()
