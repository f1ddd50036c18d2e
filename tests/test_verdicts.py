"""Analyst verdicts end to end: ``veille review``, the signed links in alert emails and the
``veille serve`` service that takes their clicks.

Real parts: the local Elasticsearch node (articles, verdicts, notification log), aiosmtpd in this
process, ``veille serve`` and ``veille review`` as subprocesses, HTTP requests over 127.0.0.1.
"""

from __future__ import annotations

import http.client
import logging
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from alerts import delivery
from alerts.rules import load_rules
from alerts.run import run_alerts
from tests.support.runner import ROOT, clean_env, run_veille
from tests.support.smtp_server import SmtpServer
from tests.test_alerts import (
    RCMP_RULE,
    article,
    french_rcmp_article,
    index_articles,
    parts,
    write_config,
)
from veille.core.config import parse_duration
from veille.core.es import IndexNames, setup_indices
from veille.core.feedback import FeedbackSettings

SECRET = "test-only-feedback-secret-3f9c2a"
ANALYST, DESK = "analyst@example.org", "desk@example.org"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str


class Service:
    """A running ``veille serve`` and requests to it."""

    def __init__(self, process: subprocess.Popen[str], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def request(self, method: str, target: str, form: dict[str, str] | None = None) -> Response:
        parts_ = urlsplit(target if "://" in target else self.url + target)
        connection = http.client.HTTPConnection(parts_.hostname, parts_.port, timeout=30)
        path = parts_.path + (f"?{parts_.query}" if parts_.query else "")
        body = urlencode(form) if form is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
        try:
            connection.request(method, path, body=body, headers=headers)
            answer = connection.getresponse()
            return Response(
                answer.status,
                {k.lower(): v for k, v in answer.getheaders()},
                answer.read().decode("utf-8"),
            )
        finally:
            connection.close()

    def click(self, link: str) -> Response:
        return self.request("GET", link)

    def confirm(self, link: str, note: str = "") -> Response:
        """Press the page's button: POST the form the GET page holds."""
        [token] = parse_qs(urlsplit(link).query)["t"]
        return self.request("POST", "/verdict", {"t": token, "note": note})


@pytest.fixture
def prefix(es, index_prefix) -> str:
    """Indices of one test (under the module's prefix, deleted with it)."""
    name = f"{index_prefix}-{uuid.uuid4().hex[:6]}"
    setup_indices(es, name)
    return name


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def service(es_url, prefix, tmp_path) -> Iterator[Service]:
    log = tmp_path / "serve.log"
    env = clean_env(VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=prefix, VEILLE_FEEDBACK_SECRET=SECRET)
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "veille.cli", "serve", "--port", "0"],
            stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=ROOT,
        )  # fmt: skip
    try:
        line = process.stdout.readline() if process.stdout else ""
        found = re.search(r"listening on (http://\S+);", line)
        assert found, f"veille serve did not start: {line!r} {log.read_text()}"
        yield Service(process, found.group(1), log)
    finally:
        process.terminate()
        process.wait(timeout=30)


def feedback(base_url: str, ttl: str = "30d") -> FeedbackSettings:
    """The settings ``veille alerts send`` writes links with, here with the service's address."""
    return FeedbackSettings(SECRET.encode(), base_url, parse_duration(ttl))


def stored_article(es, prefix: str, article_id: str) -> dict:
    return es.get(index=IndexNames(prefix).articles, id=article_id)["_source"]


def verdict_events(es, prefix: str) -> list[dict]:
    index = IndexNames(prefix).verdicts
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=100, sort=[{"at": "asc"}])["hits"]["hits"]
    return [{"_id": hit["_id"], **hit["_source"]} for hit in hits]


def links_in(text: str) -> dict[tuple[str, str], str]:
    """``(article id, verdict) → link`` for every verdict link of an email's text part."""
    settings = FeedbackSettings(SECRET.encode(), None, timedelta(days=30))
    found = {}
    for link in re.findall(r"(?:Not relevant|Relevant): (\S+)", text):
        [token] = parse_qs(urlsplit(link).query)["t"]
        claim = settings.verify(token, datetime.now(UTC))
        found[(claim.article_id, claim.label)] = link
    return found


def other_rcmp_article():
    return article(
        "la-presse",
        "actualites/grc-postes-police",
        "La GRC ferme un poste de police chinois à Brossard",
        "La GRC a fermé un poste de police chinois clandestin à Brossard.",
        translation={
            "en": {
                "title": "RCMP closes a Chinese police station in Brossard",
                "text": "The RCMP closed a clandestine Chinese police station in Brossard.",
            }
        },
        translation_status="done",
    )


# --- a click in an email ---------------------------------------------------------------------


