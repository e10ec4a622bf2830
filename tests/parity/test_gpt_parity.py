"""Whole-GPT parity: our MLX ``UnifiedVoice`` vs the reference's, real config (issue 4).

Checkpoints: the seeded real-config ``gpt.pth`` (871M parameters) converted by the user's
command (``indextts-weights convert``) and loaded by ``load_gpt`` (the session's
``unified_voice``); ``gpt_layer`` from the ``s2mel_pytorch.npz`` the CLI made of the
seeded ``s2mel.pth`` (``load_s2mel``); the semantic codec and the emotion/speaker matrices
converted likewise. The reference outputs (:mod:`parity.gpt_reference`: ``infer_v2``'s calls of
``merge_emovec``, the emotion-matrix blend, ``inference_speech``, the latent pass,
``gpt_layer`` and ``S_infer``) are computed once and cached; the reference GPT is freed
before ours is used.

Our side runs the full path from the speaker/emotion features: ``get_conditioning``,
``merge_emovec``, the emotion-matrix vector and blend (``emo_vector`` cases),
``conditioning_prefix``, ``generate`` (``position_shift=0``: code ``k`` at mel position
``k``, as the installed reference), ``first_logits``, ``latent``, ``mel_logits``,
``GPTLayer`` and ``s_infer``. A case with a raised stop-token bias gets the same
``mel_head.bias[8193]`` as the reference used (``eos_bias``).

Asserted: identical code sequences (greedy: two cases stopping on 8193, one running to
300 codes, one to 24 codes, two with an ``emo_vector``; 3 beams stopping on 8193), the
stop flag, the emotion-matrix row choice, and cos ≥ 0.99999 with max|Δ| within
:data:`TOLERANCES` (docs/promises.md §5 where it names the stage) on every float stage.
"""

from __future__ import annotations

import gc

import mlx_indextts_models  # noqa: F401  (first: it loads the fast BLAS before MLX)

# isort: split

import mlx.core as mx
import numpy as np
import pytest

from indextts_weights import load_emotion_matrices, load_semantic_codec
from mlx_indextts_models.emotion import blend_emotion_vector, emotion_matrix_vector
from mlx_indextts_models.gpt import s_infer
from mlx_indextts_models.s2mel.model import GPTLayer
from mlx_indextts_models.sampling import GenerationConfig
from parity import gpt_reference as ref
from parity.converted import converted_weights
from parity.harness import assert_close, compare

#: max|Δ| per stage (cos ≥ 0.99999 everywhere): ~20x the values measured on this machine
#: (in brackets), far inside docs/promises.md §5 (GPT latent < 0.02, latent proj and
#: S_infer < 0.003).
TOLERANCES = {
    "emovec": 2e-5,  # merge_emovec and the blend [9.2e-7]
    "emovec_mat": 1e-6,  # a weighted sum of 8 matrix rows [0]
    "first_logits": 1e-4,  # [2.2e-6]
    "latent": 1e-4,  # "GPT latent" [4.5e-6]
    "teacher_logits": 1e-4,  # [2.4e-6]
    "proj": 2e-5,  # "GPT latent proj" [9e-7]
    "s_infer": 2e-5,  # "S_infer" [9e-7]
}
CASE_NAMES = [c.name for c in ref.CASES]
EMO_VECTOR_CASES = [c.name for c in ref.CASES if c.emo_vector is not None]


@pytest.fixture(scope="module")
def reference() -> dict[str, dict[str, np.ndarray]]:
    """Every reference output (cached; the reference GPT is freed after computing)."""
    return ref.all_reference()


@pytest.fixture(scope="module")
def ours(reference, unified_voice):
    """Our ``UnifiedVoice`` (the session's, from ``load_gpt``); the checkpoint's
    ``mel_head.bias`` is put back after this module's overrides."""
    original = np.array(unified_voice.mel_head.bias)
    yield unified_voice
    unified_voice.mel_head.bias = mx.array(original)


@pytest.fixture(scope="module")
def checkpoint_bias(ours) -> np.ndarray:
    return np.array(ours.mel_head.bias)


def use_eos_bias(model, checkpoint_bias: np.ndarray, eos_bias: float | None = None) -> None:
    """The checkpoint's ``mel_head.bias``, with ``bias[8193] = eos_bias`` when given."""
    bias = checkpoint_bias.copy()
    if eos_bias is not None:
        bias[ref.STOP_MEL] = np.float32(eos_bias)
    model.mel_head.bias = mx.array(bias)


