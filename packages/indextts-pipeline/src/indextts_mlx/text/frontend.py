"""Text -> per-segment token ids, as ``IndexTTS2.infer_generator`` does it (step 12).

The reference's order: ``tokens = tokenizer.tokenize(text)`` (normalise, CJK split,
SentencePiece pieces) -> ``tokenizer.split_segments(tokens, max_text_tokens_per_segment,
quick_streaming_tokens=quick_streaming_tokens)`` -> ``convert_tokens_to_ids(segment)``
for each segment (each becomes the GPT's ``(1, L)`` int32 text input).
"""

from __future__ import annotations

import logging
from os import PathLike
from typing import Any

from indextts_mlx.text.normalize import TextNormalizer
from indextts_mlx.text.tokenize import MAX_TEXT_TOKENS_PER_SEGMENT, TextTokenizer

__all__ = ["TextFrontEnd", "text_to_segments"]

logger = logging.getLogger(__name__)


def text_to_segments(
    text: str,
    normalizer: TextNormalizer | None,
    tokenizer: TextTokenizer,
    max_tokens: int = MAX_TEXT_TOKENS_PER_SEGMENT,
    quick_streaming_tokens: int = 0,
) -> list[list[int]]:
    """Token ids of each segment the GPT will speak, in order.

    Args:
        text: the text to speak.
        normalizer: the text normaliser (``None``: use ``tokenizer.normalizer``).
        tokenizer: the ``bpe.model`` tokenizer.
        max_tokens: ``max_text_tokens_per_segment`` (reference default 120).
        quick_streaming_tokens: the reference's streaming knob (default 0: off).

    Returns:
        one list of token ids per segment; each has ``1 <= len <= max_tokens``.

    Raises:
        ValueError: ``text`` is empty or whitespace only, or has no tokens left after
            normalisation, or ``max_tokens < 1``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    if not text.strip():
        raise ValueError("text is empty or whitespace only: there is nothing to speak")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    pieces = tokenizer.tokenize(text, normalizer=normalizer)
    segments = tokenizer.split_segments(
        pieces, max_tokens, quick_streaming_tokens=quick_streaming_tokens
    )
    if not segments:
        raise ValueError(f"text {text!r} has no tokens after normalisation: nothing to speak")
    ids = tokenizer.convert_tokens_to_ids(pieces)
    unk = tokenizer.unk_token_id
    if unk in ids:
        logger.warning(
            "Input text contains %d unknown tokens (id=%d): %s",
            ids.count(unk),
            unk,
            [p for p, i in zip(pieces, ids, strict=True) if i == unk],
        )
    return [tokenizer.convert_tokens_to_ids(segment) for segment in segments]


class TextFrontEnd:
    """Normaliser + tokenizer bundle: ``TextFrontEnd(bpe_model).segments(text)``.

    Args:
        bpe_model_path: the checkpoint's ``bpe.model``.
        normalizer: defaults to ``TextNormalizer()`` (wetext, glossary off).
        max_tokens: ``max_text_tokens_per_segment``.
    """

    def __init__(
        self,
        bpe_model_path: str | PathLike[str],
        normalizer: TextNormalizer | None = None,
        max_tokens: int = MAX_TEXT_TOKENS_PER_SEGMENT,
        **normalizer_kwargs: Any,
    ) -> None:
        self.normalizer = (
            normalizer if normalizer is not None else TextNormalizer(**normalizer_kwargs)
        )
        self.tokenizer = TextTokenizer(bpe_model_path, self.normalizer)
        self.max_tokens = max_tokens

    def segments(self, text: str, max_tokens: int | None = None) -> list[list[int]]:
        """Token ids per segment (see :func:`text_to_segments`)."""
        return text_to_segments(
            text,
            self.normalizer,
            self.tokenizer,
            self.max_tokens if max_tokens is None else max_tokens,
        )
