"""Pure MLX model definitions for IndexTTS-2 (no file I/O).

Importing this package first runs the fast-BLAS bootstrap of ``mlx_audio_features`` so
that MLX uses an optimized BLAS on Linux CPU. Every model of the synthesis is here, each
with its ``Args`` dataclass (IndexTTS-2's configuration by default; :func:`from_dict`
builds one from a record):

* the speaker/semantic encoders: W2V-BERT 2.0, the MaskGCT semantic codec, CAMPPlus;
* the GPT (``UnifiedVoice``): conformer/perceiver conditioning, emotion vectors, GPT-2
  with a KV cache, HF-exact sampling and beam search, the latent pass;
* S2Mel (``S2Mel``): the length regulator, the DiT estimator with its WaveNet head, the
  flow-matching sampler (``CFM``) and ``gpt_layer``;
* the BigVGAN v2 vocoder.

Shared building blocks are in :mod:`mlx_indextts_models.layers` (convolutions as matmuls,
BatchNorm folding) and :mod:`mlx_indextts_models.cpu_ops` (numpy fast paths on the CPU).
"""

from mlx_audio_features.fast_blas import blas_status, ensure_fast_blas

ensure_fast_blas()

from mlx_indextts_models.bigvgan import BigVGAN, BigVGANArgs  # noqa: E402
from mlx_indextts_models.cache import KVCache  # noqa: E402
from mlx_indextts_models.campplus import CAMPPlus, CAMPPlusArgs  # noqa: E402
from mlx_indextts_models.config import ConfigError, VectorArgs, from_dict, to_dict  # noqa: E402
from mlx_indextts_models.conformer import ConformerArgs, ConformerEncoder  # noqa: E402
from mlx_indextts_models.emotion import (  # noqa: E402
    EMO_NUM,
    EMOTIONS,
    blend_emotion_vector,
    emotion_matrix_vector,
)
from mlx_indextts_models.gpt import (  # noqa: E402
    DecodeStep,
    GeneratedCodes,
    UnifiedVoice,
    UnifiedVoiceArgs,
    s_infer,
)
from mlx_indextts_models.gpt2 import GPT2Args, GPT2Model  # noqa: E402
from mlx_indextts_models.gpt_conditioning import (  # noqa: E402
    REFERENCE_LENGTH,
    ConditionModuleArgs,
    GPTConditioning,
    GPTConditioningArgs,
)
from mlx_indextts_models.perceiver import PerceiverArgs, PerceiverResampler  # noqa: E402
from mlx_indextts_models.s2mel.cfm import CFG_RATE, CFM, CFM_STEPS, CFMSettings  # noqa: E402
from mlx_indextts_models.s2mel.dit import DiT, DiTArgs  # noqa: E402
from mlx_indextts_models.s2mel.model import (  # noqa: E402
    GPT_LAYER_DIMS,
    GPTLayer,
    S2Mel,
    S2MelArgs,
)
from mlx_indextts_models.s2mel.regulator import (  # noqa: E402
    FRAMES_PER_CODE,
    InterpolateRegulator,
    RegulatorArgs,
    target_lengths,
)
from mlx_indextts_models.s2mel.wavenet import WN, WaveNetArgs  # noqa: E402
from mlx_indextts_models.sampling import GenerationConfig, Sampler  # noqa: E402
from mlx_indextts_models.semantic_codec import RepCodec, SemanticCodecArgs  # noqa: E402
from mlx_indextts_models.w2vbert import (  # noqa: E402
    SEMANTIC_LAYER,
    W2VBertArgs,
    W2VBertModel,
    normalize_semantic,
)

__version__ = "0.1.0"

__all__ = [
    "CFG_RATE",
    "CFM",
    "CFM_STEPS",
    "EMOTIONS",
    "EMO_NUM",
    "FRAMES_PER_CODE",
    "GPT_LAYER_DIMS",
    "REFERENCE_LENGTH",
    "SEMANTIC_LAYER",
    "WN",
    "BigVGAN",
    "BigVGANArgs",
    "CAMPPlus",
    "CAMPPlusArgs",
    "CFMSettings",
    "ConditionModuleArgs",
    "ConfigError",
    "ConformerArgs",
    "ConformerEncoder",
    "DecodeStep",
    "DiT",
    "DiTArgs",
    "GPT2Args",
    "GPT2Model",
    "GPTConditioning",
    "GPTConditioningArgs",
    "GPTLayer",
    "GeneratedCodes",
    "GenerationConfig",
    "InterpolateRegulator",
    "KVCache",
    "PerceiverArgs",
    "PerceiverResampler",
    "RegulatorArgs",
    "RepCodec",
    "S2Mel",
    "S2MelArgs",
    "Sampler",
    "SemanticCodecArgs",
    "UnifiedVoice",
    "UnifiedVoiceArgs",
    "VectorArgs",
    "W2VBertArgs",
    "W2VBertModel",
    "WaveNetArgs",
    "blas_status",
    "blend_emotion_vector",
    "emotion_matrix_vector",
    "ensure_fast_blas",
    "from_dict",
    "normalize_semantic",
    "s_infer",
    "target_lengths",
    "to_dict",
]
