"""Pruning story-cluster claims on a real Elasticsearch: old claims go, recent ones stay.

Claims (``band:<term>`` and ``article:<id>`` in ``<prefix>-clusters``) only settle copies handled
before the first one is searchable; :func:`veille.core.clusters.prune_claims` and ``veille clusters
prune`` delete those older than a cutoff. Indices are set up as tests/test_clusters.py does, and
articles come from its corpus (tests/fixtures/clusters/corpus.yaml).
"""

from __future__ import annotations

from datetime import timedelta

from elasticsearch import helpers

from tests.support.cluster_corpus import load_corpus
from tests.support.runner import clean_env, run_veille
from tests.test_clusters import fresh_prefix
from veille.core.article import utcnow
from veille.core.clusters import StoryClusters, prune_claims
from veille.core.es import IndexNames


def write_claims(es, claims: str, days_ago: int, articles: int, bands: int) -> set[str]:
    """Claims made ``days_ago``: ``articles`` records and ``bands`` band terms spread over them,
    shaped as the cluster stage writes them; returns their ids."""
    claimed_at = (utcnow() - timedelta(days=days_ago)).isoformat()
    article_ids = [f"a{days_ago}-{n}" for n in range(articles)]
    actions = []
    for article_id in article_ids:
        record = {"kind": "article", "article_id": article_id, "canonical_id": article_id,
                  "cluster_id": article_id, "language": "en", "claimed_at": claimed_at}  # fmt: skip
        actions.append({"_index": claims, "_id": f"article:{article_id}", **record})
    for n in range(bands):
        band = {"kind": "band", "article_id": article_ids[n % articles], "claimed_at": claimed_at}
        actions.append(
            {"_op_type": "create", "_index": claims, "_id": f"band:{days_ago:03d}{n:04d}", **band}
        )
    helpers.bulk(es, actions, refresh=True)
    return {action["_id"] for action in actions}


def claim_ids(es, claims: str) -> set[str]:
    es.indices.refresh(index=claims)
    hits = helpers.scan(es, index=claims, query={"query": {"match_all": {}}}, _source=False)
    return {hit["_id"] for hit in hits}


def test_claims_older_than_the_cutoff_are_deleted_page_by_page_and_recent_ones_stay(
    es, index_prefix
):
    claims = IndexNames(fresh_prefix(es, index_prefix)).clusters
    old = write_claims(es, claims, days_ago=30, articles=60, bands=2500)
    recent = write_claims(es, claims, days_ago=1, articles=5, bands=200)
    assert claim_ids(es, claims) == old | recent

    deleted = prune_claims(es, claims, timedelta(days=7), page_size=400)

    assert deleted == {"band": 2500, "article": 60}
    assert claim_ids(es, claims) == recent
    assert prune_claims(es, claims, timedelta(days=7), page_size=400) == {"band": 0, "article": 0}


def test_a_copy_is_still_found_after_the_first_articles_claims_are_pruned(es, index_prefix):
    corpus = {item.name: item.article for item in load_corpus()}
    first, copy = corpus["s1-en-ledger"], corpus["s1-en-courier"]
    names = IndexNames(fresh_prefix(es, index_prefix))
    assert StoryClusters(es, names.articles, names.clusters).assign(first).kind == "new"
    es.index(index=names.articles, id=first.id, document=first.to_document(), refresh=True)
    es.indices.refresh(index=names.clusters)

    deleted = prune_claims(es, names.clusters, timedelta(0))

    assert deleted == {"band": len(first.minhash["bands"]), "article": 1}
    assert claim_ids(es, names.clusters) == set()
    found = StoryClusters(es, names.articles, names.clusters).assign(copy)
    assert (found.kind, found.concurrent) == ("duplicate", False)
    assert copy.duplicate_of == first.id and copy.cluster_id == first.id


def test_veille_clusters_prune_keeps_claims_for_veille_claims_keep(es, es_url, index_prefix):
    prefix = fresh_prefix(es, index_prefix)
    claims = IndexNames(prefix).clusters
    write_claims(es, claims, days_ago=4, articles=2, bands=84)
    recent = write_claims(es, claims, days_ago=2, articles=1, bands=42)
    env = clean_env(VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=prefix, VEILLE_CLAIMS_KEEP="3d")

    done = run_veille("clusters", "prune", env=env)

    assert done.returncode == 0, done.stderr
    assert "deleted 84 band claims and 2 article records older than 3d" in done.stdout
    assert claim_ids(es, claims) == recent
    refused = run_veille("clusters", "prune", "--older-than", "10m", env=env)
    assert refused.returncode == 2 and "--older-than" in refused.stderr
