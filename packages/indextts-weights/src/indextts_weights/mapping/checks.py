"""Key checks shared by the mappings: every problem of a state dict named in one error."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

from indextts_weights.errors import WeightsError


def check_keys(
    state: Mapping[str, np.ndarray],
    expected: Mapping[str, int],
    ignored: Collection[str],
    source: str,
    extra: Sequence[tuple[str, Sequence[str]]] = (),
) -> None:
    """Refuse a state dict with unknown keys, missing keys or parameters of the wrong rank.

    Args:
        state: official key → array.
        expected: key → number of dimensions the model needs.
        ignored: keys that may be present and are deliberately not used.
        source: named in the message (e.g. ``"s2mel checkpoint cfm"``).
        extra: further ``(label, items)`` problems found by the caller.

    Raises:
        WeightsError: ``"<source>: unexpected: …; missing: …; wrong rank: …"`` listing
            every problem found.
    """
    unknown = sorted(k for k in state if k not in expected and k not in ignored)
    missing = [k for k in expected if k not in state]
    wrong_rank = [
        f"{k} {tuple(np.shape(state[k]))} (expected {rank}-D)"
        for k, rank in expected.items()
        if k in state and np.ndim(state[k]) != rank
    ]
    problems = [
        f"{label}: {', '.join(items)}"
        for label, items in (
            ("unexpected", unknown),
            ("missing", missing),
            ("wrong rank", wrong_rank),
            *extra,
        )
        if items
    ]
    if problems:
        raise WeightsError(f"{source}: {'; '.join(problems)}")
