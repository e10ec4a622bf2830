"""Read ``.safetensors`` files with numpy only, validating the header first.

Layout: an 8-byte little-endian header length ``N``, ``N`` bytes of JSON
(``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}``),
then the byte buffer the offsets index (little-endian, C order). The buffer must be covered
exactly: tensors sorted by offset, no overlap, no hole, nothing past its end (the rules of
the reference implementation).

dtypes: F64, F32, F16, I64, I32, I16, I8, U8 and BOOL keep their type; **BF16 is converted
to float32** (exactly). Anything else is refused.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indextts_weights.errors import WeightsError
from indextts_weights.readers.dtypes import note_dtype

MAX_HEADER_BYTES = 100 * 1024 * 1024  # the reference implementation's limit
DTYPES: dict[str, str] = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "u1",
}

#: safetensors dtype → the name :func:`~indextts_weights.readers.dtypes.note_dtype` is told.
SOURCE_DTYPES = {
    **{k: np.dtype(v).name for k, v in DTYPES.items()},
    "BF16": "bfloat16",
    "BOOL": "bool",
}


@dataclass(frozen=True)
class TensorInfo:
    """One header entry: ``dtype`` (safetensors name), ``shape``, byte range in the buffer."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise WeightsError(f"duplicate key {key!r} in the safetensors header")
        out[key] = value
    return out


def _entry(name: str, entry: object, source: str) -> TensorInfo:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise WeightsError(f"{source}: malformed header entry for {name!r}: {entry!r}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPES:
        raise WeightsError(f"{source}: tensor {name!r} has unsupported dtype {dtype!r}")

    def is_count(v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    if not (isinstance(shape, list) and all(is_count(d) for d in shape)):
        raise WeightsError(f"{source}: tensor {name!r} has a malformed shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(is_count, offsets))):
        raise WeightsError(f"{source}: tensor {name!r} has malformed offsets {offsets!r}")
    begin, end = offsets
    nbytes = math.prod(shape) * np.dtype(DTYPES[dtype]).itemsize
    if end - begin != nbytes:
        raise WeightsError(
            f"{source}: tensor {name!r} ({dtype} {shape}) needs {nbytes} bytes, its offsets "
            f"[{begin}, {end}] span {end - begin}"
        )
    return TensorInfo(name, dtype, tuple(shape), begin, end)


def read_safetensors_header(path: str | Path) -> tuple[list[TensorInfo], dict[str, str], int]:
    """Parse and validate the header: ``(tensors sorted by offset, metadata, data start)``.

    Raises:
        WeightsError: missing file, absurd header length, bad JSON, unknown dtype,
            offsets outside the file, overlapping or leaving holes.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    file_size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            raise WeightsError(f"{source}: too short for a safetensors file")
        (header_len,) = struct.unpack("<Q", head)
        if header_len < 2 or header_len > MAX_HEADER_BYTES or 8 + header_len > file_size:
            raise WeightsError(
                f"{source}: safetensors header length {header_len} is impossible for a "
                f"{file_size}-byte file"
            )
        raw = handle.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except WeightsError as exc:
        raise WeightsError(f"{source}: {exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise WeightsError(f"{source}: safetensors header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise WeightsError(f"{source}: safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise WeightsError(f"{source}: safetensors __metadata__ must map str to str")
    infos = sorted(
        (_entry(name, entry, source) for name, entry in header.items()),
        key=lambda info: (info.begin, info.end),
    )
    data_start = 8 + header_len
    buffer_size = file_size - data_start
    position = 0
    for info in infos:
        if info.begin != position:
            kind = "overlaps the previous tensor" if info.begin < position else "leaves a hole"
            raise WeightsError(f"{source}: tensor {info.name!r} at byte {info.begin} {kind}")
        position = info.end
    if position > buffer_size:
        raise WeightsError(
            f"{source}: tensor offsets reach byte {position}, the data is {buffer_size} bytes "
            "(out of range or truncated)"
        )
    if position < buffer_size:
        raise WeightsError(f"{source}: {buffer_size - position} trailing bytes after the tensors")
    return infos, metadata, data_start


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file as an independent native-endian numpy array.

    Keys come in the header's byte order. BF16 becomes float32; BOOL becomes ``bool``.

    Raises:
        WeightsError: see :func:`read_safetensors_header`.
    """
    infos, _, data_start = read_safetensors_header(path)
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as handle:
        handle.seek(data_start)
        for info in infos:
            stored = np.dtype(DTYPES[info.dtype])
            array = np.empty(info.shape, stored)
            if array.nbytes and handle.readinto(array.reshape(-1).view(np.uint8).data) != (
                array.nbytes
            ):
                raise WeightsError(f"{path}: truncated data for tensor {info.name!r}")
            if not stored.isnative and stored.itemsize > 1:
                array = array.astype(stored.newbyteorder("="))
            note_dtype(SOURCE_DTYPES[info.dtype])
            if info.dtype == "BF16":
                array = (array.astype(np.uint32) << 16).view(np.float32)
            elif info.dtype == "BOOL":
                array = array != 0
            out[info.name] = array
    return out
