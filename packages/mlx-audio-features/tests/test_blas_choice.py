"""Choosing the BLAS per machine: measured once, kept per machine and set of libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlx_audio_features import fast_blas
from mlx_audio_features.blas_probe import PRODUCTS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux-only")


@pytest.fixture
def libraries(tmp_path):
    """Three files standing in for libraries (the ranking only stats them)."""
    paths = {}
    for name in ("mkl_a", "mkl_b", "openblas"):
        paths[name] = tmp_path / f"lib{name}.so"
        paths[name].write_bytes(name.encode())
    return paths


def _candidates(paths: dict[str, Path]) -> list[tuple[str, str]]:
    return [
        ("mkl", str(paths["mkl_a"])),
        ("mkl", str(paths["mkl_b"])),
        ("openblas", str(paths["openblas"])),
    ]


def test_the_faster_family_comes_first_and_is_kept_per_machine(libraries, tmp_path):
    cache = tmp_path / "cache" / "fast-blas.json"
    timings = {str(libraries["mkl_a"]): 30.0, str(libraries["openblas"]): 20.0}
    measured: list[str] = []

    def measure(path: str) -> float:
        measured.append(path)
        return timings[path]

    ranked, how = fast_blas.rank_candidates(_candidates(libraries), measure=measure, cache=cache)
    # one library per family measured (the first found), the order within a family kept
    assert measured == [str(libraries["mkl_a"]), str(libraries["openblas"])]
    assert [c[1] for c in ranked] == [
        str(libraries["openblas"]), str(libraries["mkl_a"]), str(libraries["mkl_b"])
    ]  # fmt: skip
    assert how == "measured: openblas 20.0 ms, mkl 30.0 ms"
    stored = json.loads(cache.read_text())
    (entry,) = stored.values()
    assert entry["ms"] == timings

    again, how = fast_blas.rank_candidates(_candidates(libraries), measure=measure, cache=cache)
    assert again == ranked and how.endswith("(cached)") and len(measured) == 2


def test_a_changed_library_is_measured_again(libraries, tmp_path):
    cache = tmp_path / "fast-blas.json"
    calls: list[str] = []

    def measure(path: str) -> float:
        calls.append(path)
        return 1.0 if "openblas" in path else 2.0

    fast_blas.rank_candidates(_candidates(libraries), measure=measure, cache=cache)
    libraries["openblas"].write_bytes(b"a new release")  # another size: another key
    fast_blas.rank_candidates(_candidates(libraries), measure=measure, cache=cache)
    assert len(calls) == 4 and len(json.loads(cache.read_text())) == 2


def test_one_family_or_an_unreadable_cache(libraries, tmp_path):
    only_mkl = [c for c in _candidates(libraries) if c[0] == "mkl"]

    def never(path: str) -> float:
        raise AssertionError("one family: nothing to measure")

    assert fast_blas.rank_candidates(only_mkl, measure=never) == (only_mkl, "only candidate")
    cache = tmp_path / "fast-blas.json"
    cache.write_text("{not json")
    ranked, how = fast_blas.rank_candidates(
        _candidates(libraries), measure=lambda p: 2.0 if "mkl" in p else 1.0, cache=cache
    )
    assert ranked[0][0] == "openblas" and not how.endswith("(cached)")
    assert json.loads(cache.read_text())  # replaced by a readable one


def test_a_failing_probe_ranks_that_library_last(tmp_path):
    broken = tmp_path / "libbroken.so"
    broken.write_bytes(b"not a library")
    assert fast_blas.probe_library(str(broken)) == float("inf")


def _installed() -> dict[str, str]:
    found = {}
    for name, path in fast_blas._installed():
        found.setdefault(name, path)
    return found


@pytest.mark.skipif(not _installed(), reason="no optimized BLAS installed")
def test_the_probe_times_each_product_with_a_real_library():
    path = next(iter(_installed().values()))
    done = subprocess.run(
        [sys.executable, str(fast_blas._PROBE), path],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, fast_blas.ENV_VAR: "0"},
    )
    timings = json.loads(done.stdout)
    assert set(timings) == set(PRODUCTS) and all(0 < ms < 10_000 for ms in timings.values())


@pytest.mark.parametrize("family", ["mkl", "openblas"])
def test_a_family_named_in_the_environment_is_loaded_without_measuring(family, tmp_path):
    if family not in _installed():
        pytest.skip(f"{family} is not installed here")
    env = {**os.environ, fast_blas.ENV_VAR: family, "XDG_CACHE_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", "import mlx_audio_features as f; s = f.blas_status();"
         "print(s.name, s.chosen_by, s.path)"],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    name, chosen_by, path = done.stdout.split()
    assert (name, chosen_by, path) == (family, fast_blas.ENV_VAR, _installed()[family])
    assert not (tmp_path / "indextts-mlx").exists()  # nothing measured, nothing cached
