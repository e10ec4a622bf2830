"""Preallocated key/value cache for autoregressive decoding (one per attention layer).

Keys and values live in buffers of shape ``(B, H, capacity, D)`` that grow by whole
chunks of :attr:`KVCache.step` positions (:data:`DEFAULT_STEP`), so a decode step writes
one position in place (``slice_update`` on a buffer nothing else references is done
without a copy) instead of concatenating the whole history, and the buffers are
reallocated only once every ``step`` tokens. ``B`` is the number of sequences decoded
together (the beams); :meth:`KVCache.select` reorders or picks batch rows, as beam search
needs after each step.
"""

from __future__ import annotations

from collections.abc import Sequence

import mlx.core as mx
import numpy as np

#: Growth chunk in positions. Small, because beam search reorders the cache every step
#: with a gather over the whole capacity (as HF's ``reorder_cache`` does over the valid
#: length), so unused capacity costs copies; growing copies the history once per chunk.
DEFAULT_STEP = 64


class KVCache:
    """Keys and values of one attention layer, ``(B, H, offset, D)`` of them valid.

    Args:
        step: growth chunk in positions; the capacity is always a multiple of it.
    """

    def __init__(self, step: int = DEFAULT_STEP) -> None:
        if step < 1:
            raise ValueError(f"step must be positive, got {step}")
        self.step = step
        self.keys: mx.array | None = None
        self.values: mx.array | None = None
        self.offset = 0

    @property
    def capacity(self) -> int:
        """Positions allocated (``>= offset``)."""
        return 0 if self.keys is None else self.keys.shape[2]

    def _grow(self, needed: int, like: mx.array, like_values: mx.array) -> None:
        chunks = -(-needed // self.step)
        capacity = chunks * self.step
        b, h, _, dk = like.shape
        dv = like_values.shape[3]
        keys = mx.zeros((b, h, capacity, dk), dtype=like.dtype)
        values = mx.zeros((b, h, capacity, dv), dtype=like_values.dtype)
        if self.keys is not None and self.values is not None and self.offset:
            keys[:, :, : self.offset] = self.keys[:, :, : self.offset]
            values[:, :, : self.offset] = self.values[:, :, : self.offset]
        self.keys, self.values = keys, values

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        """Append ``keys``/``values`` ``(B, H, L, D)`` and return all of them so far.

        Returns:
            ``(keys, values)``, each ``(B, H, offset + L, D)`` (views of the buffers).
        """
        if self.keys is not None and keys.shape[0] != self.keys.shape[0]:
            raise ValueError(
                f"batch {keys.shape[0]} differs from the cache's {self.keys.shape[0]}: "
                "use select() to change the batch rows"
            )
        start = self.offset
        end = start + keys.shape[2]
        if end > self.capacity:
            self._grow(end, keys, values)
        all_keys, all_values = self._buffers()
        all_keys[:, :, start:end] = keys
        all_values[:, :, start:end] = values
        self.offset = end
        return all_keys[:, :, :end], all_values[:, :, :end]

    def _buffers(self) -> tuple[mx.array, mx.array]:
        if self.keys is None or self.values is None:
            raise RuntimeError("the cache holds no keys and values yet")
        return self.keys, self.values

    def select(self, rows: Sequence[int] | mx.array) -> None:
        """Keep batch rows ``rows`` in that order (repeats allowed): beam reordering.

        ``rows`` may hold a different number of rows than the batch, e.g. ``[0, 0, 0]``
        to expand one prefilled sequence to three beams.
        """
        if self.keys is None or self.values is None or _is_identity(rows, self.keys.shape[0]):
            return
        index = rows if isinstance(rows, mx.array) else mx.array(np.asarray(rows, dtype=np.int32))
        self.keys = mx.take(self.keys, index, axis=0)
        self.values = mx.take(self.values, index, axis=0)

    def copy_rows(self, copies: Sequence[tuple[int, int]]) -> None:
        """Overwrite row ``dst`` with row ``src``'s valid positions, for each ``(dst, src)``
        (sources must not be destinations)."""
        if self.keys is None or self.values is None:
            return
        keys, values, end = self.keys, self.values, self.offset
        for dst, src in copies:
            keys[dst : dst + 1, :, :end] = keys[src : src + 1, :, :end]
            values[dst : dst + 1, :, :end] = values[src : src + 1, :, :end]

    @property
    def state(self) -> list[mx.array]:
        """The arrays held (for ``mx.eval``)."""
        return [] if self.keys is None or self.values is None else [self.keys, self.values]


def _is_identity(rows: Sequence[int] | mx.array, batch: int) -> bool:
    """Whether ``rows`` keeps every row in place (then nothing needs copying)."""
    if isinstance(rows, mx.array):
        return False
    return [int(r) for r in rows] == list(range(batch))


def make_cache(n_layers: int, step: int = DEFAULT_STEP) -> list[KVCache]:
    """One empty :class:`KVCache` per layer."""
    return [KVCache(step) for _ in range(n_layers)]


def select_rows(cache: Sequence[KVCache], rows: Sequence[int] | mx.array) -> None:
    """:meth:`KVCache.select` on every layer's cache (nothing is copied when ``rows`` is a
    list/array that keeps every row in place)."""
    if not isinstance(rows, mx.array):
        if cache and cache[0].keys is not None and _is_identity(rows, cache[0].keys.shape[0]):
            return
        rows = mx.array(np.asarray(rows, dtype=np.int32))
    for layer in cache:
        layer.select(rows)


class BeamSlots:
    """Beam reordering without moving the cache: which physical cache row holds each beam.

    Beam search continues beam ``i`` from beam ``parents[i]`` after every step. Instead of
    gathering every layer's keys and values into the new order (HF's ``reorder_cache``,
    a copy of the whole cache per step), the rows stay where they are and :attr:`rows`
    records the physical row of each (logical) beam; the step's inputs are fed in
    physical order (:meth:`to_physical`) and its outputs read back in beam order
    (:meth:`to_logical`). Only when two beams continue the same parent does one of them
    need its own copy: that row's valid positions are copied into a row no beam uses any
    more. With 3 beams this copies 0-2 rows of ``offset`` positions per step instead of
    all rows of the whole capacity.
    """

    def __init__(self, beams: int) -> None:
        if beams < 1:
            raise ValueError("need at least one beam")
        self.rows = np.arange(beams)

    def advance(self, cache: Sequence[KVCache], parents: Sequence[int] | np.ndarray) -> None:
        """Beam ``i`` now continues beam ``parents[i]``; copy rows where beams split."""
        sources = self.rows[np.asarray(parents, dtype=np.int64)]
        if len(sources) != len(self.rows):
            raise ValueError(f"{len(parents)} parents for {len(self.rows)} beams")
        rows = np.full(len(sources), -1)
        taken: set[int] = set()
        for beam, source in enumerate(sources):
            if int(source) not in taken:
                rows[beam] = source
                taken.add(int(source))
        free = [r for r in range(len(sources)) if r not in taken]
        copies = []
        for orphan in np.flatnonzero(rows < 0):
            rows[orphan] = free.pop()
            copies.append((int(rows[orphan]), int(sources[orphan])))
        for layer in cache:
            layer.copy_rows(copies)
        self.rows = rows

    def to_physical(self, x: mx.array) -> mx.array:
        """``(beams, ...)`` in beam order → in cache-row order."""
        if _is_identity(self.rows.tolist(), len(self.rows)):
            return x
        return x[mx.array(np.argsort(self.rows).astype(np.int32))]

    def to_logical(self, x: mx.array) -> mx.array:
        """``(beams, ...)`` in cache-row order → in beam order."""
        if _is_identity(self.rows.tolist(), len(self.rows)):
            return x
        return x[mx.array(self.rows.astype(np.int32))]
