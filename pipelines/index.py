"""Index stage: store articles in Elasticsearch in bulk, idempotently, losing none.

In:  an Article that passed every earlier stage.
Out: the same Article; its document is buffered and sent with ``helpers.streaming_bulk`` as a
     ``create`` under ``_id = sha256(canonical_url)``, so a second copy is refused (409) rather
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
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError
from elasticsearch.helpers import streaming_bulk
from scrapy.crawler import Crawler
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import task

from pipelines.base import Stage
from veille.core.article import Article
from veille.core.config import Environment
from veille.core.es import IndexNames, make_client, setup_indices
from veille.core.outages import report_crawl_es_outage
from veille.core.spool import Spool, replay
from veille.core.threads import in_thread

logger = logging.getLogger(__name__)


def _with_id(document: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """A buffered ``(_id, document)`` as the spool keeps it: the document with its ``_id``."""
    doc_id, source = document
    return {"_id": doc_id, **source}


class IndexStage(Stage):
    name = "index"

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        settings = crawler.settings
        self.env = Environment.from_env()
        self.client = make_client(self.env)
        self.index = IndexNames(self.env.index_prefix).articles
        self.bulk_size = settings.getint("VEILLE_BULK_SIZE", 200)
        self.interval = settings.getfloat("VEILLE_BULK_INTERVAL", 2.0)
        self.buffer: list[tuple[str, dict[str, Any]]] = []  # (_id, document)
        self.spool = Spool(self.env.data_dir, crawler.spidercls.name)
        self.loop: task.LoopingCall | None = None

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
        self.buffer.append((article.id, article.to_document()))
        if len(self.buffer) >= self.bulk_size:
            await self.flush()
        return article

    async def flush(self) -> None:
        documents, self.buffer = self.buffer, []
        if documents:
            await in_thread(self._bulk, documents)

    def _bulk(self, documents: list[tuple[str, dict[str, Any]]]) -> None:
        actions = (
            {"_op_type": "create", "_index": self.index, "_id": doc_id, "_source": source}
            for doc_id, source in documents
        )
        retry: list[tuple[str, dict[str, Any]]] = []
        try:
            for (ok, result), doc in zip(
                streaming_bulk(
                    self.client,
                    actions,
                    chunk_size=500,
                    max_retries=3,
                    initial_backoff=1,
                    raise_on_error=False,
                    raise_on_exception=False,
                ),
                documents,
                strict=True,
            ):
                outcome = result["create"]
                status = outcome.get("status")
                if ok:
                    self.count("indexed")
                elif status == 409:
                    self.count("index/already_present")
                elif status == 400:
                    self.count("dead_letter")
                    self.spool.dead_letter(_with_id(doc), str(outcome.get("error")))
                else:
                    retry.append(doc)
        except (ApiError, TransportError) as exc:
            self.outage(exc)
            retry = documents
        if retry:
            self.spool.add([_with_id(doc) for doc in retry])
            self.count("spooled", len(retry))

    def outage(self, error: BaseException) -> None:
        report_crawl_es_outage(self.stats, logger, error, self.env.data_dir)

    async def close_spider(self) -> None:
        if self.loop and self.loop.running:
            self.loop.stop()
        await self.flush()
        self.spool.close()
        self.client.close()
        spooled = self.stats.get_value("veille/spooled", 0)
        if spooled:
            logger.info("%d articles of this crawl were kept in the spool %s", spooled,
                        self.spool.path)  # fmt: skip
