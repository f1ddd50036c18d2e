"""Discovery without the network: queries from the topic, search URLs, wrapper links, sitemaps,
the cheap judgement of feed entries, Retry-After."""

from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from crawler.discovery import (
    DiscoveryError,
    EntryFilter,
    gdelt_timespan,
    google_edition,
    parse_gdelt,
    parse_sitemap,
    publisher_url,
    search_queries,
    search_url,
)
from crawler.middlewares.backoff import retry_after_seconds
from tests.support.discovery_server import ROOT as DISCOVERY
from tests.support.discovery_server import google_article_id
from tests.support.runner import ROOT
from veille.core.config import Rule, Topic, load_config

DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def topics() -> tuple[Topic, ...]:
    return load_config(ROOT / "config").topics


def _fixture(name: str) -> bytes:
    """A discovery fixture file with its placeholders filled as if served on port 8000."""
    return re.sub(
        rb"\{\{(SELF|BASE:[a-z-]+)\}\}", b"http://127.0.0.1:8000", (DISCOVERY / name).read_bytes()
    )


def _params(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def _phrases(topics, language: str) -> list[str]:
    return [p for query in search_queries(topics, language) for p in query.split(" OR ")]


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("fr", ['"commissariat chinois"', '"postes de police clandestins"', '"110 Overseas"']),
        ("en", ['"overseas police station"', '"Chinese police station"']),
        ("es", ['"comisaría china"', '"comisarías clandestinas"', '"Safeguard Defenders"']),
    ],
)
def test_queries_quote_every_name_or_phrase_rule_of_the_language(topics, language, expected):
    phrases = _phrases(topics, language)
    assert all(p.startswith('"') and p.endswith('"') and p.count('"') == 2 for p in phrases)
    assert set(expected) <= set(phrases)
    assert {"Safeguard Defenders", "110 Overseas"} <= {p.strip('"') for p in phrases}
    assert all(len(query.split(" OR ")) <= 8 for query in search_queries(topics, language))


def test_a_rule_s_context_is_not_searched_but_its_phrase_is(topics):
    """ "transnational repression" NEAR/12 @china: the phrase is searched, the context (China,
    Chinese…) is not: alone it would bring back every China story. Rules of groups only
    (an outpost near police) are checked on what the searches find."""
    phrases = {p.strip('"') for p in _phrases(topics, "en")}
    assert "transnational repression" in phrases
    assert not phrases & {"China", "Chinese", "Beijing", "police", "outpost", "service point"}


def test_a_rule_added_to_the_topic_reaches_every_search_engine(topics):
    topic = topics[0]
    spanish = topic.languages["es"]
    rules = {**spanish.rules, "oficina-110": Rule(query='"oficina «110»"')}
    edited = topic.model_copy(
        update={"languages": {**topic.languages, "es": spanish.model_copy(update={"rules": rules})}}
    )
    query = next(q for q in search_queries([edited], "es") if "oficina" in q)
    endpoints = [
        "https://api.gdeltproject.org/api/v2/doc/doc",
        "https://news.google.com/rss/search",
        "https://www.bing.com/news/search",
    ]
    for endpoint in endpoints:
        params = _params(search_url(endpoint, query, "es", "MX", DAY))
        asked = params.get("query") or params["q"]
        assert '"oficina «110»"' in asked


def test_search_urls_are_percent_encoded_and_round_trip(topics):
    query = search_queries(topics, "es")[0]
    url = search_url("https://news.google.com/rss/search", query, "es", "MX", DAY)
    raw = urlsplit(url).query
    assert "%22comisar%C3%ADa+china%22" in raw
    assert " " not in raw and '"' not in raw
    assert _params(url)["q"] == f"{query} when:24h"


def test_gdelt_url_scopes_the_or_list_and_names_the_source_language(topics):
    query = search_queries(topics, "es")[0]
    params = _params(search_url("https://api.gdeltproject.org/api/v2/doc/doc", query, "es", None,
                                timedelta(hours=6)))  # fmt: skip
    assert params["query"] == f"({query}) sourcelang:spanish"
    assert (params["mode"], params["format"], params["timespan"]) == ("ArtList", "json", "6h")


def test_configured_parameters_win_over_defaults(topics):
    query = search_queries(topics, "en")[0]
    endpoint = "https://news.google.com/rss/search?hl=en-GB&gl=GB&ceid=GB:en"
    params = _params(search_url(endpoint, query, "en", "US", DAY))
    assert (params["hl"], params["gl"], params["ceid"]) == ("en-GB", "GB", "GB:en")


def test_unknown_search_endpoint_is_refused():
    with pytest.raises(DiscoveryError, match="not a known search endpoint"):
        search_url("https://example.org/search.php", '"x"', "fr", None, DAY)


@pytest.mark.parametrize(
    ("language", "country", "edition"),
    [
        ("fr", None, ("fr", "FR", "FR:fr")),
        ("fr", "CA", ("fr-CA", "CA", "CA:fr")),
        ("fr", "BE", ("fr-BE", "BE", "BE:fr")),
        ("en", "GB", ("en-GB", "GB", "GB:en")),
        ("en", None, ("en-US", "US", "US:en")),
        ("es", "ES", ("es", "ES", "ES:es")),
        ("es", "MX", ("es-419", "MX", "MX:es-419")),
        ("it", None, ("it", "IT", "IT:it")),
        ("de", None, ("de", "DE", "DE:de")),
        ("de", "AT", ("de-AT", "AT", "AT:de")),
    ],
)
def test_google_news_editions(language, country, edition):
    found = google_edition(language, country)
    assert (found["hl"], found["gl"], found["ceid"]) == edition


