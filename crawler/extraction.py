"""Article extraction: an HTML page in, the article's parts out (or ``None`` with a reason).

In:  the page bytes or text, its URL, and options (:class:`ExtractionOptions`).
Out: :class:`Extracted` with title, text, authors, publication time, canonical URL, description,
     site name and image; or :class:`NotAnArticle` saying why the page was rejected.

The page is parsed once; the metadata is read from that tree, then trafilatura extracts the
body from it. Publication time comes first from the page's own metadata
(``article:published_time``, JSON-LD ``datePublished``, ``<time datetime>``) because those carry
the hour and zone that trafilatura's date-only value lacks. The other fields are what
``trafilatura.extract_metadata`` finds, less the work whose result is not stored
(:func:`_page_metadata`). JSON-LD blocks over :data:`JSON_LD_MAX_CHARS`, or nested deeper
than Python's recursion limit, are not read.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin

import lxml.html
import trafilatura
from htmldate import find_date
from lxml import etree
from lxml.etree import ParserError
from trafilatura.metadata import (
    META_URL,
    examine_meta,
    extract_author,
    extract_meta_json,
    extract_sitename,
    extract_title,
    extract_url,
)
from trafilatura.settings import Document, set_date_params

_PUBLISHED_META = (
    "article:published_time",
    "og:article:published_time",
    "datePublished",
    "date",
    "dc.date",
    "dc.date.issued",
    "pubdate",
    "publish-date",
    "sailthru.date",
)


# JSON-LD blocks longer than this are not read: an article's is a few kilobytes, and a parsed
# megabyte of JSON can take 30 MB of memory.
JSON_LD_MAX_CHARS = 1 << 20

# lxml.html's own parser picks each element's class (forms, inputs, labels...) in a Python
# callback, run every time an element is touched: an eighth of the extraction time on a news
# page. Neither Veille nor trafilatura uses those classes, so every element here is a plain
# HtmlElement, chosen in C. The parser's other options are lxml.html's defaults.
_PARSER = lxml.html.HTMLParser()
_PARSER.set_element_class_lookup(
    etree.ElementDefaultClassLookup(
        element=lxml.html.HtmlElement,
        comment=lxml.html.HtmlComment,
        pi=lxml.html.HtmlProcessingInstruction,
        entity=lxml.html.HtmlEntity,
    )
)


@dataclass(frozen=True)
class ExtractionOptions:
    """How strict extraction is. ``min_words`` separates articles from index and contact pages."""

    min_words: int = 80
    favor_precision: bool = False
    # Characters of the text read for language detection (crawler/extraction_worker.py).
    language_sample: int = 600


@dataclass(frozen=True)
class Extracted:
    title: str
    text: str
    canonical_url: str | None = None
    description: str | None = None
    authors: list[str] = field(default_factory=list)
    published_at: datetime | None = None
    site_name: str | None = None
    image: str | None = None
    word_count: int = 0
    # Filled in by crawler/extraction_worker.py (title and text then tidied); None otherwise.
    content_hash: str | None = None
    language: str | None = None
    language_confidence: float | None = None


@dataclass(frozen=True)
class NotAnArticle:
    reason: str


def parse_datetime(value: str | None) -> datetime | None:
    """An ISO 8601 date or date-time as an aware datetime (UTC when no zone), else ``None``."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text[:10])
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json_ld_articles(tree: lxml.html.HtmlElement) -> list[dict]:
    found: list[dict] = []
    for script in tree.xpath('//script[@type="application/ld+json"]/text()'):
        if len(script) > JSON_LD_MAX_CHARS:
            continue
        try:
            data = json.loads(script)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python recurses
            continue
        stack = data if isinstance(data, list) else [data]
        while stack:
            item = stack.pop()
            if not isinstance(item, dict):
                continue
            stack.extend(item.get("@graph", []))
            kind = item.get("@type")
            kinds = kind if isinstance(kind, list) else [kind]
            if any(isinstance(k, str) and k.endswith("Article") for k in kinds):
                found.append(item)
    return found


def _metadata(tree: lxml.html.HtmlElement, url: str) -> dict:
    """Canonical URL, publication time and authors from the page head, before trafilatura."""
    meta: dict = {}
    canonical = tree.xpath('//link[@rel="canonical"]/@href')
    if canonical and canonical[0].strip():
        meta["canonical_url"] = urljoin(url, canonical[0].strip())
    for name in _PUBLISHED_META:
        values = tree.xpath(f'//meta[@property="{name}" or @name="{name}" or @itemprop="{name}"]')
        for element in values:
            when = parse_datetime(element.get("content"))
            if when:
                meta["published_at"] = when
                break
        if "published_at" in meta:
            break
    ld = _json_ld_articles(tree)
    if "published_at" not in meta:
        for item in ld:
            when = parse_datetime(str(item.get("datePublished") or ""))
            if when:
                meta["published_at"] = when
                break
    if "published_at" not in meta:
        for value in tree.xpath("//article//time/@datetime | //time[@pubdate]/@datetime"):
            when = parse_datetime(value)
            if when:
                meta["published_at"] = when
                break
    authors: list[str] = []
    for item in ld:
        people = item.get("author") or []
        for person in people if isinstance(people, list) else [people]:
            name = person.get("name") if isinstance(person, dict) else person
            if isinstance(name, str) and name.strip() and name.strip() not in authors:
                authors.append(name.strip())
    if authors:
        meta["authors"] = authors
    return meta


