"""The parity harness itself: comparison maths, caching, seeded official-format checkpoints."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

from parity import converted, harness
from parity.harness import (
    TABLE_HEADER,
    assert_close,
    cached_arrays,
    cached_file,
    compare,
    format_table,
    save_torch,
    seeded_module,
)
from parity.reference import reference_module


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INDEXTTS_MLX_CACHE", str(tmp_path))
    return tmp_path


def test_compare_reports_hand_computed_values():
    ref = np.array([[3.0, 0.0], [0.0, 4.0]])
    ours = torch.tensor([[3.0, 0.0], [0.0, 3.0]])
    result = compare("x", ref, ours)
    assert result.shape == (2, 2)
    assert result.max_abs == pytest.approx(1.0)
    assert result.cos == pytest.approx(21.0 / (5.0 * np.sqrt(18.0)))
    assert result.ref_mean == pytest.approx(1.75) and result.ours_mean == pytest.approx(1.5)


def test_compare_refuses_shape_mismatch_and_non_finite_values():
    with pytest.raises(AssertionError, match="shape"):
        compare("x", np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(AssertionError, match="non-finite"):
        compare("x", np.zeros(3), np.array([0.0, np.nan, 0.0]))
    assert compare("zeros", np.zeros(4), np.zeros(4)).cos == 1.0
    assert compare("one zero", np.zeros(4), np.ones(4)).cos == 0.0


def test_assert_close_checks_both_bounds():
    ok = compare("ok", np.ones(10), np.ones(10) + 1e-4)
    assert_close(ok, max_abs=1e-3)
    with pytest.raises(AssertionError, match="outside tolerance"):
        assert_close(ok, max_abs=1e-5)
    flipped = compare("flipped", np.arange(10.0), -np.arange(10.0) * 1e-9)
    with pytest.raises(AssertionError):
        assert_close(flipped, max_abs=10.0)


def test_table_has_the_spec_columns():
    assert " ".join(TABLE_HEADER.split()) == "name | shape | max|Δ| | cos_sim | pt_mean | mlx_mean"
    table = format_table([compare("stage one", np.ones((2, 3)), np.ones((2, 3)))])
    assert "stage one" in table and "2x3" in table


def test_cached_file_builds_once_per_key(tmp_cache):
    calls = []

    def build(path):
        calls.append(path)
        path.write_bytes(b"weights")

    first = cached_file("thing", "thing.pth", build, config={"a": 1}, seed=0)
    again = cached_file("thing", "thing.pth", build, config={"a": 1}, seed=0)
    other = cached_file("thing", "thing.pth", build, config={"a": 1}, seed=1)
    assert first == again != other
    assert len(calls) == 2
    assert first.read_bytes() == b"weights" and str(first).startswith(str(tmp_cache))


def test_cached_file_leaves_nothing_when_the_build_fails(tmp_cache):
    def broken(path):
        path.write_bytes(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        cached_file("broken", "x.bin", broken, seed=0)
    assert not list(tmp_cache.rglob("x.bin"))


def test_cached_arrays_compute_once(tmp_cache):
    calls = []

    def compute():
        calls.append(1)
        return {"y": np.arange(5.0)}

    a = cached_arrays("out", compute, seed=3)
    b = cached_arrays("out", compute, seed=3)
    np.testing.assert_array_equal(a["y"], b["y"])
    assert len(calls) == 1


def campplus():
    dtdnn = reference_module("s2mel.modules.campplus.DTDNN")
    return dtdnn.CAMPPlus(feat_dim=80, embedding_size=192)


def test_seeded_module_is_deterministic_and_randomizes_constant_parameters():
    a, b, c = seeded_module(campplus, 0), seeded_module(campplus, 0), seeded_module(campplus, 1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())
    norms = [k for k in sa if k.endswith("running_var")]
    assert norms and all(not torch.all(sa[k] == 1.0) for k in norms)
    biases = [k for k in sa if k.endswith("bias")]
    assert all(torch.any(sa[k] != 0) for k in biases)
    assert not a.training


def test_campplus_checkpoint_in_official_format_is_cached(tmp_cache):
    def build(path):
        save_torch(seeded_module(campplus, 0).state_dict(), path)

    path = cached_file("campplus", "campplus_cn_common.bin", build, config="real", seed=0)
    assert path.name == "campplus_cn_common.bin"
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert len(state) == 937  # docs/checkpoints.md: CAMPPlus, 937 keys
    expected = seeded_module(campplus, 0).state_dict()
    assert all(torch.equal(state[k], expected[k]) for k in expected)
    mtime = path.stat().st_mtime_ns
    assert cached_file("campplus", "campplus_cn_common.bin", build, config="real", seed=0) == path
    assert path.stat().st_mtime_ns == mtime


def test_cache_key_includes_the_reference_version(monkeypatch):
    before = harness.cache_key(seed=0)
    monkeypatch.setattr(harness, "reference_version", lambda: "indextts2-inference9.9")
    assert harness.cache_key(seed=0) != before


def test_prune_keeps_the_recent_conversions_and_drops_a_pile_of_old_ones(tmp_path):
    now = time.time()
    ages = {"a": 10, "b": 100, "c": 40 * 60, "d": 20 * 60, "e": 2 * 3600}
    for name, age in ages.items():
        folder = tmp_path / f"gpt-{name}"
        folder.mkdir()
        (folder / ".complete").touch()
        os.utime(folder / ".complete", (now - age, now - age))
    converted._prune(tmp_path.glob("gpt-*"))
    # the two most recent stay; beyond them, what is idle for 30 min goes; 1 h idle always goes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpt-a", "gpt-b", "gpt-d"]
