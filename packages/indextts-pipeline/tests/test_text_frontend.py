# ruff: noqa: RUF001  (full-width punctuation is what this file is about)
"""Text front end (normalise -> pieces -> segments): hand-checked cases.

Reference behaviour: ``indextts/utils/front.py`` and ``utils/common.py`` of
indextts2-inference 2.1.1; the parity test (tests/parity/test_text_frontend_parity.py)
compares with the reference code itself.
"""

from __future__ import annotations

import warnings

import pytest

from indextts_mlx.testing import train_bpe_model
from indextts_mlx.text import TextFrontEnd, TextNormalizer, TextTokenizer, text_to_segments
from indextts_mlx.text.normalize import WetextNormalizer
from indextts_mlx.text.tokenize import (
    de_tokenize_by_cjk_char,
    split_segments_by_token,
    tokenize_by_cjk_char,
)


class Recorder:
    """A TN engine that returns its input and remembers it."""

    def __init__(self):
        self.seen: list[str] = []

    def normalize(self, text: str, verbose: bool = False) -> str:
        self.seen.append(text)
        return text


@pytest.fixture
def engines():
    return {"zh": Recorder(), "en": Recorder()}


@pytest.fixture
def identity(engines):
    return TextNormalizer(engines=engines)


@pytest.fixture(scope="module")
def bpe_model(tmp_path_factory):
    """A tiny deterministic BPE model: every English word of the corpus is one piece."""
    pytest.importorskip("sentencepiece")
    words = "HELLO WORLD ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN IS IT A GOOD DAY"
    zh = "我爱你今天是个好日子二零五年一月两日"
    lines = [
        f"{words} , . ! ? ' - … {' '.join(zh[i:] + zh[:i])} ▁. ▁,"
        for i in range(len(zh))
        for _ in range(20)
    ]
    return train_bpe_model(lines, tmp_path_factory.mktemp("bpe") / "bpe.model", 160)


# -- CJK splitting ---------------------------------------------------------------------


def test_tokenize_by_cjk_char_reference_example():
    assert (
        tokenize_by_cjk_char("你好世界是 hello world 的中文")
        == "你 好 世 界 是 HELLO WORLD 的 中 文"
    )
    assert (
        tokenize_by_cjk_char("  GPT-五-nano，好 ") == "GPT- 五 -NANO， 好"
    )  # U+FF0C is not in the ranges
    assert tokenize_by_cjk_char("ab好cd", do_upper_case=False) == "ab 好 cd"
    # Hangul jamo, kana and full-width forms are in the reference's CJK ranges.
    assert tokenize_by_cjk_char("xのy") == "X の Y"


def test_de_tokenize_by_cjk_char_keeps_reference_quirk():
    # Only words holding two or more placeholders are restored (the reference's quirk).
    assert de_tokenize_by_cjk_char("你 好 世 界") == "你好世界"
    assert de_tokenize_by_cjk_char("你 好 HELLO 世 界") == "你好<sent_0>世界"
    assert de_tokenize_by_cjk_char("A,B") == "A,B"


# -- normaliser: language, char maps, protections -------------------------------------


def test_use_chinese(identity):
    assert identity.use_chinese("我爱你 I love you")
    assert identity.use_chinese("123, 456!")  # no Latin letter
    assert identity.use_chinese("john@example.com")
    assert identity.use_chinese("bu zuo1 si")  # pinyin with tone
    assert not identity.use_chinese("have you been to beta2?")  # beta2 is not pinyin
    assert not identity.use_chinese("I love you")


def test_char_maps_chinese(identity, engines):
    out = identity.normalize(
        "你好：世界；（测试）《书》【注】「引」“引号”……价格$5～6、完。对吗？是！"
    )
    assert out == "你好,世界,'测试''书''注''引''引号'…价格.5-6,完.对吗?是!"
    assert engines["zh"].seen == [
        "你好：世界；（测试）《书》【注】「引」“引号”……价格$5～6、完。对吗？是！"
    ]


def test_char_maps_english(identity, engines):
    out = identity.normalize('He said "hi" (twice) [sic]: wait... no; ok,,, fine~ $5\nend')
    assert out == "He said 'hi' 'twice' 'sic', wait… no, ok… fine- $5 end"
    assert engines["zh"].seen == []


def test_chinese_strips_trailing_whitespace_english_does_not(identity, engines):
    identity.normalize("你好 \n")
    identity.normalize("hello \n")
    assert engines["zh"].seen == ["你好"]
    assert engines["en"].seen == ["hello \n"]


def test_contractions(identity, engines):
    assert identity.normalize("What's up? John's car. It's here, she's there") == (
        "What is up? John's car. It is here, she is there"
    )
    assert identity.normalize("这是什么 that's it") == "这是什么 that is it"


def test_tech_terms_protected_and_restored(identity, engines):
    identity.normalize("GPT-5-nano beats GPT-5 and F5-TTS, call 135-4567")
    assert engines["en"].seen == ["GPT<H>5<H>nano beats GPT<H>5 and F5<H>TTS, call 135-4567"]

    class Spaced(Recorder):
        def normalize(self, text, verbose=False):
            return text.replace("<H>", " <H> ").replace("5", "five")

    n = TextNormalizer(engines={"en": Spaced()})
    assert n.normalize("GPT-5-nano is small") == "GPT-five-nano is small"


