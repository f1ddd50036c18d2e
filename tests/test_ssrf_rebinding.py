"""DNS rebinding: a name that answers a public address to the SSRF guard and an internal one to the
connection is never connected to (crawler/resolver.py).

The crawls run ``veille crawl`` in a subprocess whose guard sees a fake internet DNS, where
``localhost`` answers a public address, while the connection resolves ``localhost`` as the system
does, to 127.0.0.1: a fixture outlet served as ``http://localhost:PORT`` plays the internal
service. The resolvers are also checked alone, with names put in Scrapy's DNS cache or answered
by a stub standing in for Twisted's resolver.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest
from scrapy.resolver import HostResolution, dnscache
from scrapy.settings import Settings
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IHostnameResolver, IHostResolution, IResolutionReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from crawler.middlewares.ssrf import refused_at_connection
from crawler.resolver import PublicAddressHostnameResolver, PublicAddressResolver
from tests.support.fixture_server import FixtureSites
from tests.support.runner import FAST_CRAWL, ROOT, SITES, clean_env, write_config

OUTLET = "northern-ledger"
FEED = "/atom.xml"

# The guard's view of the internet's DNS (crawler.middlewares.ssrf.resolve): `localhost` answers
# a public address. Nothing else is changed: connections still resolve it to 127.0.0.1.
REBINDING_DNS = """
import ipaddress
from crawler.middlewares import ssrf

system_resolve = ssrf.resolve

def internet_resolve(host, port):
    if host == "localhost":
        return [ipaddress.ip_address("93.184.216.34")]
    return system_resolve(host, port)

ssrf.resolve = internet_resolve
from veille.cli import main
main()
"""

_pairs = zip(FAST_CRAWL[::2], FAST_CRAWL[1::2], strict=True)
# Our fixture outlets, fast, with 127.0.0.1 not allowed; retries after a failed lookup soon.
LOOPBACK_REFUSED = [part for pair in _pairs if "ALLOWED" not in pair[1] for part in pair]
LOOPBACK_REFUSED += ["--set", "VEILLE_RETRY_BACKOFF_BASE=0.1"]


@pytest.fixture
def internal() -> Iterator[FixtureSites]:
    """One fixture outlet served as ``http://localhost:PORT``."""
    with FixtureSites(SITES, host="localhost", outlets=[OUTLET]) as sites:
        yield sites


