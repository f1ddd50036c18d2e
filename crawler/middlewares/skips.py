"""Downloads a crawl cannot use: refused with a reason, counted, and logged once.

In:  responses on their way from the downloader (before the redirect and decompression
     middlewares see them), download errors, and the size of each body as it arrives.
Out: :class:`Skipped` (an ``IgnoreRequest`` that says its ``reason``) for
     - ``redirect_loop``: a redirect back to a URL of its own redirect chain;
     - ``too_many_redirects``: a chain longer than ``REDIRECT_MAX_TIMES``;
     - ``bad_scheme``: a redirect to anything but http(s) (``javascript:``, ``data:``, ``file:``),
       which Scrapy's redirect middleware would otherwise fail on with a traceback;
     - ``too_large``: a body bigger than ``DOWNLOAD_MAXSIZE``, whether it said so
       (``Content-Length``) or not (chunked, endless: Scrapy cancels the download once that
       many bytes arrived), and a compressed body that decompresses past it
       (:class:`BoundedDecompressionMiddleware`: gzip, deflate, brotli, zstd bombs);
     each counted as ``veille/dropped/<reason>`` and logged once at WARNING with the URL.
     A listing (a feed, a sitemap, a search answer: request meta :data:`LISTING`) is reported
     by its spider's errback instead, which knows the source and keeps the problem for the run
     record; :func:`describe_failure` words any download failure for it. Every other response
     goes on unchanged.

Scrapy logs its own warning when it cancels or refuses a body over the limit; those records are
dropped (:class:`_ReportedHere`), so each refusal is logged once, here or by the errback.
"""

from __future__ import annotations

import logging
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    IgnoreRequest,
)
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import ConnectionRefusedError, DNSLookupError, TimeoutError
from w3lib.url import safe_url_string

logger = logging.getLogger(__name__)

REDIRECTS = {301, 302, 303, 307, 308}
# Request meta of a feed, a sitemap or a search answer: its errback reports a refusal.
LISTING = "veille_listing"
# Bytes of the body received so far, in the request's meta (set from the bytes_received signal).
RECEIVED = "veille_bytes_received"
# Scrapy's own log records about bodies over DOWNLOAD_MAXSIZE: refused and reported here instead.
SCRAPY_SIZE_LOGGERS = (
    "scrapy.core.downloader.handlers.http11",
    "scrapy.core.downloader.handlers._base_streaming",
    "scrapy.downloadermiddlewares.httpcompression",
)


class Skipped(IgnoreRequest):
    """A download refused by this module: ``reason`` is the stat name, ``detail`` says why."""

    def __init__(self, reason: str, url: str, detail: str) -> None:
        super().__init__(f"{reason}: {url} ({detail})")
        self.reason = reason
        self.url = url
        self.detail = detail


class _ReportedHere(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("download max size" in message or "exceeded DOWNLOAD_MAXSIZE" in message)


def refuse(crawler: Crawler, request: Request, reason: str, detail: str) -> Skipped:
    """Count a refusal and log it under the URL the crawl asked for (before any redirect),
    unless the request is a listing, whose errback reports it."""
    url = request.meta.get("redirect_urls", [request.url])[0]
    assert crawler.stats is not None
    crawler.stats.inc_value(f"veille/dropped/{reason}")
    if not request.meta.get(LISTING):
        logger.warning("skipped %s: %s (%s)", url, reason, detail)
    return Skipped(reason, url, detail)


def describe_failure(failure: Any) -> tuple[str, str]:
    """``(kind, detail)`` of a failed download, in an operator's words: kind ``malformed`` for a
    body refused as too large (a bomb), else ``failed`` (``connection refused``, ``HTTP 404``…)."""
    error = failure.value
    if isinstance(error, Skipped):
        kind = "malformed" if error.reason == "too_large" else "failed"
        return kind, f"{error.reason.replace('_', ' ')}: {error.detail}"
    if isinstance(error, HttpError):
        return "failed", f"HTTP {error.response.status}"
    if failure.check(DownloadConnectionRefusedError, ConnectionRefusedError):
        return "failed", "connection refused"
    if failure.check(CannotResolveHostError, DNSLookupError):
        return "failed", "host name not found"
    if failure.check(DownloadTimeoutError, TimeoutError):
        return "failed", "no answer in time"
    message = failure.getErrorMessage() or type(error).__name__
    if "robots.txt" in message.lower():
        return "failed", "disallowed by robots.txt"
    return "failed", message


class DownloadSkipsMiddleware:
    def __init__(self, crawler: Crawler, max_redirects: int, max_size: int) -> None:
        self.crawler = crawler
        self.max_redirects = max_redirects
        self.max_size = max_size

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        middleware = cls(
            crawler, settings.getint("REDIRECT_MAX_TIMES"), settings.getint("DOWNLOAD_MAXSIZE")
        )
        crawler.signals.connect(middleware.bytes_received, signal=signals.bytes_received)
        for name in SCRAPY_SIZE_LOGGERS:
            scrapy_logger = logging.getLogger(name)
            if not any(isinstance(f, _ReportedHere) for f in scrapy_logger.filters):
                scrapy_logger.addFilter(_ReportedHere())
        return middleware

    def bytes_received(self, data: bytes, request: Request) -> None:
        request.meta[RECEIVED] = request.meta.get(RECEIVED, 0) + len(data)

    def process_response(self, request: Request, response: Response) -> Response:
        location = response.headers.get("Location")
        if response.status not in REDIRECTS or not location or request.meta.get("dont_redirect"):
            return response
        target = safe_url_string(urljoin(request.url, location.decode("latin-1")))
        scheme = urlsplit(target).scheme.lower()
        if scheme not in ("http", "https"):
            raise refuse(
                self.crawler, request, "bad_scheme",
                f"{request.url} redirects to a {scheme or 'scheme-less'} URL: {target[:100]}",
            )  # fmt: skip
        chain = [*request.meta.get("redirect_urls", []), request.url]
        if target in chain:
            raise refuse(
                self.crawler, request, "redirect_loop", f"{request.url} redirects back to {target}"
            )
        if len(chain) > self.max_redirects:
            raise refuse(
                self.crawler, request, "too_many_redirects", f"more than {self.max_redirects}"
            )
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        if not isinstance(exception, DownloadCancelledError):
            return
        limit = request.meta.get("download_maxsize", self.max_size)
        # Scrapy cancels a body that said it was too large with a message naming the max size,
        # and one that turned out too large as it arrived with no message at all.
        if "max size" in str(exception) or (limit and request.meta.get(RECEIVED, 0) > limit):
            raise refuse(self.crawler, request, "too_large", f"larger than the {limit}-byte limit")


class BoundedDecompressionMiddleware(HttpCompressionMiddleware):
    """Scrapy's decompression, with a body that decompresses past ``DOWNLOAD_MAXSIZE`` refused
    as ``too_large`` and counted (Scrapy's own middleware ignores it uncounted)."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        middleware = super().from_crawler(crawler)
        middleware.crawler = crawler
        return middleware

    def process_response(self, request: Request, response: Response) -> Any:  # type: ignore[override]
        try:
            return super().process_response(request, response)
        except IgnoreRequest:
            limit = request.meta.get("download_maxsize", self._max_size)
            raise refuse(
                self.crawler,
                request,
                "too_large",
                f"{len(response.body)} compressed bytes decompress past the {limit}-byte limit",
            ) from None
