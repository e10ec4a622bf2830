"""CAM++ speaker encoder (3D-Speaker ``CAMPPlus``): 80-bin Kaldi fbank → 192-d speaker style.

Mirrors ``indextts/s2mel/modules/campplus/{DTDNN,layers}.py``. IndexTTS-2 feeds it
``kaldi.fbank(audio_16k, num_mel_bins=80, dither=0)`` minus its per-bin mean over time and
uses the output as the S2Mel ``style`` (and to pick the emotion-matrix rows).

Layout: MLX convolutions are channels-last, so 1-D activations are ``(B, T, C)`` and the
2-D head works on ``(B, F, T, C)`` (height = mel bin, width = frame, as the reference's
``(B, C, F, T)``). Attribute names mirror the official state dict (``head.layer1.0.bn1``,
``xvector.block2.tdnnd7.cam_layer.linear_local``, ...). Every BatchNorm runs on its
running statistics: the model is built in eval mode and is meant for inference only.

Speed (fp32 CPU, where MLX's own conv kernels are slow for these shapes): convolutions run
as matmuls over gathered taps (:func:`conv1d_as_matmul`, :func:`conv2d_as_matmul`); a
BatchNorm that directly follows a convolution is folded into that convolution's weight
and bias at call time (the parameters stay the checkpoint's); the CAM gate is computed
once per segment rather than once per frame (it is constant within a segment). The head's
intermediates are 8-25 MB for a 15 s prompt: on Linux, where MLX caches only 32 MiB of
freed buffers by default, ``mx.set_cache_limit`` of a few GiB (the caller's choice) saves
re-faulting them on every call (measured: docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn


@dataclass
class CAMPPlusArgs:
    """Constructor arguments of the reference ``CAMPPlus`` (IndexTTS-2 uses the defaults).

    The fields after ``memory_efficient`` are constants inside the reference (FCM's
    ``m_channels``/``num_blocks``, the three dense blocks' ``(num_layers, kernel_size,
    dilation)`` and CAM's ``seg_len``); they are exposed so tests can build tiny models.
    """

    feat_dim: int = 80
    embedding_size: int = 192
    growth_rate: int = 32
    bn_size: int = 4
    init_channels: int = 128
    config_str: str = "batchnorm-relu"
    memory_efficient: bool = True  # training-time checkpointing upstream; no effect here
    m_channels: int = 32
    head_num_blocks: tuple[int, int] = (2, 2)
    block_num_layers: tuple[int, ...] = (12, 24, 16)
    block_kernel_sizes: tuple[int, ...] = (3, 3, 3)
    block_dilations: tuple[int, ...] = (1, 2, 2)
    seg_len: int = 100


def conv1d_as_matmul(
    x: mx.array,
    weight: mx.array,
    bias: mx.array | None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
) -> mx.array:
    """Channels-last Conv1d as one matmul over the gathered kernel taps (im2col).

    MLX's CPU convolution is over 10x slower for the dilated kernels here.

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
    taps = [x[:, j * dilation : j * dilation + stride * (t_out - 1) + 1 : stride] for j in range(k)]
    cols = taps[0] if k == 1 else mx.concatenate(taps, axis=-1)
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
    intermediate; it is 2-3x faster than MLX's CPU conv2d at these shapes.

    Args:
        x: ``(B, H, W, C_in)``.
        weight: ``(C_out, kh, kw, C_in)`` (MLX layout).
        bias: ``(C_out,)`` or None.
        stride: ``(stride_h, 1)``.

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
    rows = rows[0] if kh == 1 else mx.concatenate(rows, axis=-1)  # (B, H_out, W, kh·C_in)
    if kh * in_c < out_c:  # full im2col: columns (j, i, c)
        cols = [rows[:, :, j : j + w_out] for j in range(kw)]
        cols = cols[0] if kw == 1 else mx.concatenate(cols, axis=-1)
        w_mat = weight.transpose(2, 1, 3, 0).reshape(kw * kh * in_c, out_c)
        cols = cols.reshape(-1, kw * kh * in_c)
        y = cols @ w_mat if bias is None else mx.addmm(bias, cols, w_mat)
        return y.reshape(b, h_out, w_out, out_c)
    else:  # kernel columns in the output, summed with their shifts
        w_mat = weight.transpose(1, 3, 2, 0).reshape(kh * in_c, kw * out_c)
        z = (rows.reshape(-1, kh * in_c) @ w_mat).reshape(b, h_out, w, kw, out_c)
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


