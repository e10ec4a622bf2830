"""Reference-side outputs of the whole IndexTTS-2 GPT (``UnifiedVoice``), real config, cached.

Everything here runs the reference's own code on the seeded real-config checkpoints
(:mod:`parity.checkpoints`) exactly as ``indextts/infer_v2.py`` calls it:

* ``UnifiedVoice(**cfg.gpt)`` loaded strictly from ``gpt.pth`` (as ``load_checkpoint``;
  built on the meta device and assigned from the memory-mapped file, which skips the
  random init), then ``post_init_gpt2_config(kv_cache=True)``;
* per case: ``merge_emovec(spk, emo, 1024, 1024, alpha)``; with an ``emo_vector``, the
  emotion-matrix vector (``find_most_similar_cosine`` per group of ``feat1``, the matching
  ``feat2`` rows weighted and summed) and ``emovec_mat + (1 - sum(w)) * emovec``;
  ``inference_speech(spk, text, emo, cond_lengths=1024, emo_cond_lengths=1024,
  emo_vec=emovec, ...)`` with greedy or beam settings; the latent pass
  ``gpt(speech_conditioning_latent, text, ..., codes, ..., emo_vec=emovec,
  use_speed=zeros)``; ``s2mel.models['gpt_layer'](latent)`` and ``S_infer =
  semantic_codec.quantizer.vq2emb(codes.unsqueeze(1)).transpose(1, 2) + latent``.

With transformers 5.x ``generate`` never hands the inference model its KV cache, so every
step re-embeds the whole sequence (generated code ``k`` at mel position ``k``) and costs a
full forward of the growing sequence (1-5 s at this size on a 2-core CPU). Each case runs
``inference_speech`` once and its codes are cached (:func:`reference_codes`); the long
case drives the same model through its own KV cache instead (:func:`_cached_greedy`, as
the issue allows), which gives the same codes at a fraction of the cost.

**Stopping.** Random weights rarely emit the stop token 8193. A case with ``eos_rank``
raises ``mel_head.bias[8193]`` so that the stop token's first-step logit equals the
``eos_rank``-th largest of the others (from a one-step run with the checkpoint's bias);
the repetition penalty (10.0) then pushes the codes already used down until the stop
token wins. The value used is returned (``eos_bias``) so that our model loads the same
bias. Cases without ``eos_rank`` keep the checkpoint's bias and run to ``max_codes``.

Inputs are seeded (:func:`case_inputs`, numpy only, so both sides build them): text ids
in 2..11999 (0/1 are the start/stop text tokens), speaker and emotion features
``(1, T, 1024)`` ~ N(0, 1) (the normalized W2V-BERT features are roughly so), and for the
emotion-matrix cases a seeded CAMPPlus style ``(1, 192)``.

Cases (codes without the stop token): ``limit300`` 300 (no stop; through the cached
driver, which reproduced the 300 codes ``generate`` gave, in 67 s instead of 705 s),
``stop_t17`` 35, ``stop_t60`` 32, ``emovec_stop`` 18 (emo_vector), ``emovec_limit`` 24
(emo_vector, no stop), ``beams3`` 61 (3 beams, stops); the teacher-forced pass takes 200
seeded codes.

Cold cost on the 2-core CPU: ~7 min in all: ``limit300`` ~1 min with the cached driver
(``generate`` would take ~12 min: 300 full passes over 43..342 positions), the other
generations 0.5-3.5 min each, the latent passes 22 s, ``gpt_layer``/``S_infer`` 2 s.
Cached under ``<cache>/parity/outputs/gpt_*``.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np

from parity.checkpoints import (
    EMO_NUM,
    emotion_matrix_checkpoints,
    gpt_checkpoint,
    real_config,
    s2mel_checkpoint,
    semantic_codec_checkpoint,
    semantic_codec_module,
)
from parity.harness import cached_arrays
from parity.reference import reference_module

START_MEL, STOP_MEL = 8192, 8193
FEATURE_LENGTH = 1024  # the "lengths" infer_v2 passes: spk_cond_emb.shape[-1]
CODEBOOK = 8192  # semantic codec codebook size: generated codes must index it


#: ``infer_v2``'s ``generate`` settings (what ``inference_speech`` passes on to it).
INFER_V2_SETTINGS: dict[str, Any] = dict(
    do_sample=True, top_p=0.8, top_k=30, temperature=0.8, length_penalty=0.0, num_beams=3,
    repetition_penalty=10.0,
)  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One ``infer_v2`` segment: inputs, emotion settings and decoding settings."""

    name: str
    seed: int
    text_len: int
    spk_frames: int
    #: frames of the emotion features; None: the speaker features serve as emotion input
    #: (``infer_v2`` without an emotion audio, always so with an ``emo_vector``)
    emo_frames: int | None
    alpha: float = 1.0
    emo_vector: tuple[float, ...] | None = None
    #: stop-token bias rank (see the module docstring); None: the checkpoint's bias
    eos_rank: int | None = None
    max_codes: int = 300
    num_beams: int = 1
    #: "generate": ``inference_speech`` (HF ``generate``, no cache: a full pass per
    #: step); "cached": the same greedy decoding with the reference's GPT-2 driven
    #: through its own KV cache (:func:`_cached_greedy`), for the long case
    driver: str = "generate"

    def key(self) -> dict[str, Any]:
        """The fields as a cache key (``driver`` only when not the default)."""
        fields = asdict(self)
        if self.driver == "generate":
            del fields["driver"]
        return fields

    def settings(self) -> dict[str, Any]:
        """``generate`` kwargs as ``inference_speech`` receives them, sampling off."""
        return {**INFER_V2_SETTINGS, "do_sample": False, "num_beams": self.num_beams}


