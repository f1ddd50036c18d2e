"""An Elasticsearch client that records the HTTP requests it really sends, to count them.

Its node class is elastic_transport's own urllib3 node, with every request's path noted before
it goes out (retries included): nothing is mocked, the requests reach the real node.
"""

from __future__ import annotations

from typing import Any

from elastic_transport import Urllib3HttpNode
from elasticsearch import Elasticsearch

from veille.core.config import Environment
from veille.core.es import make_client


def counting_client(es_url: str, prefix: str) -> tuple[Elasticsearch, list[str]]:
    """A client, and the list of request paths (no query string) it fills as it sends them."""
    sent: list[str] = []

    class CountingNode(Urllib3HttpNode):
        def perform_request(self, method: str, target: str, *args: Any, **kwargs: Any) -> Any:
            sent.append(target.split("?")[0])
            return super().perform_request(method, target, *args, **kwargs)

    client = make_client(Environment(es_url=es_url, index_prefix=prefix), node_class=CountingNode)
    return client, sent
