"""Torch-free reading and conversion of the official IndexTTS-2 checkpoints.

Importing this package runs the fast-BLAS bootstrap (via ``mlx_indextts_models``) before
anything imports MLX.
"""

from mlx_indextts_models import blas_status  # first: loads the fast BLAS before MLX

# isort: split

from indextts_weights.config import ENV_BPE_MODEL, ENV_WEIGHTS_DIR, WEIGHT_FILES, WeightsConfig
from indextts_weights.convert import CONVERTERS, convert
from indextts_weights.errors import UnsafeCheckpointError, WeightsError, WeightsMissingError
from indextts_weights.load import (
    load_bigvgan,
    load_campplus,
    load_emotion_matrices,
    load_gpt,
    load_s2mel,
    load_semantic_codec,
    load_semantic_stats,
    load_w2vbert,
)
from indextts_weights.readers import read_checkpoint, read_state_dict

__version__ = "0.1.0"

__all__ = [
    "CONVERTERS",
    "ENV_BPE_MODEL",
    "ENV_WEIGHTS_DIR",
    "WEIGHT_FILES",
    "UnsafeCheckpointError",
    "WeightsConfig",
    "WeightsError",
    "WeightsMissingError",
    "blas_status",
    "convert",
    "load_bigvgan",
    "load_campplus",
    "load_emotion_matrices",
    "load_gpt",
    "load_s2mel",
    "load_semantic_codec",
    "load_semantic_stats",
    "load_w2vbert",
    "read_checkpoint",
    "read_state_dict",
]
