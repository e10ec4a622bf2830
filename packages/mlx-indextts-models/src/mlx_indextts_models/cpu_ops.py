"""Elementwise-heavy ops with a numpy fast path on MLX's CPU device.

In the Linux x86 MLX wheel, ``exp`` (and the sigmoid, tanh, silu and softmax built on it)
runs as scalar code, an order of magnitude slower than numpy's vectorized exp, MLX's
elementwise ops use one core, and MLX's CPU attention kernel spends its time in that
scalar exp (measurements: docs/performance.md). So on the CPU device these
ops run in numpy (float32, in place where possible; split over worker threads, since numpy
releases the GIL); on a GPU device they are the plain MLX ops. Each function documents the
MLX expression it equals; the results agree to float32 rounding.

Every function takes and returns ``mx.array`` and evaluates its input on the CPU path.

The plain MLX paths are what Metal and CUDA users run. To run them on the CPU too (and
prove them at parity there), set ``INDEXTTS_MLX_PORTABLE=1`` before the process starts,
or use :func:`portable_paths` around the calls: :func:`on_cpu` then answers False and
every function here (and every model's CPU-only fast path, which all ask it) takes its
portable MLX branch.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from functools import cache

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from threadpoolctl import ThreadpoolController

from mlx_indextts_models.layers import conv1d_as_matmul

#: Set to 1 to take the portable MLX paths on the CPU device too (:func:`portable_paths`).
PORTABLE_ENV = "INDEXTTS_MLX_PORTABLE"
_portable = os.environ.get(PORTABLE_ENV, "").strip().lower() not in ("", "0", "false", "no")


@contextmanager
def portable_paths(enabled: bool = True) -> Iterator[None]:
    """Within the block, take (``enabled``) or leave the portable MLX paths on the CPU,
    as ``INDEXTTS_MLX_PORTABLE=1`` does for a whole process. Not thread-safe: it sets
    one switch for the process."""
    global _portable
    before, _portable = _portable, enabled
    try:
        yield
    finally:
        _portable = before


def portable() -> bool:
    """Whether the portable MLX paths are forced (:func:`portable_paths`)."""
    return _portable


def on_cpu() -> bool:
    """Whether to take the CPU fast paths: MLX's default device is the CPU and the
    portable paths are not forced (:data:`PORTABLE_ENV`, :func:`portable_paths`)."""
    return not _portable and mx.default_device() == mx.cpu


def numpy_path(*arrays: mx.array) -> bool:
    """Whether to take the numpy paths: on the CPU device, for float32 inputs (a half model,
    ``convert --dtype float16|bfloat16``, runs the plain MLX ops in its own dtype; numpy
    has no bfloat16)."""
    return on_cpu() and all(a.dtype == mx.float32 for a in arrays)


THREADS = min(os.cpu_count() or 1, 8)


@cache
def _workers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="cpu-ops")


def in_parallel(length: int, work: Callable[[slice], object], min_chunk: int = 16) -> None:
    """Run ``work`` on contiguous slices covering ``range(length)``, one per worker thread,
    each at least ``min_chunk`` long (fewer slices when ``length`` is short)."""
    parts = max(1, min(THREADS, length // min_chunk))
    bounds = [length * i // parts for i in range(parts + 1)]
    slices = [slice(lo, hi) for lo, hi in itertools.pairwise(bounds)]
    if parts == 1:
        work(slices[0])
    else:
        for done in [_workers().submit(work, part) for part in slices]:
            done.result()


def _rows(x: mx.array) -> np.ndarray:
    """A numpy view of ``x`` as 2-D rows over its last axis (no copy when contiguous)."""
    return np.asarray(x).reshape(-1, x.shape[-1])


def silu(x: mx.array) -> mx.array:
    """``x · sigmoid(x)`` (``nn.silu``), computed as ``x / (1 + exp(-x))``; any shape."""
    if not numpy_path(x):
        y: mx.array = nn.silu(x)
        return y
    v = _rows(x)
    out = np.empty_like(v)

    def work(rows: slice) -> None:
        o = out[rows]
        np.negative(v[rows], out=o)
        with np.errstate(over="ignore"):  # exp(-x) = inf for x < -88 gives the right 0
            np.exp(o, out=o)
        o += 1.0
        np.divide(v[rows], o, out=o)

    in_parallel(v.shape[0], work)
    return mx.array(out.reshape(x.shape))


def glu(value: mx.array, gate: mx.array) -> mx.array:
    """``value · sigmoid(gate)`` (``nn.GLU`` applied to the two halves); same shapes."""
    if not numpy_path(value, gate):
        return value * mx.sigmoid(gate)
    v, g = _rows(value), _rows(gate)
    out = np.empty_like(v)

    def work(rows: slice) -> None:
        o = out[rows]
        np.negative(g[rows], out=o)
        with np.errstate(over="ignore"):
            np.exp(o, out=o)
        o += 1.0
        np.divide(v[rows], o, out=o)

    in_parallel(v.shape[0], work)
    return mx.array(out.reshape(value.shape))


_GELU_C = np.float32(np.sqrt(2.0 / np.pi))


def gelu_tanh(x: mx.array) -> mx.array:
    """HF ``gelu_new``: ``0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³)))``; any shape.

    Not for use inside ``mx.compile`` (the CPU path leaves MLX for numpy).
    """
    if not numpy_path(x):
        return 0.5 * x * (1.0 + mx.tanh(float(_GELU_C) * (x + 0.044715 * (x * x * x))))
    v = _rows(x)
    out = np.empty_like(v)

    def work(rows: slice) -> None:
        o, r = out[rows], v[rows]
        np.multiply(r, r, out=o)
        o *= r
        o *= np.float32(0.044715)
        o += r
        o *= _GELU_C
        np.tanh(o, out=o)
        o += np.float32(1.0)
        o *= r
        o *= np.float32(0.5)

    in_parallel(v.shape[0], work)
    return mx.array(out.reshape(x.shape))


def tanh_sigmoid_gate(x: mx.array) -> mx.array:
    """WaveNet's gated activation: ``tanh(a) · sigmoid(b)`` for ``a, b`` the two halves of
    ``x``'s last axis (``fused_add_tanh_sigmoid_multiply`` without the add).

    Args:
        x: ``(..., 2·H)``.

    Returns:
        ``(..., H)``.
    """
    hidden = x.shape[-1] // 2
    if not numpy_path(x):
        return mx.tanh(x[..., :hidden]) * mx.sigmoid(x[..., hidden:])
    v = _rows(x)
    out = np.empty((v.shape[0], hidden), dtype=v.dtype)

    def work(rows: slice) -> None:
        o = out[rows]
        gate = np.negative(v[rows, hidden:])
        with np.errstate(over="ignore"):
            np.exp(gate, out=gate)
        gate += 1.0
        np.tanh(v[rows, :hidden], out=o)
        o /= gate

    in_parallel(v.shape[0], work)
    return mx.array(out.reshape(*x.shape[:-1], hidden))


def softmax(x: mx.array) -> mx.array:
    """Softmax over the last axis (row maximum subtracted first, as torch does); any shape."""
    if not numpy_path(x):
        return mx.softmax(x, axis=-1)
    v = _rows(x)
    out = np.empty_like(v)

    def work(rows: slice) -> None:
        o = out[rows]
        np.subtract(v[rows], v[rows].max(axis=-1, keepdims=True), out=o)
        np.exp(o, out=o)
        o /= o.sum(axis=-1, keepdims=True)

    in_parallel(v.shape[0], work)
    return mx.array(out.reshape(x.shape))


@cache
def _rotary_table(length: int, head_dim: int, base: float) -> tuple[np.ndarray, np.ndarray]:
    """``cos`` and ``sin`` of the rotary angles ``t · base^(−2i/head_dim)``, each
    ``(length, head_dim // 2)`` float32, formed in float32 as gpt-fast's
    ``precompute_freqs_cis`` forms them; made once per shape."""
    half = np.arange(0, head_dim, 2, dtype=np.float32)[: head_dim // 2]
    freqs = np.float32(1.0) / (np.float32(base) ** (half / np.float32(head_dim)))
    angles = np.outer(np.arange(length, dtype=np.float32), freqs)
    return np.cos(angles), np.sin(angles)


def _rotate_pairs(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Interleaved-pair rotary embedding of ``x (T, head_dim)``: each pair ``(x₀, x₁)`` of
    frame ``t`` becomes ``(x₀ cos − x₁ sin, x₁ cos + x₀ sin)`` (gpt-fast's
    ``apply_rotary_emb``; ``mx.fast.rope(traditional=True)``)."""
    x0, x1 = x[:, 0::2], x[:, 1::2]
    out = np.empty_like(x)
    out[:, 0::2] = x0 * cos - x1 * sin
    out[:, 1::2] = x1 * cos + x0 * sin
    return out


def attention(
    q: mx.array,
    k: mx.array,
    v: mx.array,
    scale: float,
    key_lengths: Sequence[int] | None = None,
    *,
    causal: bool = False,
    rope_base: float | None = None,
) -> mx.array:
    """Multi-head attention ``softmax(scale · q kᵀ) v`` with the heads merged.

    Args:
        q, k, v: ``(B, heads, T, head_dim)``.
        scale: the score scale (usually ``head_dim ** -0.5``).
        key_lengths: valid keys per batch row (``len`` 1 broadcasts over the batch); keys at
            or past a row's length get no weight (the reference's ``-inf`` key mask). None:
            all ``T`` keys.
        causal: query ``i`` sees keys ``0..i`` only (``q`` and ``k`` of the same length).
        rope_base: rotate ``q`` and ``k`` first by interleaved-pair rotary embeddings of
            this base at positions ``0..T-1`` (``mx.fast.rope(traditional=True)``); None:
            as given.

    Returns:
        ``(B, T, heads · head_dim)``: head ``h``'s output in columns ``h·head_dim ...``.

    On CPU each (row, head) is rotated (tables made once per length), then one BLAS
    ``q kᵀ`` of only the valid keys, an in-place softmax numerator and one BLAS product
    with ``v``, divided by the row sums afterwards; the output is written straight into
    the merged layout. Elsewhere ``mx.fast``'s rope and SDPA.
    """
    b, heads, t, head_dim = q.shape
    lengths = [t] * b if key_lengths is None else [int(n) for n in key_lengths]
    if len(lengths) == 1:
        lengths = lengths * b
    if len(lengths) != b or min(lengths) < 1:
        raise ValueError(f"key_lengths {key_lengths} do not fit a batch of {b}")
    if causal and (key_lengths is not None or k.shape[2] != t):
        raise ValueError("causal attention takes square q, k and no key_lengths")
    if rope_base is not None and k.shape[2] != t:
        raise ValueError("rotary positions need q and k of the same length")
    if not numpy_path(q, k, v):
        if rope_base is not None:
            q, k = (mx.fast.rope(a, head_dim, traditional=True, base=rope_base, scale=1.0,
                                 offset=0) for a in (q, k))  # fmt: skip
        mask: mx.array | str | None = "causal" if causal else None
        if min(lengths) < k.shape[2]:
            mask = (mx.arange(k.shape[2])[None] < mx.array(lengths)[:, None])[:, None, None]
        y = mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
        return y.transpose(0, 2, 1, 3).reshape(b, t, heads * head_dim)
    if rope_base is None:
        qn, kn = np.asarray(q * scale), np.asarray(k)
    else:
        qn, kn = np.asarray(q), np.asarray(k)
        cos, sin = _rotary_table(t, head_dim, rope_base)
    vn = np.asarray(v)
    out = np.empty((b, t, heads, head_dim), dtype=qn.dtype)
    future = np.triu(np.ones((t, t), dtype=bool), 1) if causal else None
    scale32 = np.float32(scale)

    def work(pairs: slice) -> None:
        for pair in range(pairs.start, pairs.stop):
            row, h = divmod(pair, heads)
            n = lengths[row]
            qh, kh = qn[row, h], kn[row, h, :n]
            if rope_base is not None:  # rotate, then scale (as the MLX ops in that order)
                qh = _rotate_pairs(qh, cos, sin)
                qh *= scale32
                kh = _rotate_pairs(kn[row, h], cos, sin)[:n]
            scores = qh @ kh.T  # (T, n)
            if future is not None:
                scores[future] = -np.inf
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            y = scores @ vn[row, h, :n]
            y /= scores.sum(axis=-1, keepdims=True)
            out[row, :, h] = y

    with _single_threaded_numpy_blas():
        in_parallel(b * heads, work, min_chunk=1)
    return mx.array(out.reshape(b, t, heads * head_dim))


@cache
def _blas_libraries() -> ThreadpoolController:
    """Every BLAS loaded in the process (numpy's bundled OpenBLAS, the one MLX was given)."""
    return ThreadpoolController().select(user_api="blas")


def _single_threaded_numpy_blas() -> AbstractContextManager[object]:
    """A context in which BLAS calls run on the calling thread.

    The worker threads already use every core; numpy's OpenBLAS threads spinning beside
    MLX's BLAS threads slowed the DiT's attention down (docs/performance.md). MLX runs
    nothing while the workers do, so limiting every BLAS for that window is safe.
    """
    limited: AbstractContextManager[object] = _blas_libraries().limit(limits=1)
    return limited


def causal_depthwise_conv1d(x: mx.array, weight: mx.array) -> mx.array:
    """Depthwise conv with ``kernel - 1`` zeros of padding on the left (no bias).

    Args:
        x: ``(B, T, C)``.
        weight: MLX layout ``(C, kernel, 1)``.

    Returns:
        ``(B, T, C)`` with ``out[t, c] = Σ_k weight[c, k] · x[t - kernel + 1 + k, c]``.

    On CPU a sum of shifted products in numpy (MLX's grouped ``conv1d`` is slow there).
    """
    kernel = weight.shape[1]
    if not numpy_path(x, weight):
        return mx.conv1d(mx.pad(x, [(0, 0), (kernel - 1, 0), (0, 0)]), weight, groups=x.shape[-1])
    v = np.asarray(x)
    taps = np.ascontiguousarray(np.asarray(weight)[:, :, 0].T)  # (kernel, C)
    b, t, c = v.shape
    padded = np.zeros((b, t + kernel - 1, c), dtype=v.dtype)
    padded[:, kernel - 1 :] = v
    out = np.empty_like(v)

    def work(frames: slice) -> None:
        o = out[:, frames]
        term = np.empty_like(o)
        np.multiply(padded[:, frames], taps[0], out=o)
        for k in range(1, kernel):
            np.multiply(padded[:, frames.start + k : frames.stop + k], taps[k], out=term)
            o += term

    in_parallel(t, work)
    return mx.array(out)


#: Floats of im2col one :func:`conv1d` block gathers (1 MiB: the block and its product
#: stay in a core's L2 cache), and the fewest frames a block has (wide layers).
CONV_BLOCK_FLOATS = 1 << 18
CONV_MIN_BLOCK_FRAMES = 128
#: The widest input :func:`conv1d` computes in numpy blocks. From 512 channels on, MLX's
#: own single-threaded im2col is small next to the product, and its one two-thread BLAS
#: call beats a product per core (docs/performance.md: BigVGAN, the S2Mel WaveNet).
CONV_NUMPY_MAX_CHANNELS = 384


def conv1d(
    x: mx.array, weight: mx.array, bias: mx.array | None, *, padding: int = 0, dilation: int = 1
) -> mx.array:
    """Stride-1 Conv1d, channels-last: ``mx.conv1d(x, weight, padding=padding,
    dilation=dilation) + bias``.

    Args:
        x: ``(B, T, C_in)``.
        weight: ``(C_out, k, C_in)`` (MLX layout).
        bias: ``(C_out,)`` or None.
        padding: zeros on each side of the time axis.
        dilation: spacing of the kernel taps.

    Returns:
        ``(B, T + 2·padding − dilation·(k − 1), C_out)``.

    On CPU, for inputs of at most :data:`CONV_NUMPY_MAX_CHANNELS` channels, the frames are
    cut into fixed blocks of about :data:`CONV_BLOCK_FLOATS` im2col floats; each worker
    thread gathers a block's taps (numpy copies, zeros past the edges) and multiplies it
    on its own core. MLX's own im2col is a single-threaded copy that costs more than the
    product for such narrow layers (docs/performance.md). Where MLX computes it, a
    dilated kernel runs as one matmul over the gathered taps (MLX's CPU dilated conv is
    ~40× slower, and the portable paths run on the CPU in tests).
    """
    if not numpy_path(x, weight) or x.shape[-1] > CONV_NUMPY_MAX_CHANNELS:
        if dilation == 1:
            y = mx.conv1d(x, weight, padding=padding)
            return y if bias is None else y + bias
        return conv1d_as_matmul(x, weight, bias, padding=padding, dilation=dilation)
    v = np.asarray(x)
    b, t, c = v.shape
    out_c, k, _ = weight.shape
    w = np.ascontiguousarray(np.asarray(weight).reshape(out_c, k * c).T)  # (k·C_in, C_out)
    shift = None if bias is None else np.asarray(bias)
    t_out = t + 2 * padding - dilation * (k - 1)
    out = np.empty((b, t_out, out_c), dtype=v.dtype)
    frames = max(CONV_MIN_BLOCK_FRAMES, CONV_BLOCK_FLOATS // (k * c))
    blocks = [(row, lo) for row in range(b) for lo in range(0, t_out, frames)]

    def work(part: slice) -> None:
        cols = np.empty((frames, k * c), dtype=v.dtype)
        for row, lo in blocks[part]:
            n = min(frames, t_out - lo)
            block = out[row, lo : lo + n]
            if k == 1 and padding == 0:  # a 1×1 conv: the frames themselves are the columns
                np.matmul(v[row, lo : lo + n], w, out=block)
                if shift is not None:
                    block += shift
                continue
            for j in range(k):  # rows lo.. of tap j read input frames start..start+n
                start = lo + j * dilation - padding
                first, last = max(start, 0), min(start + n, t)
                tap = cols[:n, j * c : (j + 1) * c]
                if first >= last:
                    tap[:] = 0.0
                    continue
                tap[: first - start] = 0.0
                tap[first - start : last - start] = v[row, first:last]
                tap[last - start :] = 0.0
            np.matmul(cols[:n], w, out=block)
            if shift is not None:
                block += shift

    with _single_threaded_numpy_blas():
        in_parallel(len(blocks), work, min_chunk=1)
    return mx.array(out)


@cache
def _cpu_streams() -> tuple[mx.Stream, ...]:
    return tuple(mx.new_stream(mx.cpu) for _ in range(THREADS))


def over_time_chunks(
    fn: Callable[[mx.array], mx.array], x: mx.array, halo: int, min_frames: int = 4096
) -> mx.array:
    """``fn(x)`` for a time-local ``fn``, evaluated on the CPU as ``THREADS`` overlapping
    chunks of ``x``'s time axis, each on its own CPU stream (MLX runs a stream's ops on
    one thread; its elementwise kernels use one core each).

    Args:
        fn: maps ``(B, T, C)`` to ``(B, T, C')``; output frame ``t`` may depend on input
            frames ``t - halo .. t + halo`` only (its edge handling, e.g. replicate
            padding, then never reaches a kept frame).
        x: ``(B, T, C)``.
        halo: frames of context each chunk gets on each side, and crops off again.
        min_frames: below this length (or off the CPU, or with one thread) ``fn(x)``.

    Returns:
        ``fn(x)``, evaluated; bit-identical when ``fn``'s per-frame arithmetic does not
        depend on the length (elementwise ops and fixed filters).
    """
    t = x.shape[1]
    if not on_cpu() or THREADS == 1 or t < max(min_frames, 4 * halo * THREADS):
        return fn(x)
    bounds = [t * i // THREADS for i in range(THREADS + 1)]
    parts = []
    for stream, (lo, hi) in zip(_cpu_streams(), itertools.pairwise(bounds), strict=True):
        start, stop = max(0, lo - halo), min(t, hi + halo)
        with mx.stream(stream):
            y = fn(x[:, start:stop])
            parts.append(y[:, lo - start : y.shape[1] - (stop - hi)])
    mx.eval(parts)
    return mx.concatenate(parts, axis=1)
