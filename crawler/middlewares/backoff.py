"""Retry with backoff: 429 and 5xx answers are retried later, not at once; ``Retry-After`` is
honoured. Replaces Scrapy's ``RetryMiddleware`` (same settings, same ``retry_times`` meta).

In:  every request about to be downloaded, every response and download error.
Out: the request, held back until its site may be asked again; for a response whose status is
     in ``RETRY_HTTP_CODES`` (or a retryable download error), a copy of the request to retry,
     at most ``RETRY_TIMES`` times, after which the response goes on as it is.

When the site says how long to wait (``Retry-After`` on a 429 or 503, in seconds or as an HTTP
date), nothing more is sent to that site (its download slot) until then. Otherwise the retry of
that one request waits ``VEILLE_RETRY_BACKOFF_BASE`` × 2^(attempt − 1) seconds, at most
``VEILLE_RETRY_BACKOFF_MAX``. A ``Retry-After`` longer than ``VEILLE_RETRY_AFTER_MAX`` is not
waited for: the request is given up and the crawl goes on.

Stats: ``veille/retry/throttled`` (429 or 503 answers with ``Retry-After``),
``veille/retry/backoff`` (retries scheduled with a backoff), ``veille/retry/retry_after_too_long``.
"""

from __future__ import annotations

import email.utils
import logging
import time
from typing import Self

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.http import Response
from scrapy.settings import BaseSettings
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import task

logger = logging.getLogger(__name__)

NOT_BEFORE = "veille_not_before"


def retry_after_seconds(value: bytes | str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or HTTP-date), or ``None``."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class BackoffRetryMiddleware(RetryMiddleware):
    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.backoff_base = settings.getfloat("VEILLE_RETRY_BACKOFF_BASE")
        self.backoff_max = settings.getfloat("VEILLE_RETRY_BACKOFF_MAX")
        self.retry_after_max = settings.getfloat("VEILLE_RETRY_AFTER_MAX")
        self.paused_until: dict[str, float] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        middleware = cls(crawler.settings)
        middleware.crawler = crawler
        return middleware

    def _slot(self, request: Request) -> str:
        assert self.crawler.engine is not None
        return self.crawler.engine.downloader.get_slot_key(request)

    def _count(self, key: str) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"veille/retry/{key}")

    async def process_request(self, request: Request) -> None:
        """Hold the request until its site may be asked again and its own backoff is over."""
        ready = max(
            self.paused_until.get(self._slot(request), 0.0), request.meta.get(NOT_BEFORE, 0.0)
        )
        wait = ready - time.monotonic()
        if wait > 0:
            from twisted.internet import reactor

            await maybe_deferred_to_future(task.deferLater(reactor, wait))

    def _backoff(self, request: Request) -> float:
        attempt = request.meta.get("retry_times", 0) + 1
        return min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))

    def process_response(self, request: Request, response: Response) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        asked = None
        if response.status in (429, 503):
            asked = retry_after_seconds(response.headers.get("Retry-After"))
        if asked is not None and asked > self.retry_after_max:
            self._count("retry_after_too_long")
            logger.warning(
                "%s asks to wait %.0f s (Retry-After), more than VEILLE_RETRY_AFTER_MAX=%.0f: "
                "given up for this crawl",
                request.url, asked, self.retry_after_max,
            )  # fmt: skip
            return response
        retry = self._retry(request, f"HTTP {response.status}")
        if retry is None:
            return response
        if asked is not None:
            self._count("throttled")
            slot = self._slot(request)
            self.paused_until[slot] = max(
                self.paused_until.get(slot, 0.0), time.monotonic() + asked
            )
            logger.info("%s: HTTP %s, waiting %.1f s as asked", request.url, response.status, asked)
        else:
            self._count("backoff")
            retry.meta[NOT_BEFORE] = time.monotonic() + self._backoff(request)
        return retry

    def process_exception(self, request: Request, exception: Exception) -> Request | None:
        retry = super().process_exception(request, exception)
        if isinstance(retry, Request):
            self._count("backoff")
            retry.meta[NOT_BEFORE] = time.monotonic() + self._backoff(request)
        return retry
