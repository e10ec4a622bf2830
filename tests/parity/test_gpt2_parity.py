"""GPT-2 parity: our MLX stack, embeddings and heads vs UnifiedVoice's, real config.

The checkpoint is the seeded ``gpt.pth`` (``UnifiedVoice(**cfg.gpt)``, 871M parameters,
plain state dict). Ours: :class:`UnifiedVoice` loaded by ``load_gpt`` from the ``gpt.npz``
that ``indextts-weights convert`` made of it (the ``unified_voice`` fixture); its GPT-2
parts carry the official names (``gpt``, ``final_norm``, ``mel_head``, ...).

The reference is ``UnifiedVoice.gpt`` (HF ``GPT2Model`` with ``wpe`` zeroed), driven with
``inputs_embeds``: a full causal pass, and an incremental one with its own
``DynamicCache`` (prefill, then one position at a time). ``inference_speech`` is not used
here: with transformers 5.x it runs without its cache.

Inputs: seeded random ``inputs_embeds (1, L, 1280)``, ``L`` in {40, 300}. Stages (cos ≥
0.99999): last hidden state (full; incremental vs the reference's incremental), and
``mel_head(final_norm(hidden))`` logits; plus the embedding tables and position tables
through a lookup.
"""

from __future__ import annotations

import gc

import mlx_indextts_models  # noqa: F401  (first: it loads the fast BLAS before MLX)

# isort: split

import mlx.core as mx
import numpy as np
import pytest
import torch

from mlx_indextts_models.gpt import UnifiedVoice
from parity.checkpoints import gpt_checkpoint, gpt_module
from parity.harness import assert_close, cached_arrays, compare

LENGTHS = (40, 300)
STEPS = 12  # one-position steps after the prefill in the incremental pass
HIDDEN_TOL = 2e-4
LOGITS_TOL = 2e-3
IDS = {"mel": np.array([0, 1, 17, 4095, 8191, 8192, 8193]), "text": np.array([0, 1, 2, 777, 12000])}


def inputs(length: int) -> np.ndarray:
    return (
        np.random.default_rng(1000 + length).standard_normal((1, length, 1280)).astype(np.float32)
    )


def reference_outputs(unified, length: int) -> dict[str, np.ndarray]:
    """The reference's hidden states (full and incremental) and mel logits for one input."""
    from transformers import DynamicCache

    x = torch.from_numpy(inputs(length))
    gpt = unified.gpt
    with torch.no_grad():
        full = gpt(inputs_embeds=x, return_dict=True).last_hidden_state
        cache = DynamicCache(config=gpt.config)
        prefill = length - STEPS
        parts = [gpt(inputs_embeds=x[:, :prefill], cache=cache, use_cache=True).last_hidden_state]
        for t in range(prefill, length):
            step = gpt(inputs_embeds=x[:, t : t + 1], cache=cache, use_cache=True)
            parts.append(step.last_hidden_state)
        incremental = torch.cat(parts, dim=1)
        normed = unified.final_norm(full)
        logits, text_logits = unified.mel_head(normed), unified.text_head(normed)
    return {
        "full": full.numpy(),
        "incremental": incremental.numpy(),
        "logits": logits.numpy(),
        "text_logits": text_logits.numpy(),
    }


def reference_tables(unified) -> dict[str, np.ndarray]:
    with torch.no_grad():
        mel = torch.from_numpy(IDS["mel"])
        text = torch.from_numpy(IDS["text"])
        return {
            "mel": (unified.mel_embedding(mel) + unified.mel_pos_embedding.emb(mel % 1818)).numpy(),
            "text": (
                unified.text_embedding(text) + unified.text_pos_embedding.emb(text % 602)
            ).numpy(),
        }


