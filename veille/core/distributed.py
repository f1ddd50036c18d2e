"""Distributed mode, the producer side: feed URLs pushed into Redis for the crawler workers.

In:  ``VEILLE_REDIS_URL`` (``redis://HOST:PORT/DB``, ``rediss://`` for TLS, ``unix://``), the
     index prefix, and the sources to crawl.
Out: for each feed URL of a source, the JSON message ``{"source": NAME, "url": URL}`` added to
     the set ``<prefix>:feeds:start_urls``, which ``veille worker`` processes read (see
     :mod:`crawler.spiders.distributed`); :func:`queue_status` for monitoring.

Redis keys, all under the index prefix so that two deployments can share one Redis:

- ``<prefix>:feeds:start_urls`` (set): feed URLs waiting for a worker. A set, so a feed pushed
  twice before a worker takes it is fetched once.
- ``<prefix>:feeds:requests`` (sorted set): scrapy-redis's shared request queue; the article
  pages found in the feeds, fetched by whichever worker is free.
- ``<prefix>:feeds:lease:<fingerprint>`` (string with a time to live): an article URL queued
  recently, so that a second worker finding it in another feed does not queue it again (see
  :mod:`crawler.leases`).
- ``<prefix>:workers:<host>-<pid>`` (string with a time to live): each live worker's heartbeat
  and counters.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import redis

from veille.core.config import ConfigError, Environment, Source

logger = logging.getLogger(__name__)

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True)
class RedisKeys:
    """The Redis key names of one deployment (one index prefix)."""

    prefix: str

    @property
    def start_urls(self) -> str:
        return f"{self.prefix}:feeds:start_urls"

    @property
    def requests(self) -> str:
        return f"{self.prefix}:feeds:requests"

    @property
    def leases(self) -> str:
        return f"{self.prefix}:feeds:lease"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"


def redis_url() -> str | None:
    """``VEILLE_REDIS_URL``, checked; None in single-machine mode (the variable unset or empty)."""
    url = os.environ.get("VEILLE_REDIS_URL", "").strip()
    if not url:
        return None
    if not url.startswith(REDIS_SCHEMES):
        raise ConfigError(
            "(environment)",
            "VEILLE_REDIS_URL",
            f"{url!r} is not a Redis URL",
            "write redis://HOST:6379/0 (rediss:// for TLS), or unset it for single-machine mode",
        )
    return url


def connect(url: str) -> redis.Redis:
    """A Redis client for ``url`` (short timeouts: callers report an unreachable Redis)."""
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)


def feed_message(source: Source, url: str) -> str:
    """The start-URL message for one feed URL (sorted keys: the same feed, the same message)."""
    return json.dumps({"source": source.name, "url": url}, sort_keys=True)


def push_sources(client: redis.Redis, keys: RedisKeys, sources: list[Source]) -> int:
    """Queue every feed URL of ``sources`` for the workers; returns how many were not queued yet."""
    messages = [feed_message(source, url) for source in sources for url in source.url_strings]
    if not messages:
        return 0
    return int(client.sadd(keys.start_urls, *messages))


def push_source_job(source: Source, env: Environment, url: str) -> None:
    """The scheduler's crawl job in distributed mode: queue the source's feeds, log the outcome.

    An unreachable Redis is logged and the job ends; the next scheduled run pushes again.
    """
    if source.type != "feed":
        logger.error("crawl %s not queued: workers read feed sources only", source.name)
        return
    client = connect(url)
    try:
        added = push_sources(client, RedisKeys(env.index_prefix), [source])
    except redis.RedisError as exc:
        logger.warning("crawl %s not queued: Redis at %s unreachable (%s); the next tick of "
                       "its schedule pushes it again", source.name, url, exc)  # fmt: skip
        return
    finally:
        client.close()
    logger.info(
        "crawl %s queued for the workers: %d feed URLs (%d were still waiting)",
        source.name, len(source.url_strings), len(source.url_strings) - added,
    )  # fmt: skip


def queue_status(client: redis.Redis, keys: RedisKeys) -> dict[str, Any]:
    """Feeds waiting, article requests queued, and the live workers with their counters."""
    workers = []
    for key in client.scan_iter(match=f"{keys.workers}:*", count=500):
        raw = client.get(key)
        if raw:
            workers.append(json.loads(raw))
    return {
        "feeds_waiting": int(client.scard(keys.start_urls)),
        "requests_queued": int(client.zcard(keys.requests)),
        "workers": sorted(workers, key=lambda w: w["worker"]),
    }
