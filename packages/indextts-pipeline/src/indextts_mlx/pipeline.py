"""``IndexTTS2``: text + a speaker prompt (+ an emotion) → speech, as ``infer_v2`` does it.

The stages are public methods so that parity tests, benchmarks and other front ends can
run them one by one; :meth:`IndexTTS2.run` composes them for one
:class:`~indextts_mlx.settings.SynthesisRequest`, :meth:`IndexTTS2.render` takes the
reference's flat keywords, and :meth:`IndexTTS2.synthesize` returns just the audio:

1. :meth:`prepare` checks every input (no model runs before all of them pass;
   :func:`prepare_request` is the part that needs no weights);
2. :meth:`text_segments` (docs/data-flow.md step 12);
3. :meth:`encode_speaker` (steps 3-9, 15), cached per file content;
4. :meth:`conditioning`: :meth:`encode_emotion` (step 11), :meth:`emotion_vector`
   (steps 10, 14) and :meth:`conditioning_prefix`;
5. per segment (:meth:`render_segment`) :meth:`generate_codes` (16-17),
   :meth:`codes_to_latent` (18-19: the GPT latent pass, ``gpt_layer`` and ``vq2emb``,
   i.e. ``S_infer``), :meth:`latent_to_mel` (19-20) and :meth:`vocode` (21);
6. segments joined with 200 ms of silence (22).

Randomness: with ``use_random=False`` (the default) every draw (GPT sampling, the CFM
start noise, random emotion rows) comes from ``seed``, so the same call gives the same
samples, bit for bit, in any process on the same machine.
"""

from __future__ import annotations

import secrets
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

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
from indextts_mlx.emotion_args import EMOTION_SCALE, EmotionMode
from indextts_mlx.errors import InputTextError, ModelInputError, translate_errors
from indextts_mlx.first_run import ensure_weights
from indextts_mlx.models import LoadProgress, ModelSet, Precision, WhenLoaded
from indextts_mlx.output import audio_format_for, write_audio
from indextts_mlx.result import SAMPLE_RATE, SegmentResult, SynthesisResult
from indextts_mlx.settings import SynthesisRequest
from indextts_mlx.text.tokenize import MAX_TEXT_TOKENS_PER_SEGMENT
from indextts_weights import WeightsConfig
from mlx_indextts_models import GenerationConfig, Sampler
from mlx_indextts_models.emotion import (
    blend_emotion_vector,
    emotion_matrix_vector,
    select_rows,
)
from mlx_indextts_models.gpt import GeneratedCodes, s_infer
from mlx_indextts_models.s2mel.cfm import CFMSettings
from mlx_indextts_models.s2mel.regulator import target_lengths

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from indextts_mlx.settings import RenderOptions, SynthesisOptions
    from indextts_mlx.text import TextFrontEnd

PathLike = str | Path
#: A prompt's conditioning (speaker or emotion), as the cache stores it.
P = TypeVar("P", SpeakerConditioning, EmotionConditioning)
#: ``on_code(segment_index, codes_so_far)``, called after each GPT step.
OnCode = Callable[[int, int], None]


def _stderr_progress(name: str, seconds: float) -> None:
    print(f"indextts-mlx: loaded {name} in {seconds:.1f} s", file=sys.stderr, flush=True)


def _load_progress(
    progress: bool | Callable[[str, float], None] | LoadProgress,
) -> LoadProgress | None:
    if progress is True:
        return WhenLoaded(_stderr_progress)
    if not progress:
        return None
    if isinstance(progress, LoadProgress):
        return progress
    return WhenLoaded(progress)


@contextmanager
def timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Add the block's wall time to ``timings[stage]`` (seconds)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


@dataclass(frozen=True)
class PreparedRequest:
    """A request whose inputs were all checked: the speaker file, the emotion mode and
    the seed every draw of this synthesis comes from."""

    request: SynthesisRequest
    speaker_path: Path
    emotion: EmotionMode
    seed: int


@dataclass
class Draws:
    """The random state of one synthesis. Draws always come in this order, so one seed
    gives the same audio: the sampler's seed, then (``use_random`` only) the emotion
    rows, then one CFM noise seed per segment."""

    rng: np.random.Generator
    sampler: Sampler

    @classmethod
    def from_seed(cls, seed: int) -> Draws:
        rng = np.random.default_rng(seed)
        mx.random.seed(seed)
        return cls(rng, Sampler(int(rng.integers(2**31))))

    def noise_seed(self) -> int:
        return int(self.rng.integers(2**31))


