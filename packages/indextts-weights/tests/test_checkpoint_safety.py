"""Hostile or broken checkpoints are refused with a clear error, and no pickle code runs."""

from __future__ import annotations

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
    ("torch._utils", "_rebuild_device_tensor_from_numpy"),
    ("torch.nn.modules.linear", "Linear"),
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
    obj = {"w": Tensor(Storage(np.zeros(2, np.float32), "ComplexFloatStorage"), 0, (1,), (1,))}
    with pytest.raises(UnsafeCheckpointError, match=r"'torch\.ComplexFloatStorage'.*unsupported"):
        read_checkpoint(write_torch_zip(tmp_path / "c.pth", obj))


def test_tensors_inside_sets_are_refused_cleanly(tmp_path):
    # protocol 4 EMPTY_SET + ADDITEMS need no global; a tensor in a set cannot become an array
    data, _ = pickle_of(tensor(np.ones(1)))
    body = data[2:-1]  # the tensor's opcodes, without PROTO and STOP
    path = _zip_with_pickle(tmp_path / "set.pth", b"\x80\x04\x8f(" + body + b"\x90.")
    with pytest.raises(WeightsError, match=r"unsupported container.*unhashable"):
        read_checkpoint(path)


def test_only_storages_may_be_persistent_ids(tmp_path):
    data = b"\x80\x02X\x06\x00\x00\x00moduleX\x01\x00\x00\x00x\x86Q."  # ("module", "x")
    with pytest.raises(UnsafeCheckpointError, match="refused persistent id"):
        read_checkpoint(_zip_with_pickle(tmp_path / "pid.pth", data))


def test_allowlist_is_exactly_tensors_and_containers():
    assert {
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "collections.OrderedDict",
        "torch.Size",
        "torch.device",
        *(f"torch.{n}" for n in torch_pickle.STORAGE_DTYPES),
        "torch.storage.UntypedStorage",
    } == torch_pickle.ALLOWED_GLOBALS


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
