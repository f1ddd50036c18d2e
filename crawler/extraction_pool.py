"""Article extraction off the reactor thread, in worker processes so that every core extracts.

In:  a page's text and URL, from an async spider callback.
Out: what :func:`crawler.extraction_worker.extract_page` returns (an ``Extracted`` or a
     ``NotAnArticle``), awaited without blocking the reactor.

trafilatura is pure-Python-heavy work that holds the GIL: in a thread of the crawl process it
leaves the other cores idle and slows fetching and the pipeline down. Setting
``VEILLE_EXTRACT_PROCESSES`` (default: one per CPU) is the number of worker processes; ``0``
extracts in a thread of the crawl process instead. The workers run
:func:`crawler.extraction_worker.extract_page`, which also tidies the text, hashes it and
detects its language, so that work leaves the crawl process too.

Workers are forked by a ``forkserver`` (forking a process that runs Twisted's reactor and
threads is unsafe): a clean process started once per crawl process, which imports
``crawler.extraction_worker`` (trafilatura, langdetect's profiles) before it forks anything, so
a worker starts ready instead of spending a second on imports. The crawl's own ``__main__``
(``veille.cli`` and all it imports) is kept out of the workers. Spiders of one crawl process
share one pool (:meth:`ExtractionPool.shared`), so ``veille crawl --all`` starts one worker per
CPU, not one per CPU and spider. The pool starts when the first spider opens, so the workers'
start overlaps the first feed requests, and stops when the last one closes.

Workers leave by themselves when the crawl process ends without stopping them (SIGKILL, the OOM
killer): see :func:`crawler.extraction_worker.exit_with`; the forkserver then ends too.

A worker that dies (a page that crashes lxml, the OOM killer) breaks the pool: a fresh pool
replaces it and the page is tried once more; a page that breaks two pools is given up as
``NotAnArticle("extraction_crashed")``.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ClassVar, Self

from scrapy.settings import BaseSettings
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import defer

from crawler.extraction import Extracted, ExtractionOptions, NotAnArticle
from crawler.extraction_worker import exit_with, extract_page
from pipelines.base import in_thread

logger = logging.getLogger(__name__)


def _settle(deferred: defer.Deferred, future: Future) -> None:
    error = future.exception()
    if error is None:
        deferred.callback(future.result())
    else:
        deferred.errback(error)


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """While workers start: stop multiprocessing from importing our ``__main__`` in each.

    A new worker re-imports the parent's main module by name or path; for ``veille crawl`` that
    is the whole CLI (about a second of CPU per worker) and extraction needs none of it.
    """
    main = sys.modules["__main__"]
    saved = {
        name: main.__dict__[name] for name in ("__spec__", "__file__") if name in main.__dict__
    }
    main.__spec__ = None
    main.__dict__.pop("__file__", None)
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class ExtractionPool:
    """``await pool.extract(text, url)``; ``processes=0`` extracts in a thread instead."""

    # Pools in use in this process, by (processes, options), with how many spiders hold each.
    _shared: ClassVar[dict[tuple[int, ExtractionOptions], tuple[ExtractionPool, int]]] = {}

    def __init__(self, processes: int, options: ExtractionOptions) -> None:
        self.processes = max(0, processes)
        self.options = options
        self.executor: ProcessPoolExecutor | None = None
        self._key: tuple[int, ExtractionOptions] | None = None
        if self.processes:
            self.executor = self._start()

    @classmethod
    def from_settings(cls, settings: BaseSettings, options: ExtractionOptions) -> Self:
        """The process's shared pool for the ``VEILLE_EXTRACT_PROCESSES`` setting."""
        processes = settings.get("VEILLE_EXTRACT_PROCESSES")
        count = (os.cpu_count() or 1) if processes in (None, "") else int(processes)
        return cls.shared(count, options)

    @classmethod
    def shared(cls, processes: int, options: ExtractionOptions) -> Self:
        """One pool per process and options: :meth:`close` stops it when its last user does."""
        key = (max(0, processes), options)
        pool, users = cls._shared.get(key, (None, 0))
        if pool is None:
            pool = cls(*key)
            pool._key = key
        cls._shared[key] = (pool, users + 1)
        return pool

    def _start(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["crawler.extraction_worker"])
        with _main_module_hidden():
            executor = ProcessPoolExecutor(
                self.processes, mp_context=context, initializer=exit_with, initargs=(os.getpid(),)
            )
            for _ in range(self.processes):  # workers are forked now, not on the first page
                executor.submit(extract_page, "", "about:blank", self.options)
        return executor

    async def _in_worker(self, executor: ProcessPoolExecutor, *args: Any) -> Any:
        from twisted.internet import reactor  # the one Scrapy installed, not a default one

        deferred: defer.Deferred = defer.Deferred()
        future = executor.submit(extract_page, *args)
        future.add_done_callback(lambda done: reactor.callFromThread(_settle, deferred, done))
        return await maybe_deferred_to_future(deferred)

    async def extract(self, body: str, url: str) -> Extracted | NotAnArticle:
        if self.executor is None and not self.processes:
            return await in_thread(extract_page, body, url, self.options)
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
        """Stop the workers, once the last spider sharing this pool is done with it."""
        if self._key is not None:
            _, users = self._shared.pop(self._key, (self, 1))
            if users > 1:
                self._shared[self._key] = (self, users - 1)
                return
            self._key = None
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None
