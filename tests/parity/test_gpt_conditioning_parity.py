"""GPT conditioning parity: our MLX ``GPTConditioning`` vs the reference ``UnifiedVoice``.

The checkpoint is ``UnifiedVoice(**cfg.gpt)`` (real config, 871M parameters) with a seeded
random init saved as a plain-state-dict ``gpt.pth``. Ours is the conditioning side of
:class:`UnifiedVoice` (a :class:`GPTConditioning`), loaded strictly by ``load_gpt`` from the
``gpt.npz`` that ``indextts-weights convert`` made of that file. The reference
outputs come from the seeded module itself (its state dict is the checkpoint's; a few
tensors are checked against the file) and are cached.

Calls mirror ``infer_v2``: the features ``(1, T, 1024)`` go in as ``spk_cond_emb`` /
``emo_cond_emb`` with the "lengths" ``torch.tensor([x.shape[-1]])`` = 1024 that
``infer_v2`` passes (every frame valid for T ≤ 1024; ours reproduces this with
``lengths=None``). Inputs: seeded standard-normal features (the normalized W2V-BERT
features are roughly zero-mean, unit-variance) of T = 40, 202 and 749 frames (0.8 s, 4 s,
15 s of prompt), each with its own emotion input (another seed and length), and espeak-ng
speech (15 s for the speaker, 4 s for the emotion) whose W2V-BERT input fbank is projected
to 1024 channels and normalized (speech's temporal structure without running W2V-BERT).

Stages: speaker latents ``get_conditioning`` (1, 32, 1280); ``get_emo_conditioning``
(1, 1024); the audio-path ``get_emovec`` (1, 1280); ``merge_emovec`` at alpha 1.0 and
0.6; the 34-position ``conds_latent`` of ``inference_speech``. Tolerance: cos ≥ 0.99999
and max|Δ| ≤ 1e-4 (measured: ≤ 3.4e-6 on the latents and prefix, ≤ 1.5e-6 on the emotion
stages; the conformers' input Linear sums 261632 products per output, so float32
summation order shows at that level). A small ``UnifiedVoice`` checks batches padded
with their true lengths (the masks), which ``infer_v2`` never produces.
"""

from __future__ import annotations

import gc
from pathlib import Path

import mlx_indextts_models  # noqa: F401  (first: it loads the fast BLAS before MLX)

# isort: split

import mlx.core as mx
import numpy as np
import pytest
import torch

from indextts_weights.mapping import gpt_conditioning as mapping
from mlx_indextts_models.conformer import positional_encoding
from mlx_indextts_models.gpt_conditioning import GPTConditioning, GPTConditioningArgs
from parity.checkpoints import gpt_checkpoint, gpt_module
from parity.harness import assert_close, cached_arrays, compare

MAX_ABS = 1e-4  # measured ≤ 3.4e-6; docs/parity.md: cos ≥ 0.99999 and this
ALPHAS = (1.0, 0.6)
#: (speaker input, emotion input) pairs; ``normal_T_s``: seeded N(0, 1), T frames, seed s.
PAIRS = (
    ("normal_40_0", "normal_57_1"),
    ("normal_202_0", "normal_310_1"),
    ("normal_749_0", "normal_749_1"),
    ("speech_15s", "speech_sentence"),
)


def make_input(name: str) -> np.ndarray:
    """``(1, T, 1024)`` float32 features named ``normal_T_seed`` or after a speech clip."""
    if name.startswith("speech"):
        return speech_input(name)
    _, length, seed = name.split("_")
    rng = np.random.default_rng(4000 + 10 * int(length) + int(seed))
    return rng.standard_normal((1, int(length), 1024)).astype(np.float32)


def speech_input(name: str) -> np.ndarray:
    """A clip's W2V-BERT input fbank (T, 160) through a seeded random projection to 1024
    channels, normalized per channel (speech dynamics without running W2V-BERT)."""
    from clips import clip
    from mlx_audio_features import seamless_fbank

    fbank = np.array(seamless_fbank(clip(name, 16000)).input_features, np.float64)
    projection = np.random.default_rng(7).standard_normal((fbank.shape[1], 1024))
    x = fbank @ projection / np.sqrt(fbank.shape[1])
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x[None].astype(np.float32)


def checkpoint() -> Path:
    return gpt_checkpoint(0)


