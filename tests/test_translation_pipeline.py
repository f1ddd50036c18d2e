"""Translation in the crawl: French coverage becomes searchable in English, offline.

Uses the tiny genuine Argos model (tests/support/tiny_argos.py): its output is deterministic
gibberish, but every code path — argostranslate's package installer, the crawl's translate
stage, the index mapping and `veille translate --pending` — is the real one.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.support.runner import FAST_CRAWL, clean_env, run_veille, write_config
from tests.support.tiny_argos import build_tiny_model
from veille.core.es import IndexNames

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("argos-build"))


@pytest.fixture
def env(sites, es_url, index_prefix, tmp_path):
    config = write_config(tmp_path / "config", sites, ["le-veilleur", "northern-ledger"])
    values = clean_env(
        VEILLE_ES_URL=es_url,
        VEILLE_INDEX_PREFIX=index_prefix,
        VEILLE_DATA_DIR=str(tmp_path / "data"),
        VEILLE_CONFIG=str(config),
        ARGOS_PACKAGES_DIR=str(tmp_path / "argos-packages"),
        HOME=str(tmp_path / "home"),
    )
    reset = run_veille("setup", env=values)
    assert reset.returncode == 0, reset.stderr
    return values


def _docs(es, index_prefix, language):
    index = IndexNames(index_prefix).articles
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=100, query={"term": {"language": language}})
    return [hit["_source"] for hit in hits["hits"]["hits"]]


def _a_translated_word(text: str) -> str:
    words = [w for w in re.findall(r"[A-Za-z]{5,}", text)]
    assert words, f"translation has no word to search for: {text[:200]!r}"
    return max(set(words), key=words.count)


def test_missing_model_keeps_article_pending_until_backfill(
    env, sites, es, index_prefix, tiny_model
):
    crawl = run_veille("crawl", "le-veilleur", "--json", *FAST_CRAWL, env=env)
    assert crawl.returncode == 0, crawl.stderr
    pending = _docs(es, index_prefix, "fr")
    assert len(pending) == len(sites.pages("le-veilleur", kind="article", on_topic=True))
    assert {d["translation_status"] for d in pending} == {"pending"}
    assert all("translation" not in d or not d["translation"] for d in pending)

    installed = run_veille("models", "install", "--file", str(tiny_model), env=env)
    assert installed.returncode == 0, installed.stderr
    listed = run_veille("models", "list", env=env)
    assert "fr" in listed.stdout and "en" in listed.stdout

    backfill = run_veille("translate", "--pending", env=env)
    assert backfill.returncode == 0, backfill.stderr
    assert f"translated {len(pending)} of {len(pending)}" in backfill.stdout

    done = {d["canonical_url"]: d for d in _docs(es, index_prefix, "fr")}
    originals = {d["canonical_url"]: d for d in pending}
    for url, doc in done.items():
        assert doc["translation_status"] == "done"
        assert doc["translation_model"].startswith("argos:fr-en")
        assert 0 < doc["translation_confidence"] <= 1
        assert doc["translation"]["en"]["title"] and doc["translation"]["en"]["text"]
        assert doc["text"] == originals[url]["text"], "the original French text is kept"
        assert doc["title"] == originals[url]["title"]


def test_french_article_found_by_english_words_of_its_translation(
    env, sites, es, index_prefix, tiny_model
):
    installed = run_veille("models", "install", "--file", str(tiny_model), env=env)
    assert installed.returncode == 0, installed.stderr
    crawl = run_veille("crawl", "--all", "--json", *FAST_CRAWL, env=env)
    assert crawl.returncode == 0, crawl.stderr

    french = _docs(es, index_prefix, "fr")
    assert french and {d["translation_status"] for d in french} == {"done"}
    english = _docs(es, index_prefix, "en")
    assert english and {d["translation_status"] for d in english} == {"not_needed"}

    target = french[0]
    word = _a_translated_word(target["translation"]["en"]["text"])
    found = run_veille("search", word, "--lang", "fr", "--json", env=env)
    assert found.returncode == 0, found.stderr
    assert target["title"] in {hit["title"] for hit in json.loads(found.stdout)}
    # the glossary keeps names intact through translation
    with_name = [d for d in french if "Safeguard Defenders" in d["text"]]
    assert with_name
    assert all("Safeguard Defenders" in d["translation"]["en"]["text"] for d in with_name)
