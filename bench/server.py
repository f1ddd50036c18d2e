"""A fast HTTP server for the synthetic corpus, on 127.0.0.1, in its own process.

In:  the corpus size and seed (:func:`bench.corpus.build_corpus` builds the pages in the server
     process, so no page crosses a pipe).
Out: :class:`CorpusServer`, a context manager with ``base_url`` and ``requests()`` (how many
     requests the server answered); with ``sites=True`` also ``site_urls``: each outlet as a
     site of its own on its own port (``Corpus.site_pages``: a home page announcing one feed
     of all the outlet's articles, whose links point to that port), for crawlers that start
     from a site's home page. Every port serves every page of the corpus as well.

The server is a small asyncio HTTP/1.1 responder with keep-alive that answers GET and HEAD from
a dict in memory; it runs in a separate process so that it never competes with the crawl for
the crawl's GIL. Unknown paths get 404.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
from collections import ChainMap
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Self

from bench.corpus import OUTLET_NAMES, build_corpus

_REASONS = {200: b"OK", 404: b"Not Found", 405: b"Method Not Allowed"}


class _Responder(asyncio.Protocol):
    def __init__(self, pages: Mapping[str, tuple[str, bytes]], counter: list[int]) -> None:
        self.pages = pages
        self.counter = counter
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            method, _, rest = lines[0].partition(b" ")
            target = rest.rpartition(b" ")[0].decode("latin-1").split("?")[0]
            close = any(line.lower() == b"connection: close" for line in lines[1:])
            self.respond(method, target, close)

    def respond(self, method: bytes, target: str, close: bool) -> None:
        assert self.transport is not None
        self.counter[0] += 1
        if method not in (b"GET", b"HEAD"):
            status, kind, body = 405, "text/plain", b"GET only\n"
        elif target in self.pages:
            status, (kind, body) = 200, self.pages[target]
        else:
            status, kind, body = 404, "text/plain", b"not found\n"
        header = (
            f"HTTP/1.1 {status} ".encode()
            + _REASONS[status]
            + f"\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n".encode()
            + (b"Connection: close\r\n\r\n" if close else b"Connection: keep-alive\r\n\r\n")
        )
        self.transport.write(header if method == b"HEAD" else header + body)
        if close:
            self.transport.close()


def _listener() -> tuple[socket.socket, str]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    return listener, f"http://127.0.0.1:{listener.getsockname()[1]}"


def _serve(count: int, seed: int, sites: bool, pipe: Connection) -> None:
    listener, base_url = _listener()
    corpus = build_corpus(count, seed, base_url)
    pages = corpus.pages
    listeners = [(listener, pages)]
    site_urls = {}
    if sites:
        for outlet in OUTLET_NAMES:
            site, site_urls[outlet] = _listener()
            listeners.append((site, ChainMap(corpus.site_pages(outlet, site_urls[outlet]), pages)))
    counter = [0]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        servers = [
            await loop.create_server(lambda served=served: _Responder(served, counter), sock=sock)
            for sock, served in listeners
        ]
        pipe.send((base_url, site_urls))
        reader = asyncio.Event()
        loop.add_reader(pipe.fileno(), reader.set)
        try:
            while True:
                await reader.wait()
                reader.clear()
                if pipe.recv() == "stop":
                    return
                pipe.send(counter[0])
        finally:
            for server in servers:
                server.close()

    asyncio.run(main())


class CorpusServer:
    """``with CorpusServer(2000) as server: server.base_url`` serves 2,000 articles and feeds."""

    def __init__(self, count: int, seed: int = 2022, sites: bool = False) -> None:
        self.count, self.seed, self.sites = count, seed, sites
        self.base_url = ""
        self.site_urls: dict[str, str] = {}

    def __enter__(self) -> Self:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(self.count, self.seed, self.sites, child), daemon=True
        )
        self._process.start()
        if not self._pipe.poll(300):
            self._process.kill()
            raise RuntimeError("the corpus server did not start within 300 s")
        self.base_url, self.site_urls = self._pipe.recv()
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def requests(self) -> int:
        """How many requests the server has answered so far."""
        self._pipe.send("count")
        return int(self._pipe.recv())

    def __exit__(self, *exc: object) -> None:
        self._pipe.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