def _reference_stages(model, spk: torch.Tensor, emo: torch.Tensor) -> dict[str, np.ndarray]:
    """Every stage for one pair, called as ``infer_v2``/``inference_speech`` call them."""
    spk_len = torch.tensor([spk.shape[-1]])  # 1024: infer_v2 passes the feature size
    emo_len = torch.tensor([emo.shape[-1]])
    out = {
        "spk_latent": model.get_conditioning(spk.transpose(1, 2), spk_len),
        "emo_conditioning": model.get_emo_conditioning(emo.transpose(1, 2), emo_len),
        "emovec": model.get_emovec(emo, emo_len),
    }
    for alpha in ALPHAS:
        out[f"merged_{alpha}"] = model.merge_emovec(spk, emo, spk_len, emo_len, alpha=alpha)
    # inference_speech's conds_latent, with the alpha-0.6 blend as emo_vec
    tmp = torch.zeros(1)
    duration_emb = model.speed_emb(torch.zeros_like(tmp).long())
    duration_emb_half = model.speed_emb(torch.ones_like(tmp).long())
    out["prefix"] = torch.cat(
        (
            out["spk_latent"] + out[f"merged_{ALPHAS[-1]}"].unsqueeze(1),
            duration_emb_half.unsqueeze(1),
            duration_emb.unsqueeze(1),
        ),
        1,
    )
    return {k: v.numpy() for k, v in out.items()}


def _check_module_is_checkpoint(model) -> None:
    """The seeded module's conditioning tensors equal the cached file's (mmap, cheap)."""
    state = torch.load(checkpoint(), map_location="cpu", mmap=True, weights_only=True)
    for key, value in model.state_dict().items():
        if mapping.is_conditioning_key(key) and not torch.equal(value, state[key]):
            raise AssertionError(f"gpt_module(0) differs from {checkpoint()} at {key}")


def _compute_reference() -> dict[str, np.ndarray]:
    model = gpt_module(0)
    _check_module_is_checkpoint(model)
    for name in ("gpt", "inference_model", "mel_embedding", "text_embedding"):
        if hasattr(model, name):
            delattr(model, name)  # only the conditioning side is needed
    gc.collect()
    arrays = {}
    with torch.no_grad():
        for spk_name, emo_name in PAIRS:
            spk = torch.from_numpy(make_input(spk_name))
            emo = torch.from_numpy(make_input(emo_name))
            for key, value in _reference_stages(model, spk, emo).items():
                arrays[f"{spk_name}/{emo_name}/{key}"] = value
    arrays["pe"] = model.conditioning_encoder.embed.pos_enc.pe[0, :1000].numpy()
    arrays["speed_emb"] = model.speed_emb.weight.detach().numpy()
    del model
    gc.collect()
    return arrays


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    return cached_arrays(
        "gpt_conditioning",
        _compute_reference,
        checkpoint=checkpoint().parent.name,
        pairs=PAIRS,
        alphas=ALPHAS,
    )


@pytest.fixture(scope="module")
def ours(unified_voice) -> GPTConditioning:
    """The conditioning side of our ``UnifiedVoice`` (``load_gpt`` of the converted file)."""
    return unified_voice


@pytest.fixture(scope="module")
def our_stages(ours) -> dict[str, dict[str, np.ndarray]]:
    stages = {}
    for spk_name, emo_name in PAIRS:
        spk, emo = mx.array(make_input(spk_name)), mx.array(make_input(emo_name))
        out = {
            "spk_latent": ours.get_conditioning(spk),
            "emo_conditioning": ours.get_emo_conditioning(emo),
            "emovec": ours.get_emovec(emo),
        }
        for alpha in ALPHAS:
            out[f"merged_{alpha}"] = ours.merge_emovec(spk, emo, alpha)
        out["prefix"] = ours.conditioning_prefix(out["spk_latent"], out[f"merged_{ALPHAS[-1]}"])
        stages[f"{spk_name}/{emo_name}"] = {k: np.array(v) for k, v in out.items()}
    return stages


#: (key, table label, inputs it depends on: "spk", "emo" or "both")
STAGES = (
    ("spk_latent", "speaker conditioning latents", "spk"),
    ("emo_conditioning", "emo conditioning", "emo"),
    ("emovec", "emovec (audio path)", "emo"),
    *((f"merged_{a}", f"emovec alpha {a}", "both") for a in ALPHAS),
    ("prefix", "conditioning prefix", "both"),
)


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}+{p[1]}")
@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s[0])
def test_stage_matches_reference(pair, stage, reference, our_stages, record):
    key, label, inputs = stage
    pair_key = "/".join(pair)
    ref = reference[f"{pair_key}/{key}"]
    ours = our_stages[pair_key][key]
    name = {"spk": pair[0], "emo": pair[1], "both": "+".join(pair)}[inputs]
    result = record(compare(f"{label} [{name}]", ref, ours))
    assert_close(result, max_abs=MAX_ABS)


