"""Running crawls in this process, with a live progress line and a summary.

In:  the sources to crawl (names or every enabled one) and optional Scrapy setting overrides.
Out: :class:`CrawlSummary` per spider built from the crawl's own Scrapy stats.

The scheduler does not use this: it runs each crawl as a ``scrapy crawl`` subprocess.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scrapy import signals
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings
from twisted.internet import task

from veille.core.config import Config, Source


@dataclass
class CrawlSummary:
    spider: str
    sources: list[str]
    finish_reason: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    def value(self, key: str) -> int:
        return int(self.stats.get(key, 0) or 0)

    @property
    def dropped(self) -> dict[str, int]:
        prefix = "veille/dropped/"
        return {
            k.removeprefix(prefix): int(v) for k, v in self.stats.items() if k.startswith(prefix)
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "spider": self.spider,
            "sources": self.sources,
            "finish_reason": self.finish_reason,
            "requests": self.value("downloader/request_count"),
            "responses": self.value("downloader/response_count"),
            "pages_fetched": self.value("veille/pages_fetched"),
            "extracted": self.value("veille/extracted"),
            "indexed": self.value("veille/indexed"),
            "spooled": self.value("veille/spooled"),
            "already_indexed_skipped": self.value("veille/skipped/already_indexed"),
            "feeds_read": self.value("veille/feeds/read"),
            "feeds_malformed": self.value("veille/feeds/malformed"),
            "feeds_failed": self.value("veille/feeds/failed"),
            "feeds_not_modified": self.value("veille/feeds/not_modified"),
            "sitemaps_read": self.value("veille/sitemaps/read"),
            "sitemaps_malformed": self.value("veille/sitemaps/malformed"),
            "sitemaps_failed": self.value("veille/sitemaps/failed"),
            "search_queries_read": self.value("veille/search/read"),
            "search_results": self.value("veille/search/results"),
            "search_failed": self.value("veille/search/failed"),
            "near_duplicates": self.value("veille/duplicates/near"),
            "cross_language_links": self.value("veille/clusters/cross_language"),
            "errors": self.value("log_count/ERROR"),
            "dropped": self.dropped,
        }


def crawl_settings(overrides: dict[str, str] | None = None) -> Settings:
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    for name, value in (overrides or {}).items():
        settings.set(name, value, priority="cmdline")
    return settings


def group_by_spider(sources: list[Source]) -> dict[str, list[Source]]:
    """Sources grouped by the spider that reads their type (each spider is named after it)."""
    groups: dict[str, list[Source]] = defaultdict(list)
    for source in sources:
        groups[source.type].append(source)
    return groups


def run_crawls(
    config: Config,
    sources: list[Source],
    overrides: dict[str, str] | None = None,
    on_progress: Callable[[dict[str, int]], None] | None = None,
) -> list[CrawlSummary]:
    """Crawl the given sources (one Scrapy crawler per spider type) and block until done."""
    settings = crawl_settings({"VEILLE_CONFIG": str(config.directory), **(overrides or {})})
    process = CrawlerProcess(settings)
    summaries: list[tuple[Any, CrawlSummary]] = []
    for spider_name, group in group_by_spider(sources).items():
        crawler = process.create_crawler(spider_name)
        summary = CrawlSummary(crawler.spidercls.name, [s.name for s in group])
        process.crawl(crawler, source=",".join(summary.sources))
        summaries.append((crawler, summary))

    def report() -> None:
        totals: dict[str, int] = defaultdict(int)
        for crawler, _ in summaries:
            if crawler.stats:
                for key, value in crawler.stats.get_stats().items():
                    if isinstance(value, int):
                        totals[key] += value
        if on_progress:
            on_progress(dict(totals))

    ticker = task.LoopingCall(report)
    ticker.start(0.5, now=False)
    process.start()
    if ticker.running:
        ticker.stop()
    for crawler, summary in summaries:
        summary.stats = dict(crawler.stats.get_stats()) if crawler.stats else {}
        summary.finish_reason = str(summary.stats.get("finish_reason", ""))
    return [summary for _, summary in summaries]


def spider_items(
    config: Config, spider: str, overrides: dict[str, Any], **arguments: str
) -> list[dict[str, Any]]:
    """Run one spider in this process with the crawl's settings, no pipeline stage, one retry
    and no AutoThrottle (plus ``overrides``), and return the items it yields. Blocks until done;
    once per process (one reactor)."""
    settings = crawl_settings(
        {
            "VEILLE_CONFIG": str(config.directory),
            "ITEM_PIPELINES": {},
            "RETRY_TIMES": 1,
            "AUTOTHROTTLE_ENABLED": False,
            "LOG_LEVEL": "ERROR",
            **overrides,
        }
    )
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(spider)
    items: list[dict[str, Any]] = []
    crawler.signals.connect(
        lambda item: items.append(dict(item)), signal=signals.item_scraped, weak=False
    )
    process.crawl(crawler, **arguments)
    process.start()
    return items
