"""Rejected articles: those the relevance stage dropped as off topic, kept a while, so that an
edited topic can apply to past weeks (``veille topics eval --index``, ``veille topics rescore``).

In:  an Article the relevance stage dropped, with the rule it came closest to.
Out: a document in ``<prefix>-rejected`` under the article's own ``_id``: the article as the
     relevance stage saw it (:data:`FIELDS`: addresses, source, title, text, language, dates,
     content hash; enough to judge it again and, if an edit keeps it, to run the rest of the
     pipeline), ``rejected_at``, ``closest`` (``topic``, ``rule``, ``closeness`` from 0 to 1:
     how much of that rule the article holds) and, once ``veille topics rescore`` settled it,
     ``promoted`` (``at``, ``outcome``). Documents are written with ``create``: an article dropped
     again by a later crawl keeps its first record, and is pruned :func:`keep_for` after it.

Documents Elasticsearch cannot take wait in ``<data>/rejected/spool/`` (:func:`spool_root`), in
the spool format of :mod:`veille.core.spool`, and are replayed as the articles' spool is: when a
crawl opens and by ``veille spool replay``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from veille.core.article import Article, utcnow
from veille.core.config import ConfigError, parse_duration
from veille.core.es import delete_matching
from veille.core.spool import ReplayReport, replay
from veille.core.topics import RuleResult

# What the article holds when the relevance stage judges it: every stage before it filled these.
FIELDS = (
    "url", "canonical_url", "urls", "source", "discovered_via", "title", "text", "description",
    "authors", "site_name", "image", "published_at", "first_seen_at", "language",
    "language_confidence", "content_hash", "word_count",
)  # fmt: skip
KEEP_SETTING = "VEILLE_REJECTED_KEEP"
PROMOTED = {"exists": {"field": "promoted.at"}}


def keep_for(value: str | None) -> timedelta:
    """``VEILLE_REJECTED_KEEP`` as a duration; ``0`` keeps no rejected article."""
    text = str(value or "").strip()
    if text == "0":
        return timedelta(0)
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(
            "(environment) or crawler/settings.py", KEEP_SETTING, str(exc),
            "use a duration such as 30d, or 0 to keep no rejected article",
        ) from exc  # fmt: skip


def rejected_document(
    article: Article, closest: RuleResult | None, now: datetime | None = None
) -> dict[str, Any]:
    """The ``<prefix>-rejected`` document of a dropped article, with its ``_id``."""
    document = article.to_document()
    kept = {name: document[name] for name in FIELDS if name in document}
    kept["rejected_at"] = (now or utcnow()).isoformat()
    if closest is not None:
        kept["closest"] = {
            "topic": closest.topic,
            "rule": closest.rule,
            "closeness": round(closest.closeness, 3),
        }
    return {"_id": article.id, **kept}


def spool_root(data_dir: Path) -> Path:
    """The data folder of the rejected articles' spool: its files are in ``<this>/spool/``."""
    return data_dir / "rejected"


def replay_rejected(client: Elasticsearch, index: str, data_dir: Path) -> ReplayReport:
    """Send the rejected articles waiting on disk to ``index``, oldest first."""
    return replay(client, index, spool_root(data_dir))


def prune_rejected(client: Elasticsearch, index: str, keep: timedelta) -> int:
    """Delete the records of articles rejected more than ``keep`` ago; returns how many."""
    cutoff = (utcnow() - keep).isoformat()
    return delete_matching(client, index, {"range": {"rejected_at": {"lt": cutoff}}})
