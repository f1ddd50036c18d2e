"""The labelled relevance set: the shipped rules hold their targets, `veille topics eval` and
`veille topics test` explain at 80 columns, a broken topic file says where, and a crawl of the
set served as news sites indexes exactly the on-topic articles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.support.fixture_server import FixtureSites
from tests.support.relevance_site import build_sites, outlet_of, page_path
from tests.support.runner import FAST_CRAWL, ROOT, clean_env, run_veille
from veille.core.config import ConfigError, load_config
from veille.core.es import IndexNames
from veille.core.languages import LANGUAGES
from veille.core.urls import canonicalize
from veille.ops.topic_eval import LABELLED_SET, evaluate, load_labelled

CONFIG = ROOT / "config"


def test_the_labelled_set_is_shipped_in_every_language():
    articles = load_labelled(LABELLED_SET)
    # Each language's set; the first three started larger.
    sizes = {"fr": (10, 30), "en": (10, 30), "es": (10, 30)}
    for language in LANGUAGES:
        mine = [a for a in articles if a.language == language]
        on_topic, negatives = sizes.get(language, (5, 10))
        assert sum(a.relevant for a in mine) >= on_topic, language
        assert sum(not a.relevant for a in mine) >= negatives, language
        assert all(len(a.text.split()) >= 150 for a in mine)


def test_the_shipped_rules_hold_their_targets_on_the_labelled_set():
    evaluation = evaluate(load_config(CONFIG).topics)
    assert set(evaluation.languages) == set(LANGUAGES)
    for language in (*evaluation.languages, None):
        scores = evaluation.scores(language)
        assert scores.recall == 1.0, (language, [o.article.path.name for o in evaluation.misses])
        assert scores.precision >= 0.97, (
            language,
            [o.article.path.name for o in evaluation.misses],
        )


def _env(**values: str) -> dict[str, str]:
    return clean_env(VEILLE_CONFIG=str(CONFIG), **values)


def _fits(text: str) -> bool:
    return all(len(line) <= 80 for line in text.splitlines())


def test_eval_prints_scores_per_language():
    result = run_veille("topics", "eval", env=_env())
    assert result.returncode == 0, result.stderr
    assert _fits(result.stdout)
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line}
    for language in (*LANGUAGES, "all"):
        *_counts, precision, recall = rows[language]
        assert float(precision) >= 0.97 and recall == "1.00"
    assert "0 misjudged." in result.stdout


def test_eval_lists_each_misjudged_article_with_the_closest_rule(tmp_path):
    folder = tmp_path / "set"
    shutil.copytree(LABELLED_SET / "en", folder / "en")
    wrong = folder / "en" / "01-canola-tariff-retaliation.yaml"
    data = yaml.safe_load(wrong.read_text(encoding="utf-8"))
    wrong.write_text(yaml.safe_dump({**data, "relevant": True}, allow_unicode=True), "utf-8")
    result = run_veille("topics", "eval", str(folder), env=_env())
    assert result.returncode == 1
    assert _fits(result.stdout)
    assert "1 misjudged:" in result.stdout
    assert "missed, on topic: en/01-canola-tariff-retaliation.yaml" in result.stdout
    assert "closest rule en/" in result.stdout
    report = json.loads(run_veille("topics", "eval", str(folder), "--json", env=_env()).stdout)
    assert report["scores"]["en"]["recall"] < 1
    assert report["misses"][0]["file"] == "en/01-canola-tariff-retaliation.yaml"


def test_topics_test_shows_every_rule_matched_or_not_and_where():
    page = LABELLED_SET / "fr" / "31-temoignage-tibetain-vaud.yaml"
    result = run_veille("topics", "test", str(page), env=_env())
    assert result.returncode == 0, result.stderr
    assert _fits(result.stdout)
    assert "ON TOPIC: overseas-police-stations — rule fr/" in result.stdout
    assert "✓ fr/family-at-home" in result.stdout
    assert "✗ fr/station-names" in result.stdout
    assert "text " in result.stdout and "«" in result.stdout  # the place and its words
    decision = json.loads(run_veille("topics", "test", str(page), "--json", env=_env()).stdout)
    matched = {r["rule"]: r for r in decision["rules"] if r["matched"]}
    text = yaml.safe_load(page.read_text(encoding="utf-8"))["text"]
    for match in matched["fr/family-at-home"]["matches"]:
        if match["field"] == "text":
            assert text[match["start"] : match["end"]] == match["text"]


def test_topics_test_fetches_a_url_as_a_crawl_does(sites):
    page = next(p for p in sites.manifest["pages"] if p.get("on_topic") and p["language"] == "en")
    url = sites.base_url(page["outlet"]) + page["path"]
    allowed = _env(VEILLE_ALLOWED_NETWORKS="127.0.0.1/32")
    result = run_veille("topics", "test", url, env=allowed)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(page["title"][:40])
    assert "ON TOPIC" in result.stdout and _fits(result.stdout)
    refused = run_veille("topics", "test", url, env=_env())
    assert refused.returncode == 1
    assert "refused" in refused.stderr or "blocked" in refused.stderr


def _topic_file(folder: Path, rules: str) -> Path:
    (folder / "topics").mkdir(parents=True)
    (folder / "sources.yaml").write_text("sources: []\n", encoding="utf-8")
    path = folder / "topics" / "t.yaml"
    path.write_text(
        "name: t\ntitle: T\nlanguages:\n  en:\n    groups:\n      china: China OR Chinese\n"
        f"    rules:\n{rules}",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("rules", "line", "key", "says"),
    [
        ("      ok: police\n      bad: 'police NEAR/5 NOT @china'\n", 9, "bad",
         "rule 'bad': at character 15: NOT inside NEAR"),
        ("      bad: '@chine NEAR/3 police'\n", 8, "bad", "no group @chine"),
        ("      bad: '\"on the\" OR police'\n", 8, "bad", "holds only stop words"),
    ],
)  # fmt: skip
def test_a_broken_rule_names_file_line_rule_and_position(tmp_path, rules, line, key, says):
    path = _topic_file(tmp_path, rules)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    error = caught.value
    assert (error.file, error.line, error.key) == (str(path), line, f"languages.en.rules.{key}")
    assert says in error.message


def test_an_old_weighted_topic_file_says_what_replaced_it(tmp_path):
    (tmp_path / "topics").mkdir()
    (tmp_path / "sources.yaml").write_text("sources: []\n", encoding="utf-8")
    (tmp_path / "topics" / "t.yaml").write_text(
        "name: t\ntitle: T\nmin_score: 4\nlanguages:\n  en:\n    terms: [police]\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="replaced by rules"):
        load_config(tmp_path)


@pytest.mark.slow
def test_a_crawl_of_the_labelled_set_indexes_exactly_the_on_topic_articles(
    tmp_path, es, es_url, index_prefix
):
    root = tmp_path / "sites"
    articles = build_sites(root)
    with FixtureSites(root) as served:
        sources = [
            {"name": outlet, "type": "feed", "urls": [served.base_url(outlet) + "/feed.xml"],
             "language": outlet.rsplit("-", 1)[1], "schedule": {"every": "1h"}}
            for outlet in served.outlets
        ]  # fmt: skip
        config = tmp_path / "config"
        (config / "topics").mkdir(parents=True)
        (config / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}), "utf-8")
        shutil.copytree(CONFIG / "topics", config / "topics", dirs_exist_ok=True)
        env = clean_env(
            VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=index_prefix,
            VEILLE_DATA_DIR=str(tmp_path / "data"), VEILLE_CONFIG=str(config),
        )  # fmt: skip
        assert run_veille("setup", env=env).returncode == 0
        crawl = run_veille("crawl", "--all", "--json", *FAST_CRAWL, env=env)
        assert crawl.returncode == 0, crawl.stderr
        expected = {
            canonicalize(served.base_url(outlet_of(a)) + page_path(a)): a
            for a in articles
            if a.relevant
        }
    index = IndexNames(index_prefix).articles
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=500, query={"match_all": {}})["hits"]["hits"]
    indexed = {hit["_source"]["canonical_url"]: hit["_source"] for hit in hits}
    assert set(indexed) == set(expected)
    for url, doc in indexed.items():
        assert doc["relevance"]["rule"] and doc["relevance"]["matches"], url
        assert doc["topics"] == ["overseas-police-stations"]
