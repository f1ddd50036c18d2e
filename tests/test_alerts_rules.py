"""Alert rules as an operator writes them: validation, schedules, a percolator that cannot drift."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from alerts.rules import load_rules
from tests.support.runner import clean_env, run_veille
from veille.core.config import ConfigError, load_config
from veille.core.es import load_template

ROOT = Path(__file__).resolve().parents[1]


def write_rules(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "alerts.yaml").write_text(text, encoding="utf-8")
    return folder


def test_percolator_index_maps_every_article_field_like_the_articles_index():
    articles = load_template("articles", "x")["template"]
    alerts = load_template("alerts", "x")["template"]
    article_fields = articles["mappings"]["properties"]
    alert_fields = alerts["mappings"]["properties"]
    differing = [
        name for name, mapping in article_fields.items() if alert_fields.get(name) != mapping
    ]
    assert differing == [], "copy these fields from index_config/articles.json to alerts.json"
    assert alerts["settings"]["analysis"] == articles["settings"]["analysis"]
    assert alert_fields["query"] == {"type": "percolator"}


def test_the_alerts_template_file_holds_only_its_own_fields():
    """The article fields come from the articles template when loaded, never from a hand copy."""
    written = json.loads((ROOT / "index_config" / "alerts.json").read_text(encoding="utf-8"))
    assert set(written["template"]["mappings"]["properties"]) == {"query", "alert"}
    assert "analysis" not in written["template"]["settings"]


def test_shipped_alert_rules_are_valid_against_the_shipped_sources():
    config = load_config(ROOT / "config")
    rules = load_rules(ROOT / "config", [source.name for source in config.sources])
    assert len(rules.rules) >= 3
    assert all(r.recipients for r in rules.rules)
    assert all(addr.endswith("@example.org") for r in rules.rules for addr in r.recipients)


def test_broken_keyword_query_is_rejected_with_rule_name_key_and_line(tmp_path):
    folder = write_rules(
        tmp_path,
        """rules:
  - name: fine
    query: RCMP
    recipients: [a@example.org]
  - name: police-en
    query: '"police station AND RCMP'
    recipients: [a@example.org]
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_rules(folder)
    error = caught.value
    assert error.key == "rules.1.query"
    assert error.line == 6
    assert "'police-en'" in error.message
    assert "unterminated quote" in error.message
    assert str(error).startswith(f"{folder / 'alerts.yaml'}:6: rules.1.query:")


@pytest.mark.parametrize(
    ("rule", "key", "expected"),
    [
        ("query: x\n    frequency: weekly", "frequency", "'immediate', 'hourly' or 'daily'"),
        ("query: x\n    frequency: hourly\n    at: '08:00'", "at", "only applies to"),
        ("query: x\n    frequency: daily\n    at: '8h'", "at", "not a time of day"),
        ("query: x\n    frequency: daily\n    timezone: Paris", "timezone", "not a time zone"),
        ("query: NOT x", "query", "only excludes"),
        ("query: x\n    es_query: {match_all: {}}", "query", "exactly one of"),
        ("query: x\n    languages: [pt]", "languages.0", "'pt' is not a language of Veille"),
        ("query: x\n    quey: y", "quey", "Extra inputs"),
    ],
)
def test_invalid_rule_names_the_rule_and_the_key(tmp_path, rule, key, expected):
    folder = write_rules(
        tmp_path, f"rules:\n  - name: my-rule\n    recipients: [a@example.org]\n    {rule}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_rules(folder)
    assert caught.value.key == f"rules.0.{key}"
    assert "rule 'my-rule'" in caught.value.message
    assert expected in caught.value.message


def test_recipient_that_is_not_an_address_is_rejected(tmp_path):
    folder = write_rules(
        tmp_path,
        "rules:\n  - name: r\n    query: x\n"
        "    recipients: ['a@example.org\\nBcc: b@example.org']\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_rules(folder)
    assert caught.value.key == "rules.0.recipients.0"
    assert "not an email address" in caught.value.message


def test_rule_naming_an_unknown_source_is_rejected(tmp_path):
    folder = write_rules(
        tmp_path,
        "rules:\n  - name: r\n    query: x\n    sources: [le-devoir, le-monde]\n"
        "    recipients: [a@example.org]\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_rules(folder, known_sources=["le-devoir"])
    assert caught.value.key == "rules.0.sources"
    assert caught.value.line == 4
    assert "unknown source 'le-monde'" in caught.value.message


def test_daily_digest_is_due_at_the_local_time_across_a_clock_change(tmp_path):
    folder = write_rules(
        tmp_path,
        yaml.safe_dump(
            {
                "rules": [
                    {
                        "name": "daily",
                        "query": "RCMP",
                        "recipients": ["a@example.org"],
                        "frequency": "daily",
                        "at": "08:00",
                        "timezone": "Europe/Paris",
                    },
                    {"name": "hourly", "query": "RCMP", "recipients": ["a@example.org"],
                     "frequency": "hourly"},
                ]
            }
        ),
    )  # fmt: skip
    daily, hourly = load_rules(folder).rules
    # Saturday 29 March 2025, 10:00 UTC: past 08:00 in Paris; summer time starts that night.
    matched = datetime(2025, 3, 29, 10, 0, tzinfo=UTC)
    assert daily.due_at(matched) == datetime(2025, 3, 30, 6, 0, tzinfo=UTC)
    assert daily.due_at(datetime(2025, 3, 29, 6, 59, tzinfo=UTC)) == datetime(
        2025, 3, 29, 7, 0, tzinfo=UTC
    )
    assert daily.frequency_key == "daily 08:00 Europe/Paris"
    assert hourly.due_at(datetime(2025, 3, 29, 10, 20, tzinfo=UTC)) == datetime(
        2025, 3, 29, 11, 0, tzinfo=UTC
    )


def test_a_config_folder_without_alerts_yaml_has_no_rules_and_send_does_nothing(tmp_path):
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder, ignore=shutil.ignore_patterns("alerts.yaml"))
    rules = load_rules(folder)
    assert rules.missing and rules.rules == ()

    # Nothing listens on port 9: a send that went to Elasticsearch would exit 3.
    env = clean_env(VEILLE_CONFIG=str(folder), VEILLE_ES_URL="http://127.0.0.1:9")
    sent = run_veille("alerts", "send", env=env)
    listed = run_veille("alerts", "list", env=env)

    assert sent.returncode == 0, sent.stderr
    assert f"no alert rules: {folder / 'alerts.yaml'} does not exist" in sent.stderr
    assert listed.returncode == 0 and "0 alert rules" in listed.stdout, listed.stderr
