"""The S2Mel models of ``s2mel.pth`` together (``MyModel(cfg.s2mel, use_gpt_latent=True)``).

:class:`S2Mel` holds the three sub-models ``infer_v2`` uses, under the names of
``s2mel.pth``'s ``net`` entries, so ``s2mel_pytorch.npz`` loads into it strictly:

* ``cfm`` (:class:`~mlx_indextts_models.s2mel.cfm.CFM`: the DiT estimator with its WaveNet
  head, and the Euler sampler);
* ``length_regulator`` (:class:`~mlx_indextts_models.s2mel.regulator.InterpolateRegulator`);
* ``gpt_layer`` (:class:`GPTLayer`: GPT latent 1280 → 1024).

The configuration is the package's data (:class:`S2MelArgs` defaults), not a yaml file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import mlx.core as mx
import mlx.nn as nn

from mlx_indextts_models.s2mel.cfm import CFM
from mlx_indextts_models.s2mel.dit import DiT, DiTArgs
from mlx_indextts_models.s2mel.regulator import InterpolateRegulator, RegulatorArgs
from mlx_indextts_models.s2mel.wavenet import WaveNetArgs

#: ``gpt_layer``'s Linear widths in IndexTTS-2 (GPT latent 1280 → 256 → 128 → 1024).
GPT_LAYER_DIMS: tuple[int, ...] = (1280, 256, 128, 1024)


@dataclass
class S2MelArgs:
    """The configuration of :class:`S2Mel`: its sub-models' ``Args`` and ``gpt_layer``'s
    Linear widths (GPT latent → ... → semantic dim)."""

    dit: DiTArgs = field(default_factory=DiTArgs)
    wavenet: WaveNetArgs = field(default_factory=WaveNetArgs)
    regulator: RegulatorArgs = field(default_factory=RegulatorArgs)
    gpt_layer: tuple[int, ...] = GPT_LAYER_DIMS


class GPTLayer(nn.Module):
    """``gpt_layer`` of S2Mel: Linear 1280→256→128→1024 with no activations between."""

    def __init__(self, dims: Sequence[int] = GPT_LAYER_DIMS) -> None:
        super().__init__()
        self.layers = [nn.Linear(a, b) for a, b in pairwise(dims)]

    def __call__(self, latent: mx.array) -> mx.array:
        """``(B, n, 1280)`` GPT latents → ``(B, n, 1024)`` (``GPT latent proj``)."""
        for layer in self.layers:
            latent = layer(latent)
        return latent


class S2Mel(nn.Module):
    """``cfm``, ``length_regulator`` and ``gpt_layer`` of IndexTTS-2's S2Mel."""

    def __init__(self, args: S2MelArgs | None = None) -> None:
        super().__init__()
        self.args = args = args or S2MelArgs()
        self.cfm = CFM(DiT(args.dit, args.wavenet))
        self.length_regulator = InterpolateRegulator(args.regulator)
        self.gpt_layer = GPTLayer(args.gpt_layer)
