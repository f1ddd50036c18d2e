"""Crawl runs: one source crawled in its own ``scrapy crawl`` subprocess, timed, and recorded.

In:  a configured :class:`~veille.core.config.Source`, the environment, :class:`RunSettings` (time
     limit, stop grace, health thresholds) and optional Scrapy setting overrides.
Out: a :class:`CrawlRun` (status ``success``, ``no_feed``, ``failed``, ``timeout`` or
     ``stopped``, the ``reason`` when it is not ``success``, exit code, the crawl's own Scrapy
     stats) stored in the ``<prefix>-crawls`` index with its health flags (see
     :mod:`veille.ops.health`), and the queries behind ``veille runs``.

A crawl that finished without reading any of its source's feeds (sitemaps, search answers) — each
was refused, malformed or failed, none answered ``304 Not Modified`` — is ``no_feed``, with each
feed and why in ``problems`` and ``reason``. A crawl stopped at its memory ceiling
(``crawler/extensions/memory_ceiling.py``) is ``failed`` with the reason ``memory``.

The subprocess writes its stats to ``<data>/runs/<run_id>.json`` (the ``VEILLE_STATS_FILE``
extension) and its log to ``<data>/logs/<source>/<run_id>.log``. A crawl past its time limit gets
SIGTERM (Scrapy closes cleanly and still writes its stats), then SIGKILL after the stop grace.
A lock file per source keeps one source from being crawled twice at once, across processes.

A run that cannot be stored because Elasticsearch is down or refusing waits in
``<data>/runs/pending/<run_id>.json`` (:func:`keep_pending`, written atomically and fsync'd) until
:func:`veille.ops.health.record_run` stores it, oldest first, under its own ``_id``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch

from veille.core.config import Config, ConfigError, Environment, Source, parse_duration
from veille.core.spool import fsync_dir

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
LOGS_KEPT_PER_SOURCE = 20
# Stat families of the three kinds of listing (crawler/spiders/): feeds, sitemaps, search answers.
LISTINGS = ("feeds", "sitemaps", "search")
# Statuses of runs that did not succeed, as `veille runs --failed` lists them.
NOT_SUCCEEDED = ("failed", "timeout", "no_feed")


def env_duration(name: str, default: str) -> timedelta:
    """A duration from the environment (``45s``, ``30m``, ``2h``), or a ConfigError naming it."""
    raw = os.environ.get(name) or default
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise ConfigError("(environment)", name, str(exc)) from exc


def env_int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name) or str(default)
    if not raw.isdigit() or int(raw) < minimum:
        raise ConfigError(
            "(environment)", name, f"{raw!r} is not a whole number", f"use {minimum} or more"
        )
    return int(raw)


@dataclass(frozen=True)
class RunSettings:
    """How crawl runs are bounded and judged, from the environment.

    ``VEILLE_CRAWL_TIME_LIMIT`` (default 30m): a crawl still running then is stopped (``timeout``);
    a source's own ``time_limit`` (``sources.yaml``) replaces it for that source.
    ``VEILLE_CRAWL_STOP_GRACE`` (default 30s): time between SIGTERM and SIGKILL.
    ``VEILLE_FAILING_AFTER_RUNS`` (default 3): runs in a row that failed, timed out or read no
    feed before a source is flagged ``failing``.
    ``VEILLE_QUIET_GAPS`` (default 3) and ``VEILLE_QUIET_MIN`` (default 12h): a source is
    ``quiet`` when its newest entry is older than this many of its usual gaps between entries,
    and older than the minimum (see :mod:`veille.ops.health`).
    """

    time_limit: timedelta = timedelta(minutes=30)
    stop_grace: timedelta = timedelta(seconds=30)
    failing_after_runs: int = 3
    quiet_gaps: int = 3
    quiet_min: timedelta = timedelta(hours=12)

    @classmethod
    def from_env(cls) -> RunSettings:
        return cls(
            time_limit=env_duration("VEILLE_CRAWL_TIME_LIMIT", "30m"),
            stop_grace=env_duration("VEILLE_CRAWL_STOP_GRACE", "30s"),
            failing_after_runs=env_int("VEILLE_FAILING_AFTER_RUNS", 3),
            quiet_gaps=env_int("VEILLE_QUIET_GAPS", 3),
            quiet_min=env_duration("VEILLE_QUIET_MIN", "12h"),
        )


@dataclass
class CrawlRun:
    """One crawl of one source, as stored in ``<prefix>-crawls`` (every field is mapped).

    ``feeds_read`` counts the source's listings read (feeds, sitemaps or search answers),
    ``not_modified`` those that answered ``304``, ``feeds_failed`` those that could not be used;
    ``problems`` says which and why (``url``, ``kind``: ``malformed``, ``not_a_feed`` or
    ``failed``, ``detail``). ``entry_times`` are the newest publication times listed,
    ``newest_entry_at`` the newest of them, ``usual_gap_s`` the source's usual gap between
    entries when the run was judged (:mod:`veille.ops.health`).
    """

    run_id: str
    source: str
    spider: str
    trigger: str
    started_at: datetime
    ended_at: datetime | None = None
    duration_s: float = 0.0
    status: str = "failed"
    reason: str | None = None
    exit_code: int | None = None
    finish_reason: str | None = None
    entries: int = 0
    feeds_read: int = 0
    not_modified: int = 0
    feeds_failed: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)
    pages_fetched: int = 0
    responses: int = 0
    extracted: int = 0
    indexed: int = 0
    duplicates: int = 0
    spooled: int = 0
    errors: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    dropped_total: int = 0
    entry_times: list[str] = field(default_factory=list)
    newest_entry_at: str | None = None
    usual_gap_s: float | None = None
    peak_memory_mb: float | None = None
    flags: list[str] = field(default_factory=list)
    notified: list[str] = field(default_factory=list)
    baseline_entries: float | None = None
    message: str | None = None
    log_file: str | None = None

    def add_stats(self, stats: dict[str, Any]) -> None:
        """Fill the counters from the crawl's Scrapy stats."""

        def value(key: str) -> int:
            return int(stats.get(key, 0) or 0)

        def total(*names: str) -> int:
            return sum(value(f"veille/{kind}/{name}") for kind in LISTINGS for name in names)

        self.finish_reason = stats.get("finish_reason")
        self.entries = sum(
            int(v) for k, v in stats.items() if k.startswith("veille/") and k.endswith("/entries")
        )
        self.feeds_read = total("read")
        self.not_modified = total("not_modified")
        self.feeds_failed = total("failed", "malformed", "not_a_feed", "unreadable")
        self.problems = list(stats.get("veille/problems") or [])
        self.entry_times = list(stats.get("veille/entry_times") or [])
        self.newest_entry_at = self.entry_times[-1] if self.entry_times else None
        self.peak_memory_mb = stats.get("veille/memory/peak_mb")
        self.pages_fetched = value("veille/pages_fetched")
        self.responses = value("downloader/response_count")
        self.extracted = value("veille/extracted")
        self.indexed = value("veille/indexed")
        self.spooled = value("veille/spooled")
        self.errors = value("log_count/ERROR")
        self.dropped = {
            k.removeprefix("veille/dropped/"): int(v)
            for k, v in stats.items()
            if k.startswith("veille/dropped/")
        }
        self.dropped_total = sum(self.dropped.values())
        self.duplicates = value("veille/index/already_present") + sum(
            v for k, v in self.dropped.items() if k.startswith("duplicate")
        )

    @property
    def read_nothing(self) -> bool:
        """No listing was read or answered 304, and at least one could not be used."""
        return not self.feeds_read and not self.not_modified and bool(self.problems)

    def problem_summary(self, limit: int = 3) -> str:
        """``<url>: <detail>`` for the first ``limit`` problems, and how many more."""
        shown = [f"{p['url']}: {p['kind'].replace('_', ' ')}: {p['detail']}" for p in
                 self.problems[:limit]]  # fmt: skip
        more = len(self.problems) - limit
        return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")

    def document(self) -> dict[str, Any]:
        doc = asdict(self)
        for key in ("started_at", "ended_at"):
            doc[key] = doc[key].isoformat() if doc[key] else None
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> CrawlRun:
        """The run back from its :meth:`document`."""
        run = cls(**doc)
        run.started_at = datetime.fromisoformat(doc["started_at"])
        run.ended_at = datetime.fromisoformat(doc["ended_at"]) if doc["ended_at"] else None
        return run


