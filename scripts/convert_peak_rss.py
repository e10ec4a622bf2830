"""Convert one official file torch-free and print its wall time and peak RSS (one JSON line).

Usage: ``uv run --frozen python scripts/convert_peak_rss.py NAME SOURCE [--full]``, e.g.
``s2mel ~/.cache/indextts-mlx/parity/files/s2mel_training-*/s2mel.pth``. ``--full`` reads
the whole checkpoint first and unwraps afterwards (what conversion did before it pruned the
pickle to the converter's keys), for the before/after numbers in ``docs/performance.md``.
Linux/macOS (``resource``); the peak covers the whole process, imports included.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import tempfile
import time
from pathlib import Path


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak / 1e3  # bytes vs KiB


def main(argv: list[str]) -> None:
    name, source = argv[0], Path(argv[1])
    full = "--full" in argv[2:]
    conv = importlib.import_module("indextts_weights.convert")  # the package exports a function
    from indextts_weights.npz import save_npz
    from indextts_weights.readers import read_checkpoint

    baseline = _peak_mb()
    converter = conv.CONVERTERS[name]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / converter.output
        if full:
            obj = read_checkpoint(source)
            for key in converter.unwrap:
                if isinstance(obj, dict) and key in obj:
                    obj = obj[key]
            from indextts_weights.source_config import model_configs

            args = model_configs(source.parent, {name: source})[0][name].args
            save_npz(out, converter.convert(obj, args), model=name)
            del obj
        else:
            conv.convert_file(name, source, out)
        seconds = time.perf_counter() - start
    report = {
        "name": name,
        "source_mb": round(source.stat().st_size / 1e6, 1),
        "mode": "full read" if full else "pruned read",
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(_peak_mb(), 1),
        "rss_after_imports_mb": round(baseline, 1),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
