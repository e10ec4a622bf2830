"""Errors raised while reading, converting or loading weights."""


class WeightsError(Exception):
    """A checkpoint or NPZ file is missing, malformed, unsafe or does not fit a model."""


class UnsafeCheckpointError(WeightsError):
    """A checkpoint's pickle asks for something other than tensors and containers."""
