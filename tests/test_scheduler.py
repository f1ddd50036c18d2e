"""The scheduler as an operator runs it: `python scheduler.py` in a subprocess, crawling fixture
sites on 127.0.0.1 on short schedules into a real Elasticsearch, each run read back from the
crawls index; a real SMTP server receives the operator's email."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
import yaml

from tests.support.fixture_server import FixtureSites
from tests.support.runner import FAST_CRAWL, ROOT, SITES, clean_env, run_veille
from tests.support.smtp_server import SmtpServer
from veille.core.es import IndexNames

pytestmark = pytest.mark.slow

OUTLETS = ("northern-ledger", "le-veilleur")


class Newsroom:
    """Copies of two fixture outlets whose feeds the tests rewrite while the scheduler runs."""

    def __init__(self, sites: FixtureSites, root: Path) -> None:
        self.sites = sites
        self.root = root

    def on_topic(self, outlet: str) -> list[dict[str, Any]]:
        return self.sites.pages(outlet, kind="article", on_topic=True)

    def feed_url(self, outlet: str, feed: str) -> str:
        return self.sites.url(outlet, f"/{feed}")

    def publish(self, outlet: str, feed: str, pages: list[dict[str, Any]]) -> None:
        """Make ``feed`` list exactly ``pages`` (an RSS 2.0 feed; none at all is allowed)."""
        items = "".join(
            f"<item><title>{escape(p['title'])}</title><link>{{{{BASE}}}}{p['path']}</link>"
            f"<guid>{{{{BASE}}}}{p['path']}</guid><pubDate>"
            f"{format_datetime(datetime.fromisoformat(p['published_at']))}</pubDate></item>"
            for p in pages
        )
        text = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{outlet}</title><link>{{{{BASE}}}}/</link><description>news</description>"
            f"{items}</channel></rss>"
        )
        path = self.root / outlet / feed
        partial = path.with_suffix(".part")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)


@pytest.fixture(scope="module")
def newsroom(tmp_path_factory) -> Iterator[Newsroom]:
    root = tmp_path_factory.mktemp("newsroom")
    for outlet in OUTLETS:
        shutil.copytree(SITES / outlet, root / outlet)
    shutil.copy(SITES / "manifest.yaml", root / "manifest.yaml")
    with FixtureSites(root) as sites:
        yield Newsroom(sites, root)


class HangingSite:
    """A web server on 127.0.0.1 that accepts connections and never answers."""

    def __enter__(self) -> HangingSite:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._hold, daemon=True)
        self.thread.start()
        return self

    def _hold(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(connection)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/feed.xml"

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        for connection in self.held:
            connection.close()


def _source(name: str, url: str, every: str, jitter: str = "0s", **extra: Any) -> dict:
    return {"name": name, "type": "feed", "urls": [url], "language": "en",
            "schedule": {"every": every, "jitter": jitter}, **extra}  # fmt: skip


def write_sources(folder: Path, sources: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
    shutil.copytree(ROOT / "config" / "topics", folder / "topics", dirs_exist_ok=True)


@pytest.fixture
def workspace(tmp_path: Path, es_url: str, index_prefix: str, request) -> dict[str, Any]:
    """A config folder, a data folder and an index prefix of this test's own."""
    prefix = f"{index_prefix}-{request.node.name.removeprefix('test_')[:20].replace('_', '-')}"
    env = clean_env(
        VEILLE_ES_URL=es_url,
        VEILLE_INDEX_PREFIX=prefix,
        VEILLE_DATA_DIR=str(tmp_path / "data"),
        VEILLE_CONFIG=str(tmp_path / "config"),
        VEILLE_SCHEDULER_TASKS="none",
    )
    return {"env": env, "prefix": prefix, "config": tmp_path / "config", "tmp": tmp_path}


