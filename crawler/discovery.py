"""Discovery: search queries built from a topic, search-endpoint URLs, and what search results,
news sitemaps and feed entries say before any article page is fetched.

In:  topics (per-language rules), a search source's endpoint URL, language and country;
     the raw bodies of GDELT DOC 2.0 ArtList JSON, news-search RSS (Google News, Bing News) and
     XML sitemaps; feed or sitemap entries' titles and summaries.
Out: query strings and request URLs per language; :class:`Found` search results whose wrapper
     links (Google News, Bing News) are resolved to the publisher's URL when the link itself
     carries it; :class:`Sitemap` entries with their dates; :class:`EntryFilter`, the cheap
     judgement of an entry from its title and summary.

Which search engine a source talks to is read from its endpoint's path, so an endpoint can be
moved (a proxy, a test server) without changing its kind:
``/api/v2/doc/doc`` is GDELT, ``/rss/search`` is Google News, ``/news/search`` is Bing News.
Parameters already in the configured URL (``hl``, ``gl``, ``ceid``, ``maxrecords``,
``timespan``, ``setlang``, ``cc``, …) are kept; the rest is filled in from the source.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from lxml import etree

from crawler.feeds import entry_time, parse_feed
from veille.core.config import Topic
from veille.core.languages import LANGUAGES, language_of
from veille.core.query import AnyOf, Group, Near, Node, Term
from veille.core.textmatch import Pattern, StemIndex
from veille.core.topics import TopicJudge

_ENGINE_PATHS = {
    "/api/v2/doc/doc": "gdelt",
    "/rss/search": "google-news",
    "/news/search": "bing-news",
}


class DiscoveryError(ValueError):
    """A search endpoint or sitemap answered with something that cannot be read."""


# --- Queries -------------------------------------------------------------------------------


def search_terms(topics: Iterable[Topic], language: str) -> list[str]:
    """The phrases searched for in ``language``, from the language's rules and then
    ``any_language``, in file order, each once (forms with the same stems once): the words and
    phrases of every rule that decides on its own (a word, a phrase, or an OR of them), and the
    phrases of a NEAR whose other side is a group (``"transnational repression" NEAR/12
    @china``: the phrase is what the rule is about, the group its context). The rest of the
    rules, and the context, are checked on the articles found: searched alone, "China" would
    bring back every China story."""
    chosen: dict[tuple, str] = {}
    for topic in topics:
        per_language = topic.languages.get(language)  # type: ignore[call-overload]
        rules = [(language, rule) for rule in per_language.rules.values()] if per_language else []
        rules += [("any", rule) for rule in topic.any_language.values()]
        for key, rule in rules:
            for term in _searchable_terms(topic.rule_query(key, rule)):
                chosen.setdefault(Pattern.of(term.text, language).key, term.text)
    return list(chosen.values())


def _searchable_terms(node: Node) -> list[Term]:
    """The terms of a rule an engine can ask for (see :func:`search_terms`)."""
    if isinstance(node, Near) and (node.labels[0] is None) != (node.labels[1] is None):
        side = node.left if node.labels[0] is None else node.right
        return [term for term in side if len(term.text.split()) > 1]
    return _standalone_terms(node)


def _standalone_terms(node: Node) -> list[Term]:
    """The terms of a query that matches on any one of them alone, else nothing."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Group):
        return _standalone_terms(node.child)
    if isinstance(node, AnyOf):
        parts = [_standalone_terms(child) for child in node.children]
        return [term for part in parts for term in part] if all(parts) else []
    return []


def quote_phrase(term: str) -> str:
    """A term as an exact phrase for a search engine: in double quotes, inner quotes dropped."""
    return '"' + " ".join(term.replace('"', " ").split()) + '"'


def search_queries(topics: Iterable[Topic], language: str, terms_per_query: int = 8) -> list[str]:
    """Queries for ``language``: the topics' search terms as quoted phrases joined by ``OR``,
    at most ``terms_per_query`` phrases per query (engines cap a query's length)."""
    terms = [quote_phrase(t) for t in search_terms(topics, language)]
    size = max(1, terms_per_query)
    return [" OR ".join(terms[i : i + size]) for i in range(0, len(terms), size)]


# --- Search endpoint URLs ------------------------------------------------------------------


