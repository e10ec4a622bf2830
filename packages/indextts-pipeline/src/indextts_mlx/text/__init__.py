"""Text front end: normalise (wetext) -> SentencePiece pieces -> segments of token ids."""

from indextts_mlx.text.frontend import TextFrontEnd, text_to_segments
from indextts_mlx.text.normalize import TextNormalizer
from indextts_mlx.text.tokenize import (
    MAX_TEXT_TOKENS_PER_SEGMENT,
    TextTokenizer,
    split_segments_by_token,
)

__all__ = [
    "MAX_TEXT_TOKENS_PER_SEGMENT",
    "TextFrontEnd",
    "TextNormalizer",
    "TextTokenizer",
    "split_segments_by_token",
    "text_to_segments",
]
