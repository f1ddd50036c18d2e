"""The dedupe and cluster stages batch their Elasticsearch look-ups without changing outcomes.

Articles of the story-cluster corpus go through the stages all at once, in a worker process with
its own reactor (tests/support/stage_worker.py), so they share batches as in a busy crawl; with
a small ``VEILLE_CLUSTER_BATCH`` the same articles take several batches (the last one started by
its wait), and end the same.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from pipelines.dedupe import indexed_duplicates
from tests.support.es_requests import counting_client
from tests.support.runner import ROOT, clean_env
from tests.support.stage_worker import corpus_article
from veille.core.es import IndexNames, setup_indices

DEDUPE = "pipelines.dedupe.DedupeStage"
CLUSTER = "pipelines.cluster.ClusterStage"


def run_stages(es_url: str, prefix: str, stages: list[str], articles: list[str], *settings: str):
    """Outcomes per article (in the order given) and the stages' stats."""
    command = [
        sys.executable, "-m", "tests.support.stage_worker", "--stages", ",".join(stages),
        "--articles", ",".join(articles), *(f"--set={s}" for s in settings),
    ]  # fmt: skip
    env = clean_env(VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=prefix)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    return result["articles"], result["stats"]


@pytest.fixture
def prefix(es, index_prefix):
    """Indices of their own for one test (removed with the module's prefix)."""
    name = f"{index_prefix}-{uuid.uuid4().hex[:6]}"
    setup_indices(es, name)
    return name


@pytest.mark.parametrize("batch", ["32", "3"])
def test_copies_in_one_dedupe_batch_are_dropped_in_arrival_order(es, es_url, prefix, batch):
    for name in ("s3-es-vigia", "s4-fr-matin"):
        article = corpus_article(name)
        es.index(index=IndexNames(prefix).articles, id=article.id,
                 document=article.to_document(), refresh=True)  # fmt: skip
    articles = [
        "s1-en-ledger",
        "s1-en-ledger@https://mirror.example/s1-a",
        "d2-en-persuade",
        "s1-en-ledger@https://mirror.example/s1-b",
        "s1-en-ledger",
        "s3-es-vigia",
        "s4-fr-matin@https://mirror.example/s4",
    ]
    outcomes, stats = run_stages(
        es_url, prefix, [DEDUPE], articles, f"VEILLE_CLUSTER_BATCH={batch}"
    )
    said = [o["outcome"] for o in outcomes]
    ledger, vigia = corpus_article("s1-en-ledger").url, corpus_article("s3-es-vigia").url
    assert said == [
        "passed",
        "duplicate_content: https://mirror.example/s1-a (seen earlier in this crawl)",
        "passed",
        "duplicate_content: https://mirror.example/s1-b (seen earlier in this crawl)",
        f"duplicate_url: {ledger} (seen earlier in this crawl)",
        f"duplicate_url: {vigia} (already indexed)",
        "duplicate_content: https://mirror.example/s4 (already indexed)",
    ]
    assert stats["veille/dropped/duplicate_content"] == 3
    assert stats["veille/dropped/duplicate_url"] == 2


def test_a_dedupe_batch_is_one_request(es, es_url, prefix):
    indexed = corpus_article("s3-es-vigia")
    es.index(index=IndexNames(prefix).articles, id=indexed.id,
             document=indexed.to_document(), refresh=True)  # fmt: skip
    batch = [
        corpus_article("s3-es-vigia"),
        corpus_article("s3-es-vigia@https://mirror.example/s3"),
        corpus_article("s1-en-ledger"),
    ]
    client, sent = counting_client(es_url, prefix)
    reasons = indexed_duplicates(client, IndexNames(prefix).articles, batch)
    client.close()
    assert reasons == ["duplicate_url", "duplicate_content", None]
    assert sent == ["/_msearch"]


@pytest.mark.parametrize("batch", ["32", "2"])
def test_the_cluster_stage_marks_copies_and_links_versions_batch_after_batch(es_url, prefix, batch):
    names = ["s2-en-ledger", "d2-en-persuade", "s2-fr-veilleur", "s2-en-courier", "s2-es-vigia"]
    outcomes, stats = run_stages(es_url, prefix, [CLUSTER], names, f"VEILLE_CLUSTER_BATCH={batch}")
    by_name = dict(zip(names, outcomes, strict=True))
    english = corpus_article("s2-en-ledger").id
    for name in ("s2-en-ledger", "s2-fr-veilleur", "s2-en-courier", "s2-es-vigia"):
        assert by_name[name]["cluster_id"] == english, name
    assert by_name["s2-en-courier"]["duplicate_of"] == english
    assert by_name["d2-en-persuade"]["cluster_id"] == corpus_article("d2-en-persuade").id
    assert stats["veille/duplicates/near"] == 1
    assert stats["veille/clusters/cross_language"] == 2
    assert stats["veille/clusters/new"] == 2


def test_elasticsearch_unreachable_during_a_batch_lets_every_article_through_alone(prefix):
    names = ["s2-en-ledger", "s2-en-courier", "s2-fr-veilleur"]
    outcomes, stats = run_stages("http://127.0.0.1:9", prefix, [DEDUPE, CLUSTER], names)
    for name, outcome in zip(names, outcomes, strict=True):
        assert outcome == {
            "outcome": "passed",
            "cluster_id": corpus_article(name).id,
            "duplicate_of": None,
        }, name
    assert stats["veille/dedupe/lookup_failed"] == len(names)
    assert stats["veille/clusters/lookup_failed"] == len(names)
