"""Source check spider: is each configured source reachable, readable, and does it list entries?

Arguments: ``-a source=NAME[,NAME…]`` (or ``all``, every source, enabled or not).
Out: one dict per source URL — ``source``, ``type``, ``url``, ``http_status``, ``reachable``,
``parsed``, ``entries`` and ``detail`` — for ``veille sources --check``
(veille/ops/source_check.py).

It fetches what a crawl would fetch first, through the same middlewares (robots.txt, the SSRF
guard, the User-Agent, timeouts): a feed or sitemap URL itself (not conditionally: the point is
to read it), and for a search endpoint its first query in the source's first language. Nothing
beyond that first answer is fetched, and nothing is indexed. Answers are parsed in extraction
workers within the parse limits, as a crawl parses them (``crawler/extraction_pool.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import scrapy
from scrapy.http import Response
from scrapy.utils.gz import gunzip, gzip_magic_number

from crawler.discovery import (
    DiscoveryError,
    engine_of,
    parse_results,
    parse_sitemap,
    search_queries,
    search_url,
)
from crawler.extraction import ExtractionOptions
from crawler.extraction_pool import ExtractionPool
from crawler.feeds import read_feed
from crawler.limits import ParseRefused
from crawler.middlewares.skips import LISTING, describe_failure
from crawler.spiders.search import source_languages
from veille.core.config import Source, cached_config


class SourceCheckSpider(scrapy.Spider):
    name = "source_check"

    def __init__(self, source: str = "all", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source_arg = source
        self.parser: ExtractionPool | None = None

    def closed(self, reason: str) -> None:
        if self.parser is not None:
            self.parser.close()

    def result(self, source: Source, url: str, **values: Any) -> dict[str, Any]:
        return {
            "source": source.name, "type": source.type, "url": url, "http_status": None,
            "reachable": False, "parsed": False, "entries": 0, "detail": "", **values,
        }  # fmt: skip

    async def start(self) -> AsyncIterator[Any]:
        self.parser = ExtractionPool.from_settings(self.settings, ExtractionOptions())
        config = cached_config(self.settings.get("VEILLE_CONFIG"))
        self.max_size = self.settings.getint("DOWNLOAD_MAXSIZE")
        names = None if self.source_arg == "all" else self.source_arg.split(",")
        for source in config.sources:
            if names is not None and source.name not in names:
                continue
            for url in source.url_strings:
                if source.type != "search":
                    yield self.check_request(url, source)
                    continue
                if engine_of(url) is None:
                    detail = "not a GDELT, Google News or Bing News search endpoint"
                    yield self.result(source, url, detail=detail + " (README: search sources)")
                    continue
                topics = config.topics_for(source)
                language = source_languages(source, topics)[0]
                queries = search_queries(topics, language)
                if not queries:
                    detail = f"its topics have no {language} rule that is a name or phrase alone"
                    yield self.result(source, url, detail=detail + " to search for")
                    continue
                target = search_url(url, queries[0], language, source.country, timedelta(days=1))
                yield self.check_request(target, source, configured=url)

    def check_request(self, url: str, source: Source, configured: str = "") -> scrapy.Request:
        return scrapy.Request(
            url,
            callback=self.parse_source,
            errback=self.unreachable,
            meta={
                "source": source,
                "configured": configured or url,
                "handle_httpstatus_all": True,
                LISTING: True,
            },
            dont_filter=True,
        )

    def unreachable(self, failure: Any) -> dict[str, Any]:
        request = failure.request
        message = describe_failure(failure)[1]
        if "robots.txt" in message.lower():
            message = "disallowed by robots.txt: the crawl will not read it"
        return self.result(request.meta["source"], request.meta["configured"], detail=message)

    async def parse_source(self, response: Response) -> dict[str, Any]:
        source: Source = response.meta["source"]
        found = self.result(
            source, response.meta["configured"], http_status=response.status, reachable=True
        )
        if response.status != 200:
            return {**found, "detail": f"HTTP {response.status}"}
        assert self.parser is not None
        content_type = response.headers.get("Content-Type", b"").decode("latin-1")
        body, size = response.body, len(response.body)
        try:
            if source.type == "feed":
                document = await self.parser.parse(read_feed, body, content_type, size=size)
                if document.problem:
                    return {**found, "detail": document.problem}
                return {**found, "parsed": True, "entries": len(document.entries)}
            if source.type == "sitemap":
                if gzip_magic_number(response):
                    body = gunzip(body, max_size=self.max_size)
                sitemap = await self.parser.parse(parse_sitemap, body, size=len(body))
                kind = "sitemap index" if sitemap.is_index else "urlset"
                return {**found, "parsed": True, "entries": len(sitemap.entries), "detail": kind}
            engine = engine_of(response.meta["configured"]) or ""
            results = await self.parser.parse(parse_results, engine, body, content_type, size=size)
        except ParseRefused as exc:
            return {**found, "detail": f"malformed: {exc}"}
        except (DiscoveryError, OSError, ValueError) as exc:
            return {**found, "detail": str(exc)}
        return {**found, "parsed": True, "entries": len(results)}
