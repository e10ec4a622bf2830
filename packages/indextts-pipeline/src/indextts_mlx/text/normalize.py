# ruff: noqa: RUF001  (full-width punctuation is what this file is about)
"""Text normalisation for IndexTTS-2 (docs/data-flow.md step 12, first half).

A port of the reference's ``indextts/utils/front.py: TextNormalizer.normalize`` for
Chinese and English:

1. language: ``preferred_language`` if given, else Chinese when the text has a CJK
   ideograph, has no Latin letter, is a bare e-mail address, or contains a pinyin
   syllable with a tone digit (``xuan4``); English otherwise (:meth:`use_chinese`);
2. ``what's/it's/...`` -> ``what is/it is/...`` (:data:`ENGLISH_CONTRACTION_PATTERN`);
3. optional glossary (off by default, as the brief asks; the reference's
   ``IndexTTS2`` turns it on but ships an empty glossary unless the model folder has a
   ``glossary.yaml``);
4. protection before the TN engine and restoration after it: hyphens inside tech
   terms (``GPT-5-nano`` -> ``GPT<H>5<H>nano``), and for Chinese also pinyin with tones
   (``<pinyin_a>``, restored with j/q/x + u -> v and upper-cased) and Chinese names
   joined by ``·``/``-``/``—`` (``<n_a>``);
5. the TN engine (below);
6. the character replacement maps (full-width punctuation -> ASCII, quotes and
   brackets -> ``'``, ellipses -> ``…``; Chinese also maps ``$`` -> ``.``).

TN engine. The installed reference (``indextts2-inference`` 2.1.1) drives NeMo
``nemo_text_processing`` (``Normalizer(input_case="cased", lang=...)``), which needs
pynini (165 MB) and compiles its grammars for minutes on first use. We use ``wetext``
instead, configured exactly as upstream index-tts HEAD does on macOS
(``Normalizer(lang="en", operator="tn")`` and
``Normalizer(lang="zh", operator="tn", remove_erhua=False)``); wetext runs prebuilt
WeTextProcessing FSTs through ``kaldifst``, with no compilation. (Upstream HEAD on Linux
builds the WeTextProcessing grammars with pynini instead, ``tn`` package,
``remove_interjections=False``; wetext's default is also no interjection removal.)

Known gaps against the installed (NeMo) reference, i.e. where our normalised text (and
hence the GPT input) can differ from what pip ``indextts2-inference`` 2.1.1 produces.
NeMo is not installed here, so these are not measured case by case:

* English verbalisation follows WeTextProcessing's English grammar, not NeMo's, so
  money, dates, times, ordinals, measures, abbreviations (``Dr.`` -> "doctor"),
  URLs/e-mails and letter-digit tokens may be read differently. Oddities of wetext
  0.1.8 seen while testing (not compared with NeMo, which is not installed):
  a double quote comes back escaped (``"good"`` -> ``\\"good\\"``, then
  ``\\'good\\'`` after the quote map; the backslash is usually an unknown BPE piece);
  ``$1,234.56`` -> "thousand two hundred and thirty four point five six dollars"
  (the leading "one" is lost); ``$12.50`` -> "twelve point five dollars";
  ``1990s`` -> "... ninety seconds"; ``555-1234`` -> "five hundred and fifty five
  to one thousand ...".
* Chinese readings can differ from NeMo's zh grammar in details (phone numbers,
  ``/`` dates, units, fractions, ``2日`` read as 两日).
* ``preferred_language="es"`` (NeMo Spanish) is not supported: wetext has no Spanish
  grammar; we accept only ``"zh"``, ``"en"`` or ``None``.
* Upstream HEAD's newer ``<字|读音>`` pronunciation-annotation protection is not in the
  installed reference and is not ported.

Parity (tests/parity/test_text_frontend_parity.py) is therefore checked against the
reference's own ``TextNormalizer`` code driving the same wetext engines, which is exactly
upstream HEAD's macOS setup.

Determinism: the reference collects protected names / pinyin in a ``set`` (iteration
order depends on ``PYTHONHASHSEED``); we replace them longest first (as the reference
does for tech terms). The output is the same unless one protected item is a substring of
another; then the reference itself varies from run to run.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

__all__ = ["GlossaryReading", "NormalizerEngine", "TextNormalizer", "WetextNormalizer"]

#: A glossary term's reading: one for every language, or one per language (``"zh"``, ``"en"``).
GlossaryReading = str | Mapping[str, str]


class NormalizerEngine(Protocol):
    """A text-normalisation engine for one language (:class:`WetextNormalizer`)."""

    def normalize(self, text: str, verbose: bool = False) -> str: ...

logger = logging.getLogger(__name__)


#: reference ``TextNormalizer.char_rep_map`` (order matters: regex alternation order).
CHAR_REP_MAP: dict[str, str] = {
    "：": ",",
    "；": ",",
    ";": ",",
    "，": ",",
    "。": ".",
    "！": "!",
    "？": "?",
    "\n": " ",
    "·": "-",
    "、": ",",
    "...": "…",
    ",,,": "…",
    "，，，": "…",
    "……": "…",
    "“": "'",
    "”": "'",
    '"': "'",
    "‘": "'",
    "’": "'",
    "（": "'",
    "）": "'",
    "(": "'",
    ")": "'",
    "《": "'",
    "》": "'",
    "【": "'",
    "】": "'",
    "[": "'",
    "]": "'",
    "—": "-",
    "～": "-",
    "~": "-",
    "「": "'",
    "」": "'",
    ":": ",",
}

#: reference ``TextNormalizer.zh_char_rep_map``.
ZH_CHAR_REP_MAP: dict[str, str] = {"$": ".", **CHAR_REP_MAP}

PINYIN_TONE_PATTERN = (
    r"(?<![a-z])((?:[bpmfdtnlgkhjqxzcsryw]|[zcs]h)?(?:[aeiouüv]|[ae]i|u[aio]|ao|ou|i[aue]|[uüv]e|"
    r"[uvü]ang?|uai|[aeiuv]n|[aeio]ng|ia[no]|i[ao]ng)|ng|er)([1-5])"
)
"""Pinyin syllable + tone digit 1-5 (5 = neutral): ``xuan4``, ``jve2``; not ``beta1``."""

NAME_PATTERN = r"[\u4e00-\u9fff]+(?:[-·—][\u4e00-\u9fff]+){1,2}"
"""Chinese transliterated names: ``克里斯托弗·诺兰``, ``约瑟夫·高登-莱维特``."""

TECH_TERM_PATTERN = r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+"
"""Hyphenated terms starting with a letter: ``GPT-5-nano``, ``F5-TTS`` (not ``135-4567``)."""

ENGLISH_CONTRACTION_PATTERN = r"(what|where|who|which|how|t?here|it|s?he|that|this)'s"
"""Only these ``'s`` become `` is``."""

