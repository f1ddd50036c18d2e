"""Alert rules on what the register learns: ``actions: [...]`` and ``new_station: true``, against
the real node's percolator."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alerts.percolator import percolate, sync_rules
from alerts.rules import load_rules
from veille.core.config import ConfigError
from veille.core.es import IndexNames, setup_indices

RULES = """
rules:
  - name: someone-charged
    actions: [arrest_or_charge, expulsion]
    recipients: [analyst@example.org]
  - name: new-station
    new_station: true
    recipients: [analyst@example.org]
  - name: closures-in-ireland
    query: Dublin
    actions: [closure]
    countries: [IE]
    recipients: [analyst@example.org]
"""


def article(title: str, **fields) -> dict:
    return {"title": title, "text": title, "language": "en",
            "source": {"name": "outlet", "country": "GB"}, **fields}  # fmt: skip


def test_rules_match_by_action_and_by_new_location(tmp_path, es, index_prefix):
    (tmp_path / "alerts.yaml").write_text(RULES, encoding="utf-8")
    rules = load_rules(tmp_path)
    setup_indices(es, index_prefix)
    index = IndexNames(index_prefix).alerts
    sync_rules(es, index, rules, datetime.now(UTC))
    es.indices.refresh(index=index)
    documents = [
        article(
            "Two charged over a Chinese police outpost", actions=["reported", "arrest_or_charge"]
        ),
        article(
            "A Chinese police outpost reported in Lisbon",
            actions=["reported"],
            new_stations=["PT-2267057"],
        ),
        article("Dublin office ordered shut", actions=["reported", "closure"], countries=["IE"]),
        article("Dublin office ordered shut, again", actions=["reported", "closure"]),
        article("Nothing happened", actions=[]),
    ]
    matched = sorted((slot, name) for name, slot in percolate(es, index, documents))
    assert matched == [(0, "someone-charged"), (1, "new-station"), (2, "closures-in-ireland")]


def test_a_rule_needs_a_query_or_a_selection(tmp_path):
    (tmp_path / "alerts.yaml").write_text(
        "rules:\n  - name: nothing\n    recipients: [a@example.org]\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="select by 'actions' or 'new_station: true'"):
        load_rules(tmp_path)


def test_an_unknown_action_is_refused_with_the_rule_and_key(tmp_path):
    (tmp_path / "alerts.yaml").write_text(
        "rules:\n  - name: typo\n    actions: [arested]\n    recipients: [a@example.org]\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_rules(tmp_path)
    assert "rules.0.actions" in str(caught.value) and "typo" in str(caught.value)
