"""The fixture news sites and their server agree with the manifest tests rely on."""

from __future__ import annotations

import html
import http.client
import re
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

import feedparser
import pytest

from tests.support.fixture_server import DEFAULT_ROOT, FixtureSites

ROOT = DEFAULT_ROOT

# Namespace and vocabulary identifiers that must be written out in full; never fetched.
ALLOWED_ABSOLUTE_URLS = {
    "http://www.w3.org/2005/Atom",
    "http://purl.org/dc/elements/1.1/",
    "http://purl.org/rss/1.0/",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "http://www.sitemaps.org/schemas/sitemap/0.9",
    "http://www.google.com/schemas/sitemap-news/0.9",
    "https://schema.org",
}


@pytest.fixture(scope="module")
def sites():
    with FixtureSites(ROOT) as running:
        yield running


def fetch(url: str, method: str = "GET", headers: dict[str, str] | None = None):
    """(status, headers, body bytes) without raising on HTTP errors."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def decode(headers: Message, body: bytes) -> str:
    charset = headers.get_content_charset()
    assert charset, f"no charset in Content-Type {headers.get('Content-Type')!r}"
    return body.decode(charset)


def page_ids(pages):
    return [f"{p['outlet']}{p['path']}" for p in pages]


MANIFEST = FixtureSites(ROOT).manifest
PAGES = MANIFEST["pages"]
GOOD_OUTLETS = [name for name, o in MANIFEST["outlets"].items() if not o.get("malformed")]
BAD_OUTLETS = [name for name, o in MANIFEST["outlets"].items() if o.get("malformed")]


def feed_links(sites: FixtureSites, outlet: str) -> list[str]:
    status, _, body = fetch(sites.feed_url(outlet))
    assert status == 200
    parsed = feedparser.parse(body)
    base = sites.base_url(outlet)
    links = [e.link for e in parsed.entries if e.get("link")]
    assert all(link.startswith(base + "/") for link in links)
    return [link[len(base) :] for link in links]


def test_manifest_shape():
    assert set(MANIFEST["outlets"]) == {
        "le-veilleur",
        "northern-ledger",
        "el-vigia",
        "broken-gazette",
    }
    for outlet in GOOD_OUTLETS:
        pages = [p for p in PAGES if p["outlet"] == outlet]
        kinds = [(p["kind"], p["on_topic"]) for p in pages]
        assert kinds.count(("article", True)) == 4, outlet
        assert kinds.count(("article", False)) == 2, outlet
        assert kinds.count(("not_article", False)) == 1, outlet
        assert any(len(p["feed_urls"]) >= 2 for p in pages), f"{outlet}: no duplicated entry"
        for p in pages:
            assert p["language"] == MANIFEST["outlets"][outlet]["language"]
            if p["kind"] == "article":
                assert 250 <= p["word_count"] <= 600
                assert len(p["text_contains"]) == 2
    dates = [p["published_at"] for p in PAGES if p["published_at"]]
    assert len(dates) == len(set(dates)), "article dates must be distinct"
    assert all("2025-01" <= d[:7] <= "2026-10" for d in dates)


@pytest.mark.parametrize("page", PAGES, ids=page_ids(PAGES))
def test_page_is_served_and_matches_manifest(sites, page):
    status, headers, body = fetch(sites.url(page["outlet"], page["path"]))
    assert status == 200
    assert headers.get_content_type() == "text/html"
    assert headers.get_content_charset() == page.get("encoding", "utf-8")
    text = decode(headers, body)
    base = sites.base_url(page["outlet"])
    assert "{{BASE" not in text
    assert f'<html lang="{page["language"]}' in text

    unescaped = html.unescape(text)
    h1 = re.search(r"<h1[^>]*>(.*?)</h1>", text, re.S)
    assert h1 and html.unescape(h1.group(1)) == page["title"]
    assert f'<meta property="og:title" content="{html.escape(page["title"])}">' in text
    assert f'<meta name="description" content="{html.escape(page["description"])}">' in text
    assert f'<link rel="canonical" href="{base}{page["path"]}">' in text
    for sentence in page["text_contains"]:
        assert sentence in unescaped

    if page["kind"] == "article":
        assert '<meta property="og:type" content="article">' in text
        published = f'<meta property="article:published_time" content="{page["published_at"]}">'
        assert published in text
        assert f'<time datetime="{page["published_at"]}">' in text
        assert '"@type": "NewsArticle"' in text
        assert f'<meta name="author" content="{", ".join(page["authors"])}">' in text
        for author in page["authors"]:
            assert f'"name": "{author}"' in text
    else:
        assert '<meta property="og:type" content="website">' in text
        assert "article:published_time" not in text
        assert "<article" not in text


@pytest.mark.parametrize("page", PAGES, ids=page_ids(PAGES))
def test_inflections_hold_on_the_whole_page(page):
    if "inflections" not in page:
        return
    raw = (ROOT / page["outlet"] / page["path"].lstrip("/")).read_bytes()
    text = raw.decode(page.get("encoding", "utf-8"))
    for word, present in page["inflections"].items():
        found = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE) is not None
        assert found == present, word


@pytest.mark.parametrize("outlet", GOOD_OUTLETS)
def test_feed_lists_exactly_the_manifest_urls(sites, outlet):
    expected = [url for p in PAGES if p["outlet"] == outlet for url in p["feed_urls"]]
    listed = feed_links(sites, outlet)
    assert sorted(listed) == sorted(expected)
    # The tracking copy is listed just before the clean one.
    for p in PAGES:
        if p["outlet"] == outlet and len(p["feed_urls"]) > 1:
            positions = [listed.index(u) for u in p["feed_urls"]]
            assert positions == sorted(positions)


@pytest.mark.parametrize("outlet", GOOD_OUTLETS)
def test_good_feeds_parse_cleanly(sites, outlet):
    info = MANIFEST["outlets"][outlet]
    status, headers, body = fetch(sites.feed_url(outlet))
    assert status == 200
    expected_type = {
        "rss2": "application/rss+xml",
        "atom": "application/atom+xml",
        "rss1": "application/rdf+xml",
    }[info["feed_format"]]
    assert headers.get_content_type() == expected_type
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert (
        parsed.version == {"rss2": "rss20", "atom": "atom10", "rss1": "rss10"}[info["feed_format"]]
    )
    by_path = {url: p for p in PAGES if p["outlet"] == outlet for url in p["feed_urls"]}
    base = sites.base_url(outlet)
    for entry in parsed.entries:
        page = by_path[entry.link[len(base) :]]
        assert entry.title == page["title"]
        assert entry.summary == page["description"]
        assert entry.get("published_parsed") or entry.get("updated_parsed")


@pytest.mark.parametrize("outlet", BAD_OUTLETS)
def test_malformed_feed_is_bozo(sites, outlet):
    status, _, body = fetch(sites.feed_url(outlet))
    assert status == 200
    assert feedparser.parse(body).bozo
    raw = body.decode("utf-8", errors="replace")
    for p in PAGES:
        if p["outlet"] == outlet:
            for url in p["feed_urls"]:
                assert sites.base_url(outlet) + url in raw


@pytest.mark.parametrize("outlet", GOOD_OUTLETS)
def test_news_sitemap_lists_the_articles(sites, outlet):
    status, headers, body = fetch(sites.url(outlet, MANIFEST["outlets"][outlet]["sitemap"]))
    assert status == 200
    assert headers.get_content_type() == "application/xml"
    locs = re.findall(r"<loc>(.*?)</loc>", body.decode("utf-8"))
    expected = [
        sites.url(outlet, p["path"])
        for p in PAGES
        if p["outlet"] == outlet and p["kind"] == "article"
    ]
    assert sorted(locs) == sorted(expected)


def test_no_absolute_urls_outside_placeholders():
    known = set(MANIFEST["outlets"])
    for path in sorted(ROOT.rglob("*")):
        if not path.is_file():
            continue
        text = path.read_bytes().decode("latin-1")  # byte-preserving; URLs are ASCII
        for url in re.findall(r"https?://[^\s\"'<>)]+", text, re.IGNORECASE):
            assert url in ALLOWED_ABSOLUTE_URLS, f"{path.relative_to(ROOT)}: {url}"
        assert not re.search(r'(?:href|src|action)="//', text), f"{path}: protocol-relative URL"
        if path.name == "manifest.yaml":
            continue  # its comments describe the placeholders
        for name in re.findall(r"\{\{BASE:([^}]*)\}\}", text):
            assert name in known, f"{path.relative_to(ROOT)}: unknown outlet {name!r}"


def test_legacy_encoding_page_decodes(sites):
    page = next(p for p in PAGES if p.get("encoding") == "iso-8859-1")
    raw = (ROOT / page["outlet"] / page["path"].lstrip("/")).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    status, headers, body = fetch(sites.url(page["outlet"], page["path"]))
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=iso-8859-1"
    assert b'<meta charset="iso-8859-1">' in body
    text = body.decode("iso-8859-1")
    assert "Represión transnacional" in text and "Policía Nacional" in text
    for sentence in page["text_contains"]:
        assert sentence in text


def test_server_behaviour(sites):
    outlet = "le-veilleur"
    page = next(p for p in PAGES if p["outlet"] == outlet and len(p["feed_urls"]) > 1)
    sites.clear_requests(outlet)

    # Query strings are ignored when mapping to files.
    clean = fetch(sites.url(outlet, page["path"]))
    tracked = fetch(sites.url(outlet, page["feed_urls"][0]))
    assert clean[0] == tracked[0] == 200 and clean[2] == tracked[2]

    # HEAD: headers without a body; Last-Modified present; conditional GET.
    status, headers, body = fetch(sites.url(outlet, page["path"]), method="HEAD")
    assert status == 200 and body == b""
    assert int(headers["Content-Length"]) == len(clean[2])
    last_modified = headers["Last-Modified"]
    assert last_modified.endswith("GMT")
    status, _, _ = fetch(
        sites.url(outlet, page["path"]), headers={"If-Modified-Since": last_modified}
    )
    assert status == 304

    # Missing files, sidecars and path traversal are 404.
    assert fetch(sites.url(outlet, "/nope.html"))[0] == 404
    assert fetch(sites.url("el-vigia", "/does/not/exist.html.headers"))[0] == 404
    assert fetch(sites.url(outlet, "/../manifest.yaml"))[0] == 404

    # A directory without its trailing slash redirects; with it, index.html is served.
    status, headers, body = fetch(sites.url(outlet, "/rubrique/international"))
    assert status == 200 and headers.get_content_type() == "text/html"
    assert b"<h1>International</h1>" in body

    # robots.txt
    status, headers, body = fetch(sites.url(outlet, "/robots.txt"))
    assert status == 200 and headers.get_content_type() == "text/plain"
    assert b"Disallow: /private/" in body
    assert f"Sitemap: {sites.base_url(outlet)}/sitemap-news.xml".encode() in body

    assert sites.requests(outlet) == [
        page["path"],
        page["feed_urls"][0],
        page["path"],
        page["path"],
        "/nope.html",
        "/../manifest.yaml",
        "/rubrique/international",
        "/rubrique/international/",
        "/robots.txt",
    ]
    assert "/does/not/exist.html.headers" in sites.requests("el-vigia")
    sites.clear_requests()
    assert sites.requests(outlet) == []


def test_cross_outlet_placeholder(sites):
    page = next(p for p in PAGES if p.get("links_to"))
    target = page["links_to"][0]
    _, _, body = fetch(sites.url(page["outlet"], page["path"]))
    assert sites.url(target["outlet"], target["path"]).encode() in body
    assert sites.base_url(target["outlet"]) != sites.base_url(page["outlet"])
    assert sites.outlet_for_url(sites.url(target["outlet"], "/x")) == target["outlet"]


def test_servers_stop_cleanly(tmp_path: Path):
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a.txt").write_text("{{BASE}}/a {{BASE:one}} {{BASE:nobody}}")
    with FixtureSites(tmp_path) as running:
        url = running.url("one", "/a.txt")
        status, _, body = fetch(url)
        base = running.base_url("one")
        assert status == 200
        assert body.decode() == f"{base}/a {base} {{{{BASE:nobody}}}}"
        assert running.manifest == {}
        # A keep-alive connection open when the servers stop is closed too.
        host, port = base.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.request("GET", "/a.txt")
        assert conn.getresponse().read() == body
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        conn.request("GET", "/a.txt")
        conn.getresponse()
    conn.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)
