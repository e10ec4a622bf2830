"""Feature parity: our MLX features vs the functions the reference calls, and vs
independent implementations (kaldi-native-fbank, librosa), on 10 varied clips.

Tolerances (issue 2): log-mel max|Δ| ≤ 1e-3 and cos ≥ 0.99999; resampling ≤ 1e-5.

Float32 FFT round-off gives every float32 implementation (torchaudio's fbank, torch.stft
in the reference mel, kaldi-native-fbank) a noise floor about 60 dB under a frame's
strongest band. Below it torchaudio and kaldi-native-fbank disagree with each other by up
to ~1.2e-2 (chirp, tones). Ours computes spectra in float64, so it sits at the centre of
that spread. The 1e-3 bound is therefore asserted on bands within 60 dB (fbank, power) or
80 dB (mel, magnitude) of the frame's strongest band; every band is held to 2e-2 and the
whole array to cos ≥ 0.99999. The SeamlessM4T features are compared on every value: the
extractor computes its FFT in float64, and ours matches it bit for bit.
The mutation tests show each comparison fails when the window, pre-emphasis, mel scale,
normalization or band edge is changed.
"""

from __future__ import annotations

import numpy as np
import pytest

import mlx_audio_features as F
from clips import CLIP_NAMES, clip
from parity.harness import assert_close, compare
from parity.reference_features import (
    knf_fbank,
    reference_mel,
    reference_resample,
    seamless_reference,
    torchaudio_fbank,
)

LOG_MEL_TOL = 1e-3
BELOW_FLOOR_TOL = 2e-2
FBANK_FLOOR = 60.0 / 10 * np.log(10)  # 60 dB in natural log of power
MEL_FLOOR = 80.0 / 20 * np.log(10)  # 80 dB in natural log of magnitude
RESAMPLE_TOL = 1e-5


def above_float32_floor(log_energy: np.ndarray, floor: float) -> np.ndarray:
    """Bands within ``floor`` (natural-log units) of their frame's strongest band.

    ``log_energy`` is ``(frames, bands)``.
    """
    return log_energy >= log_energy.max(axis=1, keepdims=True) - floor


def assert_close_above_floor(name: str, ref: np.ndarray, ours, floor: float) -> None:
    ours = np.asarray(ours)
    mask = above_float32_floor(ref, floor)
    assert_close(compare(f"{name} (above floor)", ref[mask], ours[mask]), max_abs=LOG_MEL_TOL)
    assert_close(compare(name, ref, ours), max_abs=BELOW_FLOOR_TOL)


def assert_kaldi_close(name: str, ref: np.ndarray, ours) -> None:
    assert_close_above_floor(name, ref, ours, FBANK_FLOOR)


def assert_mel_close(name: str, ref: np.ndarray, ours) -> None:
    """Mel arrays are ``(1, 80, T)``: compare frames as rows."""
    assert_close_above_floor(name, ref[0].T, np.asarray(ours)[0].T, MEL_FLOOR)


#: stage → (sample rate, the reference's function, ours, the comparison above the floor):
#: torchaudio's kaldi fbank (CAMPPlus input) and the S2Mel reference mel.
FLOORED_STAGES = {
    "kaldi fbank": (16000, torchaudio_fbank, F.kaldi_fbank, assert_kaldi_close),
    "reference mel": (22050, reference_mel, F.mel_spectrogram, assert_mel_close),
}


@pytest.mark.parametrize("name", CLIP_NAMES)
@pytest.mark.parametrize("stage", FLOORED_STAGES)
def test_floored_features_match_the_reference(stage, name, record):
    rate, reference, features, assert_floored_close = FLOORED_STAGES[stage]
    audio = clip(name, rate)
    ref, ours = reference(audio), np.array(features(audio))
    record(compare(f"{stage} [{name}]", ref, ours))
    assert_floored_close(name, ref, ours)


@pytest.mark.parametrize("name", CLIP_NAMES)
def test_kaldi_fbank_matches_kaldi_native_fbank(name):
    audio = clip(name, 16000)
    assert_kaldi_close(name, knf_fbank(audio), F.kaldi_fbank(audio))


def test_float32_references_disagree_below_the_floor():
    """Why the floor exists: the two reference implementations differ there by > 1e-3."""
    audio = clip("chirp_4s", 16000)
    ref, other = torchaudio_fbank(audio), knf_fbank(audio)
    assert np.abs(ref - other).max() > 5e-3
    mask = above_float32_floor(ref, FBANK_FLOOR)
    assert np.abs(ref - other)[mask].max() < LOG_MEL_TOL


