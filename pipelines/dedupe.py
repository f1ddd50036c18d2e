"""Dedupe stage: an article already indexed, or already seen in this crawl, is not indexed again.

In:  an Article with ``canonical_url`` and ``content_hash`` (from the normalize stage).
Out: the same Article, unchanged, when it is new.
Drops: ``duplicate_url`` (same canonical URL, i.e. same ``_id``) and ``duplicate_content`` (same
     normalised words under another URL), whether seen earlier in this crawl or already indexed.

Only exact copies stop here. Near duplicates (a copy with another headline, a trimmed ending,
added paragraphs, other boilerplate) go on: the cluster stage (pipelines/cluster.py), after
translation, keeps them and marks them ``duplicate_of`` the first-seen article, because
analysts count syndication.

The look-up is one Elasticsearch query per article, run in a thread. If Elasticsearch cannot be
reached the article goes on: the index stage's ``create`` operation still refuses a second copy
of the same URL, and the spool keeps it if the index is down.
"""

from __future__ import annotations

import logging

from elastic_transport import TransportError
from elasticsearch import ApiError
from scrapy.crawler import Crawler

from pipelines.base import Stage, in_thread
from veille.article import Article
from veille.config import Environment
from veille.es import IndexNames, make_client

logger = logging.getLogger(__name__)


class DedupeStage(Stage):
    name = "dedupe"

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        env = Environment.from_env()
        self.client = make_client(env)
        self.index = IndexNames(env.index_prefix).articles
        self.seen_ids: set[str] = set()
        self.seen_hashes: set[str] = set()

    def _indexed_duplicate(self, article: Article) -> str | None:
        response = self.client.search(
            index=self.index,
            size=1,
            source=["content_hash"],
            query={
                "bool": {
                    "should": [
                        {"ids": {"values": [article.id]}},
                        {"term": {"content_hash": article.content_hash}},
                    ]
                }
            },
            ignore_unavailable=True,
        )
        hits = response["hits"]["hits"]
        if not hits:
            return None
        return "duplicate_url" if hits[0]["_id"] == article.id else "duplicate_content"

    async def process_item(self, article: Article) -> Article:
        if article.id in self.seen_ids:
            self.drop(article, "duplicate_url", "seen earlier in this crawl")
        if article.content_hash in self.seen_hashes:
            self.drop(article, "duplicate_content", "seen earlier in this crawl")
        self.seen_ids.add(article.id)
        self.seen_hashes.add(article.content_hash or "")
        try:
            reason = await in_thread(self._indexed_duplicate, article)
        except (ApiError, TransportError) as exc:
            self.count("dedupe/lookup_failed")
            logger.warning("duplicate look-up failed for %s: %s", article.url, exc)
            reason = None
        if reason:
            self.drop(article, reason, "already indexed")
        return article

    def close_spider(self) -> None:
        self.client.close()
