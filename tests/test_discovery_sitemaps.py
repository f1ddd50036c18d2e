"""News sitemaps: a sitemap index leads to news sitemaps (one gzip-compressed); only recent
entries are fetched, robots.txt is obeyed, and only on-topic articles are indexed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import yaml

from tests.support.discovery_server import DiscoveryServer
from tests.support.runner import FAST_CRAWL, clean_env, run_veille, write_config
from veille.core.es import IndexNames

pytestmark = pytest.mark.slow

# Entries dated before this are old for the crawl below (VEILLE_SITEMAP_MAX_AGE is set from it).
CUTOFF = datetime(2025, 10, 1, tzinfo=UTC)
EUROPE = "/news/2026/02/europe-chinese-police-stations-netherlands-ireland.html"
RECENT_ON_TOPIC = {
    ("le-veilleur", "/2026/04/registre-influence-etrangere-diasporas-hongkongaises.html"),
    ("le-veilleur", "/2025/11/repression-transnationale-ouighours-tibetains-quebec.html"),
    ("northern-ledger", EUROPE),
    (
        "northern-ledger",
        "/news/2025/10/transnational-repression-bounties-hong-kong-activists-canada.html",
    ),
}
RECENT_OFF_TOPIC = {
    ("le-veilleur", "/2026/01/recette-tarte-au-sucre-erable.html"),
    ("le-veilleur", "/2025/12/budget-2026-riviere-aux-saules.html"),
    ("northern-ledger", "/city/2026/01/port-ashby-council-passes-2026-budget.html"),
}
OLD = {
    ("le-veilleur", "/2025/06/postes-de-police-fuzhou-110-overseas.html"),
    ("le-veilleur", "/2025/03/commissariats-chinois-enquete-grc-montreal-brossard.html"),
    ("northern-ledger", "/news/2025/01/rcmp-probe-chinese-police-stations-toronto.html"),
}


@pytest.fixture(scope="module")
def crawled(sites, es_url, index_prefix, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sitemaps")
    with DiscoveryServer(sites) as discovery:
        config = write_config(folder / "config", sites, outlets=[])
        sources = [
            {
                "name": "groupe-veilleur-ledger",
                "type": "sitemap",
                "urls": [discovery.url("/sitemap-index.xml")],
                "schedule": {"every": "1h"},
            }
        ]
        (config / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}))
        env = clean_env(
            VEILLE_ES_URL=es_url,
            VEILLE_INDEX_PREFIX=index_prefix,
            VEILLE_DATA_DIR=str(folder / "data"),
            VEILLE_CONFIG=str(config),
        )
        assert run_veille("setup", env=env).returncode == 0
        sites.clear_requests()
        max_age = f"{(datetime.now(UTC) - CUTOFF).days}d"
        stats_file = folder / "stats.json"
        result = run_veille(
            "crawl", "--all", "--json", *FAST_CRAWL,
            "--set", f"VEILLE_SITEMAP_MAX_AGE={max_age}",
            "--set", f"VEILLE_STATS_FILE={stats_file}",
            env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        first = {
            "summary": json.loads(result.stdout)[0],
            "stats": json.loads(stats_file.read_text()),
            "discovery": [seen.path for seen in discovery.requests()],
            "requested": _requested(sites),
        }
        # Again, reading every sitemap in full (no conditional request): nothing is new.
        sites.clear_requests()
        again = run_veille(
            "crawl", "--all", "--json", *FAST_CRAWL,
            "--set", f"VEILLE_SITEMAP_MAX_AGE={max_age}",
            "--set", "VEILLE_CONDITIONAL_REQUESTS=false",
            env=env,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        yield {**first, "again": json.loads(again.stdout)[0], "requested_again": _requested(sites)}


def _requested(sites) -> set[tuple[str, str]]:
    return {
        (outlet, path.split("?")[0])
        for outlet in ("le-veilleur", "northern-ledger")
        for path in sites.requests(outlet)
    }


def _indexed(es, index_prefix) -> dict[str, dict]:
    index = IndexNames(index_prefix).articles
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=100, query={"match_all": {}})["hits"]["hits"]
    return {hit["_source"]["canonical_url"]: hit["_source"] for hit in hits}


def test_index_leads_to_recent_on_topic_articles_only(crawled, sites, es, index_prefix):
    indexed = _indexed(es, index_prefix)
    assert set(indexed) == {sites.url(outlet, path) for outlet, path in RECENT_ON_TOPIC}
    for doc in indexed.values():
        assert doc["source"]["name"] == "groupe-veilleur-ledger"
        assert doc["source"]["type"] == "sitemap"
        assert doc["discovered_via"]["kind"] == "sitemap"
        assert doc["discovered_via"]["source"] == "groupe-veilleur-ledger"
    europe = indexed[sites.url("northern-ledger", EUROPE)]
    assert europe["discovered_via"]["feed"].endswith("/sitemaps/northern-ledger-news.xml.gz")


def test_recent_off_topic_pages_are_fetched_and_judged(crawled):
    assert crawled["requested"] >= RECENT_OFF_TOPIC
    assert crawled["summary"]["dropped"]["off_topic"] == len(RECENT_OFF_TOPIC)


def test_old_entries_and_old_sub_sitemaps_are_not_fetched(crawled):
    assert not OLD & crawled["requested"]
    assert "/sitemaps/archive-2024.xml" not in crawled["discovery"]
    assert "/sitemaps/northern-ledger-news.xml.gz" in crawled["discovery"]
    assert crawled["stats"]["veille/sitemaps/old_skipped"] == 1
    assert crawled["stats"]["veille/sitemaps/old_entries"] == len(OLD)


def test_gzip_sitemap_is_read(crawled):
    # the index, le-veilleur's plain news sitemap and the gzip one
    assert crawled["stats"]["veille/sitemaps/read"] == 3
    assert crawled["stats"].get("veille/sitemaps/malformed", 0) == 0


def test_robots_txt_disallowed_entry_is_not_fetched(crawled, sites):
    assert ("northern-ledger", "/robots.txt") in crawled["requested"]
    assert ("northern-ledger", "/private/draft-budget-notes.html") not in crawled["requested"]
    assert crawled["stats"]["robotstxt/forbidden"] == 1


def test_sitemap_source_appears_in_crawl_summary(crawled):
    summary = crawled["summary"]
    assert summary["spider"] == "sitemap"
    assert summary["finish_reason"] == "finished"
    assert summary["indexed"] == len(RECENT_ON_TOPIC)


def test_second_crawl_fetches_no_entry_older_than_the_first_read(crawled):
    pages = {path for _, path in crawled["requested_again"]}
    assert pages == {"/robots.txt", "/sitemap-news.xml"}, "no article page is fetched again"
    assert crawled["again"]["pages_fetched"] == 0
    assert crawled["again"]["finish_reason"] == "finished"
