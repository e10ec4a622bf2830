"""NPZ files: format version recorded, strict key/shape checks that name the offender."""

from __future__ import annotations

import mlx.nn as nn
import numpy as np
import pytest

from indextts_weights.errors import WeightsError
from indextts_weights.loading import expected_shapes, load_module
from indextts_weights.npz import (
    FORMAT_VERSION,
    META_KEY,
    check_state,
    npz_keys,
    read_npz,
    reading_progress,
    save_npz,
)


def test_roundtrip_records_format_and_model(tmp_path):
    path = save_npz(tmp_path / "m.npz", {"a.weight": np.ones((2, 3), np.float32)}, model="m")
    raw = np.load(path, allow_pickle=False)
    assert META_KEY in raw.files and FORMAT_VERSION == 1
    arrays = read_npz(path, model="m")
    assert list(arrays) == ["a.weight"]
    with pytest.raises(WeightsError, match="holds 'm' weights"):
        read_npz(path, model="other")


def test_unversioned_or_missing_files_are_refused(tmp_path):
    np.savez(tmp_path / "old.npz", w=np.ones(2))
    with pytest.raises(WeightsError, match="no format version"):
        read_npz(tmp_path / "old.npz")
    with pytest.raises(WeightsError, match="not found"):
        read_npz(tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(WeightsError, match="not a readable NPZ"):
        read_npz(tmp_path / "junk.npz")


def test_check_state_names_each_problem():
    expected = {"a": (2,), "b": (3, 3), "c": (1,)}
    found = {"a": np.ones(2), "b": np.ones((3, 2)), "extra": np.ones(1), "skip": np.ones(1)}
    with pytest.raises(WeightsError) as err:
        check_state(found, expected, source="x.npz", ignored=["skip"])
    message = str(err.value)
    assert "missing: c" in message and "unexpected: extra" in message
    assert "b (3, 2) (expected (3, 3))" in message and "skip" not in message
    check_state({"a": np.ones(2)}, {"a": (2,)}, source="ok")


def test_load_module_is_strict(tmp_path):
    model = nn.Linear(3, 2)
    good = {"weight": np.arange(6, dtype=np.float32).reshape(2, 3), "bias": np.ones(2, np.float32)}
    save_npz(tmp_path / "good.npz", good, model="lin")
    load_module(model, tmp_path / "good.npz", model="lin")
    np.testing.assert_array_equal(np.array(model.weight), good["weight"])
    assert expected_shapes(model) == {"weight": (2, 3), "bias": (2,)}
    save_npz(tmp_path / "bad.npz", {"weight": good["weight"]}, model="lin")
    with pytest.raises(WeightsError, match="missing: bias"):
        load_module(nn.Linear(3, 2), tmp_path / "bad.npz", model="lin")


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        path = save_npz(tmp_path / "m.npz", {"w": np.ones(1)}, model="m")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
    assert not list(tmp_path.glob(".*.tmp"))


def test_atomic_files_get_a_normal_mode_and_leave_no_temp_on_error(tmp_path):
    import os

    from indextts_weights.atomic import atomic_path

    umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "a" / "out.bin") as tmp:
            tmp.write_bytes(b"ok")
        assert (tmp_path / "a" / "out.bin").stat().st_mode & 0o777 == 0o644
        with pytest.raises(RuntimeError), atomic_path(tmp_path / "a" / "bad.bin") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
        assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["out.bin"]
    finally:
        os.umask(umask)


def test_reading_progress_counts_the_bytes_of_each_read(tmp_path):
    arrays = {f"w{i}": np.arange(10_000, dtype=np.float32) + i for i in range(5)}
    path = save_npz(tmp_path / "m.npz", arrays, model="m")
    reads: list[int] = []
    with reading_progress(reads.append):
        got = read_npz(path, model="m")
    assert all(np.array_equal(got[k], v) for k, v in arrays.items())
    size = path.stat().st_size
    assert size <= sum(reads) <= size + 65536  # every byte, plus the zip directory again
    assert all(n > 0 for n in reads) and len(reads) > 1
    read_npz(path, model="m")  # outside the block: nobody is told
    assert sum(reads) <= size + 65536


def test_npz_keys_lists_the_arrays_without_the_metadata(tmp_path):
    path = save_npz(tmp_path / "m.npz", {"b": np.zeros(3), "a": np.ones(2)}, model="m")
    assert sorted(npz_keys(path)) == ["a", "b"] and META_KEY not in npz_keys(path)
    with pytest.raises(WeightsError, match="not found"):
        npz_keys(tmp_path / "absent.npz")
