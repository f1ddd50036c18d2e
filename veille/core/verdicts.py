"""Analyst verdicts: an article judged relevant or irrelevant, on the article and in a log.

In:  an article reference (a URL, in any spelling that led to the article, or its id) and a
     :class:`Verdict` (from ``veille review`` or a signed link clicked in an alert email).
Out: one document per verdict in ``<prefix>-verdicts`` and the article's ``verdict`` object
     (``label``, ``at``, ``note``, ``via``, ``by``) set by a partial update. Nothing is deleted: a
     later verdict replaces the article's ``verdict`` and the log keeps both.

An article judged irrelevant leaves the alerts (the matcher skips it and its pending
notifications are cancelled, both through :data:`IRRELEVANT`) and Kibana's default searches and
dashboards (their filter on ``verdict.label``). An article an edited topic no longer keeps
(``off_topic``, set by ``veille topics rescore``: :mod:`veille.ops.rescore`) leaves them the same
way, through :data:`OFF_TOPIC`, until an analyst judges it relevant: that verdict clears the
mark, and a later rescore leaves the article kept (the analyst outranks the rules).

A verdict from an email link is stored under ``_id = link-<nonce>`` with ``op_type=create``, so
two clicks of one link, however close together, store one verdict: the other gets
:class:`LinkAlreadyUsed` and changes nothing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from elastic_transport import TransportError
from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError

from veille.core.article import article_id
from veille.core.es import IndexNames, setup_indices
from veille.core.feedback import LABELS, LinkClaim
from veille.core.urls import canonicalize

logger = logging.getLogger(__name__)

VIA = ("cli", "email")
IRRELEVANT = {"term": {"verdict.label": "irrelevant"}}
OFF_TOPIC = {"exists": {"field": "off_topic.at"}}
NOTE_CHARS = 2000
_ID = re.compile(r"[0-9a-f]{40}")
_SOURCE = ["title", "canonical_url", "url", "site_name", "source.name", "published_at", "verdict"]
_CHUNK = 1000


class ArticleNotFound(LookupError):
    """No indexed article (or more than one) answers to the reference."""


class LinkAlreadyUsed(Exception):
    """The link's verdict was recorded before; ``previous`` is that verdict's document."""

    def __init__(self, previous: dict[str, Any] | None) -> None:
        self.previous = previous or {}
        super().__init__(f"link already used at {self.previous.get('at', '?')}")


@dataclass(frozen=True)
class ArticleRef:
    """An indexed article as a verdict needs it: where it is and what to show of it."""

    id: str
    index: str
    title: str
    url: str
    source: str
    published_at: str | None
    verdict: dict[str, Any] | None

    @classmethod
    def from_hit(cls, hit: dict[str, Any]) -> ArticleRef:
        doc = hit["_source"]
        return cls(
            id=hit["_id"],
            index=hit["_index"],
            title=" ".join((doc.get("title") or "").split()),
            url=doc.get("canonical_url") or doc.get("url") or "",
            source=doc.get("site_name") or doc.get("source", {}).get("name") or "",
            published_at=doc.get("published_at"),
            verdict=doc.get("verdict"),
        )


@dataclass(frozen=True)
class Verdict:
    label: str
    at: datetime
    via: str
    note: str | None = None
    by: str | None = None

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"verdict {self.label!r} is not one of {', '.join(LABELS)}")
        if self.via not in VIA:
            raise ValueError(f"via {self.via!r} is not one of {', '.join(VIA)}")

    def document(self) -> dict[str, Any]:
        """The article's ``verdict`` object. Every key is written, null included, because a
        partial update merges objects: an earlier verdict's note must not survive a new one."""
        note = (self.note or "").strip()[:NOTE_CHARS] or None
        return {"label": self.label, "at": self.at.isoformat(), "note": note, "via": self.via,
                "by": self.by}  # fmt: skip


