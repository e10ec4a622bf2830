"""S2Mel CFM parity: our MLX DiT estimator and Euler sampler vs the reference's.

The checkpoint is the seeded real-config ``s2mel.pth``
(:func:`parity.checkpoints.s2mel_checkpoint`). Our side reads it torch-free
(``read_checkpoint`` → ``net.cfm`` → ``sanitize_cfm``: weight norms folded with biases
kept, conv layouts, unused parameters and recomputed buffers dropped by name) and loads
it strictly. The reference is ``MyModel(cfg.s2mel)``'s ``cfm``
with ``net.cfm`` loaded strictly and ``estimator.setup_caches(1, 8192)`` as ``infer_v2``.

* DiT velocity (one estimator forward with ``x, prompt_x, x_lens, t, style, mu``) on
  CFG-style batches ``[cond, uncond]`` (uncond: prompt, style and mu zero): 40 frames,
  a 10 s case (860 generated frames + a 3 s / 258-frame prompt), and a batch with
  ``x_lens`` shorter than ``T`` (key mask + WaveNet mask). cos ≥ 0.99999.
* Full ``CFM.inference`` (25 Euler steps, CFG 0.7, as ``infer_v2``) on 96 frames with
  a 32-frame prompt, the same standard-normal noise fed to both sides (the reference's
  ``torch.randn`` is patched for the call); and 4 steps without guidance. cos ≥ 0.99999
  (docs/promises.md §5: ≥ 0.9999) over the generated frames; prompt frames are exactly zero
  on both sides.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import mlx_indextts_models  # noqa: F401  (first: it loads the fast BLAS before MLX)

# isort: split

import mlx.core as mx
import numpy as np
import pytest
import torch

from indextts_weights.errors import WeightsError
from indextts_weights.mapping.s2mel_cfm import IGNORED, RECOMPUTED, sanitize_cfm
from mlx_indextts_models.s2mel.cfm import CFM
from mlx_indextts_models.s2mel.dit import DiTArgs
from mlx_indextts_models.s2mel.wavenet import WaveNetArgs
from parity.checkpoints import real_config
from parity.harness import assert_close, cached_arrays, compare
from parity.s2mel_stages import load_stage, reference_cfm, stage_fixtures

VELOCITY_TOL = 2e-5  # measured ≤ 2.5e-6 (velocities reach ~1.5)
CFM_TOL = 2e-5  # measured 1.2e-6 after 25 steps with the same noise
CFM_COS = 0.99999  # docs/promises.md §5: ≥ 0.9999 (shared noise); measured 1.0000000
#: name → (frames T, prompt frames, x_lens, cfg-style batch).
VELOCITY_CASES = {
    "v_40": (40, 12, [40], True),
    "v_10s": (1118, 258, [1118], True),
    "v_masked": (97, 30, [97, 80], False),
}
#: name → (frames T, prompt frames, steps, cfg rate).
CFM_CASES = {
    "cfm_96_25steps": (96, 32, 25, 0.7),
    "cfm_60_nocfg": (60, 20, 4, 0.0),
}


def velocity_inputs(name: str) -> dict[str, np.ndarray]:
    """Channels-first (reference layout) inputs of a velocity case."""
    frames, prompt, _, cfg = VELOCITY_CASES[name]
    rng = np.random.default_rng(3000 + frames)
    x = rng.standard_normal((2, 80, frames)).astype(np.float32)
    x[..., :prompt] = 0
    prompt_x = np.zeros((2, 80, frames), np.float32)
    prompt_x[..., :prompt] = rng.standard_normal((2, 80, prompt))
    mu = rng.standard_normal((2, frames, 512)).astype(np.float32)
    style = rng.standard_normal((2, 192)).astype(np.float32)
    t = rng.uniform(0, 1, 2).astype(np.float32)
    if cfg:  # [cond, uncond] as solve_euler stacks them
        x[1] = x[0]
        t[1] = t[0]
        prompt_x[1] = 0
        mu[1] = 0
        style[1] = 0
    return {"x": x, "prompt_x": prompt_x, "mu": mu, "style": style, "t": t}


def cfm_inputs(name: str) -> dict[str, np.ndarray]:
    """``mu (1, T, 512)``, ``prompt (1, 80, T_p)``, ``style (1, 192)``, ``noise (1, 80, T)``."""
    frames, prompt, _, _ = CFM_CASES[name]
    rng = np.random.default_rng(4000 + frames)
    return {
        "mu": rng.standard_normal((1, frames, 512)).astype(np.float32),
        "prompt": rng.standard_normal((1, 80, prompt)).astype(np.float32),
        "style": rng.standard_normal((1, 192)).astype(np.float32),
        "noise": rng.standard_normal((1, 80, frames)).astype(np.float32),
    }


def reference_outputs(checkpoint: Path) -> dict[str, np.ndarray]:
    """Velocities ``(2, 80, T)`` and CFM mels ``(1, 80, T)`` of every case, cached."""

    def compute() -> dict[str, np.ndarray]:
        cfm = reference_cfm(checkpoint)
        out = {}
        with torch.no_grad():
            for name, (_, _, x_lens, _) in VELOCITY_CASES.items():
                a = {k: torch.from_numpy(v) for k, v in velocity_inputs(name).items()}
                out[name] = cfm.estimator(
                    a["x"], a["prompt_x"], torch.LongTensor(x_lens), a["t"], a["style"], a["mu"]
                ).numpy()
            for name, (frames, _, steps, rate) in CFM_CASES.items():
                a = {k: torch.from_numpy(v) for k, v in cfm_inputs(name).items()}
                noise = a["noise"].clone()
                with mock.patch.object(torch, "randn", return_value=noise):
                    mel = cfm.inference(
                        a["mu"],
                        torch.LongTensor([frames]),
                        a["prompt"],
                        a["style"],
                        None,
                        steps,
                        inference_cfg_rate=rate,
                    )
                out[name] = mel.numpy()
        return out

    return cached_arrays(
        "s2mel_cfm_reference",
        compute,
        checkpoint=checkpoint.parent.name,
        velocity=VELOCITY_CASES,
        cfm=CFM_CASES,
    )


def load(state: dict[str, np.ndarray]) -> CFM:
    return load_stage(CFM(), sanitize_cfm, state)


checkpoint, state, reference, ours = stage_fixtures("cfm", reference_outputs)


def velocity(model: CFM, name: str) -> np.ndarray:
    """Our estimator on a velocity case, returned channels-first like the reference."""
    a = {k: mx.array(v) for k, v in velocity_inputs(name).items()}
    out = model.estimator(
        a["x"].transpose(0, 2, 1),
        a["prompt_x"].transpose(0, 2, 1),
        VELOCITY_CASES[name][2],
        a["t"],
        a["style"],
        a["mu"],
    )
    return np.array(out).transpose(0, 2, 1)


def generate(model: CFM, name: str) -> np.ndarray:
    _, _, steps, rate = CFM_CASES[name]
    a = {k: mx.array(v) for k, v in cfm_inputs(name).items()}
    mel = model.inference(
        a["mu"],
        a["prompt"].transpose(0, 2, 1),
        a["style"],
        steps,
        rate,
        noise=a["noise"].transpose(0, 2, 1),
    )
    return np.array(mel).transpose(0, 2, 1)


@pytest.mark.parametrize("name", list(VELOCITY_CASES))
def test_dit_velocity_matches_reference(name, ours, reference, record):
    result = record(compare(f"DiT velocity [{name}]", reference[name], velocity(ours, name)))
    assert_close(result, max_abs=VELOCITY_TOL)


@pytest.mark.parametrize("name", list(CFM_CASES))
def test_cfm_mel_matches_reference_with_the_same_noise(name, ours, reference, record):
    got = generate(ours, name)
    ref = reference[name]
    frames, prompt, _, _ = CFM_CASES[name]
    assert got.shape == ref.shape == (1, 80, frames)  # output length = input length
    assert not got[..., :prompt].any() and not ref[..., :prompt].any()
    result = record(compare(f"CFM mel [{name}]", ref[..., prompt:], got[..., prompt:]))
    assert_close(result, max_abs=CFM_TOL, min_cos=CFM_COS)


def test_package_config_equals_the_official_yaml():
    """``s2mel.DiT`` / ``s2mel.wavenet`` / ``style_encoder.dim`` of config.yaml are our
    dataclass defaults, key for key (no yaml at runtime; a renamed key fails here)."""
    from dataclasses import asdict

    from omegaconf import OmegaConf

    cfg = real_config().s2mel
    for section, ours in (("DiT", DiTArgs()), ("wavenet", WaveNetArgs())):
        official = OmegaConf.to_container(cfg[section])
        mine = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(ours).items()}
        assert mine == official, section
    assert CFM().estimator.style_dim == cfg.style_encoder.dim == 192


def test_ignored_and_recomputed_keys(state):
    """The seeded checkpoint holds ``input_pos`` and both ``freqs`` buffers and every
    :data:`IGNORED` parameter: all dropped by name; everything else loads strictly."""
    present = {k for k in RECOMPUTED if k in state}
    assert present == {
        "estimator.input_pos",
        "estimator.t_embedder.freqs",
        "estimator.t_embedder2.freqs",
    }
    assert set(IGNORED) <= set(state)
    folded = {k for k in state if k.endswith(".weight_g")}
    assert len(folded) == 19  # x_embedder, final_layer.linear, 17 WaveNet convs
    sanitized = sanitize_cfm(state)
    kept = set(state) - set(IGNORED) - present
    assert set(sanitized) == {
        k.replace(".weight_g", ".weight") for k in kept if "weight_v" not in k
    }


def test_unknown_and_missing_keys_fail_loudly(state):
    broken = dict(state)
    del broken["estimator.wavenet.in_layers.3.conv.conv.bias"]
    broken["estimator.wavenet.in_layers.8.conv.conv.bias"] = np.zeros(1024, np.float32)
    with pytest.raises(
        WeightsError,
        match=r"unexpected: estimator\.wavenet\.in_layers\.8\.conv\.conv\.bias; "
        r"missing: estimator\.wavenet\.in_layers\.3\.conv\.conv\.bias",
    ):
        sanitize_cfm(broken)


def test_comparison_catches_a_dropped_weight_norm_bias(state, reference):
    """Zeroing one folded layer's bias (the known past conversion bug) is caught."""
    broken = dict(state)
    broken["estimator.final_layer.linear.bias"] = np.zeros_like(
        state["estimator.final_layer.linear.bias"]
    )
    result = compare("no bias", reference["v_40"], velocity(load(broken), "v_40"))
    with pytest.raises(AssertionError):
        assert_close(result, max_abs=VELOCITY_TOL)


def test_comparison_catches_a_kernel_reversed_in_time(state, reference):
    broken = dict(state)
    key = "estimator.wavenet.in_layers.2.conv.conv.weight_v"
    broken[key] = state[key][:, :, ::-1].copy()
    result = compare("reversed", reference["v_40"], velocity(load(broken), "v_40"))
    with pytest.raises(AssertionError):
        assert_close(result, max_abs=VELOCITY_TOL)
