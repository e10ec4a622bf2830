"""Layers shared by the models: convolutions computed as matmuls, BatchNorm folding,
depthwise convolutions as sums of shifted products, length masks.

MLX's own CPU convolution kernels are slow for the shapes of these models (dilated,
grouped and transposed convolutions above all), so the convolutions here gather their
kernel taps and run one matmul. Every layer keeps the parameters (names and MLX layouts)
of the ``mlx.nn`` layer it subclasses, so the checkpoints load unchanged. Layout:
channels-last, ``(B, T, C)`` and ``(B, H, W, C)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import mlx.core as mx
import mlx.nn as nn


def length_mask(lengths: Sequence[int] | mx.array, length: int | None = None) -> mx.array:
    """``(B, length)`` bool, True where frame ``t`` of row ``b`` is valid (``t < lengths[b]``;
    ``~make_pad_mask``, ``commons.sequence_mask``); ``length`` defaults to ``max(lengths)``."""
    if not isinstance(lengths, mx.array):
        lengths = mx.array([int(v) for v in lengths])
    length = int(cast(int, lengths.max().item())) if length is None else length
    return mx.arange(length)[None, :] < lengths.reshape(-1, 1)


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding on each side that keeps the length of a stride-1 conv (odd kernels only)."""
    if kernel_size % 2 != 1:
        raise ValueError(f"'same' padding needs an odd kernel size, got {kernel_size}")
    return (kernel_size - 1) // 2 * dilation


def _gather_taps(x: mx.array, kernel: int, dilation: int, stride: int, t_out: int) -> mx.array:
    """``(B, T, C)`` → ``(B, t_out, kernel·C)``: the ``kernel`` taps of every output frame,
    tap-major (im2col)."""
    taps = [
        x[:, j * dilation : j * dilation + stride * (t_out - 1) + 1 : stride] for j in range(kernel)
    ]
    return taps[0] if kernel == 1 else mx.concatenate(taps, axis=-1)


def conv1d_as_matmul(
    x: mx.array,
    weight: mx.array,
    bias: mx.array | None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
) -> mx.array:
    """Channels-last Conv1d as one matmul over the gathered kernel taps (im2col).

    Args:
        x: ``(B, T, C_in)``.
        weight: ``(C_out, k, C_in)`` (MLX layout).
        bias: ``(C_out,)`` or None.

    Returns:
        ``(B, T_out, C_out)``, ``T_out = (T + 2·padding − dilation·(k − 1) − 1) // stride + 1``.
    """
    out_c, k, in_c = weight.shape
    if padding:
        x = mx.pad(x, [(0, 0), (padding, padding), (0, 0)])
    b, t = x.shape[:2]
    t_out = (t - dilation * (k - 1) - 1) // stride + 1
    cols = _gather_taps(x, k, dilation, stride, t_out)
    cols, w_mat = cols.reshape(-1, k * in_c), weight.reshape(out_c, k * in_c).T
    y = cols @ w_mat if bias is None else mx.addmm(bias, cols, w_mat)
    return y.reshape(b, t_out, out_c)


def conv2d_as_matmul(
    x: mx.array,
    weight: mx.array,
    bias: mx.array | None,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int] = (0, 0),
) -> mx.array:
    """Channels-last Conv2d (width stride 1, no dilation) as one matmul.

    The kernel rows are gathered into the channels (along the strided axis, a cheap
    copy of whole rows). The kernel columns are then either gathered too (a full
    im2col, when ``kw·kh·C_in`` is narrower than ``kw·C_out``, as for the 1-channel
    input) or put into the matmul's output (``kw · C_out`` wide) and summed back with
    their shifts. The cost here is memory traffic, so this takes the smaller
    intermediate.

    Args:
        x: ``(B, H, W, C_in)``.
        weight: ``(C_out, kh, kw, C_in)`` (MLX layout).
        bias: ``(C_out,)`` or None.
        stride: ``(stride_h, 1)``.
        padding: ``(pad_h, pad_w)`` zeros on each side.

    Returns:
        ``(B, H_out, W_out, C_out)``.
    """
    out_c, kh, kw, in_c = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    if sw != 1:
        raise ValueError(f"conv2d_as_matmul needs a width stride of 1, got {stride}")
    if ph or pw:
        x = mx.pad(x, [(0, 0), (ph, ph), (pw, pw), (0, 0)])
    b, h, w = x.shape[:3]
    h_out, w_out = (h - kh) // sh + 1, w - kw + 1
    rows = [x[:, i : i + sh * (h_out - 1) + 1 : sh] for i in range(kh)]
    stacked = rows[0] if kh == 1 else mx.concatenate(rows, axis=-1)  # (B, H_out, W, kh·C_in)
    if kh * in_c < out_c:  # full im2col: columns (j, i, c)
        cols = [stacked[:, :, j : j + w_out] for j in range(kw)]
        im2col = cols[0] if kw == 1 else mx.concatenate(cols, axis=-1)
        w_mat = weight.transpose(2, 1, 3, 0).reshape(kw * kh * in_c, out_c)
        flat = im2col.reshape(-1, kw * kh * in_c)
        y = flat @ w_mat if bias is None else mx.addmm(bias, flat, w_mat)
        return y.reshape(b, h_out, w_out, out_c)
    # kernel columns in the output, summed with their shifts
    w_mat = weight.transpose(1, 3, 2, 0).reshape(kh * in_c, kw * out_c)
    z = (stacked.reshape(-1, kh * in_c) @ w_mat).reshape(b, h_out, w, kw, out_c)
    y = z[:, :, :w_out, 0]
    for j in range(1, kw):
        y = y + z[:, :, j : j + w_out, j]
    return y + bias if bias is not None else y


