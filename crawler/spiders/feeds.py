"""Feeds spider: RSS 0.9x/1.0/2.0 and Atom sources → article pages → Article items.

Arguments: ``-a source=NAME`` (or ``all``). Each feed is parsed with feedparser. A feed that is
not well-formed is logged once with its URL and the parser's complaint, counted as
``veille/feeds/malformed`` and skipped whole (entries recovered from a broken document may be
truncated or wrong), and the crawl goes on with the other sources. Entries whose canonical URL
is already indexed are not fetched (incremental crawling).
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import feedparser
import scrapy
from scrapy.http import Response

from crawler.spiders.base import VeilleSpider
from veille.config import Source
from veille.urls import canonicalize

logger = logging.getLogger(__name__)

# feedparser complaints about labels, not content: the entries are sound and are read.
BENIGN_FEED_PROBLEMS = (
    feedparser.CharacterEncodingOverride,
    feedparser.NonXMLContentType,
)


def _entry_time(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC)


def _entry_link(entry: Any) -> str | None:
    link = entry.get("link")
    if not link:
        link = next((item.get("href") for item in entry.get("links", []) if item.get("href")), None)
    return link if link and link.startswith(("http://", "https://")) else None


class FeedSpider(VeilleSpider):
    name = "feeds"
    source_type = "feed"

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for source in self.sources:
            for url in source.url_strings:
                yield scrapy.Request(
                    url,
                    callback=self.parse_feed,
                    errback=self.feed_failed,
                    meta={"source": source},
                    dont_filter=True,
                )

    def feed_failed(self, failure: Any) -> None:
        request = failure.request
        self.count("feeds/failed")
        logger.error(
            "feed %s of source %s failed: %s",
            request.url,
            request.meta["source"].name,
            failure.getErrorMessage(),
        )

    async def parse_feed(self, response: Response) -> AsyncIterator[scrapy.Request]:
        source: Source = response.meta["source"]
        parsed = feedparser.parse(
            response.body,
            response_headers={
                "content-type": response.headers.get("Content-Type", b"").decode("latin-1")
            },
        )
        problem = parsed.get("bozo_exception")
        if parsed.bozo and not isinstance(problem, BENIGN_FEED_PROBLEMS):
            self.count("feeds/malformed")
            logger.error(
                "malformed feed %s (source %s) skipped: %s. Check the feed URL in sources.yaml "
                "or tell the publisher; the other sources are crawled as usual.",
                response.url,
                source.name,
                problem,
            )
            return
        self.count("feeds/read")
        entries: dict[str, Any] = {}
        for entry in parsed.entries:
            link = _entry_link(entry)
            if link is None:
                self.count("feeds/entry_without_link")
                continue
            entries.setdefault(canonicalize(link), entry)
        self.count("feeds/entries", len(parsed.entries))
        via = {"kind": "feed", "source": source.name, "feed": response.url}
        for url in await self.new_urls(entries):
            entry = entries[url]
            yield self.article_request(
                url,
                source,
                via,
                entry_published=_entry_time(entry),
                entry_summary=entry.get("summary"),
            )