_EMAIL = re.compile(r"^[a-zA-Z0-9]+@[a-zA-Z0-9]+\.[a-zA-Z]+$")
_CJK_IDEOGRAPH = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[a-zA-Z]")
_PINYIN = re.compile(PINYIN_TONE_PATTERN, re.IGNORECASE)
_NAME = re.compile(NAME_PATTERN, re.IGNORECASE)
_TECH = re.compile(TECH_TERM_PATTERN)
_CONTRACTION = re.compile(ENGLISH_CONTRACTION_PATTERN, re.IGNORECASE)
_HYPHEN_PLACEHOLDER = re.compile(r"\s*<H>\s*")
_JQX_U = re.compile(r"([jqx])[uü](n|e|an)*(\d)", re.IGNORECASE)


def _alternation(keys: Mapping[str, str]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(k) for k in keys))


_CHAR_REP = _alternation(CHAR_REP_MAP)
_ZH_CHAR_REP = _alternation(ZH_CHAR_REP_MAP)


def _replace_chars(text: str, table: Mapping[str, str], pattern: re.Pattern[str]) -> str:
    return pattern.sub(lambda m: table[m.group()], text)


def _placeholder_letter(i: int) -> str:
    """The reference's ``chr(ord("a") + i)`` (past ``z`` it continues into ``{|}~...``)."""
    return chr(ord("a") + i)


def _longest_first(found: Iterable[str]) -> list[str]:
    """Unique matches, longest first (ties: first occurrence), so that replacing one
    never breaks a longer one containing it."""
    return sorted(dict.fromkeys(found), key=len, reverse=True)


