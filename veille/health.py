"""Crawl health: each source's yield baseline, flags for silent failures, one email per incident.

In:  a finished :class:`~veille.runs.CrawlRun` and the source's stored runs (newest first).
Out: the run's ``flags`` and ``baseline_entries``, and an email to ``VEILLE_OPERATOR_EMAIL`` for
     each flag the operator has not yet been told about; the run is then stored.

Flags, with N = ``VEILLE_QUIET_AFTER_RUNS``:

- ``quiet``: the last N healthy runs found no feed entries, where runs before them did (the
  median of the last 10 runs that found entries is the source's baseline).
- ``failing``: the last N runs all failed, timed out, or could not read any feed.
- ``empty_extraction``: pages were fetched but none gave an article, where earlier runs
  extracted at least half of the pages they fetched.

An incident is a flag raised on consecutive runs. ``notified`` on each run carries the flags the
operator was emailed about while they stay raised, so one incident means one email; if sending
fails, the next run tries again.

Elasticsearch down or refusing never loses a run: it is kept in ``<data>/runs/pending/`` (see
:func:`veille.runs.keep_pending`), and the next :func:`record_run` stores the kept runs first,
oldest first. A run kept before its history could be read is judged then, against the runs
stored before it, so the chain of ``notified`` stays whole and no incident is emailed twice.
"""

from __future__ import annotations

import logging
import os
from email.message import EmailMessage
from statistics import median
from typing import TYPE_CHECKING, Any

from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch

from veille.config import ConfigError
from veille.mailer import MailError, send_email
from veille.runs import (
    es_unavailable,
    keep_pending,
    pending_lock,
    pending_runs,
    recent_runs,
    store_run,
)

if TYPE_CHECKING:
    from pathlib import Path

    from veille.runs import CrawlRun, RunSettings

logger = logging.getLogger(__name__)

QUIET, FAILING, EMPTY_EXTRACTION = "quiet", "failing", "empty_extraction"
BASELINE_RUNS = 10
FLAG_TITLES = {
    QUIET: "went quiet",
    FAILING: "crawls are failing",
    EMPTY_EXTRACTION: "extraction yields no text",
}


def healthy(run: dict[str, Any]) -> bool:
    """The crawl finished and could read at least one of its feeds (or tried none)."""
    unreadable = run.get("feeds_failed", 0) > 0 and not run.get("feeds_read", 0)
    return run.get("status") == "success" and not unreadable


def assess(run: CrawlRun, history: list[dict[str, Any]], quiet_after: int) -> None:
    """Set ``run.flags`` and ``run.baseline_entries`` from this run and the ones before it."""
    runs = [run.document(), *history]
    previous_flags = set(history[0].get("flags", [])) if history else set()
    flags: list[str] = []

    good = [r for r in runs if healthy(r)]
    streak = next((i for i, r in enumerate(good) if r.get("entries", 0) > 0), len(good))
    before = [r for r in good[streak:] if r["entries"] > 0][:BASELINE_RUNS]
    run.baseline_entries = float(median(r["entries"] for r in before)) if before else None
    if streak >= quiet_after and (run.baseline_entries or QUIET in previous_flags):
        flags.append(QUIET)

    recent = runs[:quiet_after]
    if len(recent) == quiet_after and not any(healthy(r) for r in recent):
        flags.append(FAILING)

    if run.pages_fetched == 0:
        still_empty = EMPTY_EXTRACTION in previous_flags
    elif run.extracted == 0:
        earlier = [r for r in history if r.get("pages_fetched")][:BASELINE_RUNS]
        pages = sum(r["pages_fetched"] for r in earlier)
        extracted = sum(r.get("extracted", 0) for r in earlier)
        still_empty = EMPTY_EXTRACTION in previous_flags or (pages > 0 and extracted / pages >= 0.5)
    else:
        still_empty = False
    if still_empty:
        flags.append(EMPTY_EXTRACTION)
    run.flags = flags


def _explain(flag: str, run: CrawlRun, history: list[dict[str, Any]], quiet_after: int) -> str:
    if flag == QUIET:
        usual = f"{run.baseline_entries:g}" if run.baseline_entries else "some"
        return (
            f"no feed entries in the last {quiet_after} runs; it used to have {usual} per run. "
            "Check that the feed URLs in sources.yaml still list the outlet's articles "
            "(outlets move or retire feeds)."
        )
    if flag == FAILING:
        statuses = ", ".join(r["status"] for r in [run.document(), *history][:quiet_after])
        return (
            f"the last {quiet_after} runs did not succeed ({statuses}). "
            f"The last run's log: {run.log_file}"
        )
    return (
        f"{run.pages_fetched} pages were fetched but none gave an article, where earlier runs "
        "extracted most of theirs. The outlet may have changed its page layout; "
        f"dropped by reason: {run.dropped}"
    )


