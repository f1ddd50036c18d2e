"""Text analysis for matching: the index's analysis chain in Python, and positional stem indexes.

In:  a text and its language (veille/core/languages.py).
Out: :func:`analyze`, one entry per token position: the term the ``veille_<lang>`` analyzer
     indexes there (a folded stem), or ``None`` where a stop word held the position;
     :func:`analyze_spans`, the same with each token's character offsets; :class:`Pattern`, a
     query's word or phrase analysed; :class:`StemIndex`, the positions of every term of one
     field and where a pattern occurs in it.

The tokenizer follows Unicode word boundaries (UAX #29) as Lucene's standard tokenizer does:
letters and digits joined by an inner apostrophe, period or colon stay one token ("aujourd'hui",
"U.S.A", "3,5"), hyphens and other punctuation split ("Saint-Denis" → "saint", "denis"), each
Han or Hiragana character is a token, emoji are tokens, and a token stops at 255 characters.
tests/test_query_agreement.py compares this chain with Elasticsearch's ``_analyze``.

Stemming is pure Python (snowballstemmer) and a news text repeats its vocabulary, so each token's
term is computed once and kept in a per-language dictionary of at most ``STEM_CACHE_SIZE``
entries (emptied when full, so it never grows with the crawl); a text's terms are then one
dictionary look-up per token.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import regex
import snowballstemmer

from veille.core.asciifolding import fold
from veille.core.languages import Language, language_of

STEM_CACHE_SIZE = 50_000
MAX_TOKEN_LENGTH = 255

# Word-break classes of UAX #29; Extend/Format characters (accents in decomposed text, the soft
# hyphen) stay inside the token they follow.
_LETTER = r"[\p{WB=ALetter}\p{WB=Hebrew_Letter}]"
_DIGIT = r"\p{WB=Numeric}"
_INNER = r"[\p{WB=Extend}\p{WB=Format}]"
_EXTEND = r"[\p{WB=Extend}\p{WB=Format}\p{WB=ZWJ}]"
_JOINER = r"\p{WB=ExtendNumLet}"
_MID_LETTER = r"[\p{WB=MidLetter}\p{WB=MidNumLet}\p{WB=Single_Quote}]"
_MID_NUMBER = r"[\p{WB=MidNum}\p{WB=MidNumLet}\p{WB=Single_Quote}]"
_WORD = (
    rf"(?:{_JOINER}{_EXTEND}*)*(?:{_LETTER}|{_DIGIT}){_EXTEND}*"
    rf"(?:(?:{_LETTER}|{_DIGIT}|{_JOINER}){_EXTEND}*"
    rf"|(?<={_LETTER}{_EXTEND}*){_MID_LETTER}{_EXTEND}*(?={_LETTER})"
    rf"|(?<={_DIGIT}{_EXTEND}*){_MID_NUMBER}{_EXTEND}*(?={_DIGIT}))*"
)
_KATAKANA = rf"\p{{WB=Katakana}}{_EXTEND}*(?:(?:\p{{WB=Katakana}}|{_JOINER}){_EXTEND}*)*"
_IDEOGRAPH = rf"[\p{{Ideographic}}\p{{Script=Hiragana}}]{_EXTEND}*"
_SOUTHEAST_ASIAN = rf"(?:\p{{Line_Break=Complex_Context}}{_EXTEND}*)+"
_PICTOGRAPH = rf"\p{{Extended_Pictographic}}(?:{_INNER}|\p{{Emoji_Modifier}})*"
_EMOJI = (
    rf"\p{{Regional_Indicator}}{{2}}|[0-9#*]\uFE0F?\u20E3"
    rf"|{_PICTOGRAPH}(?:\u200D{_PICTOGRAPH})*"
)
_TOKEN = regex.compile(
    "|".join((_WORD, _KATAKANA, _IDEOGRAPH, _SOUTHEAST_ASIAN, _EMOJI)), regex.VERSION1
)
# Most news text is Latin letters, digits and common punctuation, whose word-break classes are
# few (letters, digits, "_", the inner ' ’ ‘ . : · and , ;): for such a text the same tokens come
# from this simpler pattern, which the standard library runs several times faster.
_COMMON_TEXT = re.compile(
    "[\x00-\x7f\xc0-\xd6\xd8-\xf6\xf8-\u024f\xa0\xa1\xa3\xa7\xab\xb0\xb7\xbb\xbf"
    "\u2009\u2013\u2014\u2018\u2019\u201a\u201c\u201d\u201e\u2026\u20ac]*"
)
_COMMON_TOKEN = re.compile(
    r"_*[^\W_](?:\w|(?<=[^\W\d_])[:·.'’‘](?=[^\W\d_])|(?<=[0-9])[.,;'’‘](?=[0-9]))*"
)


def _tokenizer(text: str) -> re.Pattern[str] | regex.Pattern[str]:
    return _COMMON_TOKEN if _COMMON_TEXT.fullmatch(text) else _TOKEN


def _lower(text: str) -> str:
    # Lucene lower-cases one code point at a time: "İ" becomes "i", where Python's full case
    # mapping would add a combining dot that folding keeps.
    return text.replace("İ", "i").lower()


def spans(text: str) -> Iterator[tuple[int, int]]:
    """The start and end character offsets of each token of ``text``, in order."""
    for match in _tokenizer(text).finditer(text):
        start, end = match.span()
        if end - start <= MAX_TOKEN_LENGTH:
            yield start, end
        else:
            for cut in range(start, end, MAX_TOKEN_LENGTH):
                yield cut, min(cut + MAX_TOKEN_LENGTH, end)


def tokens(text: str) -> list[tuple[str, int, int]]:
    """The tokens of ``text`` (as written) with their start and end character offsets."""
    return [(text[start:end], start, end) for start, end in spans(text)]


@lru_cache(maxsize=8)
def _stemmer(language: Language) -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer(language.snowball.lower())


def _term(token: str, language: Language) -> str | None:
    """What the index stores for one lower-cased token: its folded stem, or None (stop word)."""
    if language.elision:
        apostrophes = [i for i in (token.find("'"), token.find("’")) if i >= 0]
        if apostrophes and token[: min(apostrophes)] in language.elision:
            token = token[min(apostrophes) + 1 :]
    if token in language.stopwords:
        return None
    return fold(_stemmer(language).stemWord(token))


# Language code → {lower-cased token: term}, filled as tokens are met.
_TERMS: dict[str, dict[str, str | None]] = {}


def _terms_of(words: list[str], language: Language) -> list[str | None]:
    known = _TERMS.setdefault(language.code, {})
    new = set(words).difference(known)
    if new:
        if len(known) + len(new) > STEM_CACHE_SIZE:
            known.clear()
        for word in new:
            known[word] = _term(word, language)
    return list(map(known.__getitem__, words))


def analyze(text: str, language: str | None) -> list[str | None]:
    """The terms of ``text`` by position (``None`` where a stop word was), as the index has them."""
    lowered = _lower(text)
    words = _tokenizer(lowered).findall(lowered)
    if words and max(map(len, words)) > MAX_TOKEN_LENGTH:
        words = [token.lower() for token, _, _ in tokens(text)]
    return _terms_of(words, language_of(language))


def analyze_spans(text: str, language: str | None) -> list[tuple[str | None, int, int]]:
    """:func:`analyze` with the character offsets of each position's token in ``text``."""
    found = tokens(text)
    terms = _terms_of([_lower(token) for token, _, _ in found], language_of(language))
    return [(term, start, end) for term, (_, start, end) in zip(terms, found, strict=True)]


