"""`veille sources --check`: each source's status — reachable, parsed, entries found."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.support.discovery_server import DiscoveryServer
from tests.support.runner import clean_env, run_veille, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checked(sites, tmp_path_factory):
    folder = tmp_path_factory.mktemp("check")
    with DiscoveryServer(sites) as discovery:
        config = write_config(folder / "config", sites, outlets=["le-veilleur", "broken-gazette"])
        sources = yaml.safe_load((config / "sources.yaml").read_text())["sources"]
        sources += [
            {"name": "groupe-sitemaps", "type": "sitemap",
             "urls": [discovery.url("/sitemap-index.xml"),
                      discovery.url("/sitemaps/northern-ledger-news.xml.gz")]},
            {"name": "gdelt-fr", "type": "search", "language": "fr",
             "urls": discovery.url("/api/v2/doc/doc")},
            {"name": "bing-news-es", "type": "search", "language": "es",
             "urls": discovery.url("/news/search")},
            {"name": "not-a-search-endpoint", "type": "search",
             "urls": discovery.url("/search.php")},
            {"name": "moved-feed", "type": "feed", "urls": discovery.url("/feeds/gone.rss")},
            {"name": "forbidden-feed", "type": "feed", "enabled": False,
             "urls": sites.url("le-veilleur", "/private/feed.xml")},
        ]  # fmt: skip
        (config / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}))
        env = clean_env(VEILLE_CONFIG=str(config), VEILLE_ALLOWED_NETWORKS="127.0.0.1/32")
        as_json = run_veille("sources", "--check", "--json", env=env)
        table = run_veille("sources", "--check", env={**env, "COLUMNS": "200"})
        yield {"json": as_json, "table": table, "discovery": discovery.requests()}


def _by_url(checked) -> dict[str, dict]:
    return {(row["source"], row["url"].rsplit("/", 1)[-1]): row for row in json.loads(
        checked["json"].stdout)}  # fmt: skip


def test_every_source_url_gets_a_status(checked):
    rows = json.loads(checked["json"].stdout)
    assert [row["source"] for row in rows] == [
        "le-veilleur", "broken-gazette", "groupe-sitemaps", "groupe-sitemaps", "gdelt-fr",
        "bing-news-es", "not-a-search-endpoint", "moved-feed", "forbidden-feed",
    ]  # fmt: skip


def test_good_feed_is_reachable_parsed_with_its_entries(checked):
    row = _by_url(checked)[("le-veilleur", "feed.xml")]
    assert row["status"] == "ok" and row["http_status"] == 200
    assert row["reachable"] and row["parsed"]
    assert row["entries"] == 8


def test_malformed_feed_is_reachable_but_not_parsed(checked):
    row = _by_url(checked)[("broken-gazette", "feed.xml")]
    assert row["status"] == "failed"
    assert row["reachable"] and not row["parsed"]
    assert row["detail"].startswith("malformed")


def test_sitemap_index_and_gzip_sitemap_are_read(checked):
    rows = _by_url(checked)
    index = rows[("groupe-sitemaps", "sitemap-index.xml")]
    assert (index["status"], index["entries"], index["detail"]) == ("ok", 3, "sitemap index")
    gzipped = rows[("groupe-sitemaps", "northern-ledger-news.xml.gz")]
    assert (gzipped["status"], gzipped["entries"], gzipped["detail"]) == ("ok", 5, "urlset")


def test_search_sources_are_asked_their_first_query(checked):
    rows = _by_url(checked)
    assert rows[("gdelt-fr", "doc")]["entries"] == 2
    assert rows[("bing-news-es", "search")]["entries"] == 2
    gdelt = [s.path for s in checked["discovery"] if s.path.startswith("/api/v2/doc/doc?")]
    assert gdelt and all("sourcelang%3Afrench" in p or "sourcelang:french" in p for p in gdelt)


def test_unknown_search_endpoint_is_explained(checked):
    row = _by_url(checked)[("not-a-search-endpoint", "search.php")]
    assert row["status"] == "failed" and not row["reachable"]
    assert "not a GDELT, Google News or Bing News search endpoint" in row["detail"]


def test_missing_feed_reports_its_http_status(checked):
    row = _by_url(checked)[("moved-feed", "gone.rss")]
    assert (row["status"], row["http_status"], row["detail"]) == ("failed", 404, "HTTP 404")


def test_robots_disallowed_feed_says_the_crawl_will_not_read_it(checked):
    row = _by_url(checked)[("forbidden-feed", "feed.xml")]
    assert row["status"] == "failed" and not row["reachable"]
    assert "robots.txt" in row["detail"]


def test_exit_status_is_1_when_an_enabled_source_needs_a_look(checked):
    assert checked["json"].returncode == 1, checked["json"].stderr
    assert checked["table"].returncode == 1


def test_table_lists_status_and_totals(checked):
    out = checked["table"].stdout
    assert "source URLs checked" in out
    assert "le-veilleur" in out and "forbidden-feed (disabled)" in out
    assert "5 ok, 4 need a look" in out


def test_all_good_sources_exit_0(sites, tmp_path):
    config = write_config(tmp_path / "config", sites, outlets=["le-veilleur", "el-vigia"])
    env = clean_env(VEILLE_CONFIG=str(config), VEILLE_ALLOWED_NETWORKS="127.0.0.1/32")
    result = run_veille("sources", "--check", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert [row["status"] for row in json.loads(result.stdout)] == ["ok", "ok"]
