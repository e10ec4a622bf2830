"""``s2mel.pth`` ``net.gpt_layer`` → :class:`mlx_indextts_models.gpt.GPTLayer`.

The reference's ``gpt_layer`` (``indextts/s2mel/modules/commons.py: MyModel``) is
``nn.Sequential(Linear(1280, 256), Linear(256, 128), Linear(128, 1024))`` with no
activation in between: it maps the GPT's 1280-d latents to the 1024-d space of the
semantic features. Its state dict (``docs/reference/keys/s2mel.txt``) has
``{0,1,2}.{weight,bias}``; the MLX module holds the same Linears as ``layers``, so
``<i>.weight`` becomes ``layers.<i>.weight``. ``nn.Linear`` weights are ``(out, in)`` on
both sides and are kept as they are.

Strict: every key and shape of :data:`SHAPES` must be there and nothing else (the reference
loads ``s2mel.pth`` non-strictly and would silently skip a mismatch).
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise

import numpy as np

from indextts_weights.mapping.checks import check_shapes
from mlx_indextts_models.s2mel.model import GPT_LAYER_DIMS

#: Official ``net.gpt_layer`` keys with their shapes (Linear 1280 → 256 → 128 → 1024,
#: :data:`~mlx_indextts_models.s2mel.model.GPT_LAYER_DIMS`).
SHAPES: dict[str, tuple[int, ...]] = {
    key: shape
    for i, (a, b) in enumerate(pairwise(GPT_LAYER_DIMS))
    for key, shape in ((f"{i}.weight", (b, a)), (f"{i}.bias", (b,)))
}


def sanitize_gpt_layer(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The ``gpt_layer`` state dict of ``s2mel.pth`` (numpy) → :class:`GPTLayer` parameters.

    Returns:
        ``layers.<i>.{weight,bias}`` → float32 array, values unchanged.

    Raises:
        WeightsError: naming every unknown, missing and mis-shaped key.
    """
    check_shapes(state, SHAPES, "s2mel checkpoint gpt_layer")
    return {f"layers.{k}": np.asarray(state[k]).astype(np.float32, copy=False) for k in SHAPES}
