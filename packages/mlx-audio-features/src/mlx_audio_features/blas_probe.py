"""Time one BLAS library's ``cblas_sgemm`` on the product IndexTTS-2's heavy stages run.

Run as a script, ``python blas_probe.py LIBRARY`` (by path: importing the package would
load a BLAS first), one library per process (a library loaded ``RTLD_GLOBAL`` cannot be
unloaded). It prints one JSON object of milliseconds per product (the best of 3 rounds,
fp32, through ctypes, no MLX involved) for the shapes of the DiT of a 3 s prompt and 5 s of
speech (1376 rows: CFG's batch of 2 × 688 frames), where most of a synthesis's
compute-bound time goes (BigVGAN's and W2V-BERT's products are alike):

- ``linear``: ``(1376, 512) @ (1536, 512)ᵀ`` (the fused QKV, the SwiGLU's up projections);
- ``linear_down``: ``(1376, 1536) @ (512, 1536)ᵀ`` (the SwiGLU's down projection);
- ``conv``: ``(1376, 2560) @ (1024, 2560)ᵀ`` (a WaveNet conv as a product of gathered taps).

:mod:`mlx_audio_features.fast_blas` runs it for each candidate library the first time it
meets a machine, keeps the result and loads the library with the smallest sum.
"""

from __future__ import annotations

import ctypes
import json
import sys
import time
from collections.abc import Callable

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_PTR = ctypes.c_void_p


def _sgemm(lib: ctypes.CDLL) -> Callable[..., None]:
    fn = lib.cblas_sgemm
    fn.argtypes = [ctypes.c_int] * 6 + [
        ctypes.c_float, _PTR, ctypes.c_int, _PTR, ctypes.c_int, ctypes.c_float, _PTR, ctypes.c_int
    ]  # fmt: skip
    fn.restype = None
    sgemm: Callable[..., None] = fn
    return sgemm


def _product_ms(fn: Callable[..., None], a: np.ndarray, b: np.ndarray, calls: int) -> float:
    """Best milliseconds per ``a @ b.T`` (``a (M, K)``, ``b (N, K)``) over 3 rounds."""
    m, k = a.shape
    n = b.shape[0]
    c = np.empty((m, n), np.float32)

    def run() -> None:
        fn(_ROW_MAJOR, _NO_TRANS, _TRANS, m, n, k, 1.0, a.ctypes.data, k, b.ctypes.data, k,
           0.0, c.ctypes.data, n)  # fmt: skip

    run()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e3


#: Product name → (rows, outputs, inputs): ``(rows, inputs) @ (outputs, inputs)ᵀ``.
PRODUCTS: dict[str, tuple[int, int, int]] = {
    "linear": (1376, 1536, 512),
    "linear_down": (1376, 512, 1536),
    "conv": (1376, 1024, 2560),
}


def probe(path: str, calls: int = 4) -> dict[str, float]:
    """Milliseconds per product of :data:`PRODUCTS` for the library at ``path``."""
    fn = _sgemm(ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL))
    rng = np.random.default_rng(0)
    out = {}
    for name, (m, n, k) in PRODUCTS.items():
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((n, k), dtype=np.float32)
        out[name] = _product_ms(fn, a, b, calls)
    return out


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1])))