def test_not_relevant_clicked_in_an_email_removes_the_article_from_the_next_digest(
    es, prefix, smtp, service, tmp_path, monkeypatch
):
    for name, value in {**smtp.env(), "VEILLE_FEEDBACK_SECRET": SECRET,
                        "VEILLE_FEEDBACK_URL": service.url}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    daily = {"frequency": "daily", "at": "08:00", "timezone": "UTC"}
    folder = write_config(
        tmp_path / "config",
        {**RCMP_RULE, "name": "rcmp-now", "recipients": [ANALYST]},
        {**RCMP_RULE, "name": "rcmp-daily", "recipients": [DESK], **daily},
    )
    rules = load_rules(folder)
    judged, kept = french_rcmp_article(), other_rcmp_article()
    index_articles(es, prefix, judged, kept)
    now = datetime.now(UTC)

    run_alerts(es, prefix, rules, now)  # the analyst's immediate email; the desk's digest waits

    [email] = smtp.messages
    assert email["To"] == ANALYST
    text, html = parts(email)
    links = links_in(text)
    assert set(links) == {(a.id, label) for a in (judged, kept) for label in
                          ("irrelevant", "relevant")}  # fmt: skip
    for link in links.values():
        assert f'href="{link}"' in html
    not_relevant = links[(judged.id, "irrelevant")]

    # A mail scanner fetching the link (GET, HEAD) records nothing.
    page = service.click(not_relevant)
    assert service.request("HEAD", not_relevant).status == 200
    assert page.status == 200
    assert "Mark this article as not relevant?" in page.body
    assert 'method="post"' in page.body
    assert "verdict" not in stored_article(es, prefix, judged.id)
    assert verdict_events(es, prefix) == []

    done = service.confirm(not_relevant, note="Not about stations abroad")

    assert done.status == 200, done.body
    assert "Recorded: not relevant" in done.body
    verdict = stored_article(es, prefix, judged.id)["verdict"]
    assert verdict["label"] == "irrelevant"
    assert verdict["via"] == "email"
    assert verdict["by"] == ANALYST
    assert verdict["note"] == "Not about stations abroad"
    [event] = verdict_events(es, prefix)
    assert event["article_id"] == judged.id and event["label"] == "irrelevant"
    assert event["_id"].startswith("link-")

    due = rules.require("rcmp-daily").due_at(now)
    report = run_alerts(es, prefix, rules, due + timedelta(minutes=1))

    assert report.delivery.judged_irrelevant == 1
    digest = smtp.messages[1]
    assert digest["To"] == DESK
    text, _ = parts(digest)
    assert kept.title in text
    assert judged.title not in text
    assert "Chinese police stations: RCMP investigates in Montreal" not in text
    states = es.search(
        index=IndexNames(prefix).notifications,
        query={"bool": {"filter": [{"term": {"recipient": DESK}}]}},
    )["hits"]["hits"]
    by_article = {hit["_source"]["article_id"]: hit["_source"] for hit in states}
    assert by_article[judged.id]["state"] == "cancelled"
    assert by_article[judged.id]["cancel_reason"] == "judged_irrelevant"
    assert by_article[kept.id]["state"] == "sent"
    # Kept, never deleted.
    assert stored_article(es, prefix, judged.id)["title"] == judged.title
    # The service's log never holds a link's token.
    token = parse_qs(urlsplit(not_relevant).query)["t"][0]
    assert "GET /verdict 200" in service.log.read_text()
    assert token[:20] not in service.log.read_text()


def test_forged_links_are_refused_and_change_nothing(es, prefix, service):
    target = french_rcmp_article()
    index_articles(es, prefix, target)
    now = datetime.now(UTC)
    genuine = feedback(service.url)
    relevant = genuine.token(target.id, "relevant", ANALYST, now)
    irrelevant = genuine.token(target.id, "irrelevant", ANALYST, now)
    other_key = FeedbackSettings(b"another-secret-of-some-length", service.url, timedelta(days=30))
    forged = {
        "signed with another key": other_key.token(target.id, "irrelevant", ANALYST, now),
        "verdict swapped": irrelevant.split(".")[0] + "." + relevant.split(".")[1],
        "signature altered": relevant[:-2] + ("AA" if not relevant.endswith("AA") else "BB"),
    }

    for reason, token in forged.items():
        link = f"{service.url}/verdict?{urlencode({'t': token})}"
        for answer in (service.click(link), service.confirm(link)):
            assert answer.status == 403, reason
            assert "This link is not valid" in answer.body
            assert "Nothing was recorded" in answer.body
    garbled = service.click(f"{service.url}/verdict?t=not-a-token")
    assert garbled.status == 400 and "This link is incomplete" in garbled.body
    assert service.click(f"{service.url}/verdict").status == 400

    assert "verdict" not in stored_article(es, prefix, target.id)
    assert verdict_events(es, prefix) == []


