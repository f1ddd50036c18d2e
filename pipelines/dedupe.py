"""Dedupe stage: an article already indexed, or already seen in this crawl, is not indexed again.

In:  an Article with ``canonical_url`` and ``content_hash`` (from the normalize stage).
Out: the same Article, unchanged, when it is new.
Drops: ``duplicate_url`` (same canonical URL, i.e. same ``_id``) and ``duplicate_content`` (same
     normalised words under another URL), whether seen earlier in this crawl or already indexed
     (an article whose URL is indexed counts as ``duplicate_url`` even if its words changed).

Only exact copies stop here. Near duplicates (a copy with another headline, a trimmed ending,
added paragraphs, other boilerplate) go on: the cluster stage (pipelines/cluster.py), after
translation, keeps them and marks them ``duplicate_of`` the first-seen article, because
analysts count syndication.

Copies seen earlier in this crawl are dropped as they arrive, in arrival order. The look-up in
the index is batched: articles arriving close together wait at most
``VEILLE_CLUSTER_BATCH_WAIT`` seconds for up to ``VEILLE_CLUSTER_BATCH`` others (the cluster
stage's settings), and the batch makes one ``msearch`` (its ids, its content hashes) in a
worker thread. If Elasticsearch cannot be reached the batch's articles go on
(``veille/dedupe/lookup_failed``): the index stage's ``create`` operation still refuses a
second copy of the same URL, and the spool keeps it if the index is down.
"""

from __future__ import annotations

import logging
from typing import Self

from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch
from scrapy.crawler import Crawler

from pipelines.base import MicroBatcher, Stage
from veille.core.article import Article
from veille.core.crawl_resources import CrawlElasticsearch, crawl_elasticsearch
from veille.core.outages import report_crawl_es_outage
from veille.core.settings import batch_limits

logger = logging.getLogger(__name__)


def indexed_duplicates(client: Elasticsearch, index: str, batch: list[Article]) -> list[str | None]:
    """Per article, why it is already indexed (``duplicate_url``, ``duplicate_content``) or None.

    One ``msearch``: the ids that exist, and the content hashes that exist (one hit per hash).
    """
    ids = [article.id for article in batch]
    hashes = sorted({article.content_hash for article in batch if article.content_hash})
    searches: list[dict] = [
        {"index": index, "ignore_unavailable": True},
        {"query": {"ids": {"values": ids}}, "size": len(ids), "_source": False},
    ]
    if hashes:
        searches += [
            {"index": index, "ignore_unavailable": True},
            {
                "query": {"terms": {"content_hash": hashes}},
                "size": len(hashes),
                "_source": ["content_hash"],
                "collapse": {"field": "content_hash"},
            },
        ]
    responses = client.msearch(searches=searches)["responses"]
    for response in responses:
        if "error" in response:
            raise RuntimeError(f"duplicate look-up failed: {response['error']}")
    indexed_ids = {hit["_id"] for hit in responses[0]["hits"]["hits"]}
    indexed_hashes = (
        {hit["_source"]["content_hash"] for hit in responses[1]["hits"]["hits"]}
        if hashes
        else set()
    )
    return [
        "duplicate_url"
        if article.id in indexed_ids
        else "duplicate_content"
        if article.content_hash in indexed_hashes
        else None
        for article in batch
    ]


class DedupeStage(Stage):
    name = "dedupe"

    def __init__(self, crawler: Crawler, es: CrawlElasticsearch, batch: tuple[int, float]) -> None:
        super().__init__(crawler)
        self.env = es.env
        self.client = es.client
        self.index = es.names.articles
        self.seen_ids: set[str] = set()
        self.seen_hashes: set[str] = set()
        self.batches: MicroBatcher[Article, str | None] = MicroBatcher(self._lookup, *batch)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        batch = batch_limits(crawler.settings, "VEILLE_CLUSTER_BATCH", "VEILLE_CLUSTER_BATCH_WAIT")
        return cls(crawler, crawl_elasticsearch(crawler), batch)

    def _lookup(self, batch: list[Article]) -> list[str | None]:
        return indexed_duplicates(self.client, self.index, batch)

    async def process_item(self, article: Article) -> Article:
        if article.id in self.seen_ids:
            self.drop(article, "duplicate_url", "seen earlier in this crawl")
        if article.content_hash in self.seen_hashes:
            self.drop(article, "duplicate_content", "seen earlier in this crawl")
        self.seen_ids.add(article.id)
        self.seen_hashes.add(article.content_hash or "")
        try:
            reason = await self.batches.submit(article)
        except (ApiError, TransportError, RuntimeError) as exc:
            self.count("dedupe/lookup_failed")
            report_crawl_es_outage(self.stats, logger, exc, self.env.data_dir)
            reason = None
        if reason:
            self.drop(article, reason, "already indexed")
        return article

    def close_spider(self) -> None:
        self.batches.flush()
