"""Feeds spider: RSS 0.9x/1.0/2.0 and Atom sources → article pages → Article items.

Arguments: ``-a source=NAME`` (or ``all``). Each feed is parsed with feedparser. A feed that is
not well-formed is logged once with its URL and the parser's complaint, counted as
``veille/feeds/malformed`` (``veille/feeds/not_a_feed`` for an empty, HTML or sitemap response)
and skipped whole (entries recovered from a broken document may be
truncated or wrong), and the crawl goes on with the other sources. Entries whose canonical URL
is already indexed are not fetched (incremental crawling).

Feeds are asked for conditionally (crawler/middlewares/conditional.py): a ``304 Not Modified``
is counted as ``veille/feeds/not_modified`` and not parsed. In a broad feed (a whole
newspaper's), entries whose title and summary already rule them out are not fetched
(``veille/dropped/off_topic_entry``; see :class:`veille.discovery.EntryFilter` and the settings
``VEILLE_PREFILTER_MIN_WORDS``, ``VEILLE_BROAD_FEED_SHARE``); an entry whose summary says
nothing is fetched and judged on its text.
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import feedparser
import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response

from crawler.middlewares.conditional import conditional_meta
from crawler.spiders.base import VeilleSpider
from veille.config import Source, cached_config
from veille.discovery import EntryFilter, entry_time
from veille.urls import canonicalize

logger = logging.getLogger(__name__)

# feedparser complaints about labels, not content: the entries are sound and are read.
BENIGN_FEED_PROBLEMS = (
    feedparser.CharacterEncodingOverride,
    feedparser.NonXMLContentType,
)


@dataclass(frozen=True)
class FeedDocument:
    """A parsed feed: its entries, or ``problem`` (``"<reason>: <detail>"``) when it is skipped."""

    entries: list[Any]
    problem: str | None = None


def read_feed(body: bytes, content_type: str = "") -> FeedDocument:
    """Parse a feed document from its bytes; never raises, whatever the bytes.

    Reasons: ``malformed`` (not well-formed XML, truncated, undecodable) and ``not_a_feed``
    (empty, HTML, a sitemap: no RSS or Atom document).
    """
    try:
        # A stream, not the bytes: feedparser opens a *bytes* argument as a local file name
        # if one exists, so a hostile server could make it read files from this machine.
        parsed = feedparser.parse(io.BytesIO(body), response_headers={"content-type": content_type})
    except Exception as exc:  # feedparser's own failures on hostile bytes must not stop a crawl
        return FeedDocument([], f"malformed: {exc.__class__.__name__}: {exc}")
    problem = parsed.get("bozo_exception")
    if parsed.bozo and not isinstance(problem, BENIGN_FEED_PROBLEMS):
        return FeedDocument([], f"malformed: {problem}")
    if not parsed.get("version"):
        return FeedDocument([], "not_a_feed: no RSS or Atom document in the response")
    return FeedDocument(list(parsed.entries))


def _entry_link(entry: Any) -> str | None:
    link = entry.get("link")
    if not link:
        link = next((item.get("href") for item in entry.get("links", []) if item.get("href")), None)
    return link if link and link.startswith(("http://", "https://")) else None


class FeedSpider(VeilleSpider):
    name = "feeds"
    source_type = "feed"

    def setup(self, crawler: Crawler) -> None:
        super().setup(crawler)
        # One entry filter per set of topics, not per feed read: building one compiles every
        # rule of its topics, which cost more than reading the feed.
        self.entry_filters: dict[tuple[str, ...], EntryFilter] = {}

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for source in self.sources:
            for url in source.url_strings:
                yield scrapy.Request(
                    url,
                    callback=self.parse_feed,
                    errback=self.feed_failed,
                    meta={"source": source, **conditional_meta()},
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
        if response.status == 304:
            self.count("feeds/not_modified")
            return
        content_type = response.headers.get("Content-Type", b"").decode("latin-1")
        document = read_feed(response.body, content_type)
        if document.problem:
            reason, _, detail = document.problem.partition(": ")
            self.count(f"feeds/{reason}")
            logger.error(
                "%s %s (source %s) skipped: %s. Check the feed URL in sources.yaml "
                "or tell the publisher; the other sources are crawled as usual.",
                "malformed feed" if reason == "malformed" else "not a feed:",
                response.url,
                source.name,
                detail,
            )
            return
        self.count("feeds/read")
        entries: dict[str, Any] = {}
        for entry in document.entries:
            link = _entry_link(entry)
            if link is None:
                self.count("feeds/entry_without_link")
                logger.info(
                    "feed %s: entry %r skipped: no http(s) link",
                    response.url,
                    str(entry.get("title", ""))[:120],
                )
                continue
            entries.setdefault(canonicalize(link), entry)
        self.count("feeds/entries", len(document.entries))
        settings = self.crawler.settings
        topics = cached_config(settings.get("VEILLE_CONFIG")).topics_for(source)
        key = tuple(topic.name for topic in topics)
        if key not in self.entry_filters:
            self.entry_filters[key] = EntryFilter.from_settings(topics, settings)
        keep = self.entry_filters[key].keep(
            [(entry.get("title"), entry.get("summary")) for entry in entries.values()]
        )
        ruled_out = [url for url, kept in zip(entries, keep, strict=True) if not kept]
        if ruled_out:
            self.count("dropped/off_topic_entry", len(ruled_out))
            logger.info(
                "broad feed %s: %d entries ruled out by their title and summary",
                response.url, len(ruled_out),
            )  # fmt: skip
        wanted = [url for url, kept in zip(entries, keep, strict=True) if kept]
        via = {"kind": "feed", "source": source.name, "feed": response.url}
        for url in await self.new_urls(wanted):
            entry = entries[url]
            yield self.article_request(
                url,
                source,
                via,
                entry_published=entry_time(entry),
                entry_summary=entry.get("summary"),
            )
