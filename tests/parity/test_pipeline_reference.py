"""The captured reference pipeline (:mod:`parity.pipeline_reference`) is self-consistent.

The reference ``IndexTTS2`` runs twice on one instance (noise seeds 0 and 1) on the 0.8 s
"Hello." clip with a short one-segment text and 16 greedy-equivalent codes. Each stage is
checked against facts computed here independently (numpy from the checkpoint files,
sentencepiece, the clip itself), not against the reference's own intermediate code paths.

Cold: ~3 min (build ~45 s + ~65 s per run on a quiet machine, up to ~2.5 min per run
under load); peak RSS 8.3 GB. Warm: the cached NPZ, ~6 s for the module.
"""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from clips import clip
from parity import checkpoints
from parity.pipeline_reference import (
    no_network,
    reference_pipeline,
    tiny_bpe_model,
    voice_wav,
)

TEXT = "Hello there, how are you today?"
MAX_CODES = 16
STOP = 8193


@pytest.fixture(scope="module")
def bpe_model() -> Path:
    return tiny_bpe_model()


@pytest.fixture(scope="module")
def voice() -> Path:
    return voice_wav("speech_hello")


@pytest.fixture(scope="module")
def runs(bpe_model: Path, voice: Path) -> list[dict[str, np.ndarray]]:
    with mock.patch.dict(os.environ, {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}):
        return reference_pipeline(
            voice, TEXT, bpe_model=bpe_model, max_mel_tokens=MAX_CODES, noise_seeds=(0, 1)
        )


@pytest.fixture(scope="module")
def run(runs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return runs[0]


def _codec_lookup(codes: np.ndarray) -> np.ndarray:
    """``out_project(codebook[codes])`` from the codec file: ``(..., n)`` → ``(..., n, 1024)``."""
    from safetensors.numpy import load_file

    state = load_file(checkpoints.semantic_codec_checkpoint(0))
    prefix = "quantizer.quantizers.0."
    g = state[prefix + "out_project.weight_g"][:, 0, 0]
    v = state[prefix + "out_project.weight_v"][:, :, 0]
    weight = g[:, None] * v / np.linalg.norm(v, axis=1, keepdims=True)
    emb = state[prefix + "codebook.weight"][codes]
    return emb @ weight.T + state[prefix + "out_project.bias"]


def test_nothing_downloaded(run: dict[str, np.ndarray]) -> None:
    from huggingface_hub import constants

    hub = Path(constants.HF_HUB_CACHE)
    for repo in (
        "facebook/w2v-bert-2.0",
        "amphion/MaskGCT",
        "funasr/campplus",
        "IndexTeam/IndexTTS-2",
    ):
        assert not (hub / ("models--" + repo.replace("/", "--"))).exists(), repo
    assert not (hub / "models--nvidia--bigvgan_v2_22khz_80band_256x").exists()
    import socket

    with no_network(), pytest.raises(ConnectionRefusedError):
        socket.create_connection(("huggingface.co", 443), timeout=1)


def test_text_ids_are_the_sentencepiece_pieces_of_the_text(run, bpe_model: Path) -> None:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(bpe_model))
    ids = run["text ids"]
    assert ids.dtype == np.int32 and ids.shape[0] == 1
    assert sp.decode(ids[0].tolist()) == TEXT.upper()
    assert sp.unk_id() not in ids[0].tolist()


