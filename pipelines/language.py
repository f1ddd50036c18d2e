"""Language stage: detect the article's language from its title and the start of its text.

In:  an Article with ``title`` and ``text``.
Out: ``language`` (ISO 639-1) and ``language_confidence`` (langdetect's probability, 0..1).
Drops: ``language_unsupported`` for languages outside ``VEILLE_LANGUAGES`` (default fr, en, es).

langdetect is seeded so the same text always gets the same answer; only a bounded prefix of
the text is read (``VEILLE_LANGUAGE_SAMPLE`` characters, default 600: the title and about a
hundred words, which langdetect tells apart without error for French, English and Spanish news).

Speed: langdetect multiplies a 55-language probability vector once per sampled n-gram in a
Python loop, which made it cost as much as extracting the article. :class:`VectorDetector` runs
langdetect's own algorithm (same profiles, same seeded random draws, same floating-point
operations in the same order) with the vector as a numpy array, so its answers are langdetect's,
several times faster.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from langdetect import DetectorFactory
from langdetect import detector_factory as langdetect_factory
from langdetect.detector import Detector
from langdetect.lang_detect_exception import LangDetectException
from scrapy.crawler import Crawler

from pipelines.base import Stage
from veille.article import Article

DetectorFactory.seed = 0

DEFAULT_SAMPLE = 600


class VectorDetector(Detector):
    """langdetect's ``Detector`` with the probability vector in numpy (identical results)."""

    def _init_probability(self) -> np.ndarray:
        if self.prior_map is not None:
            return np.array(self.prior_map, dtype=float)
        return np.full(len(self.langlist), 1.0 / len(self.langlist))

    def _update_lang_prob(self, prob: np.ndarray, word: str, alpha: float) -> bool:
        if word is None or word not in self.word_lang_prob_map:
            return False
        prob *= alpha / self.BASE_FREQ + _profile_row(word)
        return True

    def _normalize_prob(self, prob: np.ndarray) -> float:
        prob /= sum(prob.tolist())  # Python's sum, in order, as langdetect adds them
        return float(prob.max())


@cache  # bounded by the profiles' n-grams; only those met are converted
def _profile_row(ngram: str) -> np.ndarray:
    return np.array(_factory().word_lang_prob_map[ngram], dtype=float)


def _factory() -> DetectorFactory:
    langdetect_factory.init_factory()
    return langdetect_factory._factory


def detect_language(title: str, text: str, sample: int = DEFAULT_SAMPLE) -> tuple[str, float]:
    """``(language, probability)`` for an article; ``("und", 0.0)`` when nothing can be told."""
    detector = VectorDetector(_factory())
    detector.append(f"{title}\n{text[:sample]}")
    try:
        best = detector.get_probabilities()[0]
    except (LangDetectException, IndexError):
        return "und", 0.0
    return best.lang, round(float(best.prob), 4)


class LanguageStage(Stage):
    name = "language"

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        settings = crawler.settings
        self.languages = set(settings.getlist("VEILLE_LANGUAGES", ["fr", "en", "es"]))
        self.sample = settings.getint("VEILLE_LANGUAGE_SAMPLE", DEFAULT_SAMPLE)
        _factory()  # langdetect's profiles load now (about a second), not on the first article

    def process_item(self, article: Article) -> Article:
        language, confidence = detect_language(article.title, article.text, self.sample)
        article.language, article.language_confidence = language, confidence
        self.count(f"language/{language}")
        if language not in self.languages:
            self.drop(article, "language_unsupported", f"detected {language} ({confidence:.2f})")
        return article
