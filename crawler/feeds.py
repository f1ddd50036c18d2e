"""Reading a feed document: feedparser behind a check that no entity declaration can blow it up.

In:  a feed's bytes as they came (RSS 0.9x/1.0/2.0, Atom) and the response's Content-Type.
Out: :class:`FeedDocument`, the entries a crawl needs (link, title, summary, publication time),
     or a ``problem`` (``"<reason>: <detail>"``) when the document is skipped whole.

feedparser keeps the internal entities a document declares when their value looks harmless (no
``&`` in it), for its strict parser and for the loose one it falls back to when the strict one
gives up. expat stops a strict parse whose entities amplify the input too much, but the loose
parser expands them all: one 100,000-character entity referenced 10,000 times in a 150 KB feed
made a 1,000,000,000-character summary, 3 GB of memory and half a minute on the crawl's only
thread. :func:`entity_expansion` works out, from the same declarations feedparser keeps, how
many characters the expansion would add, and :func:`parse_feed` refuses a document whose
expansion is larger than the document itself (at least 64 KiB is always allowed) before
feedparser sees it. The HTML entities of old RSS 0.91 feeds are not declared in the document
and are not affected.

feedparser has other costly paths on hostile input (its HTML sanitizer's regular expressions
over unclosed comments take time in the square of the text). Those are bounded by running the
parse in a process with memory and CPU limits (:mod:`crawler.limits`, :mod:`crawler.sandbox`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser
from feedparser.encodings import convert_to_utf8
from feedparser.sanitizer import replace_doctype

# feedparser complaints about labels, not content: the entries are sound and are read.
BENIGN_FEED_PROBLEMS = (
    feedparser.CharacterEncodingOverride,
    feedparser.NonXMLContentType,
)
# Entity expansion always allowed, whatever the document's size.
MIN_EXPANSION_ALLOWED = 64 * 1024


class FeedRefused(ValueError):
    """The document declares entities whose expansion would outgrow it."""


@dataclass(frozen=True)
class FeedEntry:
    """What a crawl reads of one entry: its link (``None`` when it has no http(s) one)."""

    link: str | None
    title: str | None
    summary: str | None
    published: datetime | None


@dataclass(frozen=True)
class FeedDocument:
    """A parsed feed: its entries, or ``problem`` (``"<reason>: <detail>"``) when it is skipped."""

    entries: list[FeedEntry]
    problem: str | None = None


def entity_expansion(body: bytes, content_type: str = "") -> int:
    """Characters that expanding the document's own internal entities would add, counted on the
    declarations feedparser keeps (its ``replace_doctype``) after its own decoding."""
    data = convert_to_utf8({"content-type": content_type}, body, {"bozo": False})
    _, data, entities = replace_doctype(data)
    return sum(
        data.count(f"&{name};".encode()) * len(value.encode()) for name, value in entities.items()
    )


def parse_feed(body: bytes, content_type: str = "") -> Any:
    """feedparser's reading of ``body``; :class:`FeedRefused` when its entities would expand to
    more than its own size (at least :data:`MIN_EXPANSION_ALLOWED`)."""
    expansion = entity_expansion(body, content_type)
    allowed = max(len(body), MIN_EXPANSION_ALLOWED)
    if expansion > allowed:
        raise FeedRefused(
            f"its internal entities would expand to {expansion:,} characters, more than the "
            f"{allowed:,} allowed for a {len(body):,}-byte document (an entity bomb)"
        )
    # A stream, not the bytes: feedparser opens a *bytes* argument as a local file name if one
    # exists, so a hostile server could make it read files from this machine.
    return feedparser.parse(io.BytesIO(body), response_headers={"content-type": content_type})


def entry_time(entry: Any) -> datetime | None:
    """A feed entry's publication (or update) time in UTC."""
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    return datetime(*parsed[:6], tzinfo=UTC)


def _entry_link(entry: Any) -> str | None:
    link = entry.get("link")
    if not link:
        link = next((item.get("href") for item in entry.get("links", []) if item.get("href")), None)
    return link if link and link.startswith(("http://", "https://")) else None


def read_feed(body: bytes, content_type: str = "") -> FeedDocument:
    """Parse a feed document from its bytes; never raises, whatever the bytes.

    Reasons: ``malformed`` (not well-formed XML, truncated, undecodable, an entity bomb) and
    ``not_a_feed`` (empty, HTML, a sitemap: no RSS or Atom document).
    """
    try:
        parsed = parse_feed(body, content_type)
    except FeedRefused as exc:
        return FeedDocument([], f"malformed: {exc}")
    except Exception as exc:  # feedparser's own failures on hostile bytes must not stop a crawl
        return FeedDocument([], f"malformed: {exc.__class__.__name__}: {exc}")
    problem = parsed.get("bozo_exception")
    if parsed.bozo and not isinstance(problem, BENIGN_FEED_PROBLEMS):
        return FeedDocument([], f"malformed: {problem}")
    if not parsed.get("version"):
        return FeedDocument([], "not_a_feed: no RSS or Atom document in the response")
    entries = [
        FeedEntry(_entry_link(entry), entry.get("title"), entry.get("summary"), entry_time(entry))
        for entry in parsed.entries
    ]
    return FeedDocument(entries)
