"""Which dtypes a read met: the readers report the stored dtype of every tensor they
return (bfloat16 included, though it comes back widened to float32) to
:func:`recording_dtypes`, for the manifest's record of each source's precision."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_SEEN: ContextVar[Counter[str] | None] = ContextVar("dtypes_seen", default=None)


@contextmanager
def recording_dtypes() -> Iterator[Counter[str]]:
    """Count, while the block runs, the tensors read by stored dtype (``"float16"``,
    ``"bfloat16"``, ``"float32"``, ``"int64"``, ...)."""
    seen: Counter[str] = Counter()
    token = _SEEN.set(seen)
    try:
        yield seen
    finally:
        _SEEN.reset(token)


def note_dtype(name: str) -> None:
    """Report one tensor stored as ``name`` (a no-op outside :func:`recording_dtypes`)."""
    seen = _SEEN.get()
    if seen is not None:
        seen[name] += 1
