"""BigVGAN v2 vocoder (``nvidia/bigvgan_v2_22khz_80band_256x``): mel → 22.05 kHz waveform.

Mirrors ``indextts/s2mel/modules/bigvgan/bigvgan.py`` (``BigVGAN``, ``AMPBlock1``),
``activations.py`` (``SnakeBeta``) and ``alias_free_activation/torch/{act,resample,filter}.py``
(``Activation1d``, ``UpSample1d``, ``DownSample1d``, ``LowPassFilter1d``) after
``remove_weight_norm()``, as IndexTTS-2 runs it: conv_pre (k=7) → 6 × (ConvTranspose1d
upsampling, mean of 3 AMP blocks) → anti-aliased SnakeBeta → conv_post (k=7, no bias) →
clamp to [-1, 1] (``use_tanh_at_final=false``).

Every activation is anti-aliased: 2× upsampling with a 12-tap kaiser-sinc filter, SnakeBeta,
then low-pass filtering and 2× decimation with the same kind of filter. The filters are
buffers of the official checkpoint (``...upsample.filter``, ``...downsample.lowpass.filter``,
``(1, 1, 12)``) and are loaded from it. Both resamplers run as polyphase sums of shifted
products (no grouped convolutions), fused with the activation by ``mx.compile``.

Tensors are channels-last: ``(B, T, C)`` where the reference uses ``(B, C, T)``.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Iterable
from dataclasses import dataclass, field

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from mlx_indextts_models.cpu_ops import conv1d, in_parallel, numpy_path, over_time_chunks
from mlx_indextts_models.layers import OverlapAddConvTranspose1d

SNAKE_EPS = 1e-9  # SnakeBeta's no_div_by_zero

#: Input frames on each side that one output frame of the anti-aliased SnakeBeta reads
#: (the 12-tap up filter spans ±6 frames, the 12-tap decimator ±3 more), rounded up.
ACTIVATION_HALO = 16
#: Floats per channel-block of the numpy SnakeBeta (512 KiB arrays: a block's few
#: temporaries stay in a core's L2 cache).
ACTIVATION_BLOCK_FLOATS = 1 << 17


@dataclass
class BigVGANArgs:
    """``config.json`` of ``nvidia/bigvgan_v2_22khz_80band_256x`` (generator fields only)."""

    num_mels: int = 80
    upsample_rates: tuple[int, ...] = (4, 4, 2, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (8, 8, 4, 4, 4, 4)
    upsample_initial_channel: int = 1536
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = field(
        default_factory=lambda: ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    )
    resblock: str = "1"
    activation: str = "snakebeta"
    snake_logscale: bool = True
    use_tanh_at_final: bool = False
    use_bias_at_final: bool = False
    sampling_rate: int = 22050
    hop_size: int = 256

    def __post_init__(self) -> None:
        if self.resblock != "1":
            raise ValueError(f"only AMPBlock1 (resblock '1') is ported, got {self.resblock!r}")
        if self.activation != "snakebeta":
            raise ValueError(f"only the snakebeta activation is ported, got {self.activation!r}")

    @property
    def upsample_factor(self) -> int:
        """Waveform samples per mel frame (256)."""
        factor = 1
        for rate in self.upsample_rates:
            factor *= rate
        return factor


def _replicate_pad(x: mx.array, left: int, right: int) -> mx.array:
    """``F.pad(mode="replicate")`` along time of ``x`` (B, T, C)."""
    parts = []
    if left:
        parts.append(mx.repeat(x[:, :1], left, axis=1))
    parts.append(x)
    if right:
        parts.append(mx.repeat(x[:, -1:], right, axis=1))
    return mx.concatenate(parts, axis=1) if len(parts) > 1 else x


def _upsample_taps(ratio: int, kernel_size: int) -> tuple[int, list[list[tuple[int, int]]]]:
    """``UpSample1d``'s replicate pad and, per output phase, its (filter tap, input offset)
    pairs: ``y[r·m + p] = r · Σ f[k] · x_padded[m + offset]``."""
    pad = kernel_size // ratio - 1
    pad_left = pad * ratio + (kernel_size - ratio) // 2
    phases = []
    for p in range(ratio):
        taps = [
            (k, (p + pad_left - k) // ratio)
            for k in range(kernel_size)
            if (p + pad_left - k) % ratio == 0
        ]
        phases.append(taps)
    return pad, phases


def upsample(x: mx.array, filt: mx.array, ratio: int = 2) -> mx.array:
    """``UpSample1d(ratio, kernel_size)``: (B, T, C) → (B, ratio·T, C).

    ``filt``: (1, 1, K) kaiser-sinc filter (the module's ``filter`` buffer). Replicate
    padding, depthwise transposed conv with stride ``ratio``, crop, × ratio, computed per
    output phase as a sum of shifted products.
    """
    b, t, c = x.shape
    pad, phases = _upsample_taps(ratio, filt.shape[-1])
    xp = _replicate_pad(x, pad, pad)
    f = filt.reshape(-1) * ratio
    outs = [_sum(xp[:, off : off + t] * f[k] for k, off in taps) for taps in phases]
    return mx.stack(outs, axis=2).reshape(b, t * ratio, c)


def downsample(x: mx.array, filt: mx.array, ratio: int = 2) -> mx.array:
    """``DownSample1d(ratio, kernel_size)`` (``LowPassFilter1d`` with stride ``ratio``):
    (B, N, C) → (B, ⌊(N + K − 1 − K)/ratio⌋ + 1, C) = (B, N/ratio, C) for N divisible.

    Replicate pad (K/2 − 1 left, K/2 right for even K), depthwise filter, keep every
    ``ratio``-th output, computed on the ``ratio`` phases of the padded input.
    """
    b, n, c = x.shape
    k_size = filt.shape[-1]
    even = k_size % 2 == 0
    left, right = k_size // 2 - int(even), k_size // 2
    xp = _replicate_pad(x, left, right)
    total = n + left + right
    t_out = (total - k_size) // ratio + 1
    extra = (-total) % ratio
    if extra:
        xp = mx.pad(xp, [(0, 0), (0, extra), (0, 0)])
    poly = xp.reshape(b, -1, ratio, c)  # poly[:, i, p] = xp[ratio·i + p]
    f = filt.reshape(-1)
    return _sum(poly[:, k // ratio : k // ratio + t_out, k % ratio] * f[k] for k in range(k_size))


def _sum(terms: Iterable[mx.array]) -> mx.array:
    """``terms[0] + terms[1] + …`` in order (``sum`` would start from ``0``)."""
    return functools.reduce(operator.add, terms)


# π split in three (the first two with few mantissa bits, so n·part is exact for |n| < 2^15):
# Cody-Waite range reduction of float32 arguments.
_PI_A = 3.140625
_PI_B = 0.0009670257568359375
_PI_C = 6.2783295059204e-07
# Taylor coefficients of sin(r)/r in r², |r| ≤ π/2: truncation error < 1e-9.
_SIN_COEFFS = tuple((-1) ** i / math.factorial(2 * i + 1) for i in range(7, 0, -1))


def sin_squared(z: mx.array) -> mx.array:
    """``sin(z)²`` as a polynomial (|error| < 1e-6 for |z| < 1e4, like ``mx.sin``): sin² has
    period π, so ``z`` is reduced to ``r = z − nπ`` in [−π/2, π/2]. Only elementwise ops,
    which ``mx.compile`` fuses; MLX's CPU ``sin`` is scalar libm code."""
    n = mx.round(z * (1.0 / math.pi))
    r = ((z - n * _PI_A) - n * _PI_B) - n * _PI_C
    r2 = r * r
    p = mx.full(r.shape, _SIN_COEFFS[0], dtype=r.dtype)
    for c in _SIN_COEFFS[1:]:
        p = p * r2 + c
    p = p * r2 + 1.0
    s = r * p
    return s * s


def snake_beta(x: mx.array, alpha: mx.array, beta: mx.array) -> mx.array:
    """SnakeBeta with log-scale parameters: ``x + 1/(e^β + 1e-9) · sin²(x · e^α)``.

    ``x``: (B, T, C); ``alpha``, ``beta``: (C,).
    """
    a = mx.exp(alpha)
    inv_b = 1.0 / (mx.exp(beta) + SNAKE_EPS)
    return x + inv_b * sin_squared(x * a)


@mx.compile
def _anti_aliased_snake_beta(
    x: mx.array, up_filter: mx.array, down_filter: mx.array, alpha: mx.array, beta: mx.array
) -> mx.array:
    """``downsample(snake_beta(upsample(x)))`` for ratio 2 and 12-tap filters, without
    interleaving the upsampled signal: SnakeBeta runs on its even and odd phases ``e``, ``o``
    and the decimating filter reads them directly (the replicate padding of the upsampled
    signal becomes ``e[0]`` on the left and ``o[-1]`` on the right)."""
    t = x.shape[1]
    _, phases = _upsample_taps(2, 12)
    xp = _replicate_pad(x, 5, 5)
    f = up_filter.reshape(-1) * 2
    e, o = (
        snake_beta(_sum(xp[:, off : off + t] * f[k] for k, off in taps), alpha, beta)
        for taps in phases
    )
    first, last = e[:, :1], o[:, -1:]
    p0 = mx.concatenate([mx.repeat(first, 3, axis=1), o, mx.repeat(last, 2, axis=1)], axis=1)
    p1 = mx.concatenate([mx.repeat(first, 2, axis=1), e, mx.repeat(last, 3, axis=1)], axis=1)
    g = down_filter.reshape(-1)
    return _sum((p1 if k % 2 else p0)[:, k // 2 : k // 2 + t] * g[k] for k in range(12))


def _anti_aliased_snake_beta_numpy(
    x: mx.array, up_filter: mx.array, down_filter: mx.array, alpha: mx.array, beta: mx.array
) -> mx.array:
    """:func:`_anti_aliased_snake_beta` on the CPU, in numpy: the same sums in the same
    order, over blocks of frames on the worker threads (``np.sin`` is vectorized; MLX's
    CPU elementwise kernels are scalar and single-threaded).

    With ``e``, ``o`` the even and odd phases of the upsampled, activated signal ``u``
    (``u[2m] = e[m]``, ``u[2m+1] = o[m]``), output frame ``t`` is
    ``Σ_j g[2j]·O(t+j−3) + g[2j+1]·E(t+j−2)``, where ``E``, ``O`` are ``e``, ``o`` with
    ``u``'s replicate padding: ``e[0]`` before the start, ``o[T−1]`` past the end. ``e[m]``
    reads input frames ``m−3 … m+2``, ``o[m]`` frames ``m−2 … m+3`` (clamped: the input's
    replicate padding).
    """
    v = np.asarray(x)
    b, t, c = v.shape
    _, phases = _upsample_taps(2, 12)
    f = np.asarray(up_filter).reshape(-1) * np.float32(2.0)
    g = np.asarray(down_filter).reshape(-1)
    scale = np.exp(np.asarray(alpha))
    inv_b = (np.float32(1.0) / (np.exp(np.asarray(beta)) + np.float32(SNAKE_EPS))).astype(v.dtype)
    frames = max(1, ACTIVATION_BLOCK_FLOATS // c)
    # SnakeBeta's per-channel factors tiled over a block's rows: contiguous products
    # (broadcasting a narrow channel axis is several times slower in numpy).
    scale_rows, inv_b_rows = np.tile(scale, frames + 6), np.tile(inv_b, frames + 6)
    blocks = [(row, lo) for row in range(b) for lo in range(0, t, frames)]
    out = np.empty_like(v)

    def weighted_sum(
        sources: list[np.ndarray], weights: list[np.floating], out: np.ndarray, tmp: np.ndarray
    ) -> np.ndarray:
        """``Σ_i sources[i] · weights[i]`` added in order into ``out``, in place."""
        np.multiply(sources[0], weights[0], out=out)
        for source, weight in zip(sources[1:], weights[1:], strict=True):
            np.multiply(source, weight, out=tmp)
            out += tmp
        return out

    def phase(
        window: np.ndarray, taps: list[tuple[int, int]], n: int, tmp: np.ndarray
    ) -> np.ndarray:
        """``snake_beta`` of one phase at the block's ``n`` positions (flat ``n·C``);
        ``window`` row ``i`` is input frame ``lo − 6 + i``; position ``j`` is ``m = lo − 3 + j``
        and its tap ``(k, off)`` reads input frame ``m + off − 5``, i.e. row ``j + off − 2``."""
        sources = [window[(off - 2) * c : (off - 2 + n) * c] for _, off in taps]
        y = weighted_sum(sources, [f[k] for k, _ in taps], np.empty(n * c, v.dtype), tmp)
        np.multiply(y, scale_rows[: n * c], out=tmp)
        np.sin(tmp, out=tmp)
        tmp *= tmp
        tmp *= inv_b_rows[: n * c]
        y += tmp
        return y

    def work(part: slice) -> None:
        for row, lo in blocks[part]:
            hi = min(t, lo + frames)
            n = hi - lo + 6  # phases at m = lo − 3 … hi + 2
            window = v[row, np.clip(np.arange(lo - 6, hi + 6), 0, t - 1)].reshape(-1)
            tmp = np.empty(n * c, v.dtype)
            e, o = (phase(window, taps, n, tmp) for taps in phases)
            e2, o2 = e.reshape(n, c), o.reshape(n, c)
            if lo < 3:  # m < 0: u's left padding, e[0]
                o2[: 3 - lo] = e2[: 3 - lo] = e2[3 - lo]
            if hi + 3 > t:  # m ≥ T: u's right padding, o[T − 1]
                end = t - lo + 3
                e2[end:] = o2[end:] = o2[end - 1]
            m = (hi - lo) * c  # output frame lo + i reads position i + k//2 (+1 for odd k)
            sources = [(o if k % 2 == 0 else e)[(k // 2 + k % 2) * c :][:m] for k in range(12)]
            weighted_sum(sources, list(g), out[row, lo:hi].reshape(-1), tmp[:m])

    in_parallel(len(blocks), work, min_chunk=1)
    return mx.array(out)


class SnakeBeta(nn.Module):
    """``activations.SnakeBeta(channels, alpha_logscale=True)``: parameters ``alpha``, ``beta``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = mx.zeros((channels,))
        self.beta = mx.zeros((channels,))

    def __call__(self, x: mx.array) -> mx.array:
        """``x``: (B, T, C) → (B, T, C)."""
        return snake_beta(x, self.alpha, self.beta)


class UpSample1d(nn.Module):
    """2× kaiser-sinc upsampler; ``filter`` (1, 1, 12) comes from the checkpoint."""

    def __init__(self, kernel_size: int = 12) -> None:
        super().__init__()
        self.filter = mx.zeros((1, 1, kernel_size))

    def __call__(self, x: mx.array) -> mx.array:
        """``x``: (B, T, C) → (B, 2T, C)."""
        return upsample(x, self.filter)


class LowPassFilter1d(nn.Module):
    """Kaiser-sinc low-pass filter; ``filter`` (1, 1, 12) comes from the checkpoint."""

    def __init__(self, kernel_size: int = 12) -> None:
        super().__init__()
        self.filter = mx.zeros((1, 1, kernel_size))


class DownSample1d(nn.Module):
    """2× low-pass decimator (``lowpass.filter`` from the checkpoint)."""

    def __init__(self, kernel_size: int = 12) -> None:
        super().__init__()
        self.lowpass = LowPassFilter1d(kernel_size)

    def __call__(self, x: mx.array) -> mx.array:
        """``x``: (B, 2T, C) → (B, T, C)."""
        return downsample(x, self.lowpass.filter)


class Activation1d(nn.Module):
    """Anti-aliased SnakeBeta: upsample 2× → SnakeBeta → low-pass and decimate 2×."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.act = SnakeBeta(channels)
        self.upsample = UpSample1d()
        self.downsample = DownSample1d()

    def __call__(self, x: mx.array) -> mx.array:
        """``x``: (B, T, C) → (B, T, C)."""
        if self.upsample.filter.shape[-1] != 12 or self.downsample.lowpass.filter.shape[-1] != 12:
            return self.downsample(self.act(self.upsample(x)))
        params = (self.upsample.filter, self.downsample.lowpass.filter, self.act.alpha)
        if numpy_path(x, *params, self.act.beta):
            return _anti_aliased_snake_beta_numpy(x, *params, self.act.beta)
        return over_time_chunks(
            lambda chunk: _anti_aliased_snake_beta(
                chunk,
                self.upsample.filter,
                self.downsample.lowpass.filter,
                self.act.alpha,
                self.act.beta,
            ),
            x,
            halo=ACTIVATION_HALO,
        )


def _padding(kernel_size: int, dilation: int) -> int:
    return (kernel_size * dilation - dilation) // 2


class Conv1d(nn.Conv1d):
    """``nn.Conv1d`` (same parameters; stride 1, no groups) computed by
    :func:`~mlx_indextts_models.cpu_ops.conv1d`: blocked numpy products on the CPU."""

    def __call__(self, x: mx.array) -> mx.array:
        """``(B, T, C_in)`` → ``(B, T + 2·padding − dilation·(k − 1), C_out)``."""
        return conv1d(
            x, self.weight, self.get("bias"), padding=self.padding, dilation=self.dilation
        )


class AMPBlock1(nn.Module):
    """Per dilation d: x += conv2(act(conv1_d(act(x)))) (conv2 has dilation 1)."""

    def __init__(self, channels: int, kernel_size: int, dilation: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = [
            Conv1d(channels, channels, kernel_size, dilation=d, padding=_padding(kernel_size, d))
            for d in dilation
        ]
        self.convs2 = [
            Conv1d(channels, channels, kernel_size, padding=_padding(kernel_size, 1))
            for _ in dilation
        ]
        self.activations = [Activation1d(channels) for _ in range(2 * len(dilation))]

    def __call__(self, x: mx.array) -> mx.array:
        """``x``: (B, T, C) → (B, T, C)."""
        acts1, acts2 = self.activations[::2], self.activations[1::2]
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, acts1, acts2, strict=True):
            x = x + c2(a2(c1(a1(x))))
        return x


class BigVGAN(nn.Module):
    """BigVGAN v2 generator (weight norm folded): mel (B, T, num_mels) → wave (B, T·256)."""

    def __init__(self, args: BigVGANArgs | None = None) -> None:
        super().__init__()
        self.args = args = args or BigVGANArgs()
        self.num_kernels = len(args.resblock_kernel_sizes)
        ch = args.upsample_initial_channel
        self.conv_pre = Conv1d(args.num_mels, ch, 7, padding=3)
        self.ups = [
            [OverlapAddConvTranspose1d(ch // 2**i, ch // 2 ** (i + 1), k, u, padding=(k - u) // 2)]
            for i, (u, k) in enumerate(
                zip(args.upsample_rates, args.upsample_kernel_sizes, strict=True)
            )
        ]
        self.resblocks = [
            AMPBlock1(ch // 2 ** (i + 1), k, tuple(d))
            for i in range(len(self.ups))
            for k, d in zip(args.resblock_kernel_sizes, args.resblock_dilation_sizes, strict=True)
        ]
        out_ch = ch // 2 ** len(self.ups)
        self.activation_post = Activation1d(out_ch)
        self.conv_post = Conv1d(out_ch, 1, 7, padding=3, bias=args.use_bias_at_final)

    def __call__(self, mel: mx.array) -> mx.array:
        """``mel``: (B, T, num_mels) log-mel (channels-last) → waveform (B, T·256) in [-1, 1]."""
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            for layer in up:
                x = layer(x)
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            xs = blocks[0](x)
            for block in blocks[1:]:
                xs = xs + block(x)
            x = xs / self.num_kernels
        x = self.conv_post(self.activation_post(x))
        x = mx.tanh(x) if self.args.use_tanh_at_final else mx.clip(x, -1.0, 1.0)
        return x[..., 0]