def _page_metadata(tree: lxml.html.HtmlElement, url: str, meta: dict) -> Document:
    """Title, description, site name, image, author and date as ``trafilatura.extract_metadata``
    finds them, with the same steps in the same order, less the work whose result is dropped.

    ``extract_metadata`` also looks for the licence, categories and tags, which Veille does not
    store, and always runs htmldate and the byline search (which copies the whole tree): here
    the date is looked for only when ``meta`` (:func:`_metadata`) has no publication time, and
    the byline only when neither the head nor JSON-LD names an author. On pages with complete
    metadata that was a third of trafilatura's time per page.
    """
    document = examine_meta(tree)
    if document.author and " " not in document.author:
        document.author = None  # trafilatura's own rule: a single word is rarely a byline
    with contextlib.suppress(Exception):  # trafilatura's JSON-LD reader trips on some scripts
        document = extract_meta_json(tree, document)
    if not document.title:
        document.title = extract_title(tree)
    if not document.author and "authors" not in meta:
        document.author = extract_author(tree)
    page_url = document.url or extract_url(tree, url)
    if "published_at" not in meta:
        document.date = find_date(tree, **set_date_params(True), url=page_url)
    if not document.sitename:
        document.sitename = extract_sitename(tree)
    if document.sitename:
        document.sitename = document.sitename.lstrip("@")
        if (
            document.sitename
            and "." not in document.sitename
            and not document.sitename[0].isupper()
        ):
            document.sitename = document.sitename.title()
    elif page_url and (match := META_URL.match(page_url)):
        document.sitename = match[1]
    document.clean_and_trim()
    return document


# Control characters other than tab and line breaks: text pages have almost none.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def looks_binary(body: bytes | str, sample: int = 4096) -> bool:
    """Whether a response labelled as a page is really an image, a PDF, an archive or such."""
    head = body[:sample]
    text = head.decode("latin-1") if isinstance(head, bytes) else head
    return len(_CONTROL.findall(text)) > max(8, len(text) // 50)


def extract_article(
    body: bytes | str, url: str, options: ExtractionOptions | None = None
) -> Extracted | NotAnArticle:
    """Extract one article page. Never raises on bad HTML: returns :class:`NotAnArticle`.

    Reasons: ``empty_page``, ``binary_content`` (bytes that are not text, whatever the label),
    ``unparsable_html``, ``extraction_failed`` (the extractor itself broke on the markup),
    ``no_text``, ``no_title``, ``too_short``, ``bad_encoding`` (the text is full of characters
    the declared encoding could not decode).
    """
    options = options or ExtractionOptions()
    if not body or not body.strip():
        return NotAnArticle("empty_page")
    if looks_binary(body):
        return NotAnArticle("binary_content")
    try:
        tree = lxml.html.fromstring(body, parser=_PARSER)
    except (ParserError, ValueError) as exc:
        return NotAnArticle(f"unparsable_html: {exc}")
    meta = _metadata(tree, url)
    try:
        page = _page_metadata(tree, url, meta)
        document = trafilatura.bare_extraction(
            tree,
            url=url,
            include_comments=False,
            favor_precision=options.favor_precision,
        )
    except MemoryError:  # past the worker's memory limit: crawler/limits.py refuses the page
        raise
    except Exception as exc:  # trafilatura and htmldate trip on some hostile markup (<svg> alone)
        return NotAnArticle(f"extraction_failed: {exc.__class__.__name__}: {exc}")
    if document is None or not (document.text or "").strip():
        return NotAnArticle("no_text")
    title = (page.title or "").strip()
    text = document.text.strip()
    if title and text.startswith(title):
        text = text[len(title) :].lstrip()
    words = len(text.split())
    if not title:
        return NotAnArticle("no_title")
    if words < options.min_words:
        return NotAnArticle("too_short")
    undecoded = (title + text).count("\ufffd")
    if undecoded > len(text) // 200:
        return NotAnArticle(f"bad_encoding: {undecoded} characters could not be decoded")
    authors = meta.get("authors") or [
        a.strip() for a in (page.author or "").split(";") if a.strip()
    ]
    return Extracted(
        title=title,
        text=text,
        canonical_url=meta.get("canonical_url"),
        description=(page.description or None),
        authors=authors,
        published_at=meta.get("published_at") or parse_datetime(page.date),
        site_name=page.sitename or None,
        image=page.image or None,
        word_count=words,
    )
