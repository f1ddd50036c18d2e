"""Downloads a crawl cannot use: skipped with a reason, counted, and logged once.

In:  responses on their way from the downloader (before the redirect middleware sees them) and
     download errors.
Out: ``IgnoreRequest`` for
     - ``redirect_loop``: a redirect back to a URL of its own redirect chain;
     - ``too_many_redirects``: a chain longer than ``REDIRECT_MAX_TIMES``;
     - ``too_large``: a page bigger than ``DOWNLOAD_MAXSIZE`` (Scrapy cancels the download);
     each counted as ``veille/dropped/<reason>`` and logged once with the URL (requests with an
     errback, such as feeds, are reported by it instead). Every other response goes on unchanged.
"""

from __future__ import annotations

import logging
from typing import Self
from urllib.parse import urljoin

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest
from scrapy.http import Response
from w3lib.url import safe_url_string

logger = logging.getLogger(__name__)

REDIRECTS = {301, 302, 303, 307, 308}


class DownloadSkips:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.max_redirects = crawler.settings.getint("REDIRECT_MAX_TIMES", 20)
        self.max_size = crawler.settings.getint("DOWNLOAD_MAXSIZE")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def skip(self, request: Request, reason: str, detail: str) -> IgnoreRequest:
        """Count and log a skip under the URL the crawl asked for (before any redirect)."""
        url = request.meta.get("redirect_urls", [request.url])[0]
        self.crawler.stats.inc_value(f"veille/dropped/{reason}")
        if request.errback is None:
            logger.info("skipped %s: %s (%s)", url, reason, detail)
        return IgnoreRequest(f"{reason}: {url} ({detail})")

    def process_response(self, request: Request, response: Response) -> Response:
        location = response.headers.get("Location")
        if response.status not in REDIRECTS or not location or request.meta.get("dont_redirect"):
            return response
        target = safe_url_string(urljoin(request.url, location.decode("latin-1")))
        chain = [*request.meta.get("redirect_urls", []), request.url]
        if target in chain:
            raise self.skip(request, "redirect_loop", f"{request.url} redirects back to {target}")
        if len(chain) > self.max_redirects:
            raise self.skip(request, "too_many_redirects", f"more than {self.max_redirects}")
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        if isinstance(exception, DownloadCancelledError) and "max size" in str(exception):
            limit = request.meta.get("download_maxsize", self.max_size)
            raise self.skip(request, "too_large", f"larger than the {limit}-byte limit")
