"""The SSRF guard: no request for loopback, private, link-local, multicast or reserved addresses.

The spellings are checked on the guard's own functions (so a broken guard can never send a
test's traffic anywhere); the crawl tests stay on 127.0.0.0/8: a news site on 127.0.0.1 (allowed
explicitly, as every test does) whose links and redirects lead to a trap server on 127.0.0.2
(loopback, not allowed), which must never see a request.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from crawler.middlewares.ssrf import (
    SsrfGuardMiddleware,
    allowed_networks,
    parse_address,
    parse_networks,
    refusal,
    resolve,
)
from tests.support.runner import FAST_CRAWL, ROOT, clean_env, run_veille
from veille.core.config import ConfigError


def _guard(allowed: list[str]) -> SsrfGuardMiddleware:
    """The guard's judgement alone (no crawler: nothing is counted or fetched)."""
    return SsrfGuardMiddleware(crawler=None, allowed=parse_networks(allowed, "test"))  # type: ignore[arg-type]


REFUSED = {
    "127.0.0.1": "loopback",
    "127.0.0.1.": "loopback",
    "2130706433": "loopback",  # decimal
    "0x7f000001": "loopback",  # hexadecimal
    "0177.0.0.1": "loopback",  # octal
    "0x7f.1": "loopback",  # short hexadecimal
    "127.1": "loopback",  # short
    "017700000001": "loopback",  # octal, one number
    "10.0.0.1": "private",
    "012.0.0.1": "private",  # octal 10.0.0.1
    "172.16.5.4": "private",
    "192.168.1.20": "private",
    "3232235796": "private",  # decimal 192.168.1.20
    "169.254.169.254": "link-local",  # cloud metadata
    "0xa9.0xfe.0xa9.0xfe": "link-local",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "0.0.0.0": "unspecified",
    "0": "unspecified",
    "0x": "unspecified",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "100.64.0.1": "not public",  # carrier-grade NAT
    "[::1]": "loopback",
    "[::]": "unspecified",
    "[0:0:0:0:0:0:0:1]": "loopback",
    "[fe80::1]": "link-local",
    "[fe80::1%25eth0]": "link-local",
    "[fc00::1]": "private",
    "[fd12:3456::1]": "private",
    "[ff02::1]": "multicast",
    "[fec0::1]": "site-local",
    "[::ffff:127.0.0.1]": "loopback",  # IPv4-mapped
    "[::ffff:7f00:1]": "loopback",
    "[::ffff:10.0.0.1]": "private",
    "[::ffff:169.254.169.254]": "link-local",
    "[2002:7f00:1::]": "loopback",  # 6to4 around 127.0.0.1
    "[2002:a00:1::]": "private",  # 6to4 around 10.0.0.1
    "[::127.0.0.1]": "reserved",  # IPv4-compatible
    "[64:ff9b::a00:1]": "reserved",  # NAT64 around 10.0.0.1
}


@pytest.mark.parametrize("host", list(REFUSED))
def test_every_spelling_of_a_refused_address_is_refused(host):
    address = parse_address(host)
    assert address is not None, f"{host} was not read as an address"
    assert refusal(address) == REFUSED[host]
    assert _guard([]).judge([address]) is not None


@pytest.mark.parametrize(
    "host",
    [
        "93.184.216.34",
        "1558505506",
        "0x5db8d822",
        "[2606:4700:4700::1111]",
        "[::ffff:93.184.216.34]",
    ],
)
def test_public_addresses_in_any_spelling_are_fetched(host):
    address = parse_address(host)
    assert address is not None and refusal(address) is None


@pytest.mark.parametrize("host", ["news.example.org", "127.0.0.1.nip.io", "1.2.3.4.5", "08.0.0.1"])
def test_names_that_are_not_addresses_are_resolved_instead(host):
    assert parse_address(host) is None


def test_a_host_name_resolving_to_loopback_is_refused():
    reason = _guard([]).judge(resolve("localhost", 80))
    assert reason is not None and "loopback" in reason


def test_allowed_networks_let_only_their_own_range_through():
    guard = _guard(["127.0.0.1/32"])
    for host in ["127.0.0.1", "2130706433", "0x7f.1", "[::ffff:127.0.0.1]"]:
        assert guard.judge([parse_address(host)]) is None, host
    for host in ["127.0.0.2", "[::1]", "10.0.0.1"]:
        assert guard.judge([parse_address(host)]) is not None, host


def test_allowed_networks_come_from_the_setting_and_the_environment(monkeypatch):
    monkeypatch.setenv("VEILLE_ALLOWED_NETWORKS", "10.20.0.0/16, fd00::/8")
    networks = allowed_networks(["127.0.0.1/32"])
    assert networks == [
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.20.0.0/16"),
        ipaddress.ip_network("fd00::/8"),
    ]


def test_a_wrong_allowed_network_is_a_configuration_error_naming_the_setting(monkeypatch):
    monkeypatch.setenv("VEILLE_ALLOWED_NETWORKS", "10.0.0.0/33")
    with pytest.raises(ConfigError) as error:
        allowed_networks([])
    assert "VEILLE_ALLOWED_NETWORKS" in str(error.value) and "(environment)" in str(error.value)


# --- Crawls on 127.0.0.0/8 -----------------------------------------------------------------

