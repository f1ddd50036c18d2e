"""A worker process that runs corpus articles through the crawl's cluster stage, then indexes them.

In:  ``VEILLE_ES_URL``, ``VEILLE_INDEX_PREFIX``; ``--names`` (corpus article names, in order);
     with ``--barrier DIR --parties N``, N workers wait for each other before clustering and
     again before indexing, so none of their articles is searchable while any of them clusters
     (the widest race two crawlers can have: both copies still in their bulk buffers).
Out: a JSON object on stdout: ``ids`` (corpus name → article id) and the crawl ``stats`` the
     stage counted.

The stage (pipelines/cluster.py ClusterStage) is built from the project's Scrapy settings and
runs in a Twisted reactor, with its Elasticsearch calls in threads, as in a crawl.
Run: ``python -m tests.support.cluster_worker --names s1-en-ledger,s2-en-ledger``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.reactor import install_reactor
from scrapy.utils.test import get_crawler
from twisted.internet import task

from pipelines.cluster import ClusterStage
from tests.support.cluster_corpus import load_corpus
from veille.core.config import Environment
from veille.core.es import IndexNames, make_client
from veille.ops.crawl import crawl_settings


def wait_for_all(folder: Path | None, parties: int, phase: str) -> None:
    """A barrier across processes: one file per worker and phase, then wait for all of them."""
    if folder is None:
        return
    (folder / f"{phase}-{os.getpid()}").touch()
    deadline = time.monotonic() + 120
    while len(list(folder.glob(f"{phase}-*"))) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers never all reached {phase}")
        time.sleep(0.01)


async def run(args: argparse.Namespace) -> None:
    env = Environment.from_env()
    crawler = get_crawler(settings_dict=crawl_settings().copy_to_dict())
    stage = ClusterStage.from_crawler(crawler)
    await stage.open_spider()
    corpus = {item.name: item for item in load_corpus()}
    chosen = [corpus[name].article for name in args.names.split(",")]
    wait_for_all(args.barrier, args.parties, "ready")
    for article in chosen:
        await stage.process_item(article)
    stage.close_spider()
    wait_for_all(args.barrier, args.parties, "assigned")
    client = make_client(env)
    index = IndexNames(env.index_prefix).articles
    operations: list[dict] = []
    for article in chosen:
        operations += [{"create": {"_index": index, "_id": article.id}}, article.to_document()]
    response = client.bulk(operations=operations, refresh=True)
    assert not response["errors"], response
    ids = {name: corpus[name].article.id for name in args.names.split(",")}
    stats = {k: v for k, v in crawler.stats.get_stats().items() if k.startswith("veille/")}
    print(json.dumps({"ids": ids, "stats": stats}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--names", required=True)
    parser.add_argument("--barrier", type=Path)
    parser.add_argument("--parties", type=int, default=1)
    args = parser.parse_args()
    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    task.react(lambda _reactor: deferred_from_coro(run(args)))


if __name__ == "__main__":
    main()
