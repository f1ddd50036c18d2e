"""Conditional requests for feeds and sitemaps: ask only for what changed since the last crawl.

In:  requests marked by :func:`conditional_meta` (feeds, sitemaps), and their responses.
Out: the request with ``If-None-Match`` / ``If-Modified-Since`` from the validators (``ETag``,
     ``Last-Modified``) its URL answered with last time; the response as it is — a ``304 Not
     Modified`` reaches the spider's callback, which reads nothing (``veille/not_modified``).

Validators are stored one small JSON file per URL under ``<VEILLE_DATA_DIR>/http-validators/``
(several crawls may run at once; each file is replaced atomically). New validators are written
only when the crawl finishes normally, so a crawl that was killed before reading the articles of
a feed reads that feed again next time.

Setting ``VEILLE_CONDITIONAL_REQUESTS`` (default true) turns it on; ``VEILLE_VALIDATORS_DIR``
overrides the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Self

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response

from veille.core.config import Environment

META_KEY = "veille_conditional"


def conditional_meta() -> dict[str, Any]:
    """Request meta for a feed or sitemap: validators sent, a 304 passed to the callback."""
    return {META_KEY: True, "handle_httpstatus_list": [304]}


class UrlStateStore:
    """A little state per URL (here ``ETag`` and ``Last-Modified``), one JSON file each."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, url: str) -> Path:
        return self.folder / f"{hashlib.sha256(url.encode('utf-8')).hexdigest()[:32]}.json"

    def get(self, url: str) -> dict[str, str]:
        try:
            data = json.loads(self._path(url).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) and data.get("url") == url else {}

    def put(self, url: str, state: dict[str, str]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(url)
        partial = path.with_name(f"{path.name}.{os.getpid()}.part")
        partial.write_text(json.dumps({"url": url, **state}), encoding="utf-8")
        os.replace(partial, path)


class ConditionalRequestsMiddleware:
    def __init__(self, crawler: Crawler, store: UrlStateStore) -> None:
        self.crawler = crawler
        self.store = store
        self.pending: dict[str, dict[str, str]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("VEILLE_CONDITIONAL_REQUESTS"):
            raise NotConfigured("VEILLE_CONDITIONAL_REQUESTS is off")
        folder = crawler.settings.get("VEILLE_VALIDATORS_DIR") or (
            Environment.from_env().data_dir / "http-validators"
        )
        middleware = cls(crawler, UrlStateStore(Path(folder)))
        crawler.signals.connect(middleware.spider_closed, signal=signals.spider_closed)
        return middleware

    def process_request(self, request: Request) -> None:
        if not request.meta.get(META_KEY):
            return
        known = self.store.get(request.url)
        if known.get("etag"):
            request.headers.setdefault("If-None-Match", known["etag"])
        if known.get("last_modified"):
            request.headers.setdefault("If-Modified-Since", known["last_modified"])

    def process_response(self, request: Request, response: Response) -> Response:
        if not request.meta.get(META_KEY):
            return response
        if response.status == 304:
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("veille/not_modified")
        elif response.status == 200:
            validators = {
                key: response.headers[header].decode("latin-1")
                for key, header in (("etag", "ETag"), ("last_modified", "Last-Modified"))
                if response.headers.get(header)
            }
            if validators:
                self.pending[request.url] = validators
        return response

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if reason != "finished":
            return
        for url, validators in self.pending.items():
            self.store.put(url, validators)
