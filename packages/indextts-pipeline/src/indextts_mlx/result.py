"""What a synthesis returns besides the audio."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Output sample rate of BigVGAN (Hz).
SAMPLE_RATE = 22050
#: Silence between segments (``interval_silence``), in milliseconds.
SEGMENT_SILENCE_MS = 200


@dataclass
class SegmentResult:
    """One text segment: its BPE ids, the mel codes the GPT chose (stop code excluded),
    whether decoding ended on the stop code, its audio sample count, and the seconds of
    its stages (``gpt``, ``latent``, ``s2mel``, ``bigvgan``)."""

    text_ids: list[int]
    codes: list[int]
    stopped: bool
    samples: int
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class SynthesisResult:
    """A whole synthesis.

    Attributes:
        audio: float32 ``(N,)`` mono waveform in ``[-1, 1]`` at :attr:`sample_rate`.
        sample_rate: 22,050 Hz.
        segments: per text segment, in order.
        timings: seconds per stage (``speaker``, ``emotion``, ``text``, ``gpt``,
            ``latent``, ``s2mel``, ``bigvgan``, ``total``), summed over segments.
        seed: the seed every random draw came from (the drawn one with ``use_random``).
    """

    audio: np.ndarray
    sample_rate: int = SAMPLE_RATE
    segments: list[SegmentResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    seed: int = 0

    @property
    def duration(self) -> float:
        """Audio length in seconds."""
        return float(self.audio.shape[0] / self.sample_rate)
