"""Resuming interrupted crawls: a Scrapy job folder per source, and the index as the record.

In:  the crawler's settings (``VEILLE_RESUME``, ``JOBDIR``), the spider's name and its
     ``source`` argument, the data folder (``VEILLE_DATA_DIR``).
Out: ``JOBDIR`` set to ``<data>/jobs/<spider>-<source>`` (unless given explicitly or
     ``VEILLE_RESUME`` is off), so ``veille crawl`` and ``scrapy crawl`` alike keep the pending
     requests of a crawl that was stopped and pick them up on the next run; and
     :class:`RunDupeFilter`, the duplicate-request filter for every crawl.

What is done is decided by Elasticsearch, not by Scrapy's job folder: a page is fetched again
until its article is indexed (or spooled). Scrapy's own filter would remember every request it
ever *scheduled* in ``requests.seen`` -- written with no fsync, before the page's article is
stored -- so after a SIGKILL it would skip pages whose articles never reached the index, and
they would be lost. :class:`RunDupeFilter` remembers requests for one run only; across runs the
spiders skip URLs that are already indexed, and the index's ``create`` refuses a second copy.
"""

from __future__ import annotations

import hashlib
import re
from typing import Self

from scrapy.crawler import Crawler
from scrapy.dupefilters import RFPDupeFilter

from veille.core.config import Environment


def job_folder_name(spider: str, source: str) -> str:
    """A file-system-safe folder name for one spider and its ``source`` argument."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "+", source)
    if len(name) > 80:
        name = f"{name[:60]}-{hashlib.sha256(source.encode()).hexdigest()[:12]}"
    return f"{spider}-{name}"


def use_job_dir(crawler: Crawler, spider: str, source: str) -> None:
    """Set ``JOBDIR`` for this crawl (call it before the crawler's settings are frozen)."""
    settings = crawler.settings
    if settings.get("JOBDIR") or not settings.getbool("VEILLE_RESUME"):
        return
    folder = Environment.from_env().data_dir / "jobs" / job_folder_name(spider, source)
    settings.set("JOBDIR", str(folder), priority="spider")


class RunDupeFilter(RFPDupeFilter):
    """Scrapy's request filter, remembering requests for the current run only."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(
            None,
            crawler.settings.getbool("DUPEFILTER_DEBUG"),
            fingerprinter=crawler.request_fingerprinter,
        )
