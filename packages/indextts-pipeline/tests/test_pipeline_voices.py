"""Speaker resolution (`indextts_mlx.voices`, docs/promises.md §1)."""

from __future__ import annotations

import os
import warnings

import pytest

from indextts_mlx.errors import VoiceNotFoundError
from indextts_mlx.voices import MAX_LISTED_VOICES, list_voices, resolve_speaker, resolve_voice


@pytest.fixture
def voices(tmp_path):
    d = tmp_path / "voices"
    d.mkdir()
    for name in ("Emma", "bob", "Zed", "Carol"):
        (d / f"{name}.wav").write_bytes(b"RIFF" + name.encode())
    (d / "notes.txt").write_text("not a voice")
    (d / "._Emma.wav").write_bytes(b"macOS resource fork")
    (d / "sub").mkdir()
    (d / "sub" / "nested.wav").write_bytes(b"RIFF")
    (d / "folder.wav").mkdir()  # a directory named like a voice is not a voice
    return d


@pytest.fixture
def outside(tmp_path):
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"RIFF secret")
    return secret


def test_list_voices_sorted_stems_of_wav_files(voices):
    assert list_voices(voices) == ["Carol", "Emma", "Zed", "bob"]
    assert list_voices(str(voices)) == ["Carol", "Emma", "Zed", "bob"]


def test_list_voices_missing_dir(tmp_path, voices):
    with pytest.raises(VoiceNotFoundError, match="does not exist"):
        list_voices(tmp_path / "nope")
    with pytest.raises(VoiceNotFoundError, match="not a directory"):
        list_voices(voices / "notes.txt")


def test_exact_match(voices):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_voice("Emma", voices) == voices / "Emma.wav"
        assert resolve_voice("bob", str(voices)) == voices / "bob.wav"
        assert resolve_voice("Emma.wav", voices) == voices / "Emma.wav"


def test_exact_case_wins_over_case_insensitive(voices):
    (voices / "emma.wav").write_bytes(b"RIFF lower")
    if len({p.name for p in voices.iterdir()} & {"Emma.wav", "emma.wav"}) < 2:
        pytest.skip("case-insensitive file system")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_voice("emma", voices) == voices / "emma.wav"
        assert resolve_voice("Emma", voices) == voices / "Emma.wav"
    with pytest.raises(VoiceNotFoundError, match=r"ambiguous.*Emma, emma"):
        resolve_voice("EMMA", voices)


def test_case_insensitive_match_warns(voices):
    with pytest.warns(UserWarning, match="exact case; using 'Emma'"):
        assert resolve_voice("emma", voices) == voices / "Emma.wav"
    with pytest.warns(UserWarning, match="using 'bob'"):
        assert resolve_voice("BOB", voices) == voices / "bob.wav"


