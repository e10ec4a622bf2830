"""``s2mel.pth`` ``net.length_regulator`` → the MLX ``InterpolateRegulator``
(:mod:`mlx_indextts_models.s2mel.regulator`).

The reference regulator (``indextts/s2mel/modules/length_regulator.py``) with IndexTTS-2's
config has ``content_in_proj`` (Linear 1024→512) and ``model``, an ``nn.Sequential`` of
4 × (Conv1d k3, GroupNorm, Mish) and a final 1×1 Conv1d: parameters at ``model.{0,3,6,9,12}``
(convs) and ``model.{1,4,7,10}`` (GroupNorms). Names are kept; the conversion

* turns the Conv1d weights from PyTorch ``(out, in, k)`` into MLX ``(out, k, in)``;
* keeps the Linear (``(out, in)`` on both sides), the conv biases and the GroupNorm
  affine parameters as they are, in float32;
* drops :data:`IGNORED` by name: ``embedding.weight`` (the codebook of the discrete-input
  variant) and ``mask_token``, which continuous input never reaches.

Strict about names: every unknown key and every missing key is named in one error (the
reference loads ``s2mel.pth`` non-strictly and would silently skip either). Shapes are
checked when loading (:func:`indextts_weights.loading.load_module` or
``load_weights(strict=True)``); here only each parameter's rank.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from indextts_weights.layout import conv1d_weight
from indextts_weights.mapping.checks import check_keys

#: Official keys the inference deliberately never uses (continuous input, no VQ).
IGNORED: tuple[str, ...] = ("embedding.weight", "mask_token")


def expected_keys(n_blocks: int = 4) -> dict[str, int]:
    """Official key → rank for a regulator with ``n_blocks`` (conv, norm, Mish) blocks
    (``len(sampling_ratios)``; 4 in IndexTTS-2). Conv weights are 3-D, the Linear 2-D."""
    keys = {"content_in_proj.weight": 2, "content_in_proj.bias": 1}
    for i in range(n_blocks):
        keys |= {f"model.{3 * i}.weight": 3, f"model.{3 * i}.bias": 1}
        keys |= {f"model.{3 * i + 1}.weight": 1, f"model.{3 * i + 1}.bias": 1}
    keys |= {f"model.{3 * n_blocks}.weight": 3, f"model.{3 * n_blocks}.bias": 1}
    return keys


def sanitize_regulator(
    state: Mapping[str, np.ndarray], *, n_blocks: int = 4
) -> dict[str, np.ndarray]:
    """The ``length_regulator`` state dict of ``s2mel.pth`` (numpy) → our parameters.

    Args:
        state: the keys inside ``net['length_regulator']`` (no ``length_regulator.`` prefix).
        n_blocks: ``len(sampling_ratios)`` of the regulator (4 in IndexTTS-2).

    Returns:
        Same names minus :data:`IGNORED`, float32, conv weights ``(out, k, in)``.

    Raises:
        WeightsError: naming every unknown and missing key and any parameter of the
            wrong rank.
    """
    expected = expected_keys(n_blocks)
    check_keys(state, expected, IGNORED, "s2mel checkpoint length_regulator")
    out: dict[str, np.ndarray] = {}
    for key, rank in expected.items():
        value = np.asarray(state[key]).astype(np.float32, copy=False)
        out[key] = conv1d_weight(value) if rank == 3 else value
    return out
