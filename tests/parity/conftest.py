"""Fixtures shared by the parity tests."""

from __future__ import annotations

import pytest

from parity.workspace import use_this_checkout

use_this_checkout()

from parity.reference import install_torchaudio_shim  # noqa: E402

install_torchaudio_shim()

from parity.harness import StageResult, format_table  # noqa: E402

_RESULTS: list[StageResult] = []


@pytest.fixture(scope="session")
def converted():
    """Folder of NPZ files made from the seeded official checkpoints by the user's command,
    ``indextts-weights convert``, run torch-free in the uv environment (cached)."""
    from parity.converted import CONVERTIBLE, converted_weights

    return converted_weights(CONVERTIBLE)


@pytest.fixture(scope="session")
def unified_voice(converted):
    """Our ``UnifiedVoice`` loaded by ``load_gpt`` from the converted seeded ``gpt.pth``
    (3.5 GB: loaded once per session, shared by the GPT parity tests)."""
    from indextts_weights import load_gpt

    return load_gpt(converted / "gpt.npz")


@pytest.fixture(scope="session")
def s2mel_models(converted):
    """Our ``S2Mel`` (``cfm``, ``length_regulator``, ``gpt_layer``) loaded by ``load_s2mel``
    from the converted seeded ``s2mel.pth``."""
    from indextts_weights import load_s2mel

    return load_s2mel(converted / "s2mel_pytorch.npz")


@pytest.fixture
def record():
    """Collect a stage result for the table printed at the end of the session."""

    def _record(result: StageResult) -> StageResult:
        _RESULTS.append(result)
        return result

    return _record


def pytest_terminal_summary(terminalreporter):
    if _RESULTS:
        terminalreporter.section("parity stages")
        terminalreporter.write_line(format_table(_RESULTS))
