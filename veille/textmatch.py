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
from collections import defaultdict
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
            known[word] = fold(stemmer.stemWord(word))
    return list(map(known.__getitem__, words))


class StemIndex:
    """Positions of each stem in a text, for fast word and phrase look-ups."""

    def __init__(self, text: str, language: str) -> None:
        self.language = language
        self.sequence = stems(text, language)
        positions: dict[str, list[int]] = defaultdict(list)
        for position, stem in enumerate(self.sequence):
            positions[stem].append(position)
        self.positions = positions

    def count(self, phrase: str) -> int:
        """How many times the phrase's stems occur consecutively."""
        wanted = stems(phrase, self.language)
        if not wanted:
            return 0
        first, rest = wanted[0], wanted[1:]
        return sum(
            1
            for start in self.positions.get(first, ())
            if self.sequence[start + 1 : start + 1 + len(rest)] == rest
        )
