"""The torch-free checkpoint reader returns exactly what ``torch.load(weights_only=True)`` does.

Covers files torch itself writes (zip and legacy containers, every dtype the checkpoints
use, views, shared storages, nesting, a bare tensor, safetensors), the seeded real-config
checkpoints (CAMPPlus, semantic codec, w2v-bert stats, emotion matrices), and the reverse
direction: files written by ``indextts_weights.readers.testing`` load in torch. Also checks
that importing the readers in the torch-free env does not import torch.
"""

from __future__ import annotations

import collections
import inspect
import pickletools
import subprocess
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from indextts_weights.errors import UnsafeCheckpointError, WeightsError
from indextts_weights.readers import detect_format, read_checkpoint, read_state_dict, torch_pickle
from indextts_weights.readers.testing import (
    Storage,
    StorageView,
    Tensor,
    storage_reads,
    tensor,
    write_torch_legacy,
)
from indextts_weights.readers.testing import write_torch_zip as write_zip_by_hand
from indextts_weights.readers.torch_pickle import TorchDevice, TorchDtype, TorchName
from parity import checkpoints
from parity.harness import compare
from parity.workspace import ROOT


def _as_expected(value: Any) -> Any:
    """What our reader should return for what ``torch.load`` returned."""
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if value.dtype == torch.bfloat16:
            value = value.float()  # the documented bf16 → float32 widening (exact)
        return value.contiguous().numpy()
    if isinstance(value, torch.Size):
        return tuple(value)
    if isinstance(value, torch.device):
        return TorchDevice(str(value))
    if isinstance(value, torch.dtype):
        return TorchDtype(str(value))
    if isinstance(value, (torch.qscheme, torch.layout)):
        return TorchName(str(value))
    if isinstance(value, torch.serialization.StorageType):
        return TorchName(f"torch.{torch.storage._dtype_to_storage_type_map()[value.dtype]}")
    if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
        return TorchName(f"{value.__module__}.{value.__name__}")  # a bare class or function
    if isinstance(value, collections.Counter):
        return collections.Counter({k: _as_expected(v) for k, v in value.items()})
    if isinstance(value, set):
        return {_as_expected(v) for v in value}
    if isinstance(value, dict):
        return {k: _as_expected(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_expected(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_as_expected(v) for v in value)
    return value


def assert_same(ours: Any, ref: Any, where: str = "") -> None:
    """Exact equality, including dtypes, shapes, container types and bit patterns."""
    if isinstance(ref, np.ndarray):
        assert isinstance(ours, np.ndarray), f"{where}: {type(ours).__name__}, not an array"
        assert ours.dtype == ref.dtype and ours.shape == ref.shape, (
            f"{where}: {ours.dtype}{ours.shape} != {ref.dtype}{ref.shape}"
        )
        assert ours.tobytes() == ref.tobytes(), f"{where}: values differ"
        assert ours.flags.c_contiguous and ours.flags.writeable, where
        return
    assert type(ours) is type(ref), f"{where}: {type(ours).__name__} != {type(ref).__name__}"
    if isinstance(ref, dict):
        assert list(ours) == list(ref), f"{where}: keys differ"
        for key in ref:
            assert_same(ours[key], ref[key], f"{where}/{key}")
    elif isinstance(ref, (list, tuple)):
        assert len(ours) == len(ref), f"{where}: lengths differ"
        for i, (a, b) in enumerate(zip(ours, ref, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert ours == ref, f"{where}: {ours!r} != {ref!r}"


def assert_reads_like_torch(path: Path) -> Any:
    ours = read_checkpoint(path)
    if detect_format(path) == "safetensors":
        from safetensors.torch import load_file

        ref = load_file(str(path))
    else:
        ref = torch.load(path, map_location="cpu", weights_only=True)
    assert_same(ours, _as_expected(ref))
    return ours


def _every_dtype() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 5, generator=g)
    return {
        "f32": x,
        "f16": x.half(),
        "bf16": (x * 1e3).bfloat16(),
        "f64": x.double(),
        "i64": torch.randint(-(2**62), 2**62, (7,), generator=g),
        "i32": torch.randint(-(2**31), 2**31 - 1, (3, 2), generator=g, dtype=torch.int32),
        "i16": torch.arange(-3, 3, dtype=torch.int16),
        "i8": torch.arange(-128, 128, 37, dtype=torch.int8),
        "u8": torch.arange(0, 256, 51, dtype=torch.uint8),
        "bool": x > 0,
        "scalar": torch.tensor(42, dtype=torch.int64),  # like num_batches_tracked
        "empty": torch.zeros(0, 3),
        "special": torch.tensor([float("inf"), -float("inf"), -0.0, 1e-45, 3.4e38]),
    }


def _views() -> dict[str, torch.Tensor]:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    half = torch.arange(12, dtype=torch.float16)
    return {
        "base": base,
        "transposed": base.t(),
        "strided": base[1:, ::2],
        "column": base[:, 3],
        "expanded": base[2].expand(3, 6),
        "viewed": base.view(6, 4)[1:3],
        "half_a": half[2:8].view(2, 3),
        "half_b": half.view(3, 4).t(),
        "bf16_slice": torch.arange(10, dtype=torch.bfloat16)[3:9:2],
        "param": torch.nn.Parameter(base[::2, 1:4].clone()),
    }


def _module_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv1d(3, 4, 3), torch.nn.BatchNorm1d(4), torch.nn.Linear(5, 2)
    )
    model[1].running_mean.normal_()
    model[1].num_batches_tracked += 7
    return model.state_dict()


def _optimizer_checkpoint() -> dict[str, Any]:
    torch.manual_seed(1)
    layer = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=1e-3, betas=(0.8, 0.99))
    layer(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    return {
        "net": {"cfm": layer.state_dict(), "gpt_layer": {}},
        "optimizer": optimizer.state_dict(),
        "iters": 12345,
        "epoch": 7,
        "shape": torch.Size([2, 3]),
        "device": torch.device("cpu"),
        "names": ["a", "b"],
        "ordered": collections.OrderedDict([("z", 1), ("a", torch.ones(2))]),
    }


CASES = {
    "every_dtype": _every_dtype,
    "views_and_shared_storages": _views,
    "module_state_dict": _module_state,
    "wrapped_model": lambda: {"model": _module_state()},
    "net_cfm": lambda: {"net": {"cfm": _module_state()}},
    "s2mel_like_with_optimizer": _optimizer_checkpoint,
    "bare_tensor": lambda: torch.randn(73, 192, generator=torch.Generator().manual_seed(3)),
    "list_and_tuple": lambda: [torch.ones(2), (torch.zeros(1, dtype=torch.bool), 3.5, None)],
}


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("case", list(CASES))
def test_torch_saved_objects_read_exactly(tmp_path, case, legacy):
    path = tmp_path / "x.pth"
    torch.save(CASES[case](), path, _use_new_zipfile_serialization=not legacy)
    assert detect_format(path) == ("torch-legacy" if legacy else "torch-zip")
    assert_reads_like_torch(path)


def test_unwrapping_matches_what_the_loaders_take(tmp_path):
    sd = _module_state()
    torch.save({"model": sd}, tmp_path / "gpt.pth")
    torch.save(sd, tmp_path / "plain.pth")
    torch.save(_optimizer_checkpoint(), tmp_path / "s2mel.pth")
    for name in ("gpt.pth", "plain.pth"):
        assert_same(read_state_dict(tmp_path / name, unwrap=("model",)), _as_expected(dict(sd)))
    ref = torch.load(tmp_path / "s2mel.pth", weights_only=True)["net"]["cfm"]
    assert_same(read_state_dict(tmp_path / "s2mel.pth", unwrap=("net", "cfm")), _as_expected(ref))


def test_safetensors_files_read_exactly(tmp_path):
    from safetensors.torch import save_file

    tensors = {k: v for k, v in _every_dtype().items() if k != "scalar"}
    tensors["scalar"] = torch.tensor(2.5)
    save_file(tensors, str(tmp_path / "m.safetensors"), metadata={"format": "pt"})
    assert_reads_like_torch(tmp_path / "m.safetensors")


@pytest.mark.parametrize("writer", ["zip", "zip-big-endian", "legacy"])
def test_files_written_by_hand_load_in_torch(tmp_path, writer):
    """The torch-free writer the unit tests use produces what torch reads the same way."""
    storage = Storage(np.arange(12, dtype=np.float32))
    obj = {
        "w": Tensor(storage, 0, (3, 4), (4, 1)),
        "wt": Tensor(storage, 1, (3, 2), (1, 4)),
        "bf16": tensor(
            np.array([0x3F80, 0xC000, 0x4049], np.uint16), storage_type="BFloat16Storage"
        ),
        "p": tensor(np.ones((2, 2), np.float16), parameter=True),
        "n": tensor(np.array(5, np.int64)),
        "b": tensor(np.array([True, False])),
        "meta": [1, "x", (2.5, None)],
    }
    path = tmp_path / "hand.pth"
    if writer == "legacy":
        obj["view"] = Tensor(
            StorageView(Storage(np.arange(10, dtype=np.int32)), 3, 5), 1, (2, 2), (2, 1)
        )
        write_torch_legacy(path, obj)
    else:
        write_zip_by_hand(path, obj, byteorder="big" if writer.endswith("big-endian") else "little")
    ours = assert_reads_like_torch(path)
    np.testing.assert_array_equal(ours["bf16"], np.array([1.0, -2.0, 3.140625], np.float32))
    if writer == "legacy":
        np.testing.assert_array_equal(ours["view"], np.array([[4, 5], [6, 7]], np.int32))


def _official_file(name: str) -> Path:
    if name in ("feat1.pt", "feat2.pt"):
        return checkpoints.emotion_matrix_checkpoints(0)[name == "feat2.pt"]
    return {
        "campplus_cn_common.bin": checkpoints.campplus_checkpoint,
        "semantic_codec/model.safetensors": checkpoints.semantic_codec_checkpoint,
        "wav2vec2bert_stats.pt": checkpoints.semantic_stats_checkpoint,
    }[name](0)


def _load_reference(path: Path) -> Any:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def _flat(obj: Any) -> np.ndarray:
    values = [obj] if isinstance(obj, np.ndarray) else list(obj.values())
    return np.concatenate([np.asarray(v, np.float64).ravel() for v in values])


OFFICIAL = (
    "campplus_cn_common.bin",
    "semantic_codec/model.safetensors",
    "wav2vec2bert_stats.pt",
    "feat1.pt",
    "feat2.pt",
)


@pytest.mark.parametrize("name", OFFICIAL)
def test_seeded_official_checkpoints_read_exactly_and_fast(name, record):
    path = _official_file(name)
    start = time.perf_counter()
    ours = read_checkpoint(path)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    ref = _load_reference(path)
    ref_seconds = time.perf_counter() - start
    ref = _as_expected(ref)
    assert_same(ours, ref)
    result = record(compare(f"reader {name}", _flat(ref), _flat(ours)))
    assert result.max_abs == 0.0 and result.cos == pytest.approx(1.0, abs=1e-12)
    count = 1 if isinstance(ours, np.ndarray) else len(ours)
    print(
        f"\n{name}: {path.stat().st_size / 1e6:.1f} MB, {count} tensors: ours "
        f"{seconds * 1e3:.0f} ms, torch/safetensors {ref_seconds * 1e3:.0f} ms"
    )
    assert seconds < 5.0


def test_readers_import_without_torch_in_the_uv_env():
    python = ROOT / ".venv" / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no torch-free env at {python}")
    code = (
        "import sys, indextts_weights.readers, indextts_weights.readers.testing\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)\n"
        "print('ok')"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_s2mel_training_checkpoint_reads_only_net():
    """The real-size ``s2mel.pth`` with its training state (~1.2 GB, 2/3 Adam state): read
    unwrapped to ``net`` (as conversion reads it), only the net's storages are read, and the
    arrays equal both the full read's and ``torch.load``'s."""
    path = checkpoints.s2mel_training_checkpoint(0)
    start = time.perf_counter()
    with storage_reads() as read_bytes:
        pruned = read_checkpoint(path, unwrap=("net",))
    seconds = time.perf_counter() - start
    ref = torch.load(path, map_location="cpu", weights_only=True)
    net_bytes = sum(t.untyped_storage().nbytes() for sd in ref["net"].values() for t in sd.values())
    assert {"optimizer", "scheduler"} <= set(ref) and path.stat().st_size > 2.5 * net_bytes
    assert sum(read_bytes) == net_bytes
    assert_same(pruned, _as_expected(ref["net"]))
    del ref
    with storage_reads() as read_bytes:
        full = read_checkpoint(path)
    assert sum(read_bytes) > 2.5 * net_bytes
    assert_same(pruned, full["net"])
    print(
        f"\ns2mel training checkpoint: {path.stat().st_size / 1e6:.0f} MB, net read in "
        f"{seconds:.2f} s ({net_bytes / 1e6:.0f} MB of storages)"
    )


def test_allow_list_and_opcodes_are_torchs():
    """Our refusal set is torch's: the same allowed ``module.name`` globals, the same
    opcodes, and the same Python 2 renames onto allowed names."""
    import re

    import torch._weights_only_unpickler as weights_only

    allowed = set(weights_only._get_allowed_globals())
    assert allowed == set(torch_pickle.ALLOWED_GLOBALS)
    source = inspect.getsource(weights_only.Unpickler.load)
    theirs = set(re.findall(r"\b([A-Z][A-Z0-9_]+)\[0\]", source))
    ours = {pickletools.code2op[op.decode("latin-1")].name for op in torch_pickle.OPCODES}
    assert theirs == ours
    from torch._utils import IMPORT_MAPPING, NAME_MAPPING

    names = {q.rpartition(".")[2] for q in allowed}
    pairs = {*NAME_MAPPING, *((m, n) for m in IMPORT_MAPPING for n in names)}
    for module, name in pairs:
        lines = [f"{module}\n".encode(), f"{name}\n".encode()]
        theirs_name = ".".join(weights_only._read_global_instruction(iter(lines).__next__))
        ours_name = torch_pickle._global_name(module, name)
        assert (theirs_name in allowed) == (ours_name in allowed), (module, name)
        if ours_name in allowed:
            assert ours_name == theirs_name


class _WithAttribute(torch.Tensor):
    pass


def _allowed_objects() -> list[Any]:
    """The object behind each name of torch's allow-list (the real storage classes, not the
    loader's stand-ins), to be saved as bare values."""
    import importlib

    import torch._weights_only_unpickler as weights_only

    objects = []
    for qualname in sorted(weights_only._get_allowed_globals()):
        module, _, name = qualname.rpartition(".")
        objects.append(getattr(importlib.import_module(module), name))
    return objects


def _allowed_values() -> dict[str, Any]:
    """Every allowed global, in a checkpoint's non-weight part: each as a bare value, and
    each kind of value ``torch.save`` writes with them."""
    plain = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    with_attribute = plain.clone()
    with_attribute.note = "kept by torch, dropped by us"  # _rebuild_from_type_v2
    parameter = torch.nn.Parameter(plain.clone())
    parameter.note = 1  # _rebuild_parameter_with_state
    return {
        "globals": _allowed_objects(),
        "dtypes": [
            getattr(torch, q.split(".")[1])
            for q in sorted(torch_pickle.ALLOWED_GLOBALS)
            if q.count(".") == 1 and isinstance(getattr(torch, q.split(".")[1], None), torch.dtype)
        ],
        "qschemes": [getattr(torch, n) for n in torch_pickle.QSCHEMES],
        "layouts": [torch.strided, torch.sparse_coo, torch.sparse_csr, torch.jagged],
        "size": torch.Size([2, 3]),
        "devices": [torch.device("cpu"), torch.device("cuda", 1), torch.device("meta")],
        "ordered": collections.OrderedDict([("z", 1), ("a", 2)]),
        "counter": collections.Counter("abracadabra"),
        "set": {1, "x", 2.5},
        "bytes": b"ab\xff\x00",
        "bytearray": bytearray(b"\x00xy"),
        "complex": 1.5 - 2j,
        "tensor_types": [
            torch.FloatTensor,
            torch.cuda.HalfTensor,
            torch.sparse.LongTensor,
            torch.Tensor,
        ],
        "parameter_type": torch.nn.Parameter,
        "storage_types": [torch.FloatStorage, torch.BFloat16Storage],
        "tensors": {
            "u16": torch.tensor([1, 65535, 7], dtype=torch.uint16),
            "u32": torch.tensor([2**32 - 1], dtype=torch.uint32),
            "u64": torch.tensor([2**63 + 5], dtype=torch.uint64),
            "c64": torch.tensor([1 + 2j, -3j], dtype=torch.complex64),
            "c128": torch.tensor([1e300 + 1j], dtype=torch.complex128),
            "with_attribute": with_attribute,
            "parameter": torch.nn.Parameter(plain.clone()),
            "parameter_with_state": parameter,
            "legacy_storage": plain.clone().untyped_storage(),
        },
    }


def _globals_in(path: Path) -> set[str]:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    return {
        torch_pickle._global_name(*str(arg).split(" ", 1))
        for op, arg, _ in pickletools.genops(data)
        if op.name == "GLOBAL"
    }


def test_every_allowed_global_reads_like_torch(tmp_path):
    """A checkpoint torch writes with every allowed global torch.save produces in its
    non-weight part reads torch-free to the same values (``torch.load(weights_only=True)``,
    dtypes/devices/layouts as our stand-ins, tensors as arrays)."""
    path = tmp_path / "globals.pth"
    values = _allowed_values()
    torch.save({"net": {"w": torch.ones(2)}, **values}, path)
    ref = torch.load(path, map_location="cpu", weights_only=True)
    expected = _as_expected({k: v for k, v in ref.items() if k != "tensors"})
    tensors = ref["tensors"]
    storage = tensors.pop("legacy_storage")
    expected["tensors"] = _as_expected(tensors)
    expected["tensors"]["legacy_storage"] = np.frombuffer(bytes(storage), np.uint8).copy()
    assert_same(read_checkpoint(path), expected)
    assert _globals_in(path) == torch_pickle.ALLOWED_GLOBALS


def _unsupported_kinds() -> dict[str, Any]:
    return {
        "sparse": torch.ones(3).to_sparse(),
        "quantized": torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.quint8),
        "nested": torch.nested.nested_tensor([torch.ones(2), torch.ones(3)]),
        "meta": torch.ones(2, device="meta"),
        "float8": torch.ones(2).to(torch.float8_e4m3fn),
    }


@pytest.mark.parametrize("kind", list(_unsupported_kinds()))
def test_tensor_kinds_torch_allows_but_numpy_cannot_hold_are_named(tmp_path, kind):
    path = tmp_path / f"{kind}.pth"
    torch.save({"t": _unsupported_kinds()[kind]}, path)
    torch.load(path, weights_only=True)  # torch's safe loader accepts it
    with pytest.raises(WeightsError, match="not supported") as err:
        read_checkpoint(path)
    assert not isinstance(err.value, UnsafeCheckpointError)


@pytest.mark.parametrize(
    "value",
    [
        __import__("datetime").datetime(2020, 1, 1),
        __import__("datetime").timedelta(days=1),
        frozenset([1]),
        slice(1, 2),
        range(3),
        _WithAttribute(torch.ones(2)).as_subclass(_WithAttribute),
        torch.Generator(),
        [torch.ones(1)] * 2,  # fine in protocol 2, refused for the opcode in protocol 4
    ],
    ids=["datetime", "timedelta", "frozenset", "slice", "range", "subclass", "generator", "proto4"],
)
def test_what_torch_refuses_is_refused(tmp_path, value):
    path = tmp_path / "refused.pth"
    protocol = 4 if isinstance(value, list) else 2
    torch.save({"v": value}, path, pickle_protocol=protocol)
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(path, weights_only=True)
    with pytest.raises(UnsafeCheckpointError):
        read_checkpoint(path)
