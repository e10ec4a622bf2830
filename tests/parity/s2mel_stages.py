"""What the S2Mel stage parity tests share: the reference's regulator and CFM modules
(docs/data-flow.md steps 9, 19-20), built from the seeded official-format ``s2mel.pth`` as
``infer_v2`` builds them, and the module fixtures of a stage (:func:`stage_fixtures`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import mlx_indextts_models  # noqa: F401  (first: it loads the fast BLAS before MLX)

# isort: split

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import torch

from indextts_weights.readers import extract_state_dict, read_checkpoint
from parity.checkpoints import real_config, s2mel_checkpoint, s2mel_module
from parity.reference import reference_module

M = TypeVar("M", bound=nn.Module)


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


def load_stage(model: M, sanitize: Callable[[dict], dict], state: dict[str, np.ndarray]) -> M:
    """``model`` with ``sanitize(state)`` loaded strictly (a stage's official state dict)."""
    model.load_weights([(k, mx.array(v)) for k, v in sanitize(state).items()], strict=True)
    return model


def stage_fixtures(part: str, reference_outputs: Callable[[Path], dict[str, np.ndarray]]):
    """The module-scoped fixtures of the parity tests of ``net.<part>`` of the seeded
    ``s2mel.pth`` (``part``: ``"cfm"`` or ``"length_regulator"``), to bind at module level:
    ``checkpoint, state, reference, ours = stage_fixtures(part, reference_outputs)``.

    * ``checkpoint``: the seeded real-config ``s2mel.pth`` (seed 0);
    * ``state``: its ``net.<part>`` state dict, read torch-free;
    * ``reference``: ``reference_outputs(checkpoint)`` (the module's cached reference runs);
    * ``ours``: that part of our ``S2Mel``, loaded from the CLI-converted ``s2mel_pytorch.npz``.
    """

    @pytest.fixture(scope="module")
    def checkpoint() -> Path:
        return s2mel_checkpoint(0)

    @pytest.fixture(scope="module")
    def state(checkpoint) -> dict[str, np.ndarray]:
        return extract_state_dict(read_checkpoint(checkpoint), ("net", part), source="s2mel.pth")

    @pytest.fixture(scope="module")
    def reference(checkpoint) -> dict[str, np.ndarray]:
        return reference_outputs(checkpoint)

    @pytest.fixture(scope="module")
    def ours(s2mel_models) -> nn.Module:
        return getattr(s2mel_models, part)

    return checkpoint, state, reference, ours
