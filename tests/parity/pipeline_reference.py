"""The reference end-to-end pipeline (``indextts/infer_v2.py: IndexTTS2``), every stage captured.

The installed ``IndexTTS2`` runs its own ``__init__`` and ``infer_generator`` on the seeded
real-config checkpoints of :mod:`parity.checkpoints`, with nothing downloaded. Only the
download / heavy points of ``__init__`` are patched, each to load the same thing from the
local cache as the real call would from the hub:

* ``QwenEmotion`` → a stub (``use_emo_text`` is out of scope; calling it raises);
* ``SeamlessM4TFeatureExtractor.from_pretrained("facebook/w2v-bert-2.0")`` → the extractor
  built from that repo's ``preprocessor_config.json`` values
  (:data:`parity.reference_features.W2V_BERT_PREPROCESSOR`);
* ``Wav2Vec2BertModel.from_pretrained("facebook/w2v-bert-2.0")`` inside the reference's own
  ``build_semantic_model`` → the seeded checkpoint's folder (the stats file is read by the
  reference from the model folder);
* ``hf_hub_download("amphion/MaskGCT", "semantic_codec/model.safetensors")`` and
  ``hf_hub_download("funasr/campplus", "campplus_cn_common.bin")`` → the seeded files;
* ``bigvgan.BigVGAN.from_pretrained("nvidia/bigvgan_v2_22khz_80band_256x")`` → the reference's
  own ``BigVGAN._from_pretrained`` on a local folder (``config.json`` +
  ``bigvgan_generator.pt`` with weight norm), so ``infer_v2`` then runs
  ``remove_weight_norm()`` itself;
* ``TextNormalizer.load`` → WeText normalisers (``wetext.Normalizer``, en ``tn`` and zh ``tn``
  without erhua removal) answering NeMo's ``normalize(text, verbose=False)``.

Sockets are closed for the whole construction and run (any download attempt fails loudly).

The model folder (:func:`model_dir`) holds ``config.yaml`` (the official config) and
symlinks to the cached ``gpt.pth``, ``s2mel.pth``, ``wav2vec2bert_stats.pt``, ``feat1.pt``,
``feat2.pt`` and the given ``bpe.model``.

:func:`run_reference` resets the speaker/emotion caches, runs ``infer_generator`` with the
given generation kwargs (default greedy-equivalent: ``num_beams=1, top_k=1``; ``do_sample``
is forced True inside, and top-k 1 leaves one candidate, so the draw is deterministic; the
repetition penalty 10.0, temperature 0.8 and top-p 0.8 defaults still apply) and captures
each stage through forward hooks and instance-attribute wrappers (the reference source is
not edited). The CFM start noise is a seeded standard normal (``numpy.random.default_rng(
noise_seed)``) served to ``cfm.inference`` through a patched ``torch.randn``.

:func:`reference_pipeline` is the cached entry point (``harness.cached_arrays``; the
reference is built only on a cache miss and freed afterwards). :func:`tiny_bpe_model` and
:func:`voice_wav` give a cached test ``bpe.model`` and prompt WAV.

Cost on the shared 2-core CPU: building ``IndexTTS2`` ~45 s (peak RSS ~7.3 GB); one run with
16 codes ~65 s quiet / ~2.5 min under load (the GPT has no KV cache under transformers 5,
~2-5 s per code; the CFM's 25 DiT steps ~30-60 s); peak RSS of a build + two runs ~8.3 GB.

Keys of a captured run (reference layouts; B = 1; ``T_w`` w2v-bert frames, ``T_ref`` prompt
mel frames, ``n`` codes, ``T_gen = floor(n·1.72)``):

* ``audio_22k (N22,)``, ``audio_16k (N16,)``: the speaker audio as ``infer_v2`` resamples it;
  ``emo audio_16k (M,)``: the emotion audio (``librosa.load(sr=16000)``);
* ``seamless fbank (1, T_w, 160)``, ``attention mask (1, T_w)``;
* ``W2V-BERT hidden[17] (1, T_w, 1024)``, ``normalized semantic features (1, T_w, 1024)``
  (``spk_cond_emb``); ``emo seamless fbank``, ``emo W2V-BERT hidden[17]``,
  ``emo normalized semantic features`` (``emo_cond_emb``) likewise for the emotion audio;
* ``semantic_codec codes (1, T_w)`` int64, ``semantic_codec S_ref (1, T_w, 1024)``;
* ``ref_mel (1, 80, T_ref)``; ``campplus fbank (1, F, 80)`` (mean removed);
  ``CAMPPlus speaker style (1, 192)``; ``prompt regulator (1, T_ref, 512)`` (``prompt_condition``);
* ``text ids (1, L)`` int32 (one segment); ``emovec (1, 1280)``;
  ``speaker latent (1, 32, 1280)`` (``speech_conditioning_latent``);
* ``codes raw (1, ≤max_mel_tokens)`` int64 (``inference_speech``'s output, stop/pad tokens
  included), ``codes (1, n)`` int64 (cut before the first stop token);
* ``GPT latent (1, n, 1280)`` (``gpt(...)`` output), ``GPT latent proj (1, n, 1024)``
  (``gpt_layer``), ``codes embedding (1, n, 1024)`` (``vq2emb(codes)`` transposed),
  ``S_infer (1, n, 1024)``, ``target length (1,)`` int64,
  ``inference regulator (1, T_gen, 512)`` (``cond``);
* ``CFM noise (1, 80, T_ref + T_gen)`` (the start noise ``z``), ``CFM output (1, 80, T_ref +
  T_gen)``, ``CFM mel (1, 80, T_gen)`` (``vc_target``);
* ``BigVGAN waveform (1, 256·T_gen)`` (float, before the clamp), ``output wav (256·T_gen,)``
  int16 (what ``infer`` returns, 22050 Hz).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import socket
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from parity import checkpoints
from parity.harness import cache_key, cached_arrays, cached_file
from parity.reference import install_torchaudio_shim, reference_module, torchaudio_module

W2V_BERT_REPO = "facebook/w2v-bert-2.0"
BIGVGAN_REPO = "nvidia/bigvgan_v2_22khz_80band_256x"
HUB_FILES = {
    ("amphion/MaskGCT", "semantic_codec/model.safetensors"): checkpoints.semantic_codec_checkpoint,
    ("funasr/campplus", "campplus_cn_common.bin"): checkpoints.campplus_checkpoint,
}
GREEDY = {"num_beams": 1, "top_k": 1}
SAMPLE_RATE = 22050


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _link(target: Path, link: Path) -> None:
    """``link`` → ``target`` (replaced atomically if it points elsewhere)."""
    target = Path(target).resolve()
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    partial = link.with_name(f".{link.name}.partial")
    if partial.is_symlink() or partial.exists():
        partial.unlink()
    partial.symlink_to(target)
    os.replace(partial, link)


def model_dir(bpe_model: Path, seed: int = 0) -> Path:
    """A ``model_dir`` for ``IndexTTS2`` (official config, symlinks to the seeded checkpoints).

    Also holds ``bigvgan/`` (``config.json`` + ``bigvgan_generator.pt``), the local folder the
    patched ``BigVGAN.from_pretrained`` loads. Built once per seed and ``bpe.model`` content.
    """
    cfg = checkpoints.real_config()
    feat1, feat2 = checkpoints.emotion_matrix_checkpoints(seed)
    links = {
        cfg.gpt_checkpoint: checkpoints.gpt_checkpoint(seed),
        cfg.s2mel_checkpoint: checkpoints.s2mel_checkpoint(seed),
        cfg.w2v_stat: checkpoints.semantic_stats_checkpoint(seed),
        cfg.spk_matrix: feat1,
        cfg.emo_matrix: feat2,
        cfg.dataset["bpe_model"]: Path(bpe_model),
        "bigvgan/bigvgan_generator.pt": checkpoints.bigvgan_checkpoint(seed),
    }
    assert (cfg.spk_matrix, cfg.emo_matrix) == ("feat1.pt", "feat2.pt")
    config = cached_file(
        "pipeline_model_dir",
        "config.yaml",
        lambda path: path.write_text(checkpoints.CONFIG_PATH.read_text()),
        config=checkpoints.CONFIG_PATH.read_text(),
        links={name: str(Path(p).resolve()) for name, p in links.items()},
        bpe=_digest(bpe_model),
        seed=seed,
    )
    folder = config.parent
    (folder / "bigvgan").mkdir(exist_ok=True)
    bigvgan_config = folder / "bigvgan" / "config.json"
    if not bigvgan_config.exists():
        partial = bigvgan_config.with_name(".config.json.partial")
        partial.write_text(checkpoints.BIGVGAN_CONFIG_PATH.read_text())
        os.replace(partial, bigvgan_config)
    for name, target in links.items():
        _link(target, folder / name)
    return folder


@contextlib.contextmanager
def no_network() -> Iterator[None]:
    """Any socket connection attempt raises (nothing can be downloaded)."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionRefusedError("parity.pipeline_reference: network access is disabled")

    with (
        mock.patch.object(socket.socket, "connect", refuse),
        mock.patch.object(socket.socket, "connect_ex", refuse),
        mock.patch.object(socket, "create_connection", refuse),
        mock.patch.dict(os.environ, {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}),
    ):
        yield


