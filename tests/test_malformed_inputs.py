"""A corpus of malformed and hostile inputs crawls to completion, each skipped with its reason.

``tests/fixtures/malformed/hostile-press`` (a fictional outlet we wrote, served on 127.0.0.1)
holds broken feeds and sitemaps and broken pages; ``manifest.yaml`` says, for each, the reason
it must be skipped for. A feed source lists every broken feed and an index feed that links to
every broken page; a sitemap source lists every broken sitemap.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from tests.support.fixture_server import FixtureSites
from tests.support.runner import FAST_CRAWL, ROOT, clean_env, run_veille
from veille.core.es import IndexNames

pytestmark = pytest.mark.slow

CORPUS = ROOT / "tests" / "fixtures" / "malformed"
MANIFEST = yaml.safe_load((CORPUS / "manifest.yaml").read_text(encoding="utf-8"))
INPUTS = MANIFEST["inputs"]
OUTLET = "hostile-press"


# How each reason reads in the log line (default: the reason itself).
REASON_WORDS = {
    "malformed": "malformed feed",
    "not_a_feed": "not a feed",
    "not_html": "not an HTML page",
    "entry_without_link": "no http(s) link",
}


def _stat_key(item: dict) -> str:
    family = {"page": "dropped", "sitemap": "sitemaps"}.get(item["kind"], "feeds")
    return f"veille/{family}/{item['reason']}"


def _run(env: dict[str, str], source: str, stats_file: Path) -> dict:
    crawl = run_veille(
        "crawl", source, "--json", "-v", *FAST_CRAWL,
        "--set", "DOWNLOAD_MAXSIZE=65536", "--set", "REDIRECT_MAX_TIMES=5",
        "--set", f"VEILLE_STATS_FILE={stats_file}",
        env=env,
    )  # fmt: skip
    return {
        "exit": crawl.returncode,
        "summary": json.loads(crawl.stdout)[0],
        "stats": json.loads(stats_file.read_text()),
        "log": crawl.stderr.splitlines(),
    }


@pytest.fixture(scope="module")
def corpus_crawl(es_url, index_prefix, tmp_path_factory):
    """The feed source and the sitemap source of the corpus, each crawled once; stats summed."""
    folder = tmp_path_factory.mktemp("malformed")
    with FixtureSites(CORPUS) as sites:
        base = sites.base_url(OUTLET)
        feeds = [base + MANIFEST["index_feed"]]
        feeds += [base + item["path"] for item in INPUTS if item["kind"] == "feed"]
        sitemaps = [base + item["path"] for item in INPUTS if item["kind"] == "sitemap"]
        config = folder / "config"
        config.mkdir()
        sources = [
            {"name": OUTLET, "type": "feed", "language": "en", "urls": feeds},
            {"name": f"{OUTLET}-sitemaps", "type": "sitemap", "language": "en", "urls": sitemaps},
        ]
        (config / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}))
        (config / "topics").symlink_to(ROOT / "config" / "topics")
        env = clean_env(
            VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=index_prefix,
            VEILLE_DATA_DIR=str(folder / "data"), VEILLE_CONFIG=str(config),
        )  # fmt: skip
        assert run_veille("setup", env=env).returncode == 0
        runs = [_run(env, source["name"], folder / f"{source['name']}.json") for source in sources]
    stats: Counter[str] = Counter()
    for run in runs:
        stats.update({k: v for k, v in run["stats"].items() if isinstance(v, int)})
    return {
        "base": base,
        "runs": runs,
        "stats": stats,
        "log": [line for run in runs for line in run["log"]],
    }


def test_the_corpus_has_at_least_40_inputs_of_every_kind():
    kinds = Counter(item["kind"] for item in INPUTS)
    assert len(INPUTS) >= 40
    assert kinds["feed"] >= 15 and kinds["page"] >= 20 and kinds["sitemap"] >= 5


def test_the_crawls_of_the_corpus_finish(corpus_crawl):
    for run in corpus_crawl["runs"]:
        assert run["exit"] == 0
        assert run["summary"]["finish_reason"] == "finished"
    assert not [line for line in corpus_crawl["log"] if "Traceback" in line]
    assert "spider_exceptions/count" not in corpus_crawl["stats"]


def test_every_input_is_counted_under_its_reason(corpus_crawl):
    expected = Counter(_stat_key(item) for item in INPUTS)
    counted = {key: corpus_crawl["stats"].get(key, 0) for key in expected}
    assert counted == dict(expected)
    # nothing of the corpus reached the index except the three articles with bad dates
    assert corpus_crawl["stats"].get("veille/indexed", 0) == len(MANIFEST["recovered"])


@pytest.mark.parametrize("item", INPUTS, ids=lambda item: f"{item['path']}:{item['reason']}")
def test_every_input_is_logged_once_with_its_url_and_reason(corpus_crawl, item):
    entry = item["kind"] == "entry"
    needle = repr(item["title"]) if entry else corpus_crawl["base"] + item["path"]
    reported = [
        line
        for line in corpus_crawl["log"]
        if re.search(re.escape(needle) + r"[\s:']", line)
        and ("skipped" in line or "Dropped:" in line)
    ]
    assert len(reported) == 1, reported
    words = (
        "skipped" if item["kind"] == "sitemap" else REASON_WORDS.get(item["reason"], item["reason"])
    )
    assert words in reported[0]


def test_articles_with_future_or_impossible_dates_are_kept_without_the_date(
    corpus_crawl, es, index_prefix
):
    index = IndexNames(index_prefix).articles
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=50, query={"match_all": {}})["hits"]["hits"]
    by_path = {hit["_source"]["url"].removeprefix(corpus_crawl["base"]): hit for hit in hits}
    assert set(by_path) == {item["path"] for item in MANIFEST["recovered"]}
    assert "published_at" not in by_path["/pages/future-date.html"]["_source"]
    assert corpus_crawl["stats"]["veille/normalize/future_date_cleared"] == 1
    assert "published_at" not in by_path["/pages/garbage-date.html"]["_source"]
    # 30 February 25:61 is not stored; trafilatura may still find a real date on the page
    salvaged = by_path["/pages/invalid-date.html"]["_source"].get("published_at")
    assert salvaged is None or datetime.fromisoformat(salvaged) < datetime.now(UTC)


def test_a_feed_that_names_a_local_file_does_not_read_it(corpus_crawl):
    assert corpus_crawl["stats"].get("veille/feeds/read") == 1  # the index feed only
    assert not [line for line in corpus_crawl["log"] if "root:x:0:0" in line]
