"""CAMPPlus parity: our MLX port vs the reference ``CAMPPlus`` at the real config.

The checkpoint is the reference's own seeded ``campplus_cn_common.bin`` (BatchNorm
statistics perturbed, see :func:`parity.harness.seeded_module`), converted by
``indextts-weights convert`` (torch-free) and loaded strictly with ``load_campplus``.
Both sides get the same input: the
reference's Kaldi fbank minus its per-bin mean (docs/data-flow.md step 8); an end-to-end
variant computes our side's features with ``mlx_audio_features.kaldi_fbank``.
Tolerance (docs/promises.md §5): style max|Δ| < 0.015, cos ≥ 0.99999.

With random weights the style is dominated by an input-independent part: two clips'
styles have cosine ≈ 0.999, and a kernel stored in the wrong orientation in the trunk
still gives max|Δ| < 0.007 and cos up to 0.999999 against the reference. So two more
comparisons carry the part that depends on the audio: the FCM head's output (before the
trunk washes the input out) and the difference between two clips' styles. The mutation
test shows each catches a wrong layout that the style alone lets through.
"""

from __future__ import annotations

from pathlib import Path

import mlx_audio_features as F  # first: it loads the fast BLAS before MLX

# isort: split

import mlx.core as mx
import numpy as np
import pytest
import torch

from clips import clip
from indextts_weights.errors import WeightsError
from indextts_weights.load import load_campplus
from indextts_weights.loading import load_module
from indextts_weights.mapping.campplus import sanitize
from indextts_weights.npz import save_npz
from indextts_weights.readers import read_state_dict
from mlx_indextts_models.campplus import CAMPPlus, CAMPPlusArgs
from parity.checkpoints import campplus_checkpoint
from parity.harness import assert_close, cached_arrays, compare
from parity.reference import reference_module
from parity.reference_features import torchaudio_fbank

STYLE_TOL = 0.015
HEAD_TOL = 1e-4  # head outputs reach ~1.4; observed max|Δ| ~1e-6
CLIPS = ("speech_hello", "speech_sentence", "speech_15s")
PAIRS = (("speech_15s", "speech_sentence"), ("speech_15s", "speech_hello"))


def official_state(path: Path) -> dict[str, np.ndarray]:
    """The official checkpoint as a numpy state dict, read torch-free as convert reads it."""
    return read_state_dict(path)


def reference_fbank(audio_16k: np.ndarray) -> np.ndarray:
    """Step 8's input: ``kaldi.fbank(...)`` minus its mean over time, ``(T, 80)``."""
    feat = torchaudio_fbank(audio_16k)
    return feat - feat.mean(axis=0, keepdims=True)


def reference_outputs(checkpoint: Path, name: str) -> dict[str, np.ndarray]:
    """Reference features ``(T, 80)``, FCM head output ``(1, 320, T)`` and style ``(1, 192)``
    for one clip, cached per checkpoint and clip."""

    def compute() -> dict[str, np.ndarray]:
        dtdnn = reference_module("s2mel.modules.campplus.DTDNN")
        model = dtdnn.CAMPPlus(feat_dim=80, embedding_size=192)
        model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        model.eval()
        feat = torch.from_numpy(reference_fbank(clip(name, 16000)))[None]
        with torch.no_grad():
            head = model.head(feat.permute(0, 2, 1))
            style = model(feat)
        return {"feat": feat[0].numpy(), "head": head.numpy(), "style": style.numpy()}

    return cached_arrays(
        "campplus_reference", compute, checkpoint=checkpoint.parent.name, clip=name
    )


def convert(state: dict[str, np.ndarray], folder: Path) -> CAMPPlus:
    """Our conversion and strict loading, as the pipeline does it."""
    path = save_npz(folder / "campplus.npz", sanitize(state), model="campplus")
    return load_module(CAMPPlus(CAMPPlusArgs()), path, model="campplus")


def head_of(model: CAMPPlus, feat: np.ndarray) -> np.ndarray:
    """Our FCM head output in the reference's ``(1, 320, T)`` layout."""
    return np.array(model.head(mx.array(feat)[None])).transpose(0, 2, 1)


def style_delta(model: CAMPPlus, a: str, b: str, checkpoint: Path) -> np.ndarray:
    feats = (reference_outputs(checkpoint, n)["feat"] for n in (a, b))
    style_a, style_b = (np.array(model(mx.array(f)[None])) for f in feats)
    return style_a - style_b


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    return campplus_checkpoint(0)


