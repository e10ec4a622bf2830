"""``s2mel.pth`` → ``s2mel_pytorch.npz``: the three S2Mel sub-models under their names.

The official file holds ``{'net': {'cfm': sd, 'length_regulator': sd, 'gpt_layer': sd},
...}`` (``load_checkpoint2`` reads ``net`` and strips DDP's ``module.`` prefixes; other
top-level entries such as optimizer state are not used). Each sub-model has its own
mapping (:func:`~indextts_weights.mapping.s2mel_cfm.sanitize_cfm`,
:func:`~indextts_weights.mapping.s2mel_regulator.sanitize_regulator`,
:func:`~indextts_weights.mapping.gpt_layer.sanitize_gpt_layer`); their outputs are kept
under ``cfm.``, ``length_regulator.`` and ``gpt_layer.``, the attribute names of the MLX
``S2Mel`` container. A sub-model that is missing or unknown is an error, and so is every
problem any sub-mapping finds (all named in one message).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from indextts_weights.errors import WeightsError
from indextts_weights.mapping.gpt_layer import sanitize_gpt_layer
from indextts_weights.mapping.s2mel_cfm import sanitize_cfm
from indextts_weights.mapping.s2mel_regulator import sanitize_regulator
from mlx_indextts_models.s2mel.model import S2MelArgs

SubMapping = Callable[[Mapping[str, np.ndarray], S2MelArgs], dict[str, np.ndarray]]
#: ``net`` entry → its mapping for the sizes of an ``S2MelArgs`` (DiT blocks, WaveNet
#: layers, regulator blocks: they decide which keys exist), in the order converted.
SUBMODELS: dict[str, SubMapping] = {
    "cfm": lambda state, args: sanitize_cfm(
        state, depth=args.dit.depth, wavenet_layers=args.wavenet.num_layers
    ),
    "length_regulator": lambda state, args: sanitize_regulator(
        state, n_blocks=len(args.regulator.sampling_ratios)
    ),
    "gpt_layer": lambda state, args: sanitize_gpt_layer(state),
}


def strip_module_prefix(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drop DDP's ``module.`` prefix from the keys, as ``load_checkpoint2`` does."""
    return {k.removeprefix("module."): v for k, v in state.items()}


def sanitize(
    net: Mapping[str, Mapping[str, np.ndarray]], args: S2MelArgs | None = None
) -> dict[str, np.ndarray]:
    """``s2mel.pth``'s ``net`` (sub-model name → state dict, numpy) → our parameters, for
    S2Mel at ``args`` (default IndexTTS-2's).

    Returns:
        ``cfm.…``, ``length_regulator.…`` and ``gpt_layer.…`` arrays.

    Raises:
        WeightsError: ``net`` is not a mapping of state dicts; a sub-model is missing or
            unknown; or any sub-mapping's errors (each prefixed with its sub-model).
    """
    if not isinstance(net, Mapping) or not all(isinstance(v, Mapping) for v in net.values()):
        raise WeightsError("s2mel.pth: 'net' must map sub-model names to state dicts")
    unknown = sorted(set(net) - set(SUBMODELS))
    missing = [name for name in SUBMODELS if name not in net]
    problems = []
    if unknown:
        problems.append(f"unknown sub-models {unknown}")
    if missing:
        problems.append(f"missing sub-models {missing}")
    out: dict[str, np.ndarray] = {}
    for name, mapping in SUBMODELS.items():
        if name not in net:
            continue
        try:
            mapped = mapping(strip_module_prefix(net[name]), args or S2MelArgs())
        except WeightsError as exc:
            problems.append(f"{name}: {exc}")
            continue
        out.update({f"{name}.{key}": value for key, value in mapped.items()})
    if problems:
        raise WeightsError("s2mel.pth: " + "; ".join(problems))
    return out
