"""End-to-end parity: the reference ``IndexTTS2.infer_generator`` vs our ``IndexTTS2``.

Both run on the same seeded real-config checkpoints (ours converted by the real
``indextts-weights convert``), the same voice file, text and ``bpe.model``, greedy-
equivalent decoding (``num_beams=1, top_k=1``) and the same CFM start noise. Every stage
of docs/promises.md §5 is compared at its tolerance, codes and text ids must be identical, and our
``render`` (the composition users call) must give the reference's final 16-bit samples.

Ours runs twice, at the same tolerances: with the CPU fast paths (numpy elementwise ops,
what CI's CPU runs by default) and with the portable MLX paths forced
(:func:`mlx_indextts_models.cpu_ops.portable_paths`, ``INDEXTTS_MLX_PORTABLE=1``): what
Metal and CUDA execute, proven here on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlx_indextts_models import cpu_ops
from parity import text_corpus
from parity.harness import assert_close, compare
from parity.pipeline_reference import reference_pipeline, voice_wav
from parity.pipeline_stages import our_pipeline, our_render, our_stages

TEXT = "Hello world, this is a test of the pipeline."
MAX_CODES = 30  # random weights rarely stop: the limit ends decoding on both sides

#: docs/promises.md §5 rows (and the emotion vector): max|Δ|, min cos.
STAGES = {
    "seamless fbank": (1e-3, 0.99999),
    "ref_mel": (2e-2, 0.99999),
    "W2V-BERT hidden[17]": (3e-3, 0.99999),
    "normalized semantic features": (2e-3, 0.99999),
    "CAMPPlus speaker style": (1.5e-2, 0.99999),
    "semantic_codec S_ref": (5e-4, 0.99999),
    "prompt regulator": (1e-4, 0.99999),
    "emovec": (1e-4, 0.99999),
    "GPT latent": (2e-2, 0.99999),
    "GPT latent proj": (3e-3, 0.99999),
    "S_infer": (3e-3, 0.99999),
    "inference regulator": (1e-3, 0.99999),
    "CFM mel": (5e-3, 0.9999),
    "BigVGAN waveform": (1e-3, 0.999),
}


@pytest.fixture(scope="module")
def voice():
    return voice_wav("speech_sentence")


@pytest.fixture(scope="module")
def reference(voice):
    (run,) = reference_pipeline(
        voice, TEXT, bpe_model=text_corpus.bpe_model(), max_mel_tokens=MAX_CODES
    )
    return run


@pytest.fixture(scope="module", params=["cpu fast paths", "portable MLX paths"])
def paths(request):
    """Every test of ours runs once per kind of path (the module docstring)."""
    with cpu_ops.portable_paths(request.param == "portable MLX paths"):
        yield request.param


@pytest.fixture(scope="module")
def tts():
    return our_pipeline(text_corpus.bpe_model())


def _row(name: str, paths: str) -> str:
    """The parity table's row name: the portable run's rows marked."""
    return name if paths == "cpu fast paths" else f"{name} [portable MLX]"


@pytest.fixture(scope="module")
def ours(tts, voice, reference, paths):
    return our_stages(tts, voice, TEXT, max_codes=MAX_CODES, noise=reference["CFM noise"])


def test_text_ids_and_codes_are_identical(reference, ours, record, paths):
    np.testing.assert_array_equal(ours["text ids"], reference["text ids"])
    np.testing.assert_array_equal(ours["semantic_codec codes"], reference["semantic_codec codes"])
    np.testing.assert_array_equal(ours["codes"], reference["codes"])
    assert ours["codes"].shape == (1, MAX_CODES)
    record(compare(_row("codes (greedy)", paths), reference["codes"], ours["codes"]))


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_matches_the_reference(reference, ours, record, paths, stage):
    max_abs, min_cos = STAGES[stage]
    result = record(compare(_row(stage, paths), reference[stage], ours[stage]))
    assert_close(result, max_abs=max_abs, min_cos=min_cos)


def test_render_gives_the_reference_output_samples(tts, voice, reference, record, paths):
    result = our_render(tts, voice, TEXT, max_codes=MAX_CODES, noise=reference["CFM noise"])
    (segment,) = result.segments
    np.testing.assert_array_equal(segment.codes, reference["codes"][0])
    assert not segment.stopped
    ours16 = np.clip(result.audio * 32767, -32767, 32767).astype(np.int16)
    ref16 = reference["output wav"]
    assert ours16.shape == ref16.shape
    record(
        compare(
            _row("output wav (int16)", paths), ref16.astype(np.float32), ours16.astype(np.float32)
        )
    )
    assert np.abs(ours16.astype(np.int32) - ref16).max() <= 1  # one LSB of float rounding