@dataclass(frozen=True, eq=False)  # compared by identity: a cheap key for StemIndex.find
class Pattern:
    """A query's word or phrase, analysed: terms at fixed distances from the first.

    ``lead`` counts stop words before the first term of a phrase: Elasticsearch widens the
    phrase's interval over them (a single word is never widened), which matters to NEAR.
    """

    text: str
    terms: tuple[str, ...]
    offsets: tuple[int, ...]
    lead: int

    @classmethod
    def of(cls, text: str, language: str | None) -> Pattern:
        """The pattern of ``text``; the same object for the same text and language, so that
        what an index found for it serves every query that uses it."""
        return _pattern(text, language)

    @property
    def key(self) -> tuple[tuple[str, ...], tuple[int, ...], int]:
        return self.terms, self.offsets, self.lead


@lru_cache(maxsize=100_000)
def _pattern(text: str, language: str | None) -> Pattern:
    analyzed = analyze(text, language)
    kept = [position for position, term in enumerate(analyzed) if term is not None]
    if not kept:
        return Pattern(text, (), (), 0)
    first = kept[0]
    terms = tuple(analyzed[position] or "" for position in kept)
    offsets = tuple(position - first for position in kept)
    return Pattern(text, terms, offsets, first if len(kept) > 1 else 0)