class Conv1d(nn.Conv1d):
    """``nn.Conv1d`` (same parameters) computed by :func:`conv1d_as_matmul`."""

    def __call__(self, x: mx.array, bn: BatchNorm | None = None) -> mx.array:
        """``(B, T, C_in)`` → ``(B, T_out, C_out)``; with ``bn``, ``bn(conv(x))`` in one pass."""
        weight, bias = self.weight, self.get("bias")
        if bn is not None:
            weight, bias = fold_batchnorm(weight, bias, bn)
        return conv1d_as_matmul(x, weight, bias, self.stride, self.padding, self.dilation)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters, width stride 1) computed by :func:`conv2d_as_matmul`."""

    def __call__(self, x: mx.array, bn: BatchNorm | None = None) -> mx.array:
        """``(B, H, W, C_in)`` → ``(B, H_out, W_out, C_out)``; with ``bn``, ``bn(conv(x))``."""
        if self.dilation not in (1, (1, 1)):
            raise ValueError(f"dilated Conv2d is not supported, got {self.dilation}")
        weight, bias = self.weight, self.get("bias")
        if bn is not None:
            weight, bias = fold_batchnorm(weight, bias, bn)
        return conv2d_as_matmul(x, weight, bias, self.stride, self.padding)


class Nonlinear(nn.Module):
    """``get_nonlinear(config_str, channels)``: e.g. ``"batchnorm-relu"`` → BN then ReLU.

    Parts: ``batchnorm`` (affine BN), ``batchnorm_`` (BN without affine), ``relu``,
    ``prelu``; applied in order over the last (channel) axis.
    """

    def __init__(self, config_str: str, channels: int):
        super().__init__()
        order = []
        for name in config_str.split("-"):
            if name == "relu":
                order.append("relu")
            elif name == "prelu":
                self.prelu = nn.PReLU(channels)
                order.append("prelu")
            elif name in ("batchnorm", "batchnorm_"):
                self.batchnorm = BatchNorm(channels, affine=name == "batchnorm")
                order.append("batchnorm")
            else:
                raise ValueError(f"unexpected module {name!r} in config_str {config_str!r}")
        self.order = tuple(order)  # a tuple is not a parameter container for nn.Module

    def __call__(self, x: mx.array) -> mx.array:
        return self._apply(x, self.order)

    def after_conv(self, conv: Conv1d, x: mx.array) -> mx.array:
        """``self(conv(x))``, a leading BatchNorm folded into the convolution."""
        if self.order[:1] == ("batchnorm",):
            return self._apply(conv(x, self.batchnorm), self.order[1:])
        return self(conv(x))

    def _apply(self, x: mx.array, order: tuple[str, ...]) -> mx.array:
        for name in order:
            x = nn.relu(x) if name == "relu" else getattr(self, name)(x)
        return x


# --- FCM head: 2-D convolutions over (mel bin, frame) -------------------------------------


class BasicResBlock(nn.Module):
    """ResNet basic block; ``stride`` subsamples the frequency axis only."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = Conv2d(
            in_planes, planes, kernel_size=3, stride=(stride, 1), padding=1, bias=False
        )
        self.bn1 = BatchNorm(planes)
        self.conv2 = Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = BatchNorm(planes)
        self.shortcut: list[nn.Module] = []
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = [
                Conv2d(in_planes, self.expansion * planes, 1, stride=(stride, 1), bias=False),
                BatchNorm(self.expansion * planes),
            ]

    def __call__(self, x: mx.array) -> mx.array:
        """``(B, F, T, C_in)`` → ``(B, ceil(F / stride), T, planes)``."""
        out = nn.relu(self.conv1(x, self.bn1))
        out = self.conv2(out, self.bn2)
        shortcut = self.shortcut[0](x, self.shortcut[1]) if self.shortcut else x
        return nn.relu(out + shortcut)


