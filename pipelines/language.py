"""Language stage: detect the article's language from its title and the start of its text.

In:  an Article with ``title`` and ``text``.
Out: ``language`` (ISO 639-1) and ``language_confidence`` (langdetect's probability, 0..1).
Drops: ``language_unsupported`` for languages outside ``VEILLE_LANGUAGES`` (default: those of
       veille/core/languages.py).

Crawled articles arrive with ``text_prepared``: their language was detected by the extraction
step (:func:`crawler.extraction_worker.extract_page`, same function, same sample); the stage
keeps it and still drops unsupported languages. Other articles are detected here.

langdetect is seeded so the same text always gets the same answer; only a bounded prefix of
the text is read (``VEILLE_LANGUAGE_SAMPLE`` characters, default 600: the title and about a
hundred words, which langdetect tells apart without error for the languages of the news we read).

Speed: langdetect cuts the text into n-grams character by character and multiplies a
55-language probability vector once per sampled n-gram, all in Python. :class:`VectorDetector`
runs langdetect's own algorithm (same profiles, same seeded random draws, same floating-point
operations in the same order) on a matrix of the profiles, five iterations per numpy call, with
each word's n-grams cached: the same answers, bit for bit, for a fraction of the CPU (README,
Performance: ``python -m bench.language``). The profiles load once per process, on the first
detection or at :func:`warm_up`.
"""

from __future__ import annotations

import math
import random
import re
from array import array
from functools import cache, lru_cache
from typing import Self

import numpy as np
from langdetect import DetectorFactory
from langdetect import detector_factory as langdetect_factory
from langdetect.detector import Detector
from langdetect.utils.lang_profile import LangProfile
from langdetect.utils.ngram import NGram
from scrapy.crawler import Crawler

from pipelines.base import Stage
from veille.core.article import Article

DetectorFactory.seed = 0

DEFAULT_SAMPLE = 600

N_TRIAL = 7  # Detector().n_trial
ITERATION_LIMIT = Detector.ITERATION_LIMIT
MAX_TEXT_LENGTH = 10_000  # Detector().max_text_length
TWOPI = 2.0 * math.pi  # random.gauss's
WORD_CACHE_SIZE = 16_384  # words whose n-gram rows are kept (about 3 MB)
BLOCKS_PER_CHUNK = 12  # blocks of five iterations whose draws and rows are fetched at once
SCANNED_WORDS = 2048  # generator words first scanned for a text's draws, more if it needs them
RANDOM_WORDS_BITS = 14  # 2**14 words of the generator made at start, more if a text needs them

_WORD = re.compile(r"[^ ]+ ?")  # a word of the normalised text and the space after it
_SPACES = re.compile(r" {2,}")
_VIETNAMESE_MARK = re.compile(f"[{NGram.DMARK_CLASS}]")
_LATIN = re.compile(r"[A-z]")  # langdetect's 'A' <= ch <= 'z'
_NOT_LATIN = bytes(range(ord("A"))) + bytes(range(ord("z") + 1, 128))  # the other ASCII bytes
# langdetect also means to spare Latin Extended Additional, but compares the block's number
# with its name, so every character from U+0300 counts as non-Latin.
_NON_LATIN = re.compile("[\u0300-\U0010ffff]")


