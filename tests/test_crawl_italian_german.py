"""Italian and German coverage, end to end: the languages added through veille/core/languages.py.

The Italian and German labelled articles (tests/fixtures/relevance/it, de) are served as two news
sites and crawled with tiny genuine it→en and de→en Argos models installed
(tests/support/tiny_argos.py). Each article's language is detected by langdetect, the topic's
Italian and German rules keep the on-topic ones, the index analyses them with the Italian and
German Snowball stemmers, and the translate stage gives each an English translation.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml

from tests.support.fixture_server import FixtureSites
from tests.support.relevance_site import build_sites, outlet_of, page_path
from tests.support.runner import FAST_CRAWL, ROOT, clean_env, run_veille
from tests.support.tiny_argos import build_tiny_model
from veille.core.config import Environment
from veille.core.es import IndexNames, make_client
from veille.core.urls import canonicalize
from veille.ops.topic_eval import LABELLED_SET

pytestmark = pytest.mark.slow

LANGUAGES = ("it", "de")


@pytest.fixture(scope="module")
def crawled(tmp_path_factory, es_url, index_prefix):
    """Crawl the Italian and German sites once; the indexed documents by canonical URL and the
    labelled articles by the same URL (on-topic and not)."""
    tmp = tmp_path_factory.mktemp("it-de")
    labelled = tmp / "labelled"
    for language in LANGUAGES:
        shutil.copytree(LABELLED_SET / language, labelled / language)
    articles = build_sites(tmp / "sites", labelled)
    models = tmp / "argos-build"
    archives = [build_tiny_model(models, language, "en") for language in LANGUAGES]
    with FixtureSites(tmp / "sites") as served:
        sources = [
            {"name": outlet, "type": "feed", "urls": [served.base_url(outlet) + "/feed.xml"],
             "schedule": {"every": "1h"}}
            for outlet in served.outlets
        ]  # fmt: skip
        config = tmp / "config"
        (config / "topics").mkdir(parents=True)
        (config / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}), "utf-8")
        shutil.copytree(ROOT / "config" / "topics", config / "topics", dirs_exist_ok=True)
        env = clean_env(
            VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=index_prefix,
            VEILLE_DATA_DIR=str(tmp / "data"), VEILLE_CONFIG=str(config),
            ARGOS_PACKAGES_DIR=str(tmp / "argos-packages"), HOME=str(tmp / "home"),
        )  # fmt: skip
        assert run_veille("setup", env=env).returncode == 0
        for archive in archives:
            installed = run_veille("models", "install", "--file", str(archive), env=env)
            assert installed.returncode == 0, installed.stderr
        crawl = run_veille("crawl", "--all", "--json", *FAST_CRAWL, env=env)
        assert crawl.returncode == 0, crawl.stderr
        by_url = {canonicalize(served.base_url(outlet_of(a)) + page_path(a)): a for a in articles}
    index = IndexNames(index_prefix).articles
    with make_client(Environment(es_url=es_url, index_prefix=index_prefix)) as es:
        es.indices.refresh(index=index)
        hits = es.search(index=index, size=100, query={"match_all": {}})["hits"]["hits"]
    indexed = {hit["_source"]["canonical_url"]: hit["_source"] for hit in hits}
    return env, indexed, by_url


def _search(env: dict[str, str], query: str, language: str) -> list[dict]:
    found = run_veille("search", query, "--lang", language, "--json", env=env)
    assert found.returncode == 0, found.stderr
    return json.loads(found.stdout)


def test_italian_and_german_articles_are_detected_and_only_the_on_topic_ones_kept(crawled):
    _env, indexed, by_url = crawled
    on_topic = {url for url, article in by_url.items() if article.relevant}
    assert set(indexed) == on_topic
    assert {by_url[url].language for url in indexed} == set(LANGUAGES)
    for url, document in indexed.items():
        assert document["language"] == by_url[url].language, url
        assert document["language_confidence"] > 0.9
        assert document["relevance"]["rule"], "kept by a rule of its language or any_language"


def test_a_german_query_finds_polizeistationen_by_its_stem(crawled):
    env, indexed, by_url = crawled
    plural_only = [
        document
        for url, document in indexed.items()
        if by_url[url].language == "de"
        and "Polizeistationen" in document["text"]
        and not re.search(r"\bPolizeistation\b", document["text"])
    ]
    assert plural_only, "an indexed German article says only Polizeistationen"
    titles = {hit["title"] for hit in _search(env, "Polizeistation", "de")}
    assert {document["title"] for document in plural_only} <= titles


def test_an_italian_query_finds_commissariati_by_its_stem(crawled):
    env, indexed, by_url = crawled
    plural_only = [
        document
        for url, document in indexed.items()
        if by_url[url].language == "it"
        and "commissariati" in document["text"]
        and not re.search(r"\bcommissariato\b", document["text"])
    ]
    assert plural_only, "an indexed Italian article says only commissariati"
    titles = {hit["title"] for hit in _search(env, '"commissariato cinese"', "it")}
    assert {document["title"] for document in plural_only} <= titles


def test_italian_and_german_articles_are_translated_into_english(crawled):
    env, indexed, _by_url = crawled
    for document in indexed.values():
        language = document["language"]
        assert document["translation_status"] == "done"
        assert document["translation_model"].startswith(f"argos:{language}-en")
        assert document["translation"]["en"]["title"] and document["translation"]["en"]["text"]
        if "Safeguard Defenders" in document["text"]:
            assert "Safeguard Defenders" in document["translation"]["en"]["text"], "glossary"
    target = next(d for d in indexed.values() if d["language"] == "de")
    words = re.findall(r"[A-Za-z]{5,}", target["translation"]["en"]["text"])
    word = max(set(words), key=words.count)
    assert target["title"] in {hit["title"] for hit in _search(env, word, "de")}
