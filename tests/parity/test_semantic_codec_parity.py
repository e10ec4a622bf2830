"""Semantic codec parity: our MLX ``RepCodec`` vs the reference's, at the real config.

The checkpoint is the reference ``RepCodec`` with a seeded random init saved as the
official ``semantic_codec/model.safetensors`` (239 keys, decoder and weight norm
included); ``indextts-weights convert`` turns it into ``semantic_codec.npz`` (torch-free),
which ``load_semantic_codec`` loads with strict
loading. Inputs are seeded standard-normal ``(1, T, 1024)`` arrays (the normalized
W2V-BERT features are roughly zero-mean, unit-variance) for T = 40, 375 and 750 frames
(0.8 s, 7.5 s and 15 s of prompt), a smooth, correlated variant of the 750-frame input
(neighbouring frames alike, as speech frames are), and 15 s of espeak-ng speech whose
W2V-BERT input fbank (T, 160) is projected to 1024 channels and normalized (the real
features' temporal structure without running W2V-BERT).

Tolerances (docs/promises.md §5, "semantic codec S_ref"): codes identical, ``S_ref`` max|Δ| that
rounds to 0.000 (asserted ≤ 5e-4) and cos ≥ 0.99999; the same for ``vq2emb`` of the
reference's codes. A code that differs must be a genuine near-tie: its two candidates'
distances in the reference differ by < 1e-6.
"""

from __future__ import annotations

from functools import cache

import mlx_indextts_models  # noqa: F401  (first: it loads the fast BLAS before MLX)

# isort: split

import mlx.core as mx
import numpy as np
import pytest
import torch

from indextts_weights.load import load_semantic_codec
from mlx_indextts_models.semantic_codec import RepCodec
from parity.checkpoints import semantic_codec_checkpoint, semantic_codec_module
from parity.converted import CONVERTIBLE, converted_weights
from parity.harness import assert_close, cached_arrays, compare

S_REF_TOL = 5e-4  # rounds to the 0.000 of docs/promises.md §5
TIE_TOL = 1e-6
LENGTHS = (40, 375, 750)
INPUTS = (*(f"normal_{t}" for t in LENGTHS), "smooth_750", "speech_15s")


def make_input(name: str) -> np.ndarray:
    """Seeded ``(1, T, 1024)`` float32 input named ``normal_T``, ``smooth_T`` or a speech clip."""
    if name.startswith("speech"):
        return speech_input(name)
    kind, length = name.split("_")
    rng = np.random.default_rng(1000 + int(length) + (0 if kind == "normal" else 1))
    x = rng.standard_normal((1, int(length), 1024))
    if kind == "smooth":
        kernel = np.hanning(9)
        x = np.apply_along_axis(lambda col: np.convolve(col, kernel, mode="same"), 1, x)
        x = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
        x += 0.5 * rng.standard_normal((1, 1, 1024))  # per-channel offsets
    return x.astype(np.float32)


def speech_input(name: str) -> np.ndarray:
    """Features with speech's dynamics: the clip's W2V-BERT input fbank (T, 160) through a
    seeded random projection to 1024 channels, normalized per channel."""
    from clips import clip
    from mlx_audio_features import seamless_fbank

    fbank = np.array(seamless_fbank(clip(name, 16000)).input_features, np.float64)
    projection = np.random.default_rng(7).standard_normal((fbank.shape[1], 1024))
    x = fbank @ projection / np.sqrt(fbank.shape[1])
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x[None].astype(np.float32)


def checkpoint():
    return semantic_codec_checkpoint(0)


@cache
def reference_model():
    module = semantic_codec_module(0)
    from safetensors.torch import load_model

    load_model(module, str(checkpoint()))  # strict, as infer_v2 loads it
    return module


def reference_outputs(name: str) -> dict[str, np.ndarray]:
    def compute() -> dict[str, np.ndarray]:
        codec = reference_model()
        x = torch.from_numpy(make_input(name))
        with torch.no_grad():
            codes, s_ref = codec.quantize(x)
            emb = codec.quantizer.vq2emb(codes.unsqueeze(1)).transpose(1, 2)
            # Distances as decode_latents computes them, to judge near-ties.
            quantizer = codec.quantizer.quantizers[0]
            encoded = codec.encoder(x.transpose(1, 2)).transpose(1, 2)
            latents = quantizer.in_project(encoded)[0].T
            enc = torch.nn.functional.normalize(latents)
            book = torch.nn.functional.normalize(quantizer.codebook.weight)
            dist = (enc**2).sum(1, keepdim=True) - 2 * enc @ book.T + (book**2).sum(1)[None]
        return {
            "codes": codes.numpy(),
            "s_ref": s_ref.numpy(),
            "vq2emb": emb.numpy(),
            "dist": dist.numpy(),
        }

    return cached_arrays("semantic_codec", compute, checkpoint=checkpoint().parent.name, input=name)


@cache
def our_model() -> RepCodec:
    """Our codec from the ``semantic_codec.npz`` that ``indextts-weights convert`` wrote."""
    return load_semantic_codec(converted_weights(CONVERTIBLE) / "semantic_codec.npz")


def assert_codes_match_or_tie(name: str, ref: dict[str, np.ndarray], ours: np.ndarray) -> int:
    """Codes equal, except at genuine near-ties; returns how many ties flipped."""
    ref_codes = ref["codes"]
    assert ours.shape == ref_codes.shape and ours.dtype == np.int32
    frames = np.nonzero(ours[0] != ref_codes[0])[0]
    for t in frames:
        d = ref["dist"][t]
        gap = abs(float(d[ours[0, t]]) - float(d[ref_codes[0, t]]))
        assert gap < TIE_TOL, f"{name} frame {t}: code {ours[0, t]} vs {ref_codes[0, t]}, gap {gap}"
    return len(frames)


@pytest.mark.parametrize("name", INPUTS)
def test_quantize_matches_reference(name, record):
    ref = reference_outputs(name)
    codes, s_ref = our_model().quantize(mx.array(make_input(name)))
    codes, s_ref = np.array(codes), np.array(s_ref)
    flipped = assert_codes_match_or_tie(name, ref, codes)
    record(compare(f"semantic_codec codes [{name}]", ref["codes"], codes))
    result = record(compare(f"semantic_codec S_ref [{name}]", ref["s_ref"], s_ref))
    if flipped == 0:
        assert_close(result, max_abs=S_REF_TOL)
    else:  # only the tied frames may differ
        same = codes[0] == ref["codes"][0]
        assert_close(compare(name, ref["s_ref"][:, same], s_ref[:, same]), max_abs=S_REF_TOL)


@pytest.mark.parametrize("name", INPUTS)
def test_vq2emb_matches_reference(name, record):
    ref = reference_outputs(name)
    ours = np.array(our_model().vq2emb(mx.array(ref["codes"].astype(np.int32))))
    result = record(compare(f"semantic_codec vq2emb [{name}]", ref["vq2emb"], ours))
    assert_close(result, max_abs=S_REF_TOL)


def test_codes_use_many_entries():
    """The comparison is not trivial: the inputs spread over the codebook."""
    codes = reference_outputs("normal_750")["codes"]
    assert len(np.unique(codes)) > 50