ARTICLE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Relay News: overseas police stations inquiry</title></head><body><article>
<h1>Overseas police stations inquiry reaches a new stage</h1>
<p>Investigators looking into the Chinese overseas police stations listed by Safeguard Defenders
said on Tuesday that their inquiry had reached a new stage, with interviews planned in three
cities where community associations are said to have hosted the offices.</p>
<p>Members of the diaspora described calls from volunteers who asked about relatives at home,
a pattern rights groups call transnational repression. The embassy denied the accusations and
said the centres only helped citizens renew documents during the pandemic.</p>
<p>Lawyers following the case said charges would be hard to lay because the conduct described,
phone calls and visits, rarely fits existing offences, and that a foreign influence registry
would give police a clearer tool in future cases.</p>
</article></body></html>"""


class _Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, routes: dict[str, tuple[int, dict[str, str], str]]) -> None:
        self.routes = routes
        self.seen: list[str] = []
        super().__init__((host, 0), _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    server: _Recorder

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(self.path)
        status, headers, body = self.server.routes.get(self.path, (404, {}, "not found"))
        data = body.encode("utf-8")
        self.send_response(status)
        for name, value in {"Content-Length": str(len(data)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _serve(server: _Recorder) -> _Recorder:
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    ).start()
    return server


# The trap's pages: one per spelling of its address, and one linked directly from the feed.
TRAP_PATHS = ("/direct", "/dotted", "/decimal", "/hex", "/mapped")


@pytest.fixture
def relay() -> Iterator[tuple[_Recorder, _Recorder]]:
    """A site on 127.0.0.1 whose links and redirects point at a trap on 127.0.0.2."""
    trap = _serve(_Recorder("127.0.0.2", {}))
    trap.routes.update({path: (200, {"Content-Type": "text/html"}, ARTICLE) for path in TRAP_PATHS})
    port = trap.port
    # Each spelling leads to its own path: Scrapy rewrites the decimal and hexadecimal hosts to
    # 127.0.0.2 when it builds the request, and requests for one URL would be filtered as
    # duplicates of whichever came first.
    hostile = {
        "/to-dotted": f"http://127.0.0.2:{port}/dotted",
        "/to-decimal": f"http://2130706434:{port}/decimal",
        "/to-hex": f"http://0x7f.0.0.2:{port}/hex",
        "/to-mapped": f"http://[::ffff:127.0.0.2]:{port}/mapped",
    }
    site = _Recorder("127.0.0.1", {})
    base = f"http://127.0.0.1:{site.port}"
    links = [f"{base}/good.html", f"http://127.0.0.2:{port}/direct", *(base + p for p in hostile)]
    items = "".join(
        f"<item><title>Story {n}</title><link>{url}</link></item>" for n, url in enumerate(links)
    )
    feed = f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'
    site.routes.update(
        {
            "/feed.xml": (200, {"Content-Type": "application/rss+xml"}, feed),
            "/good.html": (200, {"Content-Type": "text/html; charset=utf-8"}, ARTICLE),
            **{path: (302, {"Location": target}, "") for path, target in hostile.items()},
        }
    )  # fmt: skip
    _serve(site)
    yield site, trap
    for server in (site, trap):
        server.shutdown()
        server.server_close()


def _crawl(tmp_path: Path, site: _Recorder, es_url: str, prefix: str, *settings: str) -> dict:
    config = tmp_path / "config"
    config.mkdir()
    source = {"name": "relay-news", "type": "feed", "language": "en",
              "urls": [f"http://127.0.0.1:{site.port}/feed.xml"]}  # fmt: skip
    (config / "sources.yaml").write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
    (config / "topics").symlink_to(ROOT / "config" / "topics")
    env = clean_env(
        VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=prefix, VEILLE_DATA_DIR=str(tmp_path / "data"),
        VEILLE_CONFIG=str(config),
    )  # fmt: skip
    stats = tmp_path / "stats.json"
    done = run_veille("crawl", "--all", *settings, "--set", f"VEILLE_STATS_FILE={stats}", "-v",
                      env=env)  # fmt: skip
    return {"stats": json.loads(stats.read_text()), "log": done.stderr}


def test_links_and_redirects_to_refused_addresses_never_reach_them(
    relay, tmp_path, es_url, index_prefix
):
    site, trap = relay
    crawl = _crawl(tmp_path, site, es_url, index_prefix, *FAST_CRAWL)
    assert trap.seen == []
    # the allowed site itself was crawled: its article page and each redirect were fetched
    assert {"/feed.xml", "/good.html", "/to-dotted", "/to-decimal", "/to-hex",
            "/to-mapped"} <= set(site.seen)  # fmt: skip
    assert crawl["stats"]["veille/pages_fetched"] == 1
    # every spelling was refused, each once: none was left out as a duplicate of another
    assert crawl["stats"]["veille/dropped/blocked_address"] == len(TRAP_PATHS)
    refused = [line for line in crawl["log"].splitlines() if "refused http" in line]
    for path in TRAP_PATHS:
        assert len([line for line in refused if f":{trap.port}{path}: " in line]) == 1, path


def test_a_loopback_feed_is_refused_unless_its_network_is_allowed(
    relay, tmp_path, es_url, index_prefix
):
    site, trap = relay
    pairs = zip(FAST_CRAWL[::2], FAST_CRAWL[1::2], strict=True)
    no_allowance = [part for pair in pairs if "ALLOWED" not in pair[1] for part in pair]
    crawl = _crawl(tmp_path, site, es_url, index_prefix, *no_allowance)
    assert site.seen == [] and trap.seen == []
    assert crawl["stats"]["veille/feeds/failed"] == 1
    assert "127.0.0.1 is a loopback address" in crawl["log"]
