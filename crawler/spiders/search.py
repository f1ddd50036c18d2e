"""Search spider: news-search endpoints asked for the topics' terms → publisher pages → Articles.

Arguments: ``-a source=NAME`` (or ``all``) for sources of type ``search``. Each URL of a source
is a search endpoint: GDELT DOC 2.0 (``/api/v2/doc/doc``, ArtList JSON), Google News RSS search
(``/rss/search``) or Bing News RSS (``/news/search``); see :mod:`crawler.discovery`.

For each endpoint and language (the source's ``language``, else every language of its topics)
the queries come from the topic files (:func:`crawler.discovery.search_queries`), so a name or
phrase rule added to a topic is searched by every search source. The time span asked for is
``VEILLE_SEARCH_TIMESPAN`` (default ``1d``) unless the endpoint URL sets its own; at most
``VEILLE_SEARCH_TERMS_PER_QUERY`` phrases go in one query.

Results are resolved to the publisher's URL (Bing click links and older Google News links
carry it; other wrapper links are fetched and their redirect followed), already-indexed pages
are skipped, and each page found is extracted and judged by the same pipeline as feed articles.
Articles carry ``discovered_via`` ``{kind: search, source, query, feed: <search URL>}``.
Each answer is parsed in an extraction worker, within the parse limits (``crawler/limits.py``);
one that cannot be read, or goes past those limits, is ``veille/search/unreadable``, one that
cannot be downloaded ``veille/search/failed``, each logged once at WARNING and kept for the run
record. Stats: ``veille/search/read``, ``veille/search/results``, ``veille/search/failed``,
``veille/search/unreadable``, ``veille/search/wrappers_followed``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import scrapy
from scrapy.http import Response

from crawler.discovery import (
    DiscoveryError,
    engine_of,
    parse_results,
    search_queries,
    search_url,
)
from crawler.limits import ParseRefused
from crawler.spiders.base import VeilleSpider
from veille.core.config import ConfigError, Source, cached_config, parse_duration
from veille.core.urls import canonicalize

logger = logging.getLogger(__name__)


def source_languages(source: Source, topics: Any) -> list[str]:
    """The languages a search source searches in: its own, else every language of its topics."""
    if source.language:
        return [source.language]
    return sorted({language for topic in topics for language in topic.languages})


class SearchSpider(VeilleSpider):
    name = source_type = "search"
    listing_family = "search"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._followed: set[str] = set()

    async def start(self) -> AsyncIterator[scrapy.Request]:
        settings = self.crawler.settings
        config = cached_config(settings.get("VEILLE_CONFIG"))
        timespan = parse_duration(settings.get("VEILLE_SEARCH_TIMESPAN"))
        per_query = settings.getint("VEILLE_SEARCH_TERMS_PER_QUERY")
        for source in self.sources:
            topics = config.topics_for(source)
            for endpoint in source.url_strings:
                engine = engine_of(endpoint)
                if engine is None:
                    self.count("search/unknown_endpoint")
                    logger.error("%s", ConfigError(
                        config.directory / "sources.yaml",
                        f"sources.{config.sources.index(source)}.urls",
                        f"{endpoint} is not a search endpoint I know",
                        "use a GDELT …/api/v2/doc/doc, Google News …/rss/search or Bing News "
                        "…/news/search URL",
                    ))  # fmt: skip
                    continue
                for language in source_languages(source, topics):
                    for query in search_queries(topics, language, per_query):
                        yield self.listing_request(
                            search_url(endpoint, query, language, source.country, timespan),
                            source,
                            self.parse_results,
                            first=True,
                            engine=engine,
                            query=query,
                            language=language,
                            # DOWNLOAD_SLOTS sets these endpoints' pace, not AutoThrottle.
                            autothrottle_dont_adjust_delay=True,
                        )

    async def parse_results(self, response: Response) -> AsyncIterator[scrapy.Request]:
        source: Source = response.meta["source"]
        content_type = response.headers.get("Content-Type", b"").decode("latin-1")
        try:
            found = await self.parse_listing(
                parse_results, response.meta["engine"], response.body, content_type,
                size=len(response.body),
            )  # fmt: skip
        except (DiscoveryError, ParseRefused) as exc:
            self.count("search/unreadable")
            self.record_problem(response.url, source, "malformed", str(exc))
            logger.warning("search %s (source %s) unreadable: %s", response.url, source.name, exc)
            return
        self.count("search/read")
        self.count("search/results", len(found))
        self.note_entry_times(result.published_at for result in found)
        via = {
            "kind": "search",
            "source": source.name,
            "query": response.meta["query"],
            "feed": response.url,
        }
        published = {canonicalize(r.url): r.published_at for r in found}
        # A topic's terms may take several queries, whose answers overlap: each result is
        # followed once per crawl, under the first query that found it.
        fresh = [r for r in found if r.url not in self._followed]
        self._followed.update(r.url for r in fresh)
        wrappers = [r.url for r in fresh if not r.resolved]
        if wrappers:
            self.count("search/wrappers_followed", len(wrappers))
        for url in await self.new_urls([*(r.url for r in fresh if r.resolved), *wrappers]):
            yield self.article_request(url, source, via, entry_published=published.get(url))
