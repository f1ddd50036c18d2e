"""Feeds spider: RSS 0.9x/1.0/2.0 and Atom sources → article pages → Article items.

Arguments: ``-a source=NAME`` (or ``all``). Each feed is parsed with feedparser in an extraction
worker, within the parse limits (:func:`crawler.feeds.read_feed`, ``crawler/limits.py``). A feed
that is not well-formed, is an entity bomb, or goes past those limits is logged once at WARNING
with its URL and the reason, counted as ``veille/feeds/malformed`` (``veille/feeds/not_a_feed``
for an empty, HTML or sitemap response) and skipped whole (entries recovered from a broken
document may be truncated or wrong), and the crawl goes on with the other sources. A feed that
cannot be downloaded (refused connection, HTTP error, time-out) is ``veille/feeds/failed``; one
whose body is too large, compressed or not, is ``malformed``. Each of these is kept for the run
record (``veille/problems``). Entries whose canonical URL is already indexed are not fetched
(incremental crawling).

Feeds are asked for conditionally (crawler/middlewares/conditional.py): a ``304 Not Modified``
is counted as ``veille/feeds/not_modified`` and not parsed. In a broad feed (a whole
newspaper's), entries whose title and summary already rule them out are not fetched
(``veille/dropped/off_topic_entry``; see :class:`crawler.discovery.EntryFilter` and the settings
``VEILLE_PREFILTER_MIN_WORDS``, ``VEILLE_BROAD_FEED_SHARE``); an entry whose summary says
nothing is fetched and judged on its text.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response

from crawler.discovery import EntryFilter
from crawler.feeds import FeedDocument, FeedEntry, read_feed
from crawler.limits import ParseRefused
from crawler.middlewares.conditional import conditional_meta
from crawler.spiders.base import VeilleSpider
from veille.core.config import Source
from veille.core.urls import canonicalize

logger = logging.getLogger(__name__)


class FeedSpider(VeilleSpider):
    name = source_type = "feed"
    listing_family = "feeds"

    def setup(self, crawler: Crawler) -> None:
        super().setup(crawler)
        # One entry filter per set of topics, not per feed read: building one compiles every
        # rule of its topics, which cost more than reading the feed.
        self.entry_filters: dict[tuple[str, ...], EntryFilter] = {}

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for source in self.sources:
            for url in source.url_strings:
                yield self.listing_request(
                    url, source, self.parse_feed, first=True, **conditional_meta()
                )

    async def read(self, response: Response) -> FeedDocument:
        """The feed's entries, parsed in a worker; a parse past its limits is ``malformed``."""
        content_type = response.headers.get("Content-Type", b"").decode("latin-1")
        try:
            return await self.parse_listing(
                read_feed, response.body, content_type, size=len(response.body)
            )
        except ParseRefused as refused:
            return FeedDocument([], f"malformed: {refused}")

    async def parse_feed(self, response: Response) -> AsyncIterator[scrapy.Request]:
        source: Source = response.meta["source"]
        if response.status == 304:
            self.count("feeds/not_modified")
            return
        document = await self.read(response)
        if document.problem:
            reason, _, detail = document.problem.partition(": ")
            self.count(f"feeds/{reason}")
            self.record_problem(response.url, source, reason, detail)
            logger.warning(
                "%s %s (source %s) skipped: %s. Check the feed URL in sources.yaml "
                "or tell the publisher; the other sources are crawled as usual.",
                "malformed feed" if reason == "malformed" else "not a feed:",
                response.url,
                source.name,
                detail,
            )
            return
        self.count("feeds/read")
        self.note_entry_times(entry.published for entry in document.entries)
        entries: dict[str, FeedEntry] = {}
        for entry in document.entries:
            if entry.link is None:
                self.count("feeds/entry_without_link")
                logger.info(
                    "feed %s: entry %r skipped: no http(s) link",
                    response.url,
                    str(entry.title or "")[:120],
                )
                continue
            entries.setdefault(canonicalize(entry.link), entry)
        self.count("feeds/entries", len(document.entries))
        topics = self.config.topics_for(source)
        key = tuple(topic.name for topic in topics)
        if key not in self.entry_filters:
            self.entry_filters[key] = EntryFilter.from_settings(topics, self.crawler.settings)
        keep = self.entry_filters[key].keep(
            [(entry.title, entry.summary) for entry in entries.values()]
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
                entry_published=entry.published,
                entry_summary=entry.summary,
            )
