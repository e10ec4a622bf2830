"""Pure MLX model definitions for IndexTTS-2 (no file I/O).

Importing this package first runs the fast-BLAS bootstrap of ``mlx_audio_features`` so
that MLX uses an optimized BLAS on Linux CPU. Ported so far: the speaker/semantic
encoders (W2V-BERT, the MaskGCT semantic codec, CAMPPlus) and the GPT (``UnifiedVoice``:
conformer/perceiver conditioning, emotion vectors, GPT-2 with a KV cache, HF-exact
sampling and beam search, the latent pass, ``gpt_layer``), the BigVGAN v2 vocoder and
S2Mel's length regulator; S2Mel's DiT and flow matching follow.
"""

from mlx_audio_features.fast_blas import blas_status, ensure_fast_blas

ensure_fast_blas()

from mlx_indextts_models.bigvgan import BigVGAN, BigVGANArgs  # noqa: E402
from mlx_indextts_models.cache import KVCache  # noqa: E402
from mlx_indextts_models.campplus import CAMPPlus, CAMPPlusArgs  # noqa: E402
from mlx_indextts_models.conformer import ConformerArgs, ConformerEncoder  # noqa: E402
from mlx_indextts_models.emotion import (  # noqa: E402
    EMOTIONS,
    blend_emotion_vector,
    emotion_matrix_vector,
)
from mlx_indextts_models.gpt import (  # noqa: E402
    DecodeStep,
    GeneratedCodes,
    GPTLayer,
    UnifiedVoice,
    UnifiedVoiceArgs,
    s_infer,
)
from mlx_indextts_models.gpt2 import GPT2Args, GPT2Model  # noqa: E402
from mlx_indextts_models.gpt_conditioning import (  # noqa: E402
    REFERENCE_LENGTH,
    GPTConditioning,
    GPTConditioningArgs,
)
from mlx_indextts_models.perceiver import PerceiverArgs, PerceiverResampler  # noqa: E402
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
    "EMOTIONS",
    "REFERENCE_LENGTH",
    "SEMANTIC_LAYER",
    "BigVGAN",
    "BigVGANArgs",
    "CAMPPlus",
    "CAMPPlusArgs",
    "ConformerArgs",
    "ConformerEncoder",
    "DecodeStep",
    "GPT2Args",
    "GPT2Model",
    "GPTConditioning",
    "GPTConditioningArgs",
    "GPTLayer",
    "GeneratedCodes",
    "GenerationConfig",
    "KVCache",
    "PerceiverArgs",
    "PerceiverResampler",
    "RepCodec",
    "Sampler",
    "SemanticCodecArgs",
    "UnifiedVoice",
    "UnifiedVoiceArgs",
    "W2VBertArgs",
    "W2VBertModel",
    "blas_status",
    "blend_emotion_vector",
    "emotion_matrix_vector",
    "ensure_fast_blas",
    "normalize_semantic",
    "s_infer",
]