class _WetextNormalizer:
    """A ``wetext.Normalizer`` answering NeMo's ``normalize(text, verbose=False)``."""

    def __init__(self, **kwargs: Any) -> None:
        from wetext import Normalizer

        self._tn = Normalizer(**kwargs)

    def normalize(self, text: str, verbose: bool = False) -> str:
        return self._tn.normalize(text)


WETEXT_OPTIONS = {
    "en": {"lang": "en", "operator": "tn"},
    "zh": {"lang": "zh", "operator": "tn", "remove_erhua": False},
}


def _load_wetext(self: Any) -> None:
    """``TextNormalizer.load`` with WeText in place of NeMo (same languages)."""
    langs = [self.preferred_language] if self.preferred_language else ["zh", "en"]
    for lang in langs:
        if lang not in self._normalizers:
            self._normalizers[lang] = _WetextNormalizer(**WETEXT_OPTIONS[lang])


class _QwenEmotionStub:
    def __init__(self, model_dir: str) -> None:
        self.model_dir = model_dir

    def inference(self, text: str) -> Any:
        raise NotImplementedError("emo_text (QwenEmotion) is out of scope for the parity pipeline")


def _infer_v2() -> Any:
    install_torchaudio_shim()
    with warnings.catch_warnings():  # infer_v2 changes the global filters on import
        return reference_module("infer_v2")