def test_unknown_voice_lists_available_and_suggests(voices):
    with pytest.raises(VoiceNotFoundError) as info:
        resolve_voice("Emmy", voices)
    msg = str(info.value)
    assert "'Emmy' not found" in msg and "Did you mean Emma?" in msg
    assert "available voices: Carol, Emma, Zed, bob" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_unknown_voice_lists_at_most_20(tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(25):
        (d / f"v{i:02d}.wav").write_bytes(b"RIFF")
    with pytest.raises(VoiceNotFoundError) as info:
        resolve_voice("nobody", d)
    msg = str(info.value)
    assert MAX_LISTED_VOICES == 20
    assert "v19" in msg and "v20" not in msg and "... and 5 more" in msg


def test_empty_voices_dir(tmp_path):
    with pytest.raises(VoiceNotFoundError, match=r"has no .wav files"):
        resolve_voice("x", tmp_path)


@pytest.mark.parametrize(
    "name", ["../secret", "../secret.wav", "sub/nested", "/etc/passwd", "..", ".", "a\\b", "x\0y"]
)
def test_names_never_escape_the_voices_dir(voices, outside, name):
    with pytest.raises(VoiceNotFoundError):
        resolve_voice(name, voices)


def test_absolute_path_outside_is_refused(voices, outside):
    with pytest.raises(VoiceNotFoundError, match="never resolves outside"):
        resolve_voice(str(outside), voices)
    with pytest.raises(VoiceNotFoundError, match="never resolves outside"):
        resolve_voice(outside, voices)


def test_path_to_a_voice_inside_the_dir_is_accepted(voices, monkeypatch, tmp_path):
    assert resolve_voice(voices / "Zed.wav", voices) == voices / "Zed.wav"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_voice("~/voices/Zed.wav", "~/voices") == voices / "Zed.wav"


def test_symlink_outside_is_refused_and_not_listed(voices, outside):
    (voices / "Evil.wav").symlink_to(outside)
    (voices / "Alias.wav").symlink_to(voices / "Emma.wav")
    assert list_voices(voices) == ["Alias", "Carol", "Emma", "Zed", "bob"]
    assert resolve_voice("Alias", voices) == voices / "Alias.wav"
    with pytest.raises(VoiceNotFoundError, match=r"symlink .* outside the voices dir"):
        resolve_voice("Evil", voices)
    with pytest.raises(VoiceNotFoundError):
        resolve_voice("evil", voices)


def test_symlinked_voices_dir_is_fine(voices, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(voices, target_is_directory=True)
    assert resolve_voice("Carol", link) == link / "Carol.wav"


def test_tilde_is_expanded(voices, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_voice("Carol", "~/voices") == voices / "Carol.wav"
    assert resolve_voice("~/voices/Carol.wav", None) == voices / "Carol.wav"
    assert list_voices("~/voices") == ["Carol", "Emma", "Zed", "bob"]


def test_voice_without_dir_is_a_file_path(voices, tmp_path):
    assert resolve_voice(str(voices / "bob.wav")) == voices / "bob.wav"
    assert resolve_voice(voices / "bob.wav", None) == voices / "bob.wav"
    with pytest.raises(VoiceNotFoundError, match=r"'Emma' not found .*pass voices_dir"):
        resolve_voice("Emma", None)
    with pytest.raises(VoiceNotFoundError, match="is not a file"):
        resolve_voice(voices, None)
    with pytest.raises(VoiceNotFoundError, match="empty"):
        resolve_voice("  ", voices)


# --- resolve_speaker -------------------------------------------------------------------


def test_speaker_priority_prompt_over_voice(voices):
    prompt = voices / "Zed.wav"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_speaker(prompt, None, "Emma", voices) == prompt
        assert resolve_speaker(None, None, "Emma", voices) == voices / "Emma.wav"
        assert resolve_speaker(None, None, str(prompt), None) == prompt
        assert resolve_speaker("", None, "bob", voices) == voices / "bob.wav"


def test_reference_audio_is_an_alias(voices):
    ref = voices / "Carol.wav"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_speaker(None, ref, "Emma", voices) == ref
        assert resolve_speaker(reference_audio=str(ref)) == ref


def test_both_prompt_and_reference_audio_warns_prompt_wins(voices):
    with pytest.warns(UserWarning, match="spk_audio_prompt and reference_audio"):
        got = resolve_speaker(voices / "Zed.wav", voices / "Carol.wav", None, None)
    assert got == voices / "Zed.wav"


def test_speaker_errors(voices, tmp_path, monkeypatch):
    with pytest.raises(VoiceNotFoundError, match="no speaker given"):
        resolve_speaker(None, None, None, None)
    with pytest.raises(VoiceNotFoundError, match=r"no voice chosen.*Carol, Emma, Zed, bob"):
        resolve_speaker(None, None, None, voices)
    with pytest.raises(VoiceNotFoundError, match=r"speaker audio prompt .*missing\.wav' not found"):
        resolve_speaker(tmp_path / "missing.wav", None, "Emma", voices)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_speaker("~/voices/bob.wav") == voices / "bob.wav"
    assert os.fspath(resolve_speaker(None, "~/voices/bob.wav")).startswith(str(tmp_path))
