"""The scheduler: every enabled source crawled on its own schedule, unattended, across restarts.

In:  the validated config (each source's ``schedule``), the environment, optional Scrapy
     setting overrides for every crawl, and :class:`ScheduleSettings` from ``VEILLE_*``.
Out: APScheduler 3 jobs in a SQLite job store, ``<data>/scheduler.sqlite`` (mode 0600): job
     ``crawl:<source>`` per enabled source and ``task:<name>`` per maintenance command of
     :data:`MAINTENANCE_TASKS` (alert emails, spool replay, translation backfill, pruning old
     cluster claims and rejected articles); each crawl runs through
     :func:`veille.ops.runs.run_crawl` and is recorded by :func:`veille.ops.health.record_run`; a
     task's output goes to ``<data>/logs/task-<name>/``.

At start the store is reconciled with the config: a new source gets a job whose first run comes
within its jitter, a changed schedule is rescheduled, a removed or disabled source loses its job,
and an unchanged job keeps its next run time. Jobs never overlap (``max_instances=1``) and runs
missed while the scheduler was down collapse into one (``coalesce=True``) if they are within the
misfire grace. SIGTERM or SIGINT stops new runs, stops running crawls (recorded as ``stopped``)
and tasks, and exits.
"""

from __future__ import annotations

import logging
import os
import random
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from alerts.rules import RULES_FILE, missing_rules_note
from veille.core.config import Config, ConfigError, Environment, Schedule, parse_duration
from veille.core.es import IndexNames, make_client
from veille.core.outages import quiet_client_logs
from veille.ops.health import record_run
from veille.ops.runs import (
    CrawlNotStarted,
    RunSettings,
    env_duration,
    env_int,
    prune_logs,
    run_bounded,
    run_crawl,
    stop_running_crawls,
)

logger = logging.getLogger("veille.scheduler")

JOBSTORE_FILE = "scheduler.sqlite"
# Exit statuses of a maintenance task that mean "try again later" (veille/cli/support.py).
OUTAGE_EXITS = {1: "its work stays pending", 3: "Elasticsearch or Redis unreachable"}
CRAWL_PREFIX, TASK_PREFIX = "crawl:", "task:"


@dataclass(frozen=True)
class MaintenanceTask:
    """A ``veille`` command run on a schedule, in a subprocess bounded by the crawl time limit."""

    name: str
    command: tuple[str, ...]
    schedule: Schedule


# One line per maintenance command; each runs as `veille <command>` and can be turned off with
# VEILLE_SCHEDULER_TASKS. `alerts send` sends digests when due, so every few minutes covers them.
MAINTENANCE_TASKS: tuple[MaintenanceTask, ...] = (
    MaintenanceTask("alerts-send", ("alerts", "send"), Schedule(every="2m", jitter="0s")),
    MaintenanceTask("spool-replay", ("spool", "replay"), Schedule(every="10m", jitter="1m")),
    MaintenanceTask("translate-pending", ("translate", "--pending"), Schedule(every="30m")),
    MaintenanceTask("clusters-prune", ("clusters", "prune"), Schedule(every="1d", jitter="1h")),
    # Articles indexed while the stations register could not be updated (Elasticsearch down).
    MaintenanceTask("stations-update", ("stations", "update"), Schedule(every="10m", jitter="1m")),
    MaintenanceTask("rejected-prune", ("rejected", "prune"), Schedule(every="1d", jitter="1h")),
)


def _tasks_from_env() -> tuple[str, ...]:
    known = [task.name for task in MAINTENANCE_TASKS]
    raw = os.environ.get("VEILLE_SCHEDULER_TASKS")
    if raw is None or raw.strip() == "all":
        return tuple(known)
    chosen = tuple(name.strip() for name in raw.split(",") if name.strip() not in ("", "none"))
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ConfigError(
            "(environment)", "VEILLE_SCHEDULER_TASKS", f"unknown task {unknown[0]!r}",
            f"use all, none or a comma-separated list of: {', '.join(known)}",
        )  # fmt: skip
    return chosen


