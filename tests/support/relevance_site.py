"""The labelled relevance set (tests/fixtures/relevance) as three news sites to crawl.

One outlet per language (``relevance-fr``, ``relevance-en``, ``relevance-es``), each with an RSS
feed listing all its articles — title, link, date and, as a newspaper's feed does, the first
sentences of the article as the summary — and one article page per labelled file, served by
:class:`tests.support.fixture_server.FixtureSites`. A whole newspaper's feed, then: most entries
are not about the topic, so the broad-feed pre-filter judges them before any page is fetched.
"""

from __future__ import annotations

from datetime import datetime, time
from email.utils import format_datetime
from html import escape
from pathlib import Path
from zoneinfo import ZoneInfo

from veille.ops.topic_eval import LABELLED_SET, Labelled, load_labelled

SUMMARY_WORDS = 30


def outlet_of(article: Labelled) -> str:
    return f"relevance-{article.language}"


def page_path(article: Labelled) -> str:
    return f"/{article.path.stem}.html"


def _published(article: Labelled) -> datetime:
    day = datetime.fromisoformat(article.published) if article.published else datetime(2025, 1, 1)
    return datetime.combine(day.date(), time(9, 0), tzinfo=ZoneInfo("UTC"))


def _summary(text: str) -> str:
    words = text.split()
    return " ".join(words[:SUMMARY_WORDS]) + ("…" if len(words) > SUMMARY_WORDS else "")


def _page(article: Labelled, published: datetime) -> str:
    paragraphs = "\n".join(
        f"      <p>{escape(paragraph.strip())}</p>"
        for paragraph in article.text.split("\n\n")
        if paragraph.strip()
    )
    url = "{{BASE}}" + page_path(article)
    return f"""<!DOCTYPE html>
<html lang="{article.language}">
<head>
  <meta charset="utf-8">
  <title>{escape(article.title)}</title>
  <meta name="description" content="{escape(_summary(article.text))}">
  <link rel="canonical" href="{url}">
  <meta property="og:type" content="article">
  <meta property="og:title" content="{escape(article.title)}">
  <meta property="article:published_time" content="{published.isoformat()}">
</head>
<body>
  <main>
    <article>
      <h1>{escape(article.title)}</h1>
{paragraphs}
    </article>
  </main>
</body>
</html>
"""


def _feed(language: str, items: list[tuple[Labelled, datetime]]) -> str:
    entries = "\n".join(
        f"""    <item>
      <title>{escape(article.title)}</title>
      <link>{{{{BASE}}}}{page_path(article)}</link>
      <guid isPermaLink="true">{{{{BASE}}}}{page_path(article)}</guid>
      <pubDate>{format_datetime(published)}</pubDate>
      <description>{escape(_summary(article.text))}</description>
    </item>"""
        for article, published in items
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
  <channel>
    <title>Relevance set ({language})</title>
    <link>{{{{BASE}}}}/</link>
    <description>Every labelled article in {language}</description>
{entries}
  </channel>
</rss>
"""


def build_sites(root: Path, folder: Path = LABELLED_SET) -> list[Labelled]:
    """Write the sites under ``root``; returns the labelled articles they hold."""
    articles = load_labelled(folder)
    by_language: dict[str, list[tuple[Labelled, datetime]]] = {}
    for article in articles:
        published = _published(article)
        site = root / outlet_of(article)
        site.mkdir(parents=True, exist_ok=True)
        (site / page_path(article).lstrip("/")).write_text(
            _page(article, published), encoding="utf-8"
        )
        by_language.setdefault(article.language, []).append((article, published))
    for language, items in by_language.items():
        items.sort(key=lambda item: item[1], reverse=True)
        (root / f"relevance-{language}" / "feed.xml").write_text(
            _feed(language, items), encoding="utf-8"
        )
    return articles
