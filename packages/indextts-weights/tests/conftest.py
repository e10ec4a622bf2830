"""Fixtures shared by the weights tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from indextts_weights.errors import WeightsError


@pytest.fixture
def refused() -> Callable[..., None]:
    """``refused(sanitize, state, key, value)``: ``sanitize`` of ``state`` with ``value``
    added under ``key`` raises a :class:`WeightsError` whose message names ``key``."""

    def check(
        sanitize: Callable[[dict[str, np.ndarray]], object],
        state: dict[str, np.ndarray],
        key: str,
        value: np.ndarray,
    ) -> None:
        with pytest.raises(WeightsError, match=key.replace(".", r"\.")):
            sanitize({**state, key: value})

    return check