def article_query(reference: str) -> dict[str, Any]:
    """The query finding an article by id or by any URL that led to it; ValueError otherwise."""
    text = reference.strip()
    if _ID.fullmatch(text.lower()):
        return {"ids": {"values": [text.lower()]}}
    parts = urlsplit(text)
    if parts.scheme.lower() in ("http", "https") and parts.hostname:
        canonical = canonicalize(text)
        should = [
            {"ids": {"values": [article_id(canonical)]}},
            {"term": {"canonical_url": canonical}},
            {"terms": {"urls": sorted({canonical, text})}},
            {"term": {"url": text}},
        ]
        return {"bool": {"should": should, "minimum_should_match": 1}}
    raise ValueError(
        f"{reference!r} is neither an article's address (http:// or https://…) nor its id "
        "(40 hexadecimal characters, as `veille search --json` prints)"
    )


def find_article(client: Elasticsearch, index: str, reference: str) -> ArticleRef:
    """The one article ``reference`` names; :class:`ArticleNotFound` for none or several."""
    query = article_query(reference)
    hits = client.search(index=index, query=query, size=5, source=_SOURCE)["hits"]["hits"]
    if not hits:
        kind = "id" if "ids" in query else "address"
        raise ArticleNotFound(f"no indexed article has the {kind} {reference.strip()}")
    if len(hits) > 1:
        ids = ", ".join(hit["_id"] for hit in hits)
        raise ArticleNotFound(
            f"{reference.strip()} led to {len(hits)} articles ({ids}): name one by its id"
        )
    return ArticleRef.from_hit(hits[0])


def ensure_verdicts_index(client: Elasticsearch, prefix: str) -> IndexNames:
    """The index names, after installing the templates if the verdicts index is missing."""
    names = IndexNames(prefix)
    if not client.indices.exists_alias(name=names.verdicts):
        setup_indices(client, prefix)
    return names


def link_event_id(nonce: str) -> str:
    return f"link-{nonce}"


def used_link(client: Elasticsearch, index: str, nonce: str) -> dict[str, Any] | None:
    """The verdict a link recorded, or None if it was never used."""
    try:
        return client.get(index=index, id=link_event_id(nonce))["_source"]
    except NotFoundError:
        return None


def record_verdict(
    client: Elasticsearch,
    names: IndexNames,
    article: ArticleRef,
    verdict: Verdict,
    link: LinkClaim | None = None,
) -> None:
    """Log the verdict, then set it on the article; a link's verdict is recorded at most once.

    If the article cannot be updated, the logged verdict is taken back (so a link can be tried
    again) and the error propagates.
    """
    event = {
        "article_id": article.id,
        "canonical_url": article.url,
        "title": article.title,
        **verdict.document(),
    }
    if link is not None:
        event["link_expires_at"] = link.expires_at.isoformat()
        try:
            stored = client.create(
                index=names.verdicts, id=link_event_id(link.nonce), document=event,
                refresh="wait_for",
            )  # fmt: skip
        except ConflictError:
            raise LinkAlreadyUsed(used_link(client, names.verdicts, link.nonce)) from None
    else:
        stored = client.index(index=names.verdicts, document=event, refresh="wait_for")
    change: dict[str, Any] = {"verdict": verdict.document()}
    if verdict.label == "relevant":
        change["off_topic"] = None
    try:
        client.update(
            index=article.index, id=article.id, doc=change, refresh="wait_for",
        )  # fmt: skip
    except BaseException:
        try:
            client.delete(index=stored["_index"], id=stored["_id"], refresh="wait_for")
        except (ApiError, TransportError) as exc:
            logger.warning("verdict %s stays logged but not on the article: %s", stored["_id"], exc)
        raise


def judged_irrelevant(client: Elasticsearch, index: str, ids: set[str]) -> set[str]:
    """Those of ``ids`` whose article is judged irrelevant."""
    return _those(client, index, ids, IRRELEVANT)


def marked_off_topic(client: Elasticsearch, index: str, ids: set[str]) -> set[str]:
    """Those of ``ids`` whose article an edited topic no longer keeps."""
    return _those(client, index, ids, OFF_TOPIC)


def _those(client: Elasticsearch, index: str, ids: set[str], query: dict[str, Any]) -> set[str]:
    wanted = sorted(ids)
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        response = client.search(
            index=index,
            query={"bool": {"filter": [{"ids": {"values": chunk}}, query]}},
            size=len(chunk),
            source=False,
        )
        found.update(hit["_id"] for hit in response["hits"]["hits"])
    return found
