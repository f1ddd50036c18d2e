"""Name resolution for connections that never returns an address the SSRF guard refuses.

In:  every host name Twisted resolves to open a connection (Scrapy's ``TWISTED_DNS_RESOLVER``).
     HTTP(S) downloads go through the reactor's ``nameResolver``: with ``PublicAddressResolver``
     installed, Twisted's wrapper around its ``getHostByName``; proxies and other ``connectTCP``
     callers call ``getHostByName`` itself.
Out: the resolved addresses the guard allows (crawler/middlewares/ssrf.py: the same judgement, the
     same ``VEILLE_ALLOWED_NETWORKS`` from the crawl's settings and the environment). When none is
     left the lookup fails (``DNSLookupError`` naming the host), no connection is made, and the
     name is remembered so that the guard counts the request as ``veille/dropped/blocked_address``.

The guard resolves a name before the request leaves, and Twisted resolves it again to connect: a
hostile DNS server could answer a public address to the first lookup and ``127.0.0.1`` or
``169.254.169.254`` to the second (DNS rebinding). Filtering the second lookup closes that window.
``PublicAddressResolver`` (IPv4, Scrapy's default ``CachingThreadedResolver``) and
``PublicAddressHostnameResolver`` (IPv4 and IPv6, Scrapy's ``CachingHostnameResolver``) filter
cached answers too. Scrapy builds one resolver per process, from the process's settings: a
spider's own ``custom_settings`` do not reach it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Self

from scrapy.crawler import Crawler
from scrapy.resolver import CachingHostnameResolver, CachingThreadedResolver
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.base import ReactorBase
from twisted.internet.defer import Deferred
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IAddress, IHostResolution, IResolutionReceiver
from zope.interface import implementer

from crawler.middlewares.ssrf import (
    SETTING,
    Network,
    address_refusal,
    allowed_networks,
    refused_at_connection,
)


def _refusal(address: str, allowed: Sequence[Network]) -> str | None:
    """The guard's reason to refuse a resolved address (``"127.0.0.1"``, ``"fe80::1%eth0"``)."""
    return address_refusal(ipaddress.ip_address(address.split("%")[0]), allowed)


def _refuse_name(host: str, refusal: str) -> str:
    """Remember for the guard that ``host`` had no allowed address; the reason, naming it."""
    reason = f"the addresses of {host} are not public ({refusal})"
    refused_at_connection[host.lower()] = reason
    return reason


class _GuardNetworks:
    """The networks the guard allows, read from the crawl's settings when Scrapy builds us."""

    allowed: Sequence[Network] = ()

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: ReactorBase) -> Self:
        resolver = super().from_crawler(crawler, reactor)  # type: ignore[misc]
        resolver.allowed = allowed_networks(crawler.settings.getlist(SETTING))
        return resolver


class PublicAddressResolver(_GuardNetworks, CachingThreadedResolver):
    """Scrapy's default resolver (one IPv4 address per name), failing on a refused address."""

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:
        return super().getHostByName(name, timeout).addCallback(self._allowed_only, name)

    def _allowed_only(self, address: str, name: str) -> str:
        refusal = _refusal(address, self.allowed)
        if refusal:
            raise DNSLookupError(_refuse_name(name, refusal))
        return address


@implementer(IResolutionReceiver)
class _AllowedAddresses:
    """Hands on the addresses the guard allows; when it refused all of them, the name too."""

    def __init__(
        self, receiver: IResolutionReceiver, host: str, allowed: Sequence[Network]
    ) -> None:
        self.receiver = receiver
        self.host = host
        self.allowed = allowed
        self.kept = 0
        self.refusal: str | None = None

    def resolutionBegan(self, resolution: IHostResolution) -> None:
        self.receiver.resolutionBegan(resolution)

    def addressResolved(self, address: IPv4Address | IPv6Address) -> None:
        refusal = _refusal(address.host, self.allowed)
        if refusal:
            self.refusal = self.refusal or refusal
            return
        self.kept += 1
        self.receiver.addressResolved(address)

    def resolutionComplete(self) -> None:
        if self.refusal and not self.kept:
            _refuse_name(self.host, self.refusal)
        self.receiver.resolutionComplete()


class PublicAddressHostnameResolver(_GuardNetworks, CachingHostnameResolver):
    """Scrapy's IPv4 and IPv6 resolver, leaving out every refused address."""

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[IAddress]] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        return super().resolveHostName(
            _AllowedAddresses(resolutionReceiver, hostName, self.allowed),
            hostName, portNumber, addressTypes, transportSemantics,
        )  # fmt: skip
