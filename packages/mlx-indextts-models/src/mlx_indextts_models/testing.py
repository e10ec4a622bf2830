"""Tiny model configurations for tests: one per model, the single source of the small
sizes that the model tests, the weight-mapping tests and the tiny pipeline weights
(``indextts_mlx.testing.write_tiny_weights``) build their models at.

Each ``tiny_*_args()`` returns a fresh dataclass, so a test that needs another size says
so where it uses it: ``dataclasses.replace(tiny_dit_args(), depth=5)``. The values are
small enough that a model builds and runs in milliseconds, and different from one another
where a mix-up of two sizes must show (widths, heads, layers, kernels). Tests derive
hand-computed expectations from these values: changing one changes what they compute, so
a change here is a change of those tests.

Pure configurations: nothing here builds a model, draws weights or touches a file.
"""

from __future__ import annotations

from mlx_indextts_models.bigvgan import BigVGANArgs
from mlx_indextts_models.campplus import CAMPPlusArgs
from mlx_indextts_models.conformer import ConformerArgs
from mlx_indextts_models.gpt import UnifiedVoiceArgs
from mlx_indextts_models.gpt2 import GPT2Args
from mlx_indextts_models.gpt_conditioning import ConditionModuleArgs, GPTConditioningArgs
from mlx_indextts_models.perceiver import PerceiverArgs
from mlx_indextts_models.s2mel.dit import DiTArgs
from mlx_indextts_models.s2mel.model import S2MelArgs
from mlx_indextts_models.s2mel.regulator import RegulatorArgs
from mlx_indextts_models.s2mel.wavenet import WaveNetArgs
from mlx_indextts_models.semantic_codec import SemanticCodecArgs
from mlx_indextts_models.w2vbert import W2VBertArgs


def tiny_w2vbert_args() -> W2VBertArgs:
    """W2V-BERT: width 8, 2 heads of 4, FFN 16, 6-wide input features, relative positions
    3 left / 2 right (6 distances), depthwise kernel 5, 2 layers."""
    return W2VBertArgs(
        hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
        feature_projection_input_dim=6, conv_depthwise_kernel_size=5,
        left_max_position_embeddings=3, right_max_position_embeddings=2,
    )  # fmt: skip


def tiny_semantic_codec_args() -> SemanticCodecArgs:
    """MaskGCT semantic codec (RepCodec): 6-wide input, 5 codes of dimension 2, a Vocos
    encoder of width 4 (FFN 8) and 2 layers."""
    return SemanticCodecArgs(
        codebook_size=5, hidden_size=6, codebook_dim=2,
        vocos_dim=4, vocos_intermediate_dim=8, vocos_num_layers=2,
    )  # fmt: skip


def tiny_campplus_args() -> CAMPPlusArgs:
    """CAMPPlus: 16 fbank bins, 6-d embedding, growth 4, two head blocks (2, 1), two
    D-TDNN blocks of 2 and 3 layers (kernel 3; dilations 1 and 2), segments of 4 frames."""
    return CAMPPlusArgs(
        feat_dim=16, embedding_size=6, growth_rate=4, bn_size=2, init_channels=8, m_channels=4,
        head_num_blocks=(2, 1), seg_len=4,
        block_num_layers=(2, 3), block_kernel_sizes=(3, 3), block_dilations=(1, 2),
    )  # fmt: skip


def tiny_gpt2_args() -> GPT2Args:
    """GPT-2 stack: width 32, 3 blocks, 4 heads, 64 positions."""
    return GPT2Args(n_embd=32, n_layer=3, n_head=4, n_positions=64)


def tiny_conformer_args() -> ConformerArgs:
    """Conformer encoder: 9-wide input, width 8, 2 heads, FFN 12, 2 blocks, conv kernel 5."""
    return ConformerArgs(
        input_size=9, output_size=8, attention_heads=2, linear_units=12, num_blocks=2,
        cnn_module_kernel=5,
    )  # fmt: skip


def tiny_condition_module_args() -> ConditionModuleArgs:
    """A GPT condition module: a Conformer of width 16, FFN 32, 2 heads and 1 block (its
    ``conv2d2`` subsampling), then a Perceiver of FF multiplier 2."""
    return ConditionModuleArgs(output_size=16, linear_units=32, attention_heads=2, num_blocks=1)