#: fixed emotion weights (happy, angry, sad, afraid, disgusted, melancholic, surprised, calm)
EMO_WEIGHTS_A = (0.3, 0.0, 0.1, 0.0, 0.05, 0.0, 0.2, 0.1)  # sum 0.75
EMO_WEIGHTS_B = (0.0, 0.45, 0.0, 0.15, 0.0, 0.1, 0.0, 0.05)  # sum 0.75

GREEDY_CASES = (
    Case("limit300", 100, text_len=5, spk_frames=203, emo_frames=257, alpha=0.7, max_codes=300,
         driver="cached"),
    Case("stop_t17", 200, text_len=17, spk_frames=311, emo_frames=188, alpha=0.4, eos_rank=25,
         max_codes=120),
    Case("stop_t60", 300, text_len=60, spk_frames=749, emo_frames=401, alpha=1.0, eos_rank=25,
         max_codes=120),
    Case("emovec_stop", 400, text_len=29, spk_frames=452, emo_frames=None,
         emo_vector=EMO_WEIGHTS_A, eos_rank=15, max_codes=120),
    Case("emovec_limit", 500, text_len=9, spk_frames=610, emo_frames=None,
         emo_vector=EMO_WEIGHTS_B, max_codes=24),
)  # fmt: skip
BEAM_CASE = Case(
    "beams3", 600, text_len=8, spk_frames=236, emo_frames=290, alpha=0.5, num_beams=3,
    eos_rank=80, max_codes=100,
)  # fmt: skip
CASES = (*GREEDY_CASES, BEAM_CASE)
#: the teacher-forced latent pass: this case's conditioning, TEACHER_CODES seeded codes
TEACHER_CASE = "stop_t17"
TEACHER_CODES = 200


def generation_config(settings: Mapping[str, Any], max_new_tokens: int) -> Any:
    """Our :class:`~mlx_indextts_models.sampling.GenerationConfig` for HF ``generate``
    kwargs (the names ``inference_speech`` passes on)."""
    from mlx_indextts_models.sampling import GenerationConfig

    names = (
        "do_sample",
        "temperature",
        "top_k",
        "top_p",
        "repetition_penalty",
        "num_beams",
        "length_penalty",
    )
    return GenerationConfig(**{n: settings[n] for n in names}, max_new_tokens=max_new_tokens)


