"""Blocking work off the Twisted reactor thread, for every crawl component (spiders,
middlewares, extensions, stages)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

T = TypeVar("T")


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run blocking work (Elasticsearch calls, heavy CPU) off the reactor thread."""
    return await maybe_deferred_to_future(deferToThread(function, *args))
