"""S2Mel length regulator parity: our MLX ``InterpolateRegulator`` vs the reference's.

The checkpoint is the seeded real-config ``s2mel.pth`` (:func:`parity.checkpoints.s2mel_checkpoint`:
``MyModel(cfg.s2mel, use_gpt_latent=True)`` with the constant-initialised GroupNorm
affines, biases and ``mask_token`` perturbed). Our side reads it torch-free
(``read_checkpoint`` → ``net.length_regulator`` → ``sanitize_regulator``, which drops
``embedding.weight`` and ``mask_token`` by name) and loads it strictly. The reference is
``InterpolateRegulator`` built as ``MyModel`` builds it, with ``net.length_regulator``
loaded strictly, called as ``infer_v2`` calls it (``n_quantizers=3, f0=None``).

Inputs are seeded standard-normal ``(B, n, 1024)`` arrays standing for ``S_ref`` / ``S_infer``:

* prompt regulator (docs/data-flow.md step 9): ``ylens = [T_ref]``, the reference-mel frame
  count of an ``n``-code prompt (``T_ref ≈ n · 86.13 / 50``, not the 1.72 rule), for 1, 4 and 15 s
  prompts;
* inference regulator (step 19): ``ylens = (code_lens * 1.72).long()`` computed by the
  reference's own expression, for n = 25 (n · 1.72 = 43 exactly), 26 and 64 (where
  PyTorch's float32 nearest-index rule differs from the exact ``floor(i · n / T)``),
  117 and 500 (10 s of codes → 860 frames);
* a batch of two rows with different target lengths (mask and shared interpolation).

Tolerance: docs/promises.md §5 asks max|Δ| 0.000 (prompt) and < 0.001 (inference) on the official
weights; here every stage must reach cos ≥ 0.99999 and max|Δ| ≤ :data:`TOL` (measured
values are in the printed parity table).
"""

from __future__ import annotations

from pathlib import Path

import mlx_indextts_models  # noqa: F401  (first: it loads the fast BLAS before MLX)

# isort: split

import mlx.core as mx
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from indextts_weights.errors import WeightsError
from indextts_weights.mapping.s2mel_regulator import IGNORED, sanitize_regulator
from mlx_indextts_models.s2mel.regulator import (
    InterpolateRegulator,
    RegulatorArgs,
    nearest_indices,
    target_lengths,
)
from parity.harness import assert_close, cached_arrays, compare
from parity.s2mel_stages import load_stage, reference_regulator, stage_fixtures

TOL = 1e-5  # measured ≤ 3.4e-6 (outputs reach ~2.1); PyTorch's own error vs float64 ~3e-6
#: name → (batch, n codes, target lengths or None for the 1.72 rule).
PROMPT_CASES = {
    "prompt_50": (1, 50, [87]),
    "prompt_200": (1, 200, [345]),
    "prompt_750": (1, 750, [1292]),  # a 15 s prompt
}
INFER_CASES = {f"infer_{n}": (1, n, None) for n in (25, 26, 64, 117, 500)}
BATCH_CASES = {"batch_30": (2, 30, [51, 40])}
CASES = {**PROMPT_CASES, **INFER_CASES, **BATCH_CASES}


def make_input(name: str) -> np.ndarray:
    batch, n, _ = CASES[name]
    rng = np.random.default_rng(2000 + 10 * n + batch)
    return rng.standard_normal((batch, n, 1024)).astype(np.float32)


def reference_ylens(name: str) -> list[int]:
    """The case's target lengths; the 1.72 rule evaluated as ``infer_v2`` does."""
    batch, n, ylens = CASES[name]
    if ylens is not None:
        return ylens
    return (torch.LongTensor([n] * batch) * 1.72).long().tolist()


def reference_outputs(checkpoint: Path) -> dict[str, np.ndarray]:
    """Every case's reference output ``(B, T, 512)``, cached per checkpoint."""

    def compute() -> dict[str, np.ndarray]:
        regulator = reference_regulator(checkpoint)
        out = {}
        with torch.no_grad():
            for name in CASES:
                ylens = torch.LongTensor(reference_ylens(name))
                cond = regulator(
                    torch.from_numpy(make_input(name)), ylens=ylens, n_quantizers=3, f0=None
                )[0]
                out[name] = cond.numpy()
        return out

    return cached_arrays(
        "s2mel_regulator_reference", compute, checkpoint=checkpoint.parent.name, cases=CASES
    )