def case_named(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


def case_inputs(case: Case) -> dict[str, np.ndarray]:
    """``text`` (1, L) int32, ``spk`` / ``emo`` (1, T, 1024) float32, ``style`` (1, 192)."""
    rng = np.random.default_rng(case.seed)
    text = rng.integers(2, 12000, (1, case.text_len)).astype(np.int32)
    spk = rng.standard_normal((1, case.spk_frames, 1024)).astype(np.float32)
    emo = spk
    if case.emo_frames is not None:
        emo = rng.standard_normal((1, case.emo_frames, 1024)).astype(np.float32)
    style = rng.standard_normal((1, 192)).astype(np.float32)
    return {"text": text, "spk": spk, "emo": emo, "style": style}


def teacher_codes() -> np.ndarray:
    """``(1, TEACHER_CODES)`` int32 seeded codes in 0..8191."""
    rng = np.random.default_rng(7000)
    return rng.integers(0, CODEBOOK, (1, TEACHER_CODES)).astype(np.int32)


# --- the reference models ------------------------------------------------------------


@cache
def reference_gpt() -> Any:
    """``UnifiedVoice`` as ``infer_v2._load_gpt`` builds it (CPU, fp32, eval)."""
    import torch

    model_v2 = reference_module("gpt.model_v2")
    with torch.device("meta"):
        model = model_v2.UnifiedVoice(**real_config().gpt)
    state = torch.load(gpt_checkpoint(0), map_location="cpu", mmap=True, weights_only=True)
    state = state.get("model", state)  # as load_checkpoint unwraps
    model.load_state_dict(state, strict=True, assign=True)
    model.eval()
    model.post_init_gpt2_config(use_deepspeed=False, kv_cache=True, half=False)
    return model


def free_reference() -> None:
    """Drop the reference GPT (3.5 GB)."""
    reference_gpt.cache_clear()
    gc.collect()


def emotion_groups() -> tuple[list[Any], list[Any]]:
    """``(emo_matrix, spk_matrix)`` split by ``cfg.emo_num``, as ``_load_emotion_matrices``."""
    import torch

    feat1, feat2 = emotion_matrix_checkpoints(0)
    emo_num = list(real_config().emo_num)
    assert tuple(emo_num) == EMO_NUM
    emo_matrix = torch.split(torch.load(feat2), emo_num)
    spk_matrix = torch.split(torch.load(feat1), emo_num)
    return list(emo_matrix), list(spk_matrix)


def emotion_matrix_stages(weights: tuple[float, ...], style: np.ndarray) -> dict[str, Any]:
    """``infer_v2``'s emo_vector block: ``indices``, ``weight_vector``, ``emovec_mat``."""
    import torch

    find_most_similar_cosine = reference_module("infer_v2").find_most_similar_cosine
    emo_matrix, spk_matrix = emotion_groups()
    style_t = torch.from_numpy(style)
    weight_vector = torch.tensor(weights)
    index = [find_most_similar_cosine(style_t, tmp) for tmp in spk_matrix]
    mat = torch.cat([tmp[i].unsqueeze(0) for i, tmp in zip(index, emo_matrix, strict=True)], 0)
    emovec_mat = torch.sum(weight_vector.unsqueeze(1) * mat, 0).unsqueeze(0)
    return {
        "indices": torch.stack(index),
        "weight_vector": weight_vector,
        "emovec_mat": emovec_mat,
    }


def case_emovec(model: Any, case: Case, inputs: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """``merged`` (merge_emovec), and ``emovec`` (after the emotion-matrix blend if any)."""
    import torch

    spk, emo = torch.from_numpy(inputs["spk"]), torch.from_numpy(inputs["emo"])
    merged = model.merge_emovec(
        spk,
        emo,
        torch.tensor([spk.shape[-1]]),
        torch.tensor([emo.shape[-1]]),
        alpha=case.alpha,
    )
    out = {"merged": merged, "emovec": merged}
    if case.emo_vector is not None:
        stages = emotion_matrix_stages(case.emo_vector, inputs["style"])
        weight_vector = stages["weight_vector"]
        out["emovec"] = stages["emovec_mat"] + (1 - torch.sum(weight_vector)) * merged
        out["indices"], out["emovec_mat"] = stages["indices"], stages["emovec_mat"]
    return out


def _inference_speech(model: Any, case: Case, inputs, emovec, max_codes: int, **kwargs):
    import torch

    spk, emo = torch.from_numpy(inputs["spk"]), torch.from_numpy(inputs["emo"])
    return model.inference_speech(
        spk,
        torch.from_numpy(inputs["text"]),
        emo,
        cond_lengths=torch.tensor([spk.shape[-1]]),
        emo_cond_lengths=torch.tensor([emo.shape[-1]]),
        emo_vec=emovec,
        num_return_sequences=1,
        max_generate_length=max_codes,
        **case.settings(),
        **kwargs,
    )


def _cached_greedy(model: Any, case: Case, inputs, emovec) -> tuple[np.ndarray, Any]:
    """Greedy codes of ``inference_speech`` computed with the reference's GPT-2 and its
    ``DynamicCache``: the same math as the installed cache-less ``generate`` (which re-runs
    the whole sequence each step, so earlier positions are unchanged and code ``k`` sits
    at mel position ``k``), at the cost of one position per step instead of the whole
    sequence. The prefix and start token come from ``inference_speech`` itself (a one-code
    run stores them in the inference model); the repetition penalty is HF's processor on
    the fake prompt ids ``generate`` sees; ``max_codes`` steps or the stop token.

    Returns:
        ``(sequence, first_logits)`` as ``_generate`` reports them.
    """
    import torch
    from transformers import DynamicCache
    from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

    _inference_speech(model, case, inputs, emovec, 1)  # stores [conds][text] embeddings
    inference = model.inference_model
    prefix = inference.cached_mel_emb
    ids = torch.ones(1, prefix.shape[1] + 1, dtype=torch.long)
    ids[0, -1] = START_MEL
    penalty = RepetitionPenaltyLogitsProcessor(case.settings()["repetition_penalty"])

    def embed(code: int, position: int) -> Any:
        token = torch.tensor([[code]])
        return inference.embeddings(token) + inference.text_pos_embedding.emb(
            torch.tensor([[position]])
        )

    cache = DynamicCache(config=inference.transformer.config)
    x = torch.cat([prefix, embed(START_MEL, 0)], dim=1)
    codes: list[int] = []
    first_logits = None
    for k in range(1, case.max_codes + 1):
        hidden = inference.transformer(inputs_embeds=x, cache=cache, use_cache=True)
        logits = inference.lm_head(hidden.last_hidden_state[:, -1])
        if first_logits is None:
            first_logits = logits[0]
        code = int(penalty(ids, logits).argmax(-1))
        codes.append(code)
        ids = torch.cat([ids, torch.tensor([[code]])], dim=1)
        if code == STOP_MEL:
            break
        x = embed(code, k)
    return np.array(codes, dtype=np.int64), first_logits


def _generate(case: Case) -> dict[str, np.ndarray]:
    """One case through ``infer_v2``'s path: emovec, (bias), ``inference_speech``."""
    import torch

    model = reference_gpt()
    inputs = case_inputs(case)
    bias = model.mel_head.bias
    original = bias.detach().clone()
    try:
        with torch.no_grad():
            emo = case_emovec(model, case, inputs)
            emovec = emo["emovec"]
            out = {k: v.numpy() for k, v in emo.items()}
            if case.eos_rank is not None:  # first-step logits with the checkpoint's bias
                first, _ = _inference_speech(
                    model, case, inputs, emovec, 1, output_logits=True, return_dict_in_generate=True
                )
                first_logits = first.logits[0][0]
                others = first_logits.clone()
                others[STOP_MEL] = -torch.inf
                bias[STOP_MEL] += others.topk(case.eos_rank).values[-1] - first_logits[STOP_MEL]
            if case.driver == "cached":
                if case.num_beams != 1 or case.eos_rank is not None:
                    raise ValueError("the cached driver runs greedy cases with the file's bias")
                out["sequence"], first_logits = _cached_greedy(model, case, inputs, emovec)
            else:
                result, _ = _inference_speech(
                    model,
                    case,
                    inputs,
                    emovec,
                    case.max_codes,
                    output_logits=True,
                    return_dict_in_generate=True,
                )
                if case.eos_rank is None:
                    first_logits = result.logits[0][0]
                out["sequence"] = result.sequences[0].numpy()
            out["first_logits"] = first_logits[None].numpy()
            out["eos_bias"] = np.float32(bias[STOP_MEL].item())
    finally:
        with torch.no_grad():
            bias.copy_(original)
    return out


def _checkpoint_key() -> dict[str, str]:
    feat1, feat2 = emotion_matrix_checkpoints(0)
    return {"gpt": gpt_checkpoint(0).parent.name, "emo": f"{feat1.parent.name}/{feat2.parent.name}"}


def reference_codes(case: Case) -> dict[str, np.ndarray]:
    """``sequence`` (the generated ids, the stop token included when it came),
    ``eos_bias`` (``mel_head.bias[8193]`` used), ``first_logits`` (1, 8194) with the
    checkpoint's bias, ``merged`` / ``emovec`` (1, 1280), and for emotion-matrix cases
    ``indices`` (8,) and ``emovec_mat`` (1, 1280). Cached per case."""
    return cached_arrays(
        "gpt_generate", lambda: _generate(case), case=case.key(), **_checkpoint_key()
    )


def generated_codes(case: Case) -> np.ndarray:
    """``(1, n)`` int64 codes as ``infer_v2`` trims them (stop token and after removed)."""
    sequence = reference_codes(case)["sequence"]
    stops = np.flatnonzero(sequence == STOP_MEL)
    n = int(stops[0]) if stops.size else len(sequence)
    return sequence[None, :n]


def stopped(case: Case) -> bool:
    return bool((reference_codes(case)["sequence"] == STOP_MEL).any())


def _latent_pass(model: Any, case: Case, codes: np.ndarray) -> Any:
    """``infer_v2``'s ``latent = self.gpt(speech_conditioning_latent, text_tokens, ...)``."""
    import torch

    inputs = case_inputs(case)
    spk = torch.from_numpy(inputs["spk"])
    emo = torch.from_numpy(inputs["emo"])
    text = torch.from_numpy(inputs["text"])
    codes_t = torch.from_numpy(codes).long()
    # inference_speech's own conditioning latent (the one it returns to infer_v2)
    spk_latent = model.get_conditioning(spk.transpose(1, 2), torch.tensor([spk.shape[-1]]))
    emovec = torch.from_numpy(reference_codes(case)["emovec"])
    use_speed = torch.zeros(spk.size(0)).long()
    return model(
        spk_latent,
        text,
        torch.tensor([text.shape[-1]]),
        codes_t,
        torch.tensor([codes_t.shape[-1]]),
        emo,
        cond_mel_lengths=torch.tensor([spk.shape[-1]]),
        emo_cond_mel_lengths=torch.tensor([emo.shape[-1]]),
        emo_vec=emovec,
        use_speed=use_speed,
    )


def _latents() -> dict[str, np.ndarray]:
    import torch

    model = reference_gpt()
    out = {}
    with torch.no_grad():
        for case in CASES:
            out[f"latent/{case.name}"] = _latent_pass(model, case, generated_codes(case)).numpy()
        latent = _latent_pass(model, case_named(TEACHER_CASE), teacher_codes())
        out["latent/teacher"] = latent.numpy()
        out["logits/teacher"] = model.mel_head(latent).numpy()  # the checkpoint's bias
    return out


def reference_latents() -> dict[str, np.ndarray]:
    """``latent/<case>`` (1, n, 1280) for every case's codes, ``latent/teacher`` (1, 200,
    1280) and ``logits/teacher`` = ``mel_head(latent)`` (1, 200, 8194). Cached."""
    return cached_arrays(
        "gpt_latents",
        _latents,
        cases=[asdict(c) for c in CASES],
        teacher=(TEACHER_CASE, TEACHER_CODES),
        **_checkpoint_key(),
    )


# --- S2Mel's gpt_layer and the semantic codec ----------------------------------------


def reference_gpt_layer() -> Any:
    """``s2mel.models['gpt_layer']`` as ``infer_v2._load_s2mel`` loads it."""
    commons = reference_module("s2mel.modules.commons")
    s2mel = commons.MyModel(real_config().s2mel, use_gpt_latent=True)
    s2mel, _, _, _ = commons.load_checkpoint2(
        s2mel, None, str(s2mel_checkpoint(0)), load_only_params=True, ignore_modules=[],
        is_distributed=False,
    )  # fmt: skip
    return s2mel.eval().models["gpt_layer"]


def _s_infer() -> dict[str, np.ndarray]:
    import torch

    latents = reference_latents()
    gpt_layer = reference_gpt_layer()
    codec = semantic_codec_module(0)  # = semantic_codec_checkpoint(0)'s weights
    out = {}
    with torch.no_grad():
        for name in [c.name for c in CASES] + ["teacher"]:
            codes = teacher_codes() if name == "teacher" else generated_codes(case_named(name))
            assert codes.max() < CODEBOOK, f"{name}: code {codes.max()} outside the codebook"
            proj = gpt_layer(torch.from_numpy(latents[f"latent/{name}"]))
            s_infer = codec.quantizer.vq2emb(torch.from_numpy(codes).long().unsqueeze(1))
            out[f"proj/{name}"] = proj.numpy()
            out[f"s_infer/{name}"] = (s_infer.transpose(1, 2) + proj).numpy()
    return out


def reference_s_infer() -> dict[str, np.ndarray]:
    """``proj/<name>`` = gpt_layer(latent) (1, n, 1024) and ``s_infer/<name>`` (1, n, 1024)
    for every case and the teacher-forced codes. Cached."""
    return cached_arrays(
        "gpt_s_infer",
        _s_infer,
        cases=[asdict(c) for c in CASES],
        teacher=(TEACHER_CASE, TEACHER_CODES),
        s2mel=s2mel_checkpoint(0).parent.name,
        codec=semantic_codec_checkpoint(0).parent.name,
        **_checkpoint_key(),
    )


def all_reference() -> dict[str, dict[str, np.ndarray]]:
    """Every cached reference output (computing what is missing), then the GPT is freed."""
    try:
        codes = {case.name: reference_codes(case) for case in CASES}
        latents = reference_latents()
    finally:
        free_reference()
    return {"codes": codes, "latents": latents, "s_infer": reference_s_infer()}