def test_pinyin_protected_and_restored(identity, engines):
    # j/q/x + u -> v and upper case on restore (xuan4 -> XVAN4); other pinyin unchanged.
    assert identity.normalize("晕xuan4是一种gan3觉，不ju4") == "晕XVAN4是一种gan3觉,不JV4"
    assert engines["zh"].seen == ["晕<pinyin_a>是一种<pinyin_b>觉，不<pinyin_c>"]
    assert TextNormalizer.correct_pinyin("que4") == "QVE4"
    assert TextNormalizer.correct_pinyin("xun2") == "XVN2"
    assert TextNormalizer.correct_pinyin("zhong4") == "zhong4"


def test_names_protected_and_restored(identity, engines):
    out = identity.normalize("克里斯托弗·诺兰，约瑟夫·高登-莱维特，克里斯托弗·诺兰")
    # longest name first: <n_a> = 约瑟夫·高登-莱维特
    assert engines["zh"].seen == ["<n_b>，<n_a>，<n_b>"]
    assert out == "克里斯托弗-诺兰,约瑟夫-高登-莱维特,克里斯托弗-诺兰"
    # the pattern is greedy over CJK runs: 诺兰和约瑟夫 is one run, at most two joins
    engines["zh"].seen.clear()
    identity.normalize("克里斯托弗·诺兰和约瑟夫·高登-莱维特")
    assert engines["zh"].seen == ["<n_a>-莱维特"]


def test_glossary_off_by_default_and_on_request(engines):
    glossary = {"C++": {"en": "C plus plus", "zh": "C 加加"}, "C#": "C sharp"}
    off = TextNormalizer(glossary=glossary, engines=engines)
    assert off.normalize("I like C++ and c#") == "I like C++ and c#"
    on = TextNormalizer(enable_glossary=True, glossary=glossary, engines=engines)
    assert on.normalize("I like C++ and c#") == "I like C plus plus and C sharp"
    assert on.normalize("我喜欢C++") == "我喜欢C 加加"


def test_preferred_language(engines):
    n = TextNormalizer(preferred_language="EN", engines=engines)
    assert n.normalize("你好：x") == "你好,x"
    assert engines["en"].seen == ["你好：x"]
    with pytest.raises(ValueError, match="preferred_language"):
        TextNormalizer(preferred_language="es")


def test_engine_failure_falls_back_like_reference():
    class Broken:
        def normalize(self, text, verbose=False):
            raise RuntimeError("boom")

    n = TextNormalizer(engines={"zh": Broken(), "en": Broken()})
    assert n.normalize("你好") == ""  # zh: empty result
    assert n.normalize("it's (ok)") == "it is 'ok'"  # en: the pre-processed text


def test_wetext_engine_hand_checked():
    n = TextNormalizer()
    assert n.normalize("2.5平方电线") == "二点五平方电线"
    assert (
        n.normalize("GPT-5-Nano 是 GPT-5 模型家族中最小的")
        == "GPT-五-Nano 是 GPT-五 模型家族中最小的"
    )
    assert n.normalize("这是1024元的手机，你要吗？") == "这是一千零二十四元的手机,你要吗?"
    assert n.normalize("I have 3 cats.") == "I have three cats."
    assert n.normalize("GPT-5 is here") == "GPT-five is here"
    assert WetextNormalizer("en").normalize("10 km", verbose=False) == "ten kilometers"
    with pytest.raises(ValueError, match="'zh' and 'en'"):
        WetextNormalizer("es")


# -- segmentation -----------------------------------------------------------------------

PUNCT = [".", "!", "?", "▁.", "▁?", "▁..."]


def words(n: int, prefix: str = "▁W") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def test_short_sentences_merge_into_one_segment():
    tokens = ["▁A", "▁B", ".", "▁C", "▁D", "!", "▁E"]
    assert split_segments_by_token(tokens, PUNCT, 120) == [tokens]


def test_sentences_split_at_punctuation_when_they_do_not_fit():
    a, b, c = [*words(69, "▁A"), "."], [*words(59, "▁B"), "▁?"], [*words(30, "▁C"), "!"]
    # a (70) + b (60) > 120: split; b (60) + c (31) fits: merged.
    assert split_segments_by_token(a + b + c, PUNCT, 120) == [a, b + c]


def test_punctuation_within_first_two_tokens_does_not_split():
    tokens = ["▁A", ".", *words(5)]
    with pytest.warns(RuntimeWarning, match="exceeds limit"):
        assert split_segments_by_token(tokens, PUNCT, 4) == [tokens[:4], tokens[4:]]


