"""MinHash sketches: the same signatures as datasketch's MinHash, which earlier releases stored.

Articles indexed before sketches were computed without datasketch keep their band terms and
signatures in Elasticsearch; a new article must produce the very same values to be found as
their copy or to join their story.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from datasketch import MinHash

from tests.support.articles import fixture_articles
from veille.core.minhash import Scheme, band_terms, shingles, signature_of, similarity, sketch


def datasketch_signature(found: set[bytes], scheme: Scheme) -> np.ndarray:
    minhash = MinHash(num_perm=scheme.num_perm, seed=scheme.seed)
    minhash.update_batch(list(found))
    return minhash.hashvalues.astype(np.uint64)


@pytest.mark.parametrize(
    "scheme", [Scheme(), Scheme(shingle=3, bands=20, rows=5, seed=7), Scheme(shingle=1)]
)
def test_signatures_equal_datasketch_on_fixture_articles(scheme: Scheme) -> None:
    articles = fixture_articles()
    assert len(articles) > 10
    for title, text in articles:
        found = shingles(text, scheme)
        ours = signature_of(found, scheme.num_perm, scheme.seed)
        assert np.array_equal(ours, datasketch_signature(found, scheme)), title
        assert sketch(text, scheme).bands == band_terms(datasketch_signature(found, scheme), scheme)


def test_signatures_equal_datasketch_for_short_and_long_texts() -> None:
    scheme = Scheme()
    rng = random.Random(3)
    vocabulary = [f"mot{i}" for i in range(5000)] + ["commissariat", "police", "Fuzhou", "2022"]
    for length in (1, 2, 4, 5, 50, 3000):
        text = " ".join(rng.choice(vocabulary) for _ in range(length))
        found = shingles(text, scheme)
        assert np.array_equal(
            signature_of(found, scheme.num_perm, scheme.seed), datasketch_signature(found, scheme)
        )


def test_similar_texts_estimate_close_to_their_true_similarity() -> None:
    rng = random.Random(5)
    words = [f"w{rng.randrange(10**6)}" for _ in range(800)]
    edited = list(words)
    for position in rng.sample(range(len(words)), 40):  # 5% of the words changed
        edited[position] = "changed"
    scheme = Scheme()
    a, b = shingles(" ".join(words), scheme), shingles(" ".join(edited), scheme)
    true_jaccard = len(a & b) / len(a | b)
    estimate = similarity(sketch(" ".join(words), scheme), sketch(" ".join(edited), scheme))
    assert abs(estimate.jaccard - true_jaccard) < 0.12
    assert sketch("", scheme) is None
