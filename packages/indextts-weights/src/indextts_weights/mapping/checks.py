"""Key checks shared by the mappings: every problem of a state dict named in one error."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence

import numpy as np

from indextts_weights.errors import WeightsError
from indextts_weights.layout import fold_all_weight_norms

#: ``(label, items)``: one kind of problem and the keys (or descriptions) that have it.
Problems = Sequence[tuple[str, Sequence[str]]]


def describe_problems(problems: Problems, limit: int | None = None) -> str:
    """``"label: a, b; label: c"`` of the non-empty problems ('' when there are none); with
    ``limit``, each list is cut after that many items with ``"(+N more)"``."""
    parts = []
    for label, items in problems:
        if not items:
            continue
        shown = items if limit is None else items[:limit]
        more = f" (+{len(items) - limit} more)" if limit is not None and len(items) > limit else ""
        parts.append(f"{label}: {', '.join(shown)}{more}")
    return "; ".join(parts)


def _raise(source: str, problems: Problems) -> None:
    text = describe_problems(problems)
    if text:
        raise WeightsError(f"{source}: {text}")


def check_keys(
    state: Mapping[str, np.ndarray],
    expected: Mapping[str, int],
    ignored: Collection[str],
    source: str,
    extra: Problems = (),
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
    _raise(
        source, [("unexpected", unknown), ("missing", missing), ("wrong rank", wrong_rank), *extra]
    )


def check_shapes(
    state: Mapping[str, np.ndarray], expected: Mapping[str, tuple[int, ...]], source: str
) -> None:
    """Refuse a state dict whose keys are not exactly ``expected``'s, or of other shapes.

    Raises:
        WeightsError: ``"<source>: unexpected: …; missing: …; wrong shape: …"``.
    """
    unknown = sorted(k for k in state if k not in expected)
    missing = [k for k in expected if k not in state]
    misshaped = [
        f"{k} {tuple(np.shape(state[k]))} (expected {shape})"
        for k, shape in expected.items()
        if k in state and tuple(np.shape(state[k])) != shape
    ]
    _raise(source, [("unexpected", unknown), ("missing", missing), ("wrong shape", misshaped)])


def known_and_folded(
    state: Mapping[str, np.ndarray],
    known: re.Pattern[str],
    ignored: Callable[[str], bool],
    source: str,
) -> dict[str, np.ndarray]:
    """The arrays of ``state`` but its ``ignored`` keys, every weight norm folded
    (:func:`~indextts_weights.layout.fold_all_weight_norms`).

    Raises:
        WeightsError: ``"<source> has unexpected keys: …"`` naming every key that is
            neither ignored nor ``known`` (a full match), or a weight-norm pair with a half
            missing.
    """
    kept = {k: np.asarray(v) for k, v in state.items() if not ignored(k)}
    unknown = sorted(k for k in kept if not known.fullmatch(k))
    if unknown:
        raise WeightsError(f"{source} has unexpected keys: {', '.join(unknown)}")
    try:
        return fold_all_weight_norms(kept)
    except ValueError as exc:
        raise WeightsError(f"{source}: {exc}") from exc