class BatchNorm(nn.BatchNorm):
    """``nn.BatchNorm`` that, in eval mode, applies its running statistics as one scale
    and shift per channel (two passes over the activations instead of four)."""

    def scale_shift(self) -> tuple[mx.array, mx.array]:
        """``(scale, shift)`` with ``bn(x) == x * scale + shift`` in eval mode, ``(C,)`` each."""
        scale = mx.rsqrt(self.running_var + self.eps)
        if "weight" in self:
            scale = scale * self.weight
        shift = -self.running_mean * scale
        if "bias" in self:
            shift = shift + self.bias
        return scale, shift

    def __call__(self, x: mx.array) -> mx.array:
        """``(..., C)`` → ``(..., C)``."""
        if self.training:
            return super().__call__(x)
        scale, shift = self.scale_shift()
        return x * scale + shift


def fold_batchnorm(
    weight: mx.array, bias: mx.array | None, bn: BatchNorm
) -> tuple[mx.array, mx.array]:
    """Weight and bias of ``bn(conv(x))`` as one convolution (eval mode).

    Args:
        weight: ``(C_out, ..., C_in)`` convolution weight.
        bias: ``(C_out,)`` or None.
        bn: the BatchNorm over the convolution's ``C_out`` output channels.
    """
    scale, shift = bn.scale_shift()
    weight = weight * scale.reshape(-1, *([1] * (weight.ndim - 1)))
    return weight, shift if bias is None else bias * scale + shift


class MatmulConv1d(nn.Conv1d):
    """``nn.Conv1d`` (same parameters, any stride, padding, dilation) computed by
    :func:`conv1d_as_matmul`, optionally with a following BatchNorm folded in."""

    def __call__(self, x: mx.array, bn: BatchNorm | None = None) -> mx.array:
        """``(B, T, C_in)`` → ``(B, T_out, C_out)``; with ``bn``, ``bn(conv(x))`` in one pass."""
        weight, bias = self.weight, self.get("bias")
        if bn is not None:
            weight, bias = fold_batchnorm(weight, bias, bn)
        return conv1d_as_matmul(x, weight, bias, self.stride, self.padding, self.dilation)


class MatmulConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters, width stride 1, no dilation) computed by
    :func:`conv2d_as_matmul`, optionally with a following BatchNorm folded in."""

    def __call__(self, x: mx.array, bn: BatchNorm | None = None) -> mx.array:
        """``(B, H, W, C_in)`` → ``(B, H_out, W_out, C_out)``; with ``bn``, ``bn(conv(x))``."""
        if self.dilation not in (1, (1, 1)):
            raise ValueError(f"dilated Conv2d is not supported, got {self.dilation}")
        weight, bias = self.weight, self.get("bias")
        if bn is not None:
            weight, bias = fold_batchnorm(weight, bias, bn)
        return conv2d_as_matmul(x, weight, bias, self.stride, self.padding)


class OverlapAddConvTranspose1d(nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` with kernel = 2·stride and padding = stride/2 (BigVGAN's
    upsamplers) as one matmul plus an overlap-add of two halves; other shapes fall back
    to ``nn.ConvTranspose1d``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding)
        self.kernel_size, self.up, self.pad = kernel_size, stride, padding

    def __call__(self, x: mx.array) -> mx.array:
        """``(B, T, C_in)`` → ``(B, stride·T, C_out)``."""
        u, k, p = self.up, self.kernel_size, self.pad
        if k != 2 * u or 2 * p != k - u:
            plain: mx.array = super().__call__(x)
            return plain
        b, t, _ = x.shape
        out = self.weight.shape[0]
        w = self.weight.transpose(1, 0, 2).reshape(k * out, -1)  # (k·out, in)
        z = (x @ w.T).reshape(b, t, k, out)
        zero = mx.zeros((b, 1, u, out), dtype=z.dtype)
        first = mx.concatenate([z[:, :, :u], zero], axis=1)  # taps 0..u-1 land in block j
        second = mx.concatenate([zero, z[:, :, u:]], axis=1)  # taps u..2u-1 land in block j+1
        full = (first + second).reshape(b, (t + 1) * u, out)
        y: mx.array = full[:, p : p + u * t] + self.bias
        return y


def depthwise_conv1d(x: mx.array, weight: mx.array, bias: mx.array) -> mx.array:
    """Same-padded depthwise conv as a sum of shifted products (MLX's grouped ``conv1d``
    is slow on the CPU).

    Args:
        x: ``(B, T, C)``.
        weight: MLX layout ``(C, k, 1)`` (a ``groups=C`` Conv1d), ``k`` odd.
        bias: ``(C,)``.

    Returns:
        ``(B, T, C)``, ``out[t, c] = b[c] + Σ_j weight[c, j] · x[t + j − k//2, c]`` (zeros
        outside ``0..T-1``).
    """
    k, t = weight.shape[1], x.shape[1]
    padded = mx.pad(x, [(0, 0), (k // 2, k // 2), (0, 0)])
    taps = weight[:, :, 0].T  # (k, C)
    out = padded[:, 0:t] * taps[0]
    for j in range(1, k):
        out = out + padded[:, j : j + t] * taps[j]
    return out + bias