class FCM(nn.Module):
    """Front-end convolution module: (B, T, feat_dim) → (B, T, m_channels · feat_dim / 8)."""

    def __init__(
        self, num_blocks: tuple[int, int] = (2, 2), m_channels: int = 32, feat_dim: int = 80
    ):
        super().__init__()
        self.in_planes = m_channels
        self.conv1 = Conv2d(1, m_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = BatchNorm(m_channels)
        self.layer1 = self._make_layer(m_channels, num_blocks[0], stride=2)
        self.layer2 = self._make_layer(m_channels, num_blocks[1], stride=2)
        self.conv2 = Conv2d(
            m_channels, m_channels, kernel_size=3, stride=(2, 1), padding=1, bias=False
        )
        self.bn2 = BatchNorm(m_channels)
        self.out_channels = m_channels * (feat_dim // 8)

    def _make_layer(self, planes: int, num_blocks: int, stride: int) -> list[BasicResBlock]:
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(BasicResBlock(self.in_planes, planes, s))
            self.in_planes = planes * BasicResBlock.expansion
        return layers

    def __call__(self, x: mx.array) -> mx.array:
        """``(B, T, F)`` features → ``(B, T, C · F / 8)``, channel index ``c · F/8 + f``."""
        out = x.transpose(0, 2, 1)[..., None]  # (B, F, T, 1): height = mel bin
        out = nn.relu(self.conv1(out, self.bn1))
        for block in (*self.layer1, *self.layer2):
            out = block(out)
        out = nn.relu(self.conv2(out, self.bn2))  # (B, F/8, T, C)
        b, f, t, c = out.shape
        # the reference flattens (B, C, F/8, T) to (B, C·F/8, T): channel-major
        return out.transpose(0, 2, 3, 1).reshape(b, t, c * f)


# --- x-vector trunk: TDNN, CAM dense blocks, transit layers ----------------------------


class TDNNLayer(nn.Module):
    """Conv1d (no bias) then ``nonlinear``; ``padding < 0`` means "same" for odd kernels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        bias: bool = False,
        config_str: str = "batchnorm-relu",
    ):
        super().__init__()
        if padding < 0:
            if kernel_size % 2 != 1:
                raise ValueError(f"'same' padding needs an odd kernel size, got {kernel_size}")
            padding = (kernel_size - 1) // 2 * dilation
        self.linear = Conv1d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=bias,
        )
        self.nonlinear = Nonlinear(config_str, out_channels)

    def __call__(self, x: mx.array) -> mx.array:
        return self.nonlinear.after_conv(self.linear, x)


def segment_means(x: mx.array, seg_len: int) -> mx.array:
    """Mean of each ``seg_len``-frame segment: ``F.avg_pool1d(kernel=stride=seg_len,
    ceil_mode=True)``; the last, partial segment is averaged over its own frames only.

    Args:
        x: ``(B, T, C)``.

    Returns:
        ``(B, ceil(T / seg_len), C)``.
    """
    b, t, c = x.shape
    n_seg = -(-t // seg_len)
    padded = mx.pad(x, [(0, 0), (0, n_seg * seg_len - t), (0, 0)])
    sums = padded.reshape(b, n_seg, seg_len, c).sum(axis=2)
    counts = mx.minimum(seg_len, t - seg_len * mx.arange(n_seg)).astype(x.dtype)
    return sums / counts[:, None]


def repeat_segments(x: mx.array, seg_len: int, length: int) -> mx.array:
    """``(B, n_seg, C)`` → ``(B, length, C)``: each segment's row over its ``seg_len`` frames."""
    b, n_seg, c = x.shape
    return mx.broadcast_to(x[:, :, None], (b, n_seg, seg_len, c)).reshape(b, -1, c)[:, :length]


class CAMLayer(nn.Module):
    """Context-aware masking: a local conv gated by a global + segment context."""

    def __init__(
        self,
        bn_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        padding: int,
        dilation: int,
        bias: bool,
        reduction: int = 2,
        seg_len: int = 100,
    ):
        super().__init__()
        self.linear_local = Conv1d(
            bn_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=bias,
        )
        self.linear1 = Conv1d(bn_channels, bn_channels // reduction, 1)
        self.linear2 = Conv1d(bn_channels // reduction, out_channels, 1)
        self.seg_len = seg_len

    def __call__(self, x: mx.array) -> mx.array:
        """``(B, T, bn_channels)`` → ``(B, T, out_channels)``.

        The reference expands the segment means to every frame before the 1x1 convs;
        the gate is therefore constant within a segment and is computed per segment.
        """
        y = self.linear_local(x)
        context = x.mean(axis=1, keepdims=True) + segment_means(x, self.seg_len)
        gate = mx.sigmoid(self.linear2(nn.relu(self.linear1(context))))
        return y * repeat_segments(gate, self.seg_len, y.shape[1])


class CAMDenseTDNNLayer(nn.Module):
    """BN-ReLU, 1×1 bottleneck, BN-ReLU, CAM layer: ``(B, T, C_in)`` → ``(B, T, growth)``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bn_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        bias: bool = False,
        config_str: str = "batchnorm-relu",
        seg_len: int = 100,
    ):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"'same' padding needs an odd kernel size, got {kernel_size}")
        padding = (kernel_size - 1) // 2 * dilation
        self.nonlinear1 = Nonlinear(config_str, in_channels)
        self.linear1 = Conv1d(in_channels, bn_channels, 1, bias=False)
        self.nonlinear2 = Nonlinear(config_str, bn_channels)
        self.cam_layer = CAMLayer(
            bn_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=bias,
            seg_len=seg_len,
        )

    def __call__(self, x: mx.array) -> mx.array:
        return self.cam_layer(self.nonlinear2.after_conv(self.linear1, self.nonlinear1(x)))


class CAMDenseTDNNBlock(nn.Module):
    """Densely connected ``tdnnd1..tdnndN``: each layer's output is appended to the channels."""

    def __init__(
        self,
        num_layers: int,
        in_channels: int,
        out_channels: int,
        bn_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        bias: bool = False,
        config_str: str = "batchnorm-relu",
        seg_len: int = 100,
    ):
        super().__init__()
        self.num_layers = num_layers
        for i in range(num_layers):
            layer = CAMDenseTDNNLayer(
                in_channels + i * out_channels,
                out_channels,
                bn_channels,
                kernel_size,
                stride=stride,
                dilation=dilation,
                bias=bias,
                config_str=config_str,
                seg_len=seg_len,
            )
            setattr(self, f"tdnnd{i + 1}", layer)

    def __call__(self, x: mx.array) -> mx.array:
        """``(B, T, C)`` → ``(B, T, C + num_layers · out_channels)``."""
        for i in range(self.num_layers):
            x = mx.concatenate([x, getattr(self, f"tdnnd{i + 1}")(x)], axis=-1)
        return x


class TransitLayer(nn.Module):
    """``nonlinear`` then a 1×1 conv (halves the channels in CAMPPlus)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bias: bool = True,
        config_str: str = "batchnorm-relu",
    ):
        super().__init__()
        self.nonlinear = Nonlinear(config_str, in_channels)
        self.linear = Conv1d(in_channels, out_channels, 1, bias=bias)

    def __call__(self, x: mx.array) -> mx.array:
        return self.linear(self.nonlinear(x))


class DenseLayer(nn.Module):
    """1×1 conv then ``nonlinear``, on ``(B, C)`` or ``(B, T, C)``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bias: bool = False,
        config_str: str = "batchnorm-relu",
    ):
        super().__init__()
        self.linear = Conv1d(in_channels, out_channels, 1, bias=bias)
        self.nonlinear = Nonlinear(config_str, out_channels)

    def __call__(self, x: mx.array) -> mx.array:
        if x.ndim == 2:
            return self.nonlinear.after_conv(self.linear, x[:, None])[:, 0]
        return self.nonlinear.after_conv(self.linear, x)


def statistics_pooling(x: mx.array) -> mx.array:
    """Mean and unbiased standard deviation over time: ``(B, T, C)`` → ``(B, 2C)``.

    Upstream's ``eps`` argument is unused there too (no floor on the deviation).
    """
    mean = x.mean(axis=1)
    std = mx.sqrt(mx.var(x, axis=1, ddof=1))
    return mx.concatenate([mean, std], axis=-1)


class XVector(nn.Module):
    """The reference's ``xvector`` ``nn.Sequential``: named children in call order."""

    def __init__(self, args: CAMPPlusArgs, channels: int):
        super().__init__()
        self.tdnn = TDNNLayer(
            channels,
            args.init_channels,
            5,
            stride=2,
            dilation=1,
            padding=-1,
            config_str=args.config_str,
        )
        channels = args.init_channels
        self.num_blocks = len(args.block_num_layers)
        for i, (num_layers, kernel_size, dilation) in enumerate(
            zip(args.block_num_layers, args.block_kernel_sizes, args.block_dilations, strict=True)
        ):
            block = CAMDenseTDNNBlock(
                num_layers,
                channels,
                args.growth_rate,
                args.bn_size * args.growth_rate,
                kernel_size,
                dilation=dilation,
                config_str=args.config_str,
                seg_len=args.seg_len,
            )
            setattr(self, f"block{i + 1}", block)
            channels += num_layers * args.growth_rate
            setattr(
                self,
                f"transit{i + 1}",
                TransitLayer(channels, channels // 2, bias=False, config_str=args.config_str),
            )
            channels //= 2
        self.out_nonlinear = Nonlinear(args.config_str, channels)
        self.dense = DenseLayer(channels * 2, args.embedding_size, config_str="batchnorm_")

    def pooled_stats(self, x: mx.array) -> mx.array:
        """Everything before ``dense``: ``(B, T, C_head)`` → ``(B, 2·C)`` (mean, std)."""
        x = self.tdnn(x)
        for i in range(1, self.num_blocks + 1):
            x = getattr(self, f"transit{i}")(getattr(self, f"block{i}")(x))
        return statistics_pooling(self.out_nonlinear(x))

    def __call__(self, x: mx.array) -> mx.array:
        """``(B, T, C_head)`` → ``(B, embedding_size)``."""
        return self.dense(self.pooled_stats(x))


class CAMPPlus(nn.Module):
    """CAM++ speaker embedding network, in inference mode (BatchNorm on running stats)."""

    def __init__(self, args: CAMPPlusArgs | None = None):
        super().__init__()
        self.args = args = args or CAMPPlusArgs()
        self.head = FCM(args.head_num_blocks, args.m_channels, args.feat_dim)
        self.xvector = XVector(args, self.head.out_channels)
        self.eval()

    def __call__(self, feats: mx.array) -> mx.array:
        """Speaker embedding of mean-normalised fbank features.

        Args:
            feats: ``(B, T, feat_dim)`` Kaldi fbank frames (per-bin mean removed); ``T``
                must give at least two frames after the stride-2 TDNN (``T >= 3``) for
                the standard deviation pooling.

        Returns:
            ``(B, embedding_size)`` float32.
        """
        return self.xvector(self.head(feats))