def build_reference(bpe_model: Path, seed: int = 0) -> Any:
    """``IndexTTS2(model_dir=model_dir(bpe_model, seed), device="cpu", use_fp16=False)``.

    Runs the reference's own ``__init__`` (GPT built at the config and loaded from
    ``gpt.pth``, ``post_init_gpt2_config(kv_cache=True)``; S2Mel, caches 8192; BigVGAN with
    weight norm removed; ...) with only the download points patched (module docstring).
    ~3.5 GB for the GPT + 2.3 GB W2V-BERT + 0.5 GB the rest; free it with ``del`` + ``gc``.
    """
    import torch
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertModel

    from parity.reference_features import W2V_BERT_PREPROCESSOR

    infer_v2 = _infer_v2()
    maskgct_utils = reference_module("utils.maskgct_utils")
    front = reference_module("utils.front")
    bigvgan = reference_module("s2mel.modules.bigvgan.bigvgan")
    folder = model_dir(bpe_model, seed)
    w2vbert_dir = checkpoints.w2vbert_checkpoint(seed).parent
    hub_paths = {key: str(build(seed)) for key, build in HUB_FILES.items()}

    def hub_download(repo_id: str, filename: str, **kwargs: Any) -> str:
        return hub_paths[(repo_id, filename)]

    def extractor(name: str, **kwargs: Any) -> Any:
        assert name == W2V_BERT_REPO, name
        return SeamlessM4TFeatureExtractor(**W2V_BERT_PREPROCESSOR)

    class _Wav2Vec2BertModel:
        @staticmethod
        def from_pretrained(name: str, **kwargs: Any) -> Any:
            assert name == W2V_BERT_REPO, name
            return Wav2Vec2BertModel.from_pretrained(str(w2vbert_dir), **kwargs)

    def vocoder(name: str, use_cuda_kernel: bool = False, **kwargs: Any) -> Any:
        assert name == BIGVGAN_REPO, name
        return bigvgan.BigVGAN._from_pretrained(
            model_id=str(folder / "bigvgan"),
            revision=None,
            cache_dir=None,
            force_download=False,
            local_files_only=True,
            token=None,
            use_cuda_kernel=use_cuda_kernel,
        )

    with (
        no_network(),
        mock.patch.object(infer_v2, "QwenEmotion", _QwenEmotionStub),
        mock.patch.object(infer_v2.SeamlessM4TFeatureExtractor, "from_pretrained", extractor),
        mock.patch.object(maskgct_utils, "Wav2Vec2BertModel", _Wav2Vec2BertModel),
        mock.patch.object(infer_v2, "hf_hub_download", hub_download),
        mock.patch.object(infer_v2.bigvgan.BigVGAN, "from_pretrained", vocoder),
        mock.patch.object(front.TextNormalizer, "load", _load_wetext),
        torch.no_grad(),
    ):
        return infer_v2.IndexTTS2(model_dir=str(folder), device="cpu", use_fp16=False)