class VectorDetector:
    """langdetect's ``Detector.get_probabilities`` in numpy, with the same answers bit for bit.

    Made once per process from langdetect's profiles (:class:`_Profiles`: each n-gram a row of
    one matrix). A text is cut into the n-grams langdetect takes (word by word, each word's rows
    cached), then the seven seeded trials run as langdetect's: the same random draws, read from
    the seeded generator's stream computed once, and the same floating-point operations in the
    same order, five iterations per numpy call, since langdetect normalises and tests for
    convergence only every fifth iteration.
    """

    def __init__(self, profiles: _Profiles) -> None:
        self.languages, self.rows, self.matrix = profiles.langlist, profiles.rows, profiles.matrix
        self.uniform = np.full(len(self.languages), 1.0 / len(self.languages))
        self.normalized = _NormalizedChars()
        self.word_rows = lru_cache(maxsize=WORD_CACHE_SIZE)(self._word_rows)
        _random_words(0)

    def detect(self, text: str) -> tuple[str, float]:
        """langdetect's best ``(language, probability)``; ``("und", 0.0)`` when it has none."""
        grams = self.ngram_rows(_cleaned(text))
        if not len(grams):
            return "und", 0.0
        probabilities = self.probabilities(grams)
        best = int(probabilities.argmax())  # the first of equals, as langdetect's stable sort
        if probabilities[best] <= Detector.PROB_THRESHOLD:
            return "und", 0.0
        return self.languages[best], round(float(probabilities[best]), 4)

    def ngram_rows(self, text: str) -> np.ndarray:
        """The profile rows of ``Detector._extract_ngrams`` on a cleaned text, in its order."""
        words = _WORD.findall(text.translate(self.normalized))
        return np.frombuffer(b"".join([self.word_rows(word) for word in words]), dtype=np.int32)

    def _word_rows(self, word: str) -> bytes:
        """The rows of what langdetect's ``NGram`` yields over one word (``"word "`` when a space
        follows): the 1-, 2- and 3-grams ending at each character after the space before it,
        but none inside a run of capitals."""
        padded, rows = " " + word, []
        for end in range(2, len(padded) + 1):
            if padded[end - 1].isupper() and padded[end - 2].isupper():
                continue
            for n in range(1, min(end, NGram.N_GRAM) + 1):
                gram = padded[end - n : end]
                if gram != " " and (row := self.rows.get(gram)) is not None:
                    rows.append(row)
        return np.array(rows, dtype=np.int32).tobytes()

    def probabilities(self, grams: np.ndarray) -> np.ndarray:
        """``Detector._detect_block``'s ``langprob``: the mean of seven seeded trials."""
        draws = _Draws(len(grams))
        mean = np.zeros(len(self.languages))
        for _ in range(N_TRIAL):
            alpha = Detector.ALPHA_DEFAULT + draws.gauss() * Detector.ALPHA_WIDTH
            mean += self._trial(grams, draws, alpha / Detector.BASE_FREQ) / N_TRIAL
        return mean

    def _trial(self, grams: np.ndarray, draws: _Draws, weight: float) -> np.ndarray:
        """One trial: per iteration, multiply by ``weight`` + the row of a drawn n-gram; at
        iterations 0, 5, 10… normalise, and stop once a language is above the threshold."""
        probability, start, leader = self.uniform, 0, 0
        while True:  # a chunk: iterations start..last, whole blocks ending at multiples of 5
            last = min(start // 5 * 5 + 5 * BLOCKS_PER_CHUNK, ITERATION_LIMIT)
            picked = grams[draws.below(last - start + 1)]
            steps = np.empty((len(picked) + 1, len(probability)))
            steps[0] = probability  # steps[k]: iteration start + k - 1's factors
            np.add(self.matrix.take(picked, axis=0), weight, out=steps[1:])
            before = 0  # the row before a block holds the vector it multiplies
            for end in range(0 if start == 0 else start + 4, last + 1, 5):
                after = end - start + 1
                product = np.multiply.reduce(steps[before : after + 1], axis=0)
                values = product.tolist()
                total = sum(values)  # Python's own sum, as langdetect's (3.12 adds differently)
                probability = np.divide(product, total, out=steps[after])
                if values[leader] / total < 0.5:  # else the largest, or tied far below
                    leader = values.index(max(values))
                if values[leader] / total > Detector.CONV_THRESHOLD or end >= ITERATION_LIMIT:
                    draws.keep(after)
                    return probability
                before = after
            draws.keep(len(picked))
            start = last + 1


class _Draws:
    """What ``random.Random(DetectorFactory.seed)`` gives langdetect's trials on ``n`` n-grams.

    ``gauss()`` is ``Random.gauss`` (two ``random()``, one value kept for the next call) and
    :meth:`below` gives the coming ``choice`` indices (``getrandbits(k)`` until one is below
    ``n``), both computed from the generator's 32-bit words. :meth:`keep` says how many of the
    indices looked ahead were used, so the next draw reads the word langdetect's would.
    """

    def __init__(self, n: int) -> None:
        self.n, self.shift = n, 32 - n.bit_length()
        self.position = 0  # the next word of the stream
        self.spare: float | None = None  # Random.gauss_next
        self.first = 0  # the first index of the last look-ahead
        self._scan(SCANNED_WORDS)

    def _scan(self, width: int) -> None:
        """Which of the first ``width`` words give an index below ``n`` (``at``), and which."""
        candidates = _random_words(width)[:width] >> self.shift
        self.width, self.at = width, np.flatnonzero(candidates < self.n)
        self.indices = candidates[self.at]

    def gauss(self) -> float:
        if self.spare is not None:
            z, self.spare = self.spare, None
            return z
        a, b, c, d = _random_words(self.position + 4)[self.position : self.position + 4].tolist()
        self.position += 4
        x2pi = _random(a, b) * TWOPI
        g2rad = math.sqrt(-2.0 * math.log(1.0 - _random(c, d)))
        self.spare = math.sin(x2pi) * g2rad
        return math.cos(x2pi) * g2rad

    def below(self, count: int) -> np.ndarray:
        """The next ``count`` values of ``Random._randbelow(n)``, looked ahead."""
        self.first = int(self.at.searchsorted(self.position))
        while self.first + count > len(self.at):
            self._scan(2 * self.width)
        return self.indices[self.first : self.first + count]

    def keep(self, used: int) -> None:
        """The first ``used`` values of the last :meth:`below` were drawn."""
        self.position = int(self.at[self.first + used - 1]) + 1


class _Profiles(DetectorFactory):
    """langdetect's ``load_profile``, its probabilities kept in one matrix (n-grams × languages)
    and a map from n-gram to row, instead of a list of 55 floats per n-gram."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, int] = {}
        self.columns: list[tuple[array, array]] = []  # per language: rows, probabilities
        self.load_profile(langdetect_factory.PROFILES_DIRECTORY)
        self.matrix = np.zeros((len(self.rows), len(self.langlist)))
        for language, (rows, probabilities) in enumerate(self.columns):
            self.matrix[np.frombuffer(rows, dtype=np.int64), language] = np.frombuffer(
                probabilities
            )
        del self.columns

    def add_profile(self, profile: LangProfile, index: int, langsize: int) -> None:
        """``DetectorFactory.add_profile``'s probabilities, as column ``index``."""
        self.langlist.append(profile.name)
        rows, probabilities = array("q"), array("d")
        for word in profile.freq:
            row = self.rows.setdefault(word, len(self.rows))
            if 1 <= len(word) <= 3:
                rows.append(row)
                probabilities.append(1.0 * profile.freq.get(word) / profile.n_words[len(word) - 1])
        self.columns.append((rows, probabilities))


def _random(high: int, low: int) -> float:
    """``Random.random()`` from its two 32-bit words."""
    return ((high >> 5) * 67108864.0 + (low >> 6)) * (1.0 / 9007199254740992.0)


def _random_words(count: int) -> np.ndarray:
    """At least ``count`` of the seeded generator's 32-bit words, in the order it makes them."""
    return _random_stream(max(RANDOM_WORDS_BITS, (count - 1).bit_length()))


@cache
def _random_stream(bits: int) -> np.ndarray:
    size = 1 << bits
    stream = random.Random(DetectorFactory.seed).getrandbits(32 * size)  # word i at bits 32i
    return np.frombuffer(stream.to_bytes(4 * size, "little"), dtype="<u4")


class _NormalizedChars(dict):
    """``str.translate`` table of ``NGram.normalize``, filled as characters are met."""

    def __missing__(self, code: int) -> str:
        self[code] = NGram.normalize(chr(code))
        return self[code]


def _cleaned(text: str) -> str:
    """``Detector.append`` then ``cleaning_text``: URLs and e-mail addresses blanked, Vietnamese
    normalised, cut to langdetect's length, runs of spaces made one, and the Latin letters
    dropped from a text mostly in another script."""
    text = Detector.URL_RE.sub(" ", text)
    if "@" in text:  # each pattern below needs the character tested first
        text = Detector.MAIL_RE.sub(" ", text)
    if _VIETNAMESE_MARK.search(text):
        text = NGram.normalize_vi(text)
    text = text[:MAX_TEXT_LENGTH]
    if "  " in text:
        text = _SPACES.sub(" ", text)
    non_latin = len(_NON_LATIN.findall(text))
    if (
        non_latin
        and len(text.encode("ascii", "ignore").translate(None, _NOT_LATIN)) * 2 < non_latin
    ):
        text = _LATIN.sub("", text)
    return text


@cache
def _factory() -> VectorDetector:
    """This process's detector, made from langdetect's profiles on first use."""
    return VectorDetector(_Profiles())


def warm_up() -> None:
    """Load the profiles and build the matrix now, e.g. when a worker process starts."""
    _factory()


def detect_language(title: str, text: str, sample: int = DEFAULT_SAMPLE) -> tuple[str, float]:
    """``(language, probability)`` for an article; ``("und", 0.0)`` when nothing can be told."""
    return _factory().detect(f"{title}\n{text[:sample]}")


class LanguageStage(Stage):
    name = "language"

    def __init__(self, crawler: Crawler, languages: set[str], sample: int) -> None:
        super().__init__(crawler)
        self.languages = languages
        self.sample = sample
        # No profiles loaded here: crawled articles come detected by the extraction step, and
        # an article without a language loads them on its first detection.

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        languages = set(settings.getlist("VEILLE_LANGUAGES"))
        return cls(crawler, languages, settings.getint("VEILLE_LANGUAGE_SAMPLE"))

    def process_item(self, article: Article) -> Article:
        if not article.text_prepared:
            detected = detect_language(article.title, article.text, self.sample)
            article.language, article.language_confidence = detected
        language, confidence = article.language, article.language_confidence or 0.0
        self.count(f"language/{language}")
        if language not in self.languages:
            self.drop(article, "language_unsupported", f"detected {language} ({confidence:.2f})")
        return article
