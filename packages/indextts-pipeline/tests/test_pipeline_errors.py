"""The error hierarchy of `indextts_mlx.errors`."""

from __future__ import annotations

import zipfile

import pytest

from indextts_mlx import errors
from indextts_mlx.errors import IndexTTSError, translate_errors
from indextts_weights import WeightsError, WeightsMissingError

EXPECTED_BUILTIN = {
    errors.InputTextError: ValueError,
    errors.AudioInputError: ValueError,
    errors.VoiceNotFoundError: FileNotFoundError,
    errors.EmotionInputError: ValueError,
    errors.WeightsNotFoundError: FileNotFoundError,
    errors.WeightsLoadError: OSError,
    errors.ModelInputError: ValueError,
    errors.FeatureNotAvailableError: NotImplementedError,
}


def test_every_exported_error_is_covered():
    exported = {getattr(errors, n) for n in errors.__all__ if isinstance(getattr(errors, n), type)}
    assert exported == {IndexTTSError, *EXPECTED_BUILTIN}


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


@pytest.mark.parametrize("cls", [errors.VoiceNotFoundError, errors.WeightsLoadError])
def test_os_errors_keep_their_message(cls):
    # an OSError with one argument must not become an (errno, strerror) pair.
    err = cls("voice 'x' not found")
    assert err.args == ("voice 'x' not found",)
    assert err.errno is None and str(err) == "voice 'x' not found"


@pytest.mark.parametrize(
    ("raised", "loading", "expected"),
    [
        (WeightsMissingError("no weights in w"), False, errors.WeightsNotFoundError),
        (WeightsError("w/gpt.npz is not a readable NPZ file"), False, errors.WeightsLoadError),
        (WeightsError("bad"), True, errors.WeightsLoadError),
        (ValueError("conds must be (1, positions, dim)"), False, errors.ModelInputError),
        (ValueError("hidden_size must be a multiple"), True, errors.WeightsLoadError),
        (zipfile.BadZipFile("File is not a zip file"), True, errors.WeightsLoadError),
        (EOFError("truncated"), True, errors.WeightsLoadError),
    ],
)
def test_translate_errors_maps_each_failure_into_the_hierarchy(raised, loading, expected):
    with pytest.raises(expected) as err, translate_errors("loading gpt.npz", loading=loading):
        raise raised
    assert err.value.__cause__ is raised
    if expected is not errors.WeightsNotFoundError:
        assert str(err.value).startswith("loading gpt.npz: ")
    assert str(raised) in str(err.value)


def test_translate_errors_passes_ours_and_bugs_through_unchanged():
    ours = errors.AudioInputError("too short")
    with pytest.raises(errors.AudioInputError) as err, translate_errors("gpt"):
        raise ours
    assert err.value is ours
    bug = KeyError("a bug, not the user's fault")
    with pytest.raises(KeyError) as err, translate_errors("gpt"):  # not while running
        raise bug
    assert err.value is bug
