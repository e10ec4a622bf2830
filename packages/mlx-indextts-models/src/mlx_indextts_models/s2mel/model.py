"""The S2Mel models of ``s2mel.pth`` together (``MyModel(cfg.s2mel, use_gpt_latent=True)``).

:class:`S2Mel` holds the three sub-models ``infer_v2`` uses, under the names of
``s2mel.pth``'s ``net`` entries, so ``s2mel_pytorch.npz`` loads into it strictly:

* ``cfm`` (:class:`~mlx_indextts_models.s2mel.cfm.CFM`: the DiT estimator with its WaveNet
  head, and the Euler sampler);
* ``length_regulator`` (:class:`~mlx_indextts_models.s2mel.regulator.InterpolateRegulator`);
* ``gpt_layer`` (:class:`~mlx_indextts_models.gpt.GPTLayer`: GPT latent 1280 → 1024).

The configuration is the package's data (the ``Args`` defaults), not a yaml file.
"""

from __future__ import annotations

from collections.abc import Sequence

import mlx.nn as nn

from mlx_indextts_models.gpt import GPTLayer
from mlx_indextts_models.s2mel.cfm import CFM
from mlx_indextts_models.s2mel.dit import DiTArgs
from mlx_indextts_models.s2mel.regulator import InterpolateRegulator, RegulatorArgs
from mlx_indextts_models.s2mel.wavenet import WaveNetArgs

#: ``gpt_layer``'s Linear widths in IndexTTS-2 (GPT latent 1280 → 256 → 128 → 1024).
GPT_LAYER_DIMS = (1280, 256, 128, 1024)


class S2Mel(nn.Module):
    """``cfm``, ``length_regulator`` and ``gpt_layer`` of IndexTTS-2's S2Mel."""

    def __init__(
        self,
        dit: DiTArgs | None = None,
        wavenet: WaveNetArgs | None = None,
        regulator: RegulatorArgs | None = None,
        gpt_layer: Sequence[int] = GPT_LAYER_DIMS,
    ) -> None:
        """``gpt_layer``: the Linear widths, GPT latent → ... → semantic dim."""
        super().__init__()
        self.cfm = CFM(dit, wavenet)
        self.length_regulator = InterpolateRegulator(regulator)
        self.gpt_layer = GPTLayer(gpt_layer)