def test_an_expired_link_is_refused_and_changes_nothing(es, prefix, service):
    target = french_rcmp_article()
    index_articles(es, prefix, target)
    settings = feedback(service.url, ttl="30d")
    sent_at = datetime.now(UTC) - timedelta(days=30, minutes=1)
    link = settings.link(target.id, "irrelevant", ANALYST, sent_at)

    for answer in (service.click(link), service.confirm(link)):
        assert answer.status == 410
        assert "This link has expired" in answer.body
        assert f"veille review {target.id} irrelevant" in answer.body

    assert "verdict" not in stored_article(es, prefix, target.id)
    assert verdict_events(es, prefix) == []


def test_a_replayed_link_is_refused_and_changes_nothing(es, prefix, service):
    target = french_rcmp_article()
    index_articles(es, prefix, target)
    link = feedback(service.url).link(target.id, "irrelevant", ANALYST, datetime.now(UTC))
    assert service.confirm(link, note="first click").status == 200
    recorded = stored_article(es, prefix, target.id)["verdict"]

    again = service.confirm(link, note="second click")
    reopened = service.click(link)

    for answer in (again, reopened):
        assert answer.status == 409
        assert "This link was already used" in answer.body
        assert "It recorded \u201cnot relevant\u201d" in answer.body
    assert stored_article(es, prefix, target.id)["verdict"] == recorded
    assert [event["note"] for event in verdict_events(es, prefix)] == ["first click"]


