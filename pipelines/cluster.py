"""Cluster stage: mark same-language copies and link versions of a story in other languages.

In:  an Article that passed dedupe (exact copies are already dropped there) and translate
     (so an article in another language carries its pivot-language text).
Out: the same Article with ``minhash`` and ``minhash_pivot`` sketches (LSH band terms stored in
     the index, so later crawls and other workers find it), ``cluster_id`` always, and
     ``duplicate_of`` naming the first-seen article when it is a near-duplicate copy. Nothing
     is dropped: analysts count syndication. See :mod:`veille.core.clusters` for the look-up.

Counters: ``veille/duplicates/near`` (copies marked ``duplicate_of``, of which
``veille/duplicates/near_concurrent`` were settled against a copy not yet searchable),
``veille/clusters/cross_language`` (articles linked to a story in another language),
``veille/clusters/new`` and ``veille/clusters/lookup_failed`` (Elasticsearch unreachable: the
article is indexed as its own cluster, with its band terms, so later copies still find it).

Articles arriving close together are clustered together: a batch starts when
``VEILLE_CLUSTER_BATCH`` articles wait or ``VEILLE_CLUSTER_BATCH_WAIT`` seconds after the first
of them arrived, and makes one look-up request, one claims request and few others, in a worker
thread. One batch runs at a time (a batch due meanwhile starts when it ends), so each sees the
versions the batch before it clustered. The dedupe stage batches with the same two settings.

Settings: ``VEILLE_NEAR_DUPLICATE_THRESHOLD``, ``VEILLE_CROSS_LANGUAGE_THRESHOLD``,
``VEILLE_CROSS_LANGUAGE_WINDOW``, ``VEILLE_MINHASH_SHINGLE``/``_BANDS``/``_ROWS`` and
``VEILLE_MINHASH_PIVOT_SHINGLE``/``_BANDS``/``_ROWS``/``_MIN_WORD``, ``VEILLE_PIVOT``.
"""

from __future__ import annotations

import logging
from typing import Self

from elastic_transport import TransportError
from elasticsearch import ApiError
from scrapy.crawler import Crawler

from pipelines.base import MicroBatcher, Stage
from veille.core.article import Article
from veille.core.clusters import Assignment, ClusterSettings, StoryClusters
from veille.core.crawl_resources import CrawlElasticsearch, crawl_elasticsearch
from veille.core.es import setup_indices
from veille.core.outages import report_crawl_es_outage
from veille.core.settings import batch_limits, cluster_settings
from veille.core.threads import in_thread

logger = logging.getLogger(__name__)


class ClusterStage(Stage):
    name = "cluster"

    def __init__(
        self,
        crawler: Crawler,
        es: CrawlElasticsearch,
        settings: ClusterSettings,
        batch: tuple[int, float],
    ) -> None:
        super().__init__(crawler)
        self.env = es.env
        self.client = es.client
        self.claims_index = es.names.clusters
        self.clusters = StoryClusters(self.client, es.names.articles, es.names.clusters, settings)
        self.batches: MicroBatcher[Article, Assignment] = MicroBatcher(
            self.clusters.assign_batch, *batch, one_at_a_time=True
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        batch = batch_limits(settings, "VEILLE_CLUSTER_BATCH", "VEILLE_CLUSTER_BATCH_WAIT")
        return cls(crawler, crawl_elasticsearch(crawler), cluster_settings(settings), batch)

    async def open_spider(self) -> None:
        try:
            await in_thread(self._ensure_indices)
        except (ApiError, TransportError) as exc:
            report_crawl_es_outage(self.stats, logger, exc, self.env.data_dir)

    def _ensure_indices(self) -> None:
        if not self.client.indices.exists_alias(name=self.claims_index):
            setup_indices(self.client, self.env.index_prefix)

    async def process_item(self, article: Article) -> Article:
        try:
            assignment = await self.batches.submit(article)
        except (ApiError, TransportError, RuntimeError) as exc:
            self.count("clusters/lookup_failed")
            report_crawl_es_outage(self.stats, logger, exc, self.env.data_dir)
            article.cluster_id, article.duplicate_of = article.id, None
            return article
        if assignment.kind == "duplicate":
            self.count("duplicates/near")
            if assignment.concurrent:
                self.count("duplicates/near_concurrent")
        elif assignment.kind == "cross_language":
            self.count("clusters/cross_language")
        else:
            self.count("clusters/new")
        return article

    def close_spider(self) -> None:
        self.batches.flush()
