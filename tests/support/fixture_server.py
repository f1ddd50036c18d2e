"""Serve the fixture news sites under tests/fixtures/sites on 127.0.0.1.

One ``ThreadingHTTPServer`` per outlet directory, each on its own port, so every outlet
has its own base URL (``http://127.0.0.1:PORT``). Files are served as they are on disk,
except that the placeholders ``{{BASE}}`` (this outlet's base URL) and
``{{BASE:<outlet>}}`` (another outlet's base URL) are replaced at the byte level, so
files in legacy encodings stay intact.

Usage in tests::

    with FixtureSites() as sites:
        feed = sites.url("le-veilleur", "/feed.xml")
        ...
        assert "/robots.txt" in sites.requests("le-veilleur")

Manual crawling: ``python -m tests.support.fixture_server`` prints the base URLs and
serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import logging
import posixpath
import re
import socket
import sys
import threading
import time
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "sites"
MANIFEST_NAME = "manifest.yaml"
HEADERS_SUFFIX = ".headers"

_PLACEHOLDER = re.compile(rb"\{\{BASE(?::([A-Za-z0-9_.-]+))?\}\}")

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".rdf": "application/rdf+xml",
    ".json": "application/json",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
}


def _xml_content_type(data: bytes) -> str:
    """RSS, Atom or plain XML, from the document element near the top of the file."""
    head = data[:1024]
    if b"<rss" in head:
        return "application/rss+xml"
    if b"<feed" in head:
        return "application/atom+xml"
    if b"<rdf:RDF" in head:
        return "application/rdf+xml"
    return "application/xml"


def content_type_for(path: Path, data: bytes) -> str:
    suffix = path.suffix.lower()
    if suffix == ".xml":
        return _xml_content_type(data)
    return _TYPES.get(suffix, "application/octet-stream")


def read_sidecar_headers(path: Path) -> list[tuple[str, str]]:
    """Headers from ``<file>.headers`` ("Name: value" per line, # comments allowed).

    A ``Status: NNN`` line sets the response status instead of adding a header.
    """
    sidecar = path.with_name(path.name + HEADERS_SUFFIX)
    if not sidecar.is_file():
        return []
    headers = []
    for line in sidecar.read_text(encoding="ascii").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"{sidecar}: expected 'Name: value', got {line!r}")
        headers.append((name.strip(), value.strip()))
    return headers


class _OutletServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sites: FixtureSites, outlet: str, docroot: Path):
        self.sites = sites
        self.outlet = outlet
        self.docroot = docroot.resolve()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    # Track open (keep-alive) connections so that stop() really stops serving.
    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return  # a client that hung up early is not our problem
        log.exception(
            "fixture server %s: error handling request from %s", self.outlet, client_address
        )


class _Handler(BaseHTTPRequestHandler):
    server: _OutletServer
    server_version = "VeilleFixtureSites/1.0"
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections are closed after this many seconds

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.server.outlet, format % args)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _resolve(self, url_path: str) -> Path | None:
        """The file for a URL path (directories serve index.html), or None."""
        root = self.server.docroot
        norm = posixpath.normpath("/" + unquote(url_path).lstrip("/"))
        target = (root / norm.lstrip("/")).resolve()
        if not target.is_relative_to(root):
            return None
        if target.is_dir():
            target = target / "index.html"
        if target.name.endswith(HEADERS_SUFFIX) or not target.is_file():
            return None
        return target

    def _serve(self, send_body: bool) -> None:
        user_agent = self.headers.get("User-Agent", "")
        self.server.sites._record(self.server.outlet, self.path, user_agent)
        self.server.sites._wait_if_held(self.server.outlet, self.path, user_agent)
        url_path = urlsplit(self.path).path or "/"
        target = self._resolve(url_path)
        if (
            target is not None
            and target.name == "index.html"
            and not url_path.endswith(("/", "index.html"))
        ):
            # A directory asked for without its trailing slash: redirect, like real servers.
            location = self.server.sites.base_url(self.server.outlet) + url_path + "/"
            self._send_simple(HTTPStatus.MOVED_PERMANENTLY, send_body, [("Location", location)])
            return
        if target is None:
            self._send_simple(HTTPStatus.NOT_FOUND, send_body)
            return

        raw = target.read_bytes()
        data = self.server.sites.substitute(raw, self.server.outlet)
        mtime = int(target.stat().st_mtime)
        status = HTTPStatus.OK
        headers = {
            "Content-Type": content_type_for(target, raw),
            "Last-Modified": email.utils.formatdate(mtime, usegmt=True),
        }
        for name, value in read_sidecar_headers(target):
            if name.lower() == "status":
                status = HTTPStatus(int(value.split()[0]))
                continue
            # Replace a default header whatever the case of its name.
            for existing in [k for k in headers if k.lower() == name.lower()]:
                del headers[existing]
            headers[name] = value

        since = self.headers.get("If-Modified-Since")
        if since and status == HTTPStatus.OK:
            try:
                since_ts = email.utils.parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError):
                since_ts = None
            if since_ts is not None and mtime <= since_ts:
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.send_header("Last-Modified", headers["Last-Modified"])
                self.end_headers()
                return

        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def _send_simple(
        self, status: HTTPStatus, send_body: bool, extra: Iterable[tuple[str, str]] = ()
    ) -> None:
        body = f"{status.value} {status.phrase}\n".encode("ascii")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)


class Hold:
    """Requests held unanswered (see :meth:`FixtureSites.hold`): which arrived, and the release."""

    # A held request is answered after this long anyway, so a test that forgets to release its
    # hold cannot leave server threads behind for ever.
    LIMIT_S = 600

    def __init__(self, outlet: str, user_agent: str, path_prefix: str) -> None:
        self.outlet = outlet
        self.user_agent = user_agent
        self.path_prefix = path_prefix
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._paths: list[str] = []

    def matches(self, outlet: str, path: str, user_agent: str) -> bool:
        return (
            not self._released.is_set()
            and outlet == self.outlet
            and path.startswith(self.path_prefix)
            and self.user_agent in user_agent
        )

    def wait(self, path: str) -> None:
        with self._lock:
            self._paths.append(path)
        self._released.wait(self.LIMIT_S)

    @property
    def paths(self) -> list[str]:
        """Paths of the requests held so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._paths)

    def release(self) -> None:
        """Answer the held requests now, and hold no more."""
        self._released.set()


