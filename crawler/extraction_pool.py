"""Parsing off the reactor thread, in worker processes: every core works and every parse is bounded.

In:  a page's text and URL (:meth:`ExtractionPool.extract`), or a parse function and its input
     (:meth:`ExtractionPool.parse`: a feed, a sitemap, a search answer), from an async spider
     callback.
Out: what the function returns (for a page, an ``Extracted`` or a ``NotAnArticle`` from
     :func:`crawler.extraction_worker.extract_page`), awaited without blocking the reactor;
     :class:`~crawler.limits.ParseRefused` when the parse went past its bounds.

trafilatura, lxml and feedparser are pure-Python-heavy work that holds the GIL: in a thread of the
crawl process they leave the other cores idle and slow fetching and the pipeline down, and a
hostile input can take seconds, minutes or gigabytes. Setting ``VEILLE_EXTRACT_PROCESSES``
(default: one per CPU) is the number of worker processes; ``0`` parses in a thread of the crawl
process instead, without the bounds below. Each parse in a worker runs under
:func:`crawler.limits.bounded` (``VEILLE_PARSE_MEMORY_MB``, ``VEILLE_PARSE_TIME_BASE``,
``VEILLE_PARSE_TIME_PER_MB``), and each task reports the CPU time and memory it took.

Each worker has its own pipe and its own dispatching thread here, so a worker that dies (the
kernel's CPU limit on a parse stuck in C code, a crash in lxml, the OOM killer) takes only its own
task with it: that task is refused (``too_slow`` after the CPU limit) or tried once more in a
fresh worker, and the pages the other workers hold go on. (A ``ProcessPoolExecutor`` breaks
entirely when one worker dies, and fails every task it holds.)

Workers are forked by a ``forkserver`` (forking a process that runs Twisted's reactor and threads
is unsafe): a clean process started once per crawl process, which imports
``crawler.extraction_worker`` (trafilatura, langdetect's profiles) and the feed and sitemap
parsers before it forks anything, so a worker starts ready instead of spending a second on
imports. The crawl's own ``__main__`` (``veille.cli`` and all it imports) is kept out of the
workers. Spiders of one crawl process share one pool (:meth:`ExtractionPool.shared`), so
``veille crawl --all`` starts one worker per CPU, not one per CPU and spider. The workers start
when the first spider opens, so their start overlaps the first feed requests, and stop when the
last one closes. Workers leave by themselves when the crawl process ends without stopping them
(SIGKILL, the OOM killer): see :func:`crawler.extraction_worker.exit_with`.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from typing import Any, ClassVar, Self

from scrapy.settings import BaseSettings
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import defer

from crawler.extraction import Extracted, ExtractionOptions, NotAnArticle
from crawler.extraction_worker import extract_page, serve
from crawler.limits import ParseLimits, ParseRefused
from veille.core.threads import in_thread

logger = logging.getLogger(__name__)

# Imported by the forkserver before it forks a worker.
PRELOAD = ["crawler.extraction_worker", "crawler.feeds", "crawler.discovery"]
# Seconds a stopping worker gets to leave before it is killed.
STOP_GRACE = 5.0


def forkserver() -> ForkServerContext:
    """The multiprocessing context the workers are forked from (its preload set once)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """While workers start: stop multiprocessing from importing our ``__main__`` in each.

    A new worker re-imports the parent's main module by name or path; for ``veille crawl`` that
    is the whole CLI (about a second of CPU per worker) and parsing needs none of it.
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


@dataclass(frozen=True)
class Usage:
    """What one task took in its worker: CPU seconds and the peak memory it added, in MiB."""

    cpu_s: float = 0.0
    memory_mb: float = 0.0


class WorkerDied(Exception):
    """The worker process ended while it held the task (``signal``: what ended it, if known)."""

    def __init__(self, exitcode: int | None) -> None:
        self.signal = -exitcode if exitcode is not None and exitcode < 0 else None
        name = signal.Signals(self.signal).name if self.signal else f"exit code {exitcode}"
        super().__init__(f"the worker process ended ({name})")


class _Worker:
    """One worker process and its end of the pipe; used by its dispatching thread only."""

    # Lock around starting processes: the main module is hidden from all of them at once.
    starting = threading.Lock()

    def __init__(self, limits: ParseLimits) -> None:
        self.limits = limits
        self.process: Any = None
        self.conn: Connection | None = None

    def start(self) -> None:
        context = forkserver()
        here, there = context.Pipe()
        with _Worker.starting, _main_module_hidden():
            process = context.Process(
                target=serve, args=(there, os.getpid(), self.limits), daemon=True,
                name="veille-parse",
            )  # fmt: skip
            process.start()
        there.close()
        self.process, self.conn = process, here

    def call(self, task: tuple[Callable[..., Any], tuple[Any, ...], int]) -> tuple[Any, Usage]:
        """Send a task and wait for its outcome; :class:`WorkerDied` if the process ends first."""
        if self.conn is None:
            self.start()
        assert self.conn is not None
        try:
            self.conn.send(task)
            outcome, usage, retiring = self.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            self.process.join(STOP_GRACE)
            died = WorkerDied(self.process.exitcode)
            self.conn.close()
            self.process = self.conn = None
            raise died from None
        if retiring:  # it leaves after this answer; the next task starts a fresh one
            self.stop()
        return outcome, Usage(*usage)

    def stop(self) -> None:
        if self.conn is None:
            return
        self.conn.close()  # the worker reads the end of its pipe and leaves
        self.process.join(STOP_GRACE)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.process = self.conn = None


class ExtractionPool:
    """``await pool.extract(text, url)``, ``await pool.parse(func, *args, size=n)``;
    ``processes=0`` runs them in a thread of this process instead, unbounded."""

    # Pools in use in this process, by (processes, options, limits), with how many spiders hold
    # each.
    _shared: ClassVar[dict[tuple[int, ExtractionOptions, ParseLimits], tuple[ExtractionPool, int]]]
    _shared = {}

    def __init__(
        self, processes: int, options: ExtractionOptions, limits: ParseLimits | None = None
    ) -> None:
        self.processes = max(0, processes)
        self.options = options
        self.limits = limits or ParseLimits.defaults()
        self._key: tuple[int, ExtractionOptions, ParseLimits] | None = None
        self._tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._workers = [_Worker(self.limits) for _ in range(self.processes)]
        self._threads = [
            threading.Thread(target=self._dispatch, args=(worker,), daemon=True,
                             name=f"veille-parse-{number}")
            for number, worker in enumerate(self._workers)
        ]  # fmt: skip
        for thread in self._threads:
            thread.start()

    @classmethod
    def from_settings(cls, settings: BaseSettings, options: ExtractionOptions) -> Self:
        """The process's shared pool for the ``VEILLE_EXTRACT_PROCESSES`` and parse settings."""
        processes = settings.get("VEILLE_EXTRACT_PROCESSES")
        count = (os.cpu_count() or 1) if processes in (None, "") else int(processes)
        return cls.shared(count, options, ParseLimits.from_settings(settings))

    @classmethod
    def shared(
        cls, processes: int, options: ExtractionOptions, limits: ParseLimits | None = None
    ) -> Self:
        """One pool per process and options: :meth:`close` stops it when its last user does."""
        key = (max(0, processes), options, limits or ParseLimits.defaults())
        pool, users = cls._shared.get(key, (None, 0))
        if pool is None:
            pool = cls(*key)
            pool._key = key
        cls._shared[key] = (pool, users + 1)
        return pool

    def _dispatch(self, worker: _Worker) -> None:
        """A thread per worker: start it, then hand it tasks until the pool closes."""
        try:
            worker.start()
        except Exception as exc:  # its first task starts it again, or says why it cannot
            logger.warning("a parse worker could not start: %s", exc)
        while True:
            item = self._tasks.get()
            if item is None:
                worker.stop()
                return
            task, settle = item
            settle(self._run(worker, task))

    def _run(self, worker: _Worker, task: tuple[Any, ...]) -> tuple[tuple[str, Any], Usage]:
        """``((kind, value), usage)``: kind ``ok``, ``refused`` or ``raised``."""
        died: WorkerDied | None = None
        for _ in range(2):
            try:
                return worker.call(task)
            except WorkerDied as exc:
                died = exc
                if exc.signal == signal.SIGXCPU:
                    limit = self.limits.cpu_seconds(task[2])
                    detail = f"stopped by the kernel past {limit:.1f} s of CPU"
                    return ("refused", ParseRefused("too_slow", detail)), Usage(cpu_s=limit)
                logger.warning("a parse worker died (%s); its task is tried once more", exc)
            except Exception as exc:  # a task that cannot be pickled: a bug, reported as such
                return ("raised", exc), Usage()
        return ("raised", died), Usage()

    def run_blocking(self, func: Callable[..., Any], *args: Any, size: int) -> tuple[Any, Usage]:
        """``(result, usage)`` of ``func(*args)`` in a worker, waiting here (tests, benchmarks).

        Raises what the task raised, :class:`ParseRefused`, or :class:`WorkerDied`.
        """
        if not self.processes:
            return func(*args), Usage()
        done = threading.Event()
        box: list[Any] = []

        def settle(outcome: Any) -> None:
            box.append(outcome)
            done.set()

        self._tasks.put(((func, args, size), settle))
        done.wait()
        return _unpack(box[0])

    async def run(self, func: Callable[..., Any], *args: Any, size: int) -> tuple[Any, Usage]:
        """``(result, usage)`` of ``func(*args)`` in a worker; as :meth:`run_blocking`."""
        if not self.processes:
            return await in_thread(func, *args), Usage()
        from twisted.internet import reactor  # the one Scrapy installed, not a default one

        deferred: defer.Deferred = defer.Deferred()

        def settle(outcome: Any) -> None:  # in the dispatching thread
            reactor.callFromThread(deferred.callback, outcome)

        self._tasks.put(((func, args, size), settle))
        return _unpack(await maybe_deferred_to_future(deferred))

    async def parse(self, func: Callable[..., Any], *args: Any, size: int) -> Any:
        """``func(*args)`` in a worker, for an input of ``size`` bytes."""
        result, _ = await self.run(func, *args, size=size)
        return result

    async def extract(self, body: str, url: str) -> Extracted | NotAnArticle:
        """A page extracted in a worker; a page past its bounds is ``NotAnArticle`` with the
        reason ``too_large`` or ``too_slow``, one that killed its worker twice
        ``extraction_crashed``, one whose markup made a library raise ``extraction_failed``."""
        try:
            return await self.parse(extract_page, body, url, self.options, size=len(body))
        except ParseRefused as refused:
            return NotAnArticle(str(refused))
        except WorkerDied as died:
            return NotAnArticle(f"extraction_crashed: {died}, twice on this page")
        except Exception as exc:  # the markup broke a library in the worker: not a crawl error
            return NotAnArticle(f"extraction_failed: {type(exc).__name__}: {exc}")

    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process is not None]

    def close(self) -> None:
        """Stop the workers, once the last spider sharing this pool is done with it."""
        if self._key is not None:
            _, users = self._shared.pop(self._key, (self, 1))
            if users > 1:
                self._shared[self._key] = (self, users - 1)
                return
            self._key = None
        for _ in self._threads:
            self._tasks.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []


def _unpack(outcome: tuple[tuple[str, Any], Usage]) -> tuple[Any, Usage]:
    (kind, value), usage = outcome
    if kind == "refused":
        value.usage = usage  # what the parse had taken when it was stopped
    if kind != "ok":
        raise value
    return value, usage
