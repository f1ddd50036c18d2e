"""Crawl health: flags for silent failures and hostile feeds, one email per incident.

In:  a finished :class:`~veille.ops.runs.CrawlRun` and the source's stored runs (newest first).
Out: the run's ``flags``, ``usual_gap_s`` and ``baseline_entries``, and an email to
     ``VEILLE_OPERATOR_EMAIL`` for each flag the operator has not yet been told about; the run
     is then stored.

Flags:

- ``quiet``: the newest entry the source ever listed is older than ``VEILLE_QUIET_GAPS`` (3) of
  its usual gaps between entries, older than the longest gap seen, and older than
  ``VEILLE_QUIET_MIN`` (12h). The usual gap is the 90th percentile of the gaps between the
  publication times its feeds listed in the runs at hand (this one and the last 50); a source
  needs :data:`MIN_GAPS` gaps before it can be called quiet. A ``304 Not Modified`` is a feed
  unchanged, not a feed emptied: during its usual gap nothing is flagged, and after several of
  them the source is quiet whatever its feeds answered. Judged on runs that read their feeds.
- ``failing``: the last ``VEILLE_FAILING_AFTER_RUNS`` (3) runs all failed, timed out, or read
  no feed (``no_feed``).
- ``malformed_feed``: at once, on a run where a feed (sitemap, search answer) was malformed,
  hostile (an entity or decompression bomb, past the parse limits) or no feed at all; the
  email names each and the reason.
- ``empty_extraction``: pages were fetched but none gave an article, where earlier runs
  extracted at least half of the pages they fetched.

An incident is a flag raised on consecutive runs. ``notified`` on each run carries the flags the
operator was emailed about while they stay raised, so one incident means one email; if sending
fails, the next run tries again. Every run the email lists says its status and, when it did not
succeed or some feed could not be used, each feed and why.

Elasticsearch down or refusing never loses a run: it is kept in ``<data>/runs/pending/`` (see
:func:`veille.ops.runs.keep_pending`), and the next :func:`record_run` stores the kept runs first,
oldest first. A run kept before its history could be read is judged then, against the runs
stored before it, so the chain of ``notified`` stays whole and no incident is emailed twice.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from email.message import EmailMessage
from itertools import pairwise
from statistics import median, quantiles
from typing import TYPE_CHECKING, Any

from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch

from veille.core.config import ConfigError
from veille.core.mailer import MailError, send_email
from veille.ops.runs import (
    es_unavailable,
    keep_pending,
    pending_lock,
    pending_runs,
    recent_runs,
    store_run,
)

if TYPE_CHECKING:
    from pathlib import Path

    from veille.ops.runs import CrawlRun, RunSettings

logger = logging.getLogger(__name__)

QUIET, FAILING, MALFORMED_FEED, EMPTY_EXTRACTION = (
    "quiet", "failing", "malformed_feed", "empty_extraction",
)  # fmt: skip
BASELINE_RUNS = 10
# Gaps between entries a source must have shown before it can be called quiet.
MIN_GAPS = 5
# Listing problems that are the publisher's content, not a network or server failure.
CONTENT_PROBLEMS = ("malformed", "not_a_feed")
FLAG_TITLES = {
    QUIET: "went quiet",
    FAILING: "crawls are failing",
    MALFORMED_FEED: "a feed is malformed or hostile",
    EMPTY_EXTRACTION: "extraction yields no text",
}


def healthy(run: dict[str, Any]) -> bool:
    """The crawl finished and read its feeds (or found them unchanged)."""
    return run.get("status") == "success"


def _times(runs: list[dict[str, Any]], until: datetime) -> list[datetime]:
    """Distinct publication times the runs listed, oldest first, none after ``until``."""
    found = {datetime.fromisoformat(t) for r in runs for t in r.get("entry_times") or []}
    return sorted(t for t in found if t <= until)


def usual_gap(times: list[datetime]) -> tuple[float, float] | None:
    """``(90th percentile, longest)`` of the gaps between ``times``, in seconds; ``None`` with
    fewer than :data:`MIN_GAPS` gaps."""
    gaps = [(b - a).total_seconds() for a, b in pairwise(times)]
    gaps = [gap for gap in gaps if gap > 0]
    if len(gaps) < MIN_GAPS:
        return None
    return quantiles(gaps, n=10, method="inclusive")[-1], max(gaps)


def quiet_since(run: CrawlRun, history: list[dict[str, Any]], settings: RunSettings) -> bool:
    """Whether ``run``'s source is quiet (see the module docstring); sets ``run.usual_gap_s``."""
    now = run.started_at
    times = _times([run.document(), *history], now + timedelta(hours=1))
    learned = usual_gap(times)
    if learned is None:
        run.usual_gap_s = None
        return False
    p90, longest = learned
    run.usual_gap_s = round(p90, 1)
    allowed = max(settings.quiet_min.total_seconds(), settings.quiet_gaps * p90, longest)
    return (now - times[-1]).total_seconds() > allowed


def content_problems(run: dict[str, Any]) -> list[dict[str, str]]:
    return [p for p in run.get("problems") or [] if p.get("kind") in CONTENT_PROBLEMS]


