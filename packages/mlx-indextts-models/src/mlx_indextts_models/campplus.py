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
as matmuls over gathered taps (:class:`~mlx_indextts_models.layers.MatmulConv1d`,
:class:`~mlx_indextts_models.layers.MatmulConv2d`); a
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

from mlx_indextts_models.layers import BatchNorm, MatmulConv1d, MatmulConv2d, same_padding


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


class Nonlinear(nn.Module):
    """``get_nonlinear(config_str, channels)``: e.g. ``"batchnorm-relu"`` → BN then ReLU.

    Parts: ``batchnorm`` (affine BN), ``batchnorm_`` (BN without affine), ``relu``,
    ``prelu``; applied in order over the last (channel) axis.
    """

    def __init__(self, config_str: str, channels: int) -> None:
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

    def after_conv(self, conv: MatmulConv1d, x: mx.array) -> mx.array:
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

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = MatmulConv2d(
            in_planes, planes, kernel_size=3, stride=(stride, 1), padding=1, bias=False
        )
        self.bn1 = BatchNorm(planes)
        self.conv2 = MatmulConv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = BatchNorm(planes)
        self.shortcut: list[nn.Module] = []
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = [
                MatmulConv2d(in_planes, self.expansion * planes, 1, stride=(stride, 1), bias=False),
                BatchNorm(self.expansion * planes),
            ]

    def __call__(self, x: mx.array) -> mx.array:
        """``(B, F, T, C_in)`` → ``(B, ceil(F / stride), T, planes)``."""
        out = nn.relu(self.conv1(x, self.bn1))
        out = self.conv2(out, self.bn2)
        shortcut = self.shortcut[0](x, self.shortcut[1]) if self.shortcut else x
        y: mx.array = nn.relu(out + shortcut)
        return y


class FCM(nn.Module):
    """Front-end convolution module: (B, T, feat_dim) → (B, T, m_channels · feat_dim / 8)."""

    def __init__(
        self, num_blocks: tuple[int, int] = (2, 2), m_channels: int = 32, feat_dim: int = 80
    ) -> None:
        super().__init__()
        self.in_planes = m_channels
        self.conv1 = MatmulConv2d(1, m_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = BatchNorm(m_channels)
        self.layer1 = self._make_layer(m_channels, num_blocks[0], stride=2)
        self.layer2 = self._make_layer(m_channels, num_blocks[1], stride=2)
        self.conv2 = MatmulConv2d(
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
        out: mx.array = x.transpose(0, 2, 1)[..., None]  # (B, F, T, 1): height = mel bin
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
    ) -> None:
        super().__init__()
        if padding < 0:
            padding = same_padding(kernel_size, dilation)
        self.linear = MatmulConv1d(
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


@dataclass(frozen=True)
class DenseLayerSpec:
    """What every layer of a :class:`CAMDenseTDNNBlock` shares (the reference's
    ``CAMDenseTDNNLayer`` arguments after ``in_channels``): its ``out_channels`` (the
    growth rate), the bottleneck width, and the CAM layer's "same"-padded local conv."""

    out_channels: int
    bn_channels: int
    kernel_size: int
    stride: int = 1
    dilation: int = 1
    bias: bool = False
    config_str: str = "batchnorm-relu"
    seg_len: int = 100


class CAMLayer(nn.Module):
    """Context-aware masking: a local conv gated by a global + segment context."""

    def __init__(self, spec: DenseLayerSpec, reduction: int = 2) -> None:
        super().__init__()
        bn_channels = spec.bn_channels
        self.linear_local = MatmulConv1d(
            bn_channels,
            spec.out_channels,
            spec.kernel_size,
            stride=spec.stride,
            padding=same_padding(spec.kernel_size, spec.dilation),
            dilation=spec.dilation,
            bias=spec.bias,
        )
        self.linear1 = MatmulConv1d(bn_channels, bn_channels // reduction, 1)
        self.linear2 = MatmulConv1d(bn_channels // reduction, spec.out_channels, 1)
        self.seg_len = spec.seg_len

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

    def __init__(self, in_channels: int, spec: DenseLayerSpec) -> None:
        super().__init__()
        self.nonlinear1 = Nonlinear(spec.config_str, in_channels)
        self.linear1 = MatmulConv1d(in_channels, spec.bn_channels, 1, bias=False)
        self.nonlinear2 = Nonlinear(spec.config_str, spec.bn_channels)
        self.cam_layer = CAMLayer(spec)

    def __call__(self, x: mx.array) -> mx.array:
        """``(B, T, C_in)`` → ``(B, T, out_channels)``."""
        return self.cam_layer(self.nonlinear2.after_conv(self.linear1, self.nonlinear1(x)))


class CAMDenseTDNNBlock(nn.Module):
    """Densely connected ``tdnnd1..tdnndN``: each layer's output is appended to the channels."""

    def __init__(self, num_layers: int, in_channels: int, spec: DenseLayerSpec) -> None:
        super().__init__()
        self.num_layers = num_layers
        for i in range(num_layers):
            layer = CAMDenseTDNNLayer(in_channels + i * spec.out_channels, spec)
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
    ) -> None:
        super().__init__()
        self.nonlinear = Nonlinear(config_str, in_channels)
        self.linear = MatmulConv1d(in_channels, out_channels, 1, bias=bias)

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
    ) -> None:
        super().__init__()
        self.linear = MatmulConv1d(in_channels, out_channels, 1, bias=bias)
        self.nonlinear = Nonlinear(config_str, out_channels)

    def __call__(self, x: mx.array) -> mx.array:
        if x.ndim == 2:
            return self.nonlinear.after_conv(self.linear, x[:, None])[:, 0]
        return self.nonlinear.after_conv(self.linear, x)


def statistics_pooling(x: mx.array) -> mx.array:
    """Mean and unbiased standard deviation over time: ``(B, T, C)`` → ``(B, 2C)``.

    Upstream's ``eps`` argument is unused there too (no floor on the deviation). Computed
    in float32 whatever ``x``'s dtype (a half model's squared deviations underflow float16)
    and returned in it.
    """
    x32 = x.astype(mx.float32)
    mean = x32.mean(axis=1)
    std = mx.sqrt(mx.var(x32, axis=1, ddof=1))
    return mx.concatenate([mean, std], axis=-1).astype(x.dtype)


class XVector(nn.Module):
    """The reference's ``xvector`` ``nn.Sequential``: named children in call order."""

    def __init__(self, args: CAMPPlusArgs, channels: int) -> None:
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
            spec = DenseLayerSpec(
                args.growth_rate,
                args.bn_size * args.growth_rate,
                kernel_size,
                dilation=dilation,
                config_str=args.config_str,
                seg_len=args.seg_len,
            )
            block = CAMDenseTDNNBlock(num_layers, channels, spec)
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

    def __init__(self, args: CAMPPlusArgs | None = None) -> None:
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