class CrawlNotStarted(Exception):
    """The crawl was not started: the source is being crawled already, or shutdown has begun."""


class _Running:
    """The crawl subprocesses of this process, so a shutdown can stop them all."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = threading.Event()


_running = _Running()


def stop_running_crawls(grace: timedelta) -> None:
    """Refuse new crawls and stop the running ones (SIGTERM, then SIGKILL after ``grace``)."""
    _running.stopping.set()
    with _running.lock:
        processes = list(_running.processes.values())
    for process in processes:
        _signal(process, signal.SIGTERM)
    for process in processes:
        _wait_or_kill(process, grace)


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def _wait_or_kill(process: subprocess.Popen[bytes], grace: timedelta) -> None:
    try:
        process.wait(timeout=grace.total_seconds())
    except subprocess.TimeoutExpired:
        _signal(process, signal.SIGKILL)
        process.wait()


@contextmanager
def source_lock(data_dir: Path, source: str) -> Iterator[None]:
    """Hold ``<data>/locks/<source>.lock``; :class:`CrawlNotStarted` if another run holds it."""
    folder = data_dir / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{source}.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise CrawlNotStarted(f"source {source} is being crawled by another run") from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def crawl_command(
    spider: str, source: str, stats_file: Path, overrides: dict[str, str]
) -> list[str]:
    command = [sys.executable, "-m", "scrapy", "crawl", spider, "-a", f"source={source}"]
    for name, value in {**overrides, "VEILLE_STATS_FILE": str(stats_file)}.items():
        command += ["-s", f"{name}={value}"]
    return command


def _log_tail(path: Path, limit: int = 2000) -> str:
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - limit))
        return handle.read().decode("utf-8", "replace")


def prune_logs(folder: Path) -> None:
    """Keep the newest ``LOGS_KEPT_PER_SOURCE`` logs of a folder (names sort by time)."""
    logs = sorted(folder.glob("*.log"))
    for old in logs[:-LOGS_KEPT_PER_SOURCE]:
        old.unlink(missing_ok=True)


def run_bounded(
    name: str, command: list[str], log_file: Path, settings: RunSettings, env: dict[str, str]
) -> tuple[int, bool]:
    """Run ``command`` in its own process group, output to ``log_file``, within the time limit.

    Returns the exit code and whether the time limit stopped it. Raises :class:`CrawlNotStarted`
    once :func:`stop_running_crawls` has been called.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("wb") as log:
        with _running.lock:
            if _running.stopping.is_set():
                raise CrawlNotStarted("the scheduler is shutting down")
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            _running.processes[name] = process
        logger.info("%s started (pid %d, log %s)", name, process.pid, log_file)
        try:
            process.wait(timeout=settings.time_limit.total_seconds())
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            logger.warning("%s passed its time limit %s; stopping it", name, settings.time_limit)
            _signal(process, signal.SIGTERM)
            _wait_or_kill(process, settings.stop_grace)
        finally:
            with _running.lock:
                _running.processes.pop(name, None)
    return process.returncode, timed_out