def load(state: dict[str, np.ndarray]) -> InterpolateRegulator:
    return load_stage(InterpolateRegulator(RegulatorArgs()), sanitize_regulator, state)


checkpoint, state, reference, ours = stage_fixtures("length_regulator", reference_outputs)


def run(model: InterpolateRegulator, name: str) -> np.ndarray:
    batch, n, ylens = CASES[name]
    if ylens is None:
        ylens = target_lengths([n] * batch)
    return np.array(model(mx.array(make_input(name)), ylens))


@pytest.mark.parametrize("name", list(PROMPT_CASES))
def test_prompt_regulator_matches_reference(name, ours, reference, record):
    result = record(compare(f"prompt regulator [{name}]", reference[name], run(ours, name)))
    assert_close(result, max_abs=TOL)


@pytest.mark.parametrize("name", [*INFER_CASES, *BATCH_CASES])
def test_inference_regulator_matches_reference(name, ours, reference, record):
    got = run(ours, name)
    ref = reference[name]
    assert got.shape == ref.shape
    result = record(compare(f"inference regulator [{name}]", ref, got))
    assert_close(result, max_abs=TOL)
    lengths = reference_ylens(name)
    for b, length in enumerate(lengths):  # zero past each row's length, on both sides
        assert not got[b, length:].any() and not ref[b, length:].any()


def test_target_lengths_match_infer_v2():
    n = np.arange(1, 5001)
    expected = (torch.from_numpy(n) * 1.72).long().tolist()
    assert target_lengths(n.tolist()) == expected
    assert [target_lengths(int(k)) for k in (1, 25, 26, 500, 4999)] == [
        expected[k - 1] for k in (1, 25, 26, 500, 4999)
    ]
    assert target_lengths(25) == 43 and target_lengths(500) == 860


def test_nearest_indices_match_torch_interpolate():
    """Every (n, T) with n < 300 and T in {floor(1.72 n), n, 2n, n ± 1, 3n + 1}."""
    for n in range(1, 300):
        x = torch.arange(n, dtype=torch.float32)[None, None]
        for size in {int(n * 1.72), n, 2 * n, n + 1, max(1, n - 1), 3 * n + 1}:
            expected = F.interpolate(x, size=size, mode="nearest")[0, 0].long().numpy()
            np.testing.assert_array_equal(nearest_indices(n, size), expected, err_msg=f"{n}→{size}")


def test_ignored_keys_are_exactly_the_unused_parameters(state):
    """The checkpoint holds ``embedding.weight`` (2048, 512) and ``mask_token`` (1, 512):
    dropped by name; everything else loads strictly."""
    assert set(IGNORED) <= set(state)
    assert state["embedding.weight"].shape == (2048, 512)
    assert state["mask_token"].shape == (1, 512)
    assert set(sanitize_regulator(state)) == set(state) - set(IGNORED)


def test_unknown_and_missing_keys_fail_loudly(state):
    broken = dict(state)
    del broken["model.10.bias"]
    broken["model.13.weight"] = np.zeros((512, 512, 1), np.float32)
    with pytest.raises(
        WeightsError, match=r"unexpected: model\.13\.weight; missing: model\.10\.bias"
    ):
        sanitize_regulator(broken)


def test_comparison_catches_a_kernel_reversed_in_time(state, reference):
    broken = dict(state)
    broken["model.6.weight"] = state["model.6.weight"][:, :, ::-1].copy()
    with pytest.raises(AssertionError):
        assert_close(
            compare("reversed", reference["infer_117"], run(load(broken), "infer_117")), max_abs=TOL
        )


def test_comparison_catches_the_exact_nearest_rule(ours, reference, monkeypatch):
    """``floor(i · n / T)`` instead of PyTorch's float32 rule picks another source frame
    for frame 22 of 26 → 44: the comparison sees it."""
    from mlx_indextts_models.s2mel import regulator

    def exact(in_size: int, out_size: int) -> np.ndarray:
        return np.minimum(np.arange(out_size) * in_size // out_size, in_size - 1).astype(np.int32)

    monkeypatch.setattr(regulator, "nearest_indices", exact)
    with pytest.raises(AssertionError):
        assert_close(compare("exact", reference["infer_26"], run(ours, "infer_26")), max_abs=TOL)
