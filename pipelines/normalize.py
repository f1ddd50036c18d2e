"""Normalize stage: settle the article's canonical URL, clean its text, hash its content.

In:  an Article straight from a spider (``url`` as fetched, ``canonical_url`` as the page
     declared it, possibly relative to another host or missing).
Out: ``canonical_url`` in canonical form (the page's ``rel=canonical`` when it is on the same
     site, else the fetched URL), ``urls`` listing every spelling that led here, whitespace
     tidied, ``content_hash`` of the normalised text, a future ``published_at`` cleared.
Drops: ``empty`` (no title or no text).

An article with ``text_prepared`` was tidied and hashed by the extraction step
(:func:`crawler.extraction_worker.extract_page`, on another core): that work is not done twice.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import timedelta

from pipelines.base import Stage
from veille.core.article import Article, utcnow
from veille.core.urls import canonicalize, domain_of

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_WORDS = re.compile(r"\w+")
# Publication times this far ahead of our clock are wrong (bad metadata), not scoops.
FUTURE_TOLERANCE = timedelta(days=1)


def tidy(text: str) -> str:
    """Unicode NFC, single spaces, at most one blank line between paragraphs."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def content_hash(title: str, text: str) -> str:
    """Hash of the words of an article, blind to case, punctuation and spacing."""
    words = _WORDS.findall(f"{title}\n{text}".casefold())
    return hashlib.sha256(" ".join(words).encode("utf-8")).hexdigest()


def choose_canonical(fetched_url: str, declared: str | None) -> str:
    """The page's declared canonical URL if it stays on the same site, else the fetched URL."""
    fetched = canonicalize(fetched_url)
    if declared and declared.startswith(("http://", "https://")):
        candidate = canonicalize(declared)
        if domain_of(candidate) == domain_of(fetched):
            return candidate
    return fetched


class NormalizeStage(Stage):
    name = "normalize"

    def process_item(self, article: Article) -> Article:
        if not article.text_prepared:
            article.title = tidy(article.title)
            article.text = tidy(article.text)
        if not article.title or not article.text:
            self.drop(article, "empty", "no title or no text after extraction")
        article.canonical_url = choose_canonical(article.url, article.canonical_url)
        spellings = [canonicalize(u) for u in (*article.urls, article.url)]
        article.urls = sorted({*spellings, article.canonical_url})
        if not article.text_prepared:
            article.content_hash = content_hash(article.title, article.text)
        if article.published_at and article.published_at > utcnow() + FUTURE_TOLERANCE:
            self.count("normalize/future_date_cleared")
            article.published_at = None
        return article
