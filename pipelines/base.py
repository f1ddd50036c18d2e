"""What every stage shares: construction from the crawler, drop accounting, thread offloading."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NoReturn, Self, TypeVar

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from veille.article import Article

T = TypeVar("T")
logger = logging.getLogger(__name__)


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run blocking work (Elasticsearch calls, heavy CPU) off the reactor thread."""
    return await maybe_deferred_to_future(deferToThread(function, *args))


class Stage:
    """Base of the pipeline stages: keeps the crawler and its stats, counts drops by reason."""

    name = "stage"

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def count(self, key: str, value: int = 1) -> None:
        self.stats.inc_value(f"veille/{key}", value)

    def drop(self, article: Article, reason: str, detail: str = "") -> NoReturn:
        """Count ``veille/dropped/<reason>`` and drop the article with a readable message."""
        self.count(f"dropped/{reason}")
        message = f"{reason}: {article.url}" + (f" ({detail})" if detail else "")
        raise DropItem(message)
