"""The fast-BLAS bootstrap, checked in fresh processes.

``LD_DEBUG=bindings`` makes the dynamic linker report which library satisfies each
symbol lookup: after importing any of our packages, MLX's ``cblas_sgemm`` must bind to
the optimized library, not to the reference BLAS the ``mlx[cpu]`` wheel bundles.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux-only bootstrap")

PACKAGES = [
    "mlx_audio_features",
    "mlx_indextts_models",
    "indextts_weights",
    "indextts_mlx",
    "indextts_cli",
]

MATMUL = "import mlx.core as mx; a = mx.ones((64, 64)); mx.eval(a @ a)"


def run(code: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "MLX_FAST_BLAS"}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, check=True
    )


def sgemm_binding(stderr: str) -> str:
    """Library that libmlx's ``cblas_sgemm`` was bound to, from LD_DEBUG output."""
    for line in stderr.splitlines():
        match = re.search(
            r"binding file \S*libmlx\.so \[\d+\] to (\S+) \[\d+\]: .*`cblas_sgemm'", line
        )
        if match:
            return match.group(1)
    raise AssertionError("no cblas_sgemm binding for libmlx in LD_DEBUG output")


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_any_package_first_makes_mlx_use_the_fast_blas(package):
    out = run(
        f"import {package}, mlx_audio_features as f; {MATMUL}; print(f.blas_status().path)",
        LD_DEBUG="bindings",
    )
    loaded = out.stdout.strip().splitlines()[-1]
    assert loaded != "None", out.stdout
    bound = os.path.realpath(sgemm_binding(out.stderr))
    assert bound == os.path.realpath(loaded)
    assert "mlx_cpu.libs" not in bound


def test_disabled_by_env_var_keeps_the_bundled_blas():
    out = run(
        f"import mlx_indextts_models as m; {MATMUL}; print(m.blas_status().reason)",
        LD_DEBUG="bindings",
        MLX_FAST_BLAS="0",
    )
    assert out.stdout.strip().splitlines()[-1] == "disabled"
    assert "libblas" in os.path.basename(sgemm_binding(out.stderr))


def test_explicit_library_path_is_used(tmp_path):
    default = run("import mlx_audio_features as f; print(f.blas_status().path)").stdout.strip()
    out = run(
        f"import mlx_audio_features as f; {MATMUL}; s = f.blas_status(); print(s.name, s.path)",
        LD_DEBUG="bindings",
        MLX_FAST_BLAS=default,
    )
    name, path = out.stdout.strip().splitlines()[-1].split()
    assert name == "custom" and path == default
    assert os.path.realpath(sgemm_binding(out.stderr)) == os.path.realpath(default)


def test_missing_library_warns_in_one_line(tmp_path):
    out = run(
        "import mlx_audio_features as f; print(f.blas_status().reason)",
        MLX_FAST_BLAS=str(tmp_path / "no-such-blas.so"),
    )
    assert out.stdout.strip() == "not-found"
    warning = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(warning) == 1 and "No optimized BLAS found" in warning[0]


def test_importing_mlx_first_is_reported():
    out = run("import mlx.core, mlx_audio_features as f; print(f.blas_status().reason)")
    assert out.stdout.strip() == "mlx-imported-first"
    assert "imported before" in out.stderr and len(out.stderr.strip().splitlines()) == 1
