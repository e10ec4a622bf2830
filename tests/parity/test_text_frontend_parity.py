"""Text front end parity: ``indextts_mlx.text`` vs the reference's ``utils/front.py``.

The reference ``TextNormalizer`` (indextts2-inference 2.1.1) drives NeMo; we use wetext.
To compare the front-end *code*, the reference normaliser gets its ``_normalizers`` dict
filled with wetext normalisers configured as upstream index-tts HEAD does
(``Normalizer(lang="zh", operator="tn", remove_erhua=False)``,
``Normalizer(lang="en", operator="tn")``), wrapped to accept NeMo's
``normalize(text, verbose=False)``. Its ``load()`` then never touches NeMo.

The reference path is the one ``IndexTTS2.infer_generator`` takes:
``tokenizer.tokenize(text)`` -> ``tokenizer.split_segments(tokens, 120,
quick_streaming_tokens=0)`` -> ``convert_tokens_to_ids(segment)`` per segment, with
``TextNormalizer(enable_glossary=True)`` (its glossary is empty without a
``glossary.yaml``). For each sentence of :data:`SENTENCES` the normalised strings and the
token ids of every segment must be identical.

The ``bpe.model`` is a small SentencePiece BPE model (vocab 1000) trained once on a
generated mixed English/Chinese corpus (cached outside the clone).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from indextts_mlx.text import TextNormalizer, TextTokenizer, text_to_segments
from indextts_mlx.text.tokenize import tokenize_by_cjk_char
from parity import text_corpus
from parity.harness import compare
from parity.reference import reference_module
from parity.text_corpus import MAX_TOKENS, SENTENCES


@pytest.fixture(scope="module")
def bpe_model() -> Path:
    return text_corpus.bpe_model()


class _VerboseWetext:
    """A wetext normaliser answering NeMo's ``normalize(text, verbose=False)``."""

    def __init__(self, **kwargs):
        from wetext import Normalizer

        self._tn = Normalizer(**kwargs)

    def normalize(self, text: str, verbose: bool = False) -> str:
        return self._tn.normalize(text)


@pytest.fixture(scope="module")
def reference(bpe_model):
    pytest.importorskip("wetext")
    front = reference_module("utils.front")
    normalizer = front.TextNormalizer(enable_glossary=True)  # as IndexTTS2._load_text
    normalizer._normalizers["zh"] = _VerboseWetext(lang="zh", operator="tn", remove_erhua=False)
    normalizer._normalizers["en"] = _VerboseWetext(lang="en", operator="tn")
    tokenizer = front.TextTokenizer(str(bpe_model), normalizer)  # calls load(): no NeMo
    return normalizer, tokenizer


def reference_segments(tokenizer, text: str) -> list[list[int]]:
    """``IndexTTS2.infer_generator``'s text handling."""
    tokens = tokenizer.tokenize(text)
    segments = tokenizer.split_segments(tokens, MAX_TOKENS, quick_streaming_tokens=0)
    return [tokenizer.convert_tokens_to_ids(segment) for segment in segments]


@pytest.fixture(scope="module")
def ours(bpe_model):
    normalizer = TextNormalizer()
    return normalizer, TextTokenizer(bpe_model)


def test_corpus_is_varied_and_has_long_sentences():
    assert len(SENTENCES) >= 50
    assert len(set(SENTENCES)) == len(SENTENCES)
    assert sum(len(s) >= 300 for s in SENTENCES) >= 3


def test_normalized_text_identical(reference, ours):
    ref_norm, _ = reference
    our_norm, _ = ours
    # the reference really runs wetext (a missing engine would make it return "")
    assert ref_norm.normalize("2.5平方电线") == "二点五平方电线"
    assert ref_norm.normalize("GPT-5 is here") == "GPT-five is here"
    differing = [
        (s, ref_norm.normalize(s), our_norm.normalize(s))
        for s in SENTENCES
        if ref_norm.normalize(s) != our_norm.normalize(s)
    ]
    assert not differing, differing


def test_segment_ids_identical(reference, ours, record):
    _, ref_tok = reference
    our_norm, our_tok = ours
    ref_all, our_all, multi_segment = [], [], 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "exceeds limit" on hard chunks
        for s in SENTENCES:
            ref = reference_segments(ref_tok, s)
            got = text_to_segments(s, our_norm, our_tok, max_tokens=MAX_TOKENS)
            assert got == ref, f"{s!r}:\nref  {ref}\nours {got}"
            assert all(1 <= len(seg) <= MAX_TOKENS for seg in got)
            multi_segment += len(got) > 1
            ref_all += [i for seg in ref for i in seg]
            our_all += [i for seg in got for i in seg]
    # the long sentences really exercise the splitting and merging
    assert multi_segment >= 5
    record(compare("text token ids (all sentences)", np.array(ref_all), np.array(our_all)))


def test_tokenizer_properties_match(reference, ours):
    _, ref_tok = reference
    _, our_tok = ours
    assert our_tok.vocab_size == ref_tok.vocab_size
    assert (our_tok.bos_token_id, our_tok.eos_token_id, our_tok.unk_token_id) == (
        ref_tok.bos_token_id,
        ref_tok.eos_token_id,
        ref_tok.unk_token_id,
    )
    assert our_tok.special_tokens_map == ref_tok.special_tokens_map
    ids = list(range(0, our_tok.vocab_size, 7))
    assert our_tok.convert_ids_to_tokens(ids) == ref_tok.convert_ids_to_tokens(ids)
    for s in SENTENCES[:20]:
        ids = ref_tok.encode(s)
        assert our_tok.decode(ids) == ref_tok.decode(ids)
        assert our_tok.decode(ids, do_lower_case=True) == ref_tok.decode(ids, do_lower_case=True)


def test_cjk_helpers_match_reference():
    common = reference_module("utils.common")
    from indextts_mlx.text.tokenize import de_tokenize_by_cjk_char

    for s in SENTENCES:
        assert tokenize_by_cjk_char(s) == common.tokenize_by_CJK_char(s)
        assert tokenize_by_cjk_char(s, False) == common.tokenize_by_CJK_char(s, False)
        t = tokenize_by_cjk_char(s)
        assert de_tokenize_by_cjk_char(t) == common.de_tokenized_by_CJK_char(t)
        assert de_tokenize_by_cjk_char(t, True) == common.de_tokenized_by_CJK_char(t, True)


def test_split_segments_match_reference_on_synthetic_tokens():
    """Random piece streams rich in split points, several limits and streaming settings."""
    front = reference_module("utils.front")
    from indextts_mlx.text.tokenize import split_segments_by_token

    rng = np.random.default_rng(0)
    alphabet = ["▁A", "B", "▁C", ".", "!", "?", "▁.", "▁?", "▁...", ",", "▁,", "-", "'", "▁'"]
    weights = np.array([30, 30, 30, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1], dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for trial in range(300):
            n = int(rng.integers(0, 400))
            tokens = [str(t) for t in rng.choice(alphabet, size=n, p=weights / weights.sum())]
            limit = int(rng.choice([5, 20, 60, 120]))
            quick = int(rng.choice([0, 0, 10, 50]))
            ref = front.TextTokenizer.split_segments_by_token(
                tokens, front.TextTokenizer.punctuation_marks_tokens, limit, quick
            )
            ours = split_segments_by_token(
                tokens, front.TextTokenizer.punctuation_marks_tokens, limit, quick
            )
            assert ours == ref, (trial, limit, quick)