class _Recorder:
    """Wraps attributes / adds forward hooks for one run, and undoes it all afterwards."""

    def __init__(self) -> None:
        self.calls: dict[str, list[tuple[tuple, dict, Any]]] = {}
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        original = getattr(owner, attr)
        had_own = attr in vars(owner)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            self.calls.setdefault(name, []).append((args, kwargs, out))
            return out

        setattr(owner, attr, wrapper)
        self._undo.append(
            (lambda: setattr(owner, attr, original)) if had_own else (lambda: delattr(owner, attr))
        )

    def hook(self, module: Any, name: str) -> None:
        def record(mod: Any, args: tuple, kwargs: dict, out: Any) -> None:
            self.calls.setdefault(name, []).append((args, kwargs, out))

        handle = module.register_forward_hook(record, with_kwargs=True)
        self._undo.append(handle.remove)

    def close(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    def one(self, name: str, count: int = 1) -> list[tuple[tuple, dict, Any]]:
        calls = self.calls.get(name, [])
        if len(calls) != count:
            raise AssertionError(f"{name}: expected {count} call(s), got {len(calls)}")
        return calls


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy().copy()


def run_reference(
    tts: Any,
    voice_wav: Path,
    text: str,
    *,
    max_mel_tokens: int,
    noise_seed: int,
    **gen: Any,
) -> dict[str, np.ndarray]:
    """Run ``tts.infer_generator(voice_wav, text, None, max_mel_tokens=..., **gen)`` (greedy-
    equivalent ``num_beams=1, top_k=1`` unless overridden) and capture every stage (keys and
    shapes in the module docstring). The text must make one segment.
    """
    import torch

    tts._init_cache()  # speaker/emotion conditioning is recomputed (and captured) every run
    rec = _Recorder()
    rec.wrap(tts, "extract_features", "extract_features")
    rec.wrap(tts, "get_emb", "get_emb")
    rec.wrap(tts, "mel_fn", "mel_fn")
    rec.wrap(tts.semantic_codec, "quantize", "quantize")
    rec.wrap(tts.semantic_codec.quantizer, "vq2emb", "vq2emb")
    rec.wrap(tts.gpt, "merge_emovec", "merge_emovec")
    rec.wrap(tts.gpt, "inference_speech", "inference_speech")
    rec.hook(tts.semantic_model, "semantic_model")
    rec.hook(tts.campplus_model, "campplus")
    rec.hook(tts.s2mel.models["length_regulator"], "length_regulator")
    rec.hook(tts.gpt, "gpt")
    rec.hook(tts.s2mel.models["gpt_layer"], "gpt_layer")
    rec.hook(tts.bigvgan, "bigvgan")

    cfm = tts.s2mel.models["cfm"]
    cfm_inference = cfm.inference
    noises: list[np.ndarray] = []
    real_randn = torch.randn

    def seeded_randn(*size: Any, **kwargs: Any) -> Any:
        shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], list | tuple) else size
        if noises or len(shape) != 3 or shape[1] != cfm.in_channels:
            raise AssertionError(f"unexpected torch.randn{shape} inside cfm.inference")
        noise = np.random.default_rng(noise_seed).standard_normal(shape).astype(np.float32)
        noises.append(noise)
        return torch.from_numpy(noise.copy())

    def inference(*args: Any, **kwargs: Any) -> Any:
        with mock.patch.object(torch, "randn", seeded_randn):
            out = cfm_inference(*args, **kwargs)
        rec.calls.setdefault("cfm", []).append((args, kwargs, out))
        return out

    cfm.inference = inference
    rec._undo.append(lambda: delattr(cfm, "inference"))
    gen = {**GREEDY, **gen}
    # The shim's ``torchaudio.transforms`` is a bare package: give it the real ``Resample``
    # (``torchaudio.compliance.kaldi`` is importable as is).
    resample = torchaudio_module("transforms._transforms").Resample
    torchaudio_module("compliance.kaldi")
    transforms = torchaudio_module("transforms")
    try:
        with (
            no_network(),
            warnings.catch_warnings(),
            mock.patch.object(transforms, "Resample", resample, create=True),
        ):
            warnings.simplefilter("ignore")
            outputs = list(
                tts.infer_generator(
                    str(voice_wav), text, None, max_mel_tokens=max_mel_tokens, **gen
                )
            )
    finally:
        rec.close()
    assert torch.randn is real_randn
    sample_rate, wav_data = outputs[-1]
    assert sample_rate == SAMPLE_RATE

    (spk_fe, emo_fe) = rec.one("extract_features", 2)
    (spk_w2v, emo_w2v) = rec.one("semantic_model", 2)
    (spk_emb, emo_emb) = rec.one("get_emb", 2)
    ((_, _, (sem_codes, s_ref)),) = rec.one("quantize")
    ((mel_args, _, ref_mel),) = rec.one("mel_fn")
    ((camp_args, _, style),) = rec.one("campplus")
    prompt_call, infer_call = rec.one("length_regulator", 2)
    ((_, _, emovec),) = rec.one("merge_emovec")
    ((speech_args, _, (codes_raw, spk_latent)),) = rec.one("inference_speech")
    ((gpt_args, _, latent),) = rec.one("gpt")
    ((_, _, latent_proj),) = rec.one("gpt_layer")
    ((_, _, codes_emb),) = rec.one("vq2emb")
    ((_, _, cfm_out),) = rec.one("cfm")
    ((voc_args, _, wave),) = rec.one("bigvgan")
    assert len(noises) == 1

    stages = {
        "audio_22k": mel_args[0][0],
        "audio_16k": spk_fe[0][0][0],
        "emo audio_16k": emo_fe[0][0][0],
        "seamless fbank": spk_fe[2]["input_features"],
        "attention mask": spk_fe[2]["attention_mask"],
        "W2V-BERT hidden[17]": spk_w2v[2].hidden_states[17],
        "normalized semantic features": spk_emb[2],
        "emo seamless fbank": emo_fe[2]["input_features"],
        "emo W2V-BERT hidden[17]": emo_w2v[2].hidden_states[17],
        "emo normalized semantic features": emo_emb[2],
        "semantic_codec codes": sem_codes,
        "semantic_codec S_ref": s_ref,
        "ref_mel": ref_mel,
        "campplus fbank": camp_args[0],
        "CAMPPlus speaker style": style,
        "prompt regulator": prompt_call[2][0],
        "text ids": speech_args[1],
        "emovec": emovec,
        "speaker latent": spk_latent,
        "codes raw": codes_raw,
        "codes": gpt_args[3],
        "GPT latent": latent,
        "GPT latent proj": latent_proj,
        "codes embedding": codes_emb.transpose(1, 2),
        "S_infer": infer_call[0][0],
        "target length": infer_call[1]["ylens"],
        "inference regulator": infer_call[2][0],
        "CFM noise": noises[0],
        "CFM output": cfm_out,
        "CFM mel": voc_args[0],
        "BigVGAN waveform": wave[:, 0],
        "output wav": np.asarray(wav_data)[:, 0].copy(),
    }
    # the tensors as numpy copies; the noise and the wav are numpy already
    return {k: v if isinstance(v, np.ndarray) else _np(v) for k, v in stages.items()}


