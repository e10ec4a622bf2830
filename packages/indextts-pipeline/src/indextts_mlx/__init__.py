"""IndexTTS-2 zero-shot text-to-speech on MLX (``from indextts_mlx import IndexTTS2``).

Importing this package runs the fast-BLAS bootstrap (via ``indextts_weights``) before
anything imports MLX. ``IndexTTS2`` and ``synthesize`` arrive with the pipeline issue.
"""

from indextts_weights import blas_status

__version__ = "0.1.0"

__all__ = ["blas_status"]