def engine_of(url: str) -> str | None:
    """The search engine an endpoint URL speaks to (see the module docstring), or ``None``."""
    path = urlsplit(url).path.rstrip("/")
    return next((engine for end, engine in _ENGINE_PATHS.items() if path.endswith(end)), None)


def gdelt_timespan(span: timedelta) -> str:
    """A duration in GDELT's units (``15min`` at least, ``h``, ``d``); GDELT's ``m`` is months."""
    minutes = max(15, math.ceil(span.total_seconds() / 60))
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}min"


def google_when(span: timedelta) -> str:
    """A duration for Google News's ``when:`` operator: whole hours below two days, else days."""
    hours = max(1, math.ceil(span.total_seconds() / 3600))
    return f"{hours}h" if hours < 48 else f"{math.ceil(hours / 24)}d"


def google_edition(language: str, country: str | None) -> dict[str, str]:
    """Google News ``hl``/``gl``/``ceid`` for a language and country (``fr`` + ``CA`` →
    ``fr-CA``/``CA``/``CA:fr``; a language with an ``hl`` of its own abroad, such as Spanish's
    ``es-419``, gets it outside its home edition). The country defaults to the language's
    ``google_country`` in veille/core/languages.py."""
    entry = language_of(language)
    gl = (country or entry.google_country).upper()
    if entry.google_hl_abroad and gl != entry.google_country:
        return {"hl": entry.google_hl_abroad, "gl": gl, "ceid": f"{gl}:{entry.google_hl_abroad}"}
    if entry.google_hl_regional or gl != entry.google_country:
        return {"hl": f"{language}-{gl}", "gl": gl, "ceid": f"{gl}:{language}"}
    return {"hl": language, "gl": gl, "ceid": f"{gl}:{language}"}


def _with_params(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode(params, safe=":")))


def search_url(
    endpoint: str, query: str, language: str, country: str | None, timespan: timedelta
) -> str:
    """The request URL asking ``endpoint`` for ``query`` in ``language``.

    GDELT: ``mode=ArtList``, ``format=json``, ``sort=DateDesc``, ``maxrecords=250``, the query
    with ``sourcelang:<language>``, ``timespan``. Google News: ``q`` with ``when:<span>``, the
    edition's ``hl``/``gl``/``ceid``. Bing News: ``q``, ``format=rss``, ``setlang``, ``cc``.
    Values already in ``endpoint`` win over these defaults (the query itself always comes
    from the topic).
    """
    engine = engine_of(endpoint)
    given = dict(parse_qsl(urlsplit(endpoint).query, keep_blank_values=True))
    if engine == "gdelt":
        scoped = f"({query})" if " OR " in query else query
        defaults = {"mode": "ArtList", "format": "json", "sort": "DateDesc", "maxrecords": "250",
                    "timespan": gdelt_timespan(timespan)}  # fmt: skip
        sourcelang = language_of(language).gdelt
        params = {**defaults, **given, "query": f"{scoped} sourcelang:{sourcelang}"}
    elif engine == "google-news":
        params = {**google_edition(language, country), **given}
        params["q"] = f"{query} when:{google_when(timespan)}"
    elif engine == "bing-news":
        defaults = {"format": "rss", "setlang": language}
        if country:
            defaults["cc"] = country.upper()
        params = {**defaults, **given, "q": query}
    else:
        raise DiscoveryError(
            f"{endpoint}: not a known search endpoint (its path must end with "
            f"{', '.join(_ENGINE_PATHS)})"
        )
    return _with_params(endpoint, params)


