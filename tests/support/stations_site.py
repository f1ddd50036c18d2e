"""The labelled stations set (tests/fixtures/stations) as news sites to crawl.

One outlet per language and outlet country (``stations-en-ie``…), each with an RSS feed of its
articles and one page per labelled file, served by :class:`tests.support.fixture_server.
FixtureSites`; the sources give each outlet its country, as the labels do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape
from pathlib import Path
from typing import Any

from veille.ops.station_eval import load_labelled


def outlet_of(item: dict[str, Any]) -> str:
    return f"stations-{item['language']}-{item['outlet_country'].lower()}"


def write_article(root: Path, outlet: str, slug: str, item: dict[str, Any]) -> None:
    """One article page; the outlet's feed is written by :func:`write_feeds`."""
    published = datetime.fromisoformat(item["published"]).replace(hour=9, tzinfo=UTC)
    paragraphs = "\n".join(
        f"      <p>{escape(p.strip())}</p>" for p in item["text"].split("\n\n") if p.strip()
    )
    page = f"""<!DOCTYPE html>
<html lang="{item["language"]}">
<head>
  <meta charset="utf-8">
  <title>{escape(item["title"])}</title>
  <link rel="canonical" href="{{{{BASE}}}}/{slug}.html">
  <meta property="og:type" content="article">
  <meta property="og:title" content="{escape(item["title"])}">
  <meta property="article:published_time" content="{published.isoformat()}">
</head>
<body><main><article>
      <h1>{escape(item["title"])}</h1>
{paragraphs}
</article></main></body>
</html>
"""
    site = root / outlet
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{slug}.html").write_text(page, encoding="utf-8")


def write_feeds(root: Path, articles: dict[str, list[tuple[str, dict[str, Any]]]]) -> None:
    for outlet, items in articles.items():
        entries = "\n".join(
            f"""    <item><title>{escape(item["title"])}</title>
      <link>{{{{BASE}}}}/{slug}.html</link><guid>{{{{BASE}}}}/{slug}.html</guid>
      <pubDate>{format_datetime(datetime.fromisoformat(item["published"]).replace(tzinfo=UTC))}</pubDate>
    </item>"""
            for slug, item in items
        )
        (root / outlet / "feed.xml").write_text(
            f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>{outlet}</title><link>{{{{BASE}}}}/</link>
<description>{outlet}</description>
{entries}
</channel></rss>
""",
            encoding="utf-8",
        )


def build_sites(root: Path, folder: Path) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Write the sites under ``root``; returns each outlet's ``(slug, labelled article)``."""
    outlets: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for path, item in load_labelled(folder):
        outlet = outlet_of(item)
        write_article(root, outlet, path.stem, item)
        outlets.setdefault(outlet, []).append((path.stem, item))
    write_feeds(root, outlets)
    return outlets