@dataclass(frozen=True)
class ScheduleSettings:
    """``VEILLE_MISFIRE_GRACE``, ``VEILLE_SCHEDULER_WORKERS``, ``VEILLE_TIMEZONE`` and
    ``VEILLE_SCHEDULER_TASKS`` (``all``, the default, ``none``, or task names with commas)."""

    misfire_grace: timedelta = timedelta(hours=1)
    workers: int = 4
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    tasks: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> ScheduleSettings:
        name = os.environ.get("VEILLE_TIMEZONE") or "UTC"
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                "(environment)", "VEILLE_TIMEZONE", f"unknown time zone {name!r}",
                "use an IANA name such as UTC or Europe/Paris",
            ) from exc  # fmt: skip
        return cls(
            misfire_grace=env_duration("VEILLE_MISFIRE_GRACE", "1h"),
            workers=env_int("VEILLE_SCHEDULER_WORKERS", 4),
            timezone=zone,
            tasks=_tasks_from_env(),
        )


# --- Triggers ----------------------------------------------------------------------------

_CRONTAB_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _crontab_weekdays(weekdays: str) -> str:
    """Crontab weekday numbers (0 and 7 = Sunday) as names: APScheduler 3 counts from Monday."""

    def name(number: str) -> str:
        if int(number) > 7:
            raise ValueError(f"weekday {number} is out of range 0-7")
        return _CRONTAB_DAYS[int(number)]

    parts = []
    for part in weekdays.split(","):
        sunday_first = re.fullmatch(r"0-(\d+)", part)
        if sunday_first:  # Sunday is the last day of APScheduler's week: split the range
            last = sunday_first.group(1)
            parts.append("sun" if last == "0" else f"sun,mon-{name(last)}")
        else:
            parts.append(re.sub(r"\d+", lambda m: name(m.group()), part))
    return ",".join(parts)


def describe(schedule: Schedule, timezone: ZoneInfo) -> str:
    when = f"every {schedule.every}" if schedule.every else f"cron '{schedule.cron}' {timezone}"
    return f"{when}, jitter {schedule.jitter}"


def make_trigger(schedule: Schedule, timezone: ZoneInfo) -> BaseTrigger:
    """The APScheduler trigger for a ``schedule`` (ValueError for an impossible cron field)."""
    jitter = int(parse_duration(schedule.jitter).total_seconds()) or None
    if schedule.every:
        interval = parse_duration(schedule.every)
        return IntervalTrigger(seconds=interval.total_seconds(), jitter=jitter, timezone=timezone)
    minute, hour, day, month, weekday = (schedule.cron or "").split()
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=_crontab_weekdays(weekday),
        timezone=timezone, jitter=jitter,
    )  # fmt: skip


# --- Jobs (module-level functions: the job store keeps references to them) -----------------


@dataclass
class _Runtime:
    config: Config
    env: Environment
    run_settings: RunSettings
    overrides: dict[str, str]
    # Set by SIGTERM or SIGINT: a task that ends now was stopped by the shutdown, not failing.
    stopping: threading.Event = field(default_factory=threading.Event)


_runtime: _Runtime | None = None


