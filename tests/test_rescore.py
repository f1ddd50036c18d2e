"""Retroactive topics: a topic edited after the crawl applies to the weeks already crawled.

Real parts: the local Elasticsearch node (articles, rejected articles, verdicts, the percolator
and notification log), aiosmtpd in this process for the alerts, the ``veille`` command line in
subprocesses, labelled articles served as news sites on 127.0.0.1, and the tiny genuine Argos
model for the translation of promoted articles.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from alerts.rules import load_rules
from alerts.run import run_alerts
from tests.support.fixture_server import FixtureSites
from tests.support.relevance_site import outlet_of
from tests.support.retro import (
    BOGOTA,
    COMMONS,
    LYON,
    OFF_TOPIC,
    ON_TOPIC,
    example_sources,
    labelled,
    page_url,
    relevance_sources,
    serve_subset,
    stored_article,
    write_topic_config,
)
from tests.support.runner import FAST_CRAWL, clean_env, run_veille
from tests.support.smtp_server import SmtpServer
from tests.support.tiny_argos import build_tiny_model
from tests.test_alerts import parts
from veille.core.es import IndexNames, setup_indices
from veille.core.verdicts import ArticleRef, Verdict, record_verdict

ANALYST = "analyst@example.org"
# The rules that keep the Lyon and Bogotá articles (each under the first); the edit removes all.
NARROWED = ("fr/family-at-home", "es/dissidents-abroad")
REMOVED = (*NARROWED, "fr/home-authorities")


def _fits(text: str) -> bool:
    return all(len(line) <= 80 for line in text.splitlines())


def _by_url(es, index: str) -> dict[str, dict]:
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=500, query={"match_all": {}}, seq_no_primary_term=True)
    return {hit["_source"]["canonical_url"]: hit for hit in hits["hits"]["hits"]}


def _alert_rule(folder: Path, query: str, **rule: str) -> None:
    rules = [{"name": "watch", "query": query, "recipients": [ANALYST], **rule}]
    (folder / "alerts.yaml").write_text(yaml.safe_dump({"rules": rules}), "utf-8")


@pytest.mark.slow
def test_rescore_promotes_a_rejected_article_once_and_alerts_on_it_once(
    tmp_path, es, es_url, index_prefix
):
    names = [LYON, BOGOTA, *ON_TOPIC, *OFF_TOPIC]
    articles = serve_subset(tmp_path, names)
    models = [build_tiny_model(tmp_path / "argos-build", language) for language in ("fr", "es")]
    with FixtureSites(tmp_path / "sites") as served, SmtpServer() as smtp:
        bases = {outlet: served.base_url(outlet) for outlet in served.outlets}
        config = write_topic_config(tmp_path / "config", relevance_sources(bases), REMOVED)
        _alert_rule(config, "Lyon OR Bogotá")
        env = clean_env(
            VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=index_prefix,
            VEILLE_DATA_DIR=str(tmp_path / "data"), VEILLE_CONFIG=str(config),
            ARGOS_PACKAGES_DIR=str(tmp_path / "argos-packages"), HOME=str(tmp_path / "home"),
            **smtp.env(),
        )  # fmt: skip
        files = [option for model in models for option in ("--file", str(model))]
        assert run_veille("models", "install", *files, env=env).returncode == 0
        crawl = run_veille(
            "crawl", "--all", "--json", *FAST_CRAWL, "--set", "VEILLE_PREFILTER_MIN_WORDS=0",
            env=env,
        )  # fmt: skip
        assert crawl.returncode == 0, crawl.stderr
        url = {article.path.relative_to(tmp_path / "labelled").as_posix():
               page_url(bases[outlet_of(article)], article) for article in articles}  # fmt: skip
        names_ = IndexNames(index_prefix)

        # The narrowed topic kept the other on-topic articles; every article it dropped is kept
        # in the rejected index with what it takes to judge it again.
        assert set(_by_url(es, names_.articles)) == {url[name] for name in ON_TOPIC}
        rejected = _by_url(es, names_.rejected)
        assert set(rejected) == {url[name] for name in (LYON, BOGOTA, *OFF_TOPIC)}
        lyon_record = rejected[url[LYON]]["_source"]
        assert lyon_record["text"].split() == labelled(LYON).text.split()  # as extracted
        assert lyon_record["language"] == "fr" and lyon_record["source"]["name"] == "relevance-fr"
        assert lyon_record["closest"]["topic"] == "overseas-police-stations"
        assert 0 < lyon_record["closest"]["closeness"] < 1
        assert "promoted" not in lyon_record

        sent = run_veille("alerts", "send", env=env)  # the crawl's articles: nothing matches
        assert sent.returncode == 0, sent.stderr
        assert not smtp.messages

        # The edit: the shipped topic again, with its rules back.
        write_topic_config(config, relevance_sources(bases))
        preview = run_veille("topics", "eval", "--index", "--json", env=env)
        assert preview.returncode == 0, preview.stderr
        plan = json.loads(preview.stdout)
        assert {item["url"] for item in plan["add"]} == {url[LYON], url[BOGOTA]}
        assert {item["rule"] for item in plan["add"]} == set(NARROWED)
        assert plan["remove"] == plan["restore"] == plan["already_kept"] == []
        assert plan["stored"] == {"kept": 2, "off_topic": 0, "rejected": 6}
        shown = run_veille("topics", "eval", "--index", env=env)
        assert _fits(shown.stdout)
        assert re.search(r"add +2  rejected articles a rule now keeps", shown.stdout)
        assert set(_by_url(es, names_.articles)) == {url[name] for name in ON_TOPIC}  # unchanged

        rescored = run_veille("topics", "rescore", env=env)

        assert rescored.returncode == 0, rescored.stderr
        assert _fits(rescored.stdout)
        said = " ".join(rescored.stdout.split())
        assert "promoted 2 rejected articles through the stages after relevance: 2 stored" in said
        kept = _by_url(es, names_.articles)
        assert set(kept) == {url[name] for name in (*ON_TOPIC, LYON, BOGOTA)}
        for name, rule in zip((LYON, BOGOTA), NARROWED, strict=True):
            doc = kept[url[name]]["_source"]
            assert doc["relevance"]["rule"] == rule and doc["topics"] == [
                "overseas-police-stations"
            ]
            assert doc["translation_status"] == "done" and doc["translation"]["en"]["text"]
            assert doc["cluster_id"] and doc["minhash"]["bands"]
            assert doc["countries"]  # the places stage
            assert doc["first_seen_at"] == rejected[url[name]]["_source"]["first_seen_at"]
            assert doc["promoted_at"] > doc["first_seen_at"]
        records = _by_url(es, names_.rejected)
        assert records[url[LYON]]["_source"]["promoted"]["outcome"] == "indexed"

        sent = run_veille("alerts", "send", env=env)
        assert sent.returncode == 0, sent.stderr
        [email] = smtp.messages
        text, _ = parts(email)
        assert labelled(LYON).title in text and labelled(BOGOTA).title in text

        again = run_veille("topics", "rescore", "--json", env=env)
        assert again.returncode == 0, again.stderr
        report = json.loads(again.stdout)
        assert report["add"] == report["remove"] == report["update"] == []
        assert report["applied"]["promoted"]["sent"] == 0
        assert _by_url(es, names_.articles) == kept  # same documents, same sequence numbers
        assert run_veille("alerts", "send", env=env).returncode == 0
        assert len(smtp.messages) == 1


@pytest.fixture
def prefix(es, index_prefix, request) -> str:
    name = f"{index_prefix}-{request.node.name[5:20].replace('_', '-')}"
    setup_indices(es, name)
    return name


def _index(es, prefix: str, *articles) -> None:
    for article in articles:
        es.index(index=IndexNames(prefix).articles, id=article.id,
                 document=article.to_document(), refresh=True)  # fmt: skip


def _judge(es, prefix: str, article, label: str) -> None:
    [hit] = es.search(index=IndexNames(prefix).articles,
                      query={"ids": {"values": [article.id]}})["hits"]["hits"]  # fmt: skip
    record_verdict(es, IndexNames(prefix), ArticleRef.from_hit(hit), Verdict(label,
                   datetime.now(UTC), "cli"))  # fmt: skip


def _env(es_url: str, prefix: str, config: Path, **values: str) -> dict[str, str]:
    return clean_env(VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=prefix,
                     VEILLE_CONFIG=str(config), **values)  # fmt: skip


def test_an_edit_that_removes_an_article_marks_it_and_it_leaves_the_alerts(
    tmp_path, es, es_url, prefix, monkeypatch
):
    names = [COMMONS, ON_TOPIC[1]]
    shipped = write_topic_config(tmp_path / "shipped", example_sources(names))
    now = datetime.now(UTC)
    commons, capel = (stored_article(labelled(n), shipped, now - timedelta(hours=1)) for n in names)
    _index(es, prefix, commons, capel)
    edited = write_topic_config(tmp_path / "config", example_sources(names), ("en/police-outpost",))
    _alert_rule(edited, '"foreign influence" OR Capel', frequency="daily", at="08:00",
                timezone="UTC")  # fmt: skip
    rules = load_rules(edited)
    with SmtpServer() as smtp:
        for name, value in smtp.env().items():
            monkeypatch.setenv(name, value)
        env = _env(es_url, prefix, edited, **smtp.env())
        assert run_alerts(es, prefix, rules, now).matching.created == 2  # tomorrow's digest
        assert not smtp.messages

        rescored = run_veille("topics", "rescore", env=env)

        assert rescored.returncode == 0, rescored.stderr
        assert re.search(r"remove +1  kept articles no rule keeps now", rescored.stdout)
        assert "marked 1 off topic" in " ".join(rescored.stdout.split())
        stored = _by_url(es, IndexNames(prefix).articles)
        marked = stored[commons.canonical_url]["_source"]
        assert marked["title"] == commons.title  # kept, never deleted
        assert marked["off_topic"]["closest"].startswith("en/")
        assert marked["relevance"]["rule"] == "en/police-outpost"  # why it was kept then
        assert "off_topic" not in stored[capel.canonical_url]["_source"]

        report = run_alerts(es, prefix, rules, rules.require("watch").due_at(now) + timedelta(
            minutes=1))  # fmt: skip
        assert report.delivery.off_topic == 1
        [digest] = smtp.messages
        text, _ = parts(digest)
        assert capel.title in text and commons.title not in text
        states = es.search(index=IndexNames(prefix).notifications,
                           query={"term": {"article_id": commons.id}})["hits"]["hits"]  # fmt: skip
        assert [hit["_source"]["cancel_reason"] for hit in states] == ["off_topic"]

        again = run_veille("topics", "rescore", "--json", env=env)
        assert json.loads(again.stdout)["applied"]["marked"] == 0
        assert _by_url(es, IndexNames(prefix).articles) == stored

        # The rule back: the article is kept again.
        back = run_veille("topics", "rescore", env=_env(es_url, prefix, shipped))
        assert re.search(r"restore +1  articles marked off topic", back.stdout), back.stdout
        restored = _by_url(es, IndexNames(prefix).articles)[commons.canonical_url]["_source"]
        assert restored["off_topic"] is None
        assert restored["relevance"]["rule"] == "en/police-outpost"


def test_eval_index_reports_precision_and_recall_on_the_analysts_verdicts(
    tmp_path, es, es_url, prefix
):
    names = [COMMONS, ON_TOPIC[1], OFF_TOPIC[3]]
    shipped = write_topic_config(tmp_path / "shipped", example_sources(names))
    now = datetime.now(UTC)
    commons = stored_article(labelled(COMMONS), shipped, now - timedelta(days=1))
    capel = stored_article(labelled(ON_TOPIC[1]), shipped, now - timedelta(days=90))
    # Kept by a looser rule of an earlier topic file; the shipped rules do not keep it.
    canola = stored_article(labelled(OFF_TOPIC[3]), shipped, now - timedelta(days=1),
                            topics=["overseas-police-stations"],
                            relevance={"topic": "overseas-police-stations",
                                       "rule": "en/old-loose-rule", "score": 1})  # fmt: skip
    _index(es, prefix, commons, capel, canola)
    _judge(es, prefix, commons, "relevant")
    _judge(es, prefix, capel, "relevant")
    _judge(es, prefix, canola, "irrelevant")
    edited = write_topic_config(tmp_path / "config", example_sources(names), ("en/police-outpost",))
    env = _env(es_url, prefix, edited)

    result = run_veille("topics", "eval", "--index", "--since", "30d", "--json", env=env)

    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    before, after = plan["verdicts"]["before"], plan["verdicts"]["after"]
    # All three judged (one first seen 90 days ago); before: all kept; after: only Capel Street.
    assert (before["articles"], before["relevant"], before["kept"]) == (3, 2, 3)
    assert (before["precision"], before["recall"]) == (pytest.approx(2 / 3), 1.0)
    assert (after["kept"], after["true_positives"]) == (1, 1)
    assert (after["precision"], after["recall"]) == (1.0, 0.5)
    assert [item["url"] for item in plan["remove"]] == [canola.canonical_url]
    assert [item["url"] for item in plan["held"]] == [commons.canonical_url]  # judged relevant
    assert plan["stored"]["kept"] == 2  # the 90-day-old article is outside --since 30d
    text = run_veille("topics", "eval", "--index", "--since", "30d", env=env).stdout
    assert _fits(text)
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip()}
    assert rows["before"] == ["3", "2", "3", "0.67", "1.00"]
    assert rows["after"] == ["3", "2", "1", "1.00", "0.50"]
    assert "hold" in text and labelled(COMMONS).title[:30] in text
    # Nothing changed.
    assert (
        "off_topic" not in _by_url(es, IndexNames(prefix).articles)[canola.canonical_url]["_source"]
    )
