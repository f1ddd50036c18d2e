"""The percolator index: alert rules stored as queries, and articles matched against them.

In:  a :class:`alerts.rules.RuleSet` (sync) or a batch of article documents (percolate).
Out: ``sync_rules`` makes the ``<prefix>-alerts`` index hold exactly the enabled rules
     (added, changed, removed; unchanged rules are not rewritten) and reports what it did;
     ``percolate`` returns which rule matched which document of the batch.

The index's article fields and analyzers are the articles template's, added when the alerts
template is loaded (veille/core/es.py), so each rule's query is parsed as the articles are analysed.
A raw ``es_query`` that Elasticsearch refuses becomes a ConfigError naming the rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan, streaming_bulk

from alerts.rules import AlertRule, RuleSet

PAGE = 1000


@dataclass(frozen=True)
class SyncReport:
    added: int
    changed: int
    removed: int
    unchanged: int


def rule_document(rule: AlertRule, now: datetime) -> dict[str, Any]:
    """The percolator document of one rule: its query and what delivery needs to know."""
    return {
        "query": rule.search_query(),
        "alert": {
            "name": rule.name,
            "recipients": rule.recipients,
            "frequency": rule.frequency_key,
            "fingerprint": rule.fingerprint(),
            "updated_at": now.isoformat(),
        },
    }


def _stored_fingerprints(client: Elasticsearch, index: str) -> dict[str, str]:
    return {
        hit["_id"]: hit["_source"].get("alert", {}).get("fingerprint", "")
        for hit in scan(client, index=index, query={"_source": ["alert.fingerprint"]})
    }


def sync_rules(client: Elasticsearch, index: str, rules: RuleSet, now: datetime) -> SyncReport:
    """Make the percolator index hold exactly ``rules``; refreshes it before returning."""
    stored = _stored_fingerprints(client, index)
    actions: list[dict[str, Any]] = []
    added = changed = 0
    for rule in rules.rules:
        known = stored.get(rule.name)
        if known == rule.fingerprint():
            continue
        added += known is None
        changed += known is not None
        actions.append(
            {"_op_type": "index", "_index": index, "_id": rule.name, **rule_document(rule, now)}
        )
    removed = [name for name in stored if rules.get(name) is None]
    actions += [{"_op_type": "delete", "_index": index, "_id": name} for name in removed]
    for ok, item in streaming_bulk(
        client, actions, chunk_size=500, raise_on_error=False, raise_on_exception=True
    ):
        if not ok:
            _raise_refused(rules, item)
    client.indices.refresh(index=index)
    return SyncReport(added, changed, len(removed), len(rules.rules) - added - changed)


def _raise_refused(rules: RuleSet, item: dict[str, Any]) -> None:
    result = next(iter(item.values()))
    if result.get("status") == 404:  # deleting a rule someone else already deleted
        return
    error = result.get("error", {})
    cause = error.get("caused_by", {})
    reason = cause.get("reason") or error.get("reason") or str(error)
    rule = rules.get(result.get("_id", ""))
    if rule is None:
        raise RuntimeError(f"could not update alert rule {result.get('_id')!r}: {reason}")
    key = "es_query" if rule.es_query is not None else "query"
    raise rules.error(
        rule.name,
        key,
        f"Elasticsearch refuses this query: {reason}",
        "check field names against index_config/articles.json",
    )


def percolate(
    client: Elasticsearch, index: str, documents: list[dict[str, Any]]
) -> Iterator[tuple[str, int]]:
    """Yield ``(rule name, position in documents)`` for every rule matching a document."""
    if not documents:
        return
    after: list[Any] | None = None
    while True:
        response = client.search(
            index=index,
            query={"percolate": {"field": "query", "documents": documents}},
            sort=[{"alert.name": "asc"}],
            size=PAGE,
            source=False,
            docvalue_fields=["alert.name"],
            search_after=after,
            track_total_hits=False,
        )
        hits = response["hits"]["hits"]
        for hit in hits:
            name = hit["fields"]["alert.name"][0]
            for slot in hit["fields"].get("_percolator_document_slot", []):
                yield name, slot
        if len(hits) < PAGE:
            return
        after = hits[-1]["sort"]
