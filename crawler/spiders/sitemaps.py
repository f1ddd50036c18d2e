"""Sitemaps spider: news sitemaps and sitemap indexes → recent article pages → Article items.

Arguments: ``-a source=NAME`` (or ``all``) for sources of type ``sitemap``. Each URL is a
sitemap index or a urlset, plain or gzip-compressed; Google News extensions
(``news:publication_date``, ``news:title``, ``news:language``) are read.

Only what is recent is fetched: a sub-sitemap whose ``lastmod`` is older than
``VEILLE_SITEMAP_MAX_AGE`` (default ``2d``) is not requested, nor is an entry whose publication
date (else ``lastmod``) is older; an entry without any date is skipped too
(``veille/sitemaps/undated``), because an undated sitemap lists a whole site's history. Nor is
an entry dated before the last finished crawl that read the same sitemap (less
``VEILLE_SITEMAP_OVERLAP``, default ``1h``): it was judged then, and a whole newspaper's news
sitemap would otherwise have its off-topic pages fetched again at every crawl. When each
sitemap was last read is kept under ``<VEILLE_DATA_DIR>/sitemaps-read/``.
Indexes are followed at most ``VEILLE_SITEMAP_MAX_DEPTH`` levels deep. Sitemaps are asked for
conditionally (a ``304`` is ``veille/sitemaps/not_modified``); already-indexed pages are not
fetched again. Each sitemap is parsed in an extraction worker, within the parse limits
(``crawler/limits.py``); one that is not a sitemap, not well-formed, a decompression bomb or past
those limits is ``veille/sitemaps/malformed``, one that cannot be downloaded
``veille/sitemaps/failed``, each logged once at WARNING and kept for the run record. A news
title alone is too little to judge an article by: every recent entry is fetched and judged on
its text.
Discovered articles carry ``discovered_via`` ``{kind: sitemap, source, feed: <sitemap URL>}``.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import scrapy
from scrapy.http import Response
from scrapy.utils.gz import gunzip, gzip_magic_number

from crawler.discovery import DiscoveryError, SitemapEntry, parse_sitemap
from crawler.limits import ParseRefused
from crawler.middlewares.conditional import UrlStateStore, conditional_meta
from crawler.spiders.base import VeilleSpider
from veille.core.config import Environment, Source, parse_duration
from veille.core.urls import canonicalize

logger = logging.getLogger(__name__)


class SitemapSpider(VeilleSpider):
    name = source_type = "sitemap"
    listing_family = "sitemaps"

    async def start(self) -> AsyncIterator[scrapy.Request]:
        settings = self.crawler.settings
        self.cutoff = datetime.now(UTC) - parse_duration(settings.get("VEILLE_SITEMAP_MAX_AGE"))
        self.max_depth = settings.getint("VEILLE_SITEMAP_MAX_DEPTH")
        self.overlap = parse_duration(settings.get("VEILLE_SITEMAP_OVERLAP"))
        self.max_size = settings.getint("DOWNLOAD_MAXSIZE")
        self.last_read = UrlStateStore(Environment.from_env().data_dir / "sitemaps-read")
        self.read_now: dict[str, str] = {}
        self.started_at = datetime.now(UTC)
        for source in self.sources:
            for url in source.url_strings:
                yield self.sitemap_request(url, source, depth=0)

    def sitemap_request(self, url: str, source: Source, depth: int) -> scrapy.Request:
        return self.listing_request(
            url, source, self.parse_sitemap, first=depth == 0, depth=depth, **conditional_meta()
        )

    def closed(self, reason: str) -> None:
        if reason == "finished":
            for url, read_at in self.read_now.items():
                self.last_read.put(url, {"read_at": read_at})
        super().closed(reason)

    def _body(self, response: Response) -> bytes:
        if gzip_magic_number(response):
            return gunzip(response.body, max_size=self.max_size)
        return response.body

    def cutoff_for(self, sitemap_url: str) -> datetime:
        """Entries dated before this are not fetched from this sitemap."""
        read_at = self.last_read.get(sitemap_url).get("read_at")
        if not read_at:
            return self.cutoff
        return max(self.cutoff, datetime.fromisoformat(read_at) - self.overlap)

    async def parse_sitemap(self, response: Response) -> AsyncIterator[scrapy.Request]:
        source: Source = response.meta["source"]
        if response.status == 304:
            self.count("sitemaps/not_modified")
            return
        try:
            body = self._body(response)
            sitemap = await self.parse_listing(parse_sitemap, body, size=len(body))
        except (DiscoveryError, OSError, ValueError, zlib.error, ParseRefused) as exc:
            self.count("sitemaps/malformed")
            self.record_problem(response.url, source, "malformed", str(exc))
            logger.warning(
                "sitemap %s (source %s) skipped: %s. Check the URL in sources.yaml.",
                response.url, source.name, exc,
            )  # fmt: skip
            return
        self.count("sitemaps/read")
        self.note_entry_times(entry.date for entry in sitemap.entries if not sitemap.is_index)
        if sitemap.is_index:
            for request in self.follow_index(sitemap.entries, response, source):
                yield request
            return
        async for request in self.article_requests(sitemap.entries, response, source):
            yield request

    def follow_index(
        self, children: list[SitemapEntry], response: Response, source: Source
    ) -> list[scrapy.Request]:
        depth = response.meta["depth"] + 1
        if depth > self.max_depth:
            self.count("sitemaps/too_deep")
            logger.warning("sitemap index %s nested deeper than %d: not followed",
                           response.url, self.max_depth)  # fmt: skip
            return []
        # An undated child may hold today's news: only a dated, old one is left alone.
        old = [c for c in children if c.lastmod is not None and c.lastmod < self.cutoff]
        if old:
            self.count("sitemaps/old_skipped", len(old))
        return [self.sitemap_request(c.url, source, depth) for c in children if c not in old]

    async def article_requests(
        self, entries: list[SitemapEntry], response: Response, source: Source
    ) -> AsyncIterator[scrapy.Request]:
        undated = [e for e in entries if e.date is None]
        if undated:
            self.count("sitemaps/undated", len(undated))
        dated = [e for e in entries if e.date is not None]
        cutoff = self.cutoff_for(response.url)
        recent = [e for e in dated if e.date is not None and e.date >= cutoff]
        self.read_now[response.url] = self.started_at.isoformat()
        self.count("sitemaps/entries", len(entries))
        if len(dated) > len(recent):
            self.count("sitemaps/old_entries", len(dated) - len(recent))
        chosen = {canonicalize(e.url): e for e in recent}
        via = {"kind": "sitemap", "source": source.name, "feed": response.url}
        for url in await self.new_urls(chosen):
            yield self.article_request(url, source, via, entry_published=chosen[url].date)
