"""robots.txt, obeyed for every request — also those that wait while a site's robots.txt loads.

In:  every request (after the SSRF guard), as Scrapy's ``RobotsTxtMiddleware`` sees them.
Out: the same decisions as Scrapy's middleware (``IgnoreRequest("Forbidden by robots.txt")``,
     counted as ``robotstxt/forbidden``), with one fix.

Scrapy 2.19 with the asyncio reactor lets every request but the first that waits for a site's
robots.txt through unchecked: the waiters all await the same Deferred through ``asFuture``, whose
callback hands ``None`` down the chain, so the second waiter receives ``None`` ("no robots.txt")
and is allowed (scrapy/scrapy#6802 replaced the relay that passed the parser on). A news sitemap
or feed lists many pages of one new site at once, so this is the common case for us. Here each
waiter gets its own Deferred, fired with the parser, and the chain keeps the parser.
"""

from __future__ import annotations

from scrapy import Request
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.robotstxt import RobotParser
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred


class RobotsTxt(RobotsTxtMiddleware):
    async def robot_parser(self, request: Request) -> RobotParser | None:
        pending = self._parsers.get(urlparse_cached(request).netloc)
        if not isinstance(pending, Deferred):
            return await super().robot_parser(request)
        waiter: Deferred[RobotParser | None] = Deferred()

        def relay(parser: RobotParser | None) -> RobotParser | None:
            waiter.callback(parser)
            return parser

        pending.addCallback(relay)
        return await maybe_deferred_to_future(waiter)
