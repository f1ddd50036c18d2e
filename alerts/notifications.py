"""The notification log: which story is owed to whom under which rule, and where its email is.

In:  percolator matches (rule, recipient, article document) and the delivery's outcomes.
Out: documents in ``<prefix>-notifications`` with ``_id`` = hash(rule, recipient, story), where
     the story is the article's ``cluster_id`` when it has one, else the article itself. They are
     written with the ``create`` op, so matching the same story again (re-crawl, re-index,
     another outlet's copy, a restart) finds the existing entry and adds nothing.

States: ``pending`` (owed; ``next_attempt_at`` delays a retry after an SMTP failure), ``sending``
(claimed by one sender for one email, ``batch_id``, ``sending_at``), ``sent``, and ``cancelled``
before it was sent, with a ``cancel_reason``: its rule or recipient left the config, an analyst
judged its article irrelevant, an edited topic no longer keeps the article, or the article was
deleted. A claim uses optimistic concurrency
(``if_seq_no``), so two senders never claim the same notification.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import streaming_bulk

from alerts.rules import AlertRule

KIND = "notification"
CANCEL_REASONS = ("unsubscribed", "judged_irrelevant", "off_topic", "article_deleted")
RETRY_FIRST = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=1)


def story_key(article_id: str, document: dict[str, Any]) -> str:
    """One story: its cluster when deduplication grouped copies, else the article."""
    cluster = document.get("cluster_id")
    return f"cluster:{cluster}" if cluster else f"article:{article_id}"


def notification_id(rule: str, recipient: str, story: str) -> str:
    return hashlib.sha256(f"{rule}\n{recipient}\n{story}".encode()).hexdigest()[:40]


def retry_delay(attempts: int) -> timedelta:
    """Backoff after ``attempts`` failed tries: 1, 2, 4 … minutes, at most an hour."""
    return min(RETRY_FIRST * 2 ** max(attempts - 1, 0), RETRY_MAX)


@dataclass(frozen=True)
class Notification:
    id: str
    rule: str
    recipient: str
    frequency: str
    article_id: str
    cluster_id: str | None
    due_at: str
    attempts: int = 0
    seq_no: int | None = None
    primary_term: int | None = None

    @classmethod
    def from_hit(cls, hit: dict[str, Any]) -> Notification:
        doc = hit["_source"]
        return cls(
            id=hit["_id"],
            rule=doc["rule"],
            recipient=doc["recipient"],
            frequency=doc["frequency"],
            article_id=doc["article_id"],
            cluster_id=doc.get("cluster_id"),
            due_at=doc["due_at"],
            attempts=doc.get("attempts", 0),
            seq_no=hit.get("_seq_no"),
            primary_term=hit.get("_primary_term"),
        )


def new_notifications(
    rule: AlertRule, article_id: str, document: dict[str, Any], now: datetime
) -> list[dict[str, Any]]:
    """The log entries (one per recipient) for a rule matching an article, as bulk actions."""
    story = story_key(article_id, document)
    return [
        {
            "_id": notification_id(rule.name, recipient, story),
            "kind": KIND,
            "rule": rule.name,
            "recipient": recipient,
            "frequency": rule.frequency_key,
            "article_id": article_id,
            "cluster_id": document.get("cluster_id"),
            "story_key": story,
            "title": document.get("title", ""),
            "state": "pending",
            "matched_at": now.isoformat(),
            "due_at": rule.due_at(now).isoformat(),
            "attempts": 0,
            "updated_at": now.isoformat(),
        }
        for recipient in rule.recipients
    ]


def record(client: Elasticsearch, index: str, entries: list[dict[str, Any]]) -> tuple[int, int]:
    """Store new entries with ``create``; returns (created, already in the log).

    Any other refusal raises, so the caller does not move its checkpoint past lost matches.
    """
    created = existing = 0
    actions = (
        {"_op_type": "create", "_index": index, "_id": entry["_id"], "_source": body}
        for entry in entries
        for body in [{k: v for k, v in entry.items() if k != "_id"}]
    )
    failures = []
    for ok, item in streaming_bulk(
        client, actions, chunk_size=500, max_retries=3, raise_on_error=False, refresh="wait_for"
    ):
        status = item["create"].get("status")
        if ok:
            created += 1
        elif status == 409:
            existing += 1
        else:
            failures.append(item["create"].get("error"))
    if failures:
        raise RuntimeError(f"{len(failures)} notifications not stored, e.g. {failures[0]}")
    return created, existing


def pending(
    client: Elasticsearch,
    index: str,
    *,
    due_by: datetime | None,
    now: datetime,
    ignore_backoff: bool = False,
    recipient: str | None = None,
) -> list[Notification]:
    """Pending notifications, oldest due first: due by ``due_by`` (None: any), not backing off."""
    filters: list[dict[str, Any]] = [{"term": {"kind": KIND}}, {"term": {"state": "pending"}}]
    if due_by is not None:
        filters.append({"range": {"due_at": {"lte": due_by.isoformat()}}})
    if not ignore_backoff:
        filters.append(
            {
                "bool": {
                    "should": [
                        {"bool": {"must_not": {"exists": {"field": "next_attempt_at"}}}},
                        {"range": {"next_attempt_at": {"lte": now.isoformat()}}},
                    ],
                    "minimum_should_match": 1,
                }
            }
        )
    if recipient is not None:
        filters.append({"term": {"recipient": recipient}})
    return _find(client, index, filters)


def _find(client: Elasticsearch, index: str, filters: list[dict[str, Any]]) -> list[Notification]:
    notes: list[Notification] = []
    after: list[Any] | None = None
    while True:
        response = client.search(
            index=index,
            query={"bool": {"filter": filters}},
            sort=[{"due_at": "asc"}, {"matched_at": "asc"}, {"story_key": "asc"}],
            size=1000,
            seq_no_primary_term=True,
            search_after=after,
        )
        hits = response["hits"]["hits"]
        notes += [Notification.from_hit(hit) for hit in hits]
        if len(hits) < 1000:
            return notes
        after = hits[-1]["sort"]


def _update(
    client: Elasticsearch,
    index: str,
    notes: list[Notification],
    changes: dict[str, Any] | None = None,
    *,
    per_note: dict[str, dict[str, Any]] | None = None,
    guarded: bool = False,
) -> list[str]:
    """Apply ``changes`` to each notification; returns the ids updated. ``guarded`` updates
    only those unchanged since they were read (a claim)."""
    actions = []
    for note in notes:
        action: dict[str, Any] = {
            "_op_type": "update",
            "_index": index,
            "_id": note.id,
            "doc": {**(changes or {}), **(per_note or {}).get(note.id, {})},
        }
        if guarded:
            action["if_seq_no"] = note.seq_no
            action["if_primary_term"] = note.primary_term
        actions.append(action)
    done = []
    for ok, item in streaming_bulk(
        client, actions, chunk_size=500, raise_on_error=False, refresh="wait_for"
    ):
        if ok:
            done.append(item["update"]["_id"])
        elif not guarded or item["update"].get("status") != 409:
            raise RuntimeError(f"notification log update refused: {item['update'].get('error')}")
    return done


def claim(
    client: Elasticsearch, index: str, notes: list[Notification], batch_id: str, now: datetime
) -> list[Notification]:
    """Mark notifications ``sending`` for one email; returns those this sender now owns."""
    owned = set(
        _update(
            client,
            index,
            notes,
            {"state": "sending", "batch_id": batch_id, "sending_at": now.isoformat()},
            guarded=True,
        )
    )
    return [note for note in notes if note.id in owned]


def mark_sent(client: Elasticsearch, index: str, notes: list[Notification], now: datetime) -> None:
    stamp = now.isoformat()
    _update(client, index, notes, {"state": "sent", "sent_at": stamp, "updated_at": stamp})


def release(
    client: Elasticsearch, index: str, notes: list[Notification], error: str, now: datetime
) -> datetime:
    """Back to ``pending`` after a failed send, retried after a backoff; returns the next try."""
    retries = {
        note.id: {
            "attempts": note.attempts + 1,
            "next_attempt_at": (now + retry_delay(note.attempts + 1)).isoformat(),
        }
        for note in notes
    }
    _update(
        client,
        index,
        notes,
        {"state": "pending", "last_error": error[:1000], "updated_at": now.isoformat()},
        per_note=retries,
    )
    return now + min((retry_delay(note.attempts + 1) for note in notes), default=RETRY_FIRST)


def cancel(
    client: Elasticsearch, index: str, notes: list[Notification], now: datetime, reason: str
) -> None:
    """Never to be sent; ``reason`` says why (one of :data:`CANCEL_REASONS`)."""
    changes = {"state": "cancelled", "cancel_reason": reason, "updated_at": now.isoformat()}
    _update(client, index, notes, changes)


def reconcile_stale(client: Elasticsearch, index: str, now: datetime, lease: timedelta) -> int:
    """Settle notifications left ``sending`` by a sender that died: count them as sent.

    A sender that crashed after the SMTP server accepted the email but before marking it sent
    leaves ``sending`` behind; so does one that crashed just before talking to SMTP. The two
    cannot be told apart afterwards, and a recipient must never get the same article twice, so
    both become ``sent`` with ``unconfirmed: true`` (at most once for that window; see the
    README). Claims younger than ``lease`` belong to a sender that may still be running.
    """
    stale = _find(
        client,
        index,
        [
            {"term": {"kind": KIND}},
            {"term": {"state": "sending"}},
            {"range": {"sending_at": {"lt": (now - lease).isoformat()}}},
        ],
    )
    settled = {"state": "sent", "unconfirmed": True, "updated_at": now.isoformat()}
    return len(_update(client, index, stale, settled, guarded=True))
