"""Cluster-stage cost per article: ``StoryClusters.assign`` one article at a time against
``assign_batch`` of a batch of articles, CPU of this process plus Elasticsearch's JVM.

    export VEILLE_ES_URL=$(scripts/es-local start)
    python -m bench.cluster_batch                       # 512 articles, batches of 32
    python -m bench.cluster_batch --count 512 --batch 32 --rounds 3

Articles: ``2 x --count`` pages of the synthetic corpus (``bench.corpus.build_corpus``: three
languages, one in forty a syndicated copy), extracted as the crawl extracts them (not timed).
No translation model runs here: a French or Spanish article's own text stands in for its pivot
translation, so every article makes both look-ups (copies, versions) as translated ones do.

Each round and mode gets fresh indices (``bench-cluster-<random>`` prefix, deleted at the end)
holding the first ``--count`` articles, sketched and indexed (not timed); then the next
``--count`` are clustered, one at a time (``assign``) or ``--batch`` at a time
(``assign_batch``), on one thread, as the stage's worker thread does. Modes alternate over
``--rounds`` rounds, so a busy machine weighs on both alike. Rows print, per article, the best
round's CPU milliseconds of this process (``time.process_time``) and of the Elasticsearch JVM
(its process found by ``VEILLE_ES_URL``'s port), their sum, wall milliseconds, and the share of
articles marked copies or linked versions (both modes should agree).
"""

from __future__ import annotations

import argparse
import copy
import time
import uuid
from dataclasses import dataclass

from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk

from bench.__main__ import cpu_seconds, es_process
from bench.corpus import build_corpus
from crawler.extraction import ExtractionOptions, NotAnArticle, extract_article
from crawler.settings import VEILLE_MIN_WORDS
from veille.core.article import Article, SourceRef
from veille.core.clusters import StoryClusters
from veille.core.config import Environment
from veille.core.es import IndexNames, delete_indices, make_client, setup_indices


@dataclass
class Round:
    mode: str
    cpu: float
    es_cpu: float
    wall: float
    linked: int


def corpus_articles(count: int, seed: int) -> list[Article]:
    """Articles of ``count`` corpus pages, as the spider makes them, pivot text stood in."""
    base_url = "http://bench.example"
    corpus = build_corpus(count, seed, base_url)
    options = ExtractionOptions(min_words=VEILLE_MIN_WORDS)
    articles = []
    for spec, (path, page) in zip(corpus.articles, corpus.article_pages(), strict=True):
        found = extract_article(page, base_url + path, options)
        if isinstance(found, NotAnArticle):
            continue
        url = base_url + path
        article = Article(
            url=url, canonical_url=url, source=SourceRef(spec.outlet, "bench.example"),
            title=found.title, text=found.text, language=spec.language,
            published_at=spec.published_at, first_seen_at=spec.published_at,
        )  # fmt: skip
        if spec.language != "en":
            article.translation = {"en": {"title": found.title, "text": found.text}}
        articles.append(article)
    return articles


def fresh_indices(client: Elasticsearch, indexed: list[Article]) -> tuple[str, StoryClusters]:
    """A new prefix whose articles index holds ``indexed``, sketched; and its clusters."""
    prefix = f"bench-cluster-{uuid.uuid4().hex[:8]}"
    setup_indices(client, prefix)
    names = IndexNames(prefix)
    clusters = StoryClusters(client, names.articles, names.clusters)
    actions = []
    for article in indexed:
        clusters.sketch(article)
        article.cluster_id = article.id
        actions.append(
            {"_op_type": "create", "_index": names.articles, "_id": article.id,
             "_source": article.to_document()}
        )  # fmt: skip
    bulk(client, actions, refresh=True)
    return prefix, StoryClusters(client, names.articles, names.clusters)


def cluster(clusters: StoryClusters, articles: list[Article], batch: int) -> int:
    """Cluster the articles one at a time (``batch`` 1) or in batches; how many were linked."""
    if batch == 1:
        found = [clusters.assign(article) for article in articles]
    else:
        found = []
        for start in range(0, len(articles), batch):
            outcomes = clusters.assign_batch(articles[start : start + batch])
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    raise outcome
                found.append(outcome)
    return sum(assignment.kind != "new" for assignment in found)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=512, help="articles clustered per round")
    parser.add_argument("--batch", type=int, default=32, help="articles per assign_batch")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per mode")
    parser.add_argument("--seed", type=int, default=2022)
    args = parser.parse_args(argv)
    env = Environment.from_env()
    client = make_client(env, request_timeout=120)
    elasticsearch = es_process(env.es_url)
    started = time.perf_counter()
    pages = corpus_articles(2 * args.count, args.seed)
    print(f"extracted {len(pages)} articles in {time.perf_counter() - started:.0f} s")
    background, timed = pages[: args.count], pages[args.count :]
    modes = {"assign, one at a time": 1, f"assign_batch of {args.batch}": args.batch}
    rounds: list[Round] = []
    prefixes = []
    try:
        for _ in range(args.rounds):
            for mode, batch in modes.items():
                prefix, clusters = fresh_indices(client, copy.deepcopy(background))
                prefixes.append(prefix)
                articles = copy.deepcopy(timed)
                wall, cpu = time.perf_counter(), time.process_time()
                es_cpu = cpu_seconds(elasticsearch)
                linked = cluster(clusters, articles, batch)
                cpu, es_cpu = time.process_time() - cpu, cpu_seconds(elasticsearch) - es_cpu
                rounds.append(Round(mode, cpu, es_cpu, time.perf_counter() - wall, linked))
    finally:
        for prefix in prefixes:
            delete_indices(client, prefix)
        client.close()
    count = len(timed)
    print(f"\n{count} articles clustered against {len(background)} indexed, best of {args.rounds}")
    print(
        f"{'mode':<24} {'cpu ms':>8} {'es cpu ms':>10} {'sum ms':>8} {'wall ms':>8} {'linked':>7}"
    )
    for mode in modes:
        best = min((r for r in rounds if r.mode == mode), key=lambda r: r.cpu + r.es_cpu)
        per = 1000 / count
        print(
            f"{mode:<24} {best.cpu * per:>8.2f} {best.es_cpu * per:>10.2f} "
            f"{(best.cpu + best.es_cpu) * per:>8.2f} {best.wall * per:>8.2f} "
            f"{best.linked:>4}/{count}"
        )


if __name__ == "__main__":
    main()