@pytest.fixture(scope="module")
def ours(converted) -> CAMPPlus:
    """Our model from the ``campplus.npz`` that ``indextts-weights convert`` wrote."""
    return load_campplus(converted / "campplus.npz")


@pytest.fixture(scope="module")
def our_style(checkpoint, ours):
    """Our style from the reference's features, computed once per clip."""
    styles: dict[str, np.ndarray] = {}

    def style(name: str) -> np.ndarray:
        if name not in styles:
            feat = reference_outputs(checkpoint, name)["feat"]
            styles[name] = np.array(ours(mx.array(feat)[None]))
        return styles[name]

    return style


@pytest.mark.parametrize("name", CLIPS)
def test_style_matches_reference_on_same_features(name, checkpoint, our_style, record):
    ref = reference_outputs(checkpoint, name)["style"]
    result = record(compare(f"CAMPPlus speaker style [{name}]", ref, our_style(name)))
    assert_close(result, max_abs=STYLE_TOL)


@pytest.mark.parametrize("name", CLIPS)
def test_head_matches_reference(name, checkpoint, ours, record):
    ref = reference_outputs(checkpoint, name)
    result = record(compare(f"CAMPPlus FCM head [{name}]", ref["head"], head_of(ours, ref["feat"])))
    assert_close(result, max_abs=HEAD_TOL)


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_style_difference_between_clips_matches_reference(a, b, checkpoint, our_style, record):
    ref_a = reference_outputs(checkpoint, a)["style"]
    ref_b = reference_outputs(checkpoint, b)["style"]
    result = record(
        compare(f"CAMPPlus style Δ [{a} - {b}]", ref_a - ref_b, our_style(a) - our_style(b))
    )
    assert_close(result, max_abs=STYLE_TOL)


@pytest.mark.parametrize("name", CLIPS)
def test_style_end_to_end_with_our_fbank(name, checkpoint, ours, record):
    ref = reference_outputs(checkpoint, name)["style"]
    feat = F.kaldi_fbank(clip(name, 16000), num_mel_bins=80, dither=0.0, sample_frequency=16000)
    style = ours((feat - feat.mean(axis=0, keepdims=True))[None])
    result = record(compare(f"CAMPPlus style, our fbank [{name}]", ref, style))
    assert_close(result, max_abs=STYLE_TOL)


def test_unexpected_key_fails_loudly(checkpoint):
    state = official_state(checkpoint)
    state["xvector.block1.tdnnd1.cam_layer.linear3.weight"] = np.zeros((32, 64, 1), np.float32)
    with pytest.raises(WeightsError, match=r"xvector\.block1\.tdnnd1\.cam_layer\.linear3"):
        sanitize(state)


def test_missing_key_fails_loudly(checkpoint, tmp_path):
    state = official_state(checkpoint)
    del state["xvector.block2.tdnnd7.nonlinear2.batchnorm.running_var"]
    with pytest.raises(WeightsError, match=r"missing: xvector\.block2\.tdnnd7\.nonlinear2"):
        convert(state, tmp_path)


def test_comparisons_catch_wrong_layouts(checkpoint, tmp_path):
    """A head kernel transposed (kh <-> kw) fails the head comparison; a trunk kernel
    reversed in time fails the style-difference comparison (its style alone is within
    max|Δ| 0.002, cos 0.999996 of the reference's)."""
    state = official_state(checkpoint)
    head_key = "head.layer1.0.conv1.weight"
    trunk_key = "xvector.block2.tdnnd5.cam_layer.linear_local.weight"
    state[head_key] = state[head_key].transpose(0, 1, 3, 2).copy()
    state[trunk_key] = state[trunk_key][:, :, ::-1].copy()
    wrong = convert(state, tmp_path)
    ref = reference_outputs(checkpoint, "speech_hello")
    with pytest.raises(AssertionError):
        assert_close(compare("head", ref["head"], head_of(wrong, ref["feat"])), max_abs=HEAD_TOL)

    state = official_state(checkpoint)
    state[trunk_key] = state[trunk_key][:, :, ::-1].copy()
    wrong = convert(state, tmp_path)
    a, b = PAIRS[1]
    ref_delta = (
        reference_outputs(checkpoint, a)["style"] - reference_outputs(checkpoint, b)["style"]
    )
    with pytest.raises(AssertionError):
        assert_close(
            compare("Δ", ref_delta, style_delta(wrong, a, b, checkpoint)), max_abs=STYLE_TOL
        )
