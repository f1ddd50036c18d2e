"""Scale-out: `veille worker` processes sharing one Redis queue and one Elasticsearch index.

Real redis-server (``VEILLE_TEST_REDIS_URL`` from scripts/test, or one started here), real
Elasticsearch, and a fixture outlet of 200 on-topic articles in ten section feeds, written by
:func:`write_outlet` under the test's tmp_path and served on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

import pytest
import redis
import yaml

from tests.support.fixture_server import FixtureSites, Hold
from tests.support.redis_server import RedisServer
from tests.support.runner import FAST_CRAWL, ROOT, clean_env, run_veille
from veille.core.config import Environment
from veille.core.distributed import RedisKeys, queue_status
from veille.core.es import IndexNames, delete_indices, make_client

pytestmark = pytest.mark.slow

OUTLET = "harbour-watch"
ARTICLES = 200
FEEDS = 10

CITIES = [
    "Toronto", "Montreal", "Vancouver", "London", "Glasgow", "Dublin", "Amsterdam", "Rotterdam",
    "Prague", "Budapest", "Madrid", "Barcelona", "Milan", "Florence", "Lisbon", "Stockholm",
    "Oslo", "Frankfurt", "Paris", "Lyon", "Brussels", "New York", "Los Angeles", "Sydney",
    "Auckland", "Santiago", "Buenos Aires", "Lima", "Sao Paulo", "Johannesburg",
]  # fmt: skip
OFFICIALS = [
    "a spokesperson for the RCMP", "a senior police officer", "an interior ministry official",
    "a local councillor", "a member of parliament", "the city's police chief",
    "a prosecutor", "a researcher at Safeguard Defenders", "a lawyer for the community group",
]  # fmt: skip
OPENINGS = [
    "Investigators in {city} are examining an office suspected of serving as an overseas "
    "police station run on behalf of the Chinese Ministry of Public Security.",
    "Residents of {city} learned this week that a Chinese police station had operated for "
    "{years} years above a grocery shop, according to Safeguard Defenders.",
    "Police in {city} have opened an inquiry into what they describe as transnational "
    "repression targeting Uyghurs and other dissidents living in the city.",
    "A community association in {city} denies claims that it hosted a secret police station "
    "linked to public security bureaus in Fuzhou and Qingtian.",
]
MIDDLES = [
    "According to {official}, at least {n} people were contacted by men who urged them to "
    "return to China to face charges.",
    "The report by Safeguard Defenders lists {n} such stations in {countries} countries, "
    "presented by Beijing as service centres for driving licences.",
    "{official_cap} said the authorities had received {n} complaints of harassment from "
    "members of the Chinese diaspora since the spring.",
    "Critics say the overseas police stations are part of the United Front strategy and a "
    "form of foreign interference that host countries tolerated for years.",
    "Dissidents interviewed in {city} described phone calls in which relatives in China were "
    "threatened unless they stopped speaking out.",
    "The Chinese embassy rejected the accusations, saying volunteers only helped citizens "
    "renew documents during the pandemic.",
    "Lawmakers in {city} called for a registry of foreign agents after the revelations about "
    "the police station.",
    "{official_cap} confirmed that {n} officers were assigned to the investigation, which "
    "began after a tip from a former volunteer.",
]
CLOSINGS = [
    "The investigation in {city} is expected to last several months.",
    "No arrests have been made in {city} so far, {official} said.",
    "Safeguard Defenders plans to publish an update on the stations in {month}.",
    "Community leaders in {city} urged anyone who was approached to contact the police.",
]
MONTHS = ["January", "March", "May", "July", "September", "November"]


def _article(number: int) -> tuple[str, str, datetime]:
    """Title, HTML body paragraphs and date of article ``number``: same number, same article."""
    rng = random.Random(number)
    city = CITIES[number % len(CITIES)]

    def fill(template: str) -> str:
        official = rng.choice(OFFICIALS)
        return template.format(
            city=city, official=official, official_cap=official[0].upper() + official[1:],
            n=rng.randint(2, 400), years=rng.randint(2, 9), countries=rng.randint(20, 60),
            month=rng.choice(MONTHS),
        )  # fmt: skip

    sentences = [fill(rng.choice(OPENINGS))]
    sentences += [fill(s) for s in rng.sample(MIDDLES, 6)]
    sentences.append(fill(rng.choice(CLOSINGS)))
    sentences.append(f"This is report number {number} in our series on the stations.")
    paragraphs = "".join(
        f"<p>{escape(' '.join(sentences[i : i + 2]))}</p>\n" for i in range(0, len(sentences), 2)
    )
    title = f"{city}: inquiry into Chinese overseas police station, report {number}"
    published = datetime(2025, 1, 1, 8, tzinfo=UTC) + timedelta(hours=7 * number)
    return title, paragraphs, published


def write_outlet(root: Path, articles: int = ARTICLES, feeds: int = FEEDS) -> list[str]:
    """An outlet of ``articles`` pages listed across ``feeds`` section feeds; returns the paths."""
    site = root / OUTLET
    (site / "news").mkdir(parents=True)
    (site / "feeds").mkdir()
    paths, items = [], []
    for number in range(1, articles + 1):
        title, paragraphs, published = _article(number)
        path = f"/news/report-{number:04d}.html"
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} | Harbour Watch</title>
<link rel="canonical" href="{{{{BASE}}}}{path}">
<meta property="og:type" content="article"><meta property="og:title" content="{escape(title)}">
<meta property="article:published_time" content="{published.isoformat()}">
</head><body><nav><a href="/">Harbour Watch</a> · <a href="/world/">World</a></nav>
<article><h1>{escape(title)}</h1>
<p class="byline">By Harbour Watch staff · <time datetime="{published.isoformat()}">
{published:%d %B %Y}</time></p>
{paragraphs}</article><footer>© Harbour Watch</footer></body></html>
"""
        (site / path.lstrip("/")).write_text(page, encoding="utf-8")
        paths.append(path)
        items.append(
            f"<item><title>{escape(title)}</title><link>{{{{BASE}}}}{path}</link>"
            f"<pubDate>{published:%a, %d %b %Y %H:%M:%S} +0000</pubDate></item>"
        )
    for section in range(feeds):
        body = "\n".join(items[section::feeds])
        (site / "feeds" / f"section-{section + 1:02d}.xml").write_text(
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>Harbour Watch, section {section + 1}</title><link>{{{{BASE}}}}/</link>"
            f"<description>News</description>\n{body}\n</channel></rss>\n",
            encoding="utf-8",
        )
    return paths