@dataclass(frozen=True)
class Conditioning:
    """What every segment of one synthesis shares: the speaker and the GPT prefix
    ``(1, 34, 1280)`` with the emotion in it."""

    speaker: SpeakerConditioning
    prefix: mx.array


class IndexTTS2:
    """The IndexTTS-2 pipeline on MLX.

    Args:
        weights: a :class:`~indextts_weights.WeightsConfig`, a weights folder, or None for
            the defaults (``$INDEXTTS_MLX_WEIGHTS_DIR`` / ``$INDEXTTS_MLX_BPE_MODEL``).
            Every required file is checked here; one error says what is missing.
        eager: load every model now instead of on first use (lazy is the default: a
            first synthesis then includes the loading).
        progress: print a line to stderr as each model loads; or a callable
            ``(name, seconds)``, or a :class:`~indextts_mlx.models.LoadProgress` (told the
            bytes as they are read: a progress bar); False for silence.
        cache_dir: also keep encoded prompts on disk there (``.npz`` per prompt content),
            so a new process skips W2V-BERT and CAMPPlus for a known voice.
        low_memory: release the prompt encoders (~1.7 GB) after each new prompt.
        download: fetch and convert the official files when the folder lacks them (off by
            default: several GB; :meth:`from_pretrained` turns it on).
        dtype: hold the models in ``"float16"`` or ``"bfloat16"`` (or ``"float32"``), or a
            mapping from model name to dtype (see :class:`~indextts_mlx.models.Precision`);
            None keeps the files' precision. Half precision is for Metal and CUDA; on the
            CPU, float32 is the fast path.
        quantize_gpt: 8 or 4: quantize the GPT-2 blocks' weights to that many bits after
            loading (smaller and faster decoding where MLX has quantized kernels).

    Raises:
        WeightsNotFoundError: a required weights file (or ``bpe.model``) is missing (and
            ``download`` is off, or offline is requested by the environment).
    """

    def __init__(
        self,
        weights: WeightsConfig | PathLike | None = None,
        *,
        eager: bool = False,
        progress: bool | Callable[[str, float], None] | LoadProgress = True,
        cache_dir: PathLike | None = None,
        low_memory: bool = False,
        download: bool = False,
        dtype: str | Mapping[str, str] | None = None,
        quantize_gpt: int | None = None,
    ) -> None:
        if not isinstance(weights, WeightsConfig):
            weights = WeightsConfig(weights_dir=weights)
        precision = Precision(dtype, quantize_gpt)  # checked before anything is fetched
        say = (lambda line: print(line, file=sys.stderr, flush=True)) if progress else None
        ensure_weights(weights, download=download, say=say)
        self.weights = weights
        self.precision = precision
        self.models = ModelSet(weights, _load_progress(progress), precision)
        # prompts encoded at another precision are other numbers: a folder of their own
        label = precision.label
        self.cache = ConditioningCache(
            Path(cache_dir) / label if cache_dir and label else cache_dir
        )
        self.low_memory = low_memory
        self._front_end: TextFrontEnd | None = None
        if eager:
            self.models.load_all(emotion=self.emotion_matrices_available)
            self.front_end  # noqa: B018  (loads the BPE model and the normalizers)

    @classmethod
    def from_pretrained(
        cls, weights: WeightsConfig | PathLike | None = None, **kwargs: Any
    ) -> IndexTTS2:
        """``IndexTTS2(weights, download=True, **kwargs)``: on first use, fetch the official
        IndexTTS-2 files from the Hugging Face Hub and convert them into the weights
        folder (as mlx-lm's ``load`` does); later, just load."""
        return cls(weights, download=True, **kwargs)

    # -- set-up ---------------------------------------------------------------------------

    @property
    def emotion_matrices_available(self) -> bool:
        """Whether ``emotion_matrix.npz`` and ``speaker_matrix.npz`` exist (``emo_vector``)."""
        return not self.weights.missing(require=("emotion_matrix", "speaker_matrix"))

    @property
    def front_end(self) -> TextFrontEnd:
        """The text front end (normalizer + ``bpe.model`` tokenizer + segmenter)."""
        if self._front_end is None:
            from indextts_mlx.text import TextFrontEnd

            self._front_end = TextFrontEnd(self.weights.path("bpe_model"))
        return self._front_end

    def prepare(self, request: SynthesisRequest | PreparedRequest) -> PreparedRequest:
        """:func:`prepare_request`, plus the weights the request needs beyond the
        required ones (the emotion matrices, for ``emo_vector``)."""
        prepared = request if isinstance(request, PreparedRequest) else prepare_request(request)
        if prepared.emotion.emo_vector is not None and not self.emotion_matrices_available:
            with translate_errors("emo_vector needs the emotion matrices"):
                self.weights.validate(emotion=True)
        return prepared

    # -- stages ---------------------------------------------------------------------------

    def encode_speaker(self, audio_path: PathLike) -> SpeakerConditioning:
        """Encode a speaker prompt (first 15 s), or return it from the cache.

        Returns:
            :class:`~indextts_mlx.conditioning.SpeakerConditioning` (batch 1).

        Raises:
            AudioInputError: the file is unreadable, silent or too short.
        """

        def encode() -> SpeakerConditioning:
            audio = load_speaker_audio(audio_path)
            return speaker_conditioning(self.models, audio.audio_22k, audio.audio_16k)

        return self._encoded("speaker", audio_path, SpeakerConditioning.from_numpy, encode)

    def encode_emotion(self, audio_path: PathLike) -> EmotionConditioning:
        """An emotion prompt (loaded at 16 kHz, first 15 s), encoded, or from the cache."""

        def encode() -> EmotionConditioning:
            return emotion_conditioning(self.models, load_emotion_audio(audio_path))

        return self._encoded("emotion", audio_path, EmotionConditioning.from_numpy, encode)

    def _encoded(
        self,
        kind: str,
        audio_path: PathLike,
        decode: Callable[[dict[str, np.ndarray]], P],
        encode: Callable[[], P],
    ) -> P:
        """A prompt's conditioning from the cache (by file content), else encoded and
        cached (the encoders released afterwards with ``low_memory``)."""
        digest = file_digest(audio_path)
        cached = self.cache.get(kind, digest)
        if cached is not None:
            return decode(cached)
        with translate_errors(f"{kind} prompt"):
            conditioning = encode()
        self.cache.put(kind, digest, conditioning.to_numpy())
        if self.low_memory:
            self.models.release_encoders()
        return conditioning

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

    def conditioning_prefix(
        self, speaker: SpeakerConditioning, emovec: mx.array, emotion: float = EMOTION_SCALE
    ) -> mx.array:
        """The GPT's 34 conditioning positions ``(1, 34, 1280)``; ``emotion`` scales emovec."""
        with translate_errors("gpt conditioning"):
            dtype = self.models.dtype("gpt")
            latent, emovec = speaker.spk_latent.astype(dtype), emovec.astype(dtype)
            return self.models.gpt.conditioning_prefix(latent, emovec, emotion)

    def conditioning(
        self, speaker: SpeakerConditioning, prepared: PreparedRequest, draws: Draws
    ) -> Conditioning:
        """The speaker and emotion of ``prepared`` as the GPT prefix every segment shares
        (the emotion audio is the speaker's own unless the request gives one)."""
        mode = prepared.emotion
        emovec = self.emotion_vector(
            speaker,
            self.encode_emotion(mode.emo_audio_prompt or prepared.speaker_path),
            alpha=mode.emo_alpha,
            emo_vector=mode.emo_vector,
            rng=draws.rng if prepared.request.use_random else None,
        )
        prefix = self.conditioning_prefix(speaker, emovec, prepared.request.emotion.emotion)
        return Conditioning(speaker, prefix)

    def text_segments(
        self, text: str, max_tokens: int = MAX_TEXT_TOKENS_PER_SEGMENT
    ) -> list[list[int]]:
        """BPE ids per segment (normalized, tokenized, split at ≤ ``max_tokens`` tokens)."""
        check_text(text)
        try:
            segments = self.front_end.segments(text, max_tokens)
        except ValueError as e:
            raise InputTextError(str(e)) from e
        if not segments:
            raise InputTextError(f"text {text[:60]!r} has nothing to speak after normalization")
        return segments

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
        limit = gpt.args.mel_positions - 1
        if config is not None and config.max_new_tokens > limit:
            raise ModelInputError(f"max_codes must be at most {limit} (the GPT's position table)")
        with translate_errors("gpt"):
            return gpt.generate(conds, text_ids, config, sampler=sampler, progress=progress)

    def codes_to_latent(
        self, conds: mx.array, text_ids: Sequence[int], codes: Sequence[int]
    ) -> mx.array:
        """``S_infer (1, n, 1024)``: the GPT latent pass, ``gpt_layer``, plus ``vq2emb(codes)``."""
        with translate_errors("gpt latent"):
            latent = self.models.gpt.latent(conds, text_ids, codes)
            proj = self.models.s2mel.gpt_layer(latent.astype(self.models.dtype("s2mel")))
            codes_array = mx.array([list(codes)], dtype=mx.int32)
            proj = proj.astype(self.models.dtype("semantic_codec"))
            out = s_infer(self.models.semantic_codec, codes_array, proj)
            mx.eval(out)
        return out

    def latent_to_mel(
        self,
        s_infer: mx.array,
        speaker: SpeakerConditioning,
        cfm: CFMSettings | None = None,
        *,
        noise: mx.array | None = None,
        seed: int | None = None,
    ) -> mx.array:
        """Mel ``(1, T_gen, 80)`` for ``S_infer``: the length regulator to
        ``floor(n·1.72)`` frames, then the CFM after the speaker's prompt frames.

        ``noise``: ``(1, T_ref + T_gen, 80)`` start noise (else drawn from ``seed``).
        """
        cfm = cfm or CFMSettings()
        with translate_errors("s2mel"):
            s2mel, dtype = self.models.s2mel, self.models.dtype("s2mel")
            s_infer = s_infer.astype(dtype)
            cond = s2mel.length_regulator(s_infer, target_lengths(s_infer.shape[1]))
            cat = mx.concatenate([speaker.prompt_condition.astype(dtype), cond], axis=1)
            mel = s2mel.cfm.inference(
                cat, speaker.ref_mel.astype(dtype), speaker.style.astype(dtype), cfm.steps,
                cfm.cfg_rate, noise=noise, seed=seed,
            )  # fmt: skip
            mel = mel[:, speaker.ref_mel.shape[1] :]
            mx.eval(mel)
        return mel

    def vocode(self, mel: mx.array) -> np.ndarray:
        """BigVGAN: mel ``(1, T, 80)`` → float32 ``(256·T,)`` at 22,050 Hz in ``[-1, 1]``."""
        with translate_errors("bigvgan"):
            wave = self.models.bigvgan(mel.astype(self.models.dtype("bigvgan")))
            return np.asarray(mx.clip(wave[0], -1.0, 1.0).astype(mx.float32))

    def render_segment(
        self,
        text_ids: list[int],
        conditioning: Conditioning,
        request: SynthesisRequest,
        draws: Draws,
        *,
        index: int = 0,
        on_code: OnCode | None = None,
    ) -> tuple[np.ndarray, SegmentResult]:
        """One segment's audio: codes → ``S_infer`` → mel → waveform (float32, 22,050 Hz),
        and its result (codes, the seconds of its ``gpt``, ``latent``, ``s2mel`` and
        ``bigvgan`` stages). ``index`` numbers the segment in warnings and ``on_code``."""
        timings: dict[str, float] = {}
        noise_seed = draws.noise_seed()  # drawn even when unused: later draws stay put
        progress = (lambda n: on_code(index, n)) if on_code is not None else None
        with timed(timings, "gpt"):
            generated = self.generate_codes(
                conditioning.prefix, text_ids, request.generation,
                sampler=draws.sampler, progress=progress,
            )  # fmt: skip
        _warn_if_cut(generated, index, len(text_ids), request.generation.max_new_tokens)
        if not generated.codes:
            warnings.warn(f"segment {index + 1}: the GPT stopped at once; no audio", stacklevel=2)
            empty = SegmentResult(text_ids, [], generated.stopped, 0, timings)
            return np.zeros(0, np.float32), empty
        with timed(timings, "latent"):
            latent = self.codes_to_latent(conditioning.prefix, text_ids, generated.codes)
        with timed(timings, "s2mel"):
            mel = self.latent_to_mel(latent, conditioning.speaker, cfm=request.cfm, seed=noise_seed)
        with timed(timings, "bigvgan"):
            wave = self.vocode(mel)
        codes = list(generated.codes)
        return wave, SegmentResult(text_ids, codes, generated.stopped, wave.shape[0], timings)

    # -- the whole synthesis --------------------------------------------------------------

    def run(
        self, request: SynthesisRequest | PreparedRequest, *, on_code: OnCode | None = None
    ) -> SynthesisResult:
        """Synthesize one request; the recipe of the module docstring.

        ``on_code(segment_index, codes_so_far)`` is called after each GPT step (progress).
        """
        timings: dict[str, float] = {}
        with timed(timings, "total"):
            prepared = self.prepare(request)  # 1. every input checked before any model runs
            request = prepared.request
            draws = Draws.from_seed(prepared.seed)
            with timed(timings, "text"):  # 2.
                segments = self.text_segments(request.text, request.max_text_tokens_per_segment)
            with timed(timings, "speaker"):  # 3.
                speaker = self.encode_speaker(prepared.speaker_path)
            with timed(timings, "emotion"):  # 4.
                conditioning = self.conditioning(speaker, prepared, draws)
            waves, results = [], []
            for index, ids in enumerate(segments):  # 5.
                wave, result = self.render_segment(
                    ids, conditioning, request, draws,
                    index=index, on_code=on_code,
                )  # fmt: skip
                waves.append(wave)
                results.append(result)
                for stage, seconds in result.timings.items():
                    timings[stage] = timings.get(stage, 0.0) + seconds
            audio = join_segments(waves, request.interval_silence_ms)  # 6.
        return SynthesisResult(audio, SAMPLE_RATE, results, timings, prepared.seed)

    def render(
        self,
        text: str,
        spk_audio_prompt: PathLike | None = None,
        *,
        output_path: PathLike | None = None,
        audio_format: str | None = None,
        on_code: OnCode | None = None,
        **options: Unpack[SynthesisOptions],
    ) -> SynthesisResult:
        """Synthesize ``text`` in the prompt's voice; the full result (see :meth:`synthesize`
        for the options, :meth:`run` for the typed form).

        ``output_path`` (format from its extension, or ``audio_format``) is checked before
        the synthesis and written atomically after it.
        """
        request = SynthesisRequest.from_options(text, spk_audio_prompt, **options)
        if output_path is not None:
            audio_format_for(output_path, audio_format)
        result = self.run(request, on_code=on_code)
        if output_path is not None:
            write_audio(output_path, result.audio, result.sample_rate, audio_format)
        return result

    def synthesize(
        self, text: str, spk_audio_prompt: PathLike | None = None, **kwargs: Unpack[RenderOptions]
    ) -> np.ndarray:
        """Speech for ``text`` in the voice of a prompt.

        Args:
            text: what to say (English or Chinese; long text is split into segments).
            spk_audio_prompt: the speaker's voice (any format soundfile/librosa reads; the
                first 15 s are used). ``reference_audio=`` is an alias; or ``voice=`` (a
                name in ``voices_dir``, or a file path without ``voices_dir``).
            **kwargs: :class:`~indextts_mlx.settings.RenderOptions`: emotion
                (``emo_audio_prompt``, ``emo_alpha``, ``emo_vector`` (8 weights: happy,
                angry, sad, afraid, disgusted, melancholic, surprised, calm), ``emotion``
                scale 0-2), determinism (``seed``, ``use_random``), ``max_codes``,
                sampling (``temperature``, ``top_k``, ``top_p``, ``repetition_penalty``,
                ``num_beams``, ``do_sample``), ``cfm_steps``, ``cfg_rate``
                (defaults: :data:`~indextts_mlx.settings.DEFAULTS`); ``output_path`` /
                ``audio_format`` to also write the audio.

        Returns:
            ``numpy.ndarray`` of dtype float32, shape ``(N,)``: mono audio at 22,050 Hz in
            ``[-1, 1]``.
        """
        return self.render(text, spk_audio_prompt, **kwargs).audio


