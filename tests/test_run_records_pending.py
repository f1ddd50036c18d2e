"""Run records when Elasticsearch is down at the end of a run: kept on disk, stored once by the next
run, judged once (real Elasticsearch; "down" is a client pointed at a closed port of 127.0.0.1)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.redis_server import free_port
from tests.support.smtp_server import SmtpServer
from veille.core.config import Environment
from veille.core.es import IndexNames, make_client, setup_indices
from veille.ops.health import record_run
from veille.ops.runs import CrawlRun, RunSettings, keep_pending, pending_dir, store_run

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
SETTINGS = RunSettings(failing_after_runs=2)


def _run(source: str, n: int, status: str = "success") -> CrawlRun:
    started = START + timedelta(hours=n)
    return CrawlRun(
        run_id=f"{source}-{started:%Y%m%dT%H%M%S%fZ}", source=source, spider="feeds",
        trigger="schedule", started_at=started, ended_at=started + timedelta(seconds=40),
        duration_s=40.0, status=status, entries=6 if status == "success" else 0,
        feeds_read=1 if status == "success" else 0,
    )  # fmt: skip


@pytest.fixture
def crawls(es, index_prefix: str) -> str:
    index = IndexNames(index_prefix).crawls
    if not es.indices.exists_alias(name=index):
        setup_indices(es, index_prefix)
    return index


@pytest.fixture
def es_down(index_prefix: str):
    """A client for a port nothing listens on: every request is a real connection failure."""
    client = make_client(
        Environment(es_url=f"http://127.0.0.1:{free_port()}", index_prefix=index_prefix)
    )
    yield client
    client.close()


def _stored(es, index: str, run: CrawlRun) -> list[dict]:
    hits = es.search(index=index, query={"term": {"run_id": run.run_id}}, size=10)
    return [hit["_source"] for hit in hits["hits"]["hits"]]


def _waiting(data_dir) -> list[str]:
    return sorted(path.name for path in pending_dir(data_dir).iterdir())


def test_run_ending_while_elasticsearch_is_down_is_kept_on_disk_without_an_error(
    es_down, crawls, tmp_path, caplog
):
    run = _run("kept", 0)
    with caplog.at_level(logging.WARNING, logger="veille.ops.health"):
        record_run(es_down, crawls, run, SETTINGS, tmp_path)
    assert _waiting(tmp_path) == [f"{run.run_id}.json"]
    kept = json.loads((pending_dir(tmp_path) / f"{run.run_id}.json").read_text(encoding="utf-8"))
    assert kept == {"judged": False, "run": run.document()}
    [warning] = [r.getMessage() for r in caplog.records if r.name.startswith("veille")]
    assert str(pending_dir(tmp_path) / f"{run.run_id}.json") in warning
    assert "will be stored on the next run" in warning


def test_next_run_stores_the_kept_run_and_its_own_once_each_oldest_first(
    es, es_down, crawls, tmp_path
):
    first, second = _run("failing-site", 0, "failed"), _run("failing-site", 1, "failed")
    record_run(es_down, crawls, first, SETTINGS, tmp_path)
    record_run(es, crawls, second, SETTINGS, tmp_path)
    assert [len(_stored(es, crawls, run)) for run in (first, second)] == [1, 1]
    assert _waiting(tmp_path) == []
    # the kept run was stored before the new one was judged: two failures in a row
    assert second.flags == ["failing"]


def test_kept_run_already_stored_before_a_crash_is_stored_once(es, crawls, tmp_path):
    stored_then_crashed, later = _run("crashed", 0), _run("crashed", 1)
    keep_pending(tmp_path, stored_then_crashed, judged=True)
    store_run(es, crawls, stored_then_crashed)
    record_run(es, crawls, later, SETTINGS, tmp_path)
    assert _stored(es, crawls, stored_then_crashed) == [stored_then_crashed.document()]
    assert len(_stored(es, crawls, later)) == 1
    assert _waiting(tmp_path) == []


def test_incident_emailed_before_the_outage_is_not_emailed_again_after_it(
    es, es_down, crawls, tmp_path, monkeypatch
):
    with SmtpServer() as smtp:
        for name, value in {**smtp.env(), "VEILLE_OPERATOR_EMAIL": "ops@example.org"}.items():
            monkeypatch.setenv(name, value)
        runs = [_run("down-site", n, "failed") for n in range(4)]
        record_run(es, crawls, runs[0], SETTINGS, tmp_path)
        record_run(es, crawls, runs[1], SETTINGS, tmp_path)
        record_run(es_down, crawls, runs[2], SETTINGS, tmp_path)
        record_run(es, crawls, runs[3], SETTINGS, tmp_path)
        subjects = [message["Subject"] for message in smtp.messages]
    assert subjects == ["[veille] source down-site: crawls are failing"]
    kept = _stored(es, crawls, runs[2])
    assert [(run["flags"], run["notified"]) for run in kept] == [(["failing"], ["failing"])]