@pytest.fixture(scope="module")
def emotion_groups():
    folder = converted_weights(("emotion_matrix", "speaker_matrix"))
    return load_emotion_matrices(folder / "emotion_matrix.npz", folder / "speaker_matrix.npz")


@pytest.fixture(scope="module")
def gpt_layer(s2mel_models) -> GPTLayer:
    """``gpt_layer`` of our ``S2Mel``, loaded from the CLI-converted ``s2mel_pytorch.npz``."""
    return s2mel_models.gpt_layer


@pytest.fixture(scope="module")
def codec():
    folder = converted_weights(("semantic_codec",))
    return load_semantic_codec(folder / "semantic_codec.npz")


def generation_config(case: ref.Case) -> GenerationConfig:
    return ref.generation_config(case.settings(), case.max_codes)


def _run_case(model, case: ref.Case, groups, checkpoint_bias, eos_bias) -> dict:
    """Our whole path for one case, from the features."""
    inputs = ref.case_inputs(case)
    spk, emo = mx.array(inputs["spk"]), mx.array(inputs["emo"])
    text = inputs["text"][0]
    out: dict = {}
    merged = model.merge_emovec(spk, emo, case.alpha)
    emovec = merged
    if case.emo_vector is not None:
        emotion, speaker = groups
        matrix = emotion_matrix_vector(case.emo_vector, mx.array(inputs["style"]), emotion, speaker)
        emovec = blend_emotion_vector(merged, matrix, case.emo_vector)
        out["emovec_mat"] = np.array(matrix)
    conds = model.conditioning_prefix(model.get_conditioning(spk), emovec)
    use_eos_bias(model, checkpoint_bias)
    out["first_logits"] = np.array(model.first_logits(conds, text))
    use_eos_bias(model, checkpoint_bias, eos_bias)
    out["generated"] = model.generate(conds, text, generation_config(case))
    use_eos_bias(model, checkpoint_bias)
    mx.eval(conds)
    out["conds"] = conds
    out["merged"], out["emovec"] = np.array(merged), np.array(emovec)
    return out


@pytest.fixture(scope="module")
def our_runs(reference, ours, emotion_groups, checkpoint_bias) -> dict[str, dict]:
    runs = {}
    for case in ref.CASES:
        eos_bias = reference["codes"][case.name]["eos_bias"] if case.eos_rank is not None else None
        runs[case.name] = _run_case(ours, case, emotion_groups, checkpoint_bias, eos_bias)
    gc.collect()
    return runs


def reference_codes(name: str) -> np.ndarray:
    """``(1, n)`` codes as ``infer_v2`` trims them (stop token removed)."""
    return ref.generated_codes(ref.case_named(name))


@pytest.fixture(scope="module")
def our_latents(reference, ours, our_runs, gpt_layer, codec, checkpoint_bias) -> dict:
    """Latent pass, gpt_layer and S_infer over the reference's codes (so a code mismatch,
    caught by its own test, does not hide these stages), and the teacher-forced pass."""
    use_eos_bias(ours, checkpoint_bias)
    out = {}
    jobs = [(name, our_runs[name]["conds"], name) for name in CASE_NAMES]
    jobs.append(("teacher", our_runs[ref.TEACHER_CASE]["conds"], ref.TEACHER_CASE))
    for name, conds, case_name in jobs:
        codes = ref.teacher_codes() if name == "teacher" else reference_codes(name)
        text = ref.case_inputs(ref.case_named(case_name))["text"][0]
        latent = ours.latent(conds, text, codes[0])
        proj = gpt_layer(latent)
        out[f"latent/{name}"] = np.array(latent)
        out[f"proj/{name}"] = np.array(proj)
        out[f"s_infer/{name}"] = np.array(s_infer(codec, mx.array(codes.astype(np.int32)), proj))
        if name == "teacher":
            out["logits/teacher"] = np.array(ours.mel_logits(latent))
    return out