def run_crawl(
    config: Config,
    source: Source,
    env: Environment,
    settings: RunSettings,
    overrides: dict[str, str] | None = None,
    trigger: str = "schedule",
) -> CrawlRun:
    """Crawl ``source`` in a subprocess, bounded by the time limit; the run, not yet stored.

    Raises :class:`CrawlNotStarted` when the source is already being crawled or shutdown has
    begun. The spider is the one named after the source's type.
    """
    if source.time_limit_delta is not None:  # the source's own time_limit wins over the default
        settings = replace(settings, time_limit=source.time_limit_delta)
    started = datetime.now(UTC)
    run = CrawlRun(
        run_id=f"{source.name}-{started:%Y%m%dT%H%M%S%fZ}",
        source=source.name,
        spider=source.type,
        trigger=trigger,
        started_at=started,
    )
    stats_file = env.data_dir / "runs" / f"{run.run_id}.json"
    log_file = env.data_dir / "logs" / source.name / f"{run.run_id}.log"
    run.log_file = str(log_file)
    command = crawl_command(run.spider, source.name, stats_file, overrides or {})
    environment = {
        **os.environ,
        "VEILLE_CONFIG": str(config.directory),
        "SCRAPY_SETTINGS_MODULE": "crawler.settings",  # found wherever the package is installed
    }
    with source_lock(env.data_dir, source.name):
        run.exit_code, timed_out = run_bounded(
            f"crawl {source.name}", command, log_file, settings, environment
        )
    run.ended_at = datetime.now(UTC)
    run.duration_s = round((run.ended_at - started).total_seconds(), 3)
    if stats_file.exists():
        run.add_stats(json.loads(stats_file.read_text(encoding="utf-8")))
        stats_file.unlink()
    judge_outcome(run, timed_out, settings, log_file)
    prune_logs(log_file.parent)
    return run


