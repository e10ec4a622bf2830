"""The conditioning side of the IndexTTS-2 GPT (``indextts/gpt/model_v2.py: UnifiedVoice``).

docs/data-flow.md steps 14-16, from the normalized W2V-BERT features ``(B, T, 1024)``
(``spk_cond_emb`` of the speaker prompt, ``emo_cond_emb`` of the emotion prompt):

* speaker latents (``get_conditioning``, ``condition_type="conformer_perceiver"``):
  ``conditioning_encoder`` (Conformer, 6 blocks) → ``perceiver_encoder`` (32 latents,
  1280) → ``(B, 32, 1280)``;
* emotion vector (``get_emovec``): ``emo_conditioning_encoder`` (Conformer, 4 blocks) →
  ``emo_perceiver_encoder`` (1 latent, 1024) → ``emovec_layer`` (1024 → 1280) →
  ``emo_layer`` (1280 → 1280) → ``(B, 1280)``; ``merge_emovec`` blends the speaker's and
  the emotion prompt's vectors: ``base + alpha · (emo − base)``;
* the 34-position prefix of the GPT input (``inference_speech``/``forward``):
  ``cat(spk_latent + emovec[:, None], speed_emb[1], speed_emb[0])`` (the "half" speed
  embedding, index 1, comes first).

**Lengths.** ``infer_v2`` passes ``torch.tensor([spk_cond_emb.shape[-1]])`` as the
conformers' lengths: the feature size 1024, not the frame count. The encoders therefore
treat frames ``0..1023`` as valid and mask the rest; for the prompts IndexTTS-2 makes
(cut to 15 s ≈ 750 frames) every frame is valid. ``lengths=None`` reproduces exactly that
(:data:`REFERENCE_LENGTH`); pass real frame counts only for batches padded on purpose.

The attribute names equal ``UnifiedVoice``'s, so the full GPT can hold these modules
directly and the ``gpt.pth`` keys load unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import mlx.core as mx
import mlx.nn as nn

from mlx_indextts_models.config import from_dict, own_fields
from mlx_indextts_models.conformer import ConformerArgs, ConformerEncoder
from mlx_indextts_models.perceiver import PerceiverArgs, PerceiverResampler

#: The "length" ``infer_v2`` gives every conditioning sequence (``spk_cond_emb.shape[-1]``).
REFERENCE_LENGTH = 1024

Lengths = Sequence[int] | mx.array | None


@dataclass
class ConditionModuleArgs:
    """``cfg.gpt.condition_module`` / ``emo_condition_module`` (upstream names; the
    speaker encoder's values by default): a conditioning Conformer and the feed-forward
    multiplier of the Perceiver after it."""

    output_size: int = 512
    linear_units: int = 2048
    attention_heads: int = 8
    num_blocks: int = 6
    input_layer: str = "conv2d2"
    perceiver_mult: float = 2

    def conformer(self, input_size: int) -> ConformerArgs:
        """The Conformer over ``input_size``-wide features."""
        return ConformerArgs(
            input_size=input_size,
            output_size=self.output_size,
            attention_heads=self.attention_heads,
            linear_units=self.linear_units,
            num_blocks=self.num_blocks,
            input_layer=self.input_layer,
        )

    def perceiver(self, dim: int, num_latents: int) -> PerceiverArgs:
        """The Perceiver of ``num_latents`` latents of width ``dim`` over the Conformer."""
        return PerceiverArgs(
            dim=dim,
            dim_context=self.output_size,
            ff_mult=self.perceiver_mult,
            heads=self.attention_heads,
            num_latents=num_latents,
        )


def _emotion_module() -> ConditionModuleArgs:
    return ConditionModuleArgs(linear_units=1024, attention_heads=4, num_blocks=4)


@dataclass
class GPTConditioningArgs:
    """The ``cfg.gpt`` fields the conditioning uses (upstream names; IndexTTS-2 values)."""

    model_dim: int = 1280
    condition_num_latent: int = 32
    condition_type: str = "conformer_perceiver"
    condition_module: ConditionModuleArgs = field(default_factory=ConditionModuleArgs)
    emo_condition_module: ConditionModuleArgs = field(default_factory=_emotion_module)
    feature_size: int = 1024  # UnifiedVoice hard-codes ConformerEncoder(input_size=1024)
    emo_dim: int = 1024  # UnifiedVoice hard-codes PerceiverResampler(1024, ...) for emotion

    def __post_init__(self) -> None:
        if self.condition_type != "conformer_perceiver":
            raise ValueError(
                f"condition_type={self.condition_type!r}: only 'conformer_perceiver' is ported"
            )

    @classmethod
    def from_config(cls, gpt: Mapping[str, object]) -> GPTConditioningArgs:
        """From ``cfg.gpt`` of the official ``config.yaml``: this class's fields, built by
        :func:`~mlx_indextts_models.config.from_dict` (the condition modules strictly); the
        other keys of ``cfg.gpt`` (the GPT's, training settings) are not read."""
        return from_dict(cls, own_fields(cls, gpt))

    @property
    def conformer(self) -> ConformerArgs:
        """The speaker Conformer (``conditioning_encoder``)."""
        return self.condition_module.conformer(self.feature_size)

    @property
    def emo_conformer(self) -> ConformerArgs:
        """The emotion Conformer (``emo_conditioning_encoder``)."""
        return self.emo_condition_module.conformer(self.feature_size)

    @property
    def perceiver(self) -> PerceiverArgs:
        """The speaker Perceiver (``perceiver_encoder``: ``condition_num_latent`` latents)."""
        return self.condition_module.perceiver(self.model_dim, self.condition_num_latent)

    @property
    def emo_perceiver(self) -> PerceiverArgs:
        """The emotion Perceiver (``emo_perceiver_encoder``: one latent of ``emo_dim``)."""
        return self.emo_condition_module.perceiver(self.emo_dim, 1)


def _perceiver_mask(mask: mx.array, num_latents: int) -> mx.array:
    """``nn.ConstantPad1d((num_latents, 0), True)`` of the encoder's ``(B, T')`` mask."""
    latents = mx.ones((mask.shape[0], num_latents), dtype=mx.bool_)
    return mx.concatenate([latents, mask], axis=1)


def _lengths(lengths: Lengths, batch: int) -> Sequence[int] | mx.array:
    return [REFERENCE_LENGTH] * batch if lengths is None else lengths


class GPTConditioning(nn.Module):
    """Speaker latents, emotion vectors and the conditioning prefix of ``UnifiedVoice``."""

    def __init__(self, args: GPTConditioningArgs | None = None) -> None:
        super().__init__()
        args = args or GPTConditioningArgs()
        self.conditioning_args = args
        self.conditioning_encoder = ConformerEncoder(args.conformer)
        self.perceiver_encoder = PerceiverResampler(args.perceiver)
        self.emo_conditioning_encoder = ConformerEncoder(args.emo_conformer)
        self.emo_perceiver_encoder = PerceiverResampler(args.emo_perceiver)
        self.emo_layer = nn.Linear(args.model_dim, args.model_dim)
        self.emovec_layer = nn.Linear(args.emo_dim, args.model_dim)
        self.speed_emb = nn.Embedding(2, args.model_dim)

    def get_conditioning(self, spk_cond_emb: mx.array, lengths: Lengths = None) -> mx.array:
        """Speaker latents.

        Args:
            spk_cond_emb: ``(B, T, 1024)`` normalized W2V-BERT features of the prompt.
            lengths: ``(B,)`` valid frames; None = the reference's 1024 (module docstring).

        Returns:
            ``(B, condition_num_latent, model_dim)`` = ``(B, 32, 1280)``.
        """
        x, mask = self.conditioning_encoder(spk_cond_emb, _lengths(lengths, spk_cond_emb.shape[0]))
        mask = _perceiver_mask(mask, self.conditioning_args.condition_num_latent)
        return self.perceiver_encoder(x, mask)

    def get_emo_conditioning(self, emo_cond_emb: mx.array, lengths: Lengths = None) -> mx.array:
        """``(B, T, 1024)`` → the emotion perceiver's single latent ``(B, 1024)``."""
        x, mask = self.emo_conditioning_encoder(
            emo_cond_emb, _lengths(lengths, emo_cond_emb.shape[0])
        )
        return self.emo_perceiver_encoder(x, _perceiver_mask(mask, 1))[:, 0]

    def get_emovec(self, emo_cond_emb: mx.array, lengths: Lengths = None) -> mx.array:
        """Emotion vector of a prompt: ``emo_layer(emovec_layer(get_emo_conditioning(x)))``,
        ``(B, T, 1024)`` → ``(B, model_dim)``."""
        return self.emo_layer(self.emovec_layer(self.get_emo_conditioning(emo_cond_emb, lengths)))

    def merge_emovec(
        self,
        spk_cond_emb: mx.array,
        emo_cond_emb: mx.array,
        alpha: float = 1.0,
        spk_lengths: Lengths = None,
        emo_lengths: Lengths = None,
    ) -> mx.array:
        """``base + alpha · (emo − base)`` with ``base = get_emovec(spk_cond_emb)`` and
        ``emo = get_emovec(emo_cond_emb)``, ``(B, model_dim)`` (evaluated as the reference
        does, so ``alpha = 1`` is not short-cut to ``emo``)."""
        emo = self.get_emovec(emo_cond_emb, emo_lengths)
        base = self.get_emovec(spk_cond_emb, spk_lengths)
        return base + alpha * (emo - base)

    def conditioning_prefix(
        self, spk_latent: mx.array, emovec: mx.array, emotion_scale: float = 1.0
    ) -> mx.array:
        """The GPT's conditioning positions (``conds_latent`` of ``inference_speech``).

        Args:
            spk_latent: ``(B, 32, model_dim)`` from :meth:`get_conditioning`.
            emovec: ``(B, model_dim)`` from :meth:`get_emovec`/:meth:`merge_emovec` (or the
                emotion-matrix blend).
            emotion_scale: multiplies ``emovec`` (1.0 = the reference).

        Returns:
            ``(B, 34, model_dim)`` = ``cat(spk_latent + emotion_scale · emovec[:, None],
            speed_emb[1], speed_emb[0])``.
        """
        b = spk_latent.shape[0]
        emovec = emovec if emotion_scale == 1.0 else emotion_scale * emovec
        speed = self.speed_emb.weight
        half, normal = (mx.broadcast_to(speed[i], (b, 1, speed.shape[1])) for i in (1, 0))
        return mx.concatenate([spk_latent + emovec[:, None], half, normal], axis=1)
