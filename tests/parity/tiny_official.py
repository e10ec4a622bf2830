"""A small set of the official IndexTTS-2 files, built by the reference code itself.

Every file the first run fetches (``indextts_weights.download.OFFICIAL_FILES``: ten
checkpoints and three config files) in its official repository, name, container and key
layout, with seeded random weights of models the reference builds from config files that
describe small sizes: ``config.yaml`` (:func:`config_yaml`: the official one with
:data:`GPT`, :data:`S2MEL` and :data:`CODEC` written in) and the two ``config.json``.

Small, not tiny: upstream hard-codes some widths (the GPT reads 1024-wide W2V-BERT
features and feeds S2Mel's ``gpt_layer`` 1280-wide latents; CAMPPlus is always
``CAMPPlus(feat_dim=80, embedding_size=192)``), so the GPT is 1280 wide (one layer) and
W2V-BERT 1024 wide (17 layers, as IndexTTS-2 reads ``hidden_states[17]``). To keep the
download small, ``gpt.pth`` is stored in bfloat16 and W2V-BERT's ``model.safetensors`` in
float16 (the converter widens both to float32): about 400 MB in all. Built once per seed
and reference version (:func:`parity.harness.cached_file`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from indextts_mlx.testing import BPE_VOCAB, write_bpe_model
from indextts_weights.source_config import config_with, load_yaml
from mlx_indextts_models.emotion import EMO_NUM
from mlx_indextts_models.gpt import UnifiedVoiceArgs
from mlx_indextts_models.gpt_conditioning import ConditionModuleArgs, GPTConditioningArgs
from mlx_indextts_models.s2mel.dit import DiTArgs
from mlx_indextts_models.s2mel.model import S2MelArgs
from mlx_indextts_models.s2mel.regulator import RegulatorArgs
from mlx_indextts_models.s2mel.wavenet import WaveNetArgs
from mlx_indextts_models.semantic_codec import SemanticCodecArgs
from parity.checkpoints import BIGVGAN_CONFIG_PATH, CONFIG_PATH, campplus_checkpoint
from parity.harness import cached_file, save_safetensors, save_torch, seeded_module
from parity.reference import reference_module

_MODULE = ConditionModuleArgs(output_size=16, linear_units=32, attention_heads=2, num_blocks=1)
#: The GPT: 1280 wide (S2Mel's gpt_layer reads 1280), 2 heads, 1 layer, short tables.
GPT = UnifiedVoiceArgs(
    model_dim=1280,
    heads=2,
    layers=1,
    max_mel_tokens=60,
    max_text_tokens=40,
    number_text_tokens=BPE_VOCAB,
    conditioning=GPTConditioningArgs(
        model_dim=1280, condition_module=_MODULE, emo_condition_module=_MODULE
    ),
)
#: S2Mel: a DiT of width 32 (2 heads, 2 blocks), WaveNet of 2 layers, a 16-channel regulator
#: over the 1024-wide semantic features.
S2MEL = S2MelArgs(
    dit=DiTArgs(hidden_dim=32, num_heads=2, depth=2, content_dim=16),
    wavenet=WaveNetArgs(hidden_dim=32, num_layers=2),
    regulator=RegulatorArgs(channels=16),
)
#: The semantic codec: the 8192 codes of 8 dims over 1024-wide features, a small encoder.
CODEC = SemanticCodecArgs(vocos_dim=16, vocos_intermediate_dim=32, vocos_num_layers=1)
#: ``config.json`` of W2V-BERT (``Wav2Vec2BertConfig`` fields; its defaults otherwise).
W2VBERT = {"num_hidden_layers": 17, "num_attention_heads": 2, "intermediate_size": 8}
#: ``config.json`` of BigVGAN: the official one with a narrow generator (still 256×).
BIGVGAN = {
    "upsample_initial_channel": 64,
    "resblock_kernel_sizes": [3],
    "resblock_dilation_sizes": [[1, 3, 5]],
}

INDEXTTS = "IndexTeam/IndexTTS-2"
W2V_REPO = "facebook/w2v-bert-2.0"
BIGVGAN_REPO = "nvidia/bigvgan_v2_22khz_80band_256x"


def config_yaml() -> str:
    """The official ``config.yaml`` with :data:`GPT`, :data:`S2MEL` and :data:`CODEC`."""
    import yaml

    config = config_with(load_yaml(CONFIG_PATH), gpt=GPT, s2mel=S2MEL, semantic_codec=CODEC)
    return yaml.safe_dump(config, sort_keys=False)


def w2vbert_config_json() -> str:
    from transformers import Wav2Vec2BertConfig

    return Wav2Vec2BertConfig(**W2VBERT).to_json_string()


def bigvgan_config_json() -> str:
    return json.dumps({**json.loads(BIGVGAN_CONFIG_PATH.read_text()), **BIGVGAN}, indent=2)


def _cfg() -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.create(config_yaml())


def _cached(name: str, filename: str, build: Any, seed: int) -> Path:
    key = {"yaml": config_yaml(), "w2v": W2VBERT, "bigvgan": BIGVGAN}
    return cached_file(f"tiny-{name}", filename, build, config=key, seed=seed)


def _gpt(path: Path, seed: int) -> None:
    import torch

    model_v2 = reference_module("gpt.model_v2")
    module = seeded_module(lambda: model_v2.UnifiedVoice(**_cfg().gpt), seed)
    save_torch(module.to(torch.bfloat16).state_dict(), path)


def _s2mel(path: Path, seed: int) -> None:
    commons = reference_module("s2mel.modules.commons")
    module = seeded_module(lambda: commons.MyModel(_cfg().s2mel, use_gpt_latent=True), seed)
    save_torch({"net": {name: m.state_dict() for name, m in module.models.items()}}, path)


def _codec(path: Path, seed: int) -> None:
    maskgct = reference_module("utils.maskgct_utils")
    module = seeded_module(lambda: maskgct.build_semantic_codec(_cfg().semantic_codec), seed)
    save_safetensors(module.state_dict(), path)


def _w2vbert(path: Path, seed: int) -> None:
    import torch
    from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel

    module = seeded_module(lambda: Wav2Vec2BertModel(Wav2Vec2BertConfig(**W2VBERT)), seed)
    save_safetensors(module.to(torch.float16).state_dict(), path)


def _bigvgan(path: Path, seed: int) -> None:
    bigvgan = reference_module("s2mel.modules.bigvgan.bigvgan")
    env = reference_module("s2mel.modules.bigvgan.env")
    h = env.AttrDict(json.loads(bigvgan_config_json()))
    module = seeded_module(lambda: bigvgan.BigVGAN(h, use_cuda_kernel=False), seed)
    save_torch({"generator": module.state_dict()}, path)


def _tables(folder: Path, seed: int) -> None:
    """``wav2vec2bert_stats.pt`` (1024), ``feat1.pt`` (73, 192), ``feat2.pt`` (73, 1280)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    mean = 0.5 * torch.randn(1024, generator=generator)
    var = 0.5 + torch.rand(1024, generator=generator)
    save_torch({"mean": mean, "var": var}, folder / "wav2vec2bert_stats.pt")
    save_torch(torch.randn(sum(EMO_NUM), 192, generator=generator), folder / "feat1.pt")
    save_torch(torch.randn(sum(EMO_NUM), GPT.model_dim, generator=generator), folder / "feat2.pt")


