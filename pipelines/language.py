"""Language stage: detect the article's language from its title and the start of its text.

In:  an Article with ``title`` and ``text``.
Out: ``language`` (ISO 639-1) and ``language_confidence`` (langdetect's probability, 0..1).
Drops: ``language_unsupported`` for languages outside ``VEILLE_LANGUAGES`` (default fr, en, es).

langdetect is seeded so the same text always gets the same answer; only a bounded prefix of
the text is read (``VEILLE_LANGUAGE_SAMPLE`` characters), which is plenty for a news article.
"""

from __future__ import annotations

from langdetect import DetectorFactory, detect_langs
from langdetect.lang_detect_exception import LangDetectException
from scrapy.crawler import Crawler

from pipelines.base import Stage
from veille.article import Article

DetectorFactory.seed = 0

DEFAULT_SAMPLE = 2000


def detect_language(title: str, text: str, sample: int = DEFAULT_SAMPLE) -> tuple[str, float]:
    """``(language, probability)`` for an article; ``("und", 0.0)`` when nothing can be told."""
    try:
        best = detect_langs(f"{title}\n{text[:sample]}")[0]
    except LangDetectException:
        return "und", 0.0
    return best.lang, round(best.prob, 4)


class LanguageStage(Stage):
    name = "language"

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        settings = crawler.settings
        self.languages = set(settings.getlist("VEILLE_LANGUAGES", ["fr", "en", "es"]))
        self.sample = settings.getint("VEILLE_LANGUAGE_SAMPLE", DEFAULT_SAMPLE)

    def process_item(self, article: Article) -> Article:
        language, confidence = detect_language(article.title, article.text, self.sample)
        article.language, article.language_confidence = language, confidence
        self.count(f"language/{language}")
        if language not in self.languages:
            self.drop(article, "language_unsupported", f"detected {language} ({confidence:.2f})")
        return article