def crawl_job(source_name: str) -> None:
    """Scheduled crawl of one source: run it, judge it, store it (distributed: queue it)."""
    assert _runtime is not None, "crawl_job runs inside serve()"
    source = _runtime.config.source(source_name)
    from veille.core.distributed import push_source_job, redis_url

    if (url := redis_url()) is not None:  # distributed mode: the workers crawl it
        push_source_job(source, _runtime.env, url)
        return
    try:
        run = run_crawl(
            _runtime.config, source, _runtime.env, _runtime.run_settings, _runtime.overrides
        )
    except CrawlNotStarted as exc:
        logger.warning("crawl %s not started: %s", source_name, exc)
        return
    client = make_client(_runtime.env)
    try:
        record_run(client, IndexNames(_runtime.env.index_prefix).crawls, run,
                   _runtime.run_settings, _runtime.env.data_dir)  # fmt: skip
    finally:
        client.close()
    logger.info(
        "crawl %s: %s in %.1fs (exit %s): %d entries, %d extracted, %d indexed%s%s",
        source_name, run.status, run.duration_s, run.exit_code, run.entries, run.extracted,
        run.indexed, f"; flags: {', '.join(run.flags)}" if run.flags else "",
        f"; reason: {run.reason}" if run.reason else "",
    )  # fmt: skip


def task_job(name: str, command: list[str]) -> None:
    """Scheduled maintenance: ``veille <command>`` in a subprocess, bounded by the time limit."""
    assert _runtime is not None, "task_job runs inside serve()"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    log_file = _runtime.env.data_dir / "logs" / f"task-{name}" / f"{stamp}.log"
    try:
        exit_code, timed_out = run_bounded(
            f"task {name}", [sys.executable, "-m", "veille.cli", *command], log_file,
            _runtime.run_settings, dict(os.environ),
        )  # fmt: skip
    except CrawlNotStarted as exc:
        logger.warning("task %s not started: %s", name, exc)
        return
    if _runtime.stopping.is_set() and exit_code and not timed_out:
        logger.info("task %s stopped by the shutdown", name)
    elif exit_code in OUTAGE_EXITS and not timed_out:
        # An outage (exit 3) or work left for the next pass (exit 1: an email stays pending):
        # the task's log says what is down and what was kept; it runs again on its schedule.
        logger.warning("task %s did not complete (exit %s: %s); see %s", name, exit_code,
                       OUTAGE_EXITS[exit_code], log_file)  # fmt: skip
    elif timed_out or exit_code:
        logger.error("task %s %s (exit %s); see %s", name,
                     "timed out" if timed_out else "failed", exit_code, log_file)  # fmt: skip
    else:
        logger.info("task %s done", name)
    prune_logs(log_file.parent)


# --- The job store and reconciliation ------------------------------------------------------


def jobstore_path(env: Environment) -> Path:
    return env.data_dir / JOBSTORE_FILE


def make_scheduler(env: Environment, settings: ScheduleSettings) -> BackgroundScheduler:
    """A scheduler over the SQLite job store (created with mode 0600 if missing)."""
    path = jobstore_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{path}")},
        executors={"default": ThreadPoolExecutor(settings.workers)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": int(settings.misfire_grace.total_seconds()),
        },
        timezone=UTC,
    )


@dataclass(frozen=True)
class _Wanted:
    id: str
    name: str
    func: str
    args: tuple[Any, ...]
    trigger: BaseTrigger
    jitter: timedelta


def _wanted_jobs(config: Config, settings: ScheduleSettings) -> list[_Wanted]:
    timezone = settings.timezone
    wanted = []
    for index, source in enumerate(config.sources):
        if not source.enabled:
            continue
        try:
            trigger = make_trigger(source.schedule, timezone)
        except ValueError as exc:
            raise ConfigError(
                config.directory / "sources.yaml", f"sources.{index}.schedule", str(exc),
                "cron fields: minute 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-7",
            ) from exc  # fmt: skip
        wanted.append(
            _Wanted(
                CRAWL_PREFIX + source.name,
                f"crawl {source.name}: {describe(source.schedule, timezone)}",
                "veille.ops.scheduling:crawl_job",
                (source.name,),
                trigger,
                parse_duration(source.schedule.jitter),
            )
        )
    for task in (t for t in MAINTENANCE_TASKS if t.name in settings.tasks):
        wanted.append(
            _Wanted(
                TASK_PREFIX + task.name,
                f"veille {' '.join(task.command)}: {describe(task.schedule, timezone)}",
                "veille.ops.scheduling:task_job",
                (task.name, list(task.command)),
                make_trigger(task.schedule, timezone),
                parse_duration(task.schedule.jitter),
            )
        )
    return wanted


