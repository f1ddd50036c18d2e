"""Time per article of each stage, one stage at a time, and the index stage against bare bulk.

    python -m bench.stages --base-url URL --count N --sample K --out stages.json

Run by ``python -m bench all`` in its own process (it installs Twisted's asyncio reactor), with
``VEILLE_ES_URL``, ``VEILLE_CONFIG`` (the bench's sources) and ``VEILLE_INDEX_PREFIX`` set.

In:  the corpus server's base URL; ``K`` article pages of the corpus.
Out: a JSON file with, per stage, the articles that entered it, those it dropped and the seconds
     it took, and the index goal's two rates:

Also the extraction limit for ``python -m bench all``: :func:`bare_extraction`, the crawl's
trafilatura call over the same pages in a pool of processes, nothing else.

- ``fetch``: sequential GETs of the pages over one keep-alive connection (the server's cost
  plus the client's, without Scrapy).
- ``extract``: :func:`crawler.extraction.extract_article` on each page, in this process.
- every stage of ``ITEM_PIPELINES`` in order (normalize, language, relevance, dedupe, translate,
  cluster, index, …) through Scrapy's own ``ItemPipelineManager``, each built alone from the
  crawl's settings and fed the articles the stage before it let through, ``IN_FLIGHT`` at a
  time as a crawl keeps several in the pipeline (the dedupe, translate and cluster stages work
  on batches of the articles waiting); its ``open_spider`` is not timed, its ``close_spider``
  is (the index stage's last flush).
- ``index_goal``: ``--index-docs`` documents (the sample's articles, repeated under new URLs
  to reach the count) sent through the index stage alone, and the same documents sent by a bare
  ``elasticsearch.helpers.bulk`` (``create``, same ids, default chunk size), each into fresh
  indices made by ``veille.core.es.setup_indices``; best of ``--rounds`` rounds each, alternating,
  after a warm-up round. Each round also counts CPU seconds, this process's (every thread) plus the
  Elasticsearch JVM's (``--es-pid``): on a shared machine wall-clock rates swing with the load,
  CPU per document much less.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import http.client
import json
import multiprocessing
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.corpus import OUTLET_NAMES, build_corpus

# Articles given to a stage at once (VEILLE_CLUSTER_BATCH's default).
IN_FLIGHT = 32


def fetch_pages(base_url: str, paths: list[str]) -> tuple[list[bytes], float]:
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    bodies = []
    start = time.perf_counter()
    for path in paths:
        connection.request("GET", path)
        response = connection.getresponse()
        bodies.append(response.read())
    seconds = time.perf_counter() - start
    connection.close()
    return bodies, seconds


def build_articles(base_url: str, paths: list[str], bodies: list[bytes]) -> tuple[list, float]:
    """Articles as the spider yields them, and the seconds extraction took."""
    from crawler.extraction import ExtractionOptions, NotAnArticle, extract_article
    from crawler.settings import VEILLE_MIN_WORDS
    from veille.core.article import Article, SourceRef
    from veille.core.config import cached_config

    config = cached_config(os.environ["VEILLE_CONFIG"])
    sources = {name: config.source(name) for name in OUTLET_NAMES}
    options = ExtractionOptions(min_words=VEILLE_MIN_WORDS)
    articles, seconds = [], 0.0
    for path, body in zip(paths, bodies, strict=True):
        url = base_url + path
        start = time.perf_counter()
        result = extract_article(body.decode("utf-8"), url, options)
        seconds += time.perf_counter() - start
        if isinstance(result, NotAnArticle):
            continue
        source = sources[path.split("/")[1]]
        articles.append(
            Article(
                url=url,
                canonical_url=result.canonical_url or url,
                urls=[url],
                source=SourceRef(
                    name=source.name, domain="127.0.0.1", country=source.country, type="feed"
                ),
                discovered_via={"kind": "feed", "source": source.name},
                title=result.title,
                text=result.text,
                description=result.description,
                authors=result.authors,
                site_name=result.site_name,
                image=result.image,
                published_at=result.published_at,
                word_count=result.word_count,
            )
        )
    return articles, seconds


def _bare_extract(page: tuple[str, str]) -> tuple[bool, float]:
    """Whether trafilatura found an article, and the CPU seconds it took."""
    import trafilatura

    url, html = page
    start = time.process_time()
    document = trafilatura.bare_extraction(
        html, url=url, with_metadata=True, include_comments=False
    )
    return document is not None, time.process_time() - start


def bare_extraction(
    count: int, seed: int, processes: int, cpus: set[int] | None = None
) -> tuple[int, float, float]:
    """The extraction limit: the crawl's trafilatura call over the same pages, no crawl.

    With ``cpus``, the loop's processes run on those CPUs only (as the crawl did).
    """
    base_url = "http://127.0.0.1:1"
    corpus = build_corpus(count, seed, base_url)
    pages = [(base_url + path, body.decode("utf-8")) for path, body in corpus.article_pages()]
    del corpus
    context = multiprocessing.get_context("spawn")
    pinning = (os.sched_setaffinity, (0, cpus)) if cpus else (None, ())
    with context.Pool(processes, *pinning) as pool:
        pool.map(_bare_extract, pages[: processes * 2])  # imports done before timing
        start = time.perf_counter()
        results = list(pool.imap_unordered(_bare_extract, pages, chunksize=4))
        seconds = time.perf_counter() - start
    return sum(ok for ok, _ in results), seconds, sum(cpu for _, cpu in results)


def _crawler(pipeline: str, prefix: str):
    from scrapy.utils.test import get_crawler

    from crawler.spiders.feeds import FeedSpider
    from veille.ops.crawl import crawl_settings

    os.environ["VEILLE_INDEX_PREFIX"] = prefix
    settings = crawl_settings().copy_to_dict()
    settings["ITEM_PIPELINES"] = {pipeline: 100}
    settings["EXTENSIONS"] = {}  # the stats file and the like: not part of a stage
    return get_crawler(FeedSpider, settings)


async def run_stage(pipeline: str, prefix: str, articles: list) -> dict[str, Any]:
    """One stage alone over ``articles``: seconds, how many it let through, its stats."""
    from scrapy.exceptions import DropItem
    from scrapy.pipelines import ItemPipelineManager

    crawler = _crawler(pipeline, prefix)
    manager = ItemPipelineManager.from_crawler(crawler)
    await manager.open_spider_async()
    passed = []
    start = time.perf_counter()
    for first in range(0, len(articles), IN_FLIGHT):
        group = articles[first : first + IN_FLIGHT]
        outcomes = await asyncio.gather(
            *(manager.process_item_async(article) for article in group), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, DropItem):
                raise outcome
            if not isinstance(outcome, DropItem):
                passed.append(outcome)
    await manager.close_spider_async()
    seconds = time.perf_counter() - start
    stats = {k: v for k, v in crawler.stats.get_stats().items() if k.startswith("veille/")}
    return {"seconds": seconds, "passed": passed, "stats": stats}


def _index_documents(articles: list, count: int) -> list:
    """``count`` articles: the sample's, then copies of them under new URLs."""
    documents = []
    while len(documents) < count:
        for article in articles[: count - len(documents)]:
            copy_number = len(documents) // len(articles)
            url = f"{article.canonical_url}?copy={copy_number}" if copy_number else article.url
            documents.append(replace(copy.deepcopy(article), url=url, canonical_url=url))
    return documents