@pytest.fixture(scope="module")
def reference() -> dict[str, dict[str, np.ndarray]]:
    """Reference outputs per input (cached); the 3.5 GB module is built only when one is
    missing, once, and freed before ours is loaded."""
    folder = gpt_checkpoint(0).parent.name
    unified = None

    def module():
        nonlocal unified
        if unified is None:
            unified = gpt_module(0)
        return unified

    out = {
        f"L{n}": cached_arrays(
            "gpt2",
            lambda n=n: reference_outputs(module(), n),
            checkpoint=folder,
            input=f"L{n}",
            steps=STEPS,
        )
        for n in LENGTHS
    }
    out["tables"] = cached_arrays(
        "gpt2_tables",
        lambda: reference_tables(module()),
        checkpoint=folder,
        ids={k: v.tolist() for k, v in IDS.items()},
    )
    del unified
    gc.collect()
    return out


@pytest.fixture(scope="module")
def ours(reference, unified_voice) -> UnifiedVoice:
    return unified_voice


@pytest.fixture(scope="module")
def our_outputs(ours) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for n in LENGTHS:
        x = mx.array(inputs(n))
        full = ours.gpt(x)
        # Chunks of 32: at L=300 the prefill (288) fills the buffers and the first step grows them.
        cache = ours.gpt.make_cache(step=32)
        prefill = n - STEPS
        parts = [ours.gpt(x[:, :prefill], cache)]
        for t in range(prefill, n):
            parts.append(ours.gpt(x[:, t : t + 1], cache))
        incremental = mx.concatenate(parts, axis=1)
        normed = ours.final_norm(full)
        arrays = {
            "full": full,
            "incremental": incremental,
            "logits": ours.mel_head(normed),
            "text_logits": ours.text_head(normed),
        }
        out[f"L{n}"] = {k: np.array(v) for k, v in arrays.items()}
    return out


def assert_stage(record, label: str, ref: np.ndarray, got: np.ndarray, tol: float) -> None:
    """Record ``label``'s comparison for the parity table; max|Δ| ≤ ``tol``."""
    assert_close(record(compare(label, ref, got)), max_abs=tol)


@pytest.mark.parametrize("length", LENGTHS)
def test_hidden_full_pass(reference, our_outputs, record, length):
    ref, got = reference[f"L{length}"]["full"], our_outputs[f"L{length}"]["full"]
    assert_stage(record, f"GPT-2 hidden full L{length}", ref, got, HIDDEN_TOL)


@pytest.mark.parametrize("length", LENGTHS)
def test_hidden_incremental(reference, our_outputs, record, length):
    key = f"L{length}"
    ref, got = reference[key]["incremental"], our_outputs[key]["incremental"]
    assert_stage(record, f"GPT-2 hidden cached {key}", ref, got, HIDDEN_TOL)
    # The cached pass computes the same function as the full one, in both implementations.
    assert np.max(np.abs(got - our_outputs[key]["full"])) < HIDDEN_TOL


@pytest.mark.parametrize("length", LENGTHS)
def test_mel_logits(reference, our_outputs, record, length):
    ref, got = reference[f"L{length}"]["logits"], our_outputs[f"L{length}"]["logits"]
    assert_stage(record, f"GPT mel logits L{length}", ref, got, LOGITS_TOL)
    assert np.array_equal(ref.argmax(-1), got.argmax(-1))


def test_embedding_and_position_tables(reference, ours):
    mel, text = (mx.array(IDS[k]) for k in ("mel", "text"))
    got_mel = ours.mel_embedding(mel) + ours.mel_pos_embedding.emb(mel % 1818)
    got_text = ours.text_embedding(text) + ours.text_pos_embedding.emb(text % 602)
    np.testing.assert_array_equal(np.array(got_mel), reference["tables"]["mel"])
    np.testing.assert_array_equal(np.array(got_text), reference["tables"]["text"])


def test_text_logits(reference, our_outputs, record):
    ref, got = reference["L40"]["text_logits"], our_outputs["L40"]["text_logits"]
    assert_stage(record, "GPT text logits L40", ref, got, LOGITS_TOL)
