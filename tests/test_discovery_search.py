"""Search discovery: GDELT, Google News and Bing News answers (served on 127.0.0.1) lead to the
publishers' articles, which are judged like feed articles and indexed with ``discovered_via``."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from tests.support.discovery_server import DiscoveryServer, google_article_id
from tests.support.runner import FAST_CRAWL, clean_env, run_veille, write_config
from veille.core.es import IndexNames

pytestmark = pytest.mark.slow

FOUND_BY = {
    # (outlet, path): the search source that found it
    ("le-veilleur", "/2025/06/postes-de-police-fuzhou-110-overseas.html"): "gdelt-all",
    ("northern-ledger", "/news/2025/07/manhattan-chinatown-police-station-case.html"): "gdelt-all",
    ("broken-gazette", "/2025/08/uk-chinese-police-stations-glasgow-london.html"): "gdelt-all",
    (
        "el-vigia",
        "/internacional/2025/02/comisarias-chinas-extranjero-safeguard-defenders.html",
    ): "gdelt-all",
    ("le-veilleur", "/2025/11/repression-transnationale-ouighours-tibetains-quebec.html"): (
        "google-news-fr-ca"
    ),
    ("le-veilleur", "/2025/03/commissariats-chinois-enquete-grc-montreal-brossard.html"): (
        "google-news-fr-ca"
    ),
    ("el-vigia", "/internacional/2025/05/estaciones-policia-fuzhou-america-latina.html"): (
        "bing-news-es"
    ),
    ("el-vigia", "/internacional/2026/10/respuesta-desigual-estaciones-policia-chinas.html"): (
        "bing-news-es"
    ),
}
OFF_TOPIC_RESULT = ("le-veilleur", "/2026/01/recette-tarte-au-sucre-erable.html")


@pytest.fixture(scope="module")
def crawled(sites, es_url, index_prefix, tmp_path_factory):
    folder = tmp_path_factory.mktemp("search")
    with DiscoveryServer(sites) as discovery:
        config = write_config(folder / "config", sites, outlets=[])
        sources = [
            {"name": "gdelt-all", "type": "search",
             "urls": [discovery.url("/api/v2/doc/doc?maxrecords=50")]},
            {"name": "google-news-fr-ca", "type": "search", "language": "fr", "country": "CA",
             "urls": [discovery.url("/rss/search")]},
            {"name": "bing-news-es", "type": "search", "language": "es",
             "urls": [discovery.url("/news/search")]},
        ]  # fmt: skip
        (config / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}))
        env = clean_env(
            VEILLE_ES_URL=es_url,
            VEILLE_INDEX_PREFIX=index_prefix,
            VEILLE_DATA_DIR=str(folder / "data"),
            VEILLE_CONFIG=str(config),
        )
        assert run_veille("setup", env=env).returncode == 0
        sites.clear_requests()
        stats_file = folder / "stats.json"
        result = run_veille(
            "crawl", "--all", "--json", *FAST_CRAWL,
            "--set", "VEILLE_SEARCH_TIMESPAN=6h",
            "--set", f"VEILLE_STATS_FILE={stats_file}",
            env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        yield {
            "summary": json.loads(result.stdout)[0],
            "stats": json.loads(stats_file.read_text()),
            "discovery": discovery.requests(),
            "requested": {
                (outlet, path.split("?")[0])
                for outlet in sites.outlets
                for path in sites.requests(outlet)
            },
        }


def _indexed(es, index_prefix) -> dict[str, dict]:
    index = IndexNames(index_prefix).articles
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=100, query={"match_all": {}})["hits"]["hits"]
    return {hit["_source"]["canonical_url"]: hit["_source"] for hit in hits}


def _queries(crawled, path: str) -> list[dict[str, str]]:
    return [
        {k: v[0] for k, v in parse_qs(urlsplit(seen.path).query).items()}
        for seen in crawled["discovery"]
        if seen.path.split("?")[0] == path
    ]


def test_search_results_are_indexed_under_the_publisher_url(crawled, sites, es, index_prefix):
    indexed = _indexed(es, index_prefix)
    expected = {sites.url(outlet, path): source for (outlet, path), source in FOUND_BY.items()}
    assert set(indexed) == set(expected)
    for url, doc in indexed.items():
        assert doc["source"]["name"] == expected[url]
        assert doc["source"]["type"] == "search"
        assert doc["topics"] == ["overseas-police-stations"]


def _asked_queries(crawled) -> set[str]:
    return {
        query.get("q", query.get("query", "")).removesuffix(" when:6h")
        for seen in crawled["discovery"]
        for query in [{k: v[0] for k, v in parse_qs(urlsplit(seen.path).query).items()}]
    }


def test_discovered_via_names_source_query_and_search_url(crawled, sites, es, index_prefix):
    asked = _asked_queries(crawled)
    for doc in _indexed(es, index_prefix).values():
        via = doc["discovered_via"]
        assert via["kind"] == "search"
        assert via["source"] == doc["source"]["name"]
        # the query is one that was asked, as sent (GDELT's carries the language filter)
        assert any(via["query"] in query for query in asked), via["query"]
        assert via["query"].startswith('"') and via["query"].endswith('"')
        assert via["feed"].startswith("http://127.0.0.1:")
    quebec = _indexed(es, index_prefix)[
        sites.url(
            "le-veilleur", "/2025/11/repression-transnationale-ouighours-tibetains-quebec.html"
        )
    ]
    assert "/rss/search?" in quebec["discovered_via"]["feed"]
    assert quebec["discovered_via"]["source"] == "google-news-fr-ca"


def test_a_topic_too_long_for_one_query_is_split_and_each_result_followed_once(crawled):
    # The shipped topic has more search terms per language than one query holds (8): every
    # language takes several queries, and the answers to them, which overlap, are followed once.
    bing = [q["q"] for q in _queries(crawled, "/news/search")]
    assert len(bing) >= 2
    assert all(q.count('" OR "') <= 7 for q in bing)
    terms = " OR ".join(bing)
    assert '"Safeguard Defenders"' in terms
    assert len(set(bing)) == len(bing), "each query is asked once"


def test_off_topic_search_result_is_fetched_and_dropped_by_relevance(crawled):
    assert OFF_TOPIC_RESULT in crawled["requested"]
    assert crawled["summary"]["dropped"]["off_topic"] == 1


def test_outlet_with_a_broken_feed_is_still_found_through_search(crawled, sites, es, index_prefix):
    page = sites.url("broken-gazette", "/2025/08/uk-chinese-police-stations-glasgow-london.html")
    assert _indexed(es, index_prefix)[page]["language"] == "en"


def test_wrapper_links_resolve_to_the_publisher(crawled, sites):
    followed = [s.path for s in crawled["discovery"] if s.path.startswith("/rss/articles/")]
    # The opaque Google News link is followed (302 to the publisher), as is the dead one (404);
    # the link whose id carries the URL is resolved without any request, and Bing's click links
    # are never fetched.
    assert sorted(p.split("?")[0] for p in followed) == [
        "/rss/articles/CBMiAU_yqLOpaqueCommissariats",
        "/rss/articles/CBMiAU_yqLRetire",
    ]
    carried = sites.url(
        "le-veilleur", "/2025/11/repression-transnationale-ouighours-tibetains-quebec.html"
    )
    assert not any(google_article_id(carried) in p for p in followed)
    assert not [s for s in crawled["discovery"] if "apiclick" in s.path]
    assert crawled["stats"]["veille/search/wrappers_followed"] == 2, "once, whatever the queries"


def test_gdelt_is_asked_per_language_with_the_topic_terms(crawled):
    asked = _queries(crawled, "/api/v2/doc/doc")
    languages = {q["query"].rsplit("sourcelang:", 1)[1] for q in asked}
    assert languages == {"english", "french", "spanish", "italian", "german"}
    for query in asked:
        assert query["mode"] == "ArtList" and query["format"] == "json"
        assert query["timespan"] == "6h"
        assert query["maxrecords"] == "50", "a parameter set in the configured URL is kept"
        terms = query["query"].rsplit(" sourcelang:", 1)[0]
        # quoted phrases, ORed inside parentheses when there are several
        assert terms.startswith('"') or (terms.startswith('("') and '" OR "' in terms)
    french = " ".join(q["query"] for q in asked if q["query"].endswith("sourcelang:french"))
    assert '"commissariat chinois"' in french and '"répression transnationale"' in french
    assert '"Chine"' not in french, "weak terms are not searched for on their own"


def test_google_news_is_asked_for_the_source_edition(crawled):
    asked = _queries(crawled, "/rss/search")
    for query in asked:
        assert (query["hl"], query["gl"], query["ceid"]) == ("fr-CA", "CA", "CA:fr")
        assert query["q"].endswith(" when:6h")
    assert any('"poste de police chinois"' in query["q"] for query in asked)


def test_bing_news_is_asked_in_spanish_as_rss(crawled):
    asked = _queries(crawled, "/news/search")
    assert all(query["format"] == "rss" and query["setlang"] == "es" for query in asked)
    terms = " OR ".join(query["q"] for query in asked)
    assert '"comisaría china"' in terms and '"represión transnacional"' in terms


def test_search_crawl_summary(crawled):
    summary = crawled["summary"]
    assert summary["spider"] == "search"
    assert summary["finish_reason"] == "finished"
    assert summary["indexed"] == len(FOUND_BY)
    endpoints = ("/api/v2/doc/doc", "/rss/search", "/news/search")
    asked = [s for s in crawled["discovery"] if s.path.split("?")[0] in endpoints]
    assert crawled["stats"]["veille/search/read"] == len(asked)