def test_two_clicks_of_one_link_racing_record_one_verdict(es, prefix, service):
    target = french_rcmp_article()
    index_articles(es, prefix, target)
    link = feedback(service.url).link(target.id, "relevant", DESK, datetime.now(UTC))
    start = threading.Barrier(4)
    statuses: list[int] = []

    def click(n: int) -> None:
        start.wait()
        statuses.append(service.confirm(link, note=f"click {n}").status)

    threads = [threading.Thread(target=click, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 409, 409, 409]
    [event] = verdict_events(es, prefix)
    assert stored_article(es, prefix, target.id)["verdict"]["note"] == event["note"]


def test_pages_escape_what_they_show_and_forbid_caching_and_framing(es, prefix, service):
    target = french_rcmp_article()  # its title holds <script>alert("x")</script>
    index_articles(es, prefix, target)
    link = feedback(service.url).link(target.id, "irrelevant", ANALYST, datetime.now(UTC))

    pages = [
        service.click(link),
        service.confirm(link, note="<img src=x onerror=alert(1)>"),
        service.click(link),  # 409
        service.request("GET", "/<script>alert(1)</script>"),  # 404
        service.request("PUT", "/verdict"),  # refused by the HTTP layer, same headers
    ]

    assert [page.status for page in pages] == [200, 200, 409, 404, 501]
    for page in pages:
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["x-content-type-options"] == "nosniff"
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "script-src" not in policy  # no script may run: default-src 'none' covers it
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "<script>" not in page.body and "<img" not in page.body
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages[0].body
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[1].body


# --- veille review ---------------------------------------------------------------------------


def review_env(es_url: str, prefix: str) -> dict[str, str]:
    return clean_env(VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=prefix)


def test_review_by_any_url_that_led_to_the_article_then_by_id(es, es_url, prefix):
    target = french_rcmp_article(urls=["https://ledevoir.example.org/societe/postes-amp"])
    index_articles(es, prefix, target)
    env = review_env(es_url, prefix)
    tracked = target.canonical_url.replace("https://ledevoir", "HTTPS://LEDEVOIR") + (
        "?utm_source=newsletter&fbclid=abc#comments"
    )

    by_url = run_veille("review", tracked, "irrelevant", "--note", "a trade story", env=env)
    other_spelling = run_veille(
        "review", "https://ledevoir.example.org/societe/postes-amp", "irrelevant", env=env
    )
    by_id = run_veille("review", target.id, "relevant", env=env)

    assert by_url.returncode == 0, by_url.stderr
    assert f"id {target.id}" in by_url.stdout
    assert "irrelevant: Postes de police chinois" in by_url.stdout
    assert other_spelling.returncode == 0, other_spelling.stderr
    assert by_id.returncode == 0, by_id.stderr
    assert "replaces: irrelevant" in by_id.stdout
    verdict = stored_article(es, prefix, target.id)["verdict"]
    assert verdict["label"] == "relevant" and verdict["via"] == "cli"
    assert verdict["note"] is None  # the earlier verdict's note went with it
    events = verdict_events(es, prefix)
    assert [(e["label"], e["via"], e["note"]) for e in events] == [
        ("irrelevant", "cli", "a trade story"),
        ("irrelevant", "cli", None),
        ("relevant", "cli", None),
    ]
    assert {e["article_id"] for e in events} == {target.id}


def test_review_of_an_unknown_article_says_so(es, es_url, prefix):
    env = review_env(es_url, prefix)

    unknown_url = run_veille("review", "https://nowhere.example.org/a", "irrelevant", env=env)
    unknown_id = run_veille("review", "ab" * 20, "relevant", env=env)
    not_a_reference = run_veille("review", "nowhere.example.org/a", "relevant", env=env)
    bad_verdict = run_veille("review", "ab" * 20, "spam", env=env)

    assert unknown_url.returncode == 1
    assert "no indexed article has the address https://nowhere.example.org/a" in (
        unknown_url.stderr
    )
    assert unknown_id.returncode == 1
    assert f"no indexed article has the id {'ab' * 20}" in unknown_id.stderr
    assert not_a_reference.returncode == 2
    assert "neither an article's address" in not_a_reference.stderr
    assert bad_verdict.returncode == 2
    assert verdict_events(es, prefix) == []


def test_an_article_judged_irrelevant_before_matching_is_never_alerted(
    es, es_url, prefix, smtp, tmp_path
):
    folder = write_config(tmp_path / "config", {**RCMP_RULE, "recipients": [ANALYST]})
    judged, kept = french_rcmp_article(), other_rcmp_article()
    index_articles(es, prefix, judged, kept)
    env = {**review_env(es_url, prefix), **smtp.env(), "VEILLE_CONFIG": str(folder)}
    assert run_veille("review", judged.canonical_url, "irrelevant", env=env).returncode == 0
    assert run_veille("review", kept.canonical_url, "relevant", env=env).returncode == 0

    sent = run_veille("alerts", "send", env=env)

    assert sent.returncode == 0, sent.stderr
    assert "1 new notifications" in sent.stdout
    [email] = smtp.messages
    text, _ = parts(email)
    assert kept.title in text and judged.title not in text  # judged relevant: alerted as before


# --- settings --------------------------------------------------------------------------------


def test_without_a_secret_emails_carry_no_links_and_the_log_says_so_once(
    es, prefix, smtp, tmp_path, monkeypatch, caplog
):
    for name, value in smtp.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("VEILLE_FEEDBACK_SECRET", raising=False)
    delivery._say_links_are_off.cache_clear()
    folder = write_config(tmp_path / "config", {**RCMP_RULE, "recipients": [ANALYST]})
    rules = load_rules(folder)
    index_articles(es, prefix, french_rcmp_article())

    with caplog.at_level(logging.INFO, logger="alerts.delivery"):
        run_alerts(es, prefix, rules, datetime.now(UTC))
        index_articles(es, prefix, other_rcmp_article())
        run_alerts(es, prefix, rules, datetime.now(UTC) + timedelta(minutes=1))

    assert len(smtp.messages) == 2
    for message in smtp.messages:
        text, html = parts(message)
        assert "Not relevant" not in text and "Not relevant" not in html
        assert "/verdict?" not in html
    notes = [r.getMessage() for r in caplog.records if "VEILLE_FEEDBACK_SECRET" in r.getMessage()]
    assert len(notes) == 1


def test_a_secret_without_the_service_address_is_a_configuration_error(
    es, es_url, prefix, smtp, tmp_path
):
    folder = write_config(tmp_path / "config", {**RCMP_RULE, "recipients": [ANALYST]})
    index_articles(es, prefix, french_rcmp_article())
    env = {**review_env(es_url, prefix), **smtp.env(), "VEILLE_CONFIG": str(folder),
           "VEILLE_FEEDBACK_SECRET": SECRET}  # fmt: skip

    sent = run_veille("alerts", "send", env=env)

    assert sent.returncode == 2
    assert "VEILLE_FEEDBACK_URL: not set" in sent.stderr
    assert smtp.messages == []
    # Nothing was claimed: with the address set, the email goes.
    env["VEILLE_FEEDBACK_URL"] = "https://veille.example.org/feedback"
    assert run_veille("alerts", "send", env=env).returncode == 0
    text, _ = parts(smtp.messages[0])
    assert "Not relevant: https://veille.example.org/feedback/verdict?t=" in text


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ("", "VEILLE_FEEDBACK_SECRET is not set"),
        ("short", "VEILLE_FEEDBACK_SECRET: 5 characters is too short to sign links"),
    ],
)
def test_serve_refuses_to_start_without_a_usable_secret(es_url, prefix, secret, expected):
    env = clean_env(VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=prefix, VEILLE_FEEDBACK_SECRET=secret)

    result = run_veille("serve", "--port", "0", env=env, timeout=60)

    assert result.returncode == 2
    assert expected in result.stderr