@pytest.mark.parametrize("name", CLIP_NAMES)
def test_seamless_fbank_matches_transformers(name, record):
    audio = clip(name, 16000)
    ref_features, ref_mask = seamless_reference(audio)
    ours = F.seamless_fbank(audio)
    result = record(compare(f"seamless fbank [{name}]", ref_features, ours.input_features))
    assert_close(result, max_abs=LOG_MEL_TOL)
    np.testing.assert_array_equal(np.array(ours.attention_mask), ref_mask)


def test_mel_filters_match_librosa():
    import librosa

    for sr, n_fft, fmax in ((22050, 1024, None), (16000, 512, 8000.0), (24000, 1024, 12000.0)):
        ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=80, fmin=0.0, fmax=fmax)
        np.testing.assert_allclose(F.mel_filters(sr=sr, n_fft=n_fft, fmax=fmax), ref, atol=1e-7)


@pytest.mark.parametrize("name", CLIP_NAMES)
def test_resample_matches_torchaudio(name, record):
    audio = clip(name, 22050)
    result = record(
        compare(
            f"resample 22.05k->16k [{name}]",
            reference_resample(audio),
            F.resample(audio, orig_freq=22050, new_freq=16000),
        )
    )
    assert_close(result, max_abs=RESAMPLE_TOL, min_cos=0.999999 if audio.any() else 1.0)


def test_resample_error_vs_sox_is_small_but_not_zero():
    """Documents why we follow torchaudio: sox's 16 kHz version differs at the 1e-2 level."""
    ours = np.array(F.resample(clip("speech_sentence", 22050), orig_freq=22050, new_freq=16000))
    sox = clip("speech_sentence", 16000)
    n = min(len(ours), len(sox))
    diff = np.abs(ours[:n] - sox[:n]).max()
    assert 1e-5 < diff < 0.2


# --- The comparisons above are sensitive: each change of a convention must fail them. ---


def _slaney_mel(freq):
    from mlx_audio_features.filterbanks import _slaney_hz_to_mel

    return _slaney_hz_to_mel(np.atleast_1d(freq))


KALDI_MUTATIONS = {
    "hanning window": dict(window_type="hanning"),
    "pre-emphasis 0.95": dict(preemphasis_coefficient=0.95),
    "no DC removal": dict(remove_dc_offset=False),
    "low edge 0 Hz": dict(low_freq=0.0),
}


@pytest.mark.parametrize("mutation", KALDI_MUTATIONS)
def test_kaldi_comparison_catches_changed_convention(mutation):
    audio = clip("speech_noisy_dc_clipped", 16000)
    wrong = F.kaldi_fbank(audio, **KALDI_MUTATIONS[mutation])
    with pytest.raises(AssertionError):
        assert_kaldi_close(mutation, torchaudio_fbank(audio), wrong)


def test_kaldi_comparison_catches_changed_mel_scale(monkeypatch):
    import mlx_audio_features.filterbanks as banks

    audio = clip("speech_sentence", 16000)
    monkeypatch.setattr(banks, "kaldi_mel_scale", _slaney_mel)
    with pytest.raises(AssertionError):
        assert_kaldi_close("slaney scale", torchaudio_fbank(audio), F.kaldi_fbank(audio))


def test_seamless_comparison_catches_missing_normalization_and_window(monkeypatch):
    import mlx_audio_features.seamless as seamless

    audio = clip("speech_sentence", 16000)
    ref, _ = seamless_reference(audio)
    with pytest.raises(AssertionError):
        assert_close(
            compare("no norm", ref, F.seamless_fbank(audio, normalize=False).input_features),
            max_abs=LOG_MEL_TOL,
        )
    monkeypatch.setattr(seamless, "povey_window", lambda n: F.hann_window(n, periodic=False))
    with pytest.raises(AssertionError):
        assert_close(
            compare("hann", ref, F.seamless_fbank(audio).input_features), max_abs=LOG_MEL_TOL
        )


@pytest.mark.parametrize("options", [dict(fmax=8000.0), dict(clip_val=1e-4), dict(fmin=20.0)])
def test_mel_comparison_catches_changed_convention(options):
    audio = clip("speech_sentence", 22050)
    with pytest.raises(AssertionError):
        assert_mel_close(str(options), reference_mel(audio), F.mel_spectrogram(audio, **options))


def test_resample_comparison_catches_changed_rolloff():
    audio = clip("speech_sentence", 22050)
    wrong = F.resample(audio, orig_freq=22050, new_freq=16000, rolloff=0.98)
    with pytest.raises(AssertionError):
        assert_close(compare("rolloff", reference_resample(audio), wrong), max_abs=RESAMPLE_TOL)
