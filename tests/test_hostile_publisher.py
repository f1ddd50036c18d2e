"""A hostile publisher: every parse stays within its memory and CPU bounds, every refusal is
counted and logged once without a traceback, and nothing reaches a trap or the index.

The first tests send each attack through the parse path the crawl uses (an extraction worker of
``crawler/extraction_pool.py`` under ``crawler/limits.py``) and read what it took from the worker
(peak memory added, CPU seconds). They use tighter limits than the defaults, so that a parse
stopped at its limit costs the suite seconds, not twenty. Two crawls then meet the attacks as a
publisher serves them (tests/support/hostile.py): one source with bombs among good feeds, and one
whose every feed is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from crawler.discovery import DiscoveryError, parse_gdelt
from crawler.extraction import Extracted, ExtractionOptions, NotAnArticle, extract_article
from crawler.extraction_pool import ExtractionPool
from crawler.extraction_worker import extract_page
from crawler.feeds import read_feed
from crawler.limits import HARD_STOP_AFTER, MIB, ParseLimits, ParseRefused
from tests.support import hostile
from tests.support.hostile import HostileServer, Route, Trap
from tests.support.runner import FAST_CRAWL, ROOT, clean_env, run_veille, write_config
from tests.support.smtp_server import SmtpServer
from veille.core.es import IndexNames

# The default time base, so that no ordinary page is refused on a busy machine; less time per MiB
# and memory than the defaults, so that the attacks are stopped sooner.
LIMITS = ParseLimits(memory_mb=96, time_base=2.0, time_per_mb=1.0)


@pytest.fixture(scope="module")
def pool() -> Iterator[ExtractionPool]:
    workers = ExtractionPool(2, ExtractionOptions(), LIMITS)
    yield workers
    workers.close()


def test_entity_bomb_feed_is_refused_before_feedparser_expands_it(pool):
    bomb = hostile.entity_bomb_feed(references=20_000, width=100_000)  # 2e9 characters
    document, usage = pool.run_blocking(read_feed, bomb, "", size=len(bomb))
    assert document.entries == []
    assert document.problem.startswith("malformed: its internal entities would expand to")
    assert usage.memory_mb < 32 and usage.cpu_s < 0.5


def test_entities_a_feed_may_use_still_work():
    # feedparser's own test of a declared entity: "tag:example.com," expanded once
    feed = b"""<!DOCTYPE rss [\n  <!ENTITY id "tag:example.com,">\n]>
