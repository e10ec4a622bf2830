"""Torch-free readers of the official checkpoints (``.pth``/``.pt``/``.bin``, ``.safetensors``).

* :func:`read_checkpoint` — any supported file, format chosen by content: a ``torch.save``
  zip, a legacy ``torch.save`` stream, or safetensors. Tensors come back as numpy arrays
  (bfloat16 widened to float32), containers as dict/list/tuple/set, torch dtypes, devices
  and other constants as :class:`TorchDtype`, :class:`TorchDevice`, :class:`TorchName`.
* :func:`read_state_dict` — the same, then unwrapped (e.g. ``("model",)`` or
  ``("net", "cfm")``) and checked to be a flat ``str → ndarray`` mapping.
* :func:`extract_state_dict` — the unwrapping and check alone, for a file read once and
  split into several state dicts (``s2mel.pth``).

Pickles are read by a torch-free copy of torch's weights-only unpickler
(:mod:`.torch_pickle`): no code from the file runs, and a pickle asking for anything
``torch.load(weights_only=True)`` refuses raises
:class:`~indextts_weights.errors.UnsafeCheckpointError`. torch is never imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from indextts_weights.errors import UnsafeCheckpointError, WeightsError
from indextts_weights.readers.safetensors_reader import (
    MAX_HEADER_BYTES,
    read_safetensors,
    read_safetensors_header,
)
from indextts_weights.readers.torch_pickle import (
    ALLOWED_GLOBALS,
    TorchDevice,
    TorchDtype,
    TorchName,
    descend,
    is_legacy_torch,
    read_torch_legacy,
    read_torch_zip,
)

__all__ = [
    "ALLOWED_GLOBALS",
    "TorchDevice",
    "TorchDtype",
    "TorchName",
    "UnsafeCheckpointError",
    "WeightsError",
    "detect_format",
    "extract_state_dict",
    "read_checkpoint",
    "read_safetensors",
    "read_safetensors_header",
    "read_state_dict",
    "read_torch_legacy",
    "read_torch_zip",
]


def detect_format(path: str | Path) -> str:
    """``"torch-zip"``, ``"torch-legacy"`` or ``"safetensors"``, from the file's first bytes.

    Raises:
        WeightsError: missing file, or none of these formats.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "torch-zip"
    if is_legacy_torch(head):
        return "torch-legacy"
    if len(head) >= 9 and head[8:9] == b"{":
        header_len = int.from_bytes(head[:8], "little")
        if 2 <= header_len <= min(MAX_HEADER_BYTES, size - 8):
            return "safetensors"
        raise WeightsError(
            f"{path}: looks like safetensors but the header length {header_len} is impossible "
            f"for a {size}-byte file (truncated or corrupt)"
        )
    if head[257:262] == b"ustar":
        raise WeightsError(f"{path}: the tar container of torch < 0.4 is not supported")
    if head[:2] == b"\x80\x02":
        raise WeightsError(f"{path}: a pickle without the torch.save magic number")
    raise WeightsError(
        f"{path}: unknown checkpoint format (not a torch.save zip or legacy file, not "
        f"safetensors; {size} bytes, starts with {head[:8]!r})"
    )


def read_checkpoint(path: str | Path, *, unwrap: tuple[str, ...] = ()) -> Any:
    """Everything in a checkpoint, tensors as numpy arrays.

    ``unwrap``: keys to descend into, each where present (the converters' lenient
    unwrapping, :func:`~indextts_weights.readers.torch_pickle.descend`). In a ``torch.save``
    file this happens before any storage is read, so the tensors outside the part kept
    (an optimizer's state beside ``net``) are never read.

    Raises:
        UnsafeCheckpointError: the pickle asks for a global outside
            :data:`~indextts_weights.readers.torch_pickle.ALLOWED_GLOBALS`.
        WeightsError: missing file, unknown format, truncated or corrupt file, missing or
            too small storages, zip member names with path traversal.
    """
    kind = detect_format(path)
    if kind == "torch-zip":
        return read_torch_zip(path, unwrap=unwrap)
    if kind == "torch-legacy":
        return read_torch_legacy(path, unwrap=unwrap)
    return descend(read_safetensors(path), unwrap)


def extract_state_dict(
    obj: Any, unwrap: tuple[str, ...] = (), *, source: str = "checkpoint"
) -> dict[str, np.ndarray]:
    """Descend into ``obj`` along ``unwrap`` and check a flat ``str → ndarray`` mapping.

    A key of ``unwrap`` that is absent is skipped only when the mapping at that level
    already is a flat state dict (``("model",)`` thus reads both a plain ``gpt.pth`` and
    ``{"model": state_dict}``); otherwise it is an error naming the keys present.

    Raises:
        WeightsError: a missing key, a non-mapping, a non-str key or a non-array value.
    """
    path: list[str] = []
    for key in unwrap:
        if not isinstance(obj, Mapping):
            raise WeightsError(f"{source}: {'/'.join(path) or 'top level'} is not a mapping")
        if key in obj:
            obj = obj[key]
            path.append(key)
        elif not _is_state_dict(obj):
            found = ", ".join(repr(k) for k in list(obj)[:20])
            raise WeightsError(
                f"{source}: no key {key!r} under {'/'.join(path) or 'the top level'} "
                f"(found {found})"
            )
    where = "/".join(path) or "top level"
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{source}: {where} is a {type(obj).__name__}, not a state dict")
    bad_keys = [k for k in obj if not isinstance(k, str)]
    if bad_keys:
        raise WeightsError(f"{source}: {where} has non-str keys {bad_keys[:5]!r}")
    bad_values = [f"{k} ({type(v).__name__})" for k, v in obj.items() if not _is_array(v)]
    if bad_values:
        raise WeightsError(
            f"{source}: {where} is not a flat state dict; not tensors: {', '.join(bad_values[:10])}"
        )
    return dict(obj)


def read_state_dict(path: str | Path, *, unwrap: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The flat state dict in ``path`` (see :func:`read_checkpoint`, :func:`extract_state_dict`)."""
    return extract_state_dict(read_checkpoint(path), unwrap, source=str(path))


def _is_array(value: object) -> bool:
    return isinstance(value, np.ndarray)


def _is_state_dict(obj: Mapping[Any, Any]) -> bool:
    return bool(obj) and all(isinstance(k, str) and _is_array(v) for k, v in obj.items())