def bare_bulk(client: Any, index: str, documents: list[dict[str, Any]]) -> None:
    from elasticsearch.helpers import bulk

    done, errors = bulk(
        client,
        ({"_op_type": "create", "_index": index, "_id": i, "_source": d} for i, d in documents),
        raise_on_error=False,
    )
    if done != len(documents) or errors:
        raise RuntimeError(f"bare bulk indexed {done} of {len(documents)}: {errors[:1]}")


class CpuClock:
    """Wall seconds, and CPU seconds of this process (all threads) plus Elasticsearch's JVM."""

    def __init__(self, es_pid: int | None) -> None:
        import psutil

        self.es = psutil.Process(es_pid) if es_pid else None

    def _es_cpu(self) -> float:
        if self.es is None:
            return 0.0
        times = self.es.cpu_times()
        return times.user + times.system

    def __enter__(self) -> CpuClock:
        self.wall, self.cpu, self.es_cpu = time.perf_counter(), time.process_time(), self._es_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        self.es_cpu = self._es_cpu() - self.es_cpu


async def index_goal(
    prefix: str, articles: list, count: int, es_pid: int | None, rounds_each: int = 3
) -> dict[str, Any]:
    from veille.core.config import Environment
    from veille.core.es import IndexNames, delete_indices, make_client, setup_indices

    articles = _index_documents(articles, count)
    client = make_client(Environment(es_url=os.environ["VEILLE_ES_URL"], index_prefix=prefix))
    documents = [(a.id, a.to_document()) for a in articles]
    rounds: dict[str, list[dict[str, float]]] = {"stage": [], "bulk": []}
    prefixes = []
    try:
        for number, kind in enumerate(["warm-up", *["stage", "bulk"] * rounds_each]):
            round_prefix = f"{prefix}-ix{number}"
            prefixes.append(round_prefix)
            setup_indices(client, round_prefix)
            if kind == "stage":
                fresh = copy.deepcopy(articles)  # the stage changes them; copying is not its cost
                with CpuClock(es_pid) as clock:
                    run = await run_stage("pipelines.index.IndexStage", round_prefix, fresh)
                indexed = run["stats"].get("veille/indexed", 0)
                if indexed != count:
                    raise RuntimeError(f"the index stage indexed {indexed} of {count}: {run}")
                clock.wall = run["seconds"]  # without the stage's untimed open_spider
            else:
                with CpuClock(es_pid) as clock:
                    bare_bulk(client, IndexNames(round_prefix).articles, documents)
            if kind != "warm-up":
                rounds[kind].append(
                    {"seconds": clock.wall, "cpu": clock.cpu, "es_cpu": clock.es_cpu}
                )
    finally:
        for name in prefixes:
            delete_indices(client, name)
        client.close()
    best = {kind: min(r["seconds"] for r in runs) for kind, runs in rounds.items()}
    cpu = {kind: min(r["cpu"] + r["es_cpu"] for r in runs) for kind, runs in rounds.items()}
    return {
        "docs": count,
        "stage_docs_per_s": count / best["stage"],
        "bulk_docs_per_s": count / best["bulk"],
        "stage_cpu_ms_per_doc": 1000 * cpu["stage"] / count,
        "bulk_cpu_ms_per_doc": 1000 * cpu["bulk"] / count,
        "rounds": rounds,
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from veille.ops.crawl import crawl_settings

    corpus = build_corpus(args.count, args.seed, args.base_url)
    paths = [spec.path for spec in corpus.articles[: args.sample]]
    bodies, fetch_seconds = fetch_pages(args.base_url, paths)
    articles, extract_seconds = build_articles(args.base_url, paths, bodies)
    rows = [
        {"stage": "fetch", "entered": len(paths), "passed": len(paths), "seconds": fetch_seconds},
        {
            "stage": "extract",
            "entered": len(paths),
            "passed": len(articles),
            "seconds": extract_seconds,
        },
    ]
    pipelines = crawl_settings().getwithbase("ITEM_PIPELINES")
    # A crawl loads langdetect's profiles once, in the extraction forkserver before the first
    # page; load them here too, so the language stage's figure is per article, not the load.
    from pipelines.language import detect_language

    detect_language("Veille", "Une phrase pour charger les profils de langue.", 600)
    flowing, after_language = articles, articles
    for path in sorted(pipelines, key=lambda p: pipelines[p] or 0):
        run = await run_stage(path, args.prefix, flowing)
        name = path.rsplit(".", 1)[-1].removesuffix("Stage").lower()
        rows.append(
            {
                "stage": name,
                "entered": len(flowing),
                "passed": len(run["passed"]),
                "seconds": run["seconds"],
            }
        )
        flowing = run["passed"]
        if name == "language":
            after_language = copy.deepcopy(flowing)
    goal = await index_goal(args.prefix, after_language, args.index_docs, args.es_pid, args.rounds)
    return {"stages": rows, "index_goal": goal}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--count", type=int, required=True, help="articles in the corpus")
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--sample", type=int, default=300, help="articles timed per stage")
    parser.add_argument("--index-docs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="index goal rounds per side")
    parser.add_argument("--prefix", default=os.environ.get("VEILLE_INDEX_PREFIX", "bench"))
    parser.add_argument("--es-pid", type=int, help="Elasticsearch's process, for its CPU time")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    from scrapy.utils.defer import deferred_from_coro
    from scrapy.utils.reactor import install_reactor

    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    from twisted.internet import reactor

    outcome: dict[str, Any] = {}

    def done(result: Any) -> None:
        outcome["result"] = result
        reactor.stop()  # type: ignore[attr-defined]

    deferred_from_coro(measure(args)).addBoth(done)
    reactor.run()  # type: ignore[attr-defined]
    result = outcome.get("result")
    if not isinstance(result, dict):
        result.raiseException()  # a twisted Failure
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
