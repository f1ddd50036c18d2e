"""A hostile publisher on 127.0.0.1: the inputs that have attacked the crawler, built on demand,
and a server that sends them as an attacker would (chunked, endless, compressed, redirected,
dripped), with a trap on 127.0.0.2 that counts every connection it gets.

Nothing here is stored in the repository: each generator builds its input from its parameters.
``bench/hostile.py`` measures the same inputs before and after (peak memory, time).

Generators (bytes for feeds, sitemaps and JSON, text for pages):

- :func:`ordinary_feed`, :func:`ordinary_page`: the baselines, an RSS feed with escaped-HTML
  summaries and an article page, of the size asked;
- :func:`entity_bomb_feed`: one internal entity of ``width`` characters referenced
  ``references`` times (what feedparser's loose parser used to expand to gigabytes);
- :func:`billion_laughs_feed`, :func:`external_entity_feed`: nested and external entities;
- :func:`comment_storm_feed`: escaped ``<!--`` in a summary, which feedparser's sanitizer reads in
  time that grows with the square of its length;
- :func:`span_storm_page`: one paragraph of ``count`` ``<span>`` elements, on which an XPath of
  trafilatura takes time in the square of the count, inside libxml2 (C code);
- :func:`table_page`: a page whose extraction needs about 150 bytes of memory per byte;
- :func:`deep_json_ld_page`, :func:`deep_gdelt_json`: JSON nested deeper than Python recurses;
- :func:`gzip_bomb`, :func:`deflate_bomb`, :func:`brotli_bomb`: small bodies that inflate to
  ``size`` bytes.
"""

from __future__ import annotations

import html
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import brotli

ARTICLE_TEXT = "".join(
    f"<p>{sentence}</p>"
    for sentence in (
        "Police in Montreal confirmed on Monday that the RCMP is investigating two alleged "
        "overseas police stations linked to the public security bureau of Fuzhou.",
        "Residents of the South Shore reported visits and phone calls urging relatives to "
        "return to China, according to community groups who met investigators last week.",
        "The centres presented themselves as volunteer offices helping citizens renew driving "
        "licences, a service that consulates already provide to anyone who asks.",
        "Safeguard Defenders, the organisation that first listed the stations, counted more "
        "than one hundred of them in fifty countries, several of them in Canada.",
        "Lawyers following the case said charges would be hard to lay, because the conduct "
        "described rarely fits existing offences under the criminal code.",
        "A foreign influence registry, debated in Ottawa for two years, would give the police "
        "a clearer tool against such pressure in future cases, its supporters argue.",
    )
)


def article_page(title: str = "Overseas police stations under investigation") -> str:
    """An ordinary on-topic article page, long enough to be one."""
    return (
        f"<html><head><title>{html.escape(title)}</title></head><body><article>"
        f"<h1>{html.escape(title)}</h1>{ARTICLE_TEXT}</article></body></html>"
    )


def ordinary_page(size: int) -> str:
    """An article page of about ``size`` characters of ordinary paragraphs, all different."""
    paragraphs, total, n = [], 0, 0
    while total < size:
        paragraph = f"<p>Paragraph {n}: {ARTICLE_TEXT[3:-4]}</p>"
        paragraphs.append(paragraph)
        total += len(paragraph)
        n += 1
    return (
        "<html><head><title>A long article</title></head><body><article><h1>A long article"
        f"</h1>{''.join(paragraphs)}</article></body></html>"
    )


def _rss(items: str, head: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{head}<rss version="2.0"><channel>'
        f"<title>Hostile Herald</title><link>http://127.0.0.1/</link><description>news"
        f"</description>{items}</channel></rss>"
    ).encode()


def feed_of(links: list[str], published: datetime | None = None) -> bytes:
    """An RSS feed listing ``links``, one entry each, an hour apart."""
    newest = published or datetime.now(UTC)
    items = "".join(
        f"<item><title>Police stations story {n}</title><link>{html.escape(link)}</link>"
        f"<pubDate>{format_datetime(newest - timedelta(hours=n))}</pubDate></item>"
        for n, link in enumerate(links)
    )
    return _rss(items)


def ordinary_feed(size: int) -> bytes:
    """An RSS feed of about ``size`` bytes: entries with titles, links, dates, HTML summaries."""
    items, total, n = [], 0, 0
    while total < size:
        item = (
            f"<item><title>Police station story number {n} in Montreal</title>"
            f"<link>http://example.org/news/{n}.html</link>"
            f"<guid>http://example.org/news/{n}.html</guid>"
            f"<pubDate>Mon, 02 Mar 2026 06:{n % 60:02d}:00 GMT</pubDate>"
            f"<description>{html.escape(ARTICLE_TEXT)}</description></item>"
        )
        items.append(item)
        total += len(item)
        n += 1
    return _rss("".join(items))


