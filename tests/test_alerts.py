"""Keyword alerts end to end: real Elasticsearch (percolator, notification log), real SMTP
(aiosmtpd in this process), the ``veille alerts`` command line in a subprocess.

Articles are indexed as the index stage stores them (``Article.to_document()``); crawling is
tested elsewhere.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts import delivery, notifications
from alerts.percolator import percolate, sync_rules
from alerts.rules import load_rules
from alerts.run import run_alerts
from tests.support.runner import ROOT, clean_env, run_veille
from tests.support.smtp_server import SmtpServer
from veille.core.article import Article, SourceRef
from veille.core.config import ConfigError
from veille.core.es import IndexNames, setup_indices

OUTLETS = {
    "le-devoir": ("ledevoir.example.org", "CA", "fr", "Le Devoir"),
    "la-presse": ("lapresse.example.org", "CA", "fr", "La Presse"),
    "globe-and-mail": ("theglobe.example.org", "CA", "en", "The Globe and Mail"),
    "radio-canada": ("radio-canada.example.org", "CA", "fr", "Radio-Canada"),
    "el-pais": ("elpais.example.org", "ES", "es", "El País"),
}
RCMP_RULE = {
    "name": "rcmp-police-stations",
    "query": '"police station" AND RCMP',
    "recipients": ["analyst@example.org", "desk@example.org"],
    "frequency": "immediate",
}


def article(outlet: str, slug: str, title: str, text: str, **fields: Any) -> Article:
    domain, country, language, site = OUTLETS[outlet]
    url = f"https://{domain}/{slug}"
    fields.setdefault("translation_status", "not_needed" if language == "en" else None)
    return Article(
        url=url,
        canonical_url=url,
        source=SourceRef(outlet, domain, country),
        title=title,
        text=text,
        language=language,
        site_name=site,
        published_at=datetime(2025, 3, 12, 9, 30, tzinfo=UTC),
        topics=["overseas-police-stations"],
        relevance={"score": 8.0, "topic": "overseas-police-stations", "rule": "fr/station-names"},
        **fields,
    )


def french_rcmp_article(**fields: Any) -> Article:
    fields.setdefault(
        "title", 'Postes de police chinois : la GRC enquête à Montréal <script>alert("x")</script>'
    )
    return article(
        "le-devoir",
        "societe/postes-de-police-chinois-grc",
        text=(
            "La Gendarmerie royale du Canada enquête sur deux postes de police chinois "
            "clandestins à Montréal, selon l'ONG Safeguard Defenders. Les organismes visés "
            "nient toute activité policière."
        ),
        translation={
            "en": {
                "title": "Chinese police stations: RCMP investigates in Montreal",
                "text": (
                    "The Royal Canadian Mounted Police (RCMP) is investigating two clandestine "
                    "Chinese police stations in Montreal, according to the NGO Safeguard "
                    "Defenders. The organisations deny any police activity."
                ),
            }
        },
        translation_status="done",
        **fields,
    )


def unrelated_article() -> Article:
    return article(
        "globe-and-mail",
        "sports/hockey",
        "Canadiens win in overtime",
        "The Montreal Canadiens beat Toronto 3-2 in overtime on Saturday night.",
    )


def index_articles(es, prefix: str, *articles: Article, **overrides: Any) -> None:
    for item in articles:
        es.index(
            index=IndexNames(prefix).articles,
            id=item.id,
            document={**item.to_document(), **overrides},
            refresh=True,
        )


@pytest.fixture
def prefix(es, index_prefix) -> str:
    """Indices of one test (under the module's prefix, deleted with it)."""
    name = f"{index_prefix}-{uuid.uuid4().hex[:6]}"
    setup_indices(es, name)
    return name


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


def write_config(folder: Path, *rules: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sources = [
        {"name": name, "urls": [f"https://{domain}/feed.xml"], "language": lang, "country": cc}
        for name, (domain, cc, lang, _) in OUTLETS.items()
    ]
    (folder / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
    shutil.copytree(ROOT / "config" / "topics", folder / "topics", dirs_exist_ok=True)
    (folder / "alerts.yaml").write_text(yaml.safe_dump({"rules": list(rules)}), encoding="utf-8")
    return folder


def cli_env(es_url: str, prefix: str, folder: Path, smtp: SmtpServer) -> dict[str, str]:
    return clean_env(
        VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=prefix, VEILLE_CONFIG=str(folder), **smtp.env()
    )


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def log_states(es, prefix: str) -> list[str]:
    es.indices.refresh(index=IndexNames(prefix).notifications)
    hits = es.search(
        index=IndexNames(prefix).notifications,
        query={"term": {"kind": "notification"}},
        size=100,
    )["hits"]["hits"]
    return sorted(hit["_source"]["state"] for hit in hits)


def test_french_article_matching_english_rule_is_emailed_once_to_each_recipient(
    es, es_url, prefix, smtp, tmp_path
):
    folder = write_config(tmp_path / "config", RCMP_RULE)
    french = french_rcmp_article()
    index_articles(es, prefix, french, unrelated_article())

    sent = run_veille("alerts", "send", env=cli_env(es_url, prefix, folder, smtp))

    assert sent.returncode == 0, sent.stderr
    assert "2 new notifications" in sent.stdout
    assert sorted(rcpt for rcpts, _ in smtp.handler.received for rcpt in rcpts) == [
        "analyst@example.org",
        "desk@example.org",
    ]
    for message in smtp.messages:
        assert message["Subject"] == f"[Veille] rcmp-police-stations: {french.title}"
        assert message["From"] == "Veille <veille@example.org>"
        text, html = parts(message)
        for part in (text, html):
            assert "Chinese police stations: RCMP investigates in Montreal" in part
            assert french.canonical_url in part
            assert "Le Devoir" in part
        assert french.title in text
        assert "<script>" not in html
        assert "Postes de police chinois : la GRC enquête à Montréal &lt;script&gt;" in html
        assert "<mark>police stations</mark>" in html
        assert "«police stations»" in text
        assert "Canadiens" not in text
    assert log_states(es, prefix) == ["sent", "sent"]


def test_recrawl_reindex_and_rerun_of_send_email_nothing_more(es, es_url, prefix, smtp, tmp_path):
    folder = write_config(tmp_path / "config", {**RCMP_RULE, "recipients": ["a@example.org"]})
    env = cli_env(es_url, prefix, folder, smtp)
    french = french_rcmp_article()
    index_articles(es, prefix, french)
    assert run_veille("alerts", "send", env=env).returncode == 0
    assert len(smtp.messages) == 1

    # Re-crawled: the index stage's `create` is refused, the stored article is unchanged.
    index_articles(es, prefix, french)
    assert run_veille("alerts", "send", env=env).returncode == 0
    # Re-indexed with a newer first_seen_at (past the checkpoint) and a re-translation.
    later = datetime.now(UTC) + timedelta(minutes=5)
    index_articles(es, prefix, french_rcmp_article(first_seen_at=later))
    again = run_veille("alerts", "send", env=env)
    assert again.returncode == 0, again.stderr
    assert "0 new notifications, 1 already notified" in again.stdout
    assert run_veille("alerts", "send", env=env).returncode == 0

    assert len(smtp.messages) == 1
    assert log_states(es, prefix) == ["sent"]


def test_smtp_outage_keeps_everything_pending_then_each_notification_arrives_once(
    es, es_url, prefix, smtp, tmp_path
):
    rules = [
        RCMP_RULE,
        {
            "name": "comisarias",
            "query": '"police station" AND (China OR Chinese)',
            "recipients": ["analyst@example.org"],
        },
    ]
    folder = write_config(tmp_path / "config", *rules)
    env = cli_env(es_url, prefix, folder, smtp)
    spanish = article(
        "el-pais",
        "internacional/comisarias-chinas",
        "China abrió comisarías clandestinas en Madrid",
        "La ONG Safeguard Defenders denuncia comisarías chinas en Madrid.",
        translation={
            "en": {
                "title": "China opened clandestine police stations in Madrid",
                "text": "The NGO Safeguard Defenders denounces Chinese police stations in Madrid.",
            }
        },
        translation_status="done",
    )
    index_articles(es, prefix, french_rcmp_article(), spanish)
    smtp.stop()

    down = run_veille("alerts", "send", env=env)

    assert down.returncode == 1
    assert "Traceback" not in down.stderr
    assert "stay pending" in down.stderr
    assert f"127.0.0.1:{smtp.port}" in down.stderr
    assert log_states(es, prefix) == ["pending"] * 4
    # A failure stops the run; the next run tries the other recipient's email, then both back off.
    assert run_veille("alerts", "send", env=env).returncode == 1
    backing_off = run_veille("alerts", "send", env=env)
    assert backing_off.returncode == 0
    assert "0 sent" in backing_off.stdout
    assert log_states(es, prefix) == ["pending"] * 4

    smtp.start()
    back = run_veille("alerts", "send", "--retry-now", env=env)
    assert back.returncode == 0, back.stderr
    assert run_veille("alerts", "send", "--retry-now", env=env).returncode == 0

    received = sorted((message["To"], message["Subject"]) for message in smtp.messages)
    assert received == [
        (
            "analyst@example.org",
            "[Veille] 2 new articles · comisarias (2), rcmp-police-stations (1)",
        ),
        ("desk@example.org", "[Veille] rcmp-police-stations: " + french_rcmp_article().title),
    ]
    assert log_states(es, prefix) == ["sent"] * 4


def test_title_with_line_breaks_and_header_text_adds_no_header(
    es, prefix, smtp, tmp_path, monkeypatch
):
    for name, value in smtp.env().items():
        monkeypatch.setenv(name, value)
    folder = write_config(tmp_path / "config", {**RCMP_RULE, "recipients": ["a@example.org"]})
    hostile = "Postes de police\r\nBcc: victim@example.org\r\nX-Injected: yes\n\nbody"
    index_articles(es, prefix, french_rcmp_article(title=hostile))

    run_alerts(es, prefix, load_rules(folder), datetime.now(UTC))

    [(recipients, raw)] = smtp.handler.received
    assert recipients == ["a@example.org"]
    message = smtp.messages[0]
    assert message["Bcc"] is None
    assert message["X-Injected"] is None
    assert sorted(message.keys()) == sorted(
        ["To", "Subject", "Date", "Message-ID", "Auto-Submitted", "MIME-Version", "Content-Type",
         "From"]
    )  # fmt: skip
    assert message["Subject"] == (
        "[Veille] rcmp-police-stations: "
        "Postes de police Bcc: victim@example.org X-Injected: yes body"
    )
    headers = raw.split(b"\r\n\r\n")[0]
    assert b"\nBcc:" not in headers and b"\nX-Injected:" not in headers
    assert b"\nBcc:" not in raw  # nor in the body: the title is shown on one line


def test_daily_digest_groups_a_days_matches_into_one_email_at_the_configured_time(
    es, prefix, smtp, tmp_path, monkeypatch
):
    for name, value in smtp.env().items():
        monkeypatch.setenv(name, value)
    daily = {"frequency": "daily", "at": "07:30", "timezone": "America/Toronto"}
    folder = write_config(
        tmp_path / "config",
        {**RCMP_RULE, "recipients": ["analyst@example.org"], **daily},
        {"name": "safeguard", "query": '"Safeguard Defenders"',
         "recipients": ["analyst@example.org"], **daily},
        {"name": "hockey", "query": "overtime", "recipients": ["analyst@example.org"]},
    )  # fmt: skip
    rules = load_rules(folder)
    spanish = article(
        "el-pais",
        "internacional/comisarias",
        "Safeguard Defenders denuncia comisarías chinas",
        "Safeguard Defenders publica un nuevo informe.",
    )
    index_articles(es, prefix, french_rcmp_article(), spanish, unrelated_article())
    now = datetime.now(UTC)
    due = rules.require("safeguard").due_at(now)

    run_alerts(es, prefix, rules, now)  # the immediate rule's email goes now
    index_articles(
        es, prefix,
        article("radio-canada", "safeguard", "Safeguard Defenders : nouveau rapport",
                "Selon Safeguard Defenders, la police chinoise opère au Canada."),
    )  # fmt: skip
    run_alerts(es, prefix, rules, due - timedelta(minutes=1))
    assert [m["Subject"] for m in smtp.messages] == ["[Veille] hockey: Canadiens win in overtime"]

    run_alerts(es, prefix, rules, due + timedelta(minutes=1))
    run_alerts(es, prefix, rules, due + timedelta(hours=2))

    assert len(smtp.messages) == 2
    digest = smtp.messages[1]
    assert digest["To"] == "analyst@example.org"
    assert digest["Subject"] == (
        "[Veille] Daily digest: 3 articles · safeguard (3), rcmp-police-stations (1)"
    )
    text, _ = parts(digest)
    for title in (
        "Safeguard Defenders denuncia comisarías chinas",
        "Safeguard Defenders : nouveau rapport",
        "Chinese police stations: RCMP investigates in Montreal",
    ):
        assert text.count(title) == 1
    assert "07:30 America/Toronto" in text


def test_copies_of_one_story_are_emailed_once_with_the_other_outlets_collapsed(
    es, es_url, prefix, smtp, tmp_path
):
    folder = write_config(tmp_path / "config", {**RCMP_RULE, "recipients": ["a@example.org"]})
    env = cli_env(es_url, prefix, folder, smtp)
    story = "cluster-grc-montreal"
    copies = [
        french_rcmp_article(cluster_id=story),
        article("la-presse", "grc", "La GRC enquête sur des postes de police chinois",
                "La GRC enquête.", cluster_id=story,
                translation={"en": {"title": "RCMP probes Chinese police stations",
                                    "text": "The RCMP is investigating police stations."}}),
        article("globe-and-mail", "rcmp", "RCMP probes Chinese police stations in Montreal",
                "The RCMP is investigating two police stations in Montreal.", cluster_id=story),
    ]  # fmt: skip
    index_articles(es, prefix, *copies)

    assert run_veille("alerts", "send", env=env).returncode == 0
    # Another outlet republishes the story later: it joins the cluster, nobody is alerted again.
    index_articles(
        es, prefix,
        article("radio-canada", "grc", "Postes de police chinois : la GRC enquête",
                "La GRC enquête sur des postes de police.", cluster_id=story,
                translation={"en": {"title": "Police stations: RCMP investigates",
                                    "text": "The RCMP is investigating police stations."}}),
    )  # fmt: skip
    assert run_veille("alerts", "send", env=env).returncode == 0

    [message] = smtp.messages
    text, html = parts(message)
    [shown] = [copy for copy in copies if copy.title in text]
    [also_in] = [line.strip() for line in text.splitlines() if "also in:" in line]
    others = {OUTLETS[copy.source.name][3] for copy in copies if copy is not shown}
    assert set(also_in.removeprefix("also in: ").split(", ")) == others
    assert "also in:" in html
    assert log_states(es, prefix) == ["sent"]


def test_crash_after_the_smtp_server_accepted_does_not_resend_on_restart(
    es, prefix, smtp, tmp_path, monkeypatch
):
    for name, value in smtp.env().items():
        monkeypatch.setenv(name, value)
    folder = write_config(tmp_path / "config", {**RCMP_RULE, "recipients": ["a@example.org"]})
    rules = load_rules(folder)
    index_articles(es, prefix, french_rcmp_article())
    now = datetime.now(UTC)

    def crash(*args: Any) -> None:
        raise SystemExit("killed after SMTP accepted the email, before marking it sent")

    with monkeypatch.context() as patched:
        patched.setattr(notifications, "mark_sent", crash)
        with pytest.raises(SystemExit):
            run_alerts(es, prefix, rules, now)
    assert len(smtp.messages) == 1
    assert log_states(es, prefix) == ["sending"]

    run_alerts(es, prefix, rules, now + timedelta(minutes=1))  # the sender may still be alive
    assert log_states(es, prefix) == ["sending"]
    report = run_alerts(es, prefix, rules, now + delivery.LEASE + timedelta(minutes=1))

    assert report.delivery.reconciled == 1
    assert len(smtp.messages) == 1
    assert log_states(es, prefix) == ["sent"]


def test_keyword_operators_and_filters_match_like_an_analyst_expects(es, prefix, tmp_path):
    folder = write_config(
        tmp_path / "config",
        {"name": "montreal-not-toronto", "query": 'RCMP AND ("police station" OR commissariat) '
         "NOT Toronto", "recipients": ["a@example.org"]},
        {"name": "french-only", "query": "RCMP", "languages": ["fr"],
         "recipients": ["a@example.org"]},
        {"name": "spain", "query": "Safeguard OR commissariat", "countries": ["ES"],
         "recipients": ["a@example.org"]},
        {"name": "raw", "es_query": {"match": {"title_fr": "commissariats"}},
         "recipients": ["a@example.org"]},
    )  # fmt: skip
    rules = load_rules(folder)
    names = IndexNames(prefix)
    sync_rules(es, names.alerts, rules, datetime.now(UTC))
    documents = [
        french_rcmp_article().to_document(),
        article("globe-and-mail", "t", "RCMP: police station in Toronto",
                "The RCMP found a police station in Toronto.").to_document(),
        article("la-presse", "c", "Un commissariat chinois à Montréal",
                "La GRC (RCMP) ferme un commissariat.").to_document(),
        article("el-pais", "s", "Informe de Safeguard Defenders", "Safeguard.").to_document(),
    ]  # fmt: skip

    matched = sorted(percolate(es, names.alerts, documents))

    assert matched == [
        ("french-only", 0), ("french-only", 2),
        ("montreal-not-toronto", 0), ("montreal-not-toronto", 2),
        ("raw", 2),
        ("spain", 3),
    ]  # fmt: skip


def test_rule_changes_are_synced_to_the_percolator_index(es, prefix, tmp_path):
    names = IndexNames(prefix)
    now = datetime.now(UTC)
    first = write_config(
        tmp_path / "one",
        {"name": "a", "query": "RCMP", "recipients": ["a@example.org"]},
        {"name": "b", "query": "Toronto", "recipients": ["a@example.org"]},
    )
    assert sync_rules(es, names.alerts, load_rules(first), now).added == 2
    second = write_config(
        tmp_path / "two",
        {"name": "b", "query": "Montreal", "recipients": ["a@example.org"]},
        {"name": "c", "query": "Safeguard", "recipients": ["a@example.org"]},
    )
    report = sync_rules(es, names.alerts, load_rules(second), now)
    assert (report.added, report.changed, report.removed, report.unchanged) == (1, 1, 1, 0)
    assert sync_rules(es, names.alerts, load_rules(second), now).unchanged == 2

    document = french_rcmp_article().to_document()  # mentions Montreal and Safeguard, and RCMP
    assert sorted(percolate(es, names.alerts, [document])) == [("b", 0), ("c", 0)]


def test_raw_query_refused_by_elasticsearch_names_the_rule(es, prefix, tmp_path):
    folder = write_config(
        tmp_path / "config",
        {"name": "broken", "es_query": {"match": {"title": {"qeury": "police"}}},
         "recipients": ["a@example.org"]},
    )  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        sync_rules(es, IndexNames(prefix).alerts, load_rules(folder), datetime.now(UTC))
    assert caught.value.key == "rules.0.es_query"
    assert "rule 'broken': Elasticsearch refuses this query" in caught.value.message
    assert "qeury" in caught.value.message


def test_cli_lists_tests_and_previews_rules(es, es_url, prefix, smtp, tmp_path):
    folder = write_config(tmp_path / "config", RCMP_RULE)
    env = cli_env(es_url, prefix, folder, smtp)
    french = french_rcmp_article()
    index_articles(es, prefix, french, unrelated_article())

    listed = run_veille("alerts", "list", "--json", env=env)
    tested = run_veille("alerts", "test", "rcmp-police-stations", "--json", env=env)
    unknown = run_veille("alerts", "test", "no-such-rule", env=env)
    preview = run_veille(
        "alerts", "preview", "desk@example.org", "--out", str(tmp_path / "next.eml"), env=env
    )

    assert listed.returncode == 0
    assert [rule["name"] for rule in yaml.safe_load(listed.stdout)] == ["rcmp-police-stations"]
    assert tested.returncode == 0, tested.stderr
    result = yaml.safe_load(tested.stdout)
    assert [row["id"] for row in result["articles"]] == [french.id]
    assert "«police stations»" in result["articles"][0]["matched"]
    assert unknown.returncode == 2 and "known rules: rcmp-police-stations" in unknown.stderr
    assert preview.returncode == 0, preview.stderr
    from email import message_from_bytes, policy

    written = message_from_bytes((tmp_path / "next.eml").read_bytes(), policy=policy.default)
    assert written["To"] == "desk@example.org"
    assert french.canonical_url in written.get_body(("plain",)).get_content()
    assert smtp.messages == []  # preview sends nothing
    assert log_states(es, prefix) == ["pending", "pending"]
