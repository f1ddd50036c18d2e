"""One pass of the alert service: what ``veille alerts send`` and the scheduler run.

In:  an Elasticsearch client, the index prefix, the validated rules, the time.
Out: a :class:`RunReport`: the percolator index synced with the rules, the articles seen since
     the checkpoint matched into the notification log, and every due email sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from elasticsearch import Elasticsearch

from alerts.delivery import DeliveryReport, send_due
from alerts.matching import MatchReport, match_new_articles
from alerts.percolator import SyncReport, sync_rules
from alerts.rules import RuleSet
from veille.core.es import IndexNames, setup_indices


@dataclass(frozen=True)
class RunReport:
    rules: SyncReport
    matching: MatchReport
    delivery: DeliveryReport


def ensure_indices(client: Elasticsearch, prefix: str) -> IndexNames:
    """The index names, after installing the templates if an alert index is missing."""
    names = IndexNames(prefix)
    if not all(
        client.indices.exists_alias(name=alias)
        for alias in (names.articles, names.alerts, names.notifications)
    ):
        setup_indices(client, prefix)
    return names


def run_alerts(
    client: Elasticsearch, prefix: str, rules: RuleSet, now: datetime, *, retry_now: bool = False
) -> RunReport:
    """Sync the rules, match new articles, send what is due."""
    names = ensure_indices(client, prefix)
    synced = sync_rules(client, names.alerts, rules, now)
    matched = match_new_articles(client, names, rules, now)
    return RunReport(synced, matched, send_due(client, names, rules, now, retry_now=retry_now))