def incident_email(
    run: CrawlRun, new_flags: list[str], history: list[dict[str, Any]], quiet_after: int
) -> EmailMessage:
    """The operator email about ``new_flags`` of ``run.source``."""
    message = EmailMessage()
    message["Subject"] = f"[veille] source {run.source}: " + ", ".join(
        FLAG_TITLES[flag] for flag in new_flags
    )
    lines = [f"Source {run.source} needs a look.", ""]
    for flag in new_flags:
        lines.append(f"- {FLAG_TITLES[flag]}: {_explain(flag, run, history, quiet_after)}")
    lines += ["", "Recent runs (UTC):"]
    for item in [run.document(), *history][:BASELINE_RUNS]:
        lines.append(
            f"  {item['started_at'][:19]}  {item['status']:<8} entries {item.get('entries', 0):>4}"
            f"  extracted {item.get('extracted', 0):>4}  indexed {item.get('indexed', 0):>4}"
        )
    lines += [
        "",
        "This is the only email about this incident; another comes only if the source recovers",
        f"and the problem returns. `veille runs --source {run.source}` lists every run.",
    ]
    message.set_content("\n".join(lines))
    return message


def notify_operator(run: CrawlRun, history: list[dict[str, Any]], quiet_after: int) -> None:
    """Email the operator about flags raised since the previous run; set ``run.notified``."""
    told = set(history[0].get("notified", [])) if history else set()
    run.notified = [flag for flag in run.flags if flag in told]
    new_flags = [flag for flag in run.flags if flag not in told]
    if not new_flags:
        return
    recipient = os.environ.get("VEILLE_OPERATOR_EMAIL")
    if not recipient:
        logger.warning(
            "source %s: %s; set VEILLE_OPERATOR_EMAIL to be told by email",
            run.source, ", ".join(FLAG_TITLES[f] for f in new_flags),
        )  # fmt: skip
        return
    message = incident_email(run, new_flags, history, quiet_after)
    message["To"] = recipient
    try:
        send_email(message)
    except (MailError, ConfigError) as exc:
        logger.error("operator email about %s not sent (retried next run): %s", run.source, exc)
        return
    run.notified += new_flags
    logger.warning("source %s flagged %s; operator emailed", run.source, ", ".join(new_flags))


def judge(client: Elasticsearch, index: str, run: CrawlRun, settings: RunSettings) -> None:
    """Set the run's flags from the source's stored runs and tell the operator if needed."""
    history = recent_runs(client, index, run.source)
    assess(run, history, settings.quiet_after_runs)
    notify_operator(run, history, settings.quiet_after_runs)


def store_pending_runs(
    client: Elasticsearch, index: str, data_dir: Path, settings: RunSettings
) -> None:
    """Store the runs kept while Elasticsearch was down, oldest first, each file deleted once
    stored. A run not judged yet is judged and kept again as judged before it is stored, so its
    email goes out once; storing a run twice (a crash before the delete) rewrites the same
    ``_id``. Raises when Elasticsearch is still unavailable, leaving the rest in the folder."""
    if not pending_runs(data_dir):
        return
    with pending_lock(data_dir):
        for waiting in pending_runs(data_dir):
            try:
                if not waiting.judged:
                    judge(client, index, waiting.run, settings)
                    keep_pending(data_dir, waiting.run, judged=True)
                store_run(client, index, waiting.run)
            except (ApiError, TransportError) as exc:
                if es_unavailable(exc):
                    raise
                logger.error("Elasticsearch refused run %s (%s); it stays in %s",
                             waiting.run.run_id, exc, waiting.path)  # fmt: skip
                continue
            waiting.path.unlink()
            logger.info("run %s, kept while Elasticsearch was down, is stored", waiting.run.run_id)


def record_run(
    client: Elasticsearch, index: str, run: CrawlRun, settings: RunSettings, data_dir: Path
) -> None:
    """Store the runs kept earlier, then judge this run, tell the operator if needed, store it.

    Never raises for Elasticsearch down or refusing: the run is then kept in
    ``<data>/runs/pending/`` (not judged if its history could not be read) for the next call.
    """
    judged = False
    try:
        store_pending_runs(client, index, data_dir, settings)
        judge(client, index, run, settings)
        judged = True
        store_run(client, index, run)
    except (ApiError, TransportError) as exc:
        if not es_unavailable(exc):
            raise
        path = keep_pending(data_dir, run, judged)
        logger.warning(
            "Elasticsearch unavailable (%s): run %s is kept in %s and will be stored on the next "
            "run", exc.__class__.__name__, run.run_id, path,
        )  # fmt: skip
