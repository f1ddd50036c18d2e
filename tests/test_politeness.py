"""Politeness and cheap filtering: a broad feed's ruled-out entries are not fetched, an unchanged
feed costs a 304 and no parse, a 429's Retry-After is waited for, 5xx retries back off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.support.discovery_server import DiscoveryServer
from tests.support.runner import FAST_CRAWL, clean_env, run_veille, write_config
from veille.core.es import IndexNames

pytestmark = pytest.mark.slow

FEED = "/feeds/la-une.rss"
RULED_OUT = {
    ("le-veilleur", "/2026/01/recette-tarte-au-sucre-erable.html"),
    ("le-veilleur", "/2025/12/budget-2026-riviere-aux-saules.html"),
    ("northern-ledger", "/sports/2025/05/otters-win-junior-title-double-overtime.html"),
    ("northern-ledger", "/city/2026/01/port-ashby-council-passes-2026-budget.html"),
    ("el-vigia", "/gastronomia/2025/07/gazpacho-andaluz-receta-clasica.html"),
}
SAYS_NOTHING_ON_TOPIC = (
    "le-veilleur",
    "/2025/11/repression-transnationale-ouighours-tibetains-quebec.html",
)
SAYS_NOTHING_OFF_TOPIC = ("el-vigia", "/deportes/2026/03/cd-vigia-remonta-atletico-sierra.html")
MENTIONS = ("le-veilleur", "/2026/04/registre-influence-etrangere-diasporas-hongkongaises.html")


@pytest.fixture(scope="module")
def discovery(sites):
    with DiscoveryServer(sites) as server:
        yield server


@pytest.fixture(scope="module")
def feed_env(sites, discovery, es_url, index_prefix, tmp_path_factory) -> dict[str, str]:
    """A config with the broad feed as its one source, and the indices set up."""
    folder = tmp_path_factory.mktemp("politeness")
    config = write_config(folder / "config", sites, outlets=[])
    sources = [{"name": "courrier-du-fleuve", "type": "feed", "urls": discovery.url(FEED),
                "language": "fr", "country": "CA"}]  # fmt: skip
    (config / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}))
    env = clean_env(
        VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=index_prefix, VEILLE_CONFIG=str(config)
    )
    assert run_veille("setup", env=env).returncode == 0
    return env


def _crawl(env: dict[str, str], data: Path, *settings: str) -> tuple[dict, dict]:
    """One crawl with ``data`` as its data folder (validators of earlier crawls live there)."""
    stats_file = data / f"stats-{len(list(data.glob('stats-*')))}.json"
    result = run_veille(
        "crawl", "--all", "--json", *FAST_CRAWL, "--set", f"VEILLE_STATS_FILE={stats_file}",
        *settings, env={**env, "VEILLE_DATA_DIR": str(data)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[0], json.loads(stats_file.read_text())


@pytest.fixture(scope="module")
def broad_feed(sites, discovery, feed_env, tmp_path_factory):
    """Two crawls of the broad feed with the same data folder: the second finds it unchanged."""
    data = tmp_path_factory.mktemp("broad")
    sites.clear_requests()
    discovery.clear()
    first, first_stats = _crawl(feed_env, data)
    requested = {
        (outlet, path.split("?")[0]) for outlet in sites.outlets for path in sites.requests(outlet)
    }
    feed_first = discovery.requests(FEED)
    discovery.clear()
    second, second_stats = _crawl(feed_env, data)
    return {
        "first": first, "first_stats": first_stats, "requested": requested,
        "feed_first": feed_first, "second": second, "second_stats": second_stats,
        "feed_second": discovery.requests(FEED),
    }  # fmt: skip


def test_broad_feed_entries_ruled_out_by_their_summary_are_not_fetched(broad_feed):
    assert not RULED_OUT & broad_feed["requested"]
    assert broad_feed["first"]["dropped"]["off_topic_entry"] == len(RULED_OUT)


def test_entry_whose_summary_says_nothing_is_fetched_and_judged_on_its_text(
    broad_feed, sites, es, index_prefix
):
    assert {SAYS_NOTHING_ON_TOPIC, SAYS_NOTHING_OFF_TOPIC, MENTIONS} <= broad_feed["requested"]
    assert broad_feed["first"]["dropped"]["off_topic"] == 1
    index = IndexNames(index_prefix).articles
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=20, query={"match_all": {}})["hits"]["hits"]
    assert {h["_source"]["canonical_url"] for h in hits} == {
        sites.url(*SAYS_NOTHING_ON_TOPIC),
        sites.url(*MENTIONS),
    }


def test_unchanged_feed_answers_304_and_is_not_parsed(broad_feed):
    (first,) = broad_feed["feed_first"]
    (second,) = broad_feed["feed_second"]
    assert "If-None-Match" not in first.headers
    assert second.headers["If-None-Match"].startswith('"')
    stats = broad_feed["second_stats"]
    assert stats["veille/feeds/not_modified"] == 1
    assert "veille/feeds/read" not in stats and "veille/feeds/entries" not in stats
    assert broad_feed["second"]["feeds_failed"] == 0
    assert broad_feed["first_stats"]["veille/feeds/read"] == 1


def test_feed_answering_429_is_asked_again_only_after_retry_after(discovery, feed_env, tmp_path):
    discovery.clear()
    discovery.fail(FEED, 429, times=1, retry_after="3")
    _, stats = _crawl(feed_env, tmp_path)
    first, second = discovery.requests(FEED)
    assert second.at - first.at >= 2.9
    assert stats["veille/retry/throttled"] == 1
    assert stats["veille/feeds/read"] == 1


def test_feed_answering_503_is_retried_with_growing_waits(discovery, feed_env, tmp_path):
    discovery.clear()
    discovery.fail(FEED, 503, times=2)
    _, stats = _crawl(feed_env, tmp_path, "--set", "VEILLE_RETRY_BACKOFF_BASE=1")
    first, second, third = discovery.requests(FEED)
    assert second.at - first.at >= 0.95
    assert third.at - second.at >= 1.95
    assert stats["veille/retry/backoff"] == 2
    assert stats["veille/feeds/read"] == 1


def test_retry_after_longer_than_the_limit_gives_up_without_waiting(discovery, feed_env, tmp_path):
    discovery.clear()
    discovery.fail(FEED, 429, times=1, retry_after="3600")
    summary, stats = _crawl(feed_env, tmp_path, "--set", "VEILLE_RETRY_AFTER_MAX=60")
    assert len(discovery.requests(FEED)) == 1
    assert stats["veille/retry/retry_after_too_long"] == 1
    assert summary["feeds_failed"] == 1