def reference_pipeline(
    voice_wav: Path,
    text: str,
    *,
    bpe_model: Path,
    seed: int = 0,
    max_mel_tokens: int = 40,
    noise_seeds: Sequence[int] = (0,),
    **gen: Any,
) -> list[dict[str, np.ndarray]]:
    """Cached :func:`run_reference` results, one dict per noise seed, all from one ``IndexTTS2``
    (built only on a cache miss, freed afterwards). Keyed by the voice file's and
    ``bpe.model``'s content, the text, the checkpoints' cache folders, the settings."""
    folders = sorted(
        Path(p).resolve().parent.name
        for p in (
            checkpoints.gpt_checkpoint(seed),
            checkpoints.s2mel_checkpoint(seed),
            checkpoints.w2vbert_checkpoint(seed),
            checkpoints.bigvgan_checkpoint(seed),
            checkpoints.semantic_codec_checkpoint(seed),
            checkpoints.campplus_checkpoint(seed),
            checkpoints.semantic_stats_checkpoint(seed),
            *checkpoints.emotion_matrix_checkpoints(seed),
        )
    )

    def compute() -> Mapping[str, np.ndarray]:
        tts = build_reference(bpe_model, seed)
        try:
            flat = {}
            for i, noise_seed in enumerate(noise_seeds):
                run = run_reference(
                    tts,
                    voice_wav,
                    text,
                    max_mel_tokens=max_mel_tokens,
                    noise_seed=noise_seed,
                    **gen,
                )
                flat.update({f"{i}/{k}": v for k, v in run.items()})
            return flat
        finally:
            del tts
            gc.collect()

    arrays = cached_arrays(
        "pipeline_reference",
        compute,
        voice=_digest(voice_wav),
        text=text,
        bpe=_digest(bpe_model),
        checkpoints=folders,
        config=cache_key(config=checkpoints.CONFIG_PATH.read_text()),
        max_mel_tokens=max_mel_tokens,
        noise_seeds=list(noise_seeds),
        gen=sorted({**GREEDY, **gen}.items()),
        wetext=_wetext_version(),
    )
    runs: list[dict[str, np.ndarray]] = [{} for _ in noise_seeds]
    for key, value in arrays.items():
        index, _, name = key.partition("/")
        runs[int(index)][name] = value
    return runs


