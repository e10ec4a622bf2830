"""``IndexTTS2``: text + a speaker prompt (+ an emotion) → speech, as ``infer_v2`` does it.

The stages are public methods so that parity tests, benchmarks and other front ends can
run them one by one; :meth:`IndexTTS2.render` composes them and :meth:`IndexTTS2.synthesize`
returns just the audio:

1. :meth:`encode_speaker` (REFERENCE-FLOW.md steps 3-9, 15), cached per file content;
2. :meth:`encode_emotion` (step 11) and :meth:`emotion_vector` (steps 10, 14);
3. :meth:`text_segments` (step 12);
4. per segment :meth:`generate_codes` (16-17), :meth:`codes_to_latent` (18-19: the GPT
   latent pass, ``gpt_layer`` and ``vq2emb``, i.e. ``S_infer``), :meth:`latent_to_mel`
   (19-20) and :meth:`vocode` (21);
5. segments joined with 200 ms of silence (22).

Randomness: with ``use_random=False`` (the default) every draw (GPT sampling, the CFM
start noise, random emotion rows) comes from ``seed``, so the same call gives the same
samples, bit for bit, in any process on the same machine.
"""

from __future__ import annotations

import secrets
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np

from indextts_mlx.audio import file_digest, load_emotion_audio, load_speaker_audio
from indextts_mlx.conditioning import (
    ConditioningCache,
    EmotionConditioning,
    SpeakerConditioning,
    emotion_conditioning,
    speaker_conditioning,
)
from indextts_mlx.emotion_args import check_emotion_scale, resolve_emotion_mode
from indextts_mlx.errors import IndexTTSError, InputTextError, WeightsNotFoundError
from indextts_mlx.models import ModelSet
from indextts_mlx.result import SAMPLE_RATE, SEGMENT_SILENCE_MS, SegmentResult, SynthesisResult
from indextts_mlx.voices import resolve_speaker
from indextts_weights import WeightsConfig, WeightsError
from mlx_indextts_models import GenerationConfig, Sampler
from mlx_indextts_models.emotion import (
    blend_emotion_vector,
    emotion_matrix_vector,
    select_rows,
)
from mlx_indextts_models.gpt import GeneratedCodes, s_infer
from mlx_indextts_models.s2mel.regulator import target_lengths

PathLike = str | Path
#: Default number of Euler steps of the CFM and its guidance rate (``infer_v2``).
CFM_STEPS = 25
CFG_RATE = 0.7


def _stderr_progress(name: str, seconds: float) -> None:
    print(f"indextts-mlx: loaded {name} in {seconds:.1f} s", file=sys.stderr, flush=True)