def prepare_request(request: SynthesisRequest) -> PreparedRequest:
    """Check every input of ``request`` that needs neither weights nor a model: the
    text, the speaker file, the emotion; fix the seed (a fresh one with ``use_random``).

    Raises:
        IndexTTSError: the subclass that names the bad input.
    """
    check_text(request.text)
    speaker_path = request.speaker.resolve()
    emotion = request.emotion.resolve()
    seed = secrets.randbits(31) if request.use_random else request.seed
    return PreparedRequest(request, speaker_path, emotion, seed)


def check_text(text: object) -> None:
    """Raise :class:`InputTextError` unless ``text`` is a string with something in it."""
    if not isinstance(text, str):
        raise InputTextError(f"text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InputTextError("text is empty: give at least one word to speak")


def _warn_if_cut(generated: GeneratedCodes, index: int, text_tokens: int, limit: int) -> None:
    if not generated.stopped:
        warnings.warn(
            f"segment {index + 1}: no stop code within max_codes={limit} ({text_tokens} "
            "text tokens); the audio may be cut off. Raise max_codes or shorten the segment.",
            RuntimeWarning,
            stacklevel=3,
        )


def join_segments(waves: list[np.ndarray], silence_ms: int) -> np.ndarray:
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
    **kwargs: Unpack[RenderOptions],
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
