"""The article pages of our fixture sites, and what extraction makes of them (for tests that
compare a fast path with the plain one on real pages)."""

from __future__ import annotations

import glob
from pathlib import Path

from crawler.extraction import NotAnArticle, extract_article
from tests.support.runner import SITES


def fixture_pages() -> list[Path]:
    """Every HTML page of the fixture sites, in a stable order."""
    return [Path(p) for p in sorted(glob.glob(str(SITES / "*" / "**" / "*.html"), recursive=True))]


def fixture_articles() -> list[tuple[str, str]]:
    """``(title, text)`` of each fixture page that extraction takes for an article."""
    found = []
    for path in fixture_pages():
        result = extract_article(path.read_bytes(), f"http://127.0.0.1/{path}")
        if not isinstance(result, NotAnArticle):
            found.append((result.title, result.text))
    return found
