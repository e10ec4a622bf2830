"""The ``indextts-tts`` command line (``indextts_cli.cli:main``).

Importing this package runs the fast-BLAS bootstrap (via ``indextts_mlx``).
"""

from indextts_mlx import blas_status

__version__ = "0.1.0"

__all__ = ["blas_status"]