class Scheduler:
    """``python scheduler.py`` with fast crawl settings, its log in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Scheduler:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "scheduler.py", *FAST_CRAWL], cwd=ROOT, env=self.env,
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.log_mark = len(self.log())
        wait_until(lambda: "scheduler started" in self.log()[self.log_mark :], 60, "start", self)
        return self

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)


@contextmanager
def scheduler_running(workspace: dict[str, Any], **extra_env: str) -> Iterator[Scheduler]:
    scheduler = Scheduler({**workspace["env"], **extra_env}, workspace["tmp"] / "scheduler.log")
    scheduler.start()
    try:
        yield scheduler
    finally:
        if scheduler.process and scheduler.process.poll() is None:
            scheduler.stop()


def wait_until(
    condition: Callable[[], Any], timeout: float, what: str, scheduler: Scheduler | None = None
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.5)
    log = scheduler.log()[-4000:] if scheduler else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log}")


def runs_of(es, prefix: str, source: str) -> list[dict[str, Any]]:
    """The stored runs of a source, oldest first."""
    index = IndexNames(prefix).crawls
    if not es.indices.exists_alias(name=index):
        return []
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=500, query={"term": {"source": source}},
                     sort=[{"started_at": "asc"}])["hits"]["hits"]  # fmt: skip
    return [hit["_source"] for hit in hits]


def successes(es, prefix: str, source: str) -> list[dict[str, Any]]:
    return [r for r in runs_of(es, prefix, source) if r["status"] == "success"]


def jobs(workspace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    listed = run_veille("jobs", "--json", env=workspace["env"], timeout=60)
    assert listed.returncode == 0, listed.stderr
    return {job["id"]: job for job in json.loads(listed.stdout)}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_scheduler_crawls_two_sources_repeatedly_and_indexes_articles_published_between_runs(
    newsroom, es, workspace
):
    ledger, veilleur = newsroom.on_topic("northern-ledger"), newsroom.on_topic("le-veilleur")
    newsroom.publish("northern-ledger", "repeat.xml", ledger[:2])
    newsroom.publish("le-veilleur", "repeat.xml", veilleur[:2])
    write_sources(workspace["config"], [
        _source("ledger", newsroom.feed_url("northern-ledger", "repeat.xml"), "6s"),
        _source("veilleur", newsroom.feed_url("le-veilleur", "repeat.xml"), "6s"),
    ])  # fmt: skip
    prefix = workspace["prefix"]
    with scheduler_running(workspace) as scheduler:
        wait_until(
            lambda: successes(es, prefix, "ledger") and successes(es, prefix, "veilleur"),
            120, "a first run of each source", scheduler,
        )  # fmt: skip
        published = datetime.now(UTC)
        newsroom.publish("northern-ledger", "repeat.xml", ledger[:3])
        after = wait_until(
            lambda: [r for r in successes(es, prefix, "ledger") if at(r["started_at"]) > published],
            90, "a ledger run after the new article", scheduler,
        )  # fmt: skip
        wait_until(lambda: len(successes(es, prefix, "veilleur")) >= 2, 90, "veilleur again")
        assert scheduler.stop() == 0
    assert "scheduler stopped" in scheduler.log()

    articles = IndexNames(prefix).articles
    es.indices.refresh(index=articles)
    hits = es.search(index=articles, size=50, query={"match_all": {}})["hits"]["hits"]
    indexed = {hit["_source"]["canonical_url"]: hit["_source"] for hit in hits}
    new_url = newsroom.sites.url("northern-ledger", ledger[2]["path"])
    expected = {newsroom.sites.url("northern-ledger", p["path"]) for p in ledger[:3]} | {
        newsroom.sites.url("le-veilleur", p["path"]) for p in veilleur[:2]
    }
    assert set(indexed) == expected
    # found on the first run that read the feed after publication, at the latest
    assert published < at(indexed[new_url]["first_seen_at"]) <= at(after[0]["ended_at"])
    ledger_runs = runs_of(es, prefix, "ledger")
    assert ledger_runs[0]["indexed"] == 2 and ledger_runs[0]["entries"] == 2
    assert sum(r["indexed"] for r in ledger_runs) == 3
    assert all(r["trigger"] == "schedule" for r in ledger_runs)
    assert all(r["exit_code"] == 0 for r in successes(es, prefix, "ledger"))


def test_hanging_crawl_is_stopped_at_its_time_limit_while_the_other_source_keeps_its_schedule(
    newsroom, es, workspace
):
    newsroom.publish("northern-ledger", "steady.xml", newsroom.on_topic("northern-ledger")[:1])
    prefix = workspace["prefix"]
    with HangingSite() as hanging:
        write_sources(workspace["config"], [
            _source("stuck", hanging.url, "4s"),
            # its own limit: on a loaded machine a real crawl can outlast the short default
            _source("steady", newsroom.feed_url("northern-ledger", "steady.xml"), "3s",
                    time_limit="10m"),
        ])  # fmt: skip
        limits = {"VEILLE_CRAWL_TIME_LIMIT": "12s", "VEILLE_CRAWL_STOP_GRACE": "2s"}
        with scheduler_running(workspace, **limits) as scheduler:

            def steady_during_stuck() -> list[tuple[dict, dict]]:
                timeouts = [r for r in runs_of(es, prefix, "stuck") if r["status"] == "timeout"]
                return [
                    (hung, run)
                    for hung in timeouts
                    for run in successes(es, prefix, "steady")
                    if at(hung["started_at"]) < at(run["started_at"]) < at(hung["ended_at"])
                ]

            [(stuck, _), *_] = wait_until(
                steady_during_stuck, 120, "a steady run during a stuck one", scheduler
            )

            # the stuck source is tried again; shutting down now stops that crawl and records it
            def stuck_in_progress() -> bool:
                started = scheduler.log().count("crawl stuck started")
                return started > len(runs_of(es, prefix, "stuck"))

            wait_until(stuck_in_progress, 60, "a stuck crawl in progress", scheduler)
            assert scheduler.stop() == 0

    assert stuck["status"] == "timeout"
    assert stuck["exit_code"] != 0
    # stopped at the limit, then killed after the grace; a loaded machine may add a little
    assert 12 <= stuck["duration_s"] < 12 + 2 + 30
    assert "time limit" in stuck["message"]
    assert sum(r["indexed"] for r in runs_of(es, prefix, "steady")) == 1
    # the shutdown stopped the crawl in progress rather than waiting for its time limit
    assert runs_of(es, prefix, "stuck")[-1]["status"] == "stopped"

    failed = run_veille("runs", "--failed", "--json", env=workspace["env"])
    assert failed.returncode == 0, failed.stderr
    listed = json.loads(failed.stdout)
    assert {(r["source"], r["status"]) for r in listed} == {("stuck", "timeout")}


def test_crashing_crawl_is_recorded_as_failed_with_its_exit_code(newsroom, es, workspace):
    newsroom.publish("northern-ledger", "crash.xml", newsroom.on_topic("northern-ledger")[:1])
    write_sources(workspace["config"], [
        _source("crashing", newsroom.feed_url("northern-ledger", "crash.xml"), "1h"),
    ])  # fmt: skip
    crashed = run_veille("run-now", "crashing", "--set", "VEILLE_MIN_WORDS=many",
                         env=workspace["env"])  # fmt: skip
    assert crashed.returncode == 1
    assert "crashing: failed" in crashed.stdout and "exit 1" in crashed.stdout
    [run] = runs_of(es, workspace["prefix"], "crashing")
    assert (run["status"], run["exit_code"], run["trigger"]) == ("failed", 1, "manual")
    assert "invalid literal for int() with base 10: 'many'" in run["message"]
    assert Path(run["log_file"]).is_file()

    shown = run_veille("runs", "--source", "crashing", "--failed", env=workspace["env"])
    assert shown.returncode == 0, shown.stderr
    assert "crashing" in shown.stdout and "failed" in shown.stdout


def test_a_sources_own_time_limit_stops_its_crawl_before_the_default_one(workspace, es):
    with HangingSite() as hanging:
        write_sources(workspace["config"], [
            _source("slow-site", hanging.url, "1h", time_limit="6s"),
        ])  # fmt: skip
        env = {
            **workspace["env"],
            "VEILLE_CRAWL_TIME_LIMIT": "10m",
            "VEILLE_CRAWL_STOP_GRACE": "2s",
        }
        stopped = run_veille("run-now", "slow-site", *FAST_CRAWL, env=env, timeout=120)
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    assert "slow-site: timeout" in stopped.stdout
    [run] = runs_of(es, workspace["prefix"], "slow-site")
    assert run["status"] == "timeout"
    assert 6 <= run["duration_s"] < 6 + 2 + 30
    assert "time limit of 0:00:06" in run["message"]


def test_killed_scheduler_keeps_its_jobs_and_runs_a_missed_job_once_after_restart(
    newsroom, es, workspace
):
    newsroom.publish("northern-ledger", "restart.xml", newsroom.on_topic("northern-ledger")[:1])
    write_sources(workspace["config"], [
        _source("ledger", newsroom.feed_url("northern-ledger", "restart.xml"), "20s"),
    ])  # fmt: skip
    prefix, interval = workspace["prefix"], timedelta(seconds=20)
    scheduler = Scheduler(workspace["env"], workspace["tmp"] / "scheduler.log").start()
    wait_until(lambda: runs_of(es, prefix, "ledger"), 90, "the first run", scheduler)
    scheduler.kill()

    stored = jobs(workspace)["crawl:ledger"]
    due = at(stored["next_run_time"])
    # let two runs go by while the scheduler is down (at due and a tick later); restart just
    # after the second
    time.sleep(max(0.0, (due + interval - datetime.now(UTC)).total_seconds()) + 2)
    restarted = datetime.now(UTC)
    before = len(runs_of(es, prefix, "ledger"))
    scheduler.start()
    try:
        assert "jobs kept: crawl:ledger" in scheduler.log()[scheduler.log_mark :]
        wait_until(lambda: len(runs_of(es, prefix, "ledger")) > before, 90, "catch-up", scheduler)
        catch_up = at(runs_of(es, prefix, "ledger")[before]["started_at"])
        # the first regular tick after the catch-up, on the rhythm the stored job kept (counted
        # from the catch-up, not from the restart: a loaded machine may take a while to start)
        first_tick = due + math.ceil((catch_up - due) / interval) * interval
        wait_until(lambda: datetime.now(UTC) > first_tick, 60, "the first regular tick")
        upcoming = at(jobs(workspace)["crawl:ledger"]["next_run_time"])
    finally:
        scheduler.stop()  # a run still going is stopped and recorded
    started = [at(r["started_at"]) for r in runs_of(es, prefix, "ledger")]
    # the runs missed while down collapse into one catch-up run, before the next regular tick
    assert len([s for s in started if restarted <= s < first_tick]) == 1
    # the schedule kept its rhythm: the next run time is a whole number of intervals after `due`
    offset = (upcoming - due) / interval
    assert upcoming > restarted and abs(offset - round(offset)) < 0.01


def test_editing_sources_and_restarting_adds_changes_and_removes_jobs(workspace):
    feed = "http://127.0.0.1:9/feed.xml"
    write_sources(workspace["config"], [
        _source("alpha", feed, "1h", jitter="1h"),
        _source("bravo", feed, "1h", jitter="1h"),
        _source("charlie", feed, "1h", jitter="1h"),
        _source("delta", feed, "1h", jitter="1h", enabled=False),
    ])  # fmt: skip
    with scheduler_running(workspace, VEILLE_SCHEDULER_TASKS="all") as scheduler:
        pass
    first = jobs(workspace)
    tasks = {
        "task:alerts-send",
        "task:spool-replay",
        "task:translate-pending",
        "task:clusters-prune",
        "task:stations-update",
        "task:rejected-prune",
    }
    assert set(first) == {"crawl:alpha", "crawl:bravo", "crawl:charlie"} | tasks
    assert os.stat(
        Path(workspace["env"]["VEILLE_DATA_DIR"]) / "scheduler.sqlite"
    ).st_mode & 0o777 == (0o600)

    write_sources(workspace["config"], [
        _source("alpha", feed, "1h", jitter="1h"),
        _source("bravo", feed, "2h", jitter="1h"),
        _source("delta", feed, "1h", jitter="1h"),
        _source("echo", feed, "1h", jitter="1h"),
    ])  # fmt: skip
    with scheduler_running(workspace, VEILLE_SCHEDULER_TASKS="spool-replay") as scheduler:
        log = scheduler.log()[scheduler.log_mark :]
    second = jobs(workspace)
    assert set(second) == {"crawl:alpha", "crawl:bravo", "crawl:delta", "crawl:echo"} | {
        "task:spool-replay"
    }
    assert second["crawl:alpha"] == first["crawl:alpha"]
    assert "every 2h" in second["crawl:bravo"]["name"]
    for line in (
        "jobs added: crawl:delta, crawl:echo",
        "jobs changed: crawl:bravo",
        "jobs removed: crawl:charlie, task:alerts-send, task:clusters-prune, "
        "task:rejected-prune, task:stations-update, task:translate-pending",
        "jobs kept: crawl:alpha, task:spool-replay",
    ):
        assert line in log


def test_source_that_stops_publishing_is_flagged_quiet_after_several_usual_gaps_and_emailed_once(
    newsroom, es, workspace
):
    """An outlet that published every 10 seconds, then nothing: its unchanged feed (304) is not
    quiet within three of its usual gaps (30 s), and is quiet after them; one email."""
    [page] = newsroom.on_topic("le-veilleur")[:1]
    newest = datetime.now(UTC).replace(microsecond=0)
    items = "".join(
        f"<item><title>{escape(page['title'])} ({n})</title><link>{{{{BASE}}}}{page['path']}</link>"
        f"<guid>{n}</guid><pubDate>{format_datetime(newest - timedelta(seconds=10 * n))}</pubDate>"
        "</item>"
        for n in range(8)
    )
    path = newsroom.root / "le-veilleur" / "fading.xml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>fading</title>'
        f"<link>{{{{BASE}}}}/</link><description>news</description>{items}</channel></rss>",
        encoding="utf-8",
    )
    write_sources(workspace["config"], [
        _source("fading", newsroom.feed_url("le-veilleur", "fading.xml"), "3s"),
    ])  # fmt: skip
    prefix = workspace["prefix"]
    with SmtpServer() as smtp:
        operator = {**smtp.env(), "VEILLE_OPERATOR_EMAIL": "ops@example.org",
                    "VEILLE_QUIET_MIN": "1s"}  # fmt: skip
        with scheduler_running(workspace, **operator) as scheduler:
            wait_until(
                lambda: [r for r in successes(es, prefix, "fading") if r["flags"] == ["quiet"]],
                120, "a quiet run", scheduler,
            )  # fmt: skip
            assert scheduler.stop() == 0
        messages = smtp.messages

    runs = successes(es, prefix, "fading")
    assert runs[0]["entries"] == 8 and runs[0]["usual_gap_s"] == 10
    silent = {r["run_id"]: (at(r["started_at"]) - newest).total_seconds() for r in runs}
    for run in runs:
        assert run["flags"] == (["quiet"] if silent[run["run_id"]] > 30 else []), run
    assert [r for r in runs if r["not_modified"] and not r["flags"]], "no 304 within the gaps"
    assert len(messages) == 1
    assert messages[0]["To"] == "ops@example.org"
    assert messages[0]["Subject"] == "[veille] source fading: went quiet"
    assert "it used to publish about every 10 seconds" in messages[0].get_content()

    shown = run_veille("runs", "--source", "fading", env=workspace["env"])
    assert shown.returncode == 0, shown.stderr
    assert "quiet" in shown.stdout
