"""The error hierarchy of `indextts_mlx.errors`."""

from __future__ import annotations

import pytest

from indextts_mlx.errors import (
    AudioInputError,
    EmotionInputError,
    FeatureNotAvailableError,
    IndexTTSError,
    InputTextError,
    VoiceNotFoundError,
    WeightsNotFoundError,
)

EXPECTED_BUILTIN = {
    InputTextError: ValueError,
    AudioInputError: ValueError,
    VoiceNotFoundError: FileNotFoundError,
    EmotionInputError: ValueError,
    WeightsNotFoundError: FileNotFoundError,
    FeatureNotAvailableError: NotImplementedError,
}


@pytest.mark.parametrize("cls,builtin", EXPECTED_BUILTIN.items())
def test_each_error_is_an_indextts_error_and_its_builtin(cls, builtin):
    err = cls("boom")
    assert isinstance(err, IndexTTSError) and isinstance(err, builtin)
    assert str(err) == "boom"
    assert cls.__doc__ and len(cls.__doc__.split()) >= 10  # says when it is raised
    with pytest.raises(builtin):
        raise err


def test_base_is_a_plain_exception():
    assert IndexTTSError.__mro__[1] is Exception
    assert not issubclass(IndexTTSError, ValueError)


def test_file_not_found_errors_keep_their_message():
    # FileNotFoundError with one argument must not become an (errno, strerror) pair.
    err = VoiceNotFoundError("voice 'x' not found")
    assert err.args == ("voice 'x' not found",)
    assert err.errno is None