def test_speaker_audio_and_features(run) -> None:
    audio_22k = run["audio_22k"]
    expected = clip(
        "speech_hello", 22050
    )  # the WAV is this clip as PCM-16; 22050→22050 is identity
    np.testing.assert_allclose(audio_22k, expected, atol=1.0 / 32768 + 1e-7)
    assert run["ref_mel"].shape == (1, 80, len(audio_22k) // 256)
    frames = 1 + (len(run["audio_16k"]) - 400) // 160  # kaldi frames, snip edges
    # Frame pairs are stacked; an odd count is padded with a frame of 1.0 (padding_value)
    # and the pair holding it is masked out.
    features, mask = run["seamless fbank"], run["attention mask"]
    assert features.shape == (1, (frames + 1) // 2, 160)
    assert mask.sum() == frames // 2 and mask[0, : frames // 2].all()
    if frames % 2:
        np.testing.assert_array_equal(features[0, -1, 80:], 1.0)
    # The emotion audio is the same file loaded by librosa at 16 kHz: close, not identical.
    assert len(run["emo audio_16k"]) == len(run["audio_16k"])
    assert np.corrcoef(run["emo audio_16k"], run["audio_16k"])[0, 1] > 0.99


def test_normalized_features_use_the_stats_file(run) -> None:
    stats = torch.load(checkpoints.semantic_stats_checkpoint(0), weights_only=True)
    mean, var = stats["mean"].numpy(), stats["var"].numpy()
    for prefix in ("", "emo "):
        hidden = run[prefix + "W2V-BERT hidden[17]"]
        normalized = run[prefix + "normalized semantic features"]
        np.testing.assert_allclose(normalized, (hidden - mean) / np.sqrt(var), rtol=1e-5, atol=1e-5)


def test_s_ref_is_the_codebook_entry_of_each_code(run) -> None:
    codes = run["semantic_codec codes"]
    assert codes.shape == run["semantic_codec S_ref"].shape[:2]
    np.testing.assert_allclose(run["semantic_codec S_ref"], _codec_lookup(codes), atol=2e-5)


def test_campplus_input_is_mean_removed(run) -> None:
    fbank = run["campplus fbank"]
    assert fbank.shape == (1, 1 + (len(run["audio_16k"]) - 400) // 160, 80)
    np.testing.assert_allclose(fbank.mean(axis=1), 0.0, atol=1e-4)
    assert run["CAMPPlus speaker style"].shape == (1, 192)


def test_codes_are_greedy_and_cut_at_stop(run) -> None:
    raw, codes = run["codes raw"], run["codes"]
    assert raw.shape[1] <= MAX_CODES
    row = raw[0].tolist()
    n = row.index(STOP) if STOP in row else len(row)
    assert codes.shape == (1, n) and n > 0
    np.testing.assert_array_equal(codes, raw[:, :n])
    assert (codes >= 0).all() and (codes < 8192).all()


def test_latent_projection_is_gpt_layer(run) -> None:
    state = torch.load(checkpoints.s2mel_checkpoint(0), map_location="cpu", weights_only=True)
    layer = state["net"]["gpt_layer"]
    x = run["GPT latent"].astype(np.float64)
    n = run["codes"].shape[1]
    assert x.shape == (1, n, 1280)
    for i in range(3):  # Linear 1280→256→128→1024, no activations
        x = x @ layer[f"{i}.weight"].numpy().T + layer[f"{i}.bias"].numpy()
    np.testing.assert_allclose(run["GPT latent proj"], x, rtol=1e-4, atol=1e-4)


def test_s_infer_is_code_embedding_plus_latent(run) -> None:
    np.testing.assert_allclose(run["codes embedding"], _codec_lookup(run["codes"]), atol=2e-5)
    np.testing.assert_array_equal(run["S_infer"], run["codes embedding"] + run["GPT latent proj"])


def test_lengths_follow_the_code_count(run) -> None:
    n = run["codes"].shape[1]
    t_ref = run["ref_mel"].shape[-1]
    t_gen = int(np.float32(n) * np.float32(1.72))  # (code_lens * 1.72).long() in float32
    assert run["target length"].tolist() == [t_gen]
    assert run["prompt regulator"].shape == (1, t_ref, 512)
    assert run["inference regulator"].shape == (1, t_gen, 512)
    assert run["CFM output"].shape == (1, 80, t_ref + t_gen)
    assert run["CFM mel"].shape == (1, 80, t_gen)
    assert run["BigVGAN waveform"].shape == (1, 256 * t_gen)


def test_cfm_noise_prompt_and_output(run) -> None:
    out, t_ref = run["CFM output"], run["ref_mel"].shape[-1]
    noise = np.random.default_rng(0).standard_normal(out.shape).astype(np.float32)
    np.testing.assert_array_equal(run["CFM noise"], noise)
    np.testing.assert_array_equal(out[:, :, :t_ref], 0.0)  # prompt frames zeroed every step
    np.testing.assert_array_equal(run["CFM mel"], out[:, :, t_ref:])
    assert np.isfinite(out).all() and out[:, :, t_ref:].std() > 0.1


def test_output_wav_is_the_clamped_waveform(run) -> None:
    wave = run["BigVGAN waveform"][0]
    expected = (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16)
    np.testing.assert_array_equal(run["output wav"], expected)


def test_two_runs_differ_only_from_the_noise_on(runs) -> None:
    first, second = runs
    deterministic = (
        "seamless fbank",
        "normalized semantic features",
        "semantic_codec S_ref",
        "CAMPPlus speaker style",
        "prompt regulator",
        "emovec",
        "codes",
        "GPT latent",
        "S_infer",
        "inference regulator",
    )
    for name in deterministic:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    for name in ("CFM noise", "CFM mel", "BigVGAN waveform"):
        assert first[name].shape == second[name].shape
        assert np.abs(first[name] - second[name]).max() > 1e-2, name
