"""Running one crawler worker in this process (distributed mode), until it is told to stop.

In:  the validated config and Scrapy setting overrides (``VEILLE_WORKER_MAX_IDLE`` among them).
Out: the worker's :class:`~veille.ops.crawl.CrawlSummary`, built from its own Scrapy stats, once it
     stops: SIGTERM or Ctrl-C (Scrapy finishes the pages in flight), or idle for too long.
"""

from __future__ import annotations

from scrapy.crawler import CrawlerProcess

from veille.core.config import Config
from veille.ops.crawl import CrawlSummary, crawl_settings

WORKER_SPIDER = "feeds-distributed"


def run_worker(config: Config, overrides: dict[str, str] | None = None) -> CrawlSummary:
    """Run the distributed feeds spider until it stops; block meanwhile."""
    settings = crawl_settings({"VEILLE_CONFIG": str(config.directory), **(overrides or {})})
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(WORKER_SPIDER)
    process.crawl(crawler)
    process.start()
    summary = CrawlSummary(WORKER_SPIDER, ["feeds pushed into Redis"])
    summary.stats = dict(crawler.stats.get_stats()) if crawler.stats else {}
    summary.finish_reason = str(summary.stats.get("finish_reason", ""))
    return summary
