"""Milliseconds per article for MinHash signatures, Veille's against datasketch's.

    python -m bench.textwork [--articles 300] [--repeat 3]

``veille.core.minhash.signature_of`` (numpy over the whole shingle set) against datasketch's
``MinHash.update_batch`` with the same cached permutations, on each article's 4-word shingles;
the bench checks both give the same signature.

Texts are ``--articles`` synthetic articles (``bench.corpus``), extracted as the crawl does.
CPU time (``time.process_time``) is measured in rounds alternating the sides; the best of
``--repeat`` rounds counts.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from bench.corpus import build_corpus
from crawler.extraction import NotAnArticle, extract_article
from veille.core.minhash import Scheme, _permutations, shingles, signature_of


def best(work: Callable[[], None], repeat: int) -> float:
    rounds = []
    for _ in range(repeat):
        start = time.process_time()
        work()
        rounds.append(time.process_time() - start)
    return min(rounds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.textwork")
    parser.add_argument("--articles", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    from datasketch import MinHash

    corpus = build_corpus(args.articles, 2022, "http://127.0.0.1:1")
    texts = []
    for path, body in corpus.article_pages():
        result = extract_article(body, "http://127.0.0.1:1" + path)
        if not isinstance(result, NotAnArticle):
            texts.append(result.text)
    scheme = Scheme()
    sets = [shingles(text, scheme) for text in texts]
    a, b = _permutations(scheme.num_perm, scheme.seed)
    permutations = np.array([a, b])

    def datasketch_side() -> None:
        for found in sets:
            MinHash(num_perm=scheme.num_perm, permutations=permutations).update_batch(list(found))

    def veille_side() -> None:
        for found in sets:
            signature_of(found, scheme.num_perm, scheme.seed)

    for found in sets:
        minhash = MinHash(num_perm=scheme.num_perm, permutations=permutations)
        minhash.update_batch(list(found))
        assert np.array_equal(minhash.hashvalues, signature_of(found, scheme.num_perm, 1))
    rows = [
        ("MinHash, datasketch update_batch", datasketch_side),
        ("MinHash, veille signature_of", veille_side),
    ]
    timings = {name: 0.0 for name, _ in rows}
    for _name, work in rows:  # warm caches (stems, permutations) before timing
        work()
    for name, work in rows:
        timings[name] = 1000 * best(work, args.repeat) / len(texts)
    print(f"{len(texts)} articles, best of {args.repeat}; the same signatures on both sides")
    print(f"{'':36} {'ms/article':>10} {'ratio':>6}")
    for name, _ in rows:
        baseline = timings[rows[0][0]]
        print(f"{name:36} {timings[name]:10.3f} {baseline / timings[name]:5.1f}x")


if __name__ == "__main__":
    main()
