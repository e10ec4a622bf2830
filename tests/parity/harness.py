"""The parity harness: seeded reference checkpoints, cached outputs, stage comparison.

Runs only in the parity venv (torch + the reference). Everything generated is cached
outside the clone under ``<cache>/parity`` (see :func:`clips.cache_root`), keyed by what
determines it (config, seed, reference version), so reruns and fresh clones reuse it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clips import cache_root
from parity.reference import reference_version


def cache_key(**parts: Any) -> str:
    """Stable 16-hex-digit key of JSON-serialisable ``parts`` (plus the reference version)."""
    payload = json.dumps({"reference": reference_version(), **parts}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def parity_cache() -> Path:
    return cache_root() / "parity"


def cached_file(
    name: str,
    filename: str,
    build: Callable[[Path], None],
    **key_parts: Any,
) -> Path:
    """Path of a generated file, building it once per key.

    Args:
        name: what it is (a folder name), e.g. ``"campplus"``.
        filename: the official file name, e.g. ``"campplus_cn_common.bin"``.
        build: writes the file to the path it is given.
        key_parts: config, seed and anything else that determines the content.

    The file is built in a temporary folder and moved into place whole, so an
    interrupted build never leaves a truncated file behind.
    """
    folder = parity_cache() / "files" / f"{name}-{cache_key(name=name, **key_parts)}"
    target = folder / filename
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        partial = Path(tmp) / filename
        build(partial)
        if not partial.exists():
            raise RuntimeError(f"builder for {name} did not write {filename}")
        os.replace(partial, target)
    return target


def cached_arrays(
    name: str,
    compute: Callable[[], Mapping[str, np.ndarray]],
    **key_parts: Any,
) -> dict[str, np.ndarray]:
    """Reference outputs, computed once per key and stored as an NPZ (no pickle)."""
    folder = parity_cache() / "outputs"
    path = folder / f"{name}-{cache_key(name=name, **key_parts)}.npz"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {k: np.asarray(v) for k, v in compute().items()}
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".npz", delete=False) as tmp:
            np.savez(tmp, **arrays)
        os.replace(tmp.name, path)
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def seeded_module(factory: Callable[[], Any], seed: int, *, perturb: bool = True) -> Any:
    """Build a reference ``torch.nn.Module`` with a seeded random init, in eval mode.

    With ``perturb`` the parameters a default init leaves constant (norm weights = 1,
    biases = 0, BatchNorm statistics) get seeded random values too, so a conversion
    that drops or swaps one of them cannot pass parity by accident.
    """
    import torch

    torch.manual_seed(seed)
    module = factory()
    if perturb:
        generator = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for name, tensor in _perturbable(module):
                noise = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
                if name.endswith("running_var"):
                    tensor.copy_(1.0 + 0.1 * noise.abs())
                else:
                    tensor.copy_(tensor.flatten()[0].item() + 0.1 * noise)
    return module.eval()


def _perturbable(module: Any) -> list[tuple[str, Any]]:
    """Constant-initialised float parameters, and BatchNorm running statistics."""
    chosen = []
    for name, tensor in module.named_parameters():
        if (
            tensor.is_floating_point()
            and tensor.numel()
            and bool((tensor == tensor.flatten()[0]).all())
        ):
            chosen.append((name, tensor))
    for name, tensor in module.named_buffers():
        if name.endswith(("running_mean", "running_var")):
            chosen.append((name, tensor))
    return chosen


def save_torch(obj: Any, path: Path) -> None:
    """``torch.save`` in the default zip container, as the official ``.pth``/``.bin`` files."""
    import torch

    torch.save(obj, path)


def save_safetensors(state_dict: Mapping[str, Any], path: Path) -> None:
    """Save a state dict as ``.safetensors`` (the MaskGCT codec and w2v-bert format)."""
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(path))


@dataclass(frozen=True)
class StageResult:
    """One row of the parity table (docs/promises.md §5)."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    cos: float
    ref_mean: float
    ours_mean: float

    def row(self) -> str:
        shape = "x".join(str(d) for d in self.shape)
        return (
            f"{self.name:<30} | {shape:>16} | {self.max_abs:10.3g} | {self.cos:10.7f} | "
            f"{self.ref_mean:+11.5g} | {self.ours_mean:+11.5g}"
        )


def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def compare(name: str, ref: Any, ours: Any) -> StageResult:
    """Compare a reference output with ours: shape, max|Δ|, cosine, means.

    Shapes must match exactly (a mismatch raises, it is never broadcast). The cosine of
    two all-zero arrays is 1; of a zero and a non-zero array, 0.
    """
    a, b = _as_numpy(ref), _as_numpy(ours)
    if a.shape != b.shape:
        raise AssertionError(f"{name}: shape {b.shape} differs from the reference's {a.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise AssertionError(
            f"{name}: non-finite values (ref {np.isfinite(a).all()}, ours {np.isfinite(b).all()})"
        )
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 and nb == 0.0:
        cos = 1.0
    elif na == 0.0 or nb == 0.0:
        cos = 0.0
    else:
        cos = float(np.dot(a.ravel(), b.ravel()) / (na * nb))
    return StageResult(name, a.shape, diff, cos, float(a.mean()), float(b.mean()))


def assert_close(result: StageResult, *, max_abs: float, min_cos: float = 0.99999) -> None:
    """Fail with the table row when a stage is outside its tolerance."""
    if not (result.max_abs <= max_abs and result.cos >= min_cos):
        raise AssertionError(
            f"outside tolerance (max|Δ| ≤ {max_abs}, cos ≥ {min_cos}):\n{format_table([result])}"
        )


TABLE_HEADER = (
    f"{'name':<30} | {'shape':>16} | {'max|Δ|':>10} | {'cos_sim':>10} | "
    f"{'pt_mean':>11} | {'mlx_mean':>11}"
)


def format_table(results: Iterable[StageResult]) -> str:
    """The docs/promises.md §5 table: ``name | shape | max|Δ| | cos_sim | pt_mean | mlx_mean``."""
    lines = [TABLE_HEADER, "-" * len(TABLE_HEADER)]
    lines += [r.row() for r in results]
    return "\n".join(lines)


def clear_cache() -> None:
    """Remove every generated checkpoint and cached output (not the clips)."""
    shutil.rmtree(parity_cache(), ignore_errors=True)
