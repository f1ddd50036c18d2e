"""Distributed feeds spider: the crawl a ``veille worker`` runs, fed from Redis by scrapy-redis.

In:  messages ``{"source": NAME, "url": FEED_URL}`` taken from ``REDIS_START_URLS_KEY`` (pushed
     by :mod:`veille.core.distributed`); the source is looked up in the worker's own config folder.
Out: what the feeds spider does (feeds parsed, article pages extracted, Article items through
     the pipelines), except that every article request goes through the shared scrapy-redis queue
     (``SCHEDULER_QUEUE_KEY``) and is fetched by whichever worker is free, and the lease filter
     (:mod:`crawler.leases`) keeps two workers from queueing the same page.

A worker waits for work when it has none; ``VEILLE_WORKER_MAX_IDLE`` (seconds, 0 = never, the
default) makes it stop after that long with nothing to do, for one-off backfills. Scrapy looks at
an idle scheduler only every 5 seconds; a worker looks every ``VEILLE_REDIS_POLL`` seconds
(default 1), so that work pushed by the scheduler or queued by another worker starts at once.

Every ``VEILLE_WORKER_HEARTBEAT`` seconds (default 5) the worker writes its counters to
``<prefix>:workers:<host>-<pid>``, which expires three heartbeats after the worker stops
(``veille queue`` lists them). Counters: ``veille/feeds/bad_message``,
``veille/feeds/unknown_source``, ``veille/feeds/not_a_feed_source``, and the feeds spider's own.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Self

import redis
import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider
from scrapy_redis.spiders import RedisMixin
from twisted.internet import task

from crawler.spiders.feeds import FeedSpider
from veille.core.config import ConfigError, Environment, cached_config
from veille.core.distributed import RedisKeys
from veille.core.outages import report_outage

logger = logging.getLogger(__name__)

# Counters published in the heartbeat, under short names.
HEARTBEAT_COUNTERS = {
    "feeds_read": "veille/feeds/read",
    "pages_fetched": "veille/pages_fetched",
    "extracted": "veille/extracted",
    "indexed": "veille/indexed",
    "spooled": "veille/spooled",
}


class DistributedFeedSpider(RedisMixin, FeedSpider):
    name = "feeds-distributed"
    custom_settings = {
        "SCHEDULER": "crawler.redis_scheduler.RedisScheduler",
        "DUPEFILTER_CLASS": "crawler.leases.LeaseDupeFilter",
        # The pending requests live in Redis, not in a Scrapy job folder.
        "VEILLE_RESUME": False,
    }

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.setup_redis(crawler)
        spider.setup_worker(crawler)
        return spider

    def setup_worker(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.config = cached_config(settings.get("VEILLE_CONFIG"))
        self.max_idle = settings.getfloat("VEILLE_WORKER_MAX_IDLE")
        self.poll_interval = settings.getfloat("VEILLE_REDIS_POLL")
        self.heartbeat_interval = settings.getfloat("VEILLE_WORKER_HEARTBEAT")
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        self.worker_key = (
            f"{RedisKeys(Environment.from_env().index_prefix).workers}:{self.worker_id}"
        )
        self.started_at = datetime.now(UTC).isoformat()
        self.idle_since: float | None = None
        self.heartbeat: task.LoopingCall | None = None
        crawler.signals.connect(self.worker_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.busy, signal=signals.response_received)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        # Scrapy 2.13+ calls start(), no longer scrapy-redis's start_requests().
        for request in self.next_requests():
            yield request

    def worker_opened(self, spider: scrapy.Spider) -> None:
        engine = self.crawler.engine
        if hasattr(engine, "_SLOT_HEARTBEAT_INTERVAL"):
            # Not a setting: how often Scrapy asks an idle scheduler (the shared queue) for work.
            engine._SLOT_HEARTBEAT_INTERVAL = self.poll_interval
        else:
            logger.warning("this Scrapy has no engine heartbeat to tune; idle workers poll slowly")
        # Made here, not earlier: a LoopingCall takes the reactor, which Scrapy installs after
        # creating the spider.
        self.heartbeat = task.LoopingCall(self.beat)
        self.heartbeat.start(self.heartbeat_interval, now=True)
        logger.info("worker %s ready: feeds from %s", self.worker_id, self.redis_key)

    def make_request_from_data(self, data: bytes) -> list[scrapy.Request]:
        """The feed request for one pushed message, or none if it cannot be used."""
        try:
            message = json.loads(data)
            name, url = message["source"], message["url"]
        except (ValueError, KeyError, TypeError):
            self.count("feeds/bad_message")
            logger.error("ignored %r in %s: not a feed push", data[:200], self.redis_key)
            return []
        try:
            source = self.config.source(name)
        except ConfigError as exc:
            self.count("feeds/unknown_source")
            logger.error(
                "feed %s skipped: %s. Workers and scheduler must read the same config folder; "
                "restart the workers after editing it.",
                url,
                exc,
            )
            return []
        if source.type != self.source_type:
            self.count("feeds/not_a_feed_source")
            logger.error("%s skipped: source %s is of type %s", url, name, source.type)
            return []
        return [self.listing_request(url, source, self.parse_feed, first=True)]

    def busy(self) -> None:
        self.idle_since = None

    def spider_idle(self) -> None:
        """Take new feeds if any; stop after ``VEILLE_WORKER_MAX_IDLE`` seconds without work."""
        requests = list(self.next_requests())
        for request in requests:
            self.crawler.engine.crawl(request)
        now = time.monotonic()
        if requests or self.idle_since is None:
            self.idle_since = now
        if self.max_idle and now - self.idle_since >= self.max_idle:
            logger.info("worker %s idle for %.0fs: stopping", self.worker_id, self.max_idle)
            return
        raise DontCloseSpider

    def beat(self) -> None:
        stats = self.crawler.stats
        record = {
            "worker": self.worker_id,
            "started_at": self.started_at,
            "seen_at": datetime.now(UTC).isoformat(),
            **{name: int(stats.get_value(key, 0)) for name, key in HEARTBEAT_COUNTERS.items()},
        }
        try:
            self.server.set(
                self.worker_key, json.dumps(record), ex=int(3 * self.heartbeat_interval) + 1
            )
        except redis.RedisError as exc:
            report_outage(
                self.crawler.stats, logger, "Redis", exc,
                "this worker is missing from `veille queue` until Redis is back",
            )  # fmt: skip

    def closed(self, reason: str) -> None:
        if self.heartbeat is not None and self.heartbeat.running:
            self.heartbeat.stop()
        try:
            self.server.delete(self.worker_key)
        except redis.RedisError as exc:
            logger.warning("worker heartbeat not removed: %s", exc)
        super().closed(reason)