# --- Search results ------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """One search result: ``url`` is the publisher's URL when ``resolved``, else a wrapper link
    that must be fetched (its redirect leads to the publisher)."""

    url: str
    title: str | None = None
    published_at: datetime | None = None
    resolved: bool = True


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while position < len(data):
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if not byte & 0x80:
            return value, position
        shift += 7
    raise ValueError("truncated varint")


def _google_article_url(article_id: str) -> str | None:
    """The publisher URL inside a Google News article id, when the id carries it.

    Older ids are the URL-safe base64 of a small protobuf message whose field 4 is the URL;
    newer ids are opaque (``None``: follow the link instead).
    """
    try:
        data = base64.urlsafe_b64decode(article_id + "=" * (-len(article_id) % 4))
    except (binascii.Error, ValueError):
        return None
    if not data.startswith(b"\x08\x13\x22"):
        return None
    try:
        length, start = _varint(data, 3)
    except ValueError:
        return None
    url = data[start : start + length].decode("utf-8", "replace")
    return url if url.startswith(("http://", "https://")) else None


def publisher_url(link: str) -> tuple[str, bool]:
    """``(url, resolved)`` for a news-search result link.

    A Bing News click link (``…/news/apiclick.aspx?…&url=<publisher>``) and an older Google
    News article link (``…/rss/articles/<id>`` with the URL inside the id) resolve without any
    request. Other Google News links come back unresolved, to be fetched and followed. Any other
    link is already the publisher's.
    """
    parts = urlsplit(link)
    if parts.path.lower().endswith("/apiclick.aspx"):
        target = dict(parse_qsl(parts.query)).get("url", "")
        if target.startswith(("http://", "https://")):
            return target, True
        return link, False
    match = re.search(r"/articles/([A-Za-z0-9_-]+)$", parts.path)
    if match and "/rss/" in parts.path + "/":
        inner = _google_article_url(match.group(1))
        return (inner, True) if inner else (link, False)
    return link, True


def _gdelt_date(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def parse_gdelt(body: bytes) -> list[Found]:
    """Articles of a GDELT DOC 2.0 ``ArtList`` JSON answer (``{}`` when nothing matched).

    GDELT answers problems (a phrase too short, too many requests) as plain text: that raises
    :class:`DiscoveryError` with GDELT's own words.
    """
    try:
        data = json.loads(body.decode("utf-8", "replace") or "{}")
    except RecursionError as exc:
        raise DiscoveryError("GDELT answered JSON nested too deeply to read") from exc
    except json.JSONDecodeError as exc:
        message = " ".join(body.decode("utf-8", "replace").split())[:200]
        raise DiscoveryError(f"GDELT did not answer JSON: {message!r}") from exc
    if not isinstance(data, dict):
        raise DiscoveryError("GDELT answered JSON that is not an object")
    found = []
    for article in data.get("articles") or []:
        url = article.get("url") if isinstance(article, dict) else None
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            found.append(
                Found(url, article.get("title") or None, _gdelt_date(article.get("seendate", "")))
            )
    return found


def parse_news_rss(body: bytes, content_type: str = "") -> list[Found]:
    """Results of a news-search RSS answer (Google News, Bing News), links resolved."""
    try:
        parsed = parse_feed(body, content_type)
    except Exception as exc:  # feedparser's own failures on hostile bytes
        raise DiscoveryError(f"news search RSS not readable: {exc}") from exc
    if parsed.bozo and not parsed.entries:
        raise DiscoveryError(f"news search RSS not readable: {parsed.get('bozo_exception')}")
    if not parsed.get("version"):
        raise DiscoveryError("the answer is not RSS (an HTML page or an error message?)")
    found = []
    for entry in parsed.entries:
        link = entry.get("link") or ""
        if not link.startswith(("http://", "https://")):
            continue
        url, resolved = publisher_url(link)
        found.append(Found(url, entry.get("title") or None, entry_time(entry), resolved))
    return found


def parse_results(engine: str, body: bytes, content_type: str = "") -> list[Found]:
    """Search results of any known engine."""
    return parse_gdelt(body) if engine == "gdelt" else parse_news_rss(body, content_type)


# --- Sitemaps ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SitemapEntry:
    """A ``<url>`` of a urlset or a ``<sitemap>`` of a sitemap index."""

    url: str
    lastmod: datetime | None = None
    published_at: datetime | None = None
    title: str | None = None
    language: str | None = None

    @property
    def date(self) -> datetime | None:
        """The news publication date when given, else ``lastmod``."""
        return self.published_at or self.lastmod


@dataclass(frozen=True)
class Sitemap:
    is_index: bool
    entries: list[SitemapEntry]


def parse_w3c_date(text: str | None) -> datetime | None:
    """A sitemap date (W3C datetime: ``2026-04-08``, ``2026-04-08T11:00:00-04:00``), in UTC."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _local(element: Any) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _child_text(element: Any, *path: str) -> str | None:
    for name in path:
        element = next((c for c in element if _local(c) == name), None)
        if element is None:
            return None
    text = (element.text or "").strip()
    return text or None