def test_long_stretch_splits_at_commas_then_hyphens_then_hard():
    a = [*words(50, "▁A"), ","]
    b = [*words(80, "▁B"), "."]
    assert split_segments_by_token(a + b, PUNCT, 120) == [a, b]

    c = [*words(70, "▁C"), "-"]
    d = [*words(70, "▁D")]
    assert split_segments_by_token(c + d, PUNCT, 120) == [c, d]

    e = words(250, "▁E")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = split_segments_by_token(e, PUNCT, 120)
    # The reference cuts when the stretch reaches 121 pieces: 120 + 1, twice, then the
    # last 8 pieces merge with the lone piece before them.
    assert out == [e[:120], e[120:121], e[121:241], e[241:]]
    assert any(issubclass(w.category, RuntimeWarning) for w in caught)


def test_quote_after_sentence_end_is_duplicated_like_reference():
    a = [*words(70, "▁A"), ".", "'"]
    b = words(60, "▁B")
    # The quote closes the first segment and (reference quirk) also opens the next one.
    assert split_segments_by_token(a + b, PUNCT, 120) == [a, ["'", *b]]


def test_half_limit_merge_and_quick_streaming():
    tokens = ["▁A", "▁B", ".", "▁C", "▁D", ".", "▁E", "▁F", "▁G", "▁H", "."]
    # segments [0:3] [3:6] [6:11]; quick_streaming_tokens holds back the "fits" merge
    # until more than 6 pieces have been seen ...
    assert split_segments_by_token(tokens, PUNCT, 8, quick_streaming_tokens=6) == [
        tokens[:3],
        tokens[3:],
    ]
    # ... but neighbours within half the limit merge anyway
    assert split_segments_by_token(tokens, PUNCT, 12, quick_streaming_tokens=100) == [
        tokens[:6],
        tokens[6:],
    ]
    assert split_segments_by_token(tokens, PUNCT, 10, quick_streaming_tokens=100) == [
        tokens[:3],
        tokens[3:6],
        tokens[6:],
    ]
    assert split_segments_by_token(tokens, PUNCT, 120) == [tokens]
    assert split_segments_by_token([], PUNCT, 10) == []


# -- tokenizer and text_to_segments on a real (toy) bpe.model ------------------------------


def test_tokenizer_pieces_and_ids(bpe_model):
    tok = TextTokenizer(bpe_model)
    assert tok.tokenize("hello world, it is a good day.") == [
        "▁HELLO", "▁WORLD", ",", "▁IT", "▁IS", "▁A", "▁GOOD", "▁DAY", ".",
    ]  # fmt: skip
    assert tok.tokenize("我爱你") == ["▁我", "▁爱", "▁你"]
    ids = tok.encode("hello world")
    assert ids == tok.convert_tokens_to_ids(["▁HELLO", "▁WORLD"])
    assert (tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    assert tok.convert_ids_to_tokens([0, 1, 2]) == ["<s>", "</s>", "<unk>"]
    assert tok.vocab_size == 160
    # a one-character text skips normalisation and upper-casing (reference shortcut)
    assert tok.tokenize(" a ") == tok.sp_model.Encode(" a ", out_type=str)
    assert tok.tokenize("") == []
    with pytest.raises(ValueError, match="does not exist"):
        TextTokenizer(bpe_model.parent / "missing.model")


def test_text_to_segments_splits_long_text_at_punctuation(bpe_model):
    n = TextNormalizer(engines={"en": Recorder(), "zh": Recorder()})
    tok = TextTokenizer(bpe_model)
    first = " ".join(["hello world"] * 40) + "."  # 81 pieces
    second = " ".join(["good day"] * 30) + "!"  # 61 pieces
    third = "it is a good day?"  # 6 pieces
    segments = text_to_segments(f"{first} {second} {third}", n, tok, max_tokens=120)
    hello, world, good, day = tok.convert_tokens_to_ids(["▁HELLO", "▁WORLD", "▁GOOD", "▁DAY"])
    dot, bang = tok.convert_tokens_to_ids([".", "!"])
    assert [len(s) for s in segments] == [81, 67]
    assert segments[0] == [hello, world] * 40 + [dot]
    assert segments[1][:61] == [good, day] * 30 + [bang]
    assert segments[1][61:] == tok.encode("it is a good day?", normalizer=n)


def test_text_to_segments_with_wetext(bpe_model):
    fe = TextFrontEnd(bpe_model)
    (segment,) = fe.segments("我爱你，今天是2025年1月2日。")
    pieces = fe.tokenizer.convert_ids_to_tokens(segment)
    # 2025年1月2日 -> 二零二五年一月两日 (wetext zh reads the day 2 as 两), punctuation -> ASCII.
    assert "".join(pieces).replace("▁", "") == "我爱你,今天是二零二五年一月两日."


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_text_raises(bpe_model, text):
    fe = TextFrontEnd(bpe_model)
    with pytest.raises(ValueError, match="empty or whitespace"):
        fe.segments(text)


def test_text_without_tokens_after_normalisation_raises(bpe_model):
    class Eraser(Recorder):
        def normalize(self, text, verbose=False):
            return ""

    fe = TextFrontEnd(bpe_model, TextNormalizer(engines={"zh": Eraser(), "en": Eraser()}))
    with pytest.raises(ValueError, match="no tokens"):
        fe.segments("你好")
    with pytest.raises(ValueError, match="max_tokens"):
        fe.segments("hello", max_tokens=0)
