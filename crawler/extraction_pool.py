"""Article extraction off the reactor thread, in worker processes so that every core extracts.

In:  a page's text and URL, from an async spider callback.
Out: what :func:`crawler.extraction.extract_article` returns (an ``Extracted`` or a
     ``NotAnArticle``), awaited without blocking the reactor.

trafilatura is pure-Python-heavy work that holds the GIL: in a thread of the crawl process it
leaves the other cores idle and slows fetching and the pipeline down. Setting
``VEILLE_EXTRACT_PROCESSES`` (default: one per CPU) is the number of worker processes; ``0``
extracts in a thread of the crawl process instead. Workers are started with ``spawn`` (forking a
process that runs Twisted's reactor and threads is unsafe) as soon as the spider opens, so their
imports overlap the first feed requests, and they are shut down when the spider closes.

A worker that dies (a page that crashes lxml, the OOM killer) breaks the pool: a fresh pool
replaces it and the page is tried once more; a page that breaks two pools is given up as
``NotAnArticle("extraction_crashed")``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Self

from scrapy.settings import BaseSettings
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import defer

from crawler.extraction import Extracted, ExtractionOptions, NotAnArticle, extract_article
from pipelines.base import in_thread

logger = logging.getLogger(__name__)


def _settle(deferred: defer.Deferred, future: Future) -> None:
    error = future.exception()
    if error is None:
        deferred.callback(future.result())
    else:
        deferred.errback(error)


class ExtractionPool:
    """``await pool.extract(text, url)``; ``processes=0`` extracts in a thread instead."""

    def __init__(self, processes: int, options: ExtractionOptions) -> None:
        self.processes = max(0, processes)
        self.options = options
        self.executor: ProcessPoolExecutor | None = None
        if self.processes:
            self.executor = self._start()

    @classmethod
    def from_settings(cls, settings: BaseSettings, options: ExtractionOptions) -> Self:
        processes = settings.get("VEILLE_EXTRACT_PROCESSES")
        if processes in (None, ""):
            return cls(os.cpu_count() or 1, options)
        return cls(int(processes), options)

    def _start(self) -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(
            self.processes, mp_context=multiprocessing.get_context("spawn")
        )
        for _ in range(self.processes):  # each worker imports trafilatura before pages come
            executor.submit(extract_article, "", "about:blank", self.options)
        return executor

    async def _in_worker(self, executor: ProcessPoolExecutor, *args: Any) -> Any:
        from twisted.internet import reactor  # the one Scrapy installed, not a default one

        deferred: defer.Deferred = defer.Deferred()
        future = executor.submit(extract_article, *args)
        future.add_done_callback(lambda done: reactor.callFromThread(_settle, deferred, done))
        return await maybe_deferred_to_future(deferred)

    async def extract(self, body: str, url: str) -> Extracted | NotAnArticle:
        if self.executor is None and not self.processes:
            return await in_thread(extract_article, body, url, self.options)
        for _ in range(2):
            executor = self.executor or self._replace(None)
            try:
                return await self._in_worker(executor, body, url, self.options)
            except BrokenProcessPool:
                logger.error("an extraction worker died on %s; starting new workers", url)
                self._replace(executor)
        return NotAnArticle("extraction_crashed: a worker process died twice on this page")

    def _replace(self, broken: ProcessPoolExecutor | None) -> ProcessPoolExecutor:
        """A working pool: the current one, unless it is ``broken`` (then a new one)."""
        if self.executor is not None and self.executor is not broken:
            return self.executor
        if broken is not None:
            broken.shutdown(wait=False, cancel_futures=True)
        self.executor = self._start()
        return self.executor

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None
