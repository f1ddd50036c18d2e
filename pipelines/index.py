"""Index stage: store articles in Elasticsearch in bulk, idempotently, losing none.

In:  an Article that passed every earlier stage.
Out: the same Article; its document is buffered and sent in bulk (:func:`veille.core.spool.store`)
     as a ``create`` under ``_id = sha256(canonical_url)``, so a second copy is refused (409) rather
     than overwriting ``first_seen_at``. The buffer is flushed every ``VEILLE_BULK_SIZE`` articles,
     every ``VEILLE_BULK_INTERVAL`` seconds and when the crawl closes.

Per-item results are read: 409 counts as ``index/already_present``, content errors (400) go to
the dead-letter file, and anything else (Elasticsearch down, 429 after retries) goes to the spool
for replay (see :mod:`veille.core.spool`). When the crawl opens, articles spooled by earlier crawls
are replayed first, in order, before any page is fetched. Counters: ``veille/indexed``,
``veille/spooled``, ``veille/dead_letter``, and for the replay ``veille/spool/replayed``,
``veille/spool/already_present``, ``veille/spool/dead_letter``, ``veille/spool/waiting``.
"""

from __future__ import annotations

import logging
from typing import Any, Self

from elastic_transport import TransportError
from elasticsearch import ApiError
from scrapy.crawler import Crawler
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import task

from pipelines.base import Stage
from veille.core.article import Article
from veille.core.crawl_resources import CrawlElasticsearch, crawl_elasticsearch
from veille.core.es import setup_indices
from veille.core.outages import report_crawl_es_outage
from veille.core.settings import batch_limits
from veille.core.spool import Spool, replay, store
from veille.core.threads import in_thread

logger = logging.getLogger(__name__)


class IndexStage(Stage):
    name = "index"

    def __init__(
        self, crawler: Crawler, es: CrawlElasticsearch, bulk_size: int, interval: float
    ) -> None:
        super().__init__(crawler)
        self.env = es.env
        self.client = es.client
        self.index = es.names.articles
        self.bulk_size = bulk_size
        self.interval = interval
        self.buffer: list[dict[str, Any]] = []  # documents with their _id
        self.spool = Spool(self.env.data_dir, crawler.spidercls.name)
        self.loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        bulk_size, interval = batch_limits(settings, "VEILLE_BULK_SIZE", "VEILLE_BULK_INTERVAL")
        return cls(crawler, crawl_elasticsearch(crawler), bulk_size, interval)

    async def open_spider(self) -> None:
        try:
            await in_thread(self._ensure_index)
        except (ApiError, TransportError) as exc:
            self.outage(exc)
        else:
            await in_thread(self._replay)
        self.loop = task.LoopingCall(self._flush_soon)
        self.loop.start(self.interval, now=False)

    def _ensure_index(self) -> None:
        if not self.client.indices.exists_alias(name=self.index):
            setup_indices(self.client, self.env.index_prefix)

    def _replay(self) -> None:
        """Articles spooled by earlier crawls go in before this crawl's own."""
        report = replay(self.client, self.index, self.env.data_dir)
        self.count("spool/replayed", report.indexed)
        self.count("spool/already_present", report.already_present)
        self.count("spool/dead_letter", report.dead_letter + report.unreadable)
        self.count("spool/waiting", report.remaining)
        if report.indexed or report.already_present:
            logger.info(
                "spool replayed: %d articles indexed, %d already present",
                report.indexed,
                report.already_present,
            )

    def _flush_soon(self) -> Any:
        return deferred_from_coro(self.flush())

    async def process_item(self, article: Article) -> Article:
        self.buffer.append({"_id": article.id, **article.to_document()})
        if len(self.buffer) >= self.bulk_size:
            await self.flush()
        return article

    async def flush(self) -> None:
        documents, self.buffer = self.buffer, []
        if documents:
            await in_thread(self._bulk, documents)

    def _bulk(self, documents: list[dict[str, Any]]) -> None:
        report = store(self.client, self.index, documents, self.spool, on_outage=self.outage)
        for key, value in (
            ("indexed", report.indexed),
            ("index/already_present", report.already_present),
            ("dead_letter", report.dead_letter),
            ("spooled", report.remaining),
        ):
            if value:
                self.count(key, value)

    def outage(self, error: BaseException) -> None:
        report_crawl_es_outage(self.stats, logger, error, self.env.data_dir)

    async def close_spider(self) -> None:
        if self.loop and self.loop.running:
            self.loop.stop()
        await self.flush()
        self.spool.close()
        spooled = self.stats.get_value("veille/spooled", 0)
        if spooled:
            logger.info("%d articles of this crawl were kept in the spool %s", spooled,
                        self.spool.path)  # fmt: skip
