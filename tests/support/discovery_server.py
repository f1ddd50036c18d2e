"""A server on 127.0.0.1 that answers like the discovery endpoints, for tests.

It serves tests/fixtures/discovery (written by us) and plays, by path:

- ``/api/v2/doc/doc``      GDELT DOC 2.0: ``gdelt/<sourcelang>.json`` for the ``sourcelang:``
                           named in ``query``, ``{}`` (GDELT's "nothing found") otherwise;
- ``/rss/search``          Google News RSS search: ``google-news/<hl>.rss``;
- ``/rss/articles/<id>``   a Google News article link: a 302 to the publisher page listed in
                           ``google-news/redirects.yaml``;
- ``/news/search``         Bing News RSS: ``bing-news/<setlang>.rss``;
- anything else            the file at that path; ``X.gz`` serves ``X`` gzip-compressed.

Placeholders in served files: ``{{BASE:<outlet>}}`` (a fixture site's base URL),
``{{SELF}}`` (this server), ``{{URLENC:<outlet>:<path>}}`` (a fixture page's URL,
percent-encoded as in a Bing click link), ``{{GNEWS:<outlet>:<path>}}`` (a Google News article
link whose id carries the page's URL, as older ids do).

Files answer with an ``ETag`` and honour ``If-None-Match`` (304). :meth:`DiscoveryServer.fail`
makes the next answers of one path an error status (429 with ``Retry-After``, 503, …).
Every request is recorded with its time and headers.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import yaml

from tests.support.fixture_server import FixtureSites

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "discovery"
_TOKEN = re.compile(rb"\{\{(SELF|URLENC|GNEWS)(?::([A-Za-z0-9_.-]+):([^}]+))?\}\}")
_TYPES = {
    ".xml": "application/xml",
    ".rss": "application/rss+xml; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}


def google_article_id(url: str) -> str:
    """An article id in Google News's older form: a small protobuf message holding the URL."""
    data = url.encode("utf-8")
    length, prefix = len(data), b""
    while True:
        byte = length & 0x7F
        length >>= 7
        prefix += bytes([byte | (0x80 if length else 0)])
        if not length:
            break
    return base64.urlsafe_b64encode(b"\x08\x13\x22" + prefix + data).decode().rstrip("=")


@dataclass
class Seen:
    path: str
    at: float
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        owner._record(self.path, dict(self.headers.items()))
        parts = urlsplit(self.path)
        failure = owner._failure(parts.path)
        if failure is not None:
            status, headers = failure
            self._send(status, b"slow down\n", "text/plain; charset=utf-8", headers)
            return
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/api/v2/doc/doc":
            lang = re.search(r"sourcelang:(\w+)", params.get("query", ""))
            self._file(f"gdelt/{lang.group(1)}.json" if lang else "", fallback=b"{}")
        elif parts.path == "/rss/search":
            self._file(f"google-news/{params.get('hl', '')}.rss")
        elif parts.path.startswith("/rss/articles/"):
            article = parts.path.rsplit("/", 1)[1]
            target = owner.redirects.get(article)
            if target is None:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")
            else:
                location = owner.sites.url(target["outlet"], target["path"])
                self._send(302, b"", "text/plain; charset=utf-8", {"Location": location})
        elif parts.path == "/news/search":
            self._file(f"bing-news/{params.get('setlang', '')}.rss")
        else:
            self._file(parts.path.lstrip("/"))

    def _file(self, name: str, fallback: bytes | None = None) -> None:
        owner = self.server.owner
        compress = name.endswith(".gz")
        path = (ROOT / name.removesuffix(".gz")).resolve()
        if not name or not path.is_relative_to(ROOT) or not path.is_file():
            if fallback is not None:
                self._send(200, fallback, "application/json; charset=utf-8")
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")
            return
        body = owner.substitute(path.read_bytes())
        content_type = _TYPES.get(path.suffix, "application/octet-stream")
        if compress:
            body = gzip.compress(body, mtime=0)
            content_type = "application/x-gzip"
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self._send(304, b"", None, {"ETag": etag})
            return
        self._send(200, body, content_type, {"ETag": etag})

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: DiscoveryServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)


class DiscoveryServer:
    """The discovery endpoints on one port of 127.0.0.1, pointing at the fixture sites."""

    def __init__(self, sites: FixtureSites) -> None:
        self.sites = sites
        self.redirects: dict[str, dict[str, str]] = yaml.safe_load(
            (ROOT / "google-news" / "redirects.yaml").read_text(encoding="utf-8")
        )
        self._server: _Server | None = None
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        self._failures: dict[str, list[tuple[int, dict[str, str]]]] = {}

    def __enter__(self) -> DiscoveryServer:
        self._server = _Server(self)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def substitute(self, data: bytes) -> bytes:
        def replace(match: re.Match[bytes]) -> bytes:
            kind = match.group(1)
            if kind == b"SELF":
                return self.base_url.encode()
            page = self.sites.url(match.group(2).decode(), match.group(3).decode())
            if kind == b"URLENC":
                return quote(page, safe="").encode()
            return f"{self.base_url}/rss/articles/{google_article_id(page)}?oc=5".encode()

        return self.sites.substitute(_TOKEN.sub(replace, data), "")

    def fail(self, path: str, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """The next ``times`` requests for ``path`` answer ``status`` (with ``Retry-After``)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self._lock:
            self._failures.setdefault(path, []).extend([(status, headers)] * times)

    def _failure(self, path: str) -> tuple[int, dict[str, str]] | None:
        with self._lock:
            queue = self._failures.get(path)
            return queue.pop(0) if queue else None

    def _record(self, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self._seen.append(Seen(path, time.monotonic(), headers))

    def requests(self, path: str | None = None) -> list[Seen]:
        """Requests received (``path``: only those whose path, without query, is this)."""
        with self._lock:
            return [s for s in self._seen if path is None or s.path.split("?")[0] == path]

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()