def _wetext_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wetext")
    except PackageNotFoundError:
        return "missing"


_BPE_WORDS = (
    "the quick brown fox jumps over lazy dog hello there how are you today world river "
    "bank near a it was bright cold day in april clocks were striking thirteen"
).upper()


def tiny_bpe_model(vocab_size: int = 300) -> Path:
    """A tiny English ``bpe.model`` (BPE, 400 generated upper-case lines; ids 0/1/2 =
    ``<s>``/``</s>``/``<unk>`` as the official model), cached. Covers e.g. ``"Hello there,
    how are you today?"`` without unknown pieces."""
    from indextts_mlx.testing import train_bpe_model

    words = _BPE_WORDS.split()
    lines = [
        " ".join(words[(i * 7 + k * 5) % len(words)] for k in range(10)) + ".,!?"[i % 4]
        for i in range(400)
    ]

    def build(path: Path) -> None:
        train_bpe_model(lines, path, vocab_size, hard_vocab_limit=False)

    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
    return cached_file("pipeline-bpe", "bpe.model", build, corpus=digest, vocab=vocab_size)


def voice_wav(name: str = "speech_hello") -> Path:
    """The clip ``name`` (:mod:`clips`) as a 22,050 Hz PCM-16 WAV file, cached."""
    from clips import clip_wav

    return cached_file(
        "pipeline-voice", f"{name}.wav", lambda path: clip_wav(name, path.parent), clip=name
    )