def test_gdelt_timespans_never_use_months():
    assert gdelt_timespan(timedelta(minutes=30)) == "30min"
    assert gdelt_timespan(timedelta(minutes=5)) == "15min"
    assert gdelt_timespan(timedelta(hours=2)) == "2h"
    assert gdelt_timespan(timedelta(days=3)) == "3d"


def test_publisher_urls_from_wrapper_links():
    page = "https://www.lapresse.ca/actualites/2026-11-26/police-chinoise.php"
    assert publisher_url(
        "http://www.bing.com/news/apiclick.aspx?ref=FexRss&aid=&tid=A1"
        "&url=https%3a%2f%2fwww.lapresse.ca%2factualites%2f2026-11-26%2fpolice-chinoise.php&c=2"
    ) == (page, True)
    carried = f"https://news.google.com/rss/articles/{google_article_id(page)}?oc=5"
    assert publisher_url(carried) == (page, True)
    opaque = "https://news.google.com/rss/articles/CBMiAU_yqLOpaqueId?oc=5"
    assert publisher_url(opaque) == (opaque, False)
    assert publisher_url(page) == (page, True)


def test_gdelt_answer_and_gdelt_complaint():
    found = parse_gdelt(_fixture("gdelt/english.json"))
    assert [f.title for f in found][
        1
    ] == "What happened to Britain's alleged Chinese police stations"
    assert found[0].published_at == datetime(2025, 7, 9, 17, 45, tzinfo=UTC)
    assert parse_gdelt(b"{}") == []
    with pytest.raises(DiscoveryError, match="phrase is too short"):
        parse_gdelt(b"The specified phrase is too short.\n")


def test_news_sitemap_entries_carry_news_fields():
    sitemap = parse_sitemap(_fixture("sitemaps/northern-ledger-news.xml"))
    assert not sitemap.is_index and len(sitemap.entries) == 5
    europe = sitemap.entries[1]
    assert europe.title.startswith("From Amsterdam to Dublin")
    assert europe.language == "en"
    assert europe.date == datetime(2026, 2, 25, 20, 10, tzinfo=UTC)
    assert sitemap.entries[3].published_at is None
    assert sitemap.entries[3].date == datetime(2025, 10, 3, 10, 30, tzinfo=UTC)


def test_sitemap_index_and_non_sitemaps():
    index = parse_sitemap(_fixture("sitemap-index.xml"))
    assert index.is_index and [e.lastmod.year for e in index.entries] == [2026, 2026, 2024]
    with pytest.raises(DiscoveryError, match="not a sitemap"):
        parse_sitemap(b"<html><body>Not here</body></html>")
    with pytest.raises(DiscoveryError, match="not well-formed"):
        parse_sitemap(gzip.compress(b"<urlset>"))


def test_entity_expansion_is_not_performed(tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x SYSTEM "file://{secret}">]>'
        "<urlset><url><loc>http://127.0.0.1/a&x;</loc></url></urlset>"
    ).encode()
    entries = parse_sitemap(body).entries
    assert all("do not read" not in e.url for e in entries)


def test_broad_listing_rules_out_entries_that_say_enough_and_mention_nothing(topics):
    judge = EntryFilter(topics, min_words=12, broad_share=0.5)
    entries = [
        ("Recette", "Crème épaisse, cassonade et sirop d’érable : une tarte qui ne coule pas."),
        ("Sports", "The Otters won the junior title in double overtime after a long season."),
        ("Crónica del domingo", None),
        ("Ottawa", "Le registre vise l’ingérence étrangère ; les diasporas visées par Pékin."),
    ]
    assert judge.keep(entries) == [False, False, True, True]


def test_focused_listing_keeps_every_entry(topics):
    judge = EntryFilter(topics, min_words=12, broad_share=0.5)
    entries = [
        ("Chinese police stations: what the RCMP found", "A long investigation into the sites."),
        ("Beijing's long arm", "Chinese students in Lyon say relatives at home were questioned."),
        ("Council budget", "Councillors approved a bigger library and two thousand new trees."),
    ]
    assert judge.keep(entries) == [True, True, True]


def test_an_entry_a_rule_matches_is_always_fetched_from_a_broad_listing(topics):
    judge = EntryFilter(topics, min_words=5, broad_share=0.9)
    strong = ("Les Pays-Bas ferment deux commissariats chinois clandestins", "")
    others = [(f"Météo du jour {n}", "Du soleil le matin, des averses l'après-midi sur la côte.")
              for n in range(9)]  # fmt: skip
    assert judge.keep([strong, *others]) == [True] + [False] * 9


def test_an_entry_holding_part_of_a_rule_is_fetched_from_a_broad_listing(topics):
    """A summary is short: part of a rule (police next to "sites") is enough to fetch the page
    and judge it on its text; words of no rule are not."""
    judge = EntryFilter(topics, min_words=5, broad_share=0.9)
    vague = (
        "How prosecutors built the case",
        "The arrests became a reference point for police forces examining similar sites.",
    )
    others = [(f"Match {n}", "The Otters won the junior title in double overtime again.")
              for n in range(9)]  # fmt: skip
    assert judge.keep([vague, *others]) == [True] + [False] * 9


def test_retry_after_in_seconds_or_as_a_date():
    assert retry_after_seconds(b"120") == 120
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC).timestamp()
    assert retry_after_seconds("Fri, 27 Nov 2026 12:01:30 GMT", now=now) == 90
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