class WetextNormalizer:
    """A ``wetext.Normalizer`` that also accepts NeMo's ``normalize(text, verbose=False)``.

    wetext's ``normalize`` forwards extra keywords as config overrides and rejects
    ``verbose``; the reference calls ``normalizer.normalize(text, verbose=False)``.
    """

    def __init__(self, lang: str) -> None:
        from wetext import Normalizer

        if lang == "zh":
            self._tn = Normalizer(lang="zh", operator="tn", remove_erhua=False)
        elif lang == "en":
            self._tn = Normalizer(lang="en", operator="tn")
        else:
            raise ValueError(f"wetext text normalisation supports 'zh' and 'en', not {lang!r}")
        self.lang = lang

    def normalize(self, text: str, verbose: bool = False, **_: Any) -> str:
        normalized: str = self._tn.normalize(text)
        return normalized


class TextNormalizer:
    """Chinese/English text normalisation identical to the reference's (wetext engine).

    Args:
        enable_glossary: apply :attr:`term_glossary` before everything else.
        glossary: initial glossary ``{term: reading}`` or ``{term: {"zh": ..., "en": ...}}``
            (matched case-insensitively, longest term first).
        preferred_language: ``"zh"`` or ``"en"`` to skip language detection.
        engines: TN engines by language (objects with ``normalize(text, verbose=False)``);
            missing languages get a :class:`WetextNormalizer` on first use.
    """

    PINYIN_TONE_PATTERN = PINYIN_TONE_PATTERN
    NAME_PATTERN = NAME_PATTERN
    TECH_TERM_PATTERN = TECH_TERM_PATTERN
    ENGLISH_CONTRACTION_PATTERN = ENGLISH_CONTRACTION_PATTERN

    def __init__(
        self,
        enable_glossary: bool = False,
        glossary: Mapping[str, GlossaryReading] | None = None,
        preferred_language: str | None = None,
        engines: Mapping[str, NormalizerEngine] | None = None,
    ) -> None:
        lang = preferred_language.lower() if preferred_language else None
        if lang not in (None, "zh", "en"):
            raise ValueError(
                f"preferred_language must be 'zh', 'en' or None, not {preferred_language!r} "
                "(the wetext engine has no other grammars)"
            )
        self.preferred_language = lang
        self.enable_glossary = enable_glossary
        self.term_glossary: dict[str, GlossaryReading] = dict(glossary or {})
        self._engines: dict[str, NormalizerEngine] = dict(engines or {})

    # -- engines ---------------------------------------------------------------------

    def engine(self, lang: str) -> NormalizerEngine:
        """The TN engine for ``lang`` (built on first use)."""
        if lang not in self._engines:
            self._engines[lang] = WetextNormalizer(lang)
        return self._engines[lang]

    def load(self) -> None:
        """Build the engines now (the reference's ``load``); otherwise they load lazily."""
        for lang in [self.preferred_language] if self.preferred_language else ["zh", "en"]:
            self.engine(lang)

    # -- language --------------------------------------------------------------------

    @staticmethod
    def match_email(text: str) -> bool:
        return _EMAIL.match(text) is not None

    def use_chinese(self, text: str) -> bool:
        """Whether the reference would normalise ``text`` as Chinese."""
        if _CJK_IDEOGRAPH.search(text) or not _LATIN.search(text) or self.match_email(text):
            return True
        return _PINYIN.search(text) is not None

    # -- main ------------------------------------------------------------------------

    def normalize(self, text: str) -> str:
        """Normalised text (the reference's ``TextNormalizer.normalize`` for zh/en)."""
        lang = self.preferred_language or ("zh" if self.use_chinese(text) else "en")
        engine = self.engine(lang)
        if lang == "zh":
            text = _CONTRACTION.sub(r"\1 is", text)
            if self.enable_glossary:
                text = self.apply_glossary_terms(text, lang="zh")
            replaced, tech = self.save_tech_terms(text.rstrip())
            replaced, pinyin = self.save_pinyin_tones(replaced)
            replaced, names = self.save_names(replaced)
            try:
                result = engine.normalize(replaced, verbose=False)
            except Exception:
                logger.warning("Chinese normalization error", exc_info=True)
                result = ""
            result = self.restore_names(result, names)
            result = self.restore_pinyin_tones(result, pinyin)
            result = self.restore_tech_terms(result, tech)
            return _replace_chars(result, ZH_CHAR_REP_MAP, _ZH_CHAR_REP)
        try:
            text = _CONTRACTION.sub(r"\1 is", text)
            if self.enable_glossary:
                text = self.apply_glossary_terms(text, lang="en")
            replaced, tech = self.save_tech_terms(text)
            result = engine.normalize(replaced, verbose=False)
            result = self.restore_tech_terms(result, tech)
        except Exception:
            logger.warning("English normalization error", exc_info=True)
            result = text
        return _replace_chars(result, CHAR_REP_MAP, _CHAR_REP)

    # -- protection ------------------------------------------------------------------

    @staticmethod
    def correct_pinyin(pinyin: str) -> str:
        """j/q/x + u/ü -> v and upper-case (``ju4`` -> ``JV4``); other pinyin unchanged."""
        if pinyin[0] not in "jqxJQX":
            return pinyin
        return _JQX_U.sub(r"\g<1>v\g<2>\g<3>", pinyin).upper()

    @staticmethod
    def save_names(text: str) -> tuple[str, list[str] | None]:
        """Chinese names -> ``<n_a>``, ``<n_b>``, ..."""
        names = _longest_first(_NAME.findall(text))
        if not names:
            return text, None
        for i, name in enumerate(names):
            text = text.replace(name, f"<n_{_placeholder_letter(i)}>")
        return text, names

    @staticmethod
    def restore_names(text: str, names: list[str] | None) -> str:
        for i, name in enumerate(names or ()):
            text = text.replace(f"<n_{_placeholder_letter(i)}>", name)
        return text

    @staticmethod
    def save_tech_terms(text: str) -> tuple[str, list[str] | None]:
        """Hyphens inside tech terms -> ``<H>`` (longest term first): ``GPT<H>5<H>nano``."""
        terms = sorted(set(_TECH.findall(text)), key=len, reverse=True)
        if not terms:
            return text, None
        # Equal-length terms are disjoint strings, so their relative order does not matter.
        for term in terms:
            text = text.replace(term, term.replace("-", "<H>"))
        return text, terms

    @staticmethod
    def restore_tech_terms(text: str, terms: list[str] | None) -> str:
        """``<H>`` (with any spaces the engine put around it) -> ``-``."""
        if not terms:
            return text
        return _HYPHEN_PLACEHOLDER.sub("-", text)

    @staticmethod
    def save_pinyin_tones(text: str) -> tuple[str, list[str] | None]:
        """Pinyin with tone digits -> ``<pinyin_a>``, ``<pinyin_b>``, ..."""
        pinyin = _longest_first("".join(m) for m in _PINYIN.findall(text))
        if not pinyin:
            return text, None
        for i, p in enumerate(pinyin):
            text = text.replace(p, f"<pinyin_{_placeholder_letter(i)}>")
        return text, pinyin

    def restore_pinyin_tones(self, text: str, pinyin: list[str] | None) -> str:
        for i, p in enumerate(pinyin or ()):
            text = text.replace(f"<pinyin_{_placeholder_letter(i)}>", self.correct_pinyin(p))
        return text

    # -- glossary --------------------------------------------------------------------

    def load_glossary(self, glossary: Mapping[str, GlossaryReading]) -> None:
        """Add terms: ``{"M.2": {"en": "M dot two", "zh": "M 二"}, "C#": "C sharp"}``."""
        if glossary and isinstance(glossary, Mapping):
            self.term_glossary.update(glossary)

    def apply_glossary_terms(self, text: str, lang: str = "zh") -> str:
        """Replace glossary terms (case-insensitive, longest first) by their reading."""
        for term in sorted(self.term_glossary, key=len, reverse=True):
            value = self.term_glossary[term]
            replacement = value.get(lang, term) if isinstance(value, Mapping) else value
            # The reference passes the reading to re.sub as a template, so keep that.
            text = re.compile(re.escape(term), re.IGNORECASE).sub(replacement, text)
        return text
