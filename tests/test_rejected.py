"""Rejected articles are kept a while and then forgotten, and none is lost while Elasticsearch is
down. Real parts: the local Elasticsearch node, the ``veille`` command line in subprocesses,
labelled articles served as news sites on 127.0.0.1 (what a crawl keeps in the rejected index
is checked end to end by tests/test_rescore.py)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.fixture_server import FixtureSites
from tests.support.relevance_site import outlet_of
from tests.support.retro import (
    OFF_TOPIC,
    ON_TOPIC,
    example_sources,
    labelled,
    page_url,
    relevance_sources,
    serve_subset,
    stored_article,
    write_topic_config,
)
from tests.support.runner import FAST_CRAWL, clean_env, run_veille
from veille.core.es import IndexNames, setup_indices
from veille.core.rejected import rejected_document, spool_root
from veille.core.spool import Spool, pending, store


@pytest.fixture
def prefix(es, index_prefix, request) -> str:
    name = f"{index_prefix}-{request.node.name[5:20].replace('_', '-')}"
    setup_indices(es, name)
    return name


def _kept(es, prefix: str) -> dict[str, dict]:
    index = IndexNames(prefix).rejected
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=100, query={"match_all": {}})["hits"]["hits"]
    return {hit["_source"]["canonical_url"]: hit["_source"] for hit in hits}


def test_prune_deletes_the_rejected_articles_kept_too_long_and_keeps_the_recent_ones(
    tmp_path, es, es_url, prefix
):
    config = write_topic_config(tmp_path / "config", example_sources(OFF_TOPIC))
    now = datetime.now(UTC)
    ages = dict(zip(OFF_TOPIC, (timedelta(days=40), timedelta(days=31), timedelta(days=29),
                                timedelta(hours=1)), strict=True))  # fmt: skip
    articles = {name: stored_article(labelled(name), config, now - age)
                for name, age in ages.items()}  # fmt: skip
    documents = [rejected_document(articles[name], None, now - age) for name, age in ages.items()]
    spool = Spool(spool_root(tmp_path / "data"), "test")
    report = store(es, IndexNames(prefix).rejected, documents, spool)
    assert (report.indexed, report.remaining) == (4, 0)
    es.indices.refresh(index=IndexNames(prefix).rejected)
    env = clean_env(VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=prefix, VEILLE_CONFIG=str(config))

    pruned = run_veille("rejected", "prune", env=env)

    assert pruned.returncode == 0, pruned.stderr
    assert "deleted 2 rejected articles older than 30d" in pruned.stdout
    recent = {articles[name].canonical_url for name in OFF_TOPIC[2:]}
    assert set(_kept(es, prefix)) == recent
    shorter = run_veille("rejected", "prune", "--older-than", "2h", env=env)
    assert "deleted 1 rejected articles older than 2h" in shorter.stdout
    assert set(_kept(es, prefix)) == {articles[OFF_TOPIC[3]].canonical_url}
    wrong = run_veille("rejected", "prune", "--older-than", "soon", env=env)
    assert wrong.returncode == 2 and "--older-than" in wrong.stderr
    assert "e.g. 30m, 2h, 1d" in wrong.stderr
    none_kept = run_veille("rejected", "prune", env={**env, "VEILLE_REJECTED_KEEP": "0"})
    assert "deleted 1 rejected articles" in none_kept.stdout
    assert _kept(es, prefix) == {}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_rejected_articles_wait_in_the_spool_while_elasticsearch_is_down(
    tmp_path, es, es_url, prefix
):
    names = [ON_TOPIC[0], *OFF_TOPIC[:2]]
    articles = {a.path.name: a for a in serve_subset(tmp_path, names)}
    with FixtureSites(tmp_path / "sites") as served:
        bases = {outlet: served.base_url(outlet) for outlet in served.outlets}
        config = write_topic_config(tmp_path / "config", relevance_sources(bases))
        env = clean_env(
            VEILLE_ES_URL=f"http://127.0.0.1:{_closed_port()}", VEILLE_INDEX_PREFIX=prefix,
            VEILLE_DATA_DIR=str(tmp_path / "data"), VEILLE_CONFIG=str(config),
            VEILLE_TRANSLATION="false",
        )  # fmt: skip
        crawl = run_veille(
            "crawl", "--all", *FAST_CRAWL, "--set", "VEILLE_PREFILTER_MIN_WORDS=0", env=env
        )
        urls = {name: page_url(bases[outlet_of(a)], a) for name, a in articles.items()}

    assert crawl.returncode == 0, crawl.stderr
    assert len(pending(spool_root(tmp_path / "data"))) == 1
    listed = run_veille("spool", "list", env=env)
    assert "2 rejected articles waiting for replay" in listed.stdout

    replayed = run_veille("spool", "replay", env={**env, "VEILLE_ES_URL": es_url})

    assert replayed.returncode == 0, replayed.stderr
    assert "rejected articles replayed: 2 kept" in replayed.stdout
    kept = _kept(es, prefix)
    assert set(kept) == {urls[name.split("/")[1]] for name in OFF_TOPIC[:2]}
    assert all(doc["closest"]["rule"] and doc["text"] for doc in kept.values())
    assert pending(spool_root(tmp_path / "data")) == []
