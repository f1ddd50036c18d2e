"""SSRF guard: no request leaves for a loopback, private, link-local, multicast or reserved address.

In:  every request the crawl is about to download (feeds, articles, robots.txt, each redirect:
     a redirect is a new request and comes through here again), every response, and every
     download error.
Out: the request unchanged when its host is public; otherwise ``IgnoreRequest``, counted as
     ``veille/dropped/blocked_address`` and logged once with the URL and the reason (a feed,
     sitemap or search answer is reported by its spider's errback instead).

The host is judged as an address whatever its spelling: IPv4 in dotted, decimal
(``2130706433``), octal (``0177.0.0.1``), hexadecimal (``0x7f.1``) or short (``127.1``) form,
IPv6 (``[::1]``), IPv4-mapped and 6to4 IPv6 (``[::ffff:10.0.0.1]``), and host names, which are
resolved (in a thread, never on the reactor) and refused if any of their addresses is refused.
Connections resolve the name again through crawler/resolver.py, which never returns a refused
address, so a name cannot answer a public address here and an internal one to the connection; a
name it found no allowed address for is refused here from then on, counted the same way. After
the download the peer address the response actually came from is checked too. Only ``http`` and
``https`` URLs are fetched.

Setting ``VEILLE_ALLOWED_NETWORKS``: CIDR ranges that are allowed anyway, e.g.
``127.0.0.1/32,10.20.0.0/16`` (a list or a comma-separated string); the environment variable
of the same name adds to it. Tests allow ``127.0.0.1/32`` for their fixture sites.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
from collections.abc import Iterable
from typing import Self
from urllib.parse import unquote

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import CannotResolveHostError, IgnoreRequest
from scrapy.http import Response
from scrapy.utils.datatypes import LocalCache
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.error import DNSLookupError

from crawler.middlewares.skips import LISTING
from veille.core.config import ConfigError
from veille.core.threads import in_thread

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SETTING = "VEILLE_ALLOWED_NETWORKS"
STAT = "veille/dropped/blocked_address"

# Host names the connection resolver (crawler/resolver.py) found no allowed address for, with
# the reason: the guard refuses them up-front from then on.
refused_at_connection: LocalCache[str, str] = LocalCache(10_000)

_IPV4_PART = {16: re.compile(r"[0-9a-f]*"), 8: re.compile(r"[0-7]*"), 10: re.compile(r"[0-9]+")}


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """An IPv4 address in any spelling browsers and ``inet_aton`` accept, else ``None``.

    ``127.0.0.1``, ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``, and
    the same with a trailing dot.
    """
    parts = host.lower().split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        if part.startswith("0x"):
            base, digits = 16, part[2:]
        elif len(part) > 1 and part.startswith("0"):
            base, digits = 8, part[1:]
        else:
            base, digits = 10, part
        if not _IPV4_PART[base].fullmatch(digits):
            return None
        numbers.append(int(digits or "0", base))
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (4 - len(leading)):
        return None
    value = last
    for position, number in enumerate(leading):
        value += number << (8 * (3 - position))
    return ipaddress.IPv4Address(value)


def parse_address(host: str) -> IPAddress | None:
    """The address a URL host spells (IPv4 in any form, IPv6 with or without brackets)."""
    host = unquote(host).strip().strip("[]")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    return parse_ipv4(host)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    return address.ipv4_mapped or address.sixtofour


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` must not be fetched (``"loopback"``, ``"private"``, …), or ``None``."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return refusal(embedded)
        if address.is_site_local:
            return "site-local"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not public", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def is_allowed(address: IPAddress, allowed: Iterable[Network]) -> bool:
    """Whether an allowed range holds the address (or the IPv4 address inside an IPv6 one)."""
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            candidates.append(embedded)
    return any(candidate in network for candidate in candidates for network in allowed)


def address_refusal(address: IPAddress, allowed: Iterable[Network]) -> str | None:
    """Why ``address`` is refused (``"10.0.0.1 is a private address"``), or ``None`` if allowed."""
    reason = refusal(address)
    if reason and not is_allowed(address, allowed):
        return f"{address} is a {reason} address"
    return None


def parse_networks(values: Iterable[str], where: str) -> list[Network]:
    """CIDR ranges from a setting or variable; a ConfigError names ``where`` when one is wrong."""
    networks = []
    for value in values:
        text = value.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise ConfigError(
                where, SETTING, f"{text!r} is not a network: {exc}",
                "write CIDR ranges separated by commas, e.g. 127.0.0.1/32,10.0.0.0/8",
            ) from exc  # fmt: skip
    return networks


def allowed_networks(setting: Iterable[str]) -> list[Network]:
    """The ranges from the Scrapy setting and from the environment variable of the same name."""
    from_env = re.split(r"[,\s]+", os.environ.get(SETTING, ""))
    return parse_networks(setting, "(settings)") + parse_networks(from_env, "(environment)")


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address a host name resolves to (blocking: call it in a thread)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise DNSLookupError(f"{host}: {exc}") from exc
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


class SsrfGuardMiddleware:
    def __init__(self, crawler: Crawler, allowed: list[Network]) -> None:
        self.crawler = crawler
        self.allowed = allowed
        self.resolved: dict[tuple[str, int], list[IPAddress]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler, allowed_networks(crawler.settings.getlist(SETTING)))

    def judge(self, addresses: Iterable[IPAddress]) -> str | None:
        """The reason to refuse, naming the first refused address, or ``None``."""
        for address in addresses:
            reason = address_refusal(address, self.allowed)
            if reason:
                return reason
        return None

    def refuse(self, request: Request, reason: str) -> IgnoreRequest:
        self.crawler.stats.inc_value(STAT)
        if not request.meta.get(LISTING):  # a listing's errback reports it with its source
            logger.warning(
                "refused %s: %s (allow a range with %s if this is intended)",
                request.url, reason, SETTING,
            )  # fmt: skip
        return IgnoreRequest(f"refused {request.url}: {reason}")

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        literal = parse_address(host)
        if literal is not None:
            return [literal]
        key = (host, port)
        if key not in self.resolved:
            self.resolved[key] = await in_thread(resolve, host, port)
        return self.resolved[key]

    async def process_request(self, request: Request) -> None:
        parts = urlparse_cached(request)
        if parts.scheme not in ("http", "https"):
            raise self.refuse(request, f"the {parts.scheme!r} scheme is not fetched")
        host = parts.hostname or ""
        if not host:
            raise self.refuse(request, "no host")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        reason = refused_at_connection.get(host) or self.judge(await self._addresses(host, port))
        if reason:
            raise self.refuse(request, reason)

    def process_exception(self, request: Request, exception: Exception) -> None:
        """A connection whose lookup left no allowed address (crawler/resolver.py) is refused."""
        if isinstance(exception, (CannotResolveHostError, DNSLookupError)):
            reason = refused_at_connection.get(urlparse_cached(request).hostname or "")
            if reason:
                raise self.refuse(request, reason)

    def process_response(self, request: Request, response: Response) -> Response:
        """The address the response really came from (DNS may have changed meanwhile)."""
        peer = response.ip_address
        if peer is not None and "proxy" not in request.meta:
            reason = self.judge([peer])
            if reason:
                raise self.refuse(request, f"answered from {reason}")
        return response
