"""The reference's S2Mel regulator and CFM modules (docs/data-flow.md steps 9, 19-20),
built from the seeded official-format ``s2mel.pth`` as ``infer_v2`` builds them, for the
S2Mel parity tests."""

from __future__ import annotations

from pathlib import Path

import mlx_indextts_models  # noqa: F401  (first: it loads the fast BLAS before MLX)

# isort: split

import torch

from parity.checkpoints import real_config, s2mel_module
from parity.reference import reference_module


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
