"""Story clusters on a real Elasticsearch: copies marked, translations linked, races settled.

The corpus (tests/fixtures/clusters/corpus.yaml) is 32 articles we wrote: wire stories with
copies (edited headlines, trimmed endings, added paragraphs, other boilerplate), French and
Spanish versions with the English translations a machine would make, and distinct stories on
the same topic that must merge with nothing. Articles go through ``StoryClusters.assign`` one
after the other, or ``StoryClusters.assign_batch`` (what the crawl's cluster stage calls) a batch
at a time, and are indexed as the index stage indexes them. Requests are counted by the
client's own node class (tests/support/es_requests.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.cluster_corpus import Labelled, load_corpus, pairs
from tests.support.es_requests import counting_client
from tests.support.runner import ROOT, clean_env, run_veille
from veille.core.clusters import StoryClusters
from veille.core.config import Environment
from veille.core.es import IndexNames, load_template, make_client


def fresh_prefix(es, index_prefix: str) -> str:
    """Articles and claims indices of their own for one test (removed with the module's prefix).

    Only the two templates clustering uses are installed, from index_config/ as ``veille setup``
    installs them, so this module does not depend on the other features' templates.
    """
    prefix = f"{index_prefix}-{uuid.uuid4().hex[:6]}"
    for name in ("articles", "clusters"):
        alias = f"{prefix}-{name}"
        es.indices.put_index_template(name=alias, **load_template(name, prefix))
        es.indices.create(index=f"{alias}-000001", aliases={alias: {"is_write_index": True}})
    return prefix


def index(es, prefix: str, items: list[Labelled]) -> list[dict]:
    """Cluster and index articles one after the other, as a crawl does; returns the documents."""
    names = IndexNames(prefix)
    clusters = StoryClusters(es, names.articles, names.clusters)
    for item in items:
        clusters.assign(item.article)
        es.index(
            index=names.articles, id=item.article.id, document=item.article.to_document(),
            op_type="create", refresh=True,
        )  # fmt: skip
    return stored(es, prefix)


def index_in_batches(es, prefix: str, items: list[Labelled], size: int) -> list[dict]:
    """Cluster ``size`` articles at a time, then index them in one bulk, as a crawl does."""
    names = IndexNames(prefix)
    clusters = StoryClusters(es, names.articles, names.clusters)
    for start in range(0, len(items), size):
        batch = [item.article for item in items[start : start + size]]
        outcomes = clusters.assign_batch(batch)
        assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
        operations: list[dict] = []
        for article in batch:
            operations += [{"create": {"_index": names.articles, "_id": article.id}},
                           article.to_document()]  # fmt: skip
        assert not es.bulk(operations=operations, refresh=True)["errors"]
    return stored(es, prefix)


def stored(es, prefix: str) -> list[dict]:
    articles = IndexNames(prefix).articles
    es.indices.refresh(index=articles)
    hits = es.search(index=articles, size=1000, query={"match_all": {}})["hits"]["hits"]
    return [{"_id": hit["_id"], **hit["_source"]} for hit in hits]


def precision_recall(truth: set, predicted: set) -> tuple[float, float]:
    found = truth & predicted
    precision = len(found) / len(predicted) if predicted else 1.0
    return precision, len(found) / len(truth)


@pytest.fixture(scope="module")
def corpus_run(es_url, index_prefix):
    from veille.core.config import Environment
    from veille.core.es import make_client

    client = make_client(Environment(es_url=es_url, index_prefix=index_prefix))
    corpus = load_corpus()
    prefix = fresh_prefix(client, index_prefix)
    docs = {doc["_id"]: doc for doc in index(client, prefix, corpus)}
    client.close()
    return corpus, {item.name: docs[item.article.id] for item in corpus}, prefix


def test_corpus_is_big_enough_to_measure_and_covers_every_kind_of_copy():
    corpus = load_corpus()
    assert len(corpus) >= 30
    assert {item.article.language for item in corpus} == {"fr", "en", "es"}
    assert len(pairs(corpus, lambda item: item.group)) >= 15
    assert len({item.story for item in corpus}) >= 10


def test_same_language_copies_are_paired_with_high_precision_and_recall(corpus_run):
    corpus, docs, _ = corpus_run
    truth = pairs(corpus, lambda item: item.group)
    predicted = pairs(corpus, lambda item: docs[item.name].get("duplicate_of") or item.article.id)
    precision, recall = precision_recall(truth, predicted)
    print(f"same-language copies: {len(truth)} true pairs, precision {precision:.3f}, "
          f"recall {recall:.3f}")  # fmt: skip
    assert precision >= 0.95
    assert recall >= 0.90


def test_copies_are_kept_and_point_to_the_first_seen_article(corpus_run):
    corpus, docs, _ = corpus_run
    assert len(docs) == len(corpus), "no copy may be dropped"
    by_group: dict[str, list[Labelled]] = {}
    for item in corpus:
        by_group.setdefault(item.group, []).append(item)
    for group in by_group.values():
        first = min(group, key=lambda item: item.article.first_seen_at)
        assert "duplicate_of" not in docs[first.name], first.name
        for later in group:
            if later is not first:
                assert docs[later.name]["duplicate_of"] == first.article.id, later.name
                assert docs[later.name]["cluster_id"] == docs[first.name]["cluster_id"]


def test_distinct_stories_on_the_same_topic_stay_in_clusters_of_their_own(corpus_run):
    corpus, docs, _ = corpus_run
    for item in corpus:
        if item.story.startswith("d"):
            assert docs[item.name]["cluster_id"] == item.article.id, item.name
            others = [o.name for o in corpus if docs[o.name]["cluster_id"] == item.article.id]
            assert others == [item.name]


def test_translated_versions_share_a_cluster_and_keep_their_own_identity(corpus_run):
    corpus, docs, _ = corpus_run
    assert all(doc.get("cluster_id") for doc in docs.values()), "every article has a cluster"

    def cross(key):
        return {
            pair
            for pair in pairs(corpus, key)
            if len({docs[name]["language"] for name in pair}) == 2
        }

    truth = cross(lambda item: item.story)
    predicted = cross(lambda item: docs[item.name]["cluster_id"])
    precision, recall = precision_recall(truth, predicted)
    print(f"cross-language versions: {len(truth)} true pairs, precision {precision:.3f}, "
          f"recall {recall:.3f}")  # fmt: skip
    assert precision >= 0.95
    assert recall >= 0.90
    by_id = {doc["_id"]: doc for doc in docs.values()}
    for doc in docs.values():
        if "duplicate_of" in doc:
            assert by_id[doc["duplicate_of"]]["language"] == doc["language"]


def test_search_collapse_shows_each_story_once_with_how_far_it_spread(corpus_run, es_url):
    corpus, docs, prefix = corpus_run
    env = clean_env(VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=prefix)
    every = run_veille("search", "Chinese police", "-n", "100", "--json", env=env)
    collapsed = run_veille("search", "Chinese police", "-n", "100", "--json", "--collapse", env=env)
    assert collapsed.returncode == 0, collapsed.stderr
    stories = json.loads(collapsed.stdout)
    assert len(json.loads(every.stdout)) == len(corpus)
    assert len(stories) == len({item.story for item in corpus})
    assert len({hit["cluster_id"] for hit in stories}) == len(stories)
    spread = {hit["cluster_id"]: hit["cluster_articles"] for hit in stories}
    montreal = docs["s1-en-ledger"]["cluster_id"]
    assert spread[montreal] == sum(item.story == "s1" for item in corpus)


def test_versions_published_outside_the_window_are_not_linked(es, index_prefix):
    corpus = {item.name: item for item in load_corpus()}
    english, french = corpus["s2-en-ledger"], corpus["s2-fr-veilleur"]
    late = replace(
        french.article,
        url="https://le-veilleur.example/s2-republished",
        canonical_url="https://le-veilleur.example/s2-republished",
        published_at=french.article.published_at + timedelta(days=20),
    )
    docs = {
        d["_id"]: d
        for d in index(es, fresh_prefix(es, index_prefix), [english, replace(french, article=late)])
    }
    assert docs[late.id]["cluster_id"] == late.id
    docs = {d["_id"]: d for d in index(es, fresh_prefix(es, index_prefix), [english, french])}
    assert docs[french.article.id]["cluster_id"] == docs[english.article.id]["cluster_id"]


def run_worker(prefix: str, es_url: str, names: list[str], barrier: Path | None = None):
    """A worker process (tests/support/cluster_worker.py); workers sharing a barrier race."""
    race = ["--barrier", str(barrier), "--parties", "2"] if barrier else []
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.cluster_worker", "--names", ",".join(names), *race],
        cwd=ROOT, env=clean_env(VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=prefix),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def outcome(worker: subprocess.Popen) -> tuple[dict[str, str], dict[str, int]]:
    """The worker's article ids by corpus name, and the crawl stats its cluster stage counted."""
    out, err = worker.communicate(timeout=180)
    assert worker.returncode == 0, err
    result = json.loads(out.splitlines()[-1])
    return result["ids"], result["stats"]


def test_crawl_stats_count_near_duplicates_and_cross_language_links(es, es_url, index_prefix):
    prefix = fresh_prefix(es, index_prefix)
    names = ["s2-en-ledger", "s2-fr-veilleur", "s2-es-vigia", "s2-en-courier", "d2-en-persuade"]
    ids, stats = outcome(run_worker(prefix, es_url, names))
    assert stats["veille/duplicates/near"] == 1
    assert stats["veille/clusters/cross_language"] == 2
    assert stats["veille/clusters/new"] == 2
    docs = {doc["_id"]: doc for doc in stored(es, prefix)}
    story = {docs[ids[name]]["cluster_id"] for name in names[:4]}
    assert story == {ids["s2-en-ledger"]}
    assert docs[ids["d2-en-persuade"]]["cluster_id"] == ids["d2-en-persuade"]


def test_a_new_process_detects_a_copy_of_an_article_indexed_before_the_restart(
    es, es_url, index_prefix
):
    prefix = fresh_prefix(es, index_prefix)
    first, _ = outcome(run_worker(prefix, es_url, ["s3-es-vigia"]))
    second, stats = outcome(run_worker(prefix, es_url, ["s3-es-cronica"]))
    docs = {doc["_id"]: doc for doc in stored(es, prefix)}
    assert docs[second["s3-es-cronica"]]["duplicate_of"] == first["s3-es-vigia"]
    assert stats["veille/duplicates/near"] == 1
    assert "veille/duplicates/near_concurrent" not in stats, (
        "found through the band terms stored on the indexed article"
    )


def test_two_processes_indexing_copies_at_once_end_with_one_canonical_article(
    es, es_url, index_prefix, tmp_path
):
    prefix = fresh_prefix(es, index_prefix)
    one = ["s1-en-ledger", "s2-en-courier", "s6-en-gazette", "s5-en-ledger", "s4-fr-matin"]
    two = ["s1-en-courier", "s2-en-ledger", "s6-en-ledger", "s5-en-courier", "s4-fr-veilleur"]
    workers = [run_worker(prefix, es_url, names, tmp_path) for names in (one, two)]
    (ids_one, stats_one), (ids_two, stats_two) = outcome(workers[0]), outcome(workers[1])
    ids = {**ids_one, **ids_two}
    docs = {doc["_id"]: doc for doc in stored(es, prefix)}
    for pair in zip(one, two, strict=True):
        pair_ids = [ids[name] for name in pair]
        canonical = [i for i in pair_ids if "duplicate_of" not in docs[i]]
        assert len(canonical) == 1, f"{pair}: canonical articles {canonical}"
        copy = next(i for i in pair_ids if i not in canonical)
        assert docs[copy]["duplicate_of"] == canonical[0]
        assert docs[copy]["cluster_id"] == docs[canonical[0]]["cluster_id"]
    concurrent = [s.get("veille/duplicates/near_concurrent", 0) for s in (stats_one, stats_two)]
    assert sum(concurrent) == len(one), "neither copy was searchable: claims settled every pair"


def test_the_corpus_clustered_in_batches_ends_as_one_article_at_a_time(
    corpus_run, es, index_prefix
):
    _, one_by_one, _ = corpus_run
    fresh = load_corpus()
    docs = {
        doc["_id"]: doc for doc in index_in_batches(es, fresh_prefix(es, index_prefix), fresh, 8)
    }
    for item in fresh:
        doc, alone = docs[item.article.id], one_by_one[item.name]
        assert doc.get("duplicate_of") == alone.get("duplicate_of"), item.name
        assert doc["cluster_id"] == alone["cluster_id"], item.name


def test_a_near_duplicate_later_in_the_same_batch_is_marked_duplicate_of_the_first(
    es, index_prefix
):
    corpus = {item.name: item.article for item in load_corpus()}
    first, other, copy = corpus["s1-en-ledger"], corpus["d2-en-persuade"], corpus["s1-en-courier"]
    names = IndexNames(fresh_prefix(es, index_prefix))
    clusters = StoryClusters(es, names.articles, names.clusters)
    found = clusters.assign_batch([first, other, copy])
    assert [a.kind for a in found] == ["new", "new", "duplicate"]
    assert copy.duplicate_of == first.id and copy.cluster_id == first.cluster_id == first.id
    assert first.duplicate_of is None and other.cluster_id == other.id


def test_an_english_article_and_its_french_version_in_one_batch_are_linked(es, index_prefix):
    corpus = {item.name: item.article for item in load_corpus()}
    english, french = corpus["s2-en-ledger"], corpus["s2-fr-veilleur"]
    assert french.translation["en"]["text"], "the French version carries its translation"
    names = IndexNames(fresh_prefix(es, index_prefix))
    clusters = StoryClusters(es, names.articles, names.clusters)
    found = clusters.assign_batch([english, french])
    assert [a.kind for a in found] == ["new", "cross_language"]
    assert french.cluster_id == english.cluster_id == english.id
    assert french.duplicate_of is None


def test_two_processes_each_with_a_copy_in_a_batch_at_once_end_with_one_canonical(
    es, es_url, index_prefix
):
    """Two StoryClusters with clients of their own, as two crawler processes have, released
    together: neither copy is searchable, the band claims settle every pair."""
    one = ["s1-en-ledger", "s2-en-courier", "s6-en-gazette", "s5-en-ledger", "s4-fr-matin"]
    two = ["s1-en-courier", "s2-en-ledger", "s6-en-ledger", "s5-en-courier", "s4-fr-veilleur"]
    corpus = {item.name: item.article for item in load_corpus()}
    prefix = fresh_prefix(es, index_prefix)
    names = IndexNames(prefix)
    start = threading.Barrier(2)
    found: dict[str, object] = {}

    def process(batch: list[str]) -> None:
        client = make_client(Environment(es_url=es_url, index_prefix=prefix))
        clusters = StoryClusters(client, names.articles, names.clusters)
        start.wait()
        found.update(zip(batch, clusters.assign_batch([corpus[n] for n in batch]), strict=True))
        client.close()

    workers = [threading.Thread(target=process, args=(batch,)) for batch in (one, two)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    for pair in zip(one, two, strict=True):
        articles = [corpus[name] for name in pair]
        canonical = [a for a in articles if a.duplicate_of is None]
        assert len(canonical) == 1, f"{pair}: {[found[name] for name in pair]}"
        copy = next(a for a in articles if a is not canonical[0])
        assert copy.duplicate_of == canonical[0].id
        assert copy.cluster_id == canonical[0].cluster_id
    settled = [name for name in one + two if getattr(found[name], "concurrent", False)]
    assert len(settled) == len(one), "neither copy was searchable: claims settled every pair"


def test_a_batch_of_articles_costs_a_handful_of_requests(es, es_url, index_prefix):
    items = load_corpus()
    prefix = fresh_prefix(es, index_prefix)
    names = IndexNames(prefix)
    client, sent = counting_client(es_url, prefix)
    clusters = StoryClusters(client, names.articles, names.clusters)
    found = clusters.assign_batch([item.article for item in items[:16]])
    client.close()
    assert not [o for o in found if isinstance(o, Exception)]
    assert sum(a.kind == "duplicate" for a in found) >= 2, "copies settled inside the batch"
    assert sum(a.kind == "cross_language" for a in found) >= 2, "versions linked in the batch"
    print(f"16 articles in one batch: {len(sent)} requests: {sent}")
    assert sent[:2] == ["/_msearch", "/_bulk"]
    assert len(sent) <= 5, sent


@pytest.mark.parametrize(
    ("name", "value", "key"),
    [
        ("VEILLE_NEAR_DUPLICATE_THRESHOLD", "1.5", "VEILLE_NEAR_DUPLICATE_THRESHOLD"),
        ("VEILLE_CROSS_LANGUAGE_WINDOW", "soon", "VEILLE_CROSS_LANGUAGE_WINDOW"),
        ("VEILLE_MINHASH_BANDS", "0", "VEILLE_MINHASH_*"),
    ],
)
def test_a_bad_cluster_setting_is_refused_with_its_name(name, value, key):
    from veille.core.config import ConfigError
    from veille.core.settings import cluster_settings
    from veille.ops.crawl import crawl_settings

    with pytest.raises(ConfigError) as refused:
        cluster_settings(crawl_settings({name: value}))
    assert refused.value.key == key
    assert "crawler/settings.py" in str(refused.value)
