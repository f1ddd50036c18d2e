"""The register from a crawl: the labelled stations set served as news sites builds it, a
second crawl changes nothing, a new article about a known city adds a report and moves the
strongest action, and `veille stations rebuild` gives the same register."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from tests.support.fixture_server import FixtureSites
from tests.support.runner import FAST_CRAWL, ROOT, clean_env, run_veille
from tests.support.stations_site import build_sites, write_article, write_feeds
from veille.cli.stations import DEFAULT_LABELLED
from veille.core.es import IndexNames

NEW_ARTICLE = {
    "language": "en",
    "outlet_country": "IE",
    "published": "2025-06-03",
    "title": "Gardaí charge two over former Chinese police outpost on Capel Street",
    "text": (
        "DUBLIN — Gardaí have charged two men over the running of the former Chinese police "
        "outpost on Dublin's Capel Street, the force said on Monday.\n\n"
        "The office was closed in 2022 after the Department of Foreign Affairs told the Chinese "
        "Embassy it must cease all activity. The two men were arrested in May and charged "
        "with acting for a foreign power. The embassy denied any link to the premises.\n\n"
        "Residents of the street said they had long wondered who used the first-floor rooms. "
        "Campaigners for the Chinese diaspora in Ireland welcomed the charges and said they hoped "
        "people who had felt watched would now come forward and speak to investigators about "
        "what they had seen and heard there over the years."
    ),
}


def register(es, prefix: str) -> dict[str, dict]:
    index = IndexNames(prefix).stations
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=500, seq_no_primary_term=True, query={"match_all": {}})
    return {
        hit["_id"]: {**hit["_source"], "_seq_no": hit["_seq_no"]} for hit in hits["hits"]["hits"]
    }


def articles(es, prefix: str) -> dict[str, dict]:
    index = IndexNames(prefix).articles
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=500, query={"match_all": {}})["hits"]["hits"]
    return {hit["_id"]: hit["_source"] for hit in hits}


@pytest.mark.slow
def test_a_crawl_builds_the_register_and_crawling_again_changes_nothing(
    tmp_path, es, es_url, index_prefix
):
    root = tmp_path / "sites"
    outlets = build_sites(root, DEFAULT_LABELLED)
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config" / "topics", config / "topics")
    env = clean_env(
        VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=index_prefix,
        VEILLE_DATA_DIR=str(tmp_path / "data"), VEILLE_CONFIG=str(config),
    )  # fmt: skip
    with FixtureSites(root) as served:
        sources = [
            {"name": outlet, "type": "feed", "urls": [served.base_url(outlet) + "/feed.xml"],
             "language": outlet.split("-")[1], "country": outlet.split("-")[2].upper(),
             "schedule": {"every": "1h"}}
            for outlet in served.outlets
        ]  # fmt: skip
        (config / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}), "utf-8")
        assert run_veille("setup", env=env).returncode == 0
        crawl = run_veille("crawl", "--all", "--json", *FAST_CRAWL, env=env)
        assert crawl.returncode == 0, crawl.stderr

        indexed = articles(es, index_prefix)
        built = register(es, index_prefix)
        # The register is what the indexed articles report, each report once.
        reported = {}
        for article_id, doc in indexed.items():
            assert doc.get("stations_status", "registered") == "registered"
            for station in doc.get("stations", ()):
                reported.setdefault(station["key"], set()).add(article_id)
        assert reported and {key: set(doc["articles"]) for key, doc in built.items()} == reported
        labels = {slug: item for items in outlets.values() for slug, item in items}
        for doc in indexed.values():
            slug = doc["url"].rsplit("/", 1)[1].removesuffix(".html")
            if labels[slug]["kind"] == "trap":
                assert not doc.get("stations"), slug
        dublin = built["IE-2964574"]
        assert dublin["strongest_action"] == "closure"
        assert {"IE"} <= {doc["country"] for doc in built.values()}

        again = run_veille("crawl", "--all", "--json", *FAST_CRAWL, env=env)
        assert again.returncode == 0, again.stderr
        assert register(es, index_prefix) == built  # not one document written again

        # A new article about a known city: one more report, a stronger action, nothing new.
        write_article(root, "stations-en-ie", "garda-charges-capel-street", NEW_ARTICLE)
        outlets.setdefault("stations-en-ie", []).append(("garda-charges-capel-street", NEW_ARTICLE))
        write_feeds(root, outlets)
        third = run_veille("crawl", "stations-en-ie", "--json", *FAST_CRAWL, env=env)
        assert third.returncode == 0, third.stderr

    after = register(es, index_prefix)
    dublin_after = after["IE-2964574"]
    assert dublin_after["reports_count"] == dublin["reports_count"] + 1
    assert dublin_after["strongest_action"] == "arrest_or_charge"
    (new,) = [d for d in articles(es, index_prefix).values() if d["title"] == NEW_ARTICLE["title"]]
    assert new["actions"][-1] == "arrest_or_charge" and "closure" in new["actions"]
    assert new.get("new_stations", []) == []
    assert {k: v for k, v in after.items() if k != "IE-2964574"} == {
        k: v for k, v in built.items() if k != "IE-2964574"
    }

    rebuilt = run_veille("stations", "rebuild", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr

    def unversioned(docs: dict[str, dict]) -> dict[str, dict]:
        return {k: {f: v for f, v in d.items() if f != "_seq_no"} for k, d in docs.items()}

    assert unversioned(register(es, index_prefix)) == unversioned(after)

    listed = run_veille("stations", "--country", "IE", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert rows[0]["name"] == "Dublin" and all(row["country"] == "IE" for row in rows)
    table = run_veille("stations", env=clean_env(COLUMNS="80", **env))
    assert "Dublin" in table.stdout and max(map(len, table.stdout.splitlines())) <= 80
