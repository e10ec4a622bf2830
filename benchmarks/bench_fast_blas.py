#!/usr/bin/env python
"""MLX fp32 matmul and conv1d with the bundled reference BLAS vs the fast-BLAS bootstrap.

Run: ``uv run python benchmarks/bench_fast_blas.py``. Each configuration runs in a fresh
process (the BLAS is chosen at import time) and prints its time and the speed-up over
the bundled BLAS. Linux only.
"""

from __future__ import annotations

import os
import subprocess
import sys

WORKLOAD = r"""
import time, mlx_audio_features as f, mlx.core as mx
a = mx.random.normal((2048, 2048)); b = mx.random.normal((2048, 2048))
x = mx.random.normal((1, 2000, 512)); w = mx.random.normal((512, 3, 512))
mx.eval(a, b, x, w, a @ b, mx.conv1d(x, w, padding=1))
t = time.perf_counter()
for _ in range(5): mx.eval(a @ b)
mm = time.perf_counter() - t
t = time.perf_counter()
for _ in range(3): mx.eval(mx.conv1d(x, w, padding=1))
cv = time.perf_counter() - t
s = f.blas_status()
print(s.name or s.reason, mm, cv)
"""

SYSTEM_OPENBLAS = "/usr/lib/x86_64-linux-gnu/libopenblas.so.0"


def run(setting: str | None) -> tuple[str, float, float]:
    env = {k: v for k, v in os.environ.items() if k != "MLX_FAST_BLAS"}
    if setting is not None:
        env["MLX_FAST_BLAS"] = setting
    out = subprocess.run(
        [sys.executable, "-c", WORKLOAD], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], float(out[1]), float(out[2])


def main() -> None:
    if not sys.platform.startswith("linux"):
        print("nothing to measure: the bootstrap only acts on Linux")
        return
    configs = [("bundled reference BLAS", "0"), ("default (bootstrap)", None)]
    if os.path.exists(SYSTEM_OPENBLAS):
        configs.append(("system OpenBLAS", SYSTEM_OPENBLAS))
    print(
        f"{'configuration':<26} {'lib':>10} {'matmul 2048² x5':>16} {'conv1d 512ch x3':>16}"
        f" {'speed-up':>18}"
    )
    base = None
    for label, setting in configs:
        name, mm, cv = run(setting)
        base = base or (mm, cv)
        print(
            f"{label:<26} {name:>10} {mm:15.3f}s {cv:15.3f}s "
            f"{base[0] / mm:8.1f}x {base[1] / cv:8.1f}x"
        )


if __name__ == "__main__":
    main()
