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

from scrapy.crawler import Crawler
from scrapy.settings import BaseSettings

from pipelines.base import MicroBatcher, Stage, batch_limits
from veille.article import Article
from veille.config import cached_config
from veille.languages import PIVOT
from veille.translation import (
    Glossary,
    MissingModel,
    Outcome,
    TranslationEngine,
    TranslationFailed,
    TranslationResult,
    TranslationSettings,
)

logger = logging.getLogger(__name__)


def translation_settings(settings: BaseSettings) -> TranslationSettings:
    """The engine's settings from Scrapy (or any) settings with ``VEILLE_`` names."""
    return TranslationSettings(
        pivot=settings.get("VEILLE_PIVOT", PIVOT),
        compute_type=settings.get("VEILLE_TRANSLATE_COMPUTE_TYPE", "int8"),
        beam_size=settings.getint("VEILLE_TRANSLATE_BEAM_SIZE", 2),
        inter_threads=settings.getint("VEILLE_TRANSLATE_INTER_THREADS", 1),
        intra_threads=settings.getint("VEILLE_TRANSLATE_INTRA_THREADS", 2),
    )


def topic_glossary(config_dir: str) -> Glossary:
    """One glossary from every topic's ``glossary`` section."""
    keep: list[str] = []
    translate: dict[str, dict[str, str]] = {}
    for topic in cached_config(config_dir).topics:
        keep.extend(topic.glossary.keep)
        for language, terms in topic.glossary.translate.items():
            translate.setdefault(language, {}).update(terms)
    return Glossary(keep=keep, translate=translate)


def apply_outcome(article: Article, outcome: Outcome, pivot: str) -> str:
    """Record a translation outcome on the article; returns the status it set."""
    if outcome is None:
        article.translation_status = "not_needed"
    elif isinstance(outcome, TranslationResult):
        article.translation[pivot] = {"title": outcome.title, "text": outcome.text}
        article.translation_status = "done"
        article.translation_model = outcome.model
        article.translation_confidence = round(outcome.confidence, 4)
        article.translation_error = None
    elif isinstance(outcome, MissingModel):
        article.translation_status = "pending"
        article.translation_error = f"no {outcome.from_code}→{outcome.to_code} model installed"
    elif isinstance(outcome, TranslationFailed):
        article.translation_status = "failed"
        article.translation_error = outcome.reason
    return article.translation_status or ""


class TranslateStage(Stage):
    name = "translate"

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        settings = crawler.settings
        self.enabled = settings.getbool("VEILLE_TRANSLATION", True)
        self.engine = TranslationEngine(
            translation_settings(settings), topic_glossary(settings.get("VEILLE_CONFIG"))
        )
        self.pivot = self.engine.settings.pivot
        size, wait = batch_limits(
            settings, ("VEILLE_TRANSLATE_BATCH", 16), ("VEILLE_TRANSLATE_WAIT", 0.5)
        )
        self.batches: MicroBatcher[Article, Outcome] = MicroBatcher(self._translate, size, wait)

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