# --- Fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """The test Redis: scripts/test's (VEILLE_TEST_REDIS_URL) or one started for this session."""
    url = os.environ.get("VEILLE_TEST_REDIS_URL")
    if url:
        yield url
        return
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


def worker_agent(number: int) -> str:
    """What the outlet sees in the User-Agent of worker ``number``'s requests."""
    return f"(worker-{number})"


class Deployment:
    """One distributed deployment: its own index prefix, Redis keys, config, outlet and workers."""

    def __init__(self, folder: Path, es_url: str, redis_url: str, sites: FixtureSites) -> None:
        self.folder = folder
        self.prefix = f"vt-{uuid.uuid4().hex[:10]}"
        self.keys = RedisKeys(self.prefix)
        self.redis = redis.Redis.from_url(redis_url)
        self.es = make_client(Environment(es_url=es_url, index_prefix=self.prefix))
        self.index = IndexNames(self.prefix).articles
        self.sites = sites
        base = sites.base_url(OUTLET)
        config = folder / "config"
        (config / "topics").mkdir(parents=True)
        source = {
            "name": OUTLET, "type": "feed", "language": "en", "country": "GB",
            "urls": [f"{base}/feeds/section-{n:02d}.xml" for n in range(1, FEEDS + 1)],
        }  # fmt: skip
        (config / "sources.yaml").write_text(yaml.safe_dump({"sources": [source]}))
        for topic in (ROOT / "config" / "topics").glob("*.yaml"):
            (config / "topics" / topic.name).write_bytes(topic.read_bytes())
        self.env = clean_env(
            VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=self.prefix, VEILLE_REDIS_URL=redis_url,
            VEILLE_CONFIG=str(config), VEILLE_DATA_DIR=str(folder / "data"),
        )  # fmt: skip
        self.workers: list[subprocess.Popen[bytes]] = []

    def start_worker(self, *settings: str) -> subprocess.Popen[bytes]:
        """Worker number N; its requests carry ``worker-N`` in their User-Agent."""
        number = len(self.workers)
        stats = self.folder / f"worker-{number}.json"
        log = (self.folder / f"worker-{number}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "veille.cli", "worker", *FAST_CRAWL,
             "--set", f"VEILLE_STATS_FILE={stats}", "--set", "LOG_LEVEL=INFO",
             "--set", f"USER_AGENT=VeilleTest/1.0 {worker_agent(number)}", *settings],
            env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.workers.append(process)
        return process

    def worker_stats(self, number: int) -> dict:
        return json.loads((self.folder / f"worker-{number}.json").read_text())

    def log(self, number: int) -> str:
        return (self.folder / f"worker-{number}.log").read_text(errors="replace")[-4000:]

    def push(self) -> None:
        pushed = run_veille("push", "--all", env=self.env)
        assert pushed.returncode == 0, pushed.stderr

    def indexed_urls(self) -> list[str]:
        if not self.es.indices.exists_alias(name=self.index):
            return []
        self.es.indices.refresh(index=self.index)
        hits = self.es.search(index=self.index, size=1000, source=["canonical_url"])
        return [hit["_source"]["canonical_url"] for hit in hits["hits"]["hits"]]

    def article_fetches(self, worker: int | None = None) -> Counter[str]:
        """Article pages requested from the outlet, by all workers or by worker number N."""
        agent = None if worker is None else worker_agent(worker)
        return Counter(p for p in self.sites.requests(OUTLET, agent) if p.startswith("/news/"))

    def hold_articles(self, worker: int) -> Hold:
        """Worker N's article requests reach the outlet and stay there, unanswered."""
        return self.sites.hold(OUTLET, user_agent=worker_agent(worker), path_prefix="/news/")

    def wait_for(self, what: str, condition: Callable[[], bool], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            for number, worker in enumerate(self.workers):
                if worker.poll() not in (None, -signal.SIGKILL):
                    pytest.fail(f"worker {number} exited early:\n{self.log(number)}")
            if time.monotonic() > deadline:
                logs = "\n".join(self.log(n) for n in range(len(self.workers)))
                pytest.fail(f"timed out waiting for {what}; queue {self.status()}\n{logs}")
            time.sleep(0.3)

    def status(self) -> dict:
        return queue_status(self.redis, self.keys)

    def leases(self) -> list[bytes]:
        """Article URLs leased by a worker and not yet expired (EXISTS expires a key on time)."""
        keys = self.redis.scan_iter(match=f"{self.keys.leases}:*")
        return [key for key in keys if self.redis.exists(key)]

    def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            worker.wait(timeout=60)

    def close(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        for key in self.redis.scan_iter(match=f"{self.prefix}:*"):
            self.redis.delete(key)
        self.redis.close()
        delete_indices(self.es, self.prefix)
        self.es.close()


@pytest.fixture
def outlet(tmp_path_factory) -> Iterator[tuple[FixtureSites, list[str]]]:
    root = tmp_path_factory.mktemp("sites")
    paths = write_outlet(root)
    with FixtureSites(root) as sites:
        yield sites, paths


@pytest.fixture
def deployment(tmp_path, es_url, redis_url, outlet) -> Iterator[Deployment]:
    sites, _ = outlet
    deployed = Deployment(tmp_path, es_url, redis_url, sites)
    try:
        setup = run_veille("setup", env=deployed.env)  # as compose's setup service does, once
        assert setup.returncode == 0, setup.stderr
        yield deployed
    finally:
        deployed.close()


def _expected_urls(outlet: tuple[FixtureSites, list[str]]) -> list[str]:
    sites, paths = outlet
    return sorted(sites.url(OUTLET, path) for path in paths)


# --- Tests ----------------------------------------------------------------------------------


def test_compose_distributed_profile_adds_redis_and_workers_fed_by_the_scheduler(tmp_path):
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is missing: apt-get install -y docker-compose (scripts/test)"
    env_file = tmp_path / ".env"
    env_file.write_text(
        (ROOT / ".env.example").read_text() + "VEILLE_REDIS_URL=redis://redis:6379/0\n"
    )
    result = subprocess.run(
        [compose, "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml"),
         "--env-file", str(env_file), "--profile", "distributed", "config"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    worker, redis_service = services["worker"], services["redis"]
    assert worker["profiles"] == redis_service["profiles"] == ["distributed"]
    assert worker["command"] == ["veille", "worker"]
    assert worker["environment"]["VEILLE_REDIS_URL"] == "redis://redis:6379/0"
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert "container_name" not in worker, "a fixed name would forbid --scale worker=4"
    assert not redis_service.get("ports"), "Redis holds pickled requests: never publish it"
    assert services["scheduler"]["environment"]["VEILLE_REDIS_URL"] == "redis://redis:6379/0"


def test_scheduler_in_distributed_mode_queues_the_feeds_instead_of_crawling(deployment):
    sources_file = Path(deployment.env["VEILLE_CONFIG"]) / "sources.yaml"
    sources = yaml.safe_load(sources_file.read_text())
    sources["sources"][0]["schedule"] = {"every": "1h", "jitter": "1s"}
    sources_file.write_text(yaml.safe_dump(sources))
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "veille.cli", "schedule"], env=deployment.env, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deployment.wait_for("the feeds", lambda: deployment.status()["feeds_waiting"] == FEEDS)
    finally:
        scheduler.send_signal(signal.SIGTERM)
        _, log = scheduler.communicate(timeout=60)

    messages = map(json.loads, deployment.redis.smembers(deployment.keys.start_urls))
    queued = {(message["source"], message["url"]) for message in messages}
    assert queued == {(OUTLET, url) for url in sources["sources"][0]["urls"]}
    assert f"crawl {OUTLET} queued for the workers: {FEEDS} feed URLs" in log.decode()
    assert deployment.sites.requests(OUTLET) == [], "the scheduler fetched pages itself"


# A page held at the outlet must not time out (and be fetched again) while the other worker,
# slow on a loaded machine, takes its own.
HELD_PAGES_WAIT = ("--set", "DOWNLOAD_TIMEOUT=180")


def test_two_workers_share_the_crawl_and_index_every_article_exactly_once(deployment, outlet):
    # Each worker keeps at most four pages in flight, and the outlet holds the first four of
    # each until both have theirs: both take work from the one queue whatever the load (on a
    # busy machine either could otherwise take nearly all of it before the other starts).
    for _ in range(2):
        deployment.start_worker(
            "--set", "VEILLE_REDIS_POLL=0.2", "--set", "CONCURRENT_REQUESTS=4", *HELD_PAGES_WAIT
        )  # fmt: skip
    holds = [deployment.hold_articles(n) for n in range(2)]
    deployment.wait_for("two live workers", lambda: len(deployment.status()["workers"]) == 2)

    deployment.push()
    deployment.wait_for("4 pages in flight at each worker", lambda: all(
        len(hold.paths) == 4 for hold in holds))  # fmt: skip
    for hold in holds:
        hold.release()
    deployment.wait_for("200 articles", lambda: len(deployment.indexed_urls()) >= ARTICLES)
    deployment.wait_for("an empty queue", lambda: deployment.status()["requests_queued"] == 0)
    deployment.stop_workers()

    assert sorted(deployment.indexed_urls()) == _expected_urls(outlet)
    fetches = deployment.article_fetches()
    assert len(fetches) == ARTICLES
    assert set(fetches.values()) == {1}, "an article page was fetched by both workers"
    stats = [deployment.worker_stats(n) for n in range(2)]
    assert [s["finish_reason"] for s in stats] == ["shutdown", "shutdown"]
    pages = [s.get("veille/pages_fetched", 0) for s in stats]
    assert pages == [deployment.article_fetches(n).total() for n in range(2)]
    assert sum(pages) == ARTICLES and min(pages) >= 4, f"pages fetched per worker: {pages}"
    assert sum(s.get("veille/indexed", 0) for s in stats) == ARTICLES
    assert sum(s.get("veille/index/already_present", 0) for s in stats) == 0


def test_killed_worker_loses_nothing_the_other_finishes_after_the_next_push(deployment, outlet):
    # The outlet holds each worker's first four article pages (all a worker may have in flight)
    # until both have theirs; the doomed worker is then killed with exactly those four taken
    # from the queue and not indexed.
    lease = ("--set", "VEILLE_REDIS_LEASE=2s", "--set", "CONCURRENT_REQUESTS=4", *HELD_PAGES_WAIT)
    doomed, survivor = deployment.start_worker(*lease), deployment.start_worker(*lease)
    doomed_hold, survivor_hold = deployment.hold_articles(0), deployment.hold_articles(1)
    deployment.wait_for("two live workers", lambda: len(deployment.status()["workers"]) == 2)

    deployment.push()
    deployment.wait_for("4 pages in flight at each worker", lambda: (
        len(doomed_hold.paths) == len(survivor_hold.paths) == 4))  # fmt: skip
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    doomed_hold.release()
    survivor_hold.release()
    base = outlet[0].base_url(OUTLET)
    in_flight = {base + path for path in doomed_hold.paths}

    # The survivor empties the shared queue; what the killed worker had taken is not in it. (The
    # killed worker may also have been reading a feed: its entries not yet queued are lost
    # until the next push too.)
    def survivor_settled() -> bool:
        status = deployment.status()
        if status["requests_queued"] or status["feeds_waiting"] or deployment.leases():
            return False
        if len(status["workers"]) != 1:  # the killed worker's heartbeat has not expired yet
            return False
        (worker,) = status["workers"]
        fetched = deployment.article_fetches(1).total()
        indexed = len(deployment.indexed_urls())
        return fetched == worker["pages_fetched"] == worker["indexed"] == indexed

    deployment.wait_for("the survivor to empty the queue and index what it took", survivor_settled)
    indexed_before = set(deployment.indexed_urls())
    assert not indexed_before & in_flight
    assert indexed_before < set(_expected_urls(outlet))
    assert sorted(deployment.article_fetches(1).values()) == [1] * len(indexed_before)

    # The scheduler's next run pushes the feeds again: the survivor fetches only what was lost.
    before = deployment.article_fetches()
    deployment.push()
    deployment.wait_for("200 articles", lambda: len(deployment.indexed_urls()) >= ARTICLES)
    deployment.stop_workers()

    assert sorted(deployment.indexed_urls()) == _expected_urls(outlet)
    refetched = deployment.article_fetches() - before
    lost = set(_expected_urls(outlet)) - indexed_before
    assert {base + path for path in refetched} == lost and in_flight <= lost
    assert set(refetched.values()) == {1}
    stats = deployment.worker_stats(1)
    assert stats["finish_reason"] == "shutdown"
    assert stats.get("veille/index/already_present", 0) == 0
    assert survivor.returncode == 0
