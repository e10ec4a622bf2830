"""The S2Mel and vocoder stages of REFERENCE-FLOW.md steps 7, 9 and 19-21, on both sides.

As in ``infer_v2``: the prompt regulator stretches ``S_ref`` to the reference mel's frame
count; the inference regulator stretches ``S_infer`` to ``floor(n · 1.72)`` frames; the CFM
generates ``cat[prompt_condition, cond]`` from the reference mel prompt and the speaker
style (its prompt frames are cut off); BigVGAN turns the generated mel into a waveform.
Each side runs from its own previous stage outputs. The reference modules come from the
seeded official-format checkpoints (loaded strictly, as the parity tests load them), ours
from the NPZ files ``indextts-weights convert`` made from them.

The CFM's start noise is given: the reference's ``torch.randn`` is patched for the call,
ours takes ``noise=``.
"""

from __future__ import annotations

import gc
from pathlib import Path
from unittest import mock

import mlx_indextts_models  # noqa: F401  (first: it loads the fast BLAS before MLX)

# isort: split

import mlx.core as mx
import numpy as np
import torch

from indextts_weights.load import load_bigvgan, load_s2mel
from mlx_indextts_models.s2mel.regulator import target_lengths
from parity.checkpoints import bigvgan_reference, real_config, s2mel_module
from parity.reference import reference_module

STAGES = ("prompt regulator", "inference regulator", "CFM mel", "BigVGAN waveform")


def reference_regulator(checkpoint: Path):
    """``InterpolateRegulator`` as ``MyModel`` builds it, ``net.length_regulator`` loaded
    strictly."""
    module = reference_module("s2mel.modules.length_regulator")
    cfg = real_config().s2mel.length_regulator
    regulator = module.InterpolateRegulator(
        channels=cfg.channels,
        sampling_ratios=cfg.sampling_ratios,
        is_discrete=cfg.is_discrete,
        in_channels=cfg.in_channels,
        vector_quantize=cfg.vector_quantize,
        codebook_size=cfg.content_codebook_size,
        n_codebooks=cfg.n_codebooks,
        quantizer_dropout=cfg.quantizer_dropout,
        f0_condition=cfg.f0_condition,
        n_f0_bins=cfg.n_f0_bins,
    )
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["net"]
    regulator.load_state_dict(state["length_regulator"], strict=True)
    return regulator.eval()


def reference_cfm(checkpoint: Path):
    """``MyModel``'s ``cfm`` with ``net.cfm`` loaded strictly, caches set as ``infer_v2``."""
    model = s2mel_module(0)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["net"]
    cfm = model.models["cfm"]
    cfm.load_state_dict(state["cfm"], strict=True)
    cfm.estimator.setup_caches(max_batch_size=1, max_seq_length=8192)
    return cfm.eval()


def seeded_s_infer(codes: int, seed: int = 0) -> np.ndarray:
    """A standard-normal ``S_infer (1, codes, 1024)`` standing for the GPT's codes + latent."""
    rng = np.random.default_rng(7000 + seed)
    return rng.standard_normal((1, codes, 1024)).astype(np.float32)


def seeded_noise(frames: int, seed: int = 0) -> np.ndarray:
    """The CFM start noise ``(1, 80, frames)``, channels-first (the reference's layout)."""
    rng = np.random.default_rng(8000 + seed)
    return rng.standard_normal((1, 80, frames)).astype(np.float32)


def reference_decoder(
    s_ref: np.ndarray,
    ref_mel: np.ndarray,
    style: np.ndarray,
    s_infer: np.ndarray,
    *,
    steps: int,
    cfg_rate: float = 0.7,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """``s_ref (1, n_ref, 1024)``, ``ref_mel (1, 80, T_p)``, ``style (1, 192)``,
    ``s_infer (1, n, 1024)`` → the four stages (reference layouts: mels channels-first)."""
    from parity.checkpoints import s2mel_checkpoint

    checkpoint = s2mel_checkpoint(seed)
    regulator = reference_regulator(checkpoint)
    with torch.no_grad():
        prompt = regulator(
            torch.from_numpy(s_ref),
            ylens=torch.LongTensor([ref_mel.shape[-1]]),
            n_quantizers=3,
            f0=None,
        )[0]
        ylens = (torch.LongTensor([s_infer.shape[1]]) * 1.72).long()  # infer_v2
        cond = regulator(torch.from_numpy(s_infer), ylens=ylens, n_quantizers=3, f0=None)[0]
    del regulator
    cfm = reference_cfm(checkpoint)
    cat = torch.cat([prompt, cond], dim=1)
    noise = torch.from_numpy(seeded_noise(cat.shape[1], seed))
    with torch.no_grad(), mock.patch.object(torch, "randn", return_value=noise):
        mel = cfm.inference(
            cat,
            torch.LongTensor([cat.shape[1]]),
            torch.from_numpy(ref_mel),
            torch.from_numpy(style),
            None,
            steps,
            inference_cfg_rate=cfg_rate,
        )
    mel = mel[:, :, ref_mel.shape[-1] :]
    del cfm
    gc.collect()
    vocoder = bigvgan_reference(seed)
    with torch.inference_mode():
        wave = vocoder(mel.float())
    return {
        "prompt regulator": prompt.numpy(),
        "inference regulator": cond.numpy(),
        "CFM mel": mel.numpy(),
        "BigVGAN waveform": wave[:, 0].numpy(),
    }


def mlx_decoder(
    weights: Path,
    s_ref: np.ndarray,
    ref_mel: np.ndarray,
    style: np.ndarray,
    s_infer: np.ndarray,
    *,
    steps: int,
    cfg_rate: float = 0.7,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Our side, from the converted NPZ files in ``weights``; same arguments as
    :func:`reference_decoder`, results in the reference's layouts."""
    s2mel = load_s2mel(weights / "s2mel_pytorch.npz")
    prompt_len = ref_mel.shape[-1]
    prompt = s2mel.length_regulator(mx.array(s_ref), prompt_len)
    cond = s2mel.length_regulator(mx.array(s_infer), target_lengths(s_infer.shape[1]))
    cat = mx.concatenate([prompt, cond], axis=1)
    noise = mx.array(seeded_noise(cat.shape[1], seed)).transpose(0, 2, 1)
    mel = s2mel.cfm.inference(
        cat,
        mx.array(ref_mel).transpose(0, 2, 1),
        mx.array(style),
        steps,
        cfg_rate,
        noise=noise,
    )[:, prompt_len:]
    wave = load_bigvgan(weights / "bigvgan.npz")(mel)
    return {
        "prompt regulator": np.array(prompt),
        "inference regulator": np.array(cond),
        "CFM mel": np.array(mel).transpose(0, 2, 1),
        "BigVGAN waveform": np.array(wave),
    }
