"""WaveNet (``WN``) head of the S2Mel DiT, as ``indextts/s2mel/modules/wavenet.py: WN`` runs it.

IndexTTS-2's ``s2mel.wavenet`` config: 512 channels, **8 layers, kernel 5**, dilation rate 1,
conditioned on a global vector (the DiT's second timestep embedding) through ``cond_layer``.
Every conv is an ``encodec.SConv1d``: **reflect** padding of ``(k - 1)·d`` frames split
left ``ceil``, right ``floor`` (2 + 2 for k5 d1), then an unpadded ``nn.Conv1d``; the
checkpoint's weight-norm pairs are folded by the mapping, so plain convs remain here.
Dropout (``p_dropout``) is inactive at inference.

Layout: channels-last ``(B, T, C)``. Attribute names mirror the official keys
(``in_layers.<i>.conv.conv``, ``res_skip_layers.<i>.conv.conv``, ``cond_layer.conv.conv``).
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn

from mlx_indextts_models.cpu_ops import conv1d, tanh_sigmoid_gate


@dataclass
class WaveNetArgs:
    """``s2mel.wavenet`` of IndexTTS-2's ``config.yaml`` (upstream names and values)."""

    hidden_dim: int = 512
    num_layers: int = 8
    kernel_size: int = 5
    dilation_rate: int = 1
    p_dropout: float = 0.2
    style_condition: bool = True


def reflect_pad(x: mx.array, left: int, right: int) -> mx.array:
    """``encodec.pad1d(x, (left, right), mode='reflect')`` on ``(B, T, C)`` along ``T``.

    Like the reference, an input no longer than the padding is first extended with zeros
    on the right (so reflection is defined), and those zeros are cut off again afterwards.
    """
    if left == 0 and right == 0:
        return x
    length = x.shape[1]
    extra = 0
    if length <= max(left, right):
        extra = max(left, right) - length + 1
        x = mx.concatenate([x, mx.zeros((x.shape[0], extra, x.shape[2]), x.dtype)], axis=1)
    parts = []
    if left:
        parts.append(x[:, left:0:-1])
    parts.append(x)
    if right:
        parts.append(x[:, -2 : -right - 2 : -1])
    out = mx.concatenate(parts, axis=1)
    return out[:, : out.shape[1] - extra] if extra else out


class NormConv1d(nn.Module):
    """``encodec.NormConv1d`` with its weight norm folded: just the ``conv`` (computed by
    :func:`~mlx_indextts_models.cpu_ops.conv1d`: blocked numpy products on the CPU)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1
    ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation)

    def __call__(self, x: mx.array) -> mx.array:
        conv = self.conv
        return conv1d(x, conv.weight, conv.get("bias"), dilation=conv.dilation)


class SConv1d(nn.Module):
    """``encodec.SConv1d`` (non-causal, stride 1, reflect padding) on ``(B, T, C)``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1
    ) -> None:
        super().__init__()
        self.conv = NormConv1d(in_channels, out_channels, kernel_size, dilation)
        padding_total = (kernel_size - 1) * dilation
        self.padding = (padding_total - padding_total // 2, padding_total // 2)

    def __call__(self, x: mx.array) -> mx.array:
        """``(B, T, C_in)`` → ``(B, T, C_out)``."""
        return self.conv(reflect_pad(x, *self.padding))


class WN(nn.Module):
    """Gated dilated-conv stack with a global condition: ``(B, T, H)`` → ``(B, T, H)``."""

    def __init__(self, args: WaveNetArgs | None = None, gin_channels: int | None = None) -> None:
        super().__init__()
        args = args or WaveNetArgs()
        if args.kernel_size % 2 != 1:
            raise ValueError(f"WaveNet kernel size must be odd, got {args.kernel_size}")
        self.args = args
        hidden = args.hidden_dim
        self.hidden_channels = hidden
        self.n_layers = args.num_layers
        gin = hidden if gin_channels is None else gin_channels
        self.gin_channels = gin
        if gin:
            self.cond_layer = SConv1d(gin, 2 * hidden * args.num_layers, 1)
        self.in_layers = [
            SConv1d(hidden, 2 * hidden, args.kernel_size, dilation=args.dilation_rate**i)
            for i in range(args.num_layers)
        ]
        self.res_skip_layers = [
            SConv1d(hidden, 2 * hidden if i < args.num_layers - 1 else hidden, 1)
            for i in range(args.num_layers)
        ]

    def reach(self) -> int:
        """Input frames before an output frame that it depends on (each layer's left
        padding, summed); a sequence cut that many frames earlier gives it exactly."""
        return sum(layer.padding[0] for layer in self.in_layers)

    def __call__(
        self, x: mx.array, x_mask: mx.array | None = None, g: mx.array | None = None
    ) -> mx.array:
        """The reference's ``forward(x, x_mask, g)``, channels-last.

        Args:
            x: ``(B, T, H)``.
            x_mask: ``(B or 1, T, 1)`` float mask (1 inside each row's length) or None (all ones).
            g: ``(B, 1, gin)`` global condition or None.

        Returns:
            ``(B, T, H)``: the summed skip outputs, times the mask.
        """
        hidden = self.hidden_channels
        output = mx.zeros_like(x)
        if g is not None:
            g = self.cond_layer(g)
        for i in range(self.n_layers):
            x_in = self.in_layers[i](x)
            if g is not None:
                x_in = x_in + g[..., i * 2 * hidden : (i + 1) * 2 * hidden]
            acts = tanh_sigmoid_gate(x_in)
            res_skip = self.res_skip_layers[i](acts)
            if i < self.n_layers - 1:
                x = x + res_skip[..., :hidden]
                if x_mask is not None:
                    x = x * x_mask
                output = output + res_skip[..., hidden:]
            else:
                output = output + res_skip
        return output * x_mask if x_mask is not None else output
