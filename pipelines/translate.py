"""Translate stage: articles not in the pivot language get a pivot-language translation, offline.

In:  an Article with ``language`` set.
Out: ``translation[<pivot>] = {"title", "text"}``, ``translation_status`` (``done``,
     ``not_needed`` for articles already in the pivot, ``pending`` when no model is installed,
     ``failed`` with ``translation_error``), ``translation_model`` and ``translation_confidence``.
     The original ``title`` and ``text`` are never touched. No article is ever dropped here: a
     missing model or a failure still lets the article be indexed, and ``veille translate
     --pending`` fills it in later.

Articles arriving close together are translated together: each waits at most
``VEILLE_TRANSLATE_WAIT`` seconds for up to ``VEILLE_TRANSLATE_BATCH`` others, and the batch's
sentences go to CTranslate2 in one call, in a worker thread, so the reactor keeps fetching.
Settings: ``VEILLE_TRANSLATION`` (on/off), ``VEILLE_PIVOT``, ``VEILLE_TRANSLATE_COMPUTE_TYPE``,
``VEILLE_TRANSLATE_BEAM_SIZE``, ``VEILLE_TRANSLATE_INTER_THREADS``,
``VEILLE_TRANSLATE_INTRA_THREADS``. Models are found where argostranslate keeps them
(``ARGOS_PACKAGES_DIR``); nothing is downloaded.
"""

from __future__ import annotations

import logging
from typing import Self

from scrapy.crawler import Crawler

from pipelines.base import MicroBatcher, Stage
from veille.core.article import Article
from veille.core.config import cached_config
from veille.core.settings import batch_limits, translation_settings
from veille.core.translation import (
    Glossary,
    Outcome,
    TranslationEngine,
    TranslationFailed,
    outcome_fields,
)

logger = logging.getLogger(__name__)


def apply_outcome(article: Article, outcome: Outcome, pivot: str) -> str:
    """Record a translation outcome on the article; returns the status it set."""
    values = outcome_fields(outcome, pivot)
    article.translation.update(values.pop("translation", {}))
    for name, value in values.items():
        setattr(article, name, value)
    return article.translation_status or ""


class TranslateStage(Stage):
    name = "translate"

    def __init__(
        self, crawler: Crawler, enabled: bool, engine: TranslationEngine, batch: tuple[int, float]
    ) -> None:
        super().__init__(crawler)
        self.enabled = enabled
        self.engine = engine
        self.pivot = engine.settings.pivot
        self.batches: MicroBatcher[Article, Outcome] = MicroBatcher(self._translate, *batch)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        topics = cached_config(settings.get("VEILLE_CONFIG")).topics
        engine = TranslationEngine(translation_settings(settings), Glossary.from_topics(topics))
        batch = batch_limits(settings, "VEILLE_TRANSLATE_BATCH", "VEILLE_TRANSLATE_WAIT")
        return cls(crawler, settings.getbool("VEILLE_TRANSLATION"), engine, batch)

    async def process_item(self, article: Article) -> Article:
        if not self.engine.needs_translation(article.language):
            apply_outcome(article, None, self.pivot)
            return article
        if not self.enabled:
            article.translation_status = "pending"
            article.translation_error = "translation is switched off (VEILLE_TRANSLATION)"
            self.count("translation/pending")
            return article
        outcome = await self.batches.submit(article)
        self.count(f"translation/{apply_outcome(article, outcome, self.pivot)}")
        return article

    def _translate(self, batch: list[Article]) -> list[Outcome]:
        """One batch's outcomes, in a worker thread; a failure fails every article of it."""
        docs = [(a.language or "", a.title, a.text) for a in batch]
        try:
            return self.engine.translate_documents(docs)
        except Exception as exc:
            logger.exception("translation of %d articles failed", len(batch))
            return [TranslationFailed(f"{exc.__class__.__name__}: {exc}")] * len(batch)

    def close_spider(self) -> None:
        self.batches.flush()
