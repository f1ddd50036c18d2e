"""Stations stage: the register ``<prefix>-stations`` learns what each article reports.

In:  an Article with ``stations`` (from the places stage).
Out: the same Article with ``stations_status`` (``registered``, or ``pending`` when the register
     could not be updated: `veille stations update` applies it later) and ``new_stations`` (the
     locations it added to the register, which alert rules with ``new_station: true`` match).
     Articles reporting nothing pass untouched; nothing is dropped.

Articles arriving close together update the register together (``VEILLE_STATIONS_BATCH``
articles or ``VEILLE_STATIONS_BATCH_WAIT`` seconds), one batch at a time, in a worker thread; see
:mod:`veille.core.stations` for the idempotent update. Counters: ``veille/stations/registered``,
``veille/stations/new`` (articles that added a location), ``veille/stations/pending``.
"""

from __future__ import annotations

import logging
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError
from scrapy.crawler import Crawler

from pipelines.base import MicroBatcher, Stage
from veille.core.article import Article
from veille.core.config import cached_config
from veille.core.crawl_resources import CrawlElasticsearch, crawl_elasticsearch
from veille.core.es import setup_indices
from veille.core.events import EventRules
from veille.core.outages import report_crawl_es_outage
from veille.core.settings import batch_limits
from veille.core.stations import PENDING, REGISTERED, Register, RegisterConflict
from veille.core.threads import in_thread

logger = logging.getLogger(__name__)


class StationsStage(Stage):
    name = "stations"

    def __init__(
        self,
        crawler: Crawler,
        es: CrawlElasticsearch,
        batch: tuple[int, float],
        order: tuple[str, ...],
    ) -> None:
        super().__init__(crawler)
        self.env = es.env
        self.client = es.client
        self.register = Register(self.client, es.names, order)
        self.batches: MicroBatcher[tuple[str, dict[str, Any]], list[str]] = MicroBatcher(
            self._apply, *batch, one_at_a_time=True
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StationsStage:
        settings = crawler.settings
        batch = batch_limits(settings, "VEILLE_STATIONS_BATCH", "VEILLE_STATIONS_BATCH_WAIT")
        rules = EventRules.from_topics(cached_config(settings.get("VEILLE_CONFIG")).topics)
        return cls(crawler, crawl_elasticsearch(crawler), batch, rules.order)

    async def open_spider(self) -> None:
        try:
            await in_thread(self._ensure_index)
        except (ApiError, TransportError) as exc:
            report_crawl_es_outage(self.stats, logger, exc, self.env.data_dir)

    def _ensure_index(self) -> None:
        if not self.client.indices.exists_alias(name=self.register.index):
            setup_indices(self.client, self.env.index_prefix)

    def _apply(self, articles: list[tuple[str, dict[str, Any]]]) -> list[list[str]]:
        return self.register.apply(articles)

    async def process_item(self, article: Article) -> Article:
        if not article.stations:
            return article
        try:
            created = await self.batches.submit((article.id, article.to_document()))
        except (ApiError, TransportError, RegisterConflict, RuntimeError) as exc:
            self.count("stations/pending")
            if isinstance(exc, ApiError | TransportError):  # once per crawl, not per article
                report_crawl_es_outage(self.stats, logger, exc, self.env.data_dir)
            else:
                logger.warning("register update failed for %s (%s); pending", article.url, exc)
            article.stations_status = PENDING
            return article
        article.stations_status = REGISTERED
        article.new_stations = created
        self.count("stations/registered")
        if created:
            self.count("stations/new")
        return article

    def close_spider(self) -> None:
        self.batches.flush()
