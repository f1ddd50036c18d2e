"""What the parts of one crawl share: its Elasticsearch client.

In:  a Scrapy crawler.
Out: :class:`CrawlElasticsearch` (the environment, one client, the index names), made on the
     first call for that crawler; every later call for the same crawler gets the same one. The
     spider, the stages and the rejected-articles extension share it, so a crawl opens one
     connection pool, which is closed once, when the crawl's engine stops (after the spider and
     every stage have closed).
"""

from __future__ import annotations

from dataclasses import dataclass

from elasticsearch import Elasticsearch
from scrapy import signals
from scrapy.crawler import Crawler

from veille.core.config import Environment
from veille.core.es import IndexNames, make_client

_ATTRIBUTE = "veille_elasticsearch"


@dataclass
class CrawlElasticsearch:
    env: Environment
    client: Elasticsearch
    names: IndexNames

    def close(self) -> None:
        self.client.close()


def crawl_elasticsearch(crawler: Crawler) -> CrawlElasticsearch:
    """The crawl's Elasticsearch client and index names (made on first use)."""
    shared: CrawlElasticsearch | None = getattr(crawler, _ATTRIBUTE, None)
    if shared is None:
        env = Environment.from_env()
        shared = CrawlElasticsearch(env, make_client(env), IndexNames(env.index_prefix))
        setattr(crawler, _ATTRIBUTE, shared)
        crawler.signals.connect(shared.close, signal=signals.engine_stopped)
    return shared
