"""Property tests: random bytes and random HTML or feeds never make an exception escape.

Extraction (``crawler.extraction.extract_article``), feed parsing
(``crawler.feeds.read_feed``) and the SSRF guard's host parsing get whatever hypothesis
makes up; each must answer with a result or a reason, never raise.
"""

from __future__ import annotations

import ipaddress

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crawler.extraction import Extracted, NotAnArticle, extract_article
from crawler.feeds import FeedDocument, read_feed
from crawler.middlewares.ssrf import parse_address

PATIENT = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TAGS = ["html", "head", "body", "title", "meta", "link", "article", "div", "p", "h1", "span",
        "script", "style", "time", "a", "ul", "li", "table", "td", "br", "img", "svg"]  # fmt: skip
ATTRIBUTES = ["property", "name", "content", "rel", "href", "datetime", "itemprop", "type",
              "charset", "lang", "class"]  # fmt: skip
NASTY_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80
) | st.sampled_from(
    ["article:published_time", "canonical", "application/ld+json", '{"@type": "NewsArticle"',
     "2025-02-30T25:61", "9999-12-31T23:59:59Z", "\x00", "\ufffd", "&#0;", "&#x110000;", "]]>",
     "<!--", "-->", "<?xml", "\u202e", "\r\n"]
)  # fmt: skip


@st.composite
def html_documents(draw) -> str:
    """Random markup: real tag names, real metadata attributes, hostile text, unbalanced."""
    parts = []
    for _ in range(draw(st.integers(0, 25))):
        tag = draw(st.sampled_from(TAGS))
        attributes = draw(st.dictionaries(st.sampled_from(ATTRIBUTES), NASTY_TEXT, max_size=3))
        rendered = "".join(f' {k}="{v}"' for k, v in attributes.items())
        kind = draw(st.sampled_from(["open", "close", "text", "whole"]))
        text = draw(NASTY_TEXT)
        parts.append(
            {
                "open": f"<{tag}{rendered}>",
                "close": f"</{tag}>",
                "text": text,
                "whole": f"<{tag}{rendered}>{text}</{tag}>",
            }[kind]
        )
    return "".join(parts)


@st.composite
def feed_documents(draw) -> bytes:
    """Random RSS and Atom skeletons with hostile text, dates and links, sometimes cut short."""
    atom = draw(st.booleans())
    entries = []
    for _ in range(draw(st.integers(0, 6))):
        fields = {
            "title": draw(NASTY_TEXT),
            "link": draw(st.sampled_from(["http://127.0.0.1/a", "javascript:x", "", "//x", "a b"])),
            "date": draw(NASTY_TEXT | st.sampled_from(["Tue, 31 Feb 2025 25:00:00 +9900"])),
        }
        if atom:
            entries.append(
                f'<entry><title>{fields["title"]}</title><link href="{fields["link"]}"/>'
                f"<updated>{fields['date']}</updated></entry>"
            )
        else:
            entries.append(
                f"<item><title>{fields['title']}</title><link>{fields['link']}</link>"
                f"<pubDate>{fields['date']}</pubDate></item>"
            )
    encoding = draw(st.sampled_from(["utf-8", "iso-8859-1", "utf-16", "bogus", "ebcdic-cp-us"]))
    body = (
        f'<feed xmlns="http://www.w3.org/2005/Atom">{"".join(entries)}</feed>'
        if atom
        else f'<rss version="2.0"><channel>{"".join(entries)}</channel></rss>'
    )
    document = f'<?xml version="1.0" encoding="{encoding}"?>{body}'.encode("utf-8", "replace")
    return document[: draw(st.integers(0, len(document)))]


def _extracted(result: object) -> None:
    assert isinstance(result, Extracted | NotAnArticle)


@PATIENT
@given(st.binary(max_size=4000))
def test_extraction_of_random_bytes_never_raises(body):
    _extracted(extract_article(body, "http://127.0.0.1/page.html"))


@PATIENT
@given(html_documents())
@example(html="<svg>")  # found by this test: htmldate's cleaning raised AssertionError
def test_extraction_of_random_html_never_raises(html):
    _extracted(extract_article(html, "http://127.0.0.1/page.html"))


@PATIENT
@given(st.binary(max_size=4000), st.sampled_from(["", "application/rss+xml", "text/html"]))
def test_feed_parsing_of_random_bytes_never_raises(body, content_type):
    assert isinstance(read_feed(body, content_type), FeedDocument)


@PATIENT
@given(feed_documents())
def test_feed_parsing_of_random_feeds_never_raises(body):
    document = read_feed(body, "application/rss+xml")
    assert isinstance(document, FeedDocument)
    assert document.problem is None or document.entries == []


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60) | st.from_regex(r"\[?[0-9a-fA-Fx.:]{0,40}\]?", fullmatch=True))
def test_host_parsing_of_random_text_never_raises(host):
    address = parse_address(host)
    assert address is None or isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address)
