"""Memory ceiling: a crawl process that grows past ``VEILLE_MEMORY_LIMIT_MB`` stops cleanly.

Settings: ``VEILLE_MEMORY_LIMIT_MB`` (default: the environment variable of that name, else
:func:`default_memory_limit_mb`, a quarter of this machine's memory, or of its container's limit,
between 1 and 4 GiB; ``0`` turns the ceiling off) and ``VEILLE_MEMORY_CHECK_INTERVAL`` (seconds,
default 1).

Out: stats ``veille/memory/limit_mb`` and ``veille/memory/peak_mb`` (the largest resident size
seen). When the crawl process's resident memory reaches the limit: one WARNING, the stat
``veille/memory/limit_reached``, and the spider is closed with the reason ``memory``. A close
lets the requests in flight finish and the pipeline store or spool the articles it holds, as at
the end of any crawl; the scheduler records the run as ``failed`` with the reason ``memory``.
Should the process reach half as much again before the reactor has even begun the close (held
by something that does not give it back), the stats are written with that reason and the
process ends at once: articles still in the pipeline then are not indexed, and the next crawl
fetches them again, since only what is indexed counts as done.

A thread does the watching, not the reactor: Scrapy's MemoryUsage extension checks from the
reactor, once a minute by default, so it cannot see memory that grows while a callback holds the
reactor, which is when it grows fastest. The thread reads ``/proc/self/statm`` each interval
(pure-Python work hands the GIL over every few milliseconds). The parsing of what publishers
send happens in the extraction workers, each under its own bounds (``crawler/limits.py``).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Self

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import deferred_from_coro

from crawler.extensions.stats_file import StatsFileExtension
from crawler.limits import MIB, resident_size

logger = logging.getLogger(__name__)

# The process ends at once past this multiple of the limit (see the module docstring).
HARD_STOP_FACTOR = 1.5
CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2 (Docker, systemd)
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)


def machine_memory_mb() -> int:
    """This machine's memory, or its container's limit when that is lower, in MiB."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in CGROUP_LIMITS:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total // MIB


def default_memory_limit_mb() -> int:
    """A quarter of :func:`machine_memory_mb`, at least 1024 and at most 4096: the scheduler runs
    up to ``VEILLE_SCHEDULER_WORKERS`` (4) crawls at once, and one crawl processes usually stays
    under 500 MiB."""
    return min(4096, max(1024, machine_memory_mb() // 4))


class MemoryCeilingExtension:
    def __init__(self, crawler: Crawler, limit_mb: int, interval: float) -> None:
        self.crawler = crawler
        self.limit = limit_mb * MIB
        self.interval = interval
        self.peak = 0
        self.stopping = threading.Event()
        self.closing = False  # the close is asked for
        self.close_started = False  # the reactor has begun it

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        limit_mb = crawler.settings.getint("VEILLE_MEMORY_LIMIT_MB")
        if limit_mb <= 0:
            raise NotConfigured
        interval = crawler.settings.getfloat("VEILLE_MEMORY_CHECK_INTERVAL")
        extension = cls(crawler, limit_mb, interval)
        crawler.signals.connect(extension.engine_started, signal=signals.engine_started)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def engine_started(self) -> None:
        self.crawler.stats.set_value("veille/memory/limit_mb", self.limit // MIB)
        self._sample()
        threading.Thread(target=self._watch, name="veille-memory-ceiling", daemon=True).start()

    def spider_closed(self) -> None:
        """Before the stats are written (this extension comes before StatsFileExtension)."""
        self.stopping.set()
        self._sample()

    def _sample(self) -> int:
        resident = resident_size()
        self.peak = max(self.peak, resident)
        self.crawler.stats.max_value("veille/memory/peak_mb", self.peak // MIB)
        return resident

    def _watch(self) -> None:
        while not self.stopping.wait(self.interval):
            resident = self._sample()
            blocked = self.closing and not self.close_started
            if blocked and resident >= self.limit * HARD_STOP_FACTOR:
                self._stop_now(resident)
            elif resident >= self.limit and not self.closing:
                self.closing = True
                # Imported here: crawler/settings.py imports this module before Scrapy installs
                # its reactor, and importing the reactor earlier would install the default one.
                from twisted.internet import reactor

                reactor.callFromThread(self._close, resident)

    def _close(self, resident: int) -> None:
        """On the reactor: close the spider, once."""
        self.close_started = True
        self.crawler.stats.set_value("veille/memory/limit_reached", 1)
        logger.warning(
            "memory: the crawl process uses %d MiB, its ceiling is %d MiB "
            "(VEILLE_MEMORY_LIMIT_MB); the crawl stops now and keeps what it has",
            resident // MIB, self.limit // MIB,
        )  # fmt: skip
        engine = self.crawler.engine
        if engine is not None and engine.spider is not None:
            deferred_from_coro(engine.close_spider_async(reason="memory"))

    def _stop_now(self, resident: int) -> None:
        """In the thread: the reactor has not begun the close; write the stats, exit."""
        logger.warning(
            "memory: %d MiB and the crawl has not stopped yet; ending the process now",
            resident // MIB,
        )
        stats_file = self.crawler.get_extension(StatsFileExtension)
        if stats_file is not None:
            stats_file.write("memory")
        logging.shutdown()
        os._exit(1)