def assess(run: CrawlRun, history: list[dict[str, Any]], settings: RunSettings) -> None:
    """Set ``run.flags``, ``run.usual_gap_s`` and ``run.baseline_entries`` from this run and the
    ones before it."""
    runs = [run.document(), *history]
    previous_flags = set(history[0].get("flags", [])) if history else set()
    flags: list[str] = []

    # A run that read nothing says nothing new about the source's entries: the flag stays as it was.
    if quiet_since(run, history, settings) if healthy(runs[0]) else QUIET in previous_flags:
        flags.append(QUIET)
    with_entries = [r for r in runs if healthy(r) and r.get("entries", 0) > 0][:BASELINE_RUNS]
    if with_entries:
        run.baseline_entries = float(median(r["entries"] for r in with_entries))

    recent = runs[: settings.failing_after_runs]
    if len(recent) == settings.failing_after_runs and not any(healthy(r) for r in recent):
        flags.append(FAILING)

    if content_problems(runs[0]):
        flags.append(MALFORMED_FEED)

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


def _ago(seconds: float) -> str:
    """A duration as an operator reads it: seconds, minutes, hours or days."""
    for unit, size, below in (("seconds", 1, 120), ("minutes", 60, 7200), ("hours", 3600, 172800)):
        if seconds < below:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds / 86400:.1f} days"


def _explain(flag: str, run: CrawlRun, history: list[dict[str, Any]], settings: RunSettings) -> str:
    if flag == QUIET:
        times = _times([run.document(), *history], run.started_at + timedelta(hours=1))
        silent = (run.started_at - times[-1]).total_seconds() if times else 0
        usual = f"about every {_ago(run.usual_gap_s)}" if run.usual_gap_s else "regularly"
        return (
            f"its newest entry was published {_ago(silent)} before this run; it used to publish "
            f"{usual}. Check that the feed URLs in sources.yaml still list the outlet's articles "
            "(outlets move or retire feeds)."
        )
    if flag == FAILING:
        recent = [run.document(), *history][: settings.failing_after_runs]
        statuses = ", ".join(r["status"] for r in recent)
        return (
            f"the last {settings.failing_after_runs} runs did not succeed ({statuses}). "
            f"The last run's log: {run.log_file}"
        )
    if flag == MALFORMED_FEED:
        listed = "; ".join(
            f"{p['url']}: {p['kind'].replace('_', ' ')}: {p['detail']}"
            for p in content_problems(run.document())
        )
        return (
            f"{listed}. It was skipped whole and nothing in it was fetched; the other feeds of "
            "the source are read as usual. Tell the publisher, or fix the URL in sources.yaml."
        )
    return (
        f"{run.pages_fetched} pages were fetched but none gave an article, where earlier runs "
        "extracted most of theirs. The outlet may have changed its page layout; "
        f"dropped by reason: {run.dropped}"
    )


def _run_lines(item: dict[str, Any]) -> list[str]:
    """A run in the email: its figures, then why it did not succeed and each feed it could not
    use."""
    lines = [
        f"  {item['started_at'][:19]}  {item['status']:<8} entries {item.get('entries', 0):>4}"
        f"  extracted {item.get('extracted', 0):>4}  indexed {item.get('indexed', 0):>4}"
    ]
    if item["status"] != "success" and item.get("reason") and not item.get("problems"):
        lines.append(f"      reason: {item['reason']}")
    for problem in item.get("problems") or []:
        kind = problem["kind"].replace("_", " ")
        lines.append(f"      {problem['url']}: {kind}: {problem['detail'][:300]}")
    return lines


def incident_email(
    run: CrawlRun, new_flags: list[str], history: list[dict[str, Any]], settings: RunSettings
) -> EmailMessage:
    """The operator email about ``new_flags`` of ``run.source``."""
    message = EmailMessage()
    message["Subject"] = f"[veille] source {run.source}: " + ", ".join(
        FLAG_TITLES[flag] for flag in new_flags
    )
    lines = [f"Source {run.source} needs a look.", ""]
    for flag in new_flags:
        lines.append(f"- {FLAG_TITLES[flag]}: {_explain(flag, run, history, settings)}")
    lines += ["", "Recent runs (UTC):"]
    for item in [run.document(), *history][:BASELINE_RUNS]:
        lines += _run_lines(item)
    lines += [
        "",
        "This is the only email about this incident; another comes only if the source recovers",
        f"and the problem returns. `veille runs --source {run.source}` lists every run.",
    ]
    message.set_content("\n".join(lines))
    return message


def notify_operator(run: CrawlRun, history: list[dict[str, Any]], settings: RunSettings) -> None:
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
    message = incident_email(run, new_flags, history, settings)
    message["To"] = recipient
    try:
        send_email(message)
    except (MailError, ConfigError) as exc:
        logger.warning(
            "SMTP unavailable: the operator email about %s was not sent; the next run of the "
            "source sends it (%s)", run.source, exc,
        )  # fmt: skip
        return
    run.notified += new_flags
    logger.warning("source %s flagged %s; operator emailed", run.source, ", ".join(new_flags))


def judge(client: Elasticsearch, index: str, run: CrawlRun, settings: RunSettings) -> None:
    """Set the run's flags from the source's stored runs and tell the operator if needed."""
    history = recent_runs(client, index, run.source)
    assess(run, history, settings)
    notify_operator(run, history, settings)


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