def reconcile(
    scheduler: BackgroundScheduler, config: Config, settings: ScheduleSettings
) -> dict[str, list[str]]:
    """Make the stored jobs match the config; returns job ids added, changed, removed, kept."""
    changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": [], "kept": []}
    wanted = {job.id: job for job in _wanted_jobs(config, settings)}
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            job.remove()
            changes["removed"].append(job.id)
    existing = {job.id: job for job in scheduler.get_jobs()}
    for job_id, spec in wanted.items():
        current = existing.get(job_id)
        if current is None:
            first_run = datetime.now(UTC) + random.uniform(0, 1) * spec.jitter
            scheduler.add_job(
                spec.func, spec.trigger, args=spec.args, id=job_id, name=spec.name,
                next_run_time=first_run,
            )  # fmt: skip
            changes["added"].append(job_id)
        elif current.name != spec.name:
            scheduler.modify_job(job_id, name=spec.name, args=spec.args)
            scheduler.reschedule_job(job_id, trigger=spec.trigger)
            changes["changed"].append(job_id)
        else:
            changes["kept"].append(job_id)
    return changes


@dataclass(frozen=True)
class JobInfo:
    id: str
    name: str
    next_run_time: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "next_run_time": self.next_run_time}


def list_jobs(env: Environment) -> list[JobInfo] | None:
    """The stored jobs with their next run time (UTC), or None if the scheduler never ran."""
    if not jobstore_path(env).exists():
        return None
    scheduler = make_scheduler(env, ScheduleSettings())
    scheduler.start(paused=True)
    try:
        jobs = scheduler.get_jobs()
    finally:
        scheduler.shutdown(wait=False)
    return [
        JobInfo(
            job.id,
            job.name,
            job.next_run_time.astimezone(UTC).isoformat() if job.next_run_time else None,
        )
        for job in jobs
    ]


# --- Running in the foreground -------------------------------------------------------------


def utc_logging() -> None:
    """Log lines with a UTC timestamp, level and logger on stderr (long-running commands)."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                  "%Y-%m-%dT%H:%M:%SZ")  # fmt: skip
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    quiet_client_logs()


def serve(config: Config, env: Environment, overrides: dict[str, str]) -> None:
    """Run the scheduler until SIGTERM or SIGINT; running crawls are stopped and recorded."""
    global _runtime
    settings = ScheduleSettings.from_env()
    run_settings = RunSettings.from_env()
    utc_logging()
    _runtime = _Runtime(config, env, run_settings, overrides)
    scheduler = make_scheduler(env, settings)
    stop = _runtime.stopping

    def request_stop(signum: int, _frame: Any) -> None:
        logger.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    scheduler.start(paused=True)
    try:
        changes = reconcile(scheduler, config, settings)
    except Exception:
        scheduler.shutdown(wait=False)
        raise
    for action, ids in changes.items():
        if ids:
            logger.info("jobs %s: %s", action, ", ".join(sorted(ids)))
    scheduler.resume()
    logger.info(
        "scheduler started: %d jobs, store %s, time limit %s per crawl",
        len(scheduler.get_jobs()), jobstore_path(env), run_settings.time_limit,
    )  # fmt: skip
    rules_file = config.directory / RULES_FILE
    if "alerts-send" in settings.tasks and not rules_file.exists():
        # Said once, here: the task itself does nothing without the file, every two minutes.
        logger.warning("%s", missing_rules_note(rules_file))
    while not stop.wait(0.5):
        pass
    scheduler.pause()
    stop_running_crawls(run_settings.stop_grace)
    scheduler.shutdown(wait=True)
    logger.info("scheduler stopped")
