"""Crawl health and schedules without a crawl: flags from run history, one email per incident
(real SMTP server), cron weekdays as an operator writes them, every run field mapped."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.support.smtp_server import SmtpServer
from veille.core.config import Schedule
from veille.core.es import load_template
from veille.ops.health import assess, notify_operator
from veille.ops.runs import CrawlRun, RunSettings
from veille.ops.scheduling import make_trigger

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
SETTINGS = RunSettings(failing_after_runs=3, quiet_gaps=3, quiet_min=timedelta(hours=12))
REFUSED = {"url": "http://127.0.0.1:9/feed.xml", "source": "src", "kind": "failed",
           "detail": "connection refused"}  # fmt: skip
BOMB = {"url": "http://127.0.0.1:9/bomb.xml", "source": "src", "kind": "malformed",
        "detail": "its internal entities would expand to 2,000,000,000 characters"}  # fmt: skip


def _run(
    n: float, status: str = "success", listed: list[datetime] | None = None, **counts
) -> CrawlRun:
    """Run ``n`` hours after START; ``listed``: publication times its feed listed (None: a 304)."""
    run = CrawlRun(
        run_id=f"src-{n}", source="src", spider="feeds", trigger="schedule",
        started_at=START + timedelta(hours=n), status=status,
        entries=len(listed or []), feeds_read=int(listed is not None and status == "success"),
        not_modified=int(listed is None and status == "success"),
        entry_times=[t.isoformat() for t in sorted(listed or [])],
    )  # fmt: skip
    for key, value in counts.items():
        setattr(run, key, value)
    return run


def _every(hours: float, count: int, last: float = 0) -> list[datetime]:
    """``count`` publication times ``hours`` apart, the newest ``last`` hours after START."""
    return [START + timedelta(hours=last - hours * k) for k in range(count)]


def _judged(runs: list[CrawlRun], settings: RunSettings = SETTINGS) -> list[CrawlRun]:
    """Assess each run in order against the ones before it, as the scheduler does."""
    history: list[dict] = []
    for run in runs:
        assess(run, history, settings)
        history.insert(0, run.document())
    return runs


def test_unchanged_feed_within_its_usual_gaps_is_not_quiet_and_silent_for_several_is():
    # publishes every 6 hours; then the feed answers 304 Not Modified hour after hour
    runs = _judged([_run(0, listed=_every(6, 20)), *(_run(n) for n in range(1, 22))])
    assert runs[0].usual_gap_s == 6 * 3600
    quiet = [n for n, run in enumerate(runs) if "quiet" in run.flags]
    # three usual gaps (18 hours) after the newest entry, not before
    assert quiet == list(range(19, 22))


def test_outlet_that_sleeps_at_night_is_not_quiet_in_the_morning():
    days = [START.replace(hour=0) + timedelta(days=d, hours=h) for d in range(3)
            for h in range(7, 23)]  # fmt: skip
    last_evening = max(days)
    run = _run(0, listed=days)
    run.started_at = last_evening + timedelta(hours=8, minutes=30)  # 06:30 next morning
    assert _judged([run])[0].flags == []
    assert run.usual_gap_s == 3600


def test_source_without_enough_dated_entries_is_never_called_quiet():
    runs = _judged([_run(0, listed=_every(6, 3)), *(_run(n, listed=[]) for n in range(1, 60, 8))])
    assert all(r.flags == [] for r in runs)
    assert runs[0].usual_gap_s is None


def test_quiet_source_that_publishes_again_is_cleared_and_failed_runs_keep_the_flag():
    old = _every(2, 20)
    runs = _judged([
        _run(0, listed=old), _run(30, listed=old), _run(31, "failed"), _run(32, "no_feed"),
        _run(33, listed=[*old, START + timedelta(hours=33)]),
    ])  # fmt: skip
    assert [r.flags for r in runs] == [[], ["quiet"], ["quiet"], ["quiet"], []]


def test_runs_failing_in_a_row_flag_failing_and_one_success_clears_it():
    runs = _judged([_run(0), _run(1, "failed"), _run(2, "timeout"), _run(3, "failed"), _run(4)])
    assert [r.flags for r in runs] == [[], [], [], ["failing"], []]


def test_runs_that_read_no_feed_flag_failing():
    unreadable = [_run(n, "no_feed", problems=[REFUSED]) for n in range(3)]
    assert _judged(unreadable)[-1].flags == ["failing"]


def test_a_malformed_or_hostile_feed_is_flagged_at_once_and_cleared_when_it_reads_again():
    runs = _judged([_run(0, listed=[]), _run(1, "no_feed", problems=[BOMB]), _run(2, listed=[])])
    assert [r.flags for r in runs] == [[], ["malformed_feed"], []]
    # a refused connection is an outage, not the feed's content: failing comes after three runs
    assert _judged([_run(0, "no_feed", problems=[REFUSED])])[0].flags == []


def test_pages_without_any_article_after_good_extraction_flag_empty_extraction():
    runs = _judged(
        [
            _run(0, pages_fetched=6, extracted=5),
            _run(1, pages_fetched=4, extracted=0),
            _run(2, pages_fetched=0, extracted=0),
            _run(3, pages_fetched=3, extracted=2),
        ]
    )
    assert [r.flags for r in runs] == [[], ["empty_extraction"], ["empty_extraction"], []]


def test_source_whose_pages_never_were_articles_is_not_flagged_empty_extraction():
    runs = _judged([_run(0, pages_fetched=3, extracted=0), _run(1, pages_fetched=2, extracted=0)])
    assert all(r.flags == [] for r in runs)


@pytest.fixture
def mailbox(monkeypatch):
    with SmtpServer() as smtp:
        for name, value in smtp.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("VEILLE_OPERATOR_EMAIL", "ops@example.org")
        yield smtp


def _notified(runs: list[CrawlRun], settings: RunSettings = SETTINGS) -> list[CrawlRun]:
    history: list[dict] = []
    for run in runs:
        assess(run, history, settings)
        notify_operator(run, history, settings)
        history.insert(0, run.document())
    return runs


def test_operator_gets_one_email_per_incident_and_another_when_it_returns(mailbox):
    old = _every(6, 20)
    fresh = [*old, START + timedelta(hours=30)]
    _notified([
        _run(0, listed=old), _run(20), _run(21), _run(22, listed=old),  # quiet from hour 19
        # publishes again after 30 hours; its longest gap is now 30 hours: quiet again past it
        _run(30, listed=fresh), _run(50), _run(61),
    ])  # fmt: skip
    messages = mailbox.messages
    assert [m["Subject"] for m in messages] == ["[veille] source src: went quiet"] * 2
    body = messages[0].get_content()
    assert "its newest entry was published 20 hours before this run" in body
    assert "it used to publish about every 6 hours" in body
    assert "veille runs --source src" in body


def test_email_about_runs_that_read_no_feed_names_each_feed_and_why(mailbox):
    _notified(
        [_run(n, "no_feed", problems=[REFUSED], reason="feed.xml: refused") for n in range(3)]
    )
    [message] = mailbox.messages
    assert message["Subject"] == "[veille] source src: crawls are failing"
    body = message.get_content()
    assert "the last 3 runs did not succeed (no_feed, no_feed, no_feed)" in body
    assert body.count("http://127.0.0.1:9/feed.xml: failed: connection refused") == 3


def test_email_about_a_hostile_feed_comes_with_the_first_run_and_says_why(mailbox):
    _notified([_run(0, listed=[], problems=[BOMB])])
    [message] = mailbox.messages
    assert message["Subject"] == "[veille] source src: a feed is malformed or hostile"
    body = message.get_content()
    assert "http://127.0.0.1:9/bomb.xml: malformed: its internal entities would expand" in body


def test_flag_is_emailed_on_a_later_run_when_smtp_was_down(mailbox, monkeypatch):
    down = SmtpServer()
    monkeypatch.setenv("VEILLE_SMTP_PORT", str(down.port))
    settings = RunSettings(failing_after_runs=2)
    history: list[dict] = []
    for n, status in enumerate(["failed", "failed", "failed"]):
        run = _run(n, status)
        assess(run, history, settings)
        notify_operator(run, history, settings)
        history.insert(0, run.document())
        if n == 1:
            assert run.flags == ["failing"] and run.notified == []
            monkeypatch.setenv("VEILLE_SMTP_PORT", str(mailbox.port))
    assert run.notified == ["failing"]
    assert [m["Subject"] for m in mailbox.messages] == ["[veille] source src: crawls are failing"]


def test_cron_weekday_numbers_count_from_sunday_as_in_crontab():
    paris = ZoneInfo("Europe/Paris")
    trigger = make_trigger(Schedule(cron="30 6 * * 1", jitter="0s"), paris)
    saturday = datetime(2026, 3, 7, 12, 0, tzinfo=paris)
    fire = trigger.get_next_fire_time(None, saturday)
    assert (fire.strftime("%A %H:%M"), fire.date().day) == ("Monday 06:30", 9)
    sunday = make_trigger(Schedule(cron="0 8 * * 0", jitter="0s"), paris)
    assert sunday.get_next_fire_time(None, saturday).strftime("%A") == "Sunday"
    early_week = make_trigger(Schedule(cron="0 8 * * 0-2", jitter="0s"), paris)
    days, fire = [], saturday
    for _ in range(4):
        fire = early_week.get_next_fire_time(None, fire + timedelta(minutes=1))
        days.append(fire.strftime("%a"))
    assert days == ["Sun", "Mon", "Tue", "Sun"]


def test_interval_schedule_in_seconds_with_jitter_stays_within_jitter():
    trigger = make_trigger(Schedule(every="5s", jitter="2s"), ZoneInfo("UTC"))
    fires = [trigger.get_next_fire_time(START, START) for _ in range(50)]
    assert all(START + timedelta(seconds=5) <= f <= START + timedelta(seconds=7) for f in fires)
    assert len(set(fires)) > 1


def test_every_crawl_run_field_is_mapped_in_the_crawls_index():
    mapped = load_template("crawls", "x")["template"]["mappings"]["properties"]
    assert [f.name for f in fields(CrawlRun) if f.name not in mapped] == []