<rss version="2.0"><channel><item><link>http://example.org/a</link>
<guid isPermaLink='false'>&id;2006-05-04:/blog/</guid></item></channel></rss>"""
    document = read_feed(feed)
    assert document.problem is None and len(document.entries) == 1


def test_billion_laughs_and_external_entities_are_refused_and_read_nothing():
    for feed in (hostile.billion_laughs_feed(), hostile.external_entity_feed("/etc/passwd")):
        document = read_feed(feed)
        assert document.problem.startswith("malformed:") and document.entries == []
        assert "root:" not in document.problem


def test_feed_whose_parse_grows_with_the_square_of_its_size_stops_at_its_cpu_limit(pool):
    storm = hostile.comment_storm_feed(1 * MIB)  # about 45 s of CPU unbounded
    with pytest.raises(ParseRefused) as refused:
        pool.run_blocking(read_feed, storm, "", size=len(storm))
    assert refused.value.reason == "too_slow"
    budget = LIMITS.cpu_seconds(len(storm))
    # the timer stops it at the next bytecode; a regular expression then running may take it up
    # to the kernel's stop, HARD_STOP_AFTER seconds later
    assert refused.value.usage.cpu_s < budget + HARD_STOP_AFTER
    # an ordinary feed of the same size is read within the same limits
    ordinary = hostile.ordinary_feed(1 * MIB)
    document, usage = pool.run_blocking(read_feed, ordinary, "", size=len(ordinary))
    assert document.problem is None and len(document.entries) > 500
    assert usage.cpu_s < budget


def test_page_stuck_in_c_code_is_stopped_by_the_kernel_and_the_other_worker_goes_on(pool):
    from concurrent.futures import ThreadPoolExecutor

    storm = hostile.span_storm_page(33_000)  # 500 KB, about 20 s unbounded, inside libxml2
    good = hostile.article_page()
    with ThreadPoolExecutor(2) as both:
        stuck = both.submit(pool.run_blocking, extract_page, storm, "http://127.0.0.1/s",
                            ExtractionOptions(), size=len(storm))  # fmt: skip
        fine = both.submit(pool.run_blocking, extract_page, good, "http://127.0.0.1/g",
                           ExtractionOptions(), size=len(good))  # fmt: skip
        result, _ = fine.result(timeout=60)
        with pytest.raises(ParseRefused) as refused:
            stuck.result(timeout=60)
    assert isinstance(result, Extracted)
    assert refused.value.reason == "too_slow"
    assert refused.value.usage.cpu_s <= LIMITS.cpu_seconds(len(storm)) + HARD_STOP_AFTER
    # the pool started a new worker for the one the kernel ended: pages keep being extracted
    again, _ = pool.run_blocking(extract_page, good, "http://127.0.0.1/g", ExtractionOptions(),
                                 size=len(good))  # fmt: skip
    assert isinstance(again, Extracted)


def test_page_that_needs_more_memory_than_allowed_stays_within_the_limit(pool):
    page = hostile.table_page(260_000)  # 8 MiB; over 1 GB unbounded
    try:
        _, usage = pool.run_blocking(extract_page, page, "http://127.0.0.1/t",
                                     ExtractionOptions(), size=len(page))  # fmt: skip
    except ParseRefused as refused:
        assert refused.reason in ("too_large", "too_slow")
        usage = refused.usage
    assert usage.memory_mb < LIMITS.memory_mb + 32


def test_json_nested_deeper_than_python_recurses_is_skipped_not_raised():
    page = hostile.deep_json_ld_page()
    assert isinstance(extract_article(page, "http://127.0.0.1/j"), Extracted | NotAnArticle)
    with pytest.raises(DiscoveryError, match="nested too deeply"):
        parse_gdelt(hostile.deep_gdelt_json())


# --- Crawls --------------------------------------------------------------------------------

LIMIT_SETTINGS = ["--set", "VEILLE_PARSE_MEMORY_MB=96", "--set", "VEILLE_PARSE_TIME_BASE=2",
                  "--set", "VEILLE_PARSE_TIME_PER_MB=1.0", "--set", "DOWNLOAD_MAXSIZE=4194304",
                  "--set", "DOWNLOAD_TIMEOUT=5", "--set", "RETRY_TIMES=0"]  # fmt: skip


def _sources(folder: Path, name: str, urls: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    source = {"name": name, "type": "feed", "language": "en", "urls": urls,
              "schedule": {"every": "1h"}}  # fmt: skip
    (folder / "sources.yaml").write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
    (folder / "topics").symlink_to(ROOT / "config" / "topics")


def _env(tmp_path: Path, es_url: str, prefix: str, **extra: str) -> dict[str, str]:
    return clean_env(
        VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=prefix, VEILLE_DATA_DIR=str(tmp_path / "data"),
        VEILLE_CONFIG=str(tmp_path / "config"), VEILLE_SCHEDULER_TASKS="none", **extra,
    )  # fmt: skip


def _stored_run(es, prefix: str, source: str) -> dict:
    index = IndexNames(prefix).crawls
    es.indices.refresh(index=index)
    [hit] = es.search(index=index, query={"term": {"source": source}})["hits"]["hits"]
    return hit["_source"]


BOMB_SIZE = 6 * MIB  # over DOWNLOAD_MAXSIZE (4 MiB) once inflated or streamed


@pytest.fixture(scope="module")
def hostile_crawl(tmp_path_factory, es_url, index_prefix) -> Iterator[dict]:
    """One ``veille run-now`` of a source whose feeds and pages are the attacks, and one good
    article among them."""
    tmp = tmp_path_factory.mktemp("hostile")
    with Trap() as trap, HostileServer() as site:
        gz = {"Content-Type": "text/html; charset=utf-8"}

        def packed(body: bytes, encoding: str) -> Route:
            return Route(body, headers={**gz, "Content-Encoding": encoding})

        site.routes.update({
            "/good.html": Route(hostile.article_page().encode(), headers=gz),
            "/endless.html": Route(hostile.endless, headers=gz),
            "/gzip.html": packed(hostile.gzip_bomb(BOMB_SIZE), "gzip"),
            "/deflate.html": packed(hostile.deflate_bomb(BOMB_SIZE), "deflate"),
            "/brotli.html": packed(hostile.brotli_bomb(BOMB_SIZE), "br"),
            "/script.html": Route(status=302, headers={"Location": "javascript:alert(1)"}),
            "/trap.html": Route(status=302, headers={"Location": f"http://127.0.0.2:{trap.port}/"}),
            "/spans.html": Route(hostile.span_storm_page(33_000).encode(), headers=gz),
            "/slow.html": Route(hostile.article_page().encode(), headers=gz, drip=0.5),  # slowloris
            "/bomb.xml": Route(hostile.entity_bomb_feed(20_000)),
            "/storm.xml": Route(hostile.comment_storm_feed(1 * MIB)),
            "/gzip.xml": Route(hostile.gzip_bomb(BOMB_SIZE), headers={"Content-Encoding": "gzip"}),
            "/endless.xml": Route(hostile.endless),
        })  # fmt: skip
        pages = ["/good.html", "/endless.html", "/gzip.html", "/deflate.html", "/brotli.html",
                 "/script.html", "/trap.html", "/spans.html", "/slow.html"]  # fmt: skip
        site.routes["/feed.xml"] = Route(hostile.feed_of([site.url(p) for p in pages]))
        feeds = ["/feed.xml", "/bomb.xml", "/storm.xml", "/gzip.xml", "/endless.xml"]
        _sources(tmp / "config", "hostile-herald", [site.url(f) for f in feeds])
        env = _env(tmp, es_url, index_prefix)
        done = run_veille("run-now", "hostile-herald", "--json", *FAST_CRAWL, *LIMIT_SETTINGS,
                          env=env, timeout=300)  # fmt: skip
        run = json.loads(done.stdout)
        yield {
            "done": done,
            "run": run,
            "log": Path(run["log_file"]).read_text(encoding="utf-8", errors="replace"),
            "trap": trap.connections,
            "url": site.url,
            "seen": list(site.seen),
        }


@pytest.mark.slow
def test_hostile_source_is_crawled_to_the_end_with_every_attack_counted(hostile_crawl):
    run = hostile_crawl["run"]
    assert hostile_crawl["done"].returncode == 0, hostile_crawl["done"].stdout
    assert (run["status"], run["finish_reason"]) == ("success", "finished")
    assert run["duration_s"] < 120  # the bombs do not stall the crawl (generous: a shared CI)
    assert run["dropped"]["too_large"] == 3 + 2 + 1  # three bombs, the endless page and feed
    assert run["dropped"]["bad_scheme"] == 1
    assert run["dropped"]["blocked_address"] == 1
    assert run["dropped"]["too_slow"] == 1  # the span storm page, stopped by the kernel
    assert run["dropped"]["fetch_failed"] == 1  # the slowloris page, cut at DOWNLOAD_TIMEOUT
    problems = {p["url"].rsplit("/", 1)[1]: p for p in run["problems"]}
    assert set(problems) == {"bomb.xml", "storm.xml", "gzip.xml", "endless.xml"}
    assert all(p["kind"] == "malformed" for p in problems.values())
    assert "entity bomb" in problems["bomb.xml"]["detail"]
    assert problems["storm.xml"]["detail"].startswith("too_slow")
    assert run["flags"] == ["malformed_feed"]  # raised at once


@pytest.mark.slow
def test_hostile_source_stays_within_its_bounds_and_nothing_reaches_the_trap_or_the_index(
    hostile_crawl, es, index_prefix
):
    run = hostile_crawl["run"]
    assert hostile_crawl["trap"] == 0
    assert run["peak_memory_mb"] < 600  # the crawl process itself
    stats_line = next(line for line in hostile_crawl["log"].splitlines() if "max_memory_mb" in line)
    assert float(re.search(r"max_memory_mb': ([\d.]+)", stats_line).group(1)) < 96 + 32
    index = IndexNames(index_prefix).articles
    es.indices.refresh(index=index)
    urls = {hit["_source"]["url"] for hit in es.search(index=index, size=50)["hits"]["hits"]}
    assert urls == {hostile_crawl["url"]("/good.html")}


@pytest.mark.slow
def test_each_refusal_is_logged_once_at_warning_with_its_url_and_no_traceback(hostile_crawl):
    log = hostile_crawl["log"]
    assert "Traceback" not in log
    assert not [line for line in log.splitlines() if "] ERROR:" in line]
    for path in ["/endless.html", "/gzip.html", "/deflate.html", "/brotli.html", "/script.html",
                 "/spans.html", "/slow.html", "/bomb.xml", "/storm.xml", "/gzip.xml",
                 "/endless.xml"]:  # fmt: skip
        url = hostile_crawl["url"](path)
        lines = [line for line in log.splitlines() if url in line and "WARNING" in line]
        assert len(lines) == 1, (path, lines)


@pytest.mark.slow
def test_source_whose_every_feed_is_refused_is_no_feed_exits_1_and_the_operator_is_told_why(
    tmp_path, es_url, index_prefix, es
):
    bomb = {"/bomb.xml": Route(hostile.entity_bomb_feed(20_000))}
    with HostileServer(bomb) as site, socket_nobody_listens() as closed, SmtpServer() as smtp:
        urls = [closed, site.url("/bomb.xml")]
        _sources(tmp_path / "config", "gone-quiet", urls)
        env = _env(tmp_path, es_url, f"{index_prefix}-nofeed", **smtp.env(),
                   VEILLE_OPERATOR_EMAIL="ops@example.org")  # fmt: skip
        done = run_veille("run-now", "gone-quiet", *FAST_CRAWL, "--set", "RETRY_TIMES=0", env=env,
                          timeout=180)  # fmt: skip
        messages = smtp.messages
    assert done.returncode == 1, done.stdout + done.stderr
    assert "gone-quiet: no_feed" in done.stdout
    run = _stored_run(es, f"{index_prefix}-nofeed", "gone-quiet")
    assert run["status"] == "no_feed" and run["flags"] == ["malformed_feed"]
    assert f"{closed}: failed: connection refused" in run["reason"]
    assert f"{urls[1]}: malformed: its internal entities would expand" in run["reason"]
    [message] = messages
    assert message["Subject"] == "[veille] source gone-quiet: a feed is malformed or hostile"
    body = message.get_content()
    assert f"{urls[1]}: malformed: its internal entities would expand" in body
    assert f"{closed}: failed: connection refused" in body  # the run's line names both feeds


class socket_nobody_listens:
    """The URL of a port on 127.0.0.1 where nothing listens (bound, never listening)."""

    def __enter__(self) -> str:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/feed.xml"

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


@pytest.mark.slow
def test_crawl_over_its_memory_ceiling_stops_cleanly_keeps_its_articles_and_is_failed_memory(
    sites, tmp_path, es_url, index_prefix, es
):
    prefix = f"{index_prefix}-memory"
    write_config(tmp_path / "config", sites, ["le-veilleur"])
    env = _env(tmp_path, es_url, prefix)
    # A ceiling every crawl process is over, first looked at five seconds after the crawl began
    # (one request a second): articles are on their way through the pipeline by then.
    ceiling = ["--set", "VEILLE_MEMORY_LIMIT_MB=1", "--set", "VEILLE_MEMORY_CHECK_INTERVAL=5"]
    one_a_second = [
        "--set", "DOWNLOAD_DELAY=1",
        "--set", "CONCURRENT_REQUESTS_PER_DOMAIN=1",
        "--set", "VEILLE_BULK_SIZE=1",
    ]  # fmt: skip
    done = run_veille(
        "run-now", "le-veilleur", "--json", *FAST_CRAWL, *one_a_second, *ceiling, env=env
    )
    assert done.returncode == 1, done.stdout + done.stderr
    run = json.loads(done.stdout)
    assert (run["status"], run["reason"], run["finish_reason"]) == ("failed", "memory", "memory")
    log = Path(run["log_file"]).read_text(encoding="utf-8")
    assert len([line for line in log.splitlines() if "WARNING: memory:" in line]) == 1
    assert "Traceback" not in log
    # stopped early: fewer pages than the feed lists; what was extracted went all the way through
    assert 0 < run["pages_fetched"] < run["entries"]
    stats = {k: int(v) for k, v in re.findall(r"'(item_(?:scraped|dropped)_count)': (\d+)", log)}
    assert stats.get("item_scraped_count", 0) >= 1
    assert run["extracted"] == stats["item_scraped_count"] + stats.get("item_dropped_count", 0)
    assert run["spooled"] == 0
    index = IndexNames(prefix).articles
    es.indices.refresh(index=index)
    assert es.count(index=index)["count"] == run["indexed"] == stats["item_scraped_count"]
