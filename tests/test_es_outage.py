"""Elasticsearch stopped in the middle of a crawl and started again: no article lost, none twice.

The test runs its own Elasticsearch node (``VEILLE_ES_HOME`` in a temporary folder, a fixed
port), so stopping it leaves the node the other tests use alone. One outlet's article pages are
held at the fixture server until the node is stopped, so those articles come after it, whatever
the load; they go to the spool and the next crawl replays them when it opens.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.reliability import (
    HELD_CRAWL,
    HELD_OUTLET,
    HELD_PAGES,
    crawl_again,
    expected_articles,
    held_back,
    indexed_counts,
    start_crawl,
    wait_until,
)
from tests.support.runner import ROOT, clean_env, run_veille, write_config
from veille.core.config import Environment
from veille.core.es import make_client
from veille.core.spool import pending

pytestmark = pytest.mark.slow


class OwnNode:
    """A second local Elasticsearch with its own state folder, started and stopped at will."""

    def __init__(self, home: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        shared_build = ROOT / ".es-local" / "build"
        if shared_build.is_dir():  # the launcher compiled for the shared node: no Maven run
            shutil.copytree(shared_build, home / "build")
        self.env = {
            **os.environ,
            "VEILLE_ES_HOME": str(home),
            "VEILLE_ES_PORT": str(port),
            "VEILLE_ES_JAVA_OPTS": "-Xms256m -Xmx512m",
            "VEILLE_ES_CLUSTER_NAME": "veille-outage-test",
        }
        self.url = f"http://127.0.0.1:{port}"

    def _run(self, command: str) -> str:
        done = subprocess.run(
            [str(ROOT / "scripts" / "es-local"), command],
            env=self.env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def start(self) -> None:
        assert self._run("start").splitlines()[-1] == self.url

    def stop(self) -> None:
        self._run("stop")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[OwnNode]:
    own = OwnNode(tmp_path / "es")
    own.start()
    try:
        yield own
    finally:
        own.stop()


def test_elasticsearch_down_mid_crawl_loses_no_article_and_indexes_none_twice(
    node, sites, tmp_path, index_prefix
):
    data_dir = tmp_path / "data"
    env = clean_env(
        VEILLE_ES_URL=node.url,
        VEILLE_INDEX_PREFIX=index_prefix,
        VEILLE_DATA_DIR=str(data_dir),
        VEILLE_CONFIG=str(write_config(tmp_path / "config", sites)),
    )
    assert run_veille("setup", env=env).returncode == 0
    es = make_client(Environment(es_url=node.url, index_prefix=index_prefix))
    wanted = expected_articles(sites)

    later = held_back(sites, wanted)
    hold = sites.hold(HELD_OUTLET, user_agent="", path_prefix=HELD_PAGES)
    try:
        crawl = start_crawl(env, tmp_path / "first", *HELD_CRAWL)
        wait_until(
            lambda: hold.paths and set(indexed_counts(es, index_prefix)) == wanted - later,
            120, "the other outlets' articles, and a held page in flight",
        )  # fmt: skip
        node.stop()
    finally:
        hold.release()
    first = crawl.summary()

    # the crawl went on without Elasticsearch: the held outlet's articles are on disk
    assert first["finish_reason"] == "finished"
    assert later and first["indexed"] == len(wanted - later)
    assert first["spooled"] == len(later), first
    assert sum(f.stat().st_size > 0 for f in pending(data_dir)) == 1
    # one WARNING says what is down and where the articles went; no traceback, no ERROR
    log = crawl.stderr.read_text(errors="replace")
    [warning] = [line for line in log.splitlines() if "unreachable" in line]
    assert "Elasticsearch unreachable" in warning and f"spool {data_dir / 'spool'}" in warning
    assert "Traceback" not in log and " ERROR: " not in log, log[-3000:]

    node.start()
    stats_file = tmp_path / "second-stats.json"
    second = crawl_again(env, "--set", f"VEILLE_STATS_FILE={stats_file}")
    assert second.returncode == 0, second.stderr
    # the spooled articles went in when the crawl opened, before any page was fetched again
    stats = json.loads(stats_file.read_text())
    assert stats["veille/spool/replayed"] == first["spooled"] - stats.get(
        "veille/spool/already_present", 0
    )
    assert stats.get("veille/indexed", 0) == 0

    counts = indexed_counts(es, index_prefix)
    es.close()
    assert set(counts) == wanted  # exactly the N on-topic articles...
    assert set(counts.values()) == {1}  # ...each once
    assert pending(data_dir) == []
