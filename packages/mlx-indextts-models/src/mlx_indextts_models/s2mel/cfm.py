"""Conditional flow matching (``indextts/s2mel/modules/flow_matching.py: CFM``) in MLX.

``CFM.inference`` → ``solve_euler`` as ``infer_v2`` calls it (docs/data-flow.md step 20):

* ``z ~ N(0, 1) · temperature`` of the condition's length ``T`` (prompt + generated);
* ``t_span = linspace(0, 1, steps + 1)`` in float32 (PyTorch's two-sided formula,
  :func:`linspace`); ``t`` itself advances as ``t + dt`` in float32, as upstream;
* ``prompt_x`` = the reference mel in the first ``T_p`` frames, zeros after; ``x``'s first
  ``T_p`` frames are zeroed before the first step and after every step;
* classifier-free guidance in one batch ``[cond, uncond]`` (uncond: ``prompt_x``, ``style``
  and ``mu`` zeroed, same ``x`` and ``t``), ``v = (1 + rate)·v_cond − rate·v_uncond``;
  ``rate = 0`` runs the conditional estimator alone;
* ``x += dt · v``; the result has the input's length ``T`` (prompt frames zero); the
  caller keeps ``[:, T_p:]``.

Layout: channels-last everywhere — the prompt mel is ``(B, T_p, 80)`` and the output
``(B, T, 80)`` (the reference uses ``(B, 80, ·)``). ``zero_prompt_speech_token`` is false in
IndexTTS-2 (``mu`` is not zeroed in the prompt frames).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from mlx_indextts_models.s2mel.dit import DiT

#: Euler steps of the sampler by default (``infer_v2``'s ``diffusion_steps``).
CFM_STEPS = 25
#: Classifier-free guidance rate by default (``infer_v2``'s ``inference_cfg_rate``).
CFG_RATE = 0.7


@dataclass(frozen=True)
class CFMSettings:
    """How :meth:`CFM.inference` samples: Euler ``steps`` (fewer: faster, rougher) and the
    classifier-free guidance ``cfg_rate`` (0 disables guidance); ``infer_v2``'s defaults.

    Raises:
        ValueError: ``steps`` is not an integer ≥ 1, or ``cfg_rate`` not a finite number ≥ 0.
    """

    steps: int = CFM_STEPS
    cfg_rate: float = CFG_RATE

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"cfm_steps must be an integer >= 1, got {self.steps!r}")
        if not (isinstance(self.cfg_rate, int | float) and math.isfinite(self.cfg_rate)):
            raise ValueError(f"cfg_rate must be a finite number >= 0, got {self.cfg_rate!r}")
        if self.cfg_rate < 0:
            raise ValueError(f"cfg_rate must be a finite number >= 0, got {self.cfg_rate!r}")


def linspace(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.linspace(start, end, steps)`` in float32, bit for bit: the first half is
    ``start + i·step``, the second ``end − (steps − 1 − i)·step``."""
    if steps == 1:
        return np.array([start], np.float32)
    step = (np.float32(end) - np.float32(start)) / np.float32(steps - 1)
    i = np.arange(steps)
    half = steps // 2
    low = np.float32(start) + step * i[:half].astype(np.float32)
    high = np.float32(end) - step * (steps - 1 - i[half:]).astype(np.float32)
    return np.concatenate([low, high]).astype(np.float32)


class CFM(nn.Module):
    """Euler flow-matching sampler around the DiT ``estimator``."""

    def __init__(self, estimator: DiT | None = None) -> None:
        """``estimator``: the velocity field (default IndexTTS-2's :class:`DiT`)."""
        super().__init__()
        self.estimator = estimator or DiT()
        if self.estimator.args.zero_prompt_speech_token:
            raise ValueError("zero_prompt_speech_token is not supported (false in IndexTTS-2)")
        self.in_channels = self.estimator.args.in_channels

    def inference(
        self,
        cond: mx.array,
        prompt: mx.array,
        style: mx.array,
        steps: int = CFM_STEPS,
        cfg_rate: float = CFG_RATE,
        *,
        temperature: float = 1.0,
        noise: mx.array | None = None,
        seed: int | None = None,
        x_lens: Sequence[int] | None = None,
    ) -> mx.array:
        """Generate mel frames.

        Args:
            cond: ``(B, T, 512)`` ``cat[prompt_condition, condition]`` (``mu``).
            prompt: ``(B, T_p, 80)`` reference mel, channels-last, ``T_p ≤ T``.
            style: ``(B, 192)`` speaker style.
            steps: Euler steps (25 in ``infer_v2``).
            cfg_rate: guidance rate (0.7 in ``infer_v2``); 0 disables guidance.
            temperature: noise scale.
            noise: ``(B, T, 80)`` standard-normal start (scaled by ``temperature``), for
                reproducing a reference run; otherwise drawn from ``seed``.
            seed: seed for the noise (MLX's generator; None: MLX's global state).
            x_lens: valid frames per row; None (``infer_v2``: ``[T]``) means all.

        Returns:
            ``(B, T, 80)`` mel; the first ``T_p`` frames are zero.
        """
        b, frames, _ = cond.shape
        prompt_len = prompt.shape[1]
        if prompt_len > frames:
            raise ValueError(f"prompt of {prompt_len} frames is longer than the {frames} frames")
        shape = (b, frames, self.in_channels)
        if noise is None:
            key = mx.random.key(seed) if seed is not None else None
            noise = mx.random.normal(shape, key=key)
        elif tuple(noise.shape) != shape:
            raise ValueError(f"noise must be {shape}, got {tuple(noise.shape)}")
        dtype = cond.dtype  # float32; a half model's (``convert --dtype``) runs in its own
        x = noise.astype(dtype) * temperature
        keep = (mx.arange(frames) >= prompt_len)[None, :, None].astype(dtype)
        pad = mx.zeros((b, frames - prompt_len, self.in_channels), dtype)
        prompt_x = mx.concatenate([prompt.astype(dtype), pad], axis=1)
        x = x * keep
        if cfg_rate > 0:
            if x_lens is not None and len(x_lens) == b and b > 1:
                x_lens = [*x_lens, *x_lens]
            prompt_x = mx.concatenate([prompt_x, mx.zeros_like(prompt_x)], axis=0)
            style = mx.concatenate([style, mx.zeros_like(style)], axis=0)
            cond = mx.concatenate([cond, mx.zeros_like(cond)], axis=0)
        t_span = linspace(0.0, 1.0, steps + 1)
        t = t_span[0]
        for step in range(1, len(t_span)):
            dt = t_span[step] - t_span[step - 1]
            if cfg_rate > 0:
                t_in = mx.full((2 * b,), float(t), mx.float32)
                v = self.estimator(
                    mx.concatenate([x, x], axis=0), prompt_x, x_lens, t_in, style, cond,
                    from_frame=prompt_len,
                )  # fmt: skip
                v = (1.0 + cfg_rate) * v[:b] - cfg_rate * v[b:]
            else:
                t_in = mx.full((b,), float(t))
                v = self.estimator(x, prompt_x, x_lens, t_in, style, cond, from_frame=prompt_len)
            x = (x + float(dt) * v) * keep
            t = np.float32(t + dt)
            mx.eval(x)
        return x