def _crawl(tmp_path: Path, sites: FixtureSites, es_url: str, prefix: str, *settings: str) -> dict:
    config = write_config(tmp_path / "config", sites, [OUTLET])
    env = clean_env(
        VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=prefix, VEILLE_DATA_DIR=str(tmp_path / "data"),
        VEILLE_CONFIG=str(config),
    )  # fmt: skip
    stats = tmp_path / "stats.json"
    done = subprocess.run(
        [sys.executable, "-c", REBINDING_DNS, "crawl", "--all", *settings,
         "--set", f"VEILLE_STATS_FILE={stats}", "-v"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert stats.is_file(), done.stderr
    return {"stats": json.loads(stats.read_text()), "log": done.stderr}


@pytest.mark.parametrize("retry", ["true", "false"])
def test_a_name_rebound_to_loopback_when_connecting_is_never_connected_to(
    retry, internal, tmp_path, es_url, index_prefix
):
    """Counted whether the failed lookup is retried (the guard then refuses the retry) or not."""
    retry_enabled = ["--set", f"RETRY_ENABLED={retry}"]
    crawl = _crawl(tmp_path, internal, es_url, index_prefix, *LOOPBACK_REFUSED, *retry_enabled)
    assert internal.requests(OUTLET) == []
    assert crawl["stats"]["veille/dropped/blocked_address"] == 2  # robots.txt and the feed
    assert crawl["stats"]["veille/feeds/failed"] == 1
    robots = f"refused {internal.url(OUTLET, '/robots.txt')}: the addresses of localhost are not"
    assert f"{robots} public (127.0.0.1 is a loopback address)" in crawl["log"]


def test_with_scrapys_own_resolver_the_rebound_name_is_connected_to(
    internal, tmp_path, es_url, index_prefix
):
    """The rebinding above is real: without our resolver the request reaches 127.0.0.1, and only
    the guard's check of the answer's peer address keeps the page out."""
    scrapy_resolver = ["--set", "TWISTED_DNS_RESOLVER=scrapy.resolver.CachingThreadedResolver"]
    crawl = _crawl(tmp_path, internal, es_url, index_prefix, *LOOPBACK_REFUSED, *scrapy_resolver)
    assert "/robots.txt" in internal.requests(OUTLET)
    assert crawl["stats"]["veille/dropped/blocked_address"] >= 1


def test_the_connection_resolver_honours_the_allowed_networks(
    internal, tmp_path, es_url, index_prefix
):
    crawl = _crawl(tmp_path, internal, es_url, index_prefix, *FAST_CRAWL)
    assert {"/robots.txt", FEED} <= set(internal.requests(OUTLET))
    assert crawl["stats"]["veille/feeds/read"] == 1
    assert crawl["stats"]["veille/pages_fetched"] >= 1
    assert "veille/dropped/blocked_address" not in crawl["stats"]


# --- The resolvers alone -------------------------------------------------------------------


@implementer(IHostnameResolver)
class _StubDns:
    """Twisted's name resolver, answering every name with the same addresses."""

    def __init__(self, addresses: Sequence[IPv4Address | IPv6Address]) -> None:
        self.addresses = addresses

    def resolveHostName(
        self, receiver: IResolutionReceiver, hostName: str, portNumber: int = 0, *args: object
    ) -> IHostResolution:
        resolution = HostResolution(hostName)
        receiver.resolutionBegan(resolution)
        for address in self.addresses:
            receiver.addressResolved(address)
        receiver.resolutionComplete()
        return resolution


@implementer(IResolutionReceiver)
class _Connection:
    """What a connecting endpoint receives from the resolver."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self.complete = False

    def resolutionBegan(self, resolution: IHostResolution) -> None:
        pass

    def addressResolved(self, address: IPv4Address | IPv6Address) -> None:
        self.hosts.append(address.host)

    def resolutionComplete(self) -> None:
        self.complete = True


def _process(allowed: str) -> SimpleNamespace:
    """What Scrapy hands a resolver: the process's settings."""
    return SimpleNamespace(settings=Settings({"VEILLE_ALLOWED_NETWORKS": allowed}))


def _hostname_resolver(
    addresses: Sequence[IPv4Address | IPv6Address], allowed: str = ""
) -> PublicAddressHostnameResolver:
    reactor = SimpleNamespace(nameResolver=_StubDns(addresses))
    return PublicAddressHostnameResolver.from_crawler(_process(allowed), reactor)  # type: ignore[arg-type]


def _connect(resolver: PublicAddressHostnameResolver, name: str) -> list[str]:
    connection = _Connection()
    resolver.resolveHostName(connection, name, 443)
    assert connection.complete
    return connection.hosts


@pytest.fixture(autouse=True)
def _no_allowed_networks_from_the_environment(monkeypatch):
    monkeypatch.delenv("VEILLE_ALLOWED_NETWORKS", raising=False)


def test_a_cached_loopback_answer_fails_the_lookup_naming_the_host():
    dnscache["rebound-v4.test"] = "127.0.0.1"
    resolver = PublicAddressResolver.from_crawler(_process(""), SimpleNamespace())  # type: ignore[arg-type]
    failures: list[Failure] = []
    resolver.getHostByName("rebound-v4.test").addErrback(failures.append)
    assert failures and failures[0].check(DNSLookupError)
    reason = "the addresses of rebound-v4.test are not public (127.0.0.1 is a loopback address)"
    assert reason in str(failures[0].value)
    assert refused_at_connection.get("rebound-v4.test") == reason


def test_a_cached_loopback_answer_is_returned_when_its_network_is_allowed():
    dnscache["allowed-v4.test"] = "127.0.0.1"
    resolver = PublicAddressResolver.from_crawler(_process("127.0.0.1/32"), SimpleNamespace())  # type: ignore[arg-type]
    answers: list[str] = []
    resolver.getHostByName("allowed-v4.test").addCallback(answers.append)
    assert answers == ["127.0.0.1"]
    assert "allowed-v4.test" not in refused_at_connection


def test_the_ipv6_resolver_hands_on_only_the_public_addresses():
    resolver = _hostname_resolver(
        [
            IPv4Address("TCP", "127.0.0.1", 443),
            IPv6Address("TCP", "fe80::1%eth0", 443),
            IPv4Address("TCP", "93.184.216.34", 443),
            IPv6Address("TCP", "::ffff:10.0.0.1", 443),
        ]
    )
    assert _connect(resolver, "mixed.test") == ["93.184.216.34"]
    assert "mixed.test" not in refused_at_connection


def test_the_ipv6_resolver_refuses_a_name_with_only_internal_addresses_cached_or_not():
    resolver = _hostname_resolver([IPv4Address("TCP", "169.254.169.254", 80)])
    assert _connect(resolver, "metadata.test") == []
    assert _connect(resolver, "metadata.test") == []  # from Scrapy's DNS cache this time
    reason = refused_at_connection.get("metadata.test") or ""
    assert "metadata.test" in reason and "169.254.169.254 is a link-local address" in reason


def test_the_ipv6_resolver_honours_the_allowed_networks():
    resolver = _hostname_resolver([IPv6Address("TCP", "::1", 80)], allowed="::1/128")
    assert _connect(resolver, "allowed-v6.test") == ["::1"]
