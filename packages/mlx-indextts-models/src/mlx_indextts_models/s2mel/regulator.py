"""S2Mel length regulator (``InterpolateRegulator``): semantic features → CFM condition.

Mirrors ``indextts/s2mel/modules/length_regulator.py: InterpolateRegulator.forward`` for
IndexTTS-2's configuration (continuous input, no VQ, no F0 condition), which
``infer_v2`` calls twice with ``n_quantizers=3, f0=None``:

* prompt condition (docs/data-flow.md step 9): ``S_ref (1, n_ref, 1024)`` with
  ``ylens = [T_ref]``, the number of frames of the reference mel;
* inference condition (step 19): ``S_infer (1, n, 1024)`` with
  ``ylens = (code_lens * 1.72).long()`` (:func:`target_lengths`).

The computation: ``content_in_proj`` (Linear 1024→512); nearest interpolation in time to
``max(ylens)`` frames with PyTorch's ``mode='nearest'`` index rule
(:func:`nearest_indices`); ``len(sampling_ratios)`` × (Conv1d k3 pad 1, GroupNorm, Mish);
a 1×1 Conv1d; times the length mask. ``n_quantizers`` only matters for discrete
multi-codebook input, so it is not an argument here; with continuous input the reference's
``embedding`` and ``mask_token`` are never used (the weight mapping drops them by name).

Layout: channels-last ``(B, T, C)`` throughout (the reference works on ``(B, C, T)`` and
transposes back at the end, so its output is ``(B, T, C)`` too). Attribute names mirror
the official state dict: ``content_in_proj``, ``model.<i>`` with the reference's
``nn.Sequential`` indices (convs at 0, 3, 6, 9, 12, GroupNorms at 1, 4, 7, 10, Mish at 2,
5, 8, 11 without parameters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from mlx_indextts_models.config import unsupported_settings
from mlx_indextts_models.layers import length_mask

#: Mel frames per semantic code used by ``infer_v2`` (22050 / 256 mel fps ÷ 50 code fps).
FRAMES_PER_CODE = 1.72


@dataclass
class RegulatorArgs:
    """``s2mel.length_regulator`` of IndexTTS-2's ``config.yaml`` (upstream names; the
    defaults are that file's values). ``groups`` is the constructor's default.

    ``content_codebook_size``, ``is_discrete``, ``vector_quantize``, ``n_codebooks``,
    ``quantizer_dropout``, ``f0_condition`` and ``n_f0_bins`` are kept for the record;
    only their IndexTTS-2 values are supported (checked in :class:`InterpolateRegulator`).
    """

    channels: int = 512
    is_discrete: bool = False
    in_channels: int = 1024
    content_codebook_size: int = 2048
    sampling_ratios: tuple[int, ...] = (1, 1, 1, 1)
    vector_quantize: bool = False
    n_codebooks: int = 1
    quantizer_dropout: float = 0.0
    f0_condition: bool = False
    n_f0_bins: int = 512
    groups: int = 1
    out_channels: int | None = None


def target_lengths(code_lens: int | Sequence[int]) -> int | list[int]:
    """Mel frames for ``n`` semantic codes, as ``infer_v2``: ``(code_lens * 1.72).long()``.

    The reference multiplies an int64 tensor by a Python float, which PyTorch computes in
    float32 and truncates; the same is done here. It equals ``floor(n · 1.72)`` for every
    ``n`` up to 20000 and PyTorch's result for ``n`` ≤ 5000 (checked in the parity tests).
    """
    if isinstance(code_lens, (int, np.integer)):
        return int(np.float32(code_lens) * np.float32(FRAMES_PER_CODE))
    return [int(v) for v in (np.asarray(code_lens, np.float32) * np.float32(FRAMES_PER_CODE))]


def nearest_indices(in_size: int, out_size: int) -> np.ndarray:
    """Source index of every output frame of ``F.interpolate(size=out_size, mode='nearest')``.

    PyTorch (``aten/src/ATen/native/UpSample.h: nearest_idx``) uses the identity when the
    sizes are equal, ``i >> 1`` when ``out = 2·in``, and otherwise
    ``min(floorf(i · scale), in - 1)`` with ``scale = (float)in / out`` in float32. That is
    not always the exact ``floor(i · in / out)``: for 26 codes → 44 frames, frame 22
    (exactly source 13) takes source 12, because ``float32(26/44)`` is rounded down. This
    function reproduces PyTorch's rule.

    Returns:
        int32 ``(out_size,)``.
    """
    if in_size < 1 or out_size < 0:
        raise ValueError(f"cannot interpolate {in_size} frames to {out_size}")
    i = np.arange(out_size)
    if out_size == in_size or out_size == 0:
        return i.astype(np.int32)
    if out_size == 2 * in_size:
        return (i >> 1).astype(np.int32)
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.floor(i.astype(np.float32) * scale).astype(np.int64)
    index: np.ndarray = np.minimum(src, in_size - 1)
    return index.astype(np.int32)


def _accurate_sum(x: mx.array, block: int = 32) -> mx.array:
    """``(N, T, C)`` → ``(N, 1, 1)``: the sum over ``T`` and ``C`` in blocks of ``block``
    frames, so no float32 accumulator adds more than a few dozen terms.

    A flat float32 reduction over the ~440k values of a 10 s condition (860 × 512) is off
    by ~1e-4 in relative variance, which moved GroupNorm outputs by 1.5e-4 against
    PyTorch's (whose error against float64 is ~3e-6); blocked, ours is within 1e-6 too.
    """
    n, _, c = x.shape
    while x.shape[1] > 1:
        pad = -x.shape[1] % block
        if pad:
            x = mx.concatenate([x, mx.zeros((n, pad, c), x.dtype)], axis=1)
        x = x.reshape(n, -1, block, c).sum(axis=2)
    return x.sum(axis=-1, keepdims=True)


class GroupNorm(nn.Module):
    """``nn.GroupNorm(num_groups, dims)`` on channels-last ``(B, T, C)``, PyTorch's grouping
    (``C / num_groups`` consecutive channels per group), biased variance, ``eps`` inside
    the square root; mean and variance are accumulated in blocks (:func:`_accurate_sum`)."""

    def __init__(self, num_groups: int, dims: int, eps: float = 1e-5) -> None:
        super().__init__()
        if dims % num_groups:
            raise ValueError(f"{dims} channels do not split into {num_groups} groups")
        self.num_groups = num_groups
        self.eps = eps
        self.weight = mx.ones((dims,))
        self.bias = mx.zeros((dims,))

    def __call__(self, x: mx.array) -> mx.array:
        """``(B, T, C)`` → ``(B, T, C)``, normalized over ``T`` and each group's channels."""
        b, t, c = x.shape
        g = self.num_groups
        h = x.reshape(b, t, g, c // g).transpose(0, 2, 1, 3).reshape(b * g, t, c // g)
        count = t * (c // g)
        h = h - _accurate_sum(h) / count
        var = _accurate_sum(mx.square(h)) / count
        h = h * mx.rsqrt(var + self.eps)
        h = h.reshape(b, g, t, c // g).transpose(0, 2, 1, 3).reshape(b, t, c)
        return h * self.weight + self.bias


class InterpolateRegulator(nn.Module):
    """Continuous-input length regulator: ``(B, n, in_channels)`` → ``(B, T, out_channels)``."""

    def __init__(self, args: RegulatorArgs | None = None) -> None:
        super().__init__()
        args = args or RegulatorArgs()
        unsupported = unsupported_settings(
            args,
            {
                "is_discrete": False,
                "vector_quantize": False,
                "n_codebooks": 1,
                "f0_condition": False,
            },
        )
        if unsupported:
            raise ValueError(f"unsupported length regulator settings: {unsupported}")
        if not args.sampling_ratios:
            # The reference then skips the interpolation and clamps ylens; IndexTTS-2 never does.
            raise ValueError("a length regulator without sampling_ratios is not supported")
        self.args = args
        channels = args.channels
        out_channels = args.out_channels or channels
        self.content_in_proj = nn.Linear(args.in_channels, channels)
        model: list[nn.Module] = []
        for _ in args.sampling_ratios:
            model += [
                nn.Conv1d(channels, channels, 3, stride=1, padding=1),
                GroupNorm(args.groups, channels, eps=1e-5),
                nn.Mish(),
            ]
        model.append(nn.Conv1d(channels, out_channels, 1))
        self.model = model

    def __call__(self, x: mx.array, ylens: int | Sequence[int]) -> mx.array:
        """The reference's ``forward(x, ylens, n_quantizers=3, f0=None)[0]``.

        Args:
            x: ``(B, n, in_channels)`` semantic features (``S_ref`` or ``S_infer``); every
                row is stretched over its full ``n`` frames (padding included, as upstream).
            ylens: target frame count per row (an int for ``B = 1``): ``T_ref`` for the
                prompt, :func:`target_lengths` of the code count for inference.

        Returns:
            ``(B, max(ylens), out_channels)``, zero after each row's ``ylens[b]`` frames.
        """
        if x.ndim != 3:
            raise ValueError(f"expected (B, n, {self.args.in_channels}), got {x.shape}")
        lengths = [int(ylens)] * x.shape[0] if isinstance(ylens, (int, np.integer)) else ylens
        if len(lengths) != x.shape[0]:
            raise ValueError(f"{len(lengths)} target lengths for a batch of {x.shape[0]}")
        frames = max(lengths)
        h = self.content_in_proj(x)
        h = h[:, mx.array(nearest_indices(x.shape[1], frames))]
        for layer in self.model:
            h = layer(h)
        mask = length_mask(lengths, frames)[..., None]
        return h * mask.astype(h.dtype)
