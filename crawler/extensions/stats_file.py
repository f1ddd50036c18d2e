"""Stats file: the crawl's Scrapy stats written to a JSON file when the spider closes.

Setting ``VEILLE_STATS_FILE``: the path to write (empty, the default, turns the extension off).
The scheduler sets it for each crawl subprocess and reads the file back to record the run.
The file is written to a temporary name and renamed, so a reader never sees half of it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Self

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class StatsFileExtension:
    def __init__(self, crawler: Crawler, path: Path) -> None:
        self.crawler = crawler
        self.path = path

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        path = crawler.settings.get("VEILLE_STATS_FILE")
        if not path:
            raise NotConfigured  # off unless the scheduler names a file: nothing to log
        extension = cls(crawler, Path(path))
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_closed(self, spider: Spider, reason: str) -> None:
        self.write(reason)

    def write(self, reason: str) -> None:
        """Write the stats as they are now, with ``finish_reason`` if none is set yet."""
        stats = {key: _plain(value) for key, value in self.crawler.stats.get_stats().items()}
        stats.setdefault("finish_reason", reason)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".part")
        partial.write_text(json.dumps(stats, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(partial, self.path)
