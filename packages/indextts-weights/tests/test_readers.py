"""The torch-free checkpoint readers decode hand-built files to the exact arrays."""

from __future__ import annotations

import collections
import zipfile

import numpy as np
import pytest

from indextts_weights.errors import WeightsError
from indextts_weights.readers import (
    detect_format,
    extract_state_dict,
    read_checkpoint,
    read_safetensors,
    read_safetensors_header,
    read_state_dict,
)
from indextts_weights.readers.testing import (
    GlobalCall,
    Storage,
    StorageView,
    Tensor,
    safetensors_bytes,
    storage_reads,
    tensor,
    torch_zip_members,
    write_safetensors,
    write_torch_legacy,
    write_torch_zip,
    write_zip,
)

# bfloat16 bit patterns and the float32 values they stand for (bf16 = top half of f32).
BF16_BITS = np.array([0x3F80, 0xC000, 0x4049, 0x7F80, 0xFF80, 0x0001, 0x8000, 0x3E20], np.uint16)
BF16_VALUES = np.array([1.0, -2.0, 3.140625, np.inf, -np.inf, 2.0**-133, -0.0, 0.15625], np.float32)

DTYPE_CASES = {
    "f32": np.array([[1.5, -2.25, 3e-38], [0.0, -0.0, 6.5e4]], np.float32),
    "f64": np.array([np.pi, -1e300], np.float64),
    "f16": np.array([1.0, -0.5, 65504.0, 6e-8], np.float16),
    "i64": np.array([-(2**63), 2**63 - 1, 0, 7], np.int64),
    "i32": np.array([-(2**31), 2**31 - 1], np.int32),
    "i16": np.array([-32768, 32767], np.int16),
    "i8": np.array([-128, 127, 5], np.int8),
    "u8": np.array([0, 255, 17], np.uint8),
    "bool": np.array([[True, False], [False, True]]),
}

WRITERS = {"zip": write_torch_zip, "legacy": write_torch_legacy}


