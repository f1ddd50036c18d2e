"""Rejected articles: what the relevance stage drops as off topic is kept a while, not lost.

In:  the ``item_dropped`` signals whose exception is the relevance stage's
     :class:`pipelines.relevance.OffTopic` (other drops, duplicates or empty pages, are not kept).
Out: each such article's document (:func:`veille.core.rejected.rejected_document`: the article, the
     rule it came closest to) created in ``<prefix>-rejected``. Documents are sent in bulk from a
     worker thread, so the reactor keeps fetching: every ``VEILLE_BULK_SIZE`` articles, every
     ``VEILLE_BULK_INTERVAL`` seconds and when the crawl closes. What Elasticsearch cannot take
     waits in ``<data>/rejected/spool/`` and is replayed when a crawl opens, before anything
     else is written, and by ``veille spool replay``.

Counters: ``veille/rejected/kept``, ``veille/rejected/already_kept`` (rejected by an earlier
crawl: its first record stays), ``veille/rejected/spooled``, ``veille/rejected/dead_letter``,
``veille/rejected/replayed``.
Settings: ``VEILLE_REJECTED_KEEP`` (``0``: nothing is kept and this extension is off),
``VEILLE_BULK_SIZE``, ``VEILLE_BULK_INTERVAL``.
"""

from __future__ import annotations

import logging
from typing import Any, Self

from elastic_transport import TransportError
from elasticsearch import ApiError
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet import task
from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.threads import deferToThread

from pipelines.relevance import OffTopic
from veille.core.article import Article, utcnow
from veille.core.crawl_resources import CrawlElasticsearch, crawl_elasticsearch
from veille.core.es import setup_indices
from veille.core.rejected import (
    KEEP_SETTING,
    keep_for,
    rejected_document,
    replay_rejected,
    spool_root,
)
from veille.core.settings import batch_limits
from veille.core.spool import Spool, store
from veille.core.threads import in_thread

logger = logging.getLogger(__name__)


class RejectedArticlesExtension:
    def __init__(
        self, crawler: Crawler, es: CrawlElasticsearch, bulk_size: int, interval: float
    ) -> None:
        self.stats = crawler.stats
        self.env = es.env
        self.client = es.client
        self.index = es.names.rejected
        self.bulk_size = bulk_size
        self.interval = interval
        self.spool = Spool(spool_root(self.env.data_dir), crawler.spidercls.name)
        self.buffer: list[dict[str, Any]] = []
        # One bulk at a time: the timer's and a full buffer's would otherwise share the spool.
        self.writing = DeferredLock()
        self.loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        if not keep_for(settings.get(KEEP_SETTING)):
            raise NotConfigured(f"{KEEP_SETTING} is 0: articles dropped as off topic are not kept")
        bulk_size, interval = batch_limits(settings, "VEILLE_BULK_SIZE", "VEILLE_BULK_INTERVAL")
        extension = cls(crawler, crawl_elasticsearch(crawler), bulk_size, interval)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.item_dropped, signal=signals.item_dropped)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def count(self, key: str, value: int = 1) -> None:
        if value:
            self.stats.inc_value(f"veille/rejected/{key}", value)

    async def spider_opened(self) -> None:
        try:
            await in_thread(self._ensure_index_and_replay)
        except (ApiError, TransportError) as exc:
            logger.error("Elasticsearch not ready (%s); rejected articles will be spooled", exc)
        self.loop = task.LoopingCall(lambda: deferred_from_coro(self.flush()))
        self.loop.start(self.interval, now=False)

    def _ensure_index_and_replay(self) -> None:
        if not self.client.indices.exists_alias(name=self.index):
            setup_indices(self.client, self.env.index_prefix)
        report = replay_rejected(self.client, self.index, self.env.data_dir)
        self.count("replayed", report.indexed)

    def item_dropped(self, item: Any, exception: BaseException) -> Deferred | None:
        if not isinstance(exception, OffTopic) or not isinstance(item, Article):
            return None
        self.buffer.append(rejected_document(item, exception.decision.closest, utcnow()))
        if len(self.buffer) >= self.bulk_size:
            return deferred_from_coro(self.flush())
        return None

    async def flush(self) -> None:
        documents, self.buffer = self.buffer, []
        if documents:
            await maybe_deferred_to_future(self.writing.run(deferToThread, self._store, documents))

    def _store(self, documents: list[dict[str, Any]]) -> None:
        report = store(self.client, self.index, documents, self.spool)
        self.count("kept", report.indexed)
        self.count("already_kept", report.already_present)
        self.count("dead_letter", report.dead_letter)
        self.count("spooled", report.remaining)
        if report.remaining:
            logger.error(
                "Elasticsearch did not take %d rejected articles (%s); they wait in %s",
                report.remaining, report.error, self.spool.directory,
            )  # fmt: skip

    async def spider_closed(self) -> None:
        if self.loop and self.loop.running:
            self.loop.stop()
        await self.flush()
        self.spool.close()
