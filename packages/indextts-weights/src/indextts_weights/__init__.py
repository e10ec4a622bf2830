"""Torch-free reading and conversion of the official IndexTTS-2 checkpoints.

Importing this package runs the fast-BLAS bootstrap (via ``mlx_indextts_models``) before
anything imports MLX.
"""

from mlx_indextts_models import blas_status

__version__ = "0.1.0"

__all__ = ["blas_status"]