def test_shapes_are_the_references(our_stages):
    stages = our_stages["normal_749_0/normal_749_1"]
    assert stages["spk_latent"].shape == (1, 32, 1280)
    assert stages["emo_conditioning"].shape == (1, 1024)
    assert stages["emovec"].shape == stages["merged_0.6"].shape == (1, 1280)
    assert stages["prefix"].shape == (1, 34, 1280)


def test_positional_table_equals_the_checkpoint_buffer(reference):
    """The recomputed sinusoidal table (the ignored ``pe`` buffer) matches the file's."""
    table = reference["pe"]
    ours = positional_encoding(len(table), table.shape[1])
    # Equal up to float32 rounding: torch's exp differs from numpy's by 1 ulp at some
    # frequencies, which the angle p · div_term scales by the position p.
    position = np.arange(len(table))[:, None]
    assert np.all(np.abs(ours - table) <= 1.5e-7 * (position + 1))
    np.testing.assert_array_equal(ours[0], table[0])


def test_speed_embeddings_are_distinct(reference, ours):
    """Our speed_emb is the reference's and its rows differ (a swapped order in the prefix
    would show)."""
    np.testing.assert_array_equal(np.array(ours.speed_emb.weight), reference["speed_emb"])
    assert np.abs(reference["speed_emb"][0] - reference["speed_emb"][1]).max() > 0.05


def test_merge_blends_differently(reference):
    """alpha changes the result (the two prompts' emovecs differ), so the blend is checked."""
    pair = "/".join(PAIRS[2])
    delta = np.abs(reference[f"{pair}/merged_1.0"] - reference[f"{pair}/merged_0.6"]).max()
    assert delta > 1e-3


# --- masks with real padding, on a small UnifiedVoice (infer_v2 never pads) -----------

SMALL_GPT = {
    "layers": 1,
    "model_dim": 64,
    "heads": 2,
    "max_text_tokens": 8,
    "max_mel_tokens": 8,
    "number_text_tokens": 16,
    "number_mel_codes": 18,
    "start_mel_token": 16,
    "stop_mel_token": 17,
    "condition_type": "conformer_perceiver",
    "condition_num_latent": 4,
    "condition_module": {
        "output_size": 16,
        "linear_units": 24,
        "attention_heads": 2,
        "num_blocks": 2,
        "input_layer": "conv2d2",
        "perceiver_mult": 2,
    },
    "emo_condition_module": {
        "output_size": 16,
        "linear_units": 20,
        "attention_heads": 2,
        "num_blocks": 1,
        "input_layer": "conv2d2",
        "perceiver_mult": 2,
    },
}


def test_padded_batch_matches_reference_small_config():
    """Batch of two prompts padded to one length with their true lengths: the conformer
    masks (attention, conv module) and the perceiver's 32-True-padded mask as the
    reference applies them, on a small seeded ``UnifiedVoice``."""
    from parity.harness import seeded_module
    from parity.reference import reference_module

    model_v2 = reference_module("gpt.model_v2")
    ref = seeded_module(lambda: model_v2.UnifiedVoice(**SMALL_GPT), 11)
    state = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    ours = GPTConditioning(GPTConditioningArgs.from_config(SMALL_GPT))
    ours.load_weights(
        [(k, mx.array(v)) for k, v in mapping.sanitize_conditioning(state).items()], strict=True
    )
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 30, 1024)).astype(np.float32)
    lengths = [30, 19]
    x[1, 19:] = 5.0  # padding
    xt = torch.from_numpy(x)
    with torch.no_grad():
        ref_latents = ref.get_conditioning(xt.transpose(1, 2), torch.tensor(lengths)).numpy()
        ref_emovec = ref.get_emovec(xt, torch.tensor(lengths)).numpy()
    our_latents = np.array(ours.get_conditioning(mx.array(x), lengths))
    our_emovec = np.array(ours.get_emovec(mx.array(x), lengths))
    assert_close(compare("small padded latents", ref_latents, our_latents), max_abs=1e-5)
    assert_close(compare("small padded emovec", ref_emovec, our_emovec), max_abs=1e-5)
    # the mask matters here: without it the padded row comes out different
    unmasked = np.array(ours.get_conditioning(mx.array(x), [30, 30]))
    assert np.abs(unmasked[1] - ref_latents[1]).max() > 1e-3
