"""IndexTTS-2 zero-shot text-to-speech on MLX (``from indextts_mlx import IndexTTS2``).

Importing this package runs the fast-BLAS bootstrap (via ``indextts_weights``) before
anything imports MLX.

    tts = IndexTTS2()                                   # weights from the defaults / env vars
    audio = tts.synthesize("Hello.", spk_audio_prompt="speaker.wav")   # float32 (N,), 22,050 Hz
"""

from indextts_weights import WeightsConfig, blas_status

# isort: split

from indextts_mlx.chapter import (
    ChapterRenderError,
    ChapterReport,
    SegmentsFileError,
    render_segments_jsonl,
)
from indextts_mlx.emotion_args import EMOTIONS, parse_emo_vector
from indextts_mlx.errors import (
    AudioInputError,
    EmotionInputError,
    FeatureNotAvailableError,
    IndexTTSError,
    InputTextError,
    ModelInputError,
    VoiceNotFoundError,
    WeightsLoadError,
    WeightsNotFoundError,
)
from indextts_mlx.pipeline import IndexTTS2, synthesize
from indextts_mlx.result import SAMPLE_RATE, SegmentResult, SynthesisResult
from indextts_mlx.settings import DEFAULTS, SynthesisOptions, SynthesisRequest
from indextts_mlx.voices import list_voices, resolve_voice

__version__ = "0.1.0"

__all__ = [
    "DEFAULTS",
    "EMOTIONS",
    "SAMPLE_RATE",
    "AudioInputError",
    "ChapterRenderError",
    "ChapterReport",
    "EmotionInputError",
    "FeatureNotAvailableError",
    "IndexTTS2",
    "IndexTTSError",
    "InputTextError",
    "ModelInputError",
    "SegmentResult",
    "SegmentsFileError",
    "SynthesisOptions",
    "SynthesisRequest",
    "SynthesisResult",
    "VoiceNotFoundError",
    "WeightsConfig",
    "WeightsLoadError",
    "WeightsNotFoundError",
    "blas_status",
    "list_voices",
    "parse_emo_vector",
    "render_segments_jsonl",
    "resolve_voice",
    "synthesize",
]