class FixtureSites:
    """All fixture outlets, each served by its own HTTP server on 127.0.0.1.

    ``root`` holds one directory per outlet (names starting with ``_`` or ``.`` are
    ignored) and, optionally, ``manifest.yaml``. ``outlets`` restricts which outlet
    directories are served.
    """

    def __init__(
        self,
        root: Path | str | None = None,
        *,
        host: str = "127.0.0.1",
        outlets: Iterable[str] | None = None,
        first_port: int | None = None,
    ) -> None:
        self.root = Path(root).resolve() if root is not None else DEFAULT_ROOT
        if not self.root.is_dir():
            raise FileNotFoundError(f"fixture sites root not found: {self.root}")
        self.host = host
        available = sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
        )
        if outlets is not None:
            wanted = list(outlets)
            unknown = sorted(set(wanted) - set(available))
            if unknown:
                raise ValueError(f"unknown outlets {unknown}; available: {available}")
            available = [name for name in available if name in wanted]
        self.outlets: list[str] = available
        manifest_path = self.root / MANIFEST_NAME
        self.manifest: dict[str, Any] = (
            yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
            if manifest_path.is_file()
            else {}
        )
        self._first_port = first_port
        self._servers: dict[str, _OutletServer] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._bases: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._requests: dict[str, list[tuple[str, str]]] = {name: [] for name in self.outlets}
        self._holds: list[Hold] = []

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> FixtureSites:
        if self._servers:
            return self
        try:
            for i, name in enumerate(self.outlets):
                port = 0 if self._first_port is None else self._first_port + i
                server = _OutletServer((self.host, port), self, name, self.root / name)
                self._servers[name] = server
                self._bases[name] = f"http://{self.host}:{server.server_address[1]}".encode()
            for name, server in self._servers.items():
                thread = threading.Thread(
                    target=server.serve_forever,
                    kwargs={"poll_interval": 0.1},
                    name=f"fixture-site-{name}",
                    daemon=True,
                )
                thread.start()
                self._threads[name] = thread
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for hold in self._holds:
            hold.release()
        for name, server in self._servers.items():
            thread = self._threads.get(name)
            if thread is not None and thread.is_alive():
                server.shutdown()  # blocks until serve_forever has returned
                thread.join(timeout=5)
            server.close_connections()
            server.server_close()
        self._servers.clear()
        self._threads.clear()
        self._bases.clear()

    def __enter__(self) -> FixtureSites:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------
    def base_url(self, outlet: str) -> str:
        """``http://127.0.0.1:PORT`` of a running outlet (no trailing slash)."""
        try:
            return self._bases[outlet].decode()
        except KeyError:
            raise KeyError(f"outlet {outlet!r} is not being served ({self.outlets})") from None

    def url(self, outlet: str, path: str = "/") -> str:
        """Absolute URL of ``path`` (which may carry a query string) on ``outlet``."""
        if not path.startswith("/"):
            path = "/" + path
        return self.base_url(outlet) + path

    def feed_url(self, outlet: str) -> str:
        """Absolute URL of the outlet's feed, as given in the manifest."""
        return self.url(outlet, self.manifest["outlets"][outlet]["feed"])

    def outlet_for_url(self, url: str) -> str | None:
        """Which outlet serves ``url`` (by scheme, host and port), or None."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".encode()
        for name, base in self._bases.items():
            if base == origin:
                return name
        return None

    def pages(self, outlet: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Manifest pages, optionally for one outlet and matching ``key=value`` filters."""
        out = []
        for page in self.manifest.get("pages", []):
            if outlet is not None and page["outlet"] != outlet:
                continue
            if all(page.get(k) == v for k, v in filters.items()):
                out.append(page)
        return out

    def substitute(self, data: bytes, outlet: str) -> bytes:
        """Replace ``{{BASE}}`` / ``{{BASE:<outlet>}}`` placeholders in ``data``.

        A placeholder naming an outlet that is not being served is left as it is.
        """

        def repl(match: re.Match[bytes]) -> bytes:
            name = match.group(1)
            key = outlet if name is None else name.decode()
            return self._bases.get(key, match.group(0))

        return _PLACEHOLDER.sub(repl, data)

    # -- request log ---------------------------------------------------------------
    def _record(self, outlet: str, path: str, user_agent: str) -> None:
        with self._lock:
            self._requests.setdefault(outlet, []).append((path, user_agent))

    def requests(self, outlet: str, user_agent: str | None = None) -> list[str]:
        """Request paths (with query strings) the outlet received, in order (a copy); only
        those whose User-Agent contains ``user_agent`` when it is given."""
        with self._lock:
            return [
                path
                for path, agent in self._requests.get(outlet, [])
                if user_agent is None or user_agent in agent
            ]

    # -- holding responses -----------------------------------------------------------
    def hold(self, outlet: str, *, user_agent: str, path_prefix: str = "/") -> Hold:
        """Answer no request of ``outlet`` under ``path_prefix`` whose User-Agent contains
        ``user_agent`` until the hold is released: the client keeps those pages in flight."""
        hold = Hold(outlet, user_agent, path_prefix)
        with self._lock:
            self._holds.append(hold)
        return hold

    def _wait_if_held(self, outlet: str, path: str, user_agent: str) -> None:
        with self._lock:
            holds = [hold for hold in self._holds if hold.matches(outlet, path, user_agent)]
        for hold in holds:
            hold.wait(path)

    def clear_requests(self, outlet: str | None = None) -> None:
        with self._lock:
            if outlet is None:
                for paths in self._requests.values():
                    paths.clear()
            else:
                self._requests.get(outlet, []).clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.fixture_server",
        description="Serve the fixture news sites on 127.0.0.1 until Ctrl-C.",
    )
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="fixture sites directory")
    parser.add_argument(
        "--first-port",
        type=int,
        default=None,
        help="serve outlets on consecutive ports from this one (default: free ports)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s"
    )
    with FixtureSites(args.root, first_port=args.first_port) as sites:
        for name in sites.outlets:
            info = sites.manifest.get("outlets", {}).get(name, {})
            feed = info.get("feed", "")
            print(f"{name:20} {sites.base_url(name)}/   feed: {sites.base_url(name)}{feed}")
        print("Serving; press Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