class IndexTTS2:
    """The IndexTTS-2 pipeline on MLX.

    Args:
        weights: a :class:`~indextts_weights.WeightsConfig`, a weights folder, or None for
            the defaults (``$INDEXTTS_MLX_WEIGHTS_DIR`` / ``$INDEXTTS_MLX_BPE_MODEL``).
            Every required file is checked here; one error lists all that are missing.
        eager: load every model now instead of on first use (lazy is the default: a
            first synthesis then includes ~20-40 s of loading on this CPU).
        progress: print a line to stderr as each model loads (or a callable
            ``(name, seconds)``; False for silence).
        cache_dir: also keep encoded prompts on disk there (``.npz`` per prompt content),
            so a new process skips W2V-BERT and CAMPPlus for a known voice.
        low_memory: release the prompt encoders (~1.7 GB) after each new prompt.

    Raises:
        WeightsNotFoundError: a required weights file (or ``bpe.model``) is missing.
    """

    def __init__(
        self,
        weights: WeightsConfig | PathLike | None = None,
        *,
        eager: bool = False,
        progress: bool | Callable[[str, float], None] = True,
        cache_dir: PathLike | None = None,
        low_memory: bool = False,
    ) -> None:
        if not isinstance(weights, WeightsConfig):
            weights = WeightsConfig(weights_dir=weights)
        try:
            weights.validate()
        except WeightsError as e:
            raise WeightsNotFoundError(str(e)) from e
        self.weights = weights
        on_load = _stderr_progress if progress is True else (progress or None)
        self.models = ModelSet(weights, on_load)
        self.cache = ConditioningCache(cache_dir)
        self.low_memory = low_memory
        self._front_end: Any = None
        if eager:
            self.models.load_all(emotion=self.emotion_matrices_available)
            self.front_end  # noqa: B018  (loads the BPE model and the normalizers)

    # -- set-up ---------------------------------------------------------------------------

    @property
    def emotion_matrices_available(self) -> bool:
        """Whether ``emotion_matrix.npz`` and ``speaker_matrix.npz`` exist (``emo_vector``)."""
        return not self.weights.missing(require=("emotion_matrix", "speaker_matrix"))

    @property
    def front_end(self) -> Any:
        """The text front end (normalizer + ``bpe.model`` tokenizer + segmenter)."""
        if self._front_end is None:
            from indextts_mlx.text import TextFrontEnd

            self._front_end = TextFrontEnd(self.weights.bpe_model)
        return self._front_end

    # -- stages ---------------------------------------------------------------------------

    def encode_speaker(self, audio_path: PathLike) -> SpeakerConditioning:
        """Encode a speaker prompt (first 15 s), or return it from the cache.

        Returns:
            :class:`~indextts_mlx.conditioning.SpeakerConditioning` (batch 1).

        Raises:
            AudioInputError: the file is unreadable, silent or too short.
        """
        digest = file_digest(audio_path)
        cached = self.cache.get("speaker", digest)
        if cached is not None:
            return SpeakerConditioning.from_numpy(cached)
        audio = load_speaker_audio(audio_path)
        conditioning = speaker_conditioning(self.models, audio.audio_22k, audio.audio_16k)
        self.cache.put("speaker", digest, conditioning.to_numpy())
        if self.low_memory:
            self.models.release_encoders()
        return conditioning

    def encode_emotion(self, audio_path: PathLike) -> EmotionConditioning:
        """An emotion prompt (loaded at 16 kHz, first 15 s), encoded, or from the cache."""
        digest = file_digest(audio_path)
        cached = self.cache.get("emotion", digest)
        if cached is not None:
            return EmotionConditioning.from_numpy(cached)
        emotion = emotion_conditioning(self.models, load_emotion_audio(audio_path))
        self.cache.put("emotion", digest, emotion.to_numpy())
        if self.low_memory:
            self.models.release_encoders()
        return emotion

    def emotion_vector(
        self,
        speaker: SpeakerConditioning,
        emotion: EmotionConditioning,
        *,
        alpha: float = 1.0,
        emo_vector: Sequence[float] | None = None,
        rng: np.random.Generator | None = None,
    ) -> mx.array:
        """The GPT's emotion vector ``(1, 1280)``.

        ``merge_emovec``: ``base + alpha · (emo − base)`` (``base`` the speaker's own
        vector, ``emo`` the emotion prompt's); with ``emo_vector`` (already scaled by
        ``emo_alpha``), the emotion-matrix blend ``Σ wᵢ·rowᵢ + (1 − Σw) · merged``, rows
        chosen by cosine similarity to the speaker's style, or at random from ``rng``.
        """
        base = speaker.emovec
        emovec = base + alpha * (emotion.emovec - base)
        if emo_vector is not None:
            emotion_groups, speaker_groups = self.models.emotion_matrices
            rows = select_rows(speaker.style, speaker_groups, rng)
            matrix = emotion_matrix_vector(
                emo_vector, speaker.style, emotion_groups, speaker_groups, rows
            )
            emovec = blend_emotion_vector(emovec, matrix, emo_vector)
        mx.eval(emovec)
        return emovec

    def text_segments(self, text: str, max_tokens: int = 120) -> list[list[int]]:
        """BPE ids per segment (normalized, tokenized, split at ≤ ``max_tokens`` tokens)."""
        _check_text(text)
        try:
            segments = self.front_end.segments(text, max_tokens)
        except ValueError as e:
            raise InputTextError(str(e)) from e
        if not segments:
            raise InputTextError(f"text {text[:60]!r} has nothing to speak after normalization")
        return segments

    def conditioning_prefix(
        self, speaker: SpeakerConditioning, emovec: mx.array, emotion: float = 1.0
    ) -> mx.array:
        """The GPT's 34 conditioning positions ``(1, 34, 1280)``; ``emotion`` scales emovec."""
        return self.models.gpt.conditioning_prefix(speaker.spk_latent, emovec, emotion)

    def generate_codes(
        self,
        conds: mx.array,
        text_ids: Sequence[int],
        config: GenerationConfig | None = None,
        *,
        sampler: Sampler | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> GeneratedCodes:
        """Mel codes for one segment (``inference_speech``; sampled, 3 beams by default)."""
        gpt = self.models.gpt
        limit = gpt.config.mel_positions - 1
        if config is not None and config.max_new_tokens > limit:
            raise IndexTTSError(f"max_codes must be at most {limit} (the GPT's position table)")
        return gpt.generate(conds, text_ids, config, sampler=sampler, progress=progress)

    def codes_to_latent(
        self, conds: mx.array, text_ids: Sequence[int], codes: Sequence[int]
    ) -> mx.array:
        """``S_infer (1, n, 1024)``: the GPT latent pass, ``gpt_layer``, plus ``vq2emb(codes)``."""
        latent = self.models.gpt.latent(conds, text_ids, codes)
        proj = self.models.s2mel.gpt_layer(latent)
        out = s_infer(self.models.semantic_codec, mx.array([list(codes)], dtype=mx.int32), proj)
        mx.eval(out)
        return out

    def latent_to_mel(
        self,
        s_infer: mx.array,
        speaker: SpeakerConditioning,
        *,
        steps: int = CFM_STEPS,
        cfg_rate: float = CFG_RATE,
        noise: mx.array | None = None,
        seed: int | None = None,
    ) -> mx.array:
        """Mel ``(1, T_gen, 80)`` for ``S_infer``: the length regulator to
        ``floor(n·1.72)`` frames, then the CFM after the speaker's prompt frames.

        ``noise``: ``(1, T_ref + T_gen, 80)`` start noise (else drawn from ``seed``).
        """
        s2mel = self.models.s2mel
        n = s_infer.shape[1]
        cond = s2mel.length_regulator(s_infer, target_lengths(n))
        cat = mx.concatenate([speaker.prompt_condition, cond], axis=1)
        mel = s2mel.cfm.inference(
            cat, speaker.ref_mel, speaker.style, steps, cfg_rate, noise=noise, seed=seed
        )
        return mel[:, speaker.ref_mel.shape[1] :]

    def vocode(self, mel: mx.array) -> np.ndarray:
        """BigVGAN: mel ``(1, T, 80)`` → float32 ``(256·T,)`` at 22,050 Hz in ``[-1, 1]``."""
        wave = self.models.bigvgan(mel)
        return np.asarray(mx.clip(wave[0], -1.0, 1.0), dtype=np.float32)

    # -- the whole synthesis --------------------------------------------------------------

    def render(
        self,
        text: str,
        spk_audio_prompt: PathLike | None = None,
        *,
        reference_audio: PathLike | None = None,
        voices_dir: PathLike | None = None,
        voice: PathLike | None = None,
        emo_audio_prompt: PathLike | None = None,
        emo_alpha: float = 1.0,
        emo_vector: Sequence[float] | str | None = None,
        emo_text: str | None = None,
        use_emo_text: bool | None = None,
        emotion: float = 1.0,
        seed: int = 0,
        use_random: bool = False,
        max_codes: int = 1500,
        do_sample: bool = True,
        temperature: float = 0.8,
        top_k: int = 30,
        top_p: float = 0.8,
        repetition_penalty: float = 10.0,
        num_beams: int = 3,
        cfm_steps: int = CFM_STEPS,
        cfg_rate: float = CFG_RATE,
        max_text_tokens_per_segment: int = 120,
        interval_silence_ms: int = SEGMENT_SILENCE_MS,
        output_path: PathLike | None = None,
        audio_format: str | None = None,
        on_code: Callable[[int, int], None] | None = None,
    ) -> SynthesisResult:
        """Synthesize ``text`` in the prompt's voice; the full result (see :meth:`synthesize`).

        ``on_code(segment_index, codes_so_far)`` is called after each GPT step (progress).
        """
        start = time.perf_counter()
        timings: dict[str, float] = {}
        _check_text(text)
        settings = _generation_config(
            do_sample, temperature, top_k, top_p, repetition_penalty, num_beams, max_codes
        )
        check_emotion_scale(emotion)
        if cfm_steps < 1 or not cfg_rate >= 0.0:
            raise IndexTTSError(
                f"need cfm_steps >= 1 and cfg_rate >= 0, got {cfm_steps}, {cfg_rate}"
            )
        speaker_path = resolve_speaker(spk_audio_prompt, reference_audio, voice, voices_dir)
        mode = resolve_emotion_mode(emo_vector, emo_text, use_emo_text, emo_audio_prompt, emo_alpha)
        vector = mode.emo_vector  # parsed and scaled by emo_alpha, as infer_generator does
        if vector is not None and not self.emotion_matrices_available:
            try:
                self.weights.validate(emotion=True)
            except WeightsError as e:
                raise WeightsNotFoundError(f"emo_vector needs the emotion matrices: {e}") from e
        if use_random:
            seed = secrets.randbits(31)
        rng = np.random.default_rng(seed)
        mx.random.seed(seed)
        sampler = Sampler(int(rng.integers(2**31)))

        mark = time.perf_counter()
        segments = self.text_segments(text, max_text_tokens_per_segment)
        timings["text"] = time.perf_counter() - mark
        mark = time.perf_counter()
        speaker = self.encode_speaker(speaker_path)
        timings["speaker"] = time.perf_counter() - mark
        mark = time.perf_counter()
        emo_path = mode.emo_audio_prompt or speaker_path
        emovec = self.emotion_vector(
            speaker,
            self.encode_emotion(emo_path),
            alpha=mode.emo_alpha,
            emo_vector=vector,
            rng=rng if use_random else None,
        )
        conds = self.conditioning_prefix(speaker, emovec, emotion)
        timings["emotion"] = time.perf_counter() - mark

        waves: list[np.ndarray] = []
        results: list[SegmentResult] = []
        for index, ids in enumerate(segments):
            wave, result = self._render_segment(
                index,
                ids,
                conds,
                speaker,
                settings,
                sampler,
                rng,
                cfm_steps,
                cfg_rate,
                timings,
                on_code,
            )
            waves.append(wave)
            results.append(result)
        audio = _join(waves, interval_silence_ms)
        timings["total"] = time.perf_counter() - start
        out = SynthesisResult(audio, SAMPLE_RATE, results, timings, seed)
        if output_path is not None:
            from indextts_mlx.output import write_audio

            write_audio(output_path, audio, SAMPLE_RATE, audio_format)
        return out

    def _render_segment(
        self,
        index: int,
        ids: list[int],
        conds: mx.array,
        speaker: SpeakerConditioning,
        settings: GenerationConfig,
        sampler: Sampler,
        rng: np.random.Generator,
        cfm_steps: int,
        cfg_rate: float,
        timings: dict[str, float],
        on_code: Callable[[int, int], None] | None,
    ) -> tuple[np.ndarray, SegmentResult]:
        noise_seed = int(rng.integers(2**31))  # drawn even when unused: later draws stay put
        mark = time.perf_counter()
        progress = (lambda n: on_code(index, n)) if on_code is not None else None
        generated = self.generate_codes(conds, ids, settings, sampler=sampler, progress=progress)
        _add(timings, "gpt", mark)
        if not generated.stopped:
            warnings.warn(
                f"segment {index + 1}: no stop code within max_codes={settings.max_new_tokens} "
                f"({len(ids)} text tokens); the audio may be cut off. Raise max_codes or "
                "shorten the segment.",
                RuntimeWarning,
                stacklevel=3,
            )
        if not generated.codes:
            warnings.warn(f"segment {index + 1}: the GPT stopped at once; no audio", stacklevel=3)
            return np.zeros(0, np.float32), SegmentResult(ids, [], generated.stopped, 0)
        mark = time.perf_counter()
        latent = self.codes_to_latent(conds, ids, generated.codes)
        _add(timings, "latent", mark)
        mark = time.perf_counter()
        mel = self.latent_to_mel(
            latent, speaker, steps=cfm_steps, cfg_rate=cfg_rate, seed=noise_seed
        )
        mx.eval(mel)
        _add(timings, "s2mel", mark)
        mark = time.perf_counter()
        wave = self.vocode(mel)
        _add(timings, "bigvgan", mark)
        return wave, SegmentResult(ids, list(generated.codes), generated.stopped, wave.shape[0])

    def synthesize(
        self, text: str, spk_audio_prompt: PathLike | None = None, **kwargs: Any
    ) -> np.ndarray:
        """Speech for ``text`` in the voice of a prompt.

        Args:
            text: what to say (English or Chinese; long text is split into segments).
            spk_audio_prompt: the speaker's voice (any format soundfile/librosa reads; the
                first 15 s are used). ``reference_audio=`` is an alias; or ``voice=`` (a
                name in ``voices_dir``, or a file path without ``voices_dir``).
            **kwargs: the keyword arguments of :meth:`render`: emotion (``emo_audio_prompt``,
                ``emo_alpha``, ``emo_vector`` (8 weights: happy, angry, sad, afraid,
                disgusted, melancholic, surprised, calm), ``emotion`` scale 0-2),
                determinism (``seed``, ``use_random``), ``max_codes``, sampling
                (``temperature``, ``top_k``, ``top_p``, ``repetition_penalty``,
                ``num_beams``, ``do_sample``), ``cfm_steps``, ``cfg_rate``,
                ``output_path`` / ``audio_format``.

        Returns:
            ``numpy.ndarray`` of dtype float32, shape ``(N,)``: mono audio at 22,050 Hz in
            ``[-1, 1]``.
        """
        return self.render(text, spk_audio_prompt, **kwargs).audio


def _generation_config(
    do_sample: bool,
    temperature: float,
    top_k: int,
    top_p: float,
    repetition_penalty: float,
    num_beams: int,
    max_codes: int,
) -> GenerationConfig:
    try:
        return GenerationConfig(
            do_sample=do_sample,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            repetition_penalty=repetition_penalty,
            num_beams=num_beams,
            max_new_tokens=max_codes,
        )
    except ValueError as e:
        raise IndexTTSError(f"invalid generation setting: {e}") from e


def _check_text(text: object) -> None:
    if not isinstance(text, str):
        raise InputTextError(f"text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InputTextError("text is empty: give at least one word to speak")


def _add(timings: dict[str, float], stage: str, since: float) -> None:
    timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - since


def _join(waves: list[np.ndarray], silence_ms: int) -> np.ndarray:
    """Segments joined with ``silence_ms`` of zeros between them (not after the last)."""
    gap = np.zeros(int(SAMPLE_RATE * silence_ms / 1000.0), np.float32)
    parts: list[np.ndarray] = []
    for i, wave in enumerate(waves):
        if i:
            parts.append(gap)
        parts.append(wave)
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


_DEFAULT_PIPELINES: dict[str, IndexTTS2] = {}


def synthesize(
    text: str,
    spk_audio_prompt: PathLike | None = None,
    *,
    weights: WeightsConfig | PathLike | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """One-call synthesis: :meth:`IndexTTS2.synthesize` on a pipeline kept per weights
    folder for the life of the process (models load once).

    Returns:
        float32 ``(N,)`` mono audio at 22,050 Hz.
    """
    config = weights if isinstance(weights, WeightsConfig) else WeightsConfig(weights_dir=weights)
    key = repr(config)
    if key not in _DEFAULT_PIPELINES:
        _DEFAULT_PIPELINES[key] = IndexTTS2(config)
    return _DEFAULT_PIPELINES[key].synthesize(text, spk_audio_prompt, **kwargs)
