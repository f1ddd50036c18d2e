"""Page spider: one article page, fetched and extracted as a crawl would (``veille topics test``).

Arguments: ``-a url=URL``.
Out: one dict — ``url`` (after redirects), ``http_status``, ``title``, ``text`` and ``detail``
(why there is no article: an HTTP error, robots.txt, a refused address, not an article page).

The request goes through the crawl's own middlewares (robots.txt, the SSRF guard, the User-Agent,
timeouts) and the page through the crawl's extraction; nothing is indexed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import scrapy
from scrapy.http import Response

from crawler.extraction import ExtractionOptions, NotAnArticle, extract_article


class PageSpider(scrapy.Spider):
    name = "page"

    def __init__(self, url: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.url = url

    def result(self, **values: Any) -> dict[str, Any]:
        found = {"url": self.url, "http_status": None, "title": "", "text": "", "detail": ""}
        return {**found, **values}

    async def start(self) -> AsyncIterator[Any]:
        yield scrapy.Request(
            self.url, callback=self.parse_page, errback=self.unreachable, dont_filter=True
        )

    def unreachable(self, failure: Any) -> dict[str, Any]:
        message = failure.getErrorMessage() or failure.type.__name__
        if "robots.txt" in message.lower():
            message = "disallowed by robots.txt: the crawl will not read it"
        return self.result(detail=message)

    def parse_page(self, response: Response) -> dict[str, Any]:
        found = self.result(url=response.url, http_status=response.status)
        if response.status != 200:
            return {**found, "detail": f"HTTP {response.status}"}
        options = ExtractionOptions(min_words=self.settings.getint("VEILLE_MIN_WORDS"))
        extracted = extract_article(response.body, response.url, options)
        if isinstance(extracted, NotAnArticle):
            return {**found, "detail": f"not an article page: {extracted.reason}"}
        return {**found, "title": extracted.title, "text": extracted.text}