def _one_item(description: str, head: str = "") -> bytes:
    return _rss(
        "<item><title>Story</title><link>http://example.org/news/a.html</link>"
        f"<description>{description}</description></item>",
        head,
    )


def entity_bomb_feed(references: int = 10_000, width: int = 100_000) -> bytes:
    """A feed of about ``5 × references`` bytes whose one entity expands to ``references ×
    width`` characters (the declaration must start a line for feedparser to keep it)."""
    head = f'\n<!DOCTYPE rss [\n<!ENTITY big "{"A" * width}">\n]>\n'
    return _one_item("&big;" * references, head)


def billion_laughs_feed(levels: int = 10) -> bytes:
    declarations = '<!ENTITY lol0 "lol">\n' + "".join(
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">\n' for n in range(1, levels)
    )
    return _one_item(f"&lol{levels - 1};", f"\n<!DOCTYPE rss [\n{declarations}]>\n")


def external_entity_feed(path: str = "/etc/passwd") -> bytes:
    head = f'\n<!DOCTYPE rss [\n<!ENTITY secret SYSTEM "file://{path}">\n]>\n'
    return _one_item("&secret;", head)


def comment_storm_feed(size: int) -> bytes:
    """A well-formed feed whose summary is ``<!--`` escaped, again and again."""
    return _one_item("&lt;!--" * (size // 7))


def span_storm_page(count: int) -> str:
    return (
        "<html><head><title>Spans</title></head><body><article><h1>Spans</h1><p>"
        + "<span>w</span> " * count
        + "</p>"
        + ARTICLE_TEXT
        + "</article></body></html>"
    )


def table_page(rows: int) -> str:
    return (
        "<html><head><title>Table</title></head><body><article><h1>Table</h1><table>"
        + "<tr><td>a</td><td>b</td></tr>" * rows
        + "</table>"
        + ARTICLE_TEXT
        + "</article></body></html>"
    )


def deep_json_ld_page(depth: int = 100_000) -> str:
    page = article_page()
    script = f'<script type="application/ld+json">{"[" * depth}</script>'
    return page.replace("</head>", script + "</head>")


def deep_gdelt_json(depth: int = 100_000) -> bytes:
    return b'{"articles": ' + b"[" * depth


def gzip_bomb(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return _compress(compressor, size)


def deflate_bomb(size: int) -> bytes:
    return _compress(zlib.compressobj(9), size)


def brotli_bomb(size: int) -> bytes:
    return brotli.compress(b"\0" * size, quality=5)


def _compress(compressor: zlib._Compress, size: int) -> bytes:
    block = b"\0" * (1 << 20)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + compressor.flush()


# --- The server ------------------------------------------------------------------------------


@dataclass
class Route:
    """What one path answers: ``body`` (bytes, or a function yielding chunks, sent chunked),
    ``status``, ``headers``; ``drip``: seconds between one-byte writes (slowloris)."""

    body: bytes | Callable[[], Iterator[bytes]] = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    drip: float = 0.0


def endless() -> Iterator[bytes]:
    """A body that never ends, 64 KiB at a time."""
    chunk = b"<p>" + b"A" * 65_530 + b"</p>"
    while True:
        yield chunk


class _Handler(BaseHTTPRequestHandler):
    server: HostileServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(self.path)
        route = self.server.routes.get(self.path)
        if route is None:
            route = Route(b"User-agent: *\nAllow: /\n" if self.path == "/robots.txt" else b"",
                          404 if self.path != "/robots.txt" else 200)  # fmt: skip
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        try:
            if callable(route.body):
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in route.body():
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
                return
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            if not route.drip:
                self.wfile.write(route.body)
                return
            for byte in route.body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(route.drip)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the crawler hung up: that is what it should do


class HostileServer(ThreadingHTTPServer):
    """``with HostileServer(routes) as site:`` serves ``routes`` on 127.0.0.1; ``site.url(p)``."""

    daemon_threads = True

    def __init__(self, routes: dict[str, Route] | None = None, host: str = "127.0.0.1") -> None:
        self.routes = dict(routes or {})
        self.seen: list[str] = []
        super().__init__((host, 0), _Handler)

    def url(self, path: str) -> str:
        return f"http://{self.server_address[0]}:{self.server_address[1]}{path}"

    def __enter__(self) -> HostileServer:
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class Trap:
    """A listener on 127.0.0.2 that counts connections; the crawler must never make one."""

    def __enter__(self) -> Trap:
        self.sock = socket.create_server(("127.0.0.2", 0))
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
