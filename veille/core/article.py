"""The Article: the one schema shared by spiders, pipeline stages, the index mapping and alerts.

Spiders create an :class:`Article` from an extracted page; each pipeline stage fills in its
fields; the index stage stores :meth:`Article.to_document`. ``tests/test_schema.py`` checks
that every field here is mapped in ``index_config/articles.json``, so a field cannot be renamed
in one place only.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from veille.core.languages import LANGUAGES

TRANSLATION_STATUSES = ("done", "pending", "not_needed", "failed")


def utcnow() -> datetime:
    return datetime.now(UTC)


def article_id(canonical_url: str) -> str:
    """The Elasticsearch ``_id`` of an article: stable for its canonical URL."""
    return hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()[:40]


@dataclass
class SourceRef:
    """Which configured source an article came from."""

    name: str
    domain: str
    country: str | None = None
    type: str = "feed"


@dataclass
class Article:
    """A news article as Veille stores it. Original text is never overwritten."""

    url: str
    canonical_url: str
    source: SourceRef
    title: str
    text: str
    discovered_via: dict[str, str] = field(default_factory=dict)
    urls: list[str] = field(default_factory=list)
    description: str | None = None
    authors: list[str] = field(default_factory=list)
    site_name: str | None = None
    image: str | None = None
    published_at: datetime | None = None
    first_seen_at: datetime = field(default_factory=utcnow)
    language: str | None = None
    language_confidence: float | None = None
    topics: list[str] = field(default_factory=list)
    # score, topic, rule, rules, matches: why the article is on topic (veille/core/topics.py)
    relevance: dict[str, Any] = field(default_factory=dict)
    content_hash: str | None = None
    word_count: int = 0
    translation: dict[str, dict[str, str]] = field(default_factory=dict)
    translation_status: str | None = None
    translation_model: str | None = None
    translation_confidence: float | None = None
    translation_error: str | None = None
    cluster_id: str | None = None
    duplicate_of: str | None = None
    minhash: dict[str, Any] = field(default_factory=dict)
    minhash_pivot: dict[str, Any] = field(default_factory=dict)
    countries: list[str] = field(default_factory=list)
    places: list[dict[str, Any]] = field(default_factory=list)
    authorities: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    action_evidence: list[dict[str, str]] = field(default_factory=list)
    stations: list[dict[str, Any]] = field(default_factory=list)
    new_stations: list[str] = field(default_factory=list)
    stations_status: str | None = None
    # when `veille topics rescore` took it from the rejected articles (veille/ops/rescore.py)
    promoted_at: datetime | None = None
    # The extraction step's contract (crawler.extraction_worker.extract_page): True when it
    # already tidied ``title`` and ``text``, set ``content_hash`` and detected ``language``, so
    # the normalize and language stages keep what it found. Not stored.
    text_prepared: bool = field(default=False, metadata={"stored": False})

    @property
    def id(self) -> str:
        return article_id(self.canonical_url)

    def to_document(self) -> dict[str, Any]:
        """The Elasticsearch document: dates as ISO 8601, per-language analysed copies added.

        ``title_<lang>``/``text_<lang>`` repeat the original under the field whose analyzer
        matches the article's language, so "commissariat" finds "commissariats".
        """
        # Field by field, not dataclasses.asdict: that deep-copies every list and dictionary,
        # which cost more than the rest of the index stage; the document is sent, not kept.
        doc = {name: getattr(self, name) for name in _FIELD_NAMES}
        doc["source"] = asdict(self.source)
        for key in _DATE_FIELDS:
            if doc[key] is not None:
                doc[key] = doc[key].isoformat()
        if self.language in LANGUAGES:
            doc[f"title_{self.language}"] = self.title
            doc[f"text_{self.language}"] = self.text
        return {key: value for key, value in doc.items() if value is not None}

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Article:
        """The Article a document of :meth:`to_document` was made from (fields it lacks keep
        their defaults; the per-language copies and anything unknown are left out)."""
        values = {name: document[name] for name in _FIELD_NAMES if name in document}
        values["source"] = SourceRef(**document["source"])
        for key in _DATE_FIELDS:
            if values.get(key) is not None:
                values[key] = datetime.fromisoformat(values[key])
        return cls(**values)


STORED_FIELDS = tuple(f.name for f in fields(Article) if f.metadata.get("stored", True))
_FIELD_NAMES = STORED_FIELDS
_DATE_FIELDS = ("published_at", "first_seen_at", "promoted_at")