class StemIndex:
    """One field's terms by position, and the positions of each term."""

    def __init__(self, text: str, language: str | None) -> None:
        self.text = text
        self.language = language
        self.terms = analyze(text, language)
        positions: dict[str | None, list[int]] = defaultdict(list)
        for position, term in enumerate(self.terms):
            positions[term].append(position)
        positions.pop(None, None)
        self.positions = positions
        self._found: dict[Pattern, list[tuple[int, int]]] = {}
        self._offsets: list[tuple[int, int]] = []
        self._spans: Iterator[tuple[int, int]] | None = None
        # What compiled queries worked out on this field, by query part (veille/core/query.py).
        self.memo: dict[object, Any] = {}

    def find(self, pattern: Pattern) -> list[tuple[int, int]]:
        """Where ``pattern`` occurs: ``(first, last)`` positions of each occurrence, in order."""
        found = self._found.get(pattern)
        if found is None:
            found = self._found[pattern] = self._search(pattern)
        return found

    def _search(self, pattern: Pattern) -> list[tuple[int, int]]:
        if not pattern.terms:
            return []
        starts = self.positions.get(pattern.terms[0], ())
        if len(pattern.terms) == 1:
            return [(start, start) for start in starts]
        terms, size, last, lead = self.terms, len(self.terms), pattern.offsets[-1], pattern.lead
        if len(pattern.terms) == 2:  # most phrases: one comparison each
            second = pattern.terms[1]
            return [
                (max(0, start - lead), start + last)
                for start in starts
                if start + last < size and terms[start + last] == second
            ]
        rest = tuple(zip(pattern.terms[1:], pattern.offsets[1:], strict=True))
        return [
            (max(0, start - lead), start + last)
            for start in starts
            if start + last < size and all(terms[start + at] == term for term, at in rest)
        ]

    def offsets(self, first: int, last: int) -> tuple[int, int]:
        """Character offsets in the text from position ``first`` to position ``last``."""
        # Only as far into the text as asked: matches are often in the first paragraphs.
        if self._spans is None:
            self._spans = spans(self.text)
        while len(self._offsets) <= last:
            found = next(self._spans, None)
            if found is None:
                break
            self._offsets.append(found)
        first = min(first, len(self._offsets) - 1)
        last = min(last, len(self._offsets) - 1)
        return self._offsets[first][0], self._offsets[last][1]


def near(
    left: list[tuple[int, int]], right: list[tuple[int, int]], gaps: int, limit: int | None = None
) -> list[tuple[int, int]]:
    """Pairs of intervals, one from each list, with at most ``gaps`` positions between them.

    As Elasticsearch counts them (an unordered ``all_of`` with ``max_gaps``): the positions of
    the smallest window holding both, less the positions each covers; overlapping intervals
    count as no gap. Returns ``(window first, window last)`` of each such pair (the first
    ``limit`` found, when given).
    """
    if not left or not right:
        return []
    ordered = sorted(right)
    starts = [first for first, _ in ordered]
    widest = max(last - first for first, last in ordered)
    windows = []
    for first, last in left:
        begin = bisect_left(starts, first - gaps - 1 - widest)
        for other_first, other_last in ordered[begin:]:
            if other_first > last + gaps + 1:
                break
            window = (min(first, other_first), max(last, other_last))
            covered = (last - first + 1) + (other_last - other_first + 1)
            if window[1] - window[0] + 1 - covered <= gaps:
                windows.append(window)
                if len(windows) == limit:
                    return windows
    return windows
