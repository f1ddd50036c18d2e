"""A crawl killed with SIGKILL and run again: every article indexed once, none fetched twice.

The crawl keeps its Scrapy job state in ``<data>/jobs/<spider>-<sources>`` (``JOBDIR``); what
is done is what the index holds, so the second run fetches only the pages whose articles did
not reach it.
"""

from __future__ import annotations

import os
import signal
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
from tests.support.runner import clean_env, run_veille, write_config

pytestmark = pytest.mark.slow


def test_crawl_killed_with_sigkill_and_run_again_indexes_every_article_once(
    sites, es, es_url, index_prefix, tmp_path: Path
):
    data_dir = tmp_path / "data"
    env = clean_env(
        VEILLE_ES_URL=es_url,
        VEILLE_INDEX_PREFIX=index_prefix,
        VEILLE_DATA_DIR=str(data_dir),
        VEILLE_CONFIG=str(write_config(tmp_path / "config", sites)),
    )
    assert run_veille("setup", env=env).returncode == 0
    wanted = expected_articles(sites)

    rest = wanted - held_back(sites, wanted)
    hold = sites.hold(HELD_OUTLET, user_agent="", path_prefix=HELD_PAGES)
    try:
        crawl = start_crawl(env, tmp_path / "first", *HELD_CRAWL)
        wait_until(
            lambda: hold.paths and set(indexed_counts(es, index_prefix)) == rest,
            120, "the other outlets' articles, and a held page in flight",
        )  # fmt: skip
        os.killpg(crawl.process.pid, signal.SIGKILL)
        crawl.process.wait(timeout=30)
    finally:
        hold.release()
    before = indexed_counts(es, index_prefix)
    assert set(before) == rest and rest < wanted, "killed in the middle of the crawl"
    assert [p.name for p in (data_dir / "jobs").iterdir()] == [
        "feed-le-veilleur+northern-ledger+el-vigia+broken-gazette"
    ]

    sites.clear_requests()
    again = crawl_again(env)
    assert again.returncode == 0, again.stderr

    after = indexed_counts(es, index_prefix)
    assert set(after) == wanted
    assert set(after.values()) == {1}
    # resumed where it was: no page whose article was already indexed is fetched again
    for url in before:
        outlet = sites.outlet_for_url(url)
        path = url.removeprefix(sites.base_url(outlet))
        assert path not in [r.split("?")[0] for r in sites.requests(outlet)], url
