"""From fixture feeds to searchable articles in a real Elasticsearch, through `veille` itself."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.runner import FAST_CRAWL, clean_env, run_veille, write_config
from veille.core.es import IndexNames
from veille.core.urls import canonicalize

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def crawled(sites, es_url, index_prefix, tmp_path_factory):
    """One `veille crawl --all` over every fixture outlet, then the first summary and env."""
    folder = tmp_path_factory.mktemp("e2e")
    config = write_config(folder / "config", sites)
    env = clean_env(
        VEILLE_ES_URL=es_url,
        VEILLE_INDEX_PREFIX=index_prefix,
        VEILLE_DATA_DIR=str(folder / "data"),
        VEILLE_CONFIG=str(config),
    )
    setup = run_veille("setup", env=env)
    assert setup.returncode == 0, setup.stderr
    sites.clear_requests()
    first = run_veille("crawl", "--all", "--json", *FAST_CRAWL, env=env)
    assert first.returncode == 0, first.stderr
    return {"env": env, "summary": json.loads(first.stdout), "stderr": first.stderr}


def _indexed(es, index_prefix) -> dict[str, dict]:
    index = IndexNames(index_prefix).articles
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=500, query={"match_all": {}})["hits"]["hits"]
    return {hit["_source"]["canonical_url"]: hit["_source"] for hit in hits}


def _pages(sites, **wanted):
    """Manifest pages of the well-formed outlets (the malformed feed leads nowhere)."""
    outlets = sites.manifest["outlets"]
    return [
        page
        for page in sites.manifest["pages"]
        if not outlets[page["outlet"]].get("malformed")
        and all(page.get(key) == value for key, value in wanted.items())
    ]


def test_exactly_the_on_topic_articles_are_indexed(crawled, sites, es, index_prefix):
    indexed = _indexed(es, index_prefix)
    expected = {
        canonicalize(sites.base_url(page["outlet"]) + page["path"]): page
        for page in _pages(sites, kind="article", on_topic=True)
    }
    assert set(indexed) == set(expected)
    for url, page in expected.items():
        doc = indexed[url]
        assert doc["language"] == page["language"]
        assert doc["title"] == page["title"]
        for sentence in page["text_contains"]:
            assert sentence in doc["text"]
        assert datetime.fromisoformat(doc["published_at"]) == datetime.fromisoformat(
            page["published_at"]
        )
        outlet = sites.manifest["outlets"][page["outlet"]]
        assert doc["source"]["name"] == page["outlet"]
        assert doc["source"]["country"] == outlet["country"]
        assert doc["authors"] == page["authors"]
        assert doc["topics"] == ["overseas-police-stations"]
        relevance = doc["relevance"]
        assert relevance["score"] > 0 and relevance["topic"] == "overseas-police-stations"
        assert relevance["rule"] in relevance["rules"]
        for match in relevance["matches"]:  # the words where the rule matched, at their offsets
            assert doc[match["field"]][match["start"] : match["end"]].startswith(match["text"])


def test_off_topic_and_non_articles_are_counted_as_dropped(crawled, sites):
    summary = {s["spider"]: s for s in crawled["summary"]}["feed"]
    off_topic = _pages(sites, kind="article", on_topic=False)
    not_articles = _pages(sites, kind="not_article")
    # every page of a good outlet is fetched once: tracking-parameter spellings collapse
    assert summary["pages_fetched"] == len(_pages(sites))
    assert summary["dropped"].get("off_topic", 0) == len(off_topic)
    assert summary["dropped"].get("too_short", 0) == len(not_articles)
    on_topic = _pages(sites, kind="article", on_topic=True)
    assert summary["indexed"] == len(on_topic)


def test_malformed_feed_is_reported_and_skipped(crawled):
    summary = crawled["summary"][0]
    assert summary["feeds_malformed"] == 1
    assert summary["finish_reason"] == "finished"
    assert "malformed feed" in crawled["stderr"]
    assert "broken-gazette" in crawled["stderr"]


def test_article_behind_tracking_parameters_is_indexed_once(crawled, sites, es, index_prefix):
    tracked = [p for p in _pages(sites) if len(p.get("feed_urls", [])) > 1]
    assert tracked, "the fixture sites list one article under two URLs"
    indexed = _indexed(es, index_prefix)
    for page in tracked:
        base = sites.base_url(page["outlet"])
        matches = [d for d in indexed.values() if d["canonical_url"] == base + page["path"]]
        assert len(matches) == (1 if page["on_topic"] else 0)


def test_second_crawl_fetches_no_indexed_page_and_indexes_nothing(crawled, sites):
    sites.clear_requests()
    # Feeds read in full (unchanged feeds would answer 304 and not be read at all).
    second = run_veille(
        "crawl", "--all", "--json", *FAST_CRAWL,
        "--set", "VEILLE_CONDITIONAL_REQUESTS=false", env=crawled["env"],
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)[0]
    assert summary["indexed"] == 0
    indexed_paths = {(p["outlet"], p["path"]) for p in _pages(sites, kind="article", on_topic=True)}
    for outlet in sites.outlets:
        for requested in sites.requests(outlet):
            assert (outlet, requested.split("?")[0]) not in indexed_paths, requested
    assert summary["already_indexed_skipped"] == len(indexed_paths)


def test_french_query_with_other_inflection_finds_french_article(crawled, sites):
    plural_only = [
        p
        for p in _pages(sites, kind="article", on_topic=True, language="fr")
        if p.get("inflections", {}).get("commissariats")
    ]
    assert plural_only, "a French fixture article uses only the plural 'commissariats'"
    result = run_veille("search", "commissariat", "--lang", "fr", "--json", env=crawled["env"])
    assert result.returncode == 0, result.stderr
    titles = {hit["title"] for hit in json.loads(result.stdout)}
    assert {p["title"] for p in plural_only} <= titles


def test_search_prints_a_readable_table(crawled, sites):
    result = run_veille("search", "Safeguard Defenders", "--since", "3650d", env=crawled["env"])
    assert result.returncode == 0, result.stderr
    assert "articles matching 'Safeguard Defenders'" in result.stdout
    assert "published" in result.stdout and "source" in result.stdout


def test_search_speaks_the_query_language(crawled):
    def titles(query: str) -> set[str]:
        result = run_veille("search", query, "--since", "3650d", "--json", env=crawled["env"])
        assert result.returncode == 0, result.stderr
        return {hit["title"] for hit in json.loads(result.stdout)}

    near = titles('"police stations" NEAR/3 Chinese')
    assert near and near <= titles("police AND Chinese")
    assert titles("Fuzhou | Qingtian") == titles("Fuzhou OR Qingtian")
    assert titles("police -Toronto") == titles("police NOT Toronto") < titles("police")
    broken = run_veille("search", "police NEAR/3 NOT china", env=crawled["env"])
    assert broken.returncode == 2
    assert "at character 15: NOT inside NEAR" in broken.stderr


def test_search_explain_shows_why_each_result_is_on_topic(crawled):
    result = run_veille("search", "Safeguard Defenders", "--since", "3650d", "-n", "3",
                        "--explain", env=crawled["env"])  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    assert result.stdout.count("indexed by overseas-police-stations rule") == 3
    assert result.stdout.count("ON TOPIC") == 3
    assert "✓ any/safeguard-defenders" in result.stdout


def test_setup_is_idempotent(crawled, es, index_prefix):
    before = _indexed(es, index_prefix)
    again = run_veille("setup", env=crawled["env"])
    assert again.returncode == 0, again.stderr
    assert "updated" in again.stdout
    assert _indexed(es, index_prefix).keys() == before.keys()


def test_unreachable_elasticsearch_exits_3_with_advice(tmp_path: Path, crawled):
    env = {**crawled["env"], "VEILLE_ES_URL": "http://127.0.0.1:9"}
    result = run_veille("search", "x", env=env)
    assert result.returncode == 3
    assert "scripts/es-local start" in result.stderr
