"""SentencePiece tokenisation and segmentation for IndexTTS-2 (docs/data-flow.md step 12).

A port of the reference's ``indextts/utils/front.py: TextTokenizer`` and
``indextts/utils/common.py: tokenize_by_CJK_char / de_tokenized_by_CJK_char``:

* text -> (normalise) -> CJK characters split by spaces and everything upper-cased ->
  SentencePiece pieces of ``bpe.model``; a text that is a single character after
  stripping skips normalisation and CJK splitting (the reference's shortcut);
* :meth:`TextTokenizer.split_segments`: pieces -> segments of at most
  ``max_text_tokens_per_segment`` pieces, cut after ``. ! ? ▁. ▁? ▁...``; a too-long
  stretch is cut at ``,``/``▁,``, then ``-``, then into hard chunks; adjacent segments
  are merged while they fit (:func:`split_segments_by_token`).

Reference quirks kept on purpose (the GPT was trained/run with them): a sentence end
followed by a quote piece (``'``/``▁'``) puts that quote at the end of the segment *and*
at the start of the next one (its ``i += 1`` inside a ``for`` loop is a no-op), and the
``,``/``-`` re-splitting fires as soon as the current stretch contains such a piece.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from indextts_mlx.text.normalize import TextNormalizer

__all__ = [
    "PUNCTUATION_MARK_TOKENS",
    "TextTokenizer",
    "de_tokenize_by_cjk_char",
    "split_segments_by_token",
    "tokenize_by_cjk_char",
]

logger = logging.getLogger(__name__)

_CJK_RANGE = re.compile(
    r"([\u1100-\u11ff\u2e80-\ua4cf\ua840-\uD7AF\uF900-\uFAFF\uFE30-\uFE4F\uFF65-\uFFDC\U00020000-\U0002FFFF])"
)
_ENGLISH_WORDS = re.compile(r"([A-Z]+(?:[\s'-][A-Z-]+)*)", re.IGNORECASE)
_SENT_PLACEHOLDER = re.compile(r"(<sent_(\d+)>)")

#: The reference's ``max_text_tokens_per_segment`` default: BPE tokens per GPT segment.
MAX_TEXT_TOKENS_PER_SEGMENT = 120
#: pieces that end a sentence (the reference's ``punctuation_marks_tokens``).
PUNCTUATION_MARK_TOKENS: tuple[str, ...] = (".", "!", "?", "▁.", "▁?", "▁...")
_COMMA_TOKENS = (",", "▁,")
_QUOTE_TOKENS = ("'", "▁'")


def tokenize_by_cjk_char(line: str, do_upper_case: bool = True) -> str:
    """Space-separate CJK characters and upper-case the rest.

    ``"你好世界是 hello world 的中文"`` -> ``"你 好 世 界 是 HELLO WORLD 的 中 文"``.
    """
    parts = _CJK_RANGE.split(line.strip())
    return " ".join(p.strip().upper() if do_upper_case else p.strip() for p in parts if p.strip())


def de_tokenize_by_cjk_char(line: str, do_lower_case: bool = False) -> str:
    """The reference's ``de_tokenized_by_CJK_char`` (used by ``decode``), quirks included.

    ``"你 好 世 界 是 HELLO WORLD 的 中 文"`` -> ``"你好世界是<sent_0>的中文"``: the
    reference only restores a placeholder when a word holds two or more of them.
    """
    english = _ENGLISH_WORDS.findall(line)
    for i, sent in enumerate(english):
        line = line.replace(sent, f"<sent_{i}>")
    words = line.split()
    for i, word in enumerate(words):
        matches = _SENT_PLACEHOLDER.findall(word)
        if len(matches) > 1:
            for placeholder, index in matches:
                words[i] = words[i].replace(placeholder, english[int(index)])
                if do_lower_case:
                    words[i] = words[i].lower()
    return "".join(words)


def split_segments_by_token(
    tokens: Sequence[str],
    split_tokens: Sequence[str],
    max_text_tokens_per_segment: int,
    quick_streaming_tokens: int = 0,
) -> list[list[str]]:
    """Cut ``tokens`` after any of ``split_tokens``, then merge neighbours that fit.

    Args:
        tokens: SentencePiece pieces.
        split_tokens: pieces that end a segment.
        max_text_tokens_per_segment: the most pieces in one segment.
        quick_streaming_tokens: the reference's streaming option: no "fits" merging
            until this many pieces have been seen (0 = always merge).

    Returns:
        segments (lists of pieces), each of at most ``max_text_tokens_per_segment``.
    """
    if len(tokens) == 0:
        return []
    split_on_comma = any(t in split_tokens for t in _COMMA_TOKENS)
    segments: list[list[str]] = []
    current: list[str] = []
    for i, token in enumerate(tokens):
        current.append(token)
        if not split_on_comma and any(t in current for t in _COMMA_TOKENS):
            sub_segments = split_segments_by_token(
                current, _COMMA_TOKENS, max_text_tokens_per_segment, quick_streaming_tokens
            )
        elif "-" not in split_tokens and "-" in current:
            sub_segments = split_segments_by_token(
                current, ["-"], max_text_tokens_per_segment, quick_streaming_tokens
            )
        elif len(current) <= max_text_tokens_per_segment:
            if token in split_tokens and len(current) > 2:
                if i < len(tokens) - 1 and tokens[i + 1] in _QUOTE_TOKENS:
                    # The reference appends the quote here and still visits it next.
                    current.append(tokens[i + 1])
                segments.append(current)
                current = []
            continue
        else:
            sub_segments = [
                current[j : j + max_text_tokens_per_segment]
                for j in range(0, len(current), max_text_tokens_per_segment)
            ]
            warnings.warn(
                f"The tokens length of segment exceeds limit: {max_text_tokens_per_segment}, "
                f"Tokens in segment: {current}.Maybe unexpected behavior",
                RuntimeWarning,
                stacklevel=2,
            )
        segments.extend(sub_segments)
        current = []
    if current:
        if len(current) > max_text_tokens_per_segment:  # cannot happen; the reference asserts
            raise AssertionError("segment longer than max_text_tokens_per_segment")
        segments.append(current)

    merged: list[list[str]] = []
    total = 0
    for segment in segments:
        total += len(segment)
        if not segment:
            continue
        if not merged:
            merged.append(segment)
        elif (
            len(merged[-1]) + len(segment) <= max_text_tokens_per_segment
            and total > quick_streaming_tokens
        ) or len(merged[-1]) + len(segment) <= max_text_tokens_per_segment / 2:
            merged[-1] = merged[-1] + segment
        else:
            merged.append(segment)
    return merged


class TextTokenizer:
    """The reference's ``TextTokenizer`` over a SentencePiece ``bpe.model``.

    Args:
        bpe_model_path: the checkpoint's ``bpe.model``.
        normalizer: applied by :meth:`tokenize`/:meth:`encode` (none: text used as is).
    """

    punctuation_marks_tokens: tuple[str, ...] = PUNCTUATION_MARK_TOKENS
    bos_token = "<s>"
    eos_token = "</s>"
    unk_token = "<unk>"
    pad_token = None
    bos_token_id = 0
    eos_token_id = 1
    pad_token_id = -1

    def __init__(
        self, bpe_model_path: str | PathLike[str], normalizer: TextNormalizer | None = None
    ) -> None:
        from sentencepiece import SentencePieceProcessor

        path = Path(bpe_model_path)
        if not path.is_file():
            raise ValueError(f"bpe model {path} does not exist")
        self.bpe_model_path = path
        self.normalizer = normalizer
        if normalizer is not None:
            normalizer.load()  # as the reference's TextTokenizer does
        self.sp_model = SentencePieceProcessor(model_file=str(path))

    @property
    def vocab_size(self) -> int:
        return self.sp_model.GetPieceSize()

    @property
    def unk_token_id(self) -> int:
        return self.sp_model.unk_id()

    @property
    def special_tokens_map(self) -> dict[str, str | None]:
        return {
            "unk_token": self.unk_token,
            "pad_token": self.pad_token,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        }

    def convert_ids_to_tokens(self, ids: int | list[int]) -> str | list[str]:
        return self.sp_model.IdToPiece(ids)

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> list[int]:
        if isinstance(tokens, str):
            tokens = [tokens]
        return [self.sp_model.PieceToId(t) for t in tokens]

    def _prepare(self, text: str, normalizer: TextNormalizer | None) -> str:
        if len(text.strip()) != 1:
            normalizer = normalizer if normalizer is not None else self.normalizer
            if normalizer is not None:
                text = normalizer.normalize(text)
            text = tokenize_by_cjk_char(text)
        return text

    def tokenize(self, text: str, normalizer: TextNormalizer | None = None) -> list[str]:
        """Pieces of ``text`` (normalised by ``normalizer`` or the tokenizer's own)."""
        if len(text) == 0:
            return []
        pieces: list[str] = self.sp_model.Encode(self._prepare(text, normalizer), out_type=str)
        return pieces

    def encode(self, text: str, normalizer: TextNormalizer | None = None) -> list[int]:
        """Ids of :meth:`tokenize`'s pieces."""
        if len(text) == 0:
            return []
        ids: list[int] = self.sp_model.Encode(self._prepare(text, normalizer), out_type=int)
        return ids

    def decode(self, ids: int | list[int], do_lower_case: bool = False) -> str:
        if isinstance(ids, int):
            ids = [ids]
        return de_tokenize_by_cjk_char(self.sp_model.Decode(ids), do_lower_case=do_lower_case)

    def split_segments(
        self,
        tokens: Sequence[str],
        max_text_tokens_per_segment: int = MAX_TEXT_TOKENS_PER_SEGMENT,
        quick_streaming_tokens: int = 0,
    ) -> list[list[str]]:
        """Segments of pieces (see :func:`split_segments_by_token`)."""
        return split_segments_by_token(
            tokens,
            self.punctuation_marks_tokens,
            max_text_tokens_per_segment,
            quick_streaming_tokens,
        )
