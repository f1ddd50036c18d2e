"""Crawl health and schedules without a crawl: flags from run history, one email per incident
(real SMTP server), cron weekdays as an operator writes them, every run field mapped."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.support.smtp_server import SmtpServer
from veille.config import Schedule
from veille.es import load_template
from veille.health import assess, notify_operator
from veille.runs import CrawlRun
from veille.scheduling import make_trigger

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def _run(n: int, status: str = "success", entries: int = 5, **counts: int) -> CrawlRun:
    run = CrawlRun(
        run_id=f"src-{n}", source="src", spider="feeds", trigger="schedule",
        started_at=START + timedelta(hours=n), status=status, entries=entries,
        feeds_read=0 if status != "success" else 1,
    )  # fmt: skip
    for key, value in counts.items():
        setattr(run, key, value)
    return run


def _judged(runs: list[CrawlRun], quiet_after: int = 3) -> list[CrawlRun]:
    """Assess each run in order against the ones before it, as the scheduler does."""
    history: list[dict] = []
    for run in runs:
        assess(run, history, quiet_after)
        history.insert(0, run.document())
    return runs


def test_source_without_entries_for_n_runs_after_a_steady_yield_is_flagged_quiet():
    runs = _judged(
        [_run(0, entries=12), _run(1, entries=10), *(_run(n, entries=0) for n in (2, 3, 4, 5))]
    )
    assert [r.flags for r in runs] == [[], [], [], [], ["quiet"], ["quiet"]]
    assert runs[4].baseline_entries == 11


def test_failed_runs_do_not_break_or_extend_a_quiet_streak():
    runs = _judged(
        [_run(0, entries=8), _run(1, entries=0), _run(2, "failed", 0), _run(3, entries=0)], 2
    )
    assert runs[2].flags == []
    assert runs[3].flags == ["quiet"]


def test_source_that_never_had_entries_is_not_called_quiet():
    runs = _judged([_run(n, entries=0) for n in range(5)])
    assert all(r.flags == [] for r in runs)


def test_quiet_source_that_publishes_again_is_cleared():
    runs = _judged(
        [_run(0, entries=4), *(_run(n, entries=0) for n in (1, 2, 3)), _run(4, entries=3)]
    )
    assert runs[3].flags == ["quiet"]
    assert runs[4].flags == []


def test_runs_failing_in_a_row_flag_failing_and_one_success_clears_it():
    runs = _judged([_run(0), _run(1, "failed"), _run(2, "timeout"), _run(3, "failed"), _run(4)])
    assert [r.flags for r in runs] == [[], [], [], ["failing"], []]


def test_unreadable_feed_counts_as_failing_even_when_scrapy_finished():
    unreadable = [_run(n, entries=0, feeds_failed=1, feeds_read=0) for n in range(3)]
    assert _judged(unreadable)[-1].flags == ["failing"]


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


def test_operator_gets_one_email_per_incident_and_another_when_it_returns(mailbox):
    entries = [9, 7, 0, 0, 0, 0, 6, 0, 0]
    history: list[dict] = []
    for n, count in enumerate(entries):
        run = _run(n, entries=count)
        assess(run, history, 2)
        notify_operator(run, history, 2)
        history.insert(0, run.document())
    messages = mailbox.messages
    assert len(messages) == 2
    first = messages[0]
    assert first["To"] == "ops@example.org"
    assert first["Subject"] == "[veille] source src: went quiet"
    body = first.get_content()
    assert "no feed entries in the last 2 runs; it used to have 8 per run" in body
    assert "veille runs --source src" in body


def test_flag_is_emailed_on_a_later_run_when_smtp_was_down(mailbox, monkeypatch):
    down = SmtpServer()
    monkeypatch.setenv("VEILLE_SMTP_PORT", str(down.port))
    history: list[dict] = []
    for n, status in enumerate(["failed", "failed", "failed"]):
        run = _run(n, status)
        assess(run, history, 2)
        notify_operator(run, history, 2)
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
