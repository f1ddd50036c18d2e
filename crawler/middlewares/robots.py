"""robots.txt, obeyed for every request — also those that wait while a site's robots.txt loads.

In:  every request (after the SSRF guard), as Scrapy's ``RobotsTxtMiddleware`` sees them.
Out: the same decisions as Scrapy's middleware (``IgnoreRequest("Forbidden by robots.txt")``,
     counted as ``robotstxt/forbidden``), with one fix, and a robots.txt that cannot be
     downloaded logged at INFO without a traceback (Scrapy logs an ERROR with one): the site is
     then crawled as if it had none, and a site that is down is reported once, by the feed or
     page that could not be fetched.

Scrapy 2.19 with the asyncio reactor lets every request but the first that waits for a site's
robots.txt through unchecked: the waiters all await the same Deferred through ``asFuture``, whose
callback hands ``None`` down the chain, so the second waiter receives ``None`` ("no robots.txt")
and is allowed (scrapy/scrapy#6802 replaced the relay that passed the parser on). A news sitemap
or feed lists many pages of one new site at once, so this is the common case for us. Here each
waiter gets its own Deferred, fired with the parser, and the chain keeps the parser.
"""

from __future__ import annotations

import logging
from typing import Self

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.robotstxt import RobotParser
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred


class _DownloadErrorAtInfo(logging.Filter):
    """Scrapy's "Error downloading <robots.txt>" record, made an INFO line without traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and str(record.msg).startswith("Error downloading"):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info = record.exc_text = None
        return True


class StrictRobotsTxtMiddleware(RobotsTxtMiddleware):
    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        scrapy_logger = logging.getLogger(RobotsTxtMiddleware.__module__)
        if not any(isinstance(f, _DownloadErrorAtInfo) for f in scrapy_logger.filters):
            scrapy_logger.addFilter(_DownloadErrorAtInfo())
        return super().from_crawler(crawler)

    async def robot_parser(self, request: Request) -> RobotParser | None:
        pending = self._parsers.get(urlparse_cached(request).netloc)
        if not isinstance(pending, Deferred):
            return await super().robot_parser(request)
        waiter: Deferred[RobotParser | None] = Deferred()

        def relay(parser: RobotParser | None) -> RobotParser | None:
            waiter.callback(parser)
            return parser

        pending.addCallback(relay)
        return await maybe_deferred_to_future(waiter)
