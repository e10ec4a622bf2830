"""KV cache: chunked growth, offsets, returned history, batch-row selection (beams)."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from mlx_indextts_models.cache import KVCache, make_cache, select_rows


def _kv(batch: int, length: int, start: int) -> tuple[mx.array, mx.array]:
    """Keys ``(B, 2, L, 3)`` whose values encode (row, position); values = -keys."""
    rows = np.arange(batch)[:, None, None, None] * 1000
    pos = np.arange(start, start + length)[None, None, :, None]
    keys = np.broadcast_to(rows + pos + np.zeros((1, 2, 1, 3)), (batch, 2, length, 3)).astype(
        np.float32
    )
    return mx.array(keys), mx.array(-keys)


def test_grows_in_whole_chunks_and_returns_the_history():
    cache = KVCache(step=4)
    assert cache.offset == 0 and cache.capacity == 0 and cache.state == []
    k, v = cache.update_and_fetch(*_kv(2, 3, 0))
    assert (cache.offset, cache.capacity, k.shape) == (3, 4, (2, 2, 3, 3))
    k, v = cache.update_and_fetch(*_kv(2, 1, 3))
    assert (cache.offset, cache.capacity) == (4, 4)
    k, v = cache.update_and_fetch(*_kv(2, 6, 4))  # 10 positions: 3 chunks
    assert (cache.offset, cache.capacity) == (10, 12)
    expected, _ = _kv(2, 10, 0)
    np.testing.assert_array_equal(np.array(k), np.array(expected))
    np.testing.assert_array_equal(np.array(v), -np.array(expected))
    assert len(cache.state) == 2


def test_one_position_steps_keep_earlier_positions():
    cache = KVCache(step=3)
    for t in range(8):
        k, _ = cache.update_and_fetch(*_kv(1, 1, t))
    assert (cache.offset, cache.capacity) == (8, 9)
    np.testing.assert_array_equal(np.array(k)[0, 0, :, 0], np.arange(8))


def test_select_reorders_and_expands_rows():
    cache = KVCache(step=4)
    cache.update_and_fetch(*_kv(3, 5, 0))
    cache.select([2, 0, 0])
    assert cache.offset == 5
    k, _ = cache.update_and_fetch(*_kv(3, 1, 5))
    k = np.array(k)
    # rows 0..2 now hold the history of old rows 2, 0, 0, and the new position of rows 0..2
    np.testing.assert_array_equal(
        k[:, 0, :5, 0], [[2000 + t for t in range(5)], list(range(5)), list(range(5))]
    )
    np.testing.assert_array_equal(k[:, 0, 5, 0], [5, 1005, 2005])


def test_select_expands_a_prefilled_row_to_beams():
    cache = KVCache(step=8)
    cache.update_and_fetch(*_kv(1, 4, 0))
    cache.select(mx.array([0, 0, 0]))
    k, _ = cache.update_and_fetch(*_kv(3, 1, 4))
    assert k.shape == (3, 2, 5, 3)
    np.testing.assert_array_equal(np.array(k)[:, 0, :4, 0], np.tile(np.arange(4), (3, 1)))


def test_batch_mismatch_and_bad_step_are_refused():
    cache = KVCache(step=4)
    cache.update_and_fetch(*_kv(1, 2, 0))
    with pytest.raises(ValueError, match="select"):
        cache.update_and_fetch(*_kv(3, 1, 2))
    with pytest.raises(ValueError, match="positive"):
        KVCache(step=0)


def test_make_cache_and_select_rows():
    caches = make_cache(3, step=2)
    assert len(caches) == 3 and all(c.step == 2 for c in caches)
    for c in caches:
        c.update_and_fetch(*_kv(2, 1, 0))
    select_rows(caches, [1, 1])
    for c in caches:
        np.testing.assert_array_equal(np.array(c.keys)[:, 0, 0, 0], [1000, 1000])
    empty = KVCache()
    empty.select([0, 0])  # nothing cached yet: nothing to do
    assert empty.keys is None


def test_identity_selection_copies_nothing():
    cache = KVCache(step=4)
    cache.update_and_fetch(*_kv(3, 2, 0))
    keys = cache.keys
    cache.select(np.array([0, 1, 2]))
    select_rows([cache], [0, 1, 2])
    assert cache.keys is keys
    cache.select(np.array([1, 1, 0]))
    np.testing.assert_array_equal(np.array(cache.keys)[:, 0, 0, 0], [1000, 1000, 0])


def test_beam_slots_give_the_same_history_as_gathering():
    """Random beam reorders: BeamSlots' rows (read in beam order) hold exactly what
    gathering the cache with ``select`` after each step holds."""
    from mlx_indextts_models.cache import BeamSlots

    rng = np.random.default_rng(0)
    beams = 3
    moved, gathered = KVCache(step=4), KVCache(step=4)
    first = mx.array(rng.standard_normal((1, 2, 5, 3)).astype(np.float32))
    for cache in (moved, gathered):
        cache.update_and_fetch(first, first + 1)
        cache.select([0] * beams)
    slots = BeamSlots(beams)
    patterns = [[0, 1, 2], [0, 0, 1], [2, 2, 2], [1, 0, 2], [2, 0, 0], [1, 1, 0]]
    for parents in patterns * 2:
        slots.advance([moved], parents)
        gathered.select(parents)
        new = mx.array(rng.standard_normal((beams, 2, 1, 3)).astype(np.float32))
        moved_k, moved_v = moved.update_and_fetch(slots.to_physical(new), slots.to_physical(new))
        keys, values = gathered.update_and_fetch(new, new)
        np.testing.assert_array_equal(np.array(slots.to_logical(moved_k)), np.array(keys))
        np.testing.assert_array_equal(np.array(slots.to_logical(moved_v)), np.array(values))
    assert sorted(slots.rows.tolist()) == [0, 1, 2]
    with pytest.raises(ValueError, match="2 parents for 3 beams"):
        slots.advance([moved], [0, 0])
