"""Errors raised while reading, converting or loading weights."""


class WeightsError(Exception):
    """A checkpoint or NPZ file is missing, malformed, unsafe or does not fit a model."""


class UnsafeCheckpointError(WeightsError):
    """A checkpoint's pickle asks for something other than tensors and containers."""


class WeightsMissingError(WeightsError, FileNotFoundError):
    """Required weights files (or ``bpe.model``) are not where the configuration says."""

    def __init__(self, message: str) -> None:
        super().__init__(message)  # one argument: not an (errno, strerror) pair
