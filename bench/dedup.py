"""Near-duplicate look-up cost per article: LSH band terms in Elasticsearch against pairwise.

    export VEILLE_ES_URL=$(scripts/es-local start)
    python -m bench.dedup                      # 1,000 and 100,000 articles
    python -m bench.dedup --sizes 1000,20000 --queries 100

Synthetic English articles (about 150 words drawn from a 20,000-word Zipf vocabulary; one in
ten is an edited, trimmed copy of an earlier one) are sketched with the crawl's scheme and
indexed into one fresh articles index per size, built from ``index_config/articles.json``.
Indexing is not timed. Then, for the same query articles at every size (half of them edited
copies of indexed articles, half new stories), in alternating rounds so a busy machine weighs
on every size alike:

- ``lookup``: ``StoryClusters.lookup`` — sketch the article, one ``msearch`` on its band terms,
  confirm the best candidates from their signatures — what the crawl's cluster stage does
  before it claims anything;
- ``pairwise``: the same sketch compared with every indexed article's signature, in memory
  (``veille.core.minhash.similarity`` per pair, the comparison the look-up uses to confirm), which
  flatters pairwise: a real pairwise search would also have to fetch every signature.

Rows print milliseconds per article, the ratio pairwise/lookup, how much the look-up cost grew
from the smallest size, and the share of copies found. ``--keep`` leaves the indices.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time
import uuid
from datetime import UTC, datetime
from multiprocessing import Pool

from elasticsearch import Elasticsearch
from elasticsearch.helpers import streaming_bulk

from veille.core.article import Article, SourceRef
from veille.core.clusters import ClusterSettings, StoryClusters
from veille.core.config import Environment
from veille.core.es import IndexNames, delete_indices, load_template, make_client
from veille.core.minhash import Sketch, similarity, sketch

VOCABULARY = 20_000
WORDS_PER_ARTICLE = 150
SETTINGS = ClusterSettings()
_VOCAB = [f"w{rank}" for rank in range(VOCABULARY)]
_CUMULATIVE = list(itertools.accumulate(1 / (rank + 1) for rank in range(VOCABULARY)))


def story(seed: int) -> list[str]:
    return random.Random(seed).choices(_VOCAB, cum_weights=_CUMULATIVE, k=WORDS_PER_ARTICLE)


def edited(words: list[str], seed: int) -> list[str]:
    """A copy: a few words changed, the ending trimmed, a line of boilerplate added."""
    rng = random.Random(seed)
    copy = [rng.choice(_VOCAB) if rng.random() < 0.04 else w for w in words]
    kept = copy[: int(len(copy) * rng.uniform(0.7, 0.95))]
    return [*kept, "copyright", "wire", "service"]


def article_text(number: int) -> str:
    """Article ``number`` of the synthetic stream: one in ten copies the one five before it."""
    if number % 10 == 9:
        return " ".join(edited(story(number - 5), number))
    return " ".join(story(number))


def _sketch(number: int) -> Sketch | None:
    return sketch(article_text(number), SETTINGS.scheme)


def install_articles_index(client: Elasticsearch, prefix: str) -> str:
    alias = IndexNames(prefix).articles
    client.indices.put_index_template(name=alias, **load_template("articles", prefix))
    client.indices.create(index=f"{alias}-000001", aliases={alias: {"is_write_index": True}})
    return alias


def index_sketches(client: Elasticsearch, index: str, sketches: list[Sketch | None]) -> None:
    now = datetime.now(UTC).isoformat()
    actions = (
        {
            "_op_type": "create",
            "_index": index,
            "_id": f"a{number}",
            "_source": {
                "language": "en",
                "first_seen_at": now,
                "cluster_id": f"a{number}",
                "minhash": found.to_document(),
            },
        }
        for number, found in enumerate(sketches)
        if found is not None
    )
    for ok, item in streaming_bulk(client, actions, chunk_size=2000, max_retries=3):
        if not ok:
            raise RuntimeError(f"indexing failed: {item}")
    client.indices.refresh(index=index)


def query_articles(count: int, smallest: int) -> list[tuple[Article, bool]]:
    """Half copies of articles every index holds (expected found), half new stories."""
    rng = random.Random(7)
    queries = []
    for n in range(count):
        is_copy = n % 2 == 0
        if is_copy:
            words = edited(story(rng.randrange(smallest) // 10 * 10), 10_000_000 + n)
        else:
            words = story(20_000_000 + n)
        url = f"https://bench.example/query/{n}"
        article = Article(
            url=url, canonical_url=url, source=SourceRef("bench", "bench.example"),
            title=f"query {n}", text=" ".join(words), language="en",
        )  # fmt: skip
        queries.append((article, is_copy))
    return queries


def pairwise(mine: Sketch, indexed: list[Sketch | None]) -> float:
    best = 0.0
    for theirs in indexed:
        if theirs is not None:
            best = max(best, similarity(mine, theirs).containment)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000", help="index sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=200, help="look-ups timed per size")
    parser.add_argument("--pairwise-queries", type=int, default=20, help="pairwise runs per size")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark indices")
    args = parser.parse_args(argv)
    sizes = sorted(int(size) for size in args.sizes.split(","))
    env = Environment.from_env()
    client = make_client(env, request_timeout=120)
    scheme = SETTINGS.scheme
    print(
        f"scheme: {scheme.shingle}-word shingles, {scheme.bands} bands x {scheme.rows} rows; "
        f"copies confirmed at containment >= {SETTINGS.duplicate_threshold}"
    )

    started = time.perf_counter()
    with Pool() as pool:
        sketches = pool.map(_sketch, range(sizes[-1]), chunksize=500)
    print(f"sketched {len(sketches):,} articles in {time.perf_counter() - started:.0f} s")

    prefixes = {size: f"bench-dedup-{size}-{uuid.uuid4().hex[:6]}" for size in sizes}
    lookups: dict[int, list[float]] = {size: [] for size in sizes}
    pairs: dict[int, list[float]] = {size: [] for size in sizes}
    found: dict[int, int] = dict.fromkeys(sizes, 0)
    try:
        clusters = {}
        for size, prefix in prefixes.items():
            started = time.perf_counter()
            index = install_articles_index(client, prefix)
            index_sketches(client, index, sketches[:size])
            print(f"indexed {size:,} articles in {time.perf_counter() - started:.0f} s")
            clusters[size] = StoryClusters(client, index, IndexNames(prefix).clusters, SETTINGS)
        queries = query_articles(args.queries, sizes[0])
        for article, _ in queries[:10]:
            for size in sizes:
                clusters[size].lookup(article)
        for number, (article, is_copy) in enumerate(queries):
            for size in sizes:
                started = time.perf_counter()
                assignment = clusters[size].lookup(article)
                lookups[size].append(time.perf_counter() - started)
                found[size] += is_copy and assignment.kind == "duplicate"
                if number < args.pairwise_queries:
                    started = time.perf_counter()
                    mine = sketch(article.text, scheme)
                    if mine is not None:
                        pairwise(mine, sketches[:size])
                    pairs[size].append(time.perf_counter() - started)
    finally:
        if not args.keep:
            for prefix in prefixes.values():
                delete_indices(client, prefix)
    copies = sum(is_copy for _, is_copy in queries)
    base = statistics.median(lookups[sizes[0]])
    print(
        f"\n{'articles':>9} {'lookup ms':>10} {'p90 ms':>8} {'pairwise ms':>12} "
        f"{'pairwise/lookup':>16} {'vs smallest':>12} {'copies found':>13}"
    )
    for size in sizes:
        lookup = statistics.median(lookups[size])
        p90 = statistics.quantiles(lookups[size], n=10)[-1]
        pair = statistics.median(pairs[size])
        print(
            f"{size:>9,} {lookup * 1000:>10.2f} {p90 * 1000:>8.2f} {pair * 1000:>12.2f} "
            f"{pair / lookup:>15.1f}x {lookup / base:>11.2f}x {found[size]:>6}/{copies}"
        )


if __name__ == "__main__":
    main()
