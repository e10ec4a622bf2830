"""``s2mel.pth``'s ``net`` → ``s2mel_pytorch.npz``: sub-models prefixed, DDP prefixes
stripped, missing/unknown sub-models and every sub-mapping's errors named together. (The
whole real-size file is converted and loaded strictly in the parity suite.)"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from indextts_weights.errors import WeightsError
from indextts_weights.mapping.s2mel import SUBMODELS, sanitize, strip_module_prefix
from mlx_indextts_models.s2mel.model import GPT_LAYER_DIMS


def gpt_layer_state(prefix: str = "") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    dims = GPT_LAYER_DIMS
    state = {}
    for i, (a, b) in enumerate(pairwise(dims)):
        state[f"{prefix}{i}.weight"] = rng.standard_normal((b, a)).astype(np.float32)
        state[f"{prefix}{i}.bias"] = rng.standard_normal(b).astype(np.float32)
    return state


def test_strip_module_prefix_only_at_the_start():
    got = strip_module_prefix({"module.a.b": 1, "c.module.d": 2, "e": 3})
    assert got == {"a.b": 1, "c.module.d": 2, "e": 3}


def test_missing_and_unknown_sub_models_are_named_with_sub_mapping_errors():
    net = {"gpt_layer": gpt_layer_state("module."), "style_encoder": {"w": np.zeros(1)}}
    with pytest.raises(WeightsError) as info:
        sanitize(net)
    message = str(info.value)
    assert "unknown sub-models ['style_encoder']" in message
    assert "missing sub-models ['cfm', 'length_regulator']" in message
    assert "gpt_layer" not in message  # its "module." keys were mapped
    broken = gpt_layer_state()
    broken["3.weight"] = np.zeros((2, 2), np.float32)
    with pytest.raises(WeightsError, match=r"gpt_layer: .*3\.weight"):
        sanitize({"gpt_layer": broken})


def test_sub_models_and_their_order():
    assert list(SUBMODELS) == ["cfm", "length_regulator", "gpt_layer"]
    with pytest.raises(WeightsError, match="sub-model names to state dicts"):
        sanitize({"cfm": np.zeros(3)})
