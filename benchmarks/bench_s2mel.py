#!/usr/bin/env python
"""S2Mel CFM (DiT + WaveNet, Euler, CFG 0.7) on 10 s of generated mel: MLX vs the reference.

Run in the parity venv: ``.venv-parity/bin/python benchmarks/bench_s2mel.py [--frames N]
[--prompt-frames P] [--steps S] [--quick] [--repeats R] [--no-profile]``.

Both sides use the same seeded real-config ``s2mel.pth`` (ours: ``s2mel_pytorch.npz`` written
by the real ``indextts-weights convert``, loaded by ``load_s2mel``; the reference: ``MyModel``'s
``cfm`` loaded strictly, caches set as ``infer_v2``, as the parity test builds it) and the same
inputs: ``mu (1, P + N, 512)``, a ``(1, 80, P)`` prompt mel, a ``(1, 192)`` style and the
same standard-normal start noise (the reference's ``torch.randn`` is patched for the call).
Defaults: 860 generated frames (10 s at 22050 Hz / 256) after a 258-frame (3 s) prompt,
25 steps, CFG 0.7 (each step one DiT forward on a batch of 2). The sides run alternately so
load from other processes hits both alike.

Prints wall time and real-time factor of each side, the ratio (reference / ours; > 1 = we
are faster), max|Δ| and cos of the generated frames, MLX peak memory and the process's peak
RSS, the achieved GFLOP/s of the DiT's matmuls and convs (FLOPs counted from the shapes)
against a 2048² fp32 MLX matmul measured in the same run, and (unless ``--no-profile``) one
DiT forward of ours split into attention / linear layers / WaveNet / the rest.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
# bench_bigvgan's import prologue: this checkout's packages, the fast BLAS before MLX, the
# torchaudio shim for the reference.
import bench_bigvgan  # noqa: F401

# isort: split

import mlx.core as mx
import numpy as np
import torch

from indextts_weights import load_s2mel
from mlx_audio_features import blas_status
from mlx_indextts_models.cpu_ops import attention
from mlx_indextts_models.s2mel.cfm import CFG_RATE, CFM
from mlx_indextts_models.s2mel.dit import DiT
from parity.checkpoints import s2mel_checkpoint
from parity.converted import converted_weights
from parity.test_s2mel_cfm_parity import reference_cfm

SECONDS_PER_FRAME = 256 / 22050


def dit_flops(model: DiT, batch: int, frames: int) -> dict[str, float]:
    """Multiply-add FLOPs (2 per MAC) of one DiT forward, by kind, from the shapes."""
    a, w = model.args, model.wavenet_args
    d, bt = a.hidden_dim, batch * frames
    layers = model.transformer.layers
    ffn = layers[0].feed_forward.w1.weight.shape[0]
    linear = 0.0
    for layer in layers:
        linear += d * 3 * d + d * d + 3 * d * ffn  # wqkv, wo, w1 / w3 / w2
        if "skip_in_linear" in layer:
            linear += 2 * d * d
    merge_in = model.cond_x_merge_linear.weight.shape[1]
    linear += a.content_dim * d + merge_in * d  # cond_projection, cond_x_merge_linear
    linear += (d + a.in_channels) * d  # skip_linear
    linear += 3 * d * w.hidden_dim  # conv1, res_projection, final_layer.linear
    linear += w.hidden_dim * a.in_channels  # conv2
    h = w.hidden_dim
    wavenet = w.num_layers * w.kernel_size * h * 2 * h  # in_layers
    wavenet += (w.num_layers - 1) * h * 2 * h + h * h  # res_skip_layers
    attention = 2 * frames * d * len(layers)  # q·kᵀ and p·v per query frame
    return {
        "linear": 2.0 * bt * linear,
        "attention": 2.0 * bt * attention,
        "wavenet": 2.0 * bt * wavenet,
    }


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best achieved GFLOP/s of an ``n × n`` fp32 MLX matmul."""
    a = mx.random.normal((n, n), key=mx.random.key(0))
    b = mx.random.normal((n, n), key=mx.random.key(1))
    mx.eval(a @ b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        mx.eval(a @ b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def torch_matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """The same for torch (the reference's BLAS), for comparison."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def timed(fn, repeats: int = 3) -> float:
    """Median seconds of ``fn()`` (which must evaluate its result)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def profile_forward(model: DiT, inputs: dict[str, mx.array]) -> dict[str, float]:
    """Seconds of one DiT forward (``inputs``: the CFG batch), and of its parts, each timed
    alone on evaluated inputs of the real shapes: the 13 attention cores (rope +
    ``cpu_ops.attention``), the
    transformer's and the head's linear layers, the WaveNet, and the rest (norms, SwiGLU
    gating, concatenations: the whole minus the parts)."""
    x, prompt_x, t, style, cond = (inputs[k] for k in ("x", "prompt_x", "t", "style", "cond"))
    b, frames, _ = x.shape
    d = model.args.hidden_dim
    blocks = model.transformer.layers
    attn = blocks[0].attention
    hd = attn.head_dim
    first = int(inputs["from_frame"].item())  # the CFM wants the velocity from here on
    out: dict[str, float] = {}
    out["whole forward"] = timed(
        lambda: mx.eval(model(x, prompt_x, None, t, style, cond, from_frame=first))
    )

    h = mx.random.normal((b, frames, d), key=mx.random.key(2))
    qkv = mx.random.normal((3, b, attn.n_head, frames, hd), key=mx.random.key(3))
    mx.eval(h, qkv)

    def attention_cores():  # the attention op the model calls (rope inside), per layer
        for _ in blocks:
            mx.eval(attention(qkv[0], qkv[1], qkv[2], attn.scale, rope_base=attn.rope_base))

    def attention_matmuls_only():  # q·kᵀ and p·v as plain MLX matmuls, no softmax
        for _ in blocks:
            s = qkv[0] @ qkv[1].swapaxes(-1, -2)
            mx.eval(s @ qkv[2])

    def transformer_linears():
        for block in blocks:
            ys = [block.attention.wqkv(h), block.attention.wo(h)]
            ff = block.feed_forward
            ys += [ff.w1(h), ff.w3(h)]
            mx.eval(ys)
            mx.eval(ff.w2(ys[-1]))
            if "skip_in_linear" in block:
                mx.eval(block.skip_in_linear(mx.concatenate([h, h], axis=-1)))

    c = mx.random.normal((b, frames, model.args.content_dim), key=mx.random.key(4))
    merge = mx.random.normal(
        (b, frames, model.cond_x_merge_linear.weight.shape[1]), key=mx.random.key(5)
    )
    skip_in = mx.random.normal((b, frames, d + model.args.in_channels), key=mx.random.key(6))
    mx.eval(c, merge, skip_in)

    def head_linears():
        mx.eval(model.cond_projection(c), model.cond_x_merge_linear(merge))
        mx.eval(model.skip_linear(skip_in))
        mx.eval(model.conv1(h), model.res_projection(h), model.final_layer.linear(h))
        mx.eval(model.conv2(h))

    t2 = model.t_embedder2(t)[:, None]
    wn = model.wavenet
    head = h[:, max(0, first - wn.reach()) :]  # the frames the head runs over
    mx.eval(t2, head)

    def wavenet():
        mx.eval(wn(head, None, g=t2))

    def wavenet_convs_only():
        for i in range(wn.n_layers):
            mx.eval(wn.in_layers[i](head))
            mx.eval(wn.res_skip_layers[i](head))

    out["attention (rope + core) x13"] = timed(attention_cores)
    out["  MLX q·kᵀ + p·v matmuls x13"] = timed(attention_matmuls_only)
    out["transformer linears"] = timed(transformer_linears)
    out["head linears"] = timed(head_linears)
    out["wavenet"] = timed(wavenet)
    out["  wavenet convs alone"] = timed(wavenet_convs_only)
    parts = ("attention (rope + core) x13", "transformer linears", "head linears", "wavenet")
    out["rest (norms, gating, concat)"] = out["whole forward"] - sum(out[k] for k in parts)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=860, help="generated frames (10 s)")
    parser.add_argument("--prompt-frames", type=int, default=258, help="prompt frames (3 s)")
    parser.add_argument("--steps", type=int, default=25, help="Euler steps")
    parser.add_argument("--quick", action="store_true", help="3 steps (smoke run)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side (median)")
    parser.add_argument("--no-profile", action="store_true", help="skip the forward split")
    opts = parser.parse_args()
    steps = 3 if opts.quick else opts.steps
    status = blas_status()
    print(
        f"MLX {mx.__version__} ({status.name or status.reason}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads"
    )

    ours: CFM = load_s2mel(converted_weights(("s2mel",)) / "s2mel_pytorch.npz").cfm
    mx.eval(ours.parameters())
    reference = reference_cfm(s2mel_checkpoint(0))

    total = opts.prompt_frames + opts.frames
    rng = np.random.default_rng(0)
    mu = rng.standard_normal((1, total, 512)).astype(np.float32)
    prompt = rng.standard_normal((1, 80, opts.prompt_frames)).astype(np.float32)
    style = rng.standard_normal((1, 192)).astype(np.float32)
    noise = rng.standard_normal((1, 80, total)).astype(np.float32)
    ours_in = {
        "cond": mx.array(mu),
        "prompt": mx.array(prompt.transpose(0, 2, 1)),
        "style": mx.array(style),
        "noise": mx.array(noise.transpose(0, 2, 1)),
    }
    ref_in = {k: torch.from_numpy(v) for k, v in (("mu", mu), ("prompt", prompt), ("style", style))}

    def run_ours() -> mx.array:
        mel = ours.inference(
            ours_in["cond"], ours_in["prompt"], ours_in["style"], steps, CFG_RATE,
            noise=ours_in["noise"],
        )  # fmt: skip
        mx.eval(mel)
        return mel

    def run_reference() -> torch.Tensor:
        with (
            torch.no_grad(),
            mock.patch.object(torch, "randn", return_value=torch.from_numpy(noise)),
        ):
            return reference.inference(
                ref_in["mu"], torch.LongTensor([total]), ref_in["prompt"], ref_in["style"],
                None, steps, inference_cfg_rate=CFG_RATE,
            )  # fmt: skip

    ours.inference(  # warm-up: one step on a few frames
        ours_in["cond"][:, :64], ours_in["prompt"][:, :16], ours_in["style"], 1, CFG_RATE
    )
    peak_matmul, torch_peak = matmul_peak(), torch_matmul_peak()
    ref_times, our_times = [], []
    mx.reset_peak_memory()
    for _ in range(opts.repeats):  # alternate the sides
        start = time.perf_counter()
        ref_mel = run_reference().numpy()
        ref_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        our_mel = np.array(run_ours()).transpose(0, 2, 1)
        our_times.append(time.perf_counter() - start)
    mlx_peak = mx.get_peak_memory() / 2**30
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux

    p = opts.prompt_frames
    diff = np.abs(our_mel[..., p:] - ref_mel[..., p:]).max()
    a, b = our_mel[..., p:].ravel().astype(np.float64), ref_mel[..., p:].ravel()
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    t_ref, t_ours = statistics.median(ref_times), statistics.median(our_times)
    seconds = opts.frames * SECONDS_PER_FRAME
    flops = dit_flops(ours.estimator, 2, total)
    per_forward = sum(flops.values())
    print(
        f"{steps} steps, CFG {CFG_RATE}: {opts.frames} frames ({seconds:.2f} s) after a "
        f"{p}-frame prompt, DiT batch 2 x {total} frames; max|Δ| {diff:.3g}, cos {cos:.7f}"
    )
    print(f"reference {t_ref:8.2f} s  (RTF {t_ref / seconds:.3f}, {t_ref / steps:.2f} s/step)")
    print(
        f"mlx       {t_ours:8.2f} s  (RTF {t_ours / seconds:.3f}, {t_ours / steps:.2f} s/step), "
        f"MLX peak {mlx_peak:.2f} GiB, process peak RSS {rss:.2f} GiB (both sides' models)"
    )
    print(f"ratio reference/mlx {t_ref / t_ours:.2f}")
    split = ", ".join(f"{k} {v / 1e9:.1f}" for k, v in flops.items())
    # ours runs the head (WaveNet, ~ the head linears) only from the prompt's end
    head_share = (total - max(0, p - ours.estimator.wavenet.reach())) / total
    ours_forward = per_forward - (1 - head_share) * flops["wavenet"]
    print(
        f"DiT forward {per_forward / 1e9:.1f} GFLOP ({split}; ours {ours_forward / 1e9:.1f}: "
        f"the head on {head_share:.0%} of the frames); achieved over the reference's work: "
        f"mlx {per_forward * steps / t_ours / 1e9:.1f} GFLOP/s, reference "
        f"{per_forward * steps / t_ref / 1e9:.1f} GFLOP/s; MLX fp32 2048² matmul peak "
        f"{peak_matmul:.1f} GFLOP/s (torch's {torch_peak:.1f})"
    )
    flops["wavenet"] *= head_share
    if opts.no_profile:
        return
    model = ours.estimator
    x = mx.concatenate([ours_in["noise"]] * 2, axis=0)
    prompt_x = mx.concatenate(
        [ours_in["prompt"], mx.zeros((1, total - p, 80))], axis=1
    )  # fmt: skip
    prof_in = {
        "x": x,
        "prompt_x": mx.concatenate([prompt_x, mx.zeros_like(prompt_x)], axis=0),
        "t": mx.full((2,), 0.5),
        "style": mx.concatenate([ours_in["style"], mx.zeros_like(ours_in["style"])], axis=0),
        "cond": mx.concatenate([ours_in["cond"], mx.zeros_like(ours_in["cond"])], axis=0),
        "from_frame": mx.array(p),
    }
    mx.eval(prof_in)
    parts = profile_forward(model, prof_in)
    whole = parts["whole forward"]
    gflop = {
        "attention (rope + core) x13": flops["attention"],
        "  q·kᵀ + p·v matmuls x13": flops["attention"],
        "wavenet": flops["wavenet"],
        "  wavenet convs alone": flops["wavenet"],
    }
    print("one DiT forward of ours (batch 2), each part timed alone (median of 3):")
    for name, sec in parts.items():
        rate = f"  {gflop[name] / sec / 1e9:6.1f} GFLOP/s" if name in gflop else ""
        print(f"  {name:<32} {sec * 1000:8.1f} ms  {100 * sec / whole:5.1f}%{rate}")
    lin = parts["transformer linears"] + parts["head linears"]
    print(
        f"  {'linears (all)':<32} {lin * 1000:8.1f} ms  {flops['linear'] / lin / 1e9:6.1f} GFLOP/s"
    )


if __name__ == "__main__":
    main()
