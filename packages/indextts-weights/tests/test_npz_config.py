"""The ``config`` record of our NPZ files: written by ``save_npz``, read by the loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from indextts_weights.errors import WeightsError
from indextts_weights.load import load_bigvgan, load_semantic_stats
from indextts_weights.loading import expected_shapes
from indextts_weights.npz import (
    META_KEY,
    args_from_record,
    config_record,
    read_config,
    read_npz,
    save_npz,
)
from mlx_indextts_models.bigvgan import BigVGAN, BigVGANArgs
from mlx_indextts_models.campplus import CAMPPlusArgs
from mlx_indextts_models.config import VectorArgs
from mlx_indextts_models.testing import (
    tiny_bigvgan_args,
    tiny_campplus_args,
    tiny_gpt_args,
    tiny_s2mel_args,
    tiny_semantic_codec_args,
    tiny_w2vbert_args,
)

#: Every model's tiny test configuration (nested configs, tuples of tuples, non-defaults).
CUSTOM = [
    tiny_bigvgan_args(),
    tiny_campplus_args(),
    tiny_gpt_args(),
    tiny_s2mel_args(),
    tiny_semantic_codec_args(),
    tiny_w2vbert_args(),
    VectorArgs(7),
]


@pytest.mark.parametrize("args", CUSTOM + [type(a)() for a in CUSTOM[:-1]], ids=repr)
def test_config_record_round_trips_args_exactly(tmp_path, args):
    path = save_npz(tmp_path / "m.npz", {"x": np.ones(2, np.float32)}, model="m", config=args)
    record = read_config(path, model="m")
    assert record == json.loads(json.dumps(config_record(args)))
    rebuilt = args_from_record(type(args), record)
    assert rebuilt == args
    assert repr(rebuilt) == repr(args)  # tuples stay tuples, nested dataclasses stay typed
    assert read_npz(path, model="m").keys() == {"x"}


def test_no_config_record_means_none_and_defaults(tmp_path):
    path = save_npz(tmp_path / "m.npz", {"x": np.ones(2, np.float32)}, model="m")
    assert read_config(path) is None
    with np.load(path) as data:
        assert json.loads(data[META_KEY].tobytes()) == {"format_version": 1, "model": "m"}


def test_record_with_unknown_field_is_refused():
    with pytest.raises(WeightsError, match="no field"):
        args_from_record(BigVGANArgs, {"upsample_initial_chanel": 64})
    with pytest.raises(WeightsError, match="does not fit"):
        args_from_record(CAMPPlusArgs, {"head_num_blocks": [1, 2, 3]})


def test_loader_builds_the_recorded_config_and_explicit_args_win(tmp_path):
    args = BigVGANArgs(
        upsample_initial_channel=64, resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1,),)
    )
    arrays = {k: np.zeros(s, np.float32) for k, s in expected_shapes(BigVGAN(args)).items()}
    arrays["conv_post.weight"] = np.full(arrays["conv_post.weight"].shape, 0.5, np.float32)
    path = save_npz(tmp_path / "bigvgan.npz", arrays, model="bigvgan", config=args)
    model = load_bigvgan(path)
    assert model.args == args
    assert np.all(np.asarray(model.conv_post.weight) == 0.5)
    with pytest.raises(WeightsError, match="does not fit the model"):
        load_bigvgan(path, BigVGANArgs())  # explicit args win: the real size does not fit


def test_semantic_stats_width_from_record(tmp_path):
    stats = {"mean": np.arange(5, dtype=np.float32), "std": np.ones(5, np.float32)}
    path = save_npz(tmp_path / "s.npz", stats, model="semantic_stats", config=VectorArgs(5))
    mean, std = load_semantic_stats(path)
    assert np.asarray(mean).tolist() == [0, 1, 2, 3, 4]
    assert np.asarray(std).tolist() == [1, 1, 1, 1, 1]
    plain = save_npz(tmp_path / "p.npz", stats, model="semantic_stats")
    with pytest.raises(WeightsError, match=r"mean \(5,\) \(expected \(1024,\)\)"):
        load_semantic_stats(plain)
