"""Seeded random checkpoints at the real IndexTTS-2 config, in the official formats and names.

The official weights cannot be downloaded here, so parity runs on checkpoints the
reference code itself builds (real config, seeded random init, see
:func:`parity.harness.seeded_module`) and saves exactly as the official files are stored
(``docs/checkpoints.md``). Each builder returns the cached file's path; the
cache key covers the config, the seed and the reference version.

Builders for the large models (GPT, W2V-BERT, S2Mel, BigVGAN) are added with their ports.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from parity.harness import cached_file, save_safetensors, save_torch, seeded_module
from parity.reference import reference_module

CONFIG_PATH = Path(__file__).resolve().parent / "data" / "indextts2-config.yaml"
EMO_NUM = (3, 17, 2, 8, 4, 5, 10, 24)  # rows of feat1/feat2 per emotion (73 in all)


def real_config() -> Any:
    """The official ``checkpoints/config.yaml`` (an OmegaConf object, as the reference uses)."""
    from omegaconf import OmegaConf

    return OmegaConf.load(CONFIG_PATH)


def _config_text() -> str:
    return CONFIG_PATH.read_text()


def campplus_module(seed: int = 0) -> Any:
    """``CAMPPlus(feat_dim=80, embedding_size=192)``, seeded."""
    dtdnn = reference_module("s2mel.modules.campplus.DTDNN")
    return seeded_module(lambda: dtdnn.CAMPPlus(feat_dim=80, embedding_size=192), seed)


def campplus_checkpoint(seed: int = 0) -> Path:
    """``campplus_cn_common.bin``: a plain state dict, torch zip container."""
    return cached_file(
        "campplus",
        "campplus_cn_common.bin",
        lambda path: save_torch(campplus_module(seed).state_dict(), path),
        config="CAMPPlus(feat_dim=80, embedding_size=192)",
        seed=seed,
    )


def semantic_codec_module(seed: int = 0) -> Any:
    """MaskGCT ``RepCodec`` at ``cfg.semantic_codec``, seeded."""
    maskgct = reference_module("utils.maskgct_utils")
    return seeded_module(lambda: maskgct.build_semantic_codec(real_config().semantic_codec), seed)


def semantic_codec_checkpoint(seed: int = 0) -> Path:
    """``semantic_codec/model.safetensors`` of ``amphion/MaskGCT`` (flat state dict)."""
    return cached_file(
        "semantic_codec",
        "model.safetensors",
        lambda path: save_safetensors(semantic_codec_module(seed).state_dict(), path),
        config=_config_text(),
        seed=seed,
    )


def semantic_stats_checkpoint(seed: int = 0) -> Path:
    """``wav2vec2bert_stats.pt``: ``{'mean': (1024,), 'var': (1024,)}``, var > 0."""
    import torch

    def build(path: Path) -> None:
        generator = torch.Generator().manual_seed(seed)
        mean = 0.5 * torch.randn(1024, generator=generator)
        var = 0.5 + torch.rand(1024, generator=generator)
        save_torch({"mean": mean, "var": var}, path)

    return cached_file("semantic_stats", "wav2vec2bert_stats.pt", build, seed=seed)


def emotion_matrix_checkpoints(seed: int = 0) -> tuple[Path, Path]:
    """``feat1.pt`` (speaker matrix, (73, 192)) and ``feat2.pt`` (emotion matrix, (73, 1280))."""
    import torch

    def build(dim: int, offset: int):
        def _build(path: Path) -> None:
            generator = torch.Generator().manual_seed(seed * 2 + offset)
            save_torch(torch.randn(sum(EMO_NUM), dim, generator=generator), path)

        return _build

    feat1 = cached_file("spk_matrix", "feat1.pt", build(192, 0), seed=seed)
    feat2 = cached_file("emo_matrix", "feat2.pt", build(1280, 1), seed=seed)
    return feat1, feat2


def w2vbert_module(seed: int = 0) -> Any:
    """``Wav2Vec2BertModel(Wav2Vec2BertConfig())``: the defaults are ``facebook/w2v-bert-2.0``'s
    architecture (24 layers, hidden 1024, relative-key attention), seeded, eval mode."""
    from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel

    return seeded_module(lambda: Wav2Vec2BertModel(Wav2Vec2BertConfig()), seed)


def w2vbert_checkpoint(seed: int = 0) -> Path:
    """``facebook/w2v-bert-2.0`` ``model.safetensors`` (773 keys, no ``wav2vec2_bert.`` prefix).

    ``config.json`` (``Wav2Vec2BertConfig()``) is written beside it, so the folder loads
    as the reference loads the hub model: ``Wav2Vec2BertModel.from_pretrained(path.parent)``.
    The checkpoint is 2.3 GB; it is built once per seed and reference version.
    """
    from transformers import Wav2Vec2BertConfig

    config = Wav2Vec2BertConfig()

    def build(path: Path) -> None:
        module = w2vbert_module(seed)
        save_safetensors(module.state_dict(), path)
        del module

    path = cached_file(
        "w2vbert", "model.safetensors", build, config=config.to_json_string(), seed=seed
    )
    config_path = path.with_name("config.json")
    if not config_path.exists():
        partial = path.with_name(".config.json.partial")
        config.to_json_file(partial)
        os.replace(partial, config_path)
    return path


def gpt_module(seed: int = 0) -> Any:
    """``UnifiedVoice(**cfg.gpt)`` (871M parameters), seeded, as ``infer_v2`` builds it."""
    model_v2 = reference_module("gpt.model_v2")
    return seeded_module(lambda: model_v2.UnifiedVoice(**real_config().gpt), seed)


def gpt_checkpoint(seed: int = 0) -> Path:
    """``gpt.pth``: a plain state dict, torch zip container (~3.5 GB; built once, ~1 min).

    ``utils/checkpoint.py: load_checkpoint`` unwraps a ``'model'`` key when present; the
    official file's wrapping is unverified, so the plain form is used.
    """

    def build(path: Path) -> None:
        module = gpt_module(seed)
        save_torch(module.state_dict(), path)
        del module

    return cached_file("gpt", "gpt.pth", build, config=_config_text(), seed=seed)


def s2mel_module(seed: int = 0) -> Any:
    """``MyModel(cfg.s2mel, use_gpt_latent=True)`` (CFM DiT, length regulator, gpt_layer),
    seeded, as ``infer_v2._load_s2mel`` builds it."""
    commons = reference_module("s2mel.modules.commons")
    return seeded_module(lambda: commons.MyModel(real_config().s2mel, use_gpt_latent=True), seed)


def s2mel_checkpoint(seed: int = 0) -> Path:
    """``s2mel.pth``: ``{'net': {'cfm': sd, 'length_regulator': sd, 'gpt_layer': sd}}``, torch
    zip container, as ``load_checkpoint2`` reads it (~415 MB; built once)."""

    def build(path: Path) -> None:
        module = s2mel_module(seed)
        save_torch({"net": {name: m.state_dict() for name, m in module.models.items()}}, path)
        del module

    return cached_file("s2mel", "s2mel.pth", build, config=_config_text(), seed=seed)


BIGVGAN_CONFIG_PATH = Path(__file__).resolve().parent / "data" / "bigvgan_v2_22khz_80band_256x.json"


def bigvgan_config() -> Any:
    """``config.json`` of ``nvidia/bigvgan_v2_22khz_80band_256x`` as the reference reads it
    (``load_hparams_from_json``: an ``AttrDict``)."""
    import json

    env = reference_module("s2mel.modules.bigvgan.env")
    return env.AttrDict(json.loads(BIGVGAN_CONFIG_PATH.read_text()))


def bigvgan_module(seed: int = 0) -> Any:
    """``BigVGAN(h)`` at the official config, seeded, WITH weight norm (as saved).

    The log-scale SnakeBeta ``alpha``/``beta`` (initialised to zeros) get small seeded
    values (0.1·N(0, 1): periods and magnitudes within ~±30 % of 1) by the harness's
    perturbation of constant parameters.
    """
    bigvgan = reference_module("s2mel.modules.bigvgan.bigvgan")
    return seeded_module(lambda: bigvgan.BigVGAN(bigvgan_config(), use_cuda_kernel=False), seed)


def bigvgan_checkpoint(seed: int = 0) -> Path:
    """``bigvgan_generator.pt``: ``{'generator': state_dict}`` with weight norm
    (``*.weight_g``/``*.weight_v``, 783 keys, ~450 MB), torch zip container."""

    def build(path: Path) -> None:
        module = bigvgan_module(seed)
        save_torch({"generator": module.state_dict()}, path)
        del module

    return cached_file(
        "bigvgan",
        "bigvgan_generator.pt",
        build,
        config=BIGVGAN_CONFIG_PATH.read_text(),
        seed=seed,
    )


def bigvgan_reference(seed: int = 0) -> Any:
    """The reference vocoder as ``infer_v2`` loads it: built at the config, the checkpoint's
    ``'generator'`` loaded, ``remove_weight_norm()``, eval mode."""
    import torch

    bigvgan = reference_module("s2mel.modules.bigvgan.bigvgan")
    torch.manual_seed(seed)
    model = bigvgan.BigVGAN(bigvgan_config(), use_cuda_kernel=False)
    state = torch.load(bigvgan_checkpoint(seed), map_location="cpu", weights_only=True)
    model.load_state_dict(state["generator"])
    model.remove_weight_norm()
    return model.eval()


def s2mel_training_checkpoint(seed: int = 0) -> Path:
    """:func:`s2mel_checkpoint` as a training run saves it: ``net`` plus the training state
    upstream's ``s2mel`` trainer (seed-vc) writes beside it: one AdamW state dict per
    sub-model (``exp_avg``/``exp_avg_sq`` per parameter, about 2x the weights), the
    schedulers' state, ``iters`` and ``epoch`` (~1.2 GB; built once)."""

    def build(path: Path) -> None:
        import torch

        net = torch.load(s2mel_checkpoint(seed), map_location="cpu", weights_only=True)["net"]
        optimizers, schedulers = {}, {}
        generator = torch.Generator().manual_seed(seed + 1)
        for name, state in net.items():
            params = [
                torch.nn.Parameter(v.clone()) for v in state.values() if v.is_floating_point()
            ]
            optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.98), eps=1e-9)
            scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.999996)
            for p in params:
                p.grad = torch.randn(p.shape, generator=generator) * 1e-3
            optimizer.step()
            scheduler.step()
            optimizers[name], schedulers[name] = optimizer.state_dict(), scheduler.state_dict()
            del params, optimizer, scheduler
        save_torch(
            {
                "net": net,
                "optimizer": optimizers,
                "scheduler": schedulers,
                "iters": 123_456,
                "epoch": 42,
            },
            path,
        )

    return cached_file(
        "s2mel_training", "s2mel.pth", build, config=_config_text(), seed=seed, version=2
    )