def judge_outcome(run: CrawlRun, timed_out: bool, settings: RunSettings, log_file: Path) -> None:
    """Set the run's ``status``, ``reason`` and ``message`` from how its crawl ended."""
    if timed_out:
        run.status, run.reason = "timeout", "time limit"
        run.message = f"stopped at the time limit of {settings.time_limit}"
    elif _running.stopping.is_set():
        run.status, run.reason = "stopped", "scheduler shutdown"
        run.message = "stopped by the scheduler's shutdown"
    elif run.finish_reason == "memory":
        run.status, run.reason = "failed", "memory"
        run.message = (
            f"stopped at its memory ceiling (peak {run.peak_memory_mb or 0:.0f} MiB; "
            "VEILLE_MEMORY_LIMIT_MB): what it had extracted was indexed or spooled"
        )
    elif run.exit_code == 0 and run.finish_reason == "finished":
        if run.read_nothing:
            run.status, run.reason = "no_feed", run.problem_summary()
            run.message = "no feed of the source could be read: " + run.problem_summary(20)
        else:
            run.status = "success"
    else:
        run.status = "failed"
        run.reason = f"exit code {run.exit_code}" if run.exit_code else run.finish_reason
        run.message = _log_tail(log_file)


# --- Storage and queries -----------------------------------------------------------------


def recent_runs(client: Elasticsearch, index: str, source: str, size: int = 50) -> list[dict]:
    """The source's stored runs, newest first."""
    response = client.search(
        index=index,
        size=size,
        query={"term": {"source": source}},
        sort=[{"started_at": "desc"}],
        ignore_unavailable=True,
    )
    return [hit["_source"] for hit in response["hits"]["hits"]]


def store_run(client: Elasticsearch, index: str, run: CrawlRun) -> None:
    client.index(index=index, id=run.run_id, document=run.document(), refresh="wait_for")


def es_unavailable(exc: ApiError | TransportError) -> bool:
    """Elasticsearch could not be reached (any transport error) or refused for now (5xx, 429, a
    read-only block), rather than refusing the document itself."""
    if isinstance(exc, ApiError):
        status = exc.meta.status
        return status >= 500 or status == 429 or exc.error == "cluster_block_exception"
    return True


def pending_dir(data_dir: Path) -> Path:
    return data_dir / "runs" / "pending"


@dataclass(frozen=True)
class PendingRun:
    """A run record waiting for Elasticsearch; ``judged``: flags set and operator told already."""

    path: Path
    run: CrawlRun
    judged: bool


def keep_pending(data_dir: Path, run: CrawlRun, judged: bool) -> Path:
    """Keep the run in ``<data>/runs/pending/<run_id>.json``; on disk when this returns."""
    folder = pending_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run.run_id}.json"
    making = path.with_name(path.name + ".new")
    with making.open("w", encoding="utf-8") as handle:
        json.dump({"judged": judged, "run": run.document()}, handle, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(making, path)
    fsync_dir(folder)
    return path


def pending_runs(data_dir: Path) -> list[PendingRun]:
    """The kept run records, oldest first; a file that cannot be read is logged and left there."""
    found = []
    for path in pending_dir(data_dir).glob("*.json"):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            found.append(PendingRun(path, CrawlRun.from_document(record["run"]), record["judged"]))
        except (ValueError, KeyError, TypeError) as exc:
            logger.error("run record %s cannot be read (%s); it is left there", path, exc)
    return sorted(found, key=lambda waiting: (waiting.run.started_at, waiting.run.run_id))


@contextmanager
def pending_lock(data_dir: Path) -> Iterator[None]:
    """Wait for, then hold, the lock on the pending run records (across threads and processes)."""
    folder = pending_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder.parent / "pending.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def list_runs(
    client: Elasticsearch,
    index: str,
    source: str | None = None,
    failed_only: bool = False,
    limit: int = 20,
) -> list[dict]:
    """Stored runs, newest first; ``failed_only`` keeps ``failed``, ``timeout`` and ``no_feed``
    runs."""
    filters: list[dict[str, Any]] = []
    if source:
        filters.append({"term": {"source": source}})
    if failed_only:
        filters.append({"terms": {"status": list(NOT_SUCCEEDED)}})
    response = client.search(
        index=index,
        size=limit,
        query={"bool": {"filter": filters}},
        sort=[{"started_at": "desc"}],
        ignore_unavailable=True,
    )
    return [hit["_source"] for hit in response["hits"]["hits"]]