# --- codes ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASE_NAMES)
def test_codes_equal_the_reference(reference, our_runs, record, name):
    """Identical codes and stop flag; each case ends the way it was designed to."""
    case = ref.case_named(name)
    expected = reference_codes(name)[0].tolist()
    got = our_runs[name]["generated"]
    differ = [i for i, (a, b) in enumerate(zip(got.codes, expected, strict=False)) if a != b]
    assert got.codes == expected, (
        f"{name}: {len(got.codes)} codes, reference {len(expected)}, first difference at "
        f"{differ[0] if differ else min(len(got.codes), len(expected))}"
    )
    assert got.stopped == ref.stopped(case)
    if case.eos_rank is not None:  # stops on 8193 before the limit
        assert got.stopped and 10 <= len(expected) < case.max_codes
    else:  # runs to the limit
        assert not got.stopped and len(expected) == case.max_codes
    record(compare(f"mel codes [{name}]", np.array(expected), np.array(got.codes)))


def test_cases_cover_the_brief(reference):
    """≥ 5 greedy texts, ≥ 2 stopping, one ≥ 300 codes, emo_vector used, 3 beams."""
    greedy = [c for c in ref.CASES if c.num_beams == 1]
    assert len({c.seed for c in greedy}) >= 5
    assert sum(ref.stopped(c) for c in greedy) >= 2
    assert max(len(ref.generated_codes(c)[0]) for c in greedy) >= 300
    assert any(c.emo_vector is not None for c in greedy)
    beam = ref.BEAM_CASE
    assert beam.num_beams == 3 and 60 <= len(ref.generated_codes(beam)[0]) <= 100


# --- emotion vectors ----------------------------------------------------------------------


@pytest.mark.parametrize("name", CASE_NAMES)
def test_emovec_equals_the_reference(reference, our_runs, record, name):
    """``merge_emovec`` and, with an ``emo_vector``, the blended emovec."""
    expected = reference["codes"][name]
    result = record(
        compare(f"emovec merged [{name}]", expected["merged"], our_runs[name]["merged"])
    )
    assert_close(result, max_abs=TOLERANCES["emovec"])
    if ref.case_named(name).emo_vector is not None:
        result = record(
            compare(f"emovec blended [{name}]", expected["emovec"], our_runs[name]["emovec"])
        )
        assert_close(result, max_abs=TOLERANCES["emovec"])


@pytest.mark.parametrize("name", EMO_VECTOR_CASES)
def test_emotion_matrix_vector_equals_the_reference(
    reference, emotion_groups, our_runs, record, name
):
    """The row per emotion chosen by cosine similarity (the reference's own
    ``find_most_similar_cosine``) and ``emovec_mat``."""
    from mlx_indextts_models.emotion import select_rows

    expected = reference["codes"][name]
    style = mx.array(ref.case_inputs(ref.case_named(name))["style"])
    assert select_rows(style, emotion_groups[1]) == expected["indices"].tolist()
    result = record(
        compare(f"emovec_mat [{name}]", expected["emovec_mat"], our_runs[name]["emovec_mat"])
    )
    assert_close(result, max_abs=TOLERANCES["emovec_mat"])


# --- logits, latents, S_infer -----------------------------------------------------------


@pytest.mark.parametrize("name", CASE_NAMES)
def test_first_step_logits_equal_the_reference(reference, our_runs, record, name):
    """Mel logits of the first code (1, 8194), the checkpoint's bias."""
    result = record(
        compare(
            f"first mel logits [{name}]",
            reference["codes"][name]["first_logits"],
            our_runs[name]["first_logits"],
        )
    )
    assert_close(result, max_abs=TOLERANCES["first_logits"])


@pytest.mark.parametrize("name", [*CASE_NAMES, "teacher"])
@pytest.mark.parametrize(
    "stage, label",
    [("latent", "GPT latent"), ("proj", "GPT latent proj"), ("s_infer", "S_infer")],
)
def test_latent_stages_equal_the_reference(reference, our_latents, record, name, stage, label):
    """The latent pass (``final_norm`` included), ``gpt_layer`` and ``S_infer``."""
    source = reference["latents"] if stage == "latent" else reference["s_infer"]
    result = record(
        compare(f"{label} [{name}]", source[f"{stage}/{name}"], our_latents[f"{stage}/{name}"])
    )
    assert_close(result, max_abs=TOLERANCES[stage])


def test_teacher_forced_logits_equal_the_reference(reference, our_latents, record):
    """``mel_head(latent)`` over 200 given codes (1, 200, 8194)."""
    result = record(
        compare(
            "teacher-forced mel logits",
            reference["latents"]["logits/teacher"],
            our_latents["logits/teacher"],
        )
    )
    assert result.shape == (1, ref.TEACHER_CODES, 8194)
    assert_close(result, max_abs=TOLERANCES["teacher_logits"])
