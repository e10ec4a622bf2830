#!/usr/bin/env python
"""Conversion time and peak memory for the real-size (seeded) official checkpoints.

Run with the parity venv (it builds/finds the seeded checkpoints):
``.venv-parity/bin/python benchmarks/bench_convert.py``. Each file is converted in a fresh
process of the torch-free uv environment, as ``indextts-weights convert`` does it; the
table gives wall time, the process's peak RSS, and the sizes in and out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from parity.workspace import use_this_checkout

use_this_checkout()

from parity.converted import CONVERTIBLE, UV_PYTHON, _source  # noqa: E402

MEASURE = r"""
import json, resource, sys, time
from pathlib import Path
from indextts_weights.convert import convert_file
start = time.perf_counter()
out = convert_file(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "torch": "torch" in sys.modules}))
"""


def main() -> None:
    print(f"{'file':<16} {'source':>10} {'npz':>10} {'time':>8} {'peak RSS':>10}  torch?")
    with tempfile.TemporaryDirectory() as tmp:
        for name in CONVERTIBLE:
            source = _source(name, 0)
            target = Path(tmp) / f"{name}.npz"
            result = subprocess.run(
                [str(UV_PYTHON), "-c", MEASURE, name, str(source), str(target)],
                capture_output=True,
                text=True,
                check=True,
            )
            stats = json.loads(result.stdout.strip().splitlines()[-1])
            print(
                f"{name:<16} {source.stat().st_size / 1e6:8.1f}MB "
                f"{target.stat().st_size / 1e6:8.1f}MB {stats['seconds']:7.2f}s "
                f"{stats['peak_rss_mb']:8.0f}MB  {'yes' if stats['torch'] else 'no'}"
            )
            target.unlink()


if __name__ == "__main__":
    main()
