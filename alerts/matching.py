"""Matching: articles indexed since the last run, percolated against the rules, logged.

In:  the articles index, the synced percolator index, the :class:`alerts.rules.RuleSet`.
Out: pending entries in the notification log (one per rule, recipient and story) and a new
     checkpoint, stored in the notification index as the document ``checkpoint:matcher``.

Articles an analyst judged irrelevant, and those an edited topic no longer keeps, are not
matched (see :mod:`veille.core.verdicts`).

An article is new when first seen, or when ``veille topics rescore`` took it from the rejected
articles (``promoted_at``; its ``first_seen_at`` stays the day it was crawled). The checkpoint
is the newest of these times seen. Each run reads articles from the checkpoint
minus :data:`OVERLAP`, so an article indexed late (a spooled batch replayed, a slow bulk
request) is still matched; the log's deterministic ids make the overlap free of duplicates.
The first run looks back :data:`FIRST_LOOKBACK`. The checkpoint moves only after every match
of the run is stored, so a crash means work is repeated, never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError
from elasticsearch.helpers import scan

from alerts import notifications
from alerts.percolator import percolate
from alerts.rules import RuleSet
from veille.core.es import IndexNames
from veille.core.verdicts import IRRELEVANT, OFF_TOPIC

CHECKPOINT_ID = "checkpoint:matcher"
OVERLAP = timedelta(hours=2)
FIRST_LOOKBACK = timedelta(days=1)
BATCH = 100


@dataclass(frozen=True)
class MatchReport:
    articles: int
    matches: int
    created: int
    already_notified: int
    checkpoint: datetime | None


def read_checkpoint(client: Elasticsearch, index: str) -> datetime | None:
    try:
        doc = client.get(index=index, id=CHECKPOINT_ID)
    except NotFoundError:
        return None
    return datetime.fromisoformat(doc["_source"]["checkpoint_at"])


def _write_checkpoint(client: Elasticsearch, index: str, at: datetime, now: datetime) -> None:
    client.index(
        index=index,
        id=CHECKPOINT_ID,
        document={
            "kind": "checkpoint",
            "checkpoint_at": at.isoformat(),
            "updated_at": now.isoformat(),
        },
        refresh="wait_for",
    )


def _batches(
    client: Elasticsearch, index: str, since: datetime, size: int
) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for hit in scan(
        client,
        index=index,
        query={
            "query": {
                "bool": {
                    "should": [
                        {"range": {"first_seen_at": {"gte": since.isoformat()}}},
                        {"range": {"promoted_at": {"gte": since.isoformat()}}},
                    ],
                    "minimum_should_match": 1,
                    "must_not": [IRRELEVANT, OFF_TOPIC],
                }
            }
        },
        size=size,
    ):
        batch.append(hit)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def match_new_articles(
    client: Elasticsearch, names: IndexNames, rules: RuleSet, now: datetime, batch: int = BATCH
) -> MatchReport:
    """Percolate the articles seen since the checkpoint and log a notification per match."""
    checkpoint = read_checkpoint(client, names.notifications)
    since = checkpoint - OVERLAP if checkpoint else now - FIRST_LOOKBACK
    client.indices.refresh(index=names.articles)
    articles = matches = created = existing = 0
    newest = checkpoint
    for hits in _batches(client, names.articles, since, batch):
        articles += len(hits)
        entries: list[dict[str, Any]] = []
        for name, slot in percolate(client, names.alerts, [hit["_source"] for hit in hits]):
            rule = rules.get(name)
            if rule is None:
                continue
            matches += 1
            hit = hits[slot]
            entries += notifications.new_notifications(rule, hit["_id"], hit["_source"], now)
        done, seen = notifications.record(client, names.notifications, entries)
        created += done
        existing += seen
        for hit in hits:
            times = (hit["_source"].get(key) for key in ("first_seen_at", "promoted_at"))
            seen_at = max(datetime.fromisoformat(value) for value in times if value)
            newest = max(newest, seen_at) if newest else seen_at
    if newest and newest != checkpoint:
        _write_checkpoint(client, names.notifications, newest, now)
    return MatchReport(articles, matches, created, existing, newest)
