"""Garbage collection for a long crawl: what was loaded before it is kept out of the collector.

Settings: ``VEILLE_GC_FREEZE`` (default on) and ``VEILLE_GC_THRESHOLD`` (default 7000, the
number of new container objects that starts a young-generation collection; Python's is 700).

A crawl process holds many thousands of container objects from its imports and configuration
(Scrapy, Twisted, the Elasticsearch client, the topics), and they live until it exits. Python's
full collections walk all of them again and again. When the engine starts, this extension
collects once, then moves every object alive into the permanent generation (``gc.freeze``) that
the collector never visits, and collects young objects less often. Cycles made during the crawl
are still collected. ``python -m bench.compare HEAD HEAD@VEILLE_GC_FREEZE=false`` measures the
crawl process's CPU per page with and without it (README, Performance). When the engine
stops, the frozen objects are handed back and the thresholds restored, for a process that
goes on after the crawl (tests, ``veille worker`` between crawls).
"""

from __future__ import annotations

import gc
from typing import Self

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured


class GcTuningExtension:
    # Engines running in this process (``veille crawl --all`` runs one crawler per spider).
    _engines = 0
    _saved_threshold: tuple[int, int, int] | None = None

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("VEILLE_GC_FREEZE"):
            raise NotConfigured
        threshold = crawler.settings.getint("VEILLE_GC_THRESHOLD")
        if threshold < 1:
            raise NotConfigured  # 0 or less: leave the collector as Python set it
        extension = cls(threshold)
        crawler.signals.connect(extension.engine_started, signal=signals.engine_started)
        crawler.signals.connect(extension.engine_stopped, signal=signals.engine_stopped)
        return extension

    def engine_started(self) -> None:
        cls = type(self)
        if cls._engines == 0:
            cls._saved_threshold = gc.get_threshold()
            gc.collect()
            gc.freeze()
            gc.set_threshold(self.threshold, 20, 20)
        cls._engines += 1

    def engine_stopped(self) -> None:
        cls = type(self)
        cls._engines = max(cls._engines - 1, 0)
        if cls._engines == 0 and cls._saved_threshold is not None:
            gc.unfreeze()
            gc.set_threshold(*cls._saved_threshold)
            cls._saved_threshold = None