def tiny_gpt_conditioning_args() -> GPTConditioningArgs:
    """GPT conditioning: width 12, 3 speaker latents, 9-wide features, 10-wide emotion
    latents; speaker and emotion Conformers of width 8 and 2 heads that differ (FFN 12 and
    2 blocks; FFN 10 and 1 block), so a mix-up of the two shows."""
    return GPTConditioningArgs(
        model_dim=12, condition_num_latent=3, feature_size=9, emo_dim=10,
        condition_module=ConditionModuleArgs(
            output_size=8, linear_units=12, attention_heads=2, num_blocks=2),
        emo_condition_module=ConditionModuleArgs(
            output_size=8, linear_units=10, attention_heads=2, num_blocks=1),
    )  # fmt: skip


def tiny_gpt_args() -> UnifiedVoiceArgs:
    """The whole GPT (``UnifiedVoice``): width 12 (:func:`tiny_gpt_conditioning_args`), 2
    heads, 2 layers, 5 mel / 4 text positions, 6 text tokens, 10 mel codes (start 8, stop 9)."""
    return UnifiedVoiceArgs(
        model_dim=12, heads=2, layers=2, max_mel_tokens=5, max_text_tokens=4,
        number_text_tokens=6, number_mel_codes=10, start_mel_token=8, stop_mel_token=9,
        conditioning=tiny_gpt_conditioning_args(),
    )  # fmt: skip


def tiny_perceiver_args() -> PerceiverArgs:
    """Perceiver resampler: width 12 over an 8-wide context, 3 latents, 2 heads of 4,
    FF multiplier 2 (inner width 16)."""
    return PerceiverArgs(dim=12, dim_context=8, num_latents=3, dim_head=4, heads=2, ff_mult=2)


def tiny_regulator_args() -> RegulatorArgs:
    """S2Mel length regulator: 6-wide input, 8 channels, two conv blocks."""
    return RegulatorArgs(channels=8, in_channels=6, sampling_ratios=(1, 1))


def tiny_dit_args() -> DiTArgs:
    """S2Mel DiT estimator: width 16, 2 heads, 3 blocks, 4 mel channels, 8-wide content;
    its WaveNet head is :func:`tiny_wavenet_args` (the same width, as upstream needs)."""
    return DiTArgs(hidden_dim=16, num_heads=2, depth=3, in_channels=4, content_dim=8)


def tiny_wavenet_args() -> WaveNetArgs:
    """S2Mel WaveNet head: width 16 (= :func:`tiny_dit_args`' width), 2 layers, kernel 5."""
    return WaveNetArgs(hidden_dim=16, num_layers=2, kernel_size=5)


def tiny_s2mel_args() -> S2MelArgs:
    """S2Mel: :func:`tiny_dit_args` with :func:`tiny_wavenet_args`, the regulator of
    :func:`tiny_regulator_args` (its 8 channels are the DiT's content width) and a GPT
    projection 12 → 10 → 8 → 6 (:func:`tiny_gpt_args`' width to the regulator's input)."""
    return S2MelArgs(
        dit=tiny_dit_args(), wavenet=tiny_wavenet_args(), regulator=tiny_regulator_args(),
        gpt_layer=(12, 10, 8, 6),
    )  # fmt: skip


def tiny_bigvgan_args() -> BigVGANArgs:
    """BigVGAN: 6 mel bins, two ×2 upsampling stages (kernel 4) from 8 channels, two
    resblock kinds (kernel 3, dilations 1, 3; kernel 5, dilations 1, 2): 4× upsampling."""
    return BigVGANArgs(
        num_mels=6, upsample_rates=(2, 2), upsample_kernel_sizes=(4, 4),
        upsample_initial_channel=8,
        resblock_kernel_sizes=(3, 5), resblock_dilation_sizes=((1, 3), (1, 2)),
    )  # fmt: skip


__all__ = [
    "tiny_bigvgan_args",
    "tiny_campplus_args",
    "tiny_condition_module_args",
    "tiny_conformer_args",
    "tiny_dit_args",
    "tiny_gpt2_args",
    "tiny_gpt_args",
    "tiny_gpt_conditioning_args",
    "tiny_perceiver_args",
    "tiny_regulator_args",
    "tiny_s2mel_args",
    "tiny_semantic_codec_args",
    "tiny_w2vbert_args",
    "tiny_wavenet_args",
]
