"""What every Veille spider shares: choosing its sources, skipping what is already indexed,
parsing listings in the extraction workers, and turning an article page into an Article item.

Spider argument ``source``: a source name, or ``all`` for every enabled source of the spider's
type. Setting ``VEILLE_CONFIG``: the config folder.

What a run record needs from the crawl goes into its stats: ``veille/problems``, one entry per
feed, sitemap or search answer that could not be used (``url``, ``source``, ``kind``:
``malformed``, ``not_a_feed`` or ``failed``, ``detail``); ``veille/entry_times``, the newest
publication times listed (at most :data:`ENTRY_TIMES_KEPT`), from which the source's usual gap
between new entries is learned (``veille/ops/health.py``); ``veille/parse/max_cpu_s`` and
``veille/parse/max_memory_mb``, the most a listing parse took in its worker.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from typing import Any, Self, TypeVar

import scrapy
from elastic_transport import TransportError
from elasticsearch import ApiError
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError

from crawler.extraction import ExtractionOptions, NotAnArticle
from crawler.extraction_pool import ExtractionPool, Usage
from crawler.limits import ParseRefused
from crawler.middlewares.skips import LISTING, describe_failure
from crawler.resume import use_job_dir
from veille.core.article import Article, SourceRef
from veille.core.config import Source, cached_config
from veille.core.crawl_resources import crawl_elasticsearch
from veille.core.outages import report_crawl_es_outage
from veille.core.threads import in_thread
from veille.core.urls import canonicalize, domain_of

logger = logging.getLogger(__name__)
T = TypeVar("T")

ENTRY_TIMES_KEPT = 100
# Pages refused at the parse limits or that killed their worker: a publisher's doing, or ours,
# worth a WARNING; the other reasons (too short, no text) are routine.
REFUSED_PAGES = ("too_large", "too_slow", "extraction_crashed")


class VeilleSpider(scrapy.Spider):
    """Base spider: ``source_type`` names the kind of source a subclass reads, and the
    spider is named after it (``scrapy crawl feed``), so a source's type names its spider."""

    source_type = ""
    # Stats family of this spider's listings (``veille/<family>/read``, ``…/failed``).
    listing_family = ""

    def __init__(self, source: str = "all", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source_arg = source

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        use_job_dir(crawler, spider.name, spider.source_arg)
        spider.setup(crawler)
        return spider

    def setup(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.config = config = cached_config(settings.get("VEILLE_CONFIG"))
        if self.source_arg == "all":
            chosen = [s for s in config.sources if s.enabled and s.type == self.source_type]
        else:
            chosen = [config.source(name) for name in self.source_arg.split(",")]
            wrong = [s.name for s in chosen if s.type != self.source_type]
            if wrong:
                raise ValueError(f"{self.name} spider cannot read {wrong}: wrong source type")
        self.sources: list[Source] = chosen
        self.extraction = ExtractionOptions(
            min_words=settings.getint("VEILLE_MIN_WORDS"),
            language_sample=settings.getint("VEILLE_LANGUAGE_SAMPLE"),
        )
        # Worker processes for extraction (VEILLE_EXTRACT_PROCESSES; 0: a thread here).
        self.extractor = ExtractionPool.from_settings(settings, self.extraction)
        es = crawl_elasticsearch(crawler)
        self.env, self.es, self.articles_index = es.env, es.client, es.names.articles
        self.skip_indexed = settings.getbool("VEILLE_SKIP_INDEXED")

    def count(self, key: str, value: int = 1) -> None:
        self.crawler.stats.inc_value(f"veille/{key}", value)

    def record_problem(self, url: str, source: Source, kind: str, detail: str) -> None:
        """Keep, for the run record, why a listing of ``source`` could not be used."""
        problems = self.crawler.stats.get_value("veille/problems") or []
        entry = {"url": url, "source": source.name, "kind": kind, "detail": detail[:500]}
        self.crawler.stats.set_value("veille/problems", [*problems, entry])

    def note_entry_times(self, times: Iterable[datetime | None]) -> None:
        """Keep the newest publication times listed, for the source's usual gap (health)."""
        known = set(self.crawler.stats.get_value("veille/entry_times") or [])
        known.update(t.isoformat() for t in times if t is not None)
        newest = sorted(known, key=datetime.fromisoformat)[-ENTRY_TIMES_KEPT:]
        self.crawler.stats.set_value("veille/entry_times", newest)

    async def parse_listing(self, func: Callable[..., T], *args: Any, size: int) -> T:
        """``func(*args)`` in an extraction worker, within the parse limits for an input of
        ``size`` bytes; raises :class:`~crawler.limits.ParseRefused` past them."""
        try:
            result, usage = await self.extractor.run(func, *args, size=size)
        except ParseRefused as refused:
            self._note_usage(refused.usage)
            raise
        self._note_usage(usage)
        return result

    def _note_usage(self, usage: Usage | None) -> None:
        if usage is not None:
            self.crawler.stats.max_value("veille/parse/max_cpu_s", round(usage.cpu_s, 2))
            self.crawler.stats.max_value("veille/parse/max_memory_mb", round(usage.memory_mb, 1))

    def _indexed_urls(self, urls: list[str]) -> set[str]:
        response = self.es.search(
            index=self.articles_index,
            size=len(urls),
            source=["urls"],
            query={"terms": {"urls": urls}},
            ignore_unavailable=True,
        )
        found: set[str] = set()
        for hit in response["hits"]["hits"]:
            found.update(hit["_source"].get("urls", []))
        return found & set(urls)

    async def new_urls(self, urls: Iterable[str]) -> list[str]:
        """Canonical URLs from ``urls`` that are not indexed yet, in order, without repeats.

        Incremental crawling: a page already in the index is not fetched again. If the index
        cannot be asked, every URL is returned and the dedupe stage decides later.
        """
        wanted = list(dict.fromkeys(canonicalize(u) for u in urls))
        if not self.skip_indexed or not wanted:
            return wanted
        try:
            known: set[str] = set()
            for start in range(0, len(wanted), 500):
                known |= await in_thread(self._indexed_urls, wanted[start : start + 500])
        except (ApiError, TransportError) as exc:
            report_crawl_es_outage(self.crawler.stats, logger, exc, self.env.data_dir)
            return wanted
        if known:
            self.count("skipped/already_indexed", len(known))
        return [u for u in wanted if u not in known]

    def listing_request(
        self, url: str, source: Source, callback: Callable[..., Any], *, first: bool, **meta: Any
    ) -> scrapy.Request:
        """A request for a listing of ``source`` (a feed, a sitemap, a search answer): marked
        as one (:data:`~crawler.middlewares.skips.LISTING`) so that a failure is reported here,
        with its source, by :meth:`listing_failed`. ``first``: one the source names itself,
        fetched even if this crawl saw its URL before."""
        return scrapy.Request(
            url,
            callback=callback,
            errback=self.listing_failed,
            meta={"source": source, LISTING: True, **meta},
            dont_filter=first,
        )

    def listing_failed(self, failure: Any) -> None:
        """A listing not fetched: counted as ``<family>/failed`` (``malformed`` for a body
        refused as too large), kept for the run record and logged once."""
        request = failure.request
        source: Source = request.meta["source"]
        kind, detail = describe_failure(failure)
        self.count(f"{self.listing_family}/{kind}")
        self.record_problem(request.url, source, kind, detail)
        logger.warning(
            "%s %s of source %s not read: %s", self.source_type, request.url, source.name, detail
        )

    def article_request(
        self, url: str, source: Source, via: dict[str, str], **meta: Any
    ) -> scrapy.Request:
        return scrapy.Request(
            url,
            callback=self.parse_article,
            errback=self.page_failed,
            meta={"source": source, "via": via, **meta},
        )

    def page_failed(self, failure: Any) -> None:
        """An article page not fetched. A refusal by a middleware (the address guard, robots.txt,
        the download skips) was counted and logged where it was made; an HTTP error answer
        counts as ``dropped/http_error``, any other failure as ``dropped/fetch_failed``, each
        logged once here."""
        request = failure.request
        url = request.meta.get("redirect_urls", [request.url])[0]
        if failure.check(HttpError):
            self.count("dropped/http_error")
            logger.info("skipped %s: %s", url, describe_failure(failure)[1])
        elif not failure.check(IgnoreRequest):
            self.count("dropped/fetch_failed")
            logger.warning("skipped %s: fetch_failed (%s)", url, describe_failure(failure)[1])

    async def parse_article(self, response: Response) -> AsyncIterator[Article]:
        """The extraction step: one article page in, at most one :class:`Article` out.

        Request ``meta`` (:meth:`article_request` sets them): ``source`` (the configured
        :class:`Source`) and ``via`` (how the URL was found, stored as ``discovered_via``) are
        required; ``entry_published`` (a datetime) and ``entry_summary`` (text) from the feed or
        sitemap entry are used when the page has no date or description of its own.
        ``redirect_urls`` (Scrapy's) adds the spellings that led here to ``urls``.
        Out: the page extracted, tidied, hashed and its language detected in an extraction
        worker (:func:`crawler.extraction_worker.extract_page`), so the Article comes with
        ``text_prepared``. Pages that are not articles are counted as ``dropped/<reason>``.
        """
        source: Source = response.meta["source"]
        self.count("pages_fetched")
        if not isinstance(response, TextResponse):
            self.count("dropped/not_html")
            logger.info("skipped %s: not an HTML page", response.url)
            return
        result = await self.extractor.extract(response.text, response.url)
        if isinstance(result, NotAnArticle):
            reason = result.reason.split(":")[0]
            self.count(f"dropped/{reason}")
            level = logging.WARNING if reason in REFUSED_PAGES else logging.INFO
            logger.log(level, "skipped %s: %s", response.url, result.reason)
            return
        self.count("extracted")
        entry_date: datetime | None = response.meta.get("entry_published")
        yield Article(
            url=response.url,
            canonical_url=result.canonical_url or response.url,
            urls=[response.request.url, *response.meta.get("redirect_urls", [])],
            source=SourceRef(
                name=source.name,
                domain=domain_of(response.url),
                country=source.country,
                type=source.type,
            ),
            discovered_via=response.meta["via"],
            title=result.title,
            text=result.text,
            description=result.description or response.meta.get("entry_summary"),
            authors=result.authors,
            site_name=result.site_name,
            image=result.image,
            published_at=result.published_at or entry_date,
            word_count=result.word_count,
            # Done by the extraction step; the normalize and language stages keep them.
            content_hash=result.content_hash,
            language=result.language,
            language_confidence=result.language_confidence,
            text_prepared=True,
        )

    def closed(self, reason: str) -> None:
        self.extractor.close()
