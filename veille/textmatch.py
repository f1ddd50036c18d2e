"""Stem-level term matching for French, English and Spanish.

In:  a text and its language; terms (words or phrases).
Out: which terms occur, matched on Snowball stems with accents folded, so "commissariat" matches
     "commissariats", "comisaría" matches "comisarías" and "police station" matches
     "police stations".

Stemming is pure Python (snowballstemmer) and a news text repeats its vocabulary, so each
word's folded stem is computed once and kept in a per-language dictionary of at most
``STEM_CACHE_SIZE`` words (emptied when full, so it never grows with the crawl); a text's stems
are then one dictionary look-up per word.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer

STEMMER_NAMES = {"fr": "french", "en": "english", "es": "spanish"}
_TOKEN = re.compile(r"\w+", re.UNICODE)
STEM_CACHE_SIZE = 50_000


def fold(text: str) -> str:
    """Lowercase without accents: "Comisaría" → "comisaria"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=8)
def _stemmer(language: str):
    return snowballstemmer.stemmer(STEMMER_NAMES.get(language, "english"))


# Language → {word: folded stem}, filled as words are met.
_STEMS: dict[str, dict[str, str]] = {}


def stems(text: str, language: str) -> list[str]:
    """The folded stems of the words of ``text`` in reading order."""
    words = _TOKEN.findall(text.casefold())
    known = _STEMS.setdefault(language, {})
    new = set(words).difference(known)
    if new:
        if len(known) + len(new) > STEM_CACHE_SIZE:
            known.clear()
        stemmer = _stemmer(language)
        for word in new:
            # No space in a stem: StemIndex joins stems with spaces (a few compatibility
            # characters fold to one).
            known[word] = fold(stemmer.stemWord(word)).replace(" ", "")
    return list(map(known.__getitem__, words))


@lru_cache(maxsize=4096)
def _phrase(phrase: str, language: str) -> tuple[tuple[str, ...], bool]:
    """A phrase's stems, and whether two of its occurrences can overlap ("a a", "a b a")."""
    wanted = tuple(stems(phrase, language))
    overlaps = any(wanted[:size] == wanted[-size:] for size in range(1, len(wanted)))
    return wanted, overlaps


class StemIndex:
    """A text's stems, for fast word and phrase look-ups.

    Each stem is kept between two spaces (a stem has none), so counting a phrase is one
    substring count of its stems written the same way, done in C; phrases whose occurrences
    can overlap are counted stem by stem instead, as a substring count would miss those.
    """

    def __init__(self, text: str, language: str) -> None:
        self.language = language
        self.sequence = stems(text, language)
        self._spaced = f" {'  '.join(self.sequence)} "

    def count(self, phrase: str) -> int:
        """How many times the phrase's stems occur consecutively."""
        wanted, overlaps = _phrase(phrase, self.language)
        if not wanted:
            return 0
        if not overlaps:
            return self._spaced.count(f" {'  '.join(wanted)} ")
        size = len(wanted)
        return sum(
            1
            for start in range(len(self.sequence) - size + 1)
            if tuple(self.sequence[start : start + size]) == wanted
        )
