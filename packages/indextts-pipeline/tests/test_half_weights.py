"""Half-precision weight files (``indextts-weights convert --dtype float16|bfloat16``) load
into models of that dtype, and each model's forward stays finite and close to float32.

The tiny random weights of :mod:`indextts_mlx.testing` are re-saved at each precision with
``save_npz(dtype=...)`` (what ``convert --dtype`` writes); every ``load_*`` then builds its
model from the file, and a forward on fixed inputs is compared with the float32 model's.
Tolerance: the largest difference relative to the float32 output's largest magnitude,
:data:`TOLERANCE`: 1e-2 for float16, 5e-2 for bfloat16 (measured: at most 3e-3 and 2.1e-2,
W2V-BERT and BigVGAN the largest; float16 keeps 11 significant bits, bfloat16 8). The
output must also be in the file's dtype: the model computes in it (positional tables,
the CFM's state and the timestep MLP follow the weights' dtype; reductions that underflow
float16, CAMPPlus's statistics pooling, run in float32). Parity of half models with the
reference is measured in the performance issue.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from indextts_mlx.testing import GPT_DIM, SEMANTIC_DIM, STYLE_DIM, TINY_S2MEL, write_tiny_weights
from indextts_weights import load
from indextts_weights.config import WEIGHT_FILES
from indextts_weights.npz import read_config, read_npz, save_npz

TOLERANCE = {"float16": 1e-2, "bfloat16": 5e-2}
MX = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}


def _normal(*shape: int, seed: int) -> mx.array:
    return mx.array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _w2vbert(folder: Path, dtype: mx.Dtype) -> mx.array:
    model = load.load_w2vbert(folder / WEIGHT_FILES["w2vbert"])
    return model(_normal(1, 24, 160, seed=1).astype(dtype))


def _codec(folder: Path, dtype: mx.Dtype) -> mx.array:
    codec = load.load_semantic_codec(folder / WEIGHT_FILES["semantic_codec"])
    return codec.encode(_normal(1, 16, SEMANTIC_DIM, seed=2).astype(dtype))


def _campplus(folder: Path, dtype: mx.Dtype) -> mx.array:
    model = load.load_campplus(folder / WEIGHT_FILES["campplus"])
    return model(_normal(1, 120, 80, seed=3).astype(dtype))


def _gpt(folder: Path, dtype: mx.Dtype) -> mx.array:
    gpt = load.load_gpt(folder / WEIGHT_FILES["gpt"])
    features = _normal(1, 40, SEMANTIC_DIM, seed=4).astype(dtype)
    conds = gpt.conditioning_prefix(gpt.get_conditioning(features), gpt.get_emovec(features))
    return gpt.latent(conds, [5, 6, 7, 8], [1, 2, 3, 4, 5])


def _s2mel(folder: Path, dtype: mx.Dtype) -> mx.array:
    s2mel = load.load_s2mel(folder / WEIGHT_FILES["s2mel"])
    latent = s2mel.gpt_layer(_normal(1, 10, GPT_DIM, seed=5).astype(dtype))
    cond = s2mel.length_regulator(latent, 20)
    prompt = _normal(1, 4, 80, seed=6).astype(dtype)
    noise = _normal(1, 20, TINY_S2MEL.dit.in_channels, seed=7)
    style = _normal(1, STYLE_DIM, seed=8).astype(dtype)
    return s2mel.cfm.inference(cond, prompt, style, steps=3, noise=noise)


def _bigvgan(folder: Path, dtype: mx.Dtype) -> mx.array:
    model = load.load_bigvgan(folder / WEIGHT_FILES["bigvgan"])
    return model(_normal(1, 8, 80, seed=9).astype(dtype))


def _vectors(folder: Path, dtype: mx.Dtype) -> mx.array:
    mean, std = load.load_semantic_stats(folder / WEIGHT_FILES["semantic_stats"])
    emo, spk = load.load_emotion_matrices(
        folder / WEIGHT_FILES["emotion_matrix"], folder / WEIGHT_FILES["speaker_matrix"]
    )
    return mx.concatenate([mean, std, *[g.reshape(-1) for g in emo + spk]])


FORWARDS: dict[str, Callable[[Path, mx.Dtype], mx.array]] = {
    "w2vbert": _w2vbert,
    "semantic_codec": _codec,
    "campplus": _campplus,
    "gpt": _gpt,
    "s2mel": _s2mel,
    "bigvgan": _bigvgan,
    "vectors": _vectors,
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("half")
    write_tiny_weights(root / "float32")
    out = {"float32": root / "float32"}
    for dtype in ("float16", "bfloat16"):
        out[dtype] = root / dtype
        out[dtype].mkdir()
        for name, filename in WEIGHT_FILES.items():
            source = root / "float32" / filename
            save_npz(
                out[dtype] / filename,
                read_npz(source),
                model=name,
                config=read_config(source),
                dtype=dtype,
            )
    return out


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("model", list(FORWARDS))
def test_half_file_loads_in_its_dtype_and_runs_close_to_float32(folders, model, dtype):
    reference = np.array(FORWARDS[model](folders["float32"], mx.float32).astype(mx.float32))
    out = FORWARDS[model](folders[dtype], MX[dtype])
    assert out.dtype == MX[dtype], f"{model} computes in {out.dtype}"
    got = np.array(out.astype(mx.float32))
    assert got.shape == reference.shape
    assert np.isfinite(got).all()
    error = np.abs(got - reference).max() / np.abs(reference).max()
    assert error <= TOLERANCE[dtype], f"{model} {dtype}: relative error {error:.2e}"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_every_parameter_is_cast(folders, dtype):
    from mlx.utils import tree_flatten

    gpt = load.load_gpt(folders[dtype] / WEIGHT_FILES["gpt"])
    dtypes = {v.dtype for _, v in tree_flatten(gpt.parameters())}
    assert dtypes == {MX[dtype]}