def _check_exact(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()  # bit-exact, -0.0 included


@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_every_dtype_decodes_exactly(tmp_path, container):
    obj = {name: tensor(array) for name, array in DTYPE_CASES.items()}
    obj["bf16"] = tensor(BF16_BITS.reshape(2, 4), storage_type="BFloat16Storage")
    got = read_checkpoint(WRITERS[container](tmp_path / "x.pt", obj))
    assert list(got) == [*DTYPE_CASES, "bf16"]
    for name, array in DTYPE_CASES.items():
        _check_exact(got[name], array)
    _check_exact(got["bf16"], BF16_VALUES.reshape(2, 4))
    assert all(a.flags.c_contiguous and a.flags.writeable for a in got.values())


def test_big_endian_byteorder_member_is_honoured(tmp_path):
    obj = {name: tensor(DTYPE_CASES[name]) for name in ("f32", "f16", "i64", "u8")}
    obj["bf16"] = tensor(BF16_BITS, storage_type="BFloat16Storage")
    path = write_torch_zip(tmp_path / "be.pt", obj, byteorder="big")
    raw = zipfile.ZipFile(path).read("archive/data/0")
    assert raw == DTYPE_CASES["f32"].astype(">f4").tobytes()  # really stored big-endian
    got = read_checkpoint(path)
    for name in ("f32", "f16", "i64", "u8"):
        _check_exact(got[name], DTYPE_CASES[name])
    _check_exact(got["bf16"], BF16_VALUES)


@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_views_share_and_stride_like_torch(tmp_path, container):
    base = Storage(np.arange(12, dtype=np.float32))
    obj = {
        "full": Tensor(base, 0, (3, 4), (4, 1)),
        "transposed": Tensor(base, 0, (4, 3), (1, 4)),
        "strided": Tensor(base, 1, (2, 3), (6, 2)),  # a[1::2] of (2, 6) view, offset 1
        "expanded": Tensor(base, 4, (2, 3), (0, 1)),  # row 4..6 broadcast twice
        "scalar": Tensor(base, 11, (), ()),
        "empty": Tensor(base, 0, (0, 3), (3, 1)),
    }
    got = read_checkpoint(WRITERS[container](tmp_path / "v.pt", obj))
    ref = np.arange(12, dtype=np.float32)
    _check_exact(got["full"], ref.reshape(3, 4))
    _check_exact(got["transposed"], ref.reshape(3, 4).T.copy())
    _check_exact(got["strided"], np.array([[1, 3, 5], [7, 9, 11]], np.float32))
    _check_exact(got["expanded"], np.array([[4, 5, 6], [4, 5, 6]], np.float32))
    _check_exact(got["scalar"], np.array(11, np.float32))
    _check_exact(got["empty"], np.zeros((0, 3), np.float32))
    # independent arrays: writing one leaves the others (and their shared storage) alone
    got["full"][0, 0] = 100.0
    assert got["transposed"][0, 0] == 0.0
    names = list(got)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not np.shares_memory(got[a], got[b])


def test_sole_user_of_a_storage_takes_it_without_a_copy_but_same_tensor_twice_is_one(tmp_path):
    shared = tensor(np.arange(4, dtype=np.int64))
    obj = {"a": shared, "again": shared, "other": tensor(np.ones(2, np.float16))}
    got = read_checkpoint(write_torch_zip(tmp_path / "t.pt", obj))
    assert got["a"] is got["again"]  # one pickled tensor referenced twice stays one array
    _check_exact(got["a"], np.arange(4, dtype=np.int64))
    _check_exact(got["other"], np.ones(2, np.float16))


def test_legacy_storage_views(tmp_path):
    root = Storage(np.arange(10, dtype=np.int32))
    view = StorageView(root, 3, 5)  # elements 3..7 of the root
    obj = {"whole": Tensor(root, 0, (10,), (1,)), "view": Tensor(view, 1, (2, 2), (2, 1))}
    got = read_checkpoint(write_torch_legacy(tmp_path / "old.pt", obj))
    _check_exact(got["view"], np.array([[4, 5], [6, 7]], np.int32))
    _check_exact(got["whole"], np.arange(10, dtype=np.int32))


@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_nested_structure_is_preserved(tmp_path, container):
    weight = np.array([[0.5, -1.0]], np.float32)
    state_dict = collections.OrderedDict(
        [("w", tensor(weight)), ("p", tensor(weight[0], parameter=True))]
    )
    # Module.state_dict() carries per-module versions, pickled as the OrderedDict's state
    state_dict._metadata = collections.OrderedDict([("", {"version": 1})])
    obj = {
        "net": {
            "cfm": state_dict,
            "gpt_layer": {},
        },
        "optimizer": {"param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "params": [0, 1]}]},
        "iters": 123456789012,
        "name": "s2mel",
        "flags": [True, False, None],
        "size": GlobalCall("torch", "Size", ((2, 3),)),
        "device": GlobalCall("torch", "device", ("cuda", 1)),
        "cpu": GlobalCall("torch", "device", ("cpu",)),
    }
    got = read_checkpoint(WRITERS[container](tmp_path / "n.pt", obj))
    assert type(got["net"]["cfm"]) is dict and list(got["net"]["cfm"]) == ["w", "p"]
    _check_exact(got["net"]["cfm"]["w"], weight)
    _check_exact(got["net"]["cfm"]["p"], weight[0])
    assert got["net"]["gpt_layer"] == {}
    assert got["optimizer"] == {
        "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "params": [0, 1]}]
    }
    assert got["iters"] == 123456789012 and got["name"] == "s2mel"
    assert got["flags"] == [True, False, None]
    assert got["size"] == (2, 3) and type(got["size"]) is tuple
    assert got["device"] == "cuda:1" and got["cpu"] == "cpu"


def test_bare_tensor_and_list_of_tensors(tmp_path):
    matrix = np.arange(6, dtype=np.float32).reshape(3, 2) / 7
    _check_exact(read_checkpoint(write_torch_zip(tmp_path / "feat1.pt", tensor(matrix))), matrix)
    got = read_checkpoint(write_torch_zip(tmp_path / "l.pt", [tensor(matrix), (tensor(matrix),)]))
    _check_exact(got[0], matrix)
    _check_exact(got[1][0], matrix)


def test_any_archive_prefix_and_deflated_members_are_read(tmp_path):
    members = torch_zip_members({"w": tensor(np.arange(3.0))}, prefix="gpt")
    path = tmp_path / "deflated.pth"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    _check_exact(read_state_dict(path)["w"], np.arange(3.0))


def test_unwrap_nested_state_dicts(tmp_path):
    sd = {"a.weight": tensor(np.ones((2, 2), np.float32)), "a.bias": tensor(np.zeros(2))}
    plain = write_torch_zip(tmp_path / "plain.pth", sd)
    wrapped = write_torch_zip(tmp_path / "wrapped.pth", {"model": sd, "step": 3})
    s2mel = write_torch_zip(tmp_path / "s2mel.pth", {"net": {"cfm": sd, "gpt_layer": {}}})
    for path in (plain, wrapped):
        got = read_state_dict(path, unwrap=("model",))
        assert list(got) == ["a.weight", "a.bias"]
        _check_exact(got["a.weight"], np.ones((2, 2), np.float32))
    assert list(read_state_dict(s2mel, unwrap=("net", "cfm"))) == ["a.weight", "a.bias"]
    assert read_state_dict(s2mel, unwrap=("net", "gpt_layer")) == {}
    obj = read_checkpoint(s2mel)  # read once, split several times
    assert list(extract_state_dict(obj, ("net", "cfm"))) == ["a.weight", "a.bias"]
    with pytest.raises(WeightsError, match=r"no key 'length_regulator' under net \(found 'cfm'"):
        read_state_dict(s2mel, unwrap=("net", "length_regulator"))
    with pytest.raises(
        WeightsError, match=r"not a flat state dict; not tensors: model \(dict\), step \(int\)"
    ):
        read_state_dict(wrapped)
    with pytest.raises(
        WeightsError, match=r"net is not a flat state dict; not tensors: cfm \(dict\)"
    ):
        read_state_dict(s2mel, unwrap=("net",))


def test_state_dict_checks_keys_and_values(tmp_path):
    with pytest.raises(WeightsError, match="non-str keys"):
        read_state_dict(write_torch_zip(tmp_path / "k.pt", {1: tensor(np.ones(1))}))
    with pytest.raises(WeightsError, match=r"top level is a ndarray, not a state dict"):
        read_state_dict(write_torch_zip(tmp_path / "t.pt", tensor(np.ones(1))))


def test_safetensors_every_dtype_metadata_and_order(tmp_path):
    arrays = dict(DTYPE_CASES)
    arrays["bf16"] = BF16_BITS.reshape(4, 2)
    arrays["scalar"] = np.array(2.5, np.float32)
    arrays["empty"] = np.zeros((0, 4), np.float32)
    path = write_safetensors(
        tmp_path / "m.safetensors", arrays, dtypes={"bf16": "BF16"}, metadata={"format": "pt"}
    )
    assert detect_format(path) == "safetensors"
    got = read_checkpoint(path)
    assert list(got) == list(arrays)
    for name, array in DTYPE_CASES.items():
        _check_exact(got[name], array)
    _check_exact(got["bf16"], BF16_VALUES.reshape(4, 2))
    _check_exact(got["scalar"], np.array(2.5, np.float32))
    _check_exact(got["empty"], np.zeros((0, 4), np.float32))
    infos, metadata, start = read_safetensors_header(path)
    assert metadata == {"format": "pt"} and start % 8 == 0
    assert [i.name for i in infos][:2] == ["f32", "f64"] and infos[0].begin == 0
    assert read_state_dict(path).keys() == got.keys()


def test_safetensors_header_in_any_key_order(tmp_path):
    data = safetensors_bytes({"a": np.arange(2, dtype=np.int16), "b": np.arange(3.0)})
    header_len = int.from_bytes(data[:8], "little")
    import json

    header = json.loads(data[8 : 8 + header_len])
    reordered = json.dumps({"b": header["b"], "a": header["a"]}).encode()
    reordered += b" " * (header_len - len(reordered))
    path = tmp_path / "r.safetensors"
    path.write_bytes(data[:8] + reordered + data[8 + header_len :])
    got = read_safetensors(path)
    _check_exact(got["a"], np.arange(2, dtype=np.int16))
    _check_exact(got["b"], np.arange(3.0))


def test_detect_format_and_clear_errors(tmp_path):
    sd = {"w": tensor(np.ones(2))}
    assert detect_format(write_torch_zip(tmp_path / "z.pt", sd)) == "torch-zip"
    assert detect_format(write_torch_legacy(tmp_path / "l.pt", sd)) == "torch-legacy"
    with pytest.raises(WeightsError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "absent.pth")
    with pytest.raises(WeightsError, match="checkpoint not found"):
        read_checkpoint(tmp_path)
    (tmp_path / "text.pth").write_text("hello, not a checkpoint")
    with pytest.raises(WeightsError, match="unknown checkpoint format"):
        read_checkpoint(tmp_path / "text.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(WeightsError, match="unknown checkpoint format"):
        read_checkpoint(tmp_path / "empty.pth")
    np.savez(tmp_path / "other.npz", w=np.ones(2))
    with pytest.raises(WeightsError, match="not inside a top-level folder"):
        read_checkpoint(tmp_path / "other.npz")
    write_zip(tmp_path / "script.pt", {"m/constants.pkl": b"", "m/code/x.py": b""})
    with pytest.raises(WeightsError, match="TorchScript"):
        read_checkpoint(tmp_path / "script.pt")


def _training_checkpoint() -> tuple[dict[str, object], int]:
    """An ``s2mel.pth`` as training saves it (``net`` + Adam state), and the net's bytes."""
    rng = np.random.default_rng(0)
    net = {
        "cfm": {"w": rng.standard_normal((4, 3)).astype(np.float32), "b": np.arange(4.0)},
        "gpt_layer": {"w": rng.standard_normal((2, 5)).astype(np.float16)},
    }
    shared = Storage(np.arange(12, dtype=np.float32))  # a view pair sharing one storage
    obj: dict[str, object] = {
        "net": {name: {k: tensor(v) for k, v in sd.items()} for name, sd in net.items()},
        "optimizer": {
            "state": {
                i: {"step": tensor(np.array(3.0)), "exp_avg": tensor(np.ones(100_000))}
                for i in range(3)
            },
            "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.98), "params": [0, 1, 2]}],
        },
        "ema": {"w": Tensor(shared, 0, (3, 4), (4, 1)), "wt": Tensor(shared, 0, (4, 3), (1, 4))},
        "iters": 7,
    }
    obj["net"]["cfm"]["wt"] = Tensor(shared, 1, (2, 2), (1, 4))  # type: ignore[index]
    net_bytes = sum(v.nbytes for sd in net.values() for v in sd.values()) + 48
    return obj, net_bytes


@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_unwrapped_read_reads_only_the_kept_storages(tmp_path, container):
    obj, net_bytes = _training_checkpoint()
    path = WRITERS[container](tmp_path / "s2mel.pth", obj)
    with storage_reads() as read_sizes:
        full = read_checkpoint(path)
    assert sum(read_sizes) > 3 * 800_000  # the optimizer state is read
    with storage_reads() as read_sizes:
        pruned = read_checkpoint(path, unwrap=("net",))
    assert sum(read_sizes) == net_bytes and len(read_sizes) == 4  # net's storages only
    assert list(pruned) == ["cfm", "gpt_layer"]
    for name, sd in full["net"].items():
        assert list(pruned[name]) == list(sd)
        for key, array in sd.items():
            _check_exact(pruned[name][key], array)
    assert read_checkpoint(path, unwrap=("absent", "net")).keys() == pruned.keys()
    with storage_reads() as read_sizes:
        assert read_checkpoint(path, unwrap=("iters",)) == 7
    assert read_sizes == []
