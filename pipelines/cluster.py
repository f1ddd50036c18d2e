"""Cluster stage: mark same-language copies and link versions of a story in other languages.

In:  an Article that passed dedupe (exact copies are already dropped there) and translate
     (so an article in another language carries its pivot-language text).
Out: the same Article with ``minhash`` and ``minhash_pivot`` sketches (LSH band terms stored in
     the index, so later crawls and other workers find it), ``cluster_id`` always, and
     ``duplicate_of`` naming the first-seen article when it is a near-duplicate copy. Nothing
     is dropped: analysts count syndication. See :mod:`veille.clusters` for the look-up.

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

from elastic_transport import TransportError
from elasticsearch import ApiError
from scrapy.crawler import Crawler
from scrapy.settings import BaseSettings

from pipelines.base import SETTINGS_FILE, MicroBatcher, Stage, batch_limits, in_thread
from veille.article import Article
from veille.clusters import Assignment, ClusterSettings, StoryClusters
from veille.config import ConfigError, Environment, parse_duration
from veille.es import IndexNames, make_client, setup_indices
from veille.minhash import Scheme
from veille.outages import report_crawl_es_outage

logger = logging.getLogger(__name__)


def _threshold(settings: BaseSettings, name: str, default: float) -> float:
    value = settings.getfloat(name, default)
    if not 0 < value <= 1:
        raise ConfigError(SETTINGS_FILE, name, f"{value} is not a similarity", "use 0 < x <= 1")
    return value


def _scheme(settings: BaseSettings, prefix: str, default: Scheme) -> Scheme:
    try:
        return Scheme(
            shingle=settings.getint(f"{prefix}_SHINGLE", default.shingle),
            bands=settings.getint(f"{prefix}_BANDS", default.bands),
            rows=settings.getint(f"{prefix}_ROWS", default.rows),
            min_word_length=settings.getint(f"{prefix}_MIN_WORD", default.min_word_length),
        )
    except ValueError as exc:
        raise ConfigError(SETTINGS_FILE, f"{prefix}_*", str(exc), "use whole numbers >= 1") from exc


def cluster_settings(settings: BaseSettings) -> ClusterSettings:
    """Cluster thresholds and MinHash schemes from Scrapy settings, validated."""
    defaults = ClusterSettings()
    try:
        window = parse_duration(settings.get("VEILLE_CROSS_LANGUAGE_WINDOW", "3d"))
    except ValueError as exc:
        raise ConfigError(SETTINGS_FILE, "VEILLE_CROSS_LANGUAGE_WINDOW", str(exc)) from exc
    return ClusterSettings(
        scheme=_scheme(settings, "VEILLE_MINHASH", defaults.scheme),
        pivot_scheme=_scheme(settings, "VEILLE_MINHASH_PIVOT", defaults.pivot_scheme),
        duplicate_threshold=_threshold(
            settings, "VEILLE_NEAR_DUPLICATE_THRESHOLD", defaults.duplicate_threshold
        ),
        cross_language_threshold=_threshold(
            settings, "VEILLE_CROSS_LANGUAGE_THRESHOLD", defaults.cross_language_threshold
        ),
        window=window,
        pivot=settings.get("VEILLE_PIVOT", defaults.pivot),
    )


class ClusterStage(Stage):
    name = "cluster"

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.env = Environment.from_env()
        self.client = make_client(self.env)
        names = IndexNames(self.env.index_prefix)
        self.claims_index = names.clusters
        self.clusters = StoryClusters(
            self.client, names.articles, names.clusters, cluster_settings(crawler.settings)
        )
        size, wait = batch_limits(
            crawler.settings, ("VEILLE_CLUSTER_BATCH", 32), ("VEILLE_CLUSTER_BATCH_WAIT", 0.25)
        )
        self.batches: MicroBatcher[Article, Assignment] = MicroBatcher(
            self.clusters.assign_batch, size, wait, one_at_a_time=True
        )

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
        self.client.close()