def official_files(seed: int = 0) -> dict[tuple[str, str], bytes]:
    """``(repo id, file name)`` → bytes, for every file of ``OFFICIAL_FILES``."""

    def tables(path: Path) -> None:  # one cached folder for the three tables and bpe.model
        path.mkdir()
        _tables(path, seed)
        write_bpe_model(path / "bpe.model")

    table_dir = _cached("tables", "tables", tables, seed)
    paths = {
        (INDEXTTS, "gpt.pth"): _cached("gpt", "gpt.pth", lambda p: _gpt(p, seed), seed),
        (INDEXTTS, "s2mel.pth"): _cached("s2mel", "s2mel.pth", lambda p: _s2mel(p, seed), seed),
        ("amphion/MaskGCT", "semantic_codec/model.safetensors"): _cached(
            "codec", "model.safetensors", lambda p: _codec(p, seed), seed
        ),
        ("funasr/campplus", "campplus_cn_common.bin"): campplus_checkpoint(seed),
        (W2V_REPO, "model.safetensors"): _cached(
            "w2vbert", "model.safetensors", lambda p: _w2vbert(p, seed), seed
        ),
        (BIGVGAN_REPO, "bigvgan_generator.pt"): _cached(
            "bigvgan", "bigvgan_generator.pt", lambda p: _bigvgan(p, seed), seed
        ),
    }
    paths |= {
        (INDEXTTS, name): table_dir / name
        for name in ("wav2vec2bert_stats.pt", "feat1.pt", "feat2.pt", "bpe.model")
    }
    files = {key: path.read_bytes() for key, path in paths.items()}
    files[INDEXTTS, "config.yaml"] = config_yaml().encode()
    files[W2V_REPO, "config.json"] = w2vbert_config_json().encode()
    files[BIGVGAN_REPO, "config.json"] = bigvgan_config_json().encode()
    return files
