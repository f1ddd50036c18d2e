"""Lease filter: the duplicate-request filter shared by the workers, in Redis, that forgets.

In:  each request a worker is about to queue; settings ``SCHEDULER_DUPEFILTER_KEY`` (key
     prefix), ``VEILLE_REDIS_LEASE`` (how long a queued URL stays leased: ``45s``, ``30m``, ``2h``).
Out: ``request_seen`` is True when the same request was queued, by any worker, less than a lease
     ago. Each fingerprint is its own key, set with ``SET NX EX``: one atomic Redis command
     decides which worker queues it, and Redis forgets it when the lease runs out.

Why a lease and not scrapy-redis's set, which remembers every request forever: a worker killed
mid-request takes the requests it had popped, and the articles it had not yet indexed, with it.
With a permanent set those URLs would be "seen" and never fetched again. Here, what is done is
recorded by Elasticsearch (the spiders skip URLs already indexed, and the index's ``create``
refuses a second copy); once the lease runs out, the next push of the feed finds the lost URLs
again. Counter: ``veille/leases/refused`` (requests another worker, or this one, already queued).
"""

from __future__ import annotations

import logging
from typing import Self

from scrapy import Spider
from scrapy.http import Request
from scrapy_redis.connection import get_redis_from_settings
from scrapy_redis.dupefilter import RFPDupeFilter

from veille.core.config import parse_duration

logger = logging.getLogger(__name__)


class LeaseDupeFilter(RFPDupeFilter):
    def __init__(self, server, key: str, lease_seconds: int, debug: bool = False) -> None:
        super().__init__(server, key, debug)
        self.lease_seconds = lease_seconds
        self.stats = None

    @classmethod
    def from_spider(cls, spider: Spider) -> Self:
        settings = spider.settings
        try:
            lease = parse_duration(settings.get("VEILLE_REDIS_LEASE"))
        except ValueError as exc:
            raise ValueError(f"setting VEILLE_REDIS_LEASE: {exc}") from exc
        dupefilter = cls(
            get_redis_from_settings(settings),
            key=settings.get("SCHEDULER_DUPEFILTER_KEY") % {"spider": spider.name},
            lease_seconds=int(lease.total_seconds()),
            debug=settings.getbool("DUPEFILTER_DEBUG"),
        )
        dupefilter.stats = spider.crawler.stats
        return dupefilter

    def request_seen(self, request: Request) -> bool:
        fingerprint = self.request_fingerprint(request)
        leased = self.server.set(
            f"{self.key}:{fingerprint}", request.url, nx=True, ex=self.lease_seconds
        )
        if leased:
            return False
        if self.stats is not None:
            self.stats.inc_value("veille/leases/refused")
        return True

    def clear(self) -> None:
        """Drop every lease (scrapy-redis calls this when a queue is flushed)."""
        for key in self.server.scan_iter(match=f"{self.key}:*", count=1000):
            self.server.delete(key)
