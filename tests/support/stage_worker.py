"""A worker process that sends corpus articles through pipeline stages all at once, as a busy
crawl does, so they share the stages' batches.

In:  ``VEILLE_ES_URL``, ``VEILLE_INDEX_PREFIX``; ``--stages`` (stage classes, run in order),
     ``--articles`` (corpus article names, in arrival order; ``name@URL`` is the same article
     under another URL), ``--set NAME=VALUE`` (Scrapy settings).
Out: a JSON object on stdout: ``articles`` (per article given, in order: ``outcome``,
     ``passed`` or the drop message, and ``cluster_id``, ``duplicate_of``) and the crawl
     ``stats`` the stages counted.

The stages are built by Scrapy's own ``ItemPipelineManager`` from the project's settings and run
in a Twisted reactor, each article's way through them started at once.
Run: ``python -m tests.support.stage_worker --stages pipelines.dedupe.DedupeStage
--articles s1-en-ledger,s1-en-ledger@https://mirror.example/s1``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from scrapy.exceptions import DropItem
from scrapy.pipelines import ItemPipelineManager
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from scrapy.utils.reactor import install_reactor
from scrapy.utils.test import get_crawler
from twisted.internet import defer, task

from crawler.spiders.feeds import FeedSpider
from pipelines.normalize import content_hash
from tests.support.cluster_corpus import load_corpus
from veille.core.article import Article
from veille.ops.crawl import crawl_settings


def corpus_article(spec: str) -> Article:
    """A fresh corpus article by name, as the extraction step hands it to the stages."""
    name, _, url = spec.partition("@")
    article = {item.name: item.article for item in load_corpus()}[name]
    if url:
        article = replace(article, url=url, canonical_url=url)
    # As the extraction step hands it over: hashed, its language known (text_prepared).
    article.content_hash = content_hash(article.title, article.text)
    article.text_prepared = True
    return article


async def through(manager: ItemPipelineManager, article: Article) -> dict[str, str | None]:
    try:
        await manager.process_item_async(article)
    except DropItem as dropped:
        return {"outcome": str(dropped), "cluster_id": None, "duplicate_of": None}
    return {
        "outcome": "passed",
        "cluster_id": article.cluster_id,
        "duplicate_of": article.duplicate_of,
    }


async def run(args: argparse.Namespace) -> None:
    overrides = dict(item.split("=", 1) for item in args.set)
    settings = crawl_settings(overrides).copy_to_dict()
    settings["ITEM_PIPELINES"] = {name: 100 + n for n, name in enumerate(args.stages.split(","))}
    settings["EXTENSIONS"] = {}
    crawler = get_crawler(FeedSpider, settings)
    manager = ItemPipelineManager.from_crawler(crawler)
    await manager.open_spider_async()
    articles = [corpus_article(spec) for spec in args.articles.split(",")]
    ways = [deferred_from_coro(through(manager, article)) for article in articles]
    results = await maybe_deferred_to_future(defer.gatherResults(ways, consumeErrors=True))
    await manager.close_spider_async()
    stats = {k: v for k, v in crawler.stats.get_stats().items() if k.startswith("veille/")}
    print(json.dumps({"articles": results, "stats": stats}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stages", required=True)
    parser.add_argument("--articles", required=True)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    task.react(lambda _reactor: deferred_from_coro(run(args)))


if __name__ == "__main__":
    main()
