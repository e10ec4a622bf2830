"""``s2mel.pth`` ``net.cfm`` → the MLX ``CFM`` (:mod:`mlx_indextts_models.s2mel.cfm`).

The reference CFM (``indextts/s2mel/modules/flow_matching.py``) holds the DiT estimator
(``estimator.*``: gpt-fast transformer, timestep embedders, projections, WaveNet head,
final layer). Names are kept; the conversion

* folds the weight-norm pairs (``w = g·v/‖v‖`` over all dims but 0) of the WaveNet convs
  (``wavenet.{in_layers,res_skip_layers}.<i>.conv.conv``, ``wavenet.cond_layer.conv.conv``)
  and ``final_layer.linear``, keeping their biases;
* turns Conv1d weights (the WaveNet convs and ``conv2``) from PyTorch ``(out, in, k)`` into
  MLX ``(out, k, in)``; Linear weights stay ``(out, in)``; everything float32;
* drops by name the parameters inference never reaches (:func:`ignored_keys`):
  ``x_embedder`` (built weight-normed but never called by ``DiT.forward``),
  ``cond_embedder`` (discrete content), ``content_mask_embedder``, and ``skip_in_linear``
  of the transformer blocks that receive no U-ViT skip (``i ≤ depth // 2``);
* drops the buffers the model recomputes (:data:`RECOMPUTED`, each may be absent):
  ``input_pos``, ``t_embedder{,2}.freqs`` (checked against the recomputed values when
  present), ``transformer.freqs_cis`` / ``causal_mask`` / ``mask_cache``.

Strict about names: every unknown key and every missing key is named in one error (the
reference loads ``s2mel.pth`` non-strictly and would silently skip either).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from indextts_weights.layout import conv1d_weight, fold_weight_norm
from indextts_weights.mapping.checks import check_keys

#: Buffers the model recomputes; ignored when present, never required.
RECOMPUTED: tuple[str, ...] = (
    "estimator.input_pos",
    "estimator.t_embedder.freqs",
    "estimator.t_embedder2.freqs",
    "estimator.transformer.freqs_cis",
    "estimator.transformer.causal_mask",
    "estimator.transformer.mask_cache",
)
#: The weight-normed Linear the model uses (``weight_g`` / ``weight_v`` / ``bias``).
_FINAL_LINEAR = "estimator.final_layer.linear"


def ignored_keys(depth: int = 13) -> tuple[str, ...]:
    """Official parameters the inference deliberately never uses, for a ``depth``-block DiT."""
    keys = [
        "estimator.x_embedder.weight_g",
        "estimator.x_embedder.weight_v",
        "estimator.x_embedder.bias",
        "estimator.cond_embedder.weight",
        "estimator.content_mask_embedder.weight",
    ]
    for i in range(depth // 2 + 1):
        keys += [
            f"estimator.transformer.layers.{i}.skip_in_linear.weight",
            f"estimator.transformer.layers.{i}.skip_in_linear.bias",
        ]
    return tuple(keys)


#: :func:`ignored_keys` for IndexTTS-2's 13-block DiT.
IGNORED: tuple[str, ...] = ignored_keys(13)


def _wavenet_convs(wavenet_layers: int) -> list[str]:
    names = ["estimator.wavenet.cond_layer.conv.conv"]
    for i in range(wavenet_layers):
        names += [
            f"estimator.wavenet.in_layers.{i}.conv.conv",
            f"estimator.wavenet.res_skip_layers.{i}.conv.conv",
        ]
    return names


def expected_keys(depth: int = 13, wavenet_layers: int = 8) -> dict[str, int]:
    """Official key → rank of every parameter the model uses (weight-normed layers as
    their ``weight_g``/``weight_v``/``bias`` triples)."""
    keys: dict[str, int] = {}
    for i in range(depth):
        p = f"estimator.transformer.layers.{i}."
        keys |= {
            p + "attention.wqkv.weight": 2,
            p + "attention.wo.weight": 2,
            p + "feed_forward.w1.weight": 2,
            p + "feed_forward.w3.weight": 2,
            p + "feed_forward.w2.weight": 2,
        }
        for norm in ("ffn_norm", "attention_norm"):
            keys |= {
                p + f"{norm}.project_layer.weight": 2,
                p + f"{norm}.project_layer.bias": 1,
                p + f"{norm}.norm.weight": 1,
            }
        if i > depth // 2:
            keys |= {p + "skip_in_linear.weight": 2, p + "skip_in_linear.bias": 1}
    keys |= {
        "estimator.transformer.norm.project_layer.weight": 2,
        "estimator.transformer.norm.project_layer.bias": 1,
        "estimator.transformer.norm.norm.weight": 1,
    }
    for name in (
        "cond_projection",
        "conv1",
        "res_projection",
        "skip_linear",
        "cond_x_merge_linear",
    ):
        keys |= {f"estimator.{name}.weight": 2, f"estimator.{name}.bias": 1}
    for emb in ("t_embedder", "t_embedder2"):
        for j in (0, 2):
            keys |= {f"estimator.{emb}.mlp.{j}.weight": 2, f"estimator.{emb}.mlp.{j}.bias": 1}
    keys |= {"estimator.conv2.weight": 3, "estimator.conv2.bias": 1}
    keys |= {
        "estimator.final_layer.adaLN_modulation.1.weight": 2,
        "estimator.final_layer.adaLN_modulation.1.bias": 1,
        f"{_FINAL_LINEAR}.weight_g": 2,
        f"{_FINAL_LINEAR}.weight_v": 2,
        f"{_FINAL_LINEAR}.bias": 1,
    }
    for conv in _wavenet_convs(wavenet_layers):
        keys |= {f"{conv}.weight_g": 3, f"{conv}.weight_v": 3, f"{conv}.bias": 1}
    return keys


def _timestep_frequencies(half: int) -> np.ndarray:
    arg = np.float32(-math.log(10000)) * np.arange(half, dtype=np.float32)
    frequencies: np.ndarray = np.exp(arg / np.float32(half))
    return frequencies.astype(np.float32)


def sanitize_cfm(
    state: Mapping[str, np.ndarray], *, depth: int = 13, wavenet_layers: int = 8
) -> dict[str, np.ndarray]:
    """The ``cfm`` state dict of ``s2mel.pth`` (numpy) → our ``CFM`` parameters.

    Args:
        state: the keys inside ``net['cfm']`` (``estimator.…``, no ``cfm.`` prefix).
        depth: DiT blocks (``s2mel.DiT.depth``, 13).
        wavenet_layers: WaveNet layers (``s2mel.wavenet.num_layers``, 8).

    Returns:
        ``estimator.…`` parameters, float32, weight norms folded (``….weight``, biases
        kept), conv weights ``(out, k, in)``.

    Raises:
        WeightsError: naming every unknown and missing key, every parameter of the wrong
            rank, and timestep frequencies that differ from the recomputed ones.
    """
    expected = expected_keys(depth, wavenet_layers)
    ignored = set(ignored_keys(depth)) | set(RECOMPUTED)
    wrong_freqs = [
        k
        for k in ("estimator.t_embedder.freqs", "estimator.t_embedder2.freqs")
        if k in state
        and not np.allclose(
            np.asarray(state[k]), _timestep_frequencies(np.size(state[k])), rtol=1e-6, atol=0
        )
    ]
    check_keys(
        state,
        expected,
        ignored,
        "s2mel checkpoint cfm",
        [("timestep frequencies differ from the recomputed ones", wrong_freqs)],
    )

    def f32(key: str) -> np.ndarray:
        return np.asarray(state[key]).astype(np.float32, copy=False)

    out: dict[str, np.ndarray] = {}
    for key, rank in expected.items():
        if key.endswith((".weight_g", ".weight_v")):
            continue
        out[key] = conv1d_weight(f32(key)) if rank == 3 else f32(key)
    out[f"{_FINAL_LINEAR}.weight"] = fold_weight_norm(
        f32(f"{_FINAL_LINEAR}.weight_g"), f32(f"{_FINAL_LINEAR}.weight_v")
    )
    for conv in _wavenet_convs(wavenet_layers):
        weight = fold_weight_norm(f32(f"{conv}.weight_g"), f32(f"{conv}.weight_v"))
        out[f"{conv}.weight"] = conv1d_weight(weight)
    return out