_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def parse_sitemap(body: bytes) -> Sitemap:
    """A sitemap index or urlset, Google News extensions included (namespace prefixes ignored).

    Raises :class:`DiscoveryError` when the body is not XML or not a sitemap.
    """
    try:
        root = etree.fromstring(body, parser=_XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise DiscoveryError(f"sitemap is not well-formed XML: {exc}") from exc
    kind = _local(root)
    if kind not in ("sitemapindex", "urlset"):
        raise DiscoveryError(f"not a sitemap: the document element is <{kind}>")
    child = "sitemap" if kind == "sitemapindex" else "url"
    entries = []
    for item in root:
        if _local(item) != child:
            continue
        loc = _child_text(item, "loc")
        if not loc or not loc.startswith(("http://", "https://")):
            continue
        entries.append(
            SitemapEntry(
                url=loc,
                lastmod=parse_w3c_date(_child_text(item, "lastmod")),
                published_at=parse_w3c_date(_child_text(item, "news", "publication_date")),
                title=_child_text(item, "news", "title"),
                language=_child_text(item, "news", "publication", "language"),
            )
        )
    return Sitemap(kind == "sitemapindex", entries)


# --- Cheap judgement of entries --------------------------------------------------------------

_TAGS = re.compile(r"<[^>]+>")
# How much of a rule a feed entry's title and summary must hold to be fetched from a broad feed.
MENTION_SHARE = 0.25
_WORD = re.compile(r"\w+")


def plain_text(html: str | None) -> str:
    """Text of a feed summary (tags removed, entities as feedparser left them)."""
    return " ".join(_TAGS.sub(" ", html or "").split())


class EntryFilter:
    """Judges feed and sitemap entries by their title and summary, before any page is fetched.

    An entry *says enough* when its title and summary hold at least ``min_words`` words. It
    *mentions* the topics when its title and summary hold a quarter of one of their rules or
    more, in any of the three languages (:meth:`veille.core.query.Query.closeness`: the share of the
    rule's parts found, a NEAR with one side counting a quarter): an entry whose title and summary
    match a rule outright always mentions the topics, and so does one that names a part of a
    rule ("police forces … similar sites"), which may be all a short summary says of an on-topic
    article. In a broad
    listing — where fewer than ``broad_share`` of the entries mention the topics, as in a whole
    newspaper's feed — an entry that says enough and mentions nothing is ruled out. An entry
    that says too little is always kept, to be judged on its text.
    """

    def __init__(self, topics: Sequence[Topic], min_words: int, broad_share: float) -> None:
        self.min_words = min_words
        self.broad_share = broad_share
        self.judge = TopicJudge(topics)

    @classmethod
    def from_settings(cls, topics: Sequence[Topic], settings: Any) -> EntryFilter:
        """Built from Scrapy settings ``VEILLE_PREFILTER_MIN_WORDS`` (default 12) and
        ``VEILLE_BROAD_FEED_SHARE`` (default 0.5; 0 turns the filter off)."""
        return cls(
            topics,
            min_words=settings.getint("VEILLE_PREFILTER_MIN_WORDS"),
            broad_share=settings.getfloat("VEILLE_BROAD_FEED_SHARE"),
        )

    def says_enough(self, title: str | None, summary: str | None) -> bool:
        return len(_WORD.findall(f"{title or ''} {plain_text(summary)}")) >= self.min_words

    def mentions(self, title: str | None, summary: str | None) -> bool:
        """True when title and summary hold a quarter of a topic rule or more (see above)."""
        text = f"{title or ''}\n{plain_text(summary)}"
        for language in LANGUAGES:
            doc = {"text": StemIndex(text, language)}
            rules = self.judge.rules(language)
            if any(rule.compiled.closeness(doc) >= MENTION_SHARE for rule in rules):
                return True
        return False

    def keep(self, entries: Sequence[tuple[str | None, str | None]]) -> list[bool]:
        """For each ``(title, summary)``: fetch it (True) or not (False)."""
        mentioned = [self.mentions(title, summary) for title, summary in entries]
        if not entries or sum(mentioned) >= self.broad_share * len(entries):
            return [True] * len(entries)
        return [
            hit or not self.says_enough(title, summary)
            for hit, (title, summary) in zip(mentioned, entries, strict=True)
        ]
