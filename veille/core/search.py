"""Searching articles the way an analyst does: words in any language, filters, best hits first.

In:  a query in the query language of veille/core/query.py (words, "phrases", AND, OR, NOT or -word,
     a | b, NEAR/n), optional language, source and time filters.
Out: :class:`Hit` records with a highlighted snippet, best match first; with ``collapse``, one
     per story cluster (Elasticsearch field collapsing on ``cluster_id``).

The query runs over the original title and text, the per-language copies (analysed with the
``veille_<lang>`` analyzers, so inflections match) and the translations; titles weigh more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

from veille.core.config import parse_duration
from veille.core.languages import LANGUAGES, PIVOT
from veille.core.query import to_elasticsearch

# Field → boost. Intervals queries take no wildcard field names: the translations are listed.
SEARCH_FIELDS: dict[str, float] = {
    "title": 3,
    **{f"title_{code}": 3 for code in LANGUAGES},
    **{f"translation.{code}.title": 2 for code in LANGUAGES},
    "description": 1,
    "text": 1,
    **{f"text_{code}": 1 for code in LANGUAGES},
    **{f"translation.{code}.text": 1 for code in LANGUAGES},
}
HIGHLIGHT_FIELDS = [*(f"text_{code}" for code in LANGUAGES), "translation.*.text", "text"]


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    title: str
    url: str
    language: str | None
    source: str
    published_at: str | None
    snippet: str
    first_seen_at: str | None = None
    translated_title: str | None = None
    cluster_id: str | None = None
    cluster_articles: int | None = None
    relevance: dict[str, Any] | None = None
    text: str | None = None  # only when asked for (``with_text``)


def merge_marks(fragment: str, start: str, end: str) -> str:
    """A highlighted fragment with words marked side by side under one mark: an ``intervals``
    query marks each word of a phrase on its own ("«police» «stations»" → "«police stations»")."""
    return fragment.replace(f"{end} {start}", " ")


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """``"7d"``/``"12h"`` before now, or an ISO date such as ``2025-03-01``."""
    now = now or datetime.now(UTC)
    if re.fullmatch(r"\s*\d+\s*[smhd]\s*", value):
        return now - parse_duration(value)
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(
            f"--since {value!r}: use a duration like 7d or a date like 2025-03-01"
        ) from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def build_query(
    text: str,
    language: str | None = None,
    since: datetime | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    filters: list[dict[str, Any]] = []
    if language:
        filters.append({"term": {"language": language}})
    if source:
        filters.append({"term": {"source.name": source}})
    if since:
        filters.append({"range": {"published_at": {"gte": since.isoformat()}}})
    return {"bool": {"must": [to_elasticsearch(text, SEARCH_FIELDS)], "filter": filters}}


def search(
    client: Elasticsearch,
    index: str,
    text: str,
    *,
    language: str | None = None,
    since: datetime | None = None,
    source: str | None = None,
    limit: int = 20,
    pivot: str = PIVOT,
    collapse: bool = False,
    with_text: bool = False,
) -> list[Hit]:
    """Best hits first; with ``collapse``, one hit per story cluster (its best article), with
    ``cluster_articles`` counting the cluster's articles that match; with ``with_text``, each
    hit carries its article's text (for explanations)."""
    response = client.search(
        index=index,
        query=build_query(text, language, since, source),
        size=limit,
        collapse={"field": "cluster_id", "inner_hits": {"name": "story", "size": 0}}
        if collapse
        else None,
        highlight={
            "fields": {field: {} for field in HIGHLIGHT_FIELDS},
            "fragment_size": 160,
            "number_of_fragments": 1,
            "pre_tags": ["«"],
            "post_tags": ["»"],
        },
        source_excludes=["text_*", "title_*"] if with_text else ["text", "text_*", "title_*"],
    )
    hits = []
    for hit in response["hits"]["hits"]:
        highlight = next(iter(hit.get("highlight", {}).values()), [""])
        highlight = [merge_marks(fragment, "«", "»") for fragment in highlight]
        snippet = highlight[0] if highlight else (hit["_source"].get("description") or "")
        hits.append(to_hit(hit, snippet, pivot, with_text))
    return hits


def to_hit(hit: dict[str, Any], snippet: str, pivot: str = PIVOT, with_text: bool = False) -> Hit:
    """A :class:`Hit` from an Elasticsearch hit on the articles index."""
    doc = hit["_source"]
    story = hit.get("inner_hits", {}).get("story", {}).get("hits", {}).get("total", {})
    return Hit(
        id=hit["_id"],
        score=round(hit["_score"] or 0.0, 3),
        title=doc.get("title", ""),
        url=doc.get("canonical_url", doc.get("url", "")),
        language=doc.get("language"),
        source=doc.get("source", {}).get("name", ""),
        published_at=doc.get("published_at"),
        snippet=snippet,
        first_seen_at=doc.get("first_seen_at"),
        translated_title=doc.get("translation", {}).get(pivot, {}).get("title"),
        cluster_id=doc.get("cluster_id"),
        cluster_articles=story.get("value"),
        relevance=doc.get("relevance") or None,
        text=doc.get("text") if with_text else None,
    )
