"""Helpers for the fault-injection tests: what the fixture crawl must index, what it did index."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.runner import FAST_CRAWL, ROOT, run_veille
from veille.core.es import IndexNames
from veille.core.urls import canonicalize

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from tests.support.fixture_server import FixtureSites


def good_outlets(sites: FixtureSites) -> list[str]:
    """The fixture outlets whose feeds are well-formed (broken-gazette's is skipped whole)."""
    return [name for name, o in sites.manifest["outlets"].items() if not o.get("malformed")]


def expected_articles(sites: FixtureSites) -> set[str]:
    """Canonical URLs of every on-topic article of the well-formed outlets."""
    good = set(good_outlets(sites))
    return {
        canonicalize(sites.base_url(page["outlet"]) + page["path"])
        for page in sites.manifest["pages"]
        if page["outlet"] in good and page["kind"] == "article" and page["on_topic"]
    }


def indexed_counts(es: Elasticsearch, prefix: str) -> Counter[str]:
    """How many documents the articles index holds per canonical URL."""
    index = IndexNames(prefix).articles
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=1000, query={"match_all": {}}, source=["canonical_url"])
    return Counter(hit["_source"]["canonical_url"] for hit in hits["hits"]["hits"])


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# A crawl is broken "in the middle" once every other outlet's articles are indexed while this
# outlet's article pages are held unanswered at the fixture server (FixtureSites.hold): the
# break then falls at the same point whatever the machine's load.
HELD_OUTLET, HELD_PAGES = "el-vigia", "/internacional/"

# The held pages must not time out (and be asked for again) while the rest of the crawl goes
# on, however loaded the machine. All fixture outlets share one download slot (127.0.0.1): the
# held outlet's four article pages leave FAST_CRAWL's other four places to the rest.
HELD_CRAWL = [*FAST_CRAWL, "--set", "DOWNLOAD_TIMEOUT=300"]


def held_back(sites: FixtureSites, wanted: set[str]) -> set[str]:
    """The articles of ``wanted`` that a hold on the held outlet's pages keeps back."""
    base = sites.base_url(HELD_OUTLET) + HELD_PAGES
    return {url for url in wanted if url.startswith(base)}


@dataclass
class BackgroundCrawl:
    """``veille crawl --all --json`` running in its own process group, output in files."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def summary(self, timeout: float = 240) -> dict[str, Any]:
        code = self.process.wait(timeout=timeout)
        assert code == 0, self.stderr.read_text(errors="replace")[-3000:]
        return json.loads(self.stdout.read_text())[0]


def start_crawl(env: dict[str, str], folder: Path, *settings: str) -> BackgroundCrawl:
    folder.mkdir(parents=True, exist_ok=True)
    stdout, stderr = folder / "crawl.out", folder / "crawl.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "veille.cli", "crawl", "--all", "--json", *settings],
            cwd=ROOT, env=env, stdout=out, stderr=err, start_new_session=True,
        )  # fmt: skip
    return BackgroundCrawl(process, stdout, stderr)


def crawl_again(env: dict[str, str], *settings: str) -> subprocess.CompletedProcess[str]:
    """``veille crawl --all --json`` with the fast test settings, waiting for it to end."""
    return run_veille("crawl", "--all", "--json", *FAST_CRAWL, *settings, env=env)
