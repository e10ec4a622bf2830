"""The torch-free checkpoint reader returns exactly what ``torch.load(weights_only=True)`` does.

Covers files torch itself writes (zip and legacy containers, every dtype the checkpoints
use, views, shared storages, nesting, a bare tensor, safetensors), the seeded real-config
checkpoints (CAMPPlus, semantic codec, w2v-bert stats, emotion matrices), and the reverse
direction: files written by ``indextts_weights.readers.testing`` load in torch. Also checks
that importing the readers in the torch-free env does not import torch.
"""

from __future__ import annotations

import collections
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from indextts_weights.readers import detect_format, read_checkpoint, read_state_dict
from indextts_weights.readers.testing import (
    Storage,
    StorageView,
    Tensor,
    storage_reads,
    tensor,
    write_torch_legacy,
)
from indextts_weights.readers.testing import write_torch_zip as write_zip_by_hand
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
        return str(value)
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
