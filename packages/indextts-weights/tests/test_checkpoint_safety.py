"""Hostile or broken checkpoints are refused with a clear error, and no pickle code runs."""

from __future__ import annotations

import collections
import copyreg
import os
import pickle
import struct

import numpy as np
import pytest

from indextts_weights.errors import UnsafeCheckpointError, WeightsError
from indextts_weights.readers import (
    read_checkpoint,
    read_safetensors,
    read_state_dict,
    torch_pickle,
)
from indextts_weights.readers.testing import (
    GlobalCall,
    Storage,
    Tensor,
    global_ref,
    safetensors_bytes,
    tensor,
    torch_zip_members,
    write_torch_legacy,
    write_torch_zip,
    write_zip,
)
from indextts_weights.readers.testing import (
    torch_pickle as pickle_of,
)

REFUSED = [
    ("os", "system"),
    ("posix", "system"),
    ("nt", "system"),
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "getattr"),
    ("builtins", "__import__"),
    ("builtins", "open"),
    ("subprocess", "Popen"),
    ("subprocess", "check_output"),
    ("functools", "partial"),
    ("copyreg", "_reconstructor"),
    ("pickle", "loads"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("torch", "load"),
    ("torch.nn.modules.linear", "Linear"),
    # near misses: torch.load(weights_only=True) refuses these too
    ("datetime", "datetime"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("builtins", "range"),
    ("collections", "defaultdict"),
    ("torch", "UntypedStorage"),
    ("torch", "Generator"),
    ("torch", "channels_last"),
    ("torch.nn.parameter", "Buffer"),
    ("numpy", "dtype"),
]


def _zip_with_pickle(path, data: bytes) -> os.PathLike:
    members = torch_zip_members({"w": tensor(np.ones(2, np.float32))})
    members["archive/data.pkl"] = data
    return write_zip(path, members)


class _Evil:
    """What a malicious checkpoint does: ``__reduce__`` returning ``(os.system, (cmd,))``."""

    def __init__(self, marker):
        self.command = f"touch {marker}"

    def __reduce__(self):
        return (os.system, (self.command,))


def test_the_payload_really_runs_under_plain_pickle(tmp_path):
    """Control: the side effect the other tests look for does happen without protection."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(_Evil(marker), protocol=2))
    assert marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_reduce_to_os_system_is_refused_and_never_runs(tmp_path, protocol, container):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"w": _Evil(marker)}, protocol=protocol)
    if container == "zip":
        path = _zip_with_pickle(tmp_path / "evil.pth", payload)
    else:
        header = b"".join(
            pickle.dumps(x, protocol=2)
            for x in (
                torch_pickle.LEGACY_MAGIC_NUMBER,
                torch_pickle.LEGACY_PROTOCOL_VERSION,
                {"little_endian": True},
            )
        )
        path = tmp_path / "evil.pt"
        path.write_bytes(header + payload + pickle.dumps([], protocol=2))
    module = os.system.__module__  # "posix" here, "nt" on Windows
    with pytest.raises(UnsafeCheckpointError, match=rf"refused global '{module}\.system'") as err:
        read_checkpoint(path)
    assert str(path) in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize(("module", "name"), REFUSED)
def test_every_other_global_is_refused_by_name(tmp_path, module, name):
    marker = tmp_path / "pwned"
    obj = {"w": tensor(np.ones(2)), "x": [GlobalCall(module, name, (f"touch {marker}",))]}
    data, _ = pickle_of(obj)
    path = _zip_with_pickle(tmp_path / "evil.pth", data)
    with pytest.raises(UnsafeCheckpointError, match=rf"'{module}\.{name}'") as err:
        read_checkpoint(path)
    assert str(path) in str(err.value)
    assert not marker.exists()


def test_inst_and_stack_global_opcodes_go_through_the_allowlist(tmp_path):
    marker = tmp_path / "pwned"
    inst = f"(S'touch {marker}'\nios\nsystem\n.".encode()  # protocol 0 INST opcode
    stack_global = (
        b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c"
        + bytes([len(f"touch {marker}")])
        + f"touch {marker}".encode()
        + b"\x85R."
    )
    for i, data in enumerate((inst, stack_global)):
        with pytest.raises(UnsafeCheckpointError, match=r"'os\.system'"):
            read_checkpoint(_zip_with_pickle(tmp_path / f"evil{i}.pth", data))
    assert not marker.exists()


def test_extension_codes_go_through_the_allowlist(tmp_path):
    marker = tmp_path / "pwned"
    copyreg.add_extension("os", "system", 0xBEE)
    try:
        command = f"touch {marker}".encode()
        data = b"\x80\x02\x83\xee\x0b" + b"X" + struct.pack("<I", len(command)) + command
        data += b"\x85R."
        with pytest.raises(UnsafeCheckpointError, match=r"'os\.system'"):
            read_checkpoint(_zip_with_pickle(tmp_path / "ext.pth", data))
    finally:
        copyreg.remove_extension("os", "system", 0xBEE)
    assert not marker.exists()


def test_build_cannot_tamper_with_allowed_objects(tmp_path):
    # GLOBAL torch._utils _rebuild_tensor_v2, {"__code__": 1}, BUILD
    data = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n}X\x08\x00\x00\x00__code__K\x01sb."
    with pytest.raises(UnsafeCheckpointError, match="tries to set state"):
        read_checkpoint(_zip_with_pickle(tmp_path / "build.pth", data))
    assert torch_pickle._rebuild_tensor_v2.__code__.co_name == "_rebuild_tensor_v2"


def test_unsupported_storage_types_are_named(tmp_path):
    obj = {"w": Tensor(Storage(np.zeros(2, np.uint8), "QUInt8Storage"), 0, (1,), (1,))}
    with pytest.raises(WeightsError, match=r"torch\.QUInt8Storage is not supported") as err:
        read_checkpoint(write_torch_zip(tmp_path / "q.pth", obj))
    assert not isinstance(err.value, UnsafeCheckpointError)  # torch allows the name
    with pytest.raises(UnsafeCheckpointError, match=r"'torch\.UntypedStorage'.*unsupported"):
        read_checkpoint(
            write_torch_zip(tmp_path / "u.pth", {"x": global_ref("torch", "UntypedStorage")})
        )


def test_tensors_inside_sets_are_refused_cleanly(tmp_path):
    # a set as protocol 2 pickles it (builtins.set of a list); a tensor in it has no hash
    path = write_torch_zip(
        tmp_path / "set.pth", GlobalCall("builtins", "set", ([tensor(np.ones(1))],))
    )
    with pytest.raises(WeightsError, match=r"unsupported container.*unhashable"):
        read_checkpoint(path)


def test_only_storages_may_be_persistent_ids(tmp_path):
    data = b"\x80\x02X\x06\x00\x00\x00moduleX\x01\x00\x00\x00x\x86Q."  # ("module", "x")
    with pytest.raises(UnsafeCheckpointError, match="refused persistent id"):
        read_checkpoint(_zip_with_pickle(tmp_path / "pid.pth", data))


def test_allowlist_is_torchs():
    """The names of torch 2.13's weights-only allow-list (the parity tests compare the sets):
    tensors, storages, dtypes and the plain containers, nothing that runs code."""
    allowed = torch_pickle.ALLOWED_GLOBALS
    assert len(allowed) == 144
    assert {
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._tensor._rebuild_from_type_v2",
        "collections.OrderedDict",
        "collections.Counter",
        "builtins.set",
        "builtins.bytearray",
        "builtins.complex",
        "_codecs.encode",
        "torch.Size",
        "torch.device",
        "torch.float32",
        "torch.bfloat16",
        "torch.FloatStorage",
        "torch.cuda.HalfStorage",
        "torch.storage.UntypedStorage",
        "torch.nn.parameter.Parameter",
    } <= allowed
    assert not {f"{m}.{n}" for m, n in REFUSED} & allowed
    assert not any(q.split(".")[0] in ("os", "sys", "posix", "nt", "subprocess") for q in allowed)


@pytest.mark.parametrize("name", ["../evil", "/abs/evil", "archive/../../evil", "c:\\evil"])
def test_path_traversal_member_names_are_refused(tmp_path, name):
    members = torch_zip_members({"w": tensor(np.ones(2))})
    members[name] = b"x"
    path = write_zip(tmp_path / "trav.pth", members)
    with pytest.raises(WeightsError, match="path traversal"):
        read_checkpoint(path)
    assert not (tmp_path.parent / "evil").exists()


def test_several_top_level_folders_are_refused(tmp_path):
    members = torch_zip_members({"w": tensor(np.ones(2))})
    members.update(torch_zip_members({"w": tensor(np.zeros(2))}, prefix="other"))
    with pytest.raises(WeightsError, match="one top-level folder"):
        read_checkpoint(write_zip(tmp_path / "two.pth", members))


@pytest.mark.parametrize("container", ["zip", "legacy", "safetensors"])
def test_truncated_files_are_refused(tmp_path, container):
    path = tmp_path / "full.bin"
    weights = {"w": np.arange(64, dtype=np.float32)}
    if container == "zip":
        write_torch_zip(path, {k: tensor(v) for k, v in weights.items()})
    elif container == "legacy":
        write_torch_legacy(path, {k: tensor(v) for k, v in weights.items()})
    else:
        path.write_bytes(safetensors_bytes(weights))
    data = path.read_bytes()
    cut = tmp_path / "cut.bin"
    for size in (len(data) // 2, len(data) - 1):
        cut.write_bytes(data[:size])
        with pytest.raises(WeightsError, match=r"truncated|corrupt|impossible|out of range"):
            read_checkpoint(cut)


def test_missing_storage_member_is_refused(tmp_path):
    members = torch_zip_members({"a": tensor(np.ones(2)), "b": tensor(np.ones(3))})
    del members["archive/data/1"]
    with pytest.raises(WeightsError, match="missing storage member archive/data/1"):
        read_checkpoint(write_zip(tmp_path / "m.pth", members))
    members = torch_zip_members({"a": tensor(np.ones(2))})
    del members["archive/data.pkl"]
    with pytest.raises(WeightsError, match=r"no archive/data\.pkl"):
        read_checkpoint(write_zip(tmp_path / "p.pth", members))


def test_storage_too_small_for_the_tensor_is_refused(tmp_path):
    members = torch_zip_members({"a": tensor(np.ones(4, np.float32))})
    members["archive/data/0"] = members["archive/data/0"][:8]
    with pytest.raises(WeightsError, match="holds 8 bytes, the pickle needs 16"):
        read_checkpoint(write_zip(tmp_path / "short.pth", members))
    storage = Storage(np.arange(6, dtype=np.float32))
    for size, stride, offset in [((2, 3), (3, 1), 1), ((3, 3), (1, 3), 0), ((7,), (1,), 0)]:
        path = write_torch_zip(tmp_path / "bad.pth", {"a": Tensor(storage, offset, size, stride)})
        with pytest.raises(WeightsError, match="storage '0' is too small for a tensor"):
            read_checkpoint(path)
    huge = Tensor(storage, 0, (1 << 20, 1 << 20), (0, 0))  # stride-0 expansion bomb
    with pytest.raises(WeightsError, match="would expand storage"):
        read_checkpoint(write_torch_zip(tmp_path / "bomb.pth", {"a": huge}))


def test_malformed_tensor_arguments_are_refused(tmp_path):
    storage = Storage(np.arange(6, dtype=np.float32))
    cases = {
        "negative": Tensor(storage, -1, (2,), (1,)),
        "ragged": Tensor(storage, 0, (2, 3), (1,)),
    }
    for name, bad in cases.items():
        with pytest.raises(WeightsError, match=r"must be a non-negative int|differ in length"):
            read_checkpoint(write_torch_zip(tmp_path / f"{name}.pth", {"a": bad}))
    not_storage = GlobalCall("torch._utils", "_rebuild_tensor_v2", ("x", 0, (1,), (1,)))
    with pytest.raises(WeightsError, match="rebuilt from str, not a storage"):
        read_checkpoint(write_torch_zip(tmp_path / "s.pth", {"a": not_storage}))


def test_corrupt_bytes_are_detected(tmp_path):
    path = write_torch_zip(tmp_path / "crc.pth", {"w": tensor(np.arange(16, dtype=np.float32))})
    data = bytearray(path.read_bytes())
    payload = np.arange(16, dtype=np.float32).tobytes()
    data[data.index(payload) + 5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="bad CRC"):
        read_checkpoint(path)
    garbage = _zip_with_pickle(tmp_path / "garbage.pth", b"\x80\x02this is not a pickle")
    with pytest.raises(WeightsError, match="corrupt pickle"):
        read_checkpoint(garbage)
    deep = _zip_with_pickle(
        tmp_path / "deep.pth", b"\x80\x02" + b"(" * 100_000 + b")" + b"t" * 100_000 + b"."
    )
    with pytest.raises(WeightsError, match="nested too deeply"):
        read_checkpoint(deep)


def _raw_safetensors(path, header: bytes, data: bytes, header_len: int | None = None):
    size = len(header) if header_len is None else header_len
    path.write_bytes(struct.pack("<Q", size) + header + data)
    return path


@pytest.mark.parametrize(
    ("header", "header_len", "message"),
    [
        (b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 1 << 60, "impossible"),
        (b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 10**6, "impossible"),
        (b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', None, "hole"),
        (b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', None, "out of range"),
        (b'{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', None, "needs 12 bytes"),
        (b'{"w":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}', None, "unsupported dtype"),
        (
            b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
            b'"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
            None,
            "overlaps",
        ),
        (
            b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
            b'"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
            None,
            "duplicate key",
        ),
        (b'{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', None, "malformed shape"),
        (b'{"w":[1,2]}', None, "malformed header entry"),
        (b"{not json!}", None, "not valid JSON"),
        (b'{"__metadata__":{"a":1}}', None, "must map str to str"),
    ],
)
def test_bad_safetensors_headers_are_refused(tmp_path, header, header_len, message):
    path = _raw_safetensors(tmp_path / "bad.safetensors", header, b"\x00" * 8, header_len)
    with pytest.raises(WeightsError, match=message):
        read_safetensors(path)


def test_safetensors_absurd_length_is_refused_before_reading(tmp_path):
    path = _raw_safetensors(tmp_path / "huge.safetensors", b"{}", b"", header_len=2**63)
    with pytest.raises(WeightsError, match="impossible"):
        read_state_dict(path)


def _dtype(name: str) -> torch_pickle.TorchDtype:
    return torch_pickle.TorchDtype(f"torch.{name}")


def _encoded(text: str) -> GlobalCall:
    return GlobalCall("_codecs", "encode", (text, "latin1"))  # how protocol 2 pickles bytes


def _v3(data: np.ndarray, dtype: str) -> GlobalCall:
    raw = Storage(data.view(np.uint8).reshape(-1), "UntypedStorage")
    args = (raw, 0, data.shape, (1,) * data.ndim, False, collections.OrderedDict())
    return GlobalCall("torch._utils", "_rebuild_tensor_v3", (*args, global_ref("torch", dtype)))


# (what is pickled, what it reads as): one entry per kind of allowed global
ALLOWED_VALUES = {
    "dtype": (global_ref("torch", "float32"), _dtype("float32")),
    "bf16_dtype": (global_ref("torch", "bfloat16"), _dtype("bfloat16")),
    "float8_dtype": (global_ref("torch", "float8_e4m3fn"), _dtype("float8_e4m3fn")),
    "qscheme": (
        global_ref("torch", "per_tensor_affine"),
        torch_pickle.TorchName("torch.per_tensor_affine"),
    ),
    "layout": (
        GlobalCall("torch.serialization", "_get_layout", ("torch.strided",)),
        torch_pickle.TorchName("torch.strided"),
    ),
    "size": (GlobalCall("torch", "Size", ((2, 3),)), (2, 3)),
    "device": (GlobalCall("torch", "device", ("cuda", 1)), torch_pickle.TorchDevice("cuda:1")),
    "ordered_dict": (
        GlobalCall("collections", "OrderedDict", ([("b", 1), ("a", 2)],)),
        {"b": 1, "a": 2},
    ),
    "counter": (
        GlobalCall("collections", "Counter", ({"a": 2, "b": 1},)),
        collections.Counter(a=2, b=1),
    ),
    "set": (GlobalCall("builtins", "set", ([1, "x"],)), {1, "x"}),
    "py2_set": (GlobalCall("__builtin__", "set", ([2],)), {2}),
    "bytes": (_encoded("ab\xff\x00"), b"ab\xff\x00"),
    "bytearray": (GlobalCall("builtins", "bytearray", (_encoded("xy"),)), bytearray(b"xy")),
    "complex": (GlobalCall("builtins", "complex", (1.5, -2.0)), 1.5 - 2j),
    "storage_type": (
        global_ref("torch", "HalfStorage"),
        torch_pickle.TorchName("torch.HalfStorage"),
    ),
    "tensor_type": (global_ref("torch", "Tensor"), torch_pickle.TorchName("torch.Tensor")),
}


@pytest.mark.parametrize("case", list(ALLOWED_VALUES))
def test_each_allowed_global_reads_as_its_stand_in(tmp_path, case):
    obj, expected = ALLOWED_VALUES[case]
    got = read_checkpoint(write_torch_zip(tmp_path / "a.pth", {"w": tensor(np.ones(2)), "v": obj}))
    assert type(got["v"]) is type(expected)
    assert got["v"] == expected and str(got["v"]) == str(expected)
    np.testing.assert_array_equal(got["w"], np.ones(2))


def test_dtypes_and_devices_have_torch_like_attributes(tmp_path):
    obj = {
        "dtypes": [global_ref("torch", n) for n in ("float32", "bfloat16", "bool", "qint8")],
        "devices": [GlobalCall("torch", "device", a) for a in (("cuda", 1), ("cpu",))],
    }
    got = read_checkpoint(write_torch_zip(tmp_path / "d.pth", obj))
    assert [d.name for d in got["dtypes"]] == ["float32", "bfloat16", "bool", "qint8"]
    assert [d.numpy for d in got["dtypes"]] == [np.float32, np.float32, np.bool_, None]
    assert {_dtype("float32"): 1}[got["dtypes"][0]] == 1  # hashable, equal by name
    cuda, cpu = got["devices"]
    assert (cuda.type, cuda.device_index, cpu.type, cpu.device_index) == ("cuda", 1, "cpu", None)
    with pytest.raises(AttributeError):
        got["dtypes"][0]._qualname = "torch.int8"


def test_allowed_tensor_rebuilds_read_their_data(tmp_path):
    base = tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    args = (base.storage, 0, (2, 3), (3, 1), False, collections.OrderedDict())
    obj = {
        "u16": _v3(np.array([1, 65535, 7], np.uint16), "uint16"),
        "u64": _v3(np.array([2**63 + 5], np.uint64), "uint64"),
        "c64": tensor(np.array([1 + 2j, -3j], np.complex64)),
        "c128": tensor(np.array([1e300 + 1j], np.complex128)),
        "with_attributes": GlobalCall(
            "torch._tensor",
            "_rebuild_from_type_v2",
            (
                global_ref("torch._utils", "_rebuild_tensor_v2"),
                global_ref("torch", "Tensor"),
                args,
                {"foo": 3},
            ),
        ),
        "parameter": GlobalCall("torch.nn.parameter", "Parameter", (base, False)),
        "from_cpu": GlobalCall(
            "torch._utils",
            "_rebuild_device_tensor_from_cpu_tensor",
            (base, global_ref("torch", "float32"), "xla:0", False),
        ),
        "bare_storage": base.storage,
    }
    got = read_checkpoint(write_torch_zip(tmp_path / "t.pth", obj))
    np.testing.assert_array_equal(got["u16"], np.array([1, 65535, 7], np.uint16))
    assert got["u64"].dtype == np.uint64 and int(got["u64"][0]) == 2**63 + 5
    assert got["c64"].dtype == np.complex64 and got["c64"][0] == 1 + 2j
    assert got["c128"].dtype == np.complex128
    for key in ("with_attributes", "parameter", "from_cpu"):
        np.testing.assert_array_equal(got[key], np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(got["bare_storage"], np.arange(6, dtype=np.float32))


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("_rebuild_qtensor", "quantized tensors"),
        ("_rebuild_sparse_tensor", "sparse tensors"),
        ("_rebuild_meta_tensor_no_storage", "meta tensors"),
        ("_rebuild_nested_tensor", "nested tensors"),
        ("_rebuild_wrapper_subclass", "wrapper subclasses"),
        ("_rebuild_device_tensor_from_numpy", "from numpy arrays"),
    ],
)
def test_allowed_but_unsupported_tensor_kinds_are_named(tmp_path, name, kind):
    path = write_torch_zip(tmp_path / "k.pth", {"t": GlobalCall("torch._utils", name, (1, 2))})
    with pytest.raises(WeightsError, match=kind) as err:
        read_checkpoint(path)
    assert not isinstance(err.value, UnsafeCheckpointError)


def test_float8_tensors_are_refused_by_dtype(tmp_path):
    path = write_torch_zip(tmp_path / "f8.pth", {"t": _v3(np.zeros(4, np.uint8), "float8_e4m3fn")})
    with pytest.raises(WeightsError, match=r"dtype torch\.float8_e4m3fn are not supported"):
        read_checkpoint(path)


@pytest.mark.parametrize(
    ("data", "opcode"),
    [
        (pickle.dumps({"a": 1}, protocol=4), "FRAME"),
        (pickle.dumps(b"xy", protocol=3), "SHORT_BINBYTES"),
        (pickle.dumps({"a": 1}, protocol=0), "DICT"),
        (b"\x80\x02]q\x00K\x01a2.", "DUP"),
        (b"\x80\x04\x8f(K\x01\x90.", "ADDITEMS"),
        (b"\x80\x02(K\x01K\x02l.", "LIST"),
    ],
)
def test_opcodes_torch_refuses_are_refused(tmp_path, data, opcode):
    with pytest.raises(UnsafeCheckpointError, match=rf"refused opcode {opcode}.*refuses it too"):
        read_checkpoint(_zip_with_pickle(tmp_path / "op.pth", data))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x02}K\x01a.", r"append to dict"),  # APPEND onto a dict
        (b"\x80\x02]K\x01K\x02s.", r"item assignment to list"),  # SETITEM on a list
        (b"\x80\x02\x8fK\x01K\x02s.", r"item assignment to set"),
        (b"\x80\x02}}b.", r"tries to set state on dict"),  # BUILD on a plain dict
        (b"\x80\x02c_codecs\nencode\n)\x81.", r"NEWOBJ of"),  # NEWOBJ of a function
        (b"\x80\x02ctorch\nfloat32\n)R.", r"call of torch\.float32"),  # REDUCE of a dtype
        (b"\x80\x02X\x01\x00\x00\x00x)R.", r"call of 'x'"),  # REDUCE of a str
    ],
)
def test_stack_operations_are_restricted_as_torchs(tmp_path, data, message):
    with pytest.raises(UnsafeCheckpointError, match=message):
        read_checkpoint(_zip_with_pickle(tmp_path / "s.pth", data))


def test_newobj_builds_the_allowed_classes(tmp_path):
    # NEWOBJ of OrderedDict (then SETITEM) and of torch.Size, as torch allows
    data = (
        b"\x80\x02}(X\x01\x00\x00\x00accollections\nOrderedDict\n)\x81"
        b"X\x01\x00\x00\x00kK\x01sX\x01\x00\x00\x00bctorch\nSize\nK\x02K\x03\x86\x85\x81u."
    )
    got = read_checkpoint(_zip_with_pickle(tmp_path / "n.pth", data))
    assert got == {"a": {"k": 1}, "b": (2, 3)} and type(got["a"]) is dict


def test_python2_builtin_names_are_mapped_as_torch_maps_them(tmp_path):
    data, _ = pickle_of({"x": GlobalCall("__builtin__", "eval", ("1",))})
    with pytest.raises(UnsafeCheckpointError, match=r"refused global 'builtins\.eval'"):
        read_checkpoint(_zip_with_pickle(tmp_path / "py2.pth", data))


def test_newobj_of_containers_ignores_arguments_as_torch_does(tmp_path):
    # cls.__new__(set, [1, 2]) is an empty set; the data comes by REDUCE, not NEWOBJ
    data = b"\x80\x02c__builtin__\nset\n]K\x01a\x85\x81."
    assert read_checkpoint(_zip_with_pickle(tmp_path / "s.pth", data)) == set()


def test_bytes_are_only_text_encoded(tmp_path):
    obj = {"b": GlobalCall("_codecs", "encode", ("x", "zlib_codec"))}
    with pytest.raises(WeightsError, match=r"unsupported _codecs\.encode\(str, 'zlib_codec'\)"):
        read_checkpoint(write_torch_zip(tmp_path / "z.pth", obj))
