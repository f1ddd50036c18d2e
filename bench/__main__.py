"""``python -m bench all``: where a crawl's time and memory go, and each performance goal's ratio.

    python -m bench all [--quick] [--articles N] [--memory 1000,10000] [--sample K] [--cpus 0]
    python -m bench peers [--quick] [--peer-articles N]
    python -m bench profile [--articles N] [--cpus 0]
    python -m bench hostile [--before main] [--quick]   # see bench/hostile.py

In:  a local Elasticsearch (``VEILLE_ES_URL``, else ``scripts/es-local start``); nothing else.
Out: a table on stdout (and ``--json PATH``):

- per stage, seconds per article (``bench.stages``: each stage alone on ``--sample`` articles);
- the end-to-end crawl: a real ``veille crawl --all`` subprocess over ``--articles`` synthetic
  articles (``bench.corpus``) served by ``bench.server`` on 127.0.0.1, translation off
  (``VEILLE_TRANSLATION=false``), AutoThrottle and download delay off, loopback allowed; its
  articles/s is article pages fetched over the crawl's own elapsed time (Scrapy's
  ``elapsed_time_seconds``), its peak RSS the largest sum over the crawl's process tree (of
  each process's proportional set size, so pages the forked workers share are counted once);
- the baselines measured in the same run: a bare trafilatura loop over the same pages with as many
  processes as the crawl extracts with, and a bare ``helpers.bulk`` of the same documents;
- the goals as ratios: crawl vs bare extraction (≥ 0.8), index stage vs bare bulk (≥ 0.8), peak
  RSS of the largest ``--memory`` crawl vs the smallest (≤ 1.5), the CPU per article of the
  crawl's own processes (crawl process, extraction forkserver and workers; not Elasticsearch nor
  the corpus server) vs the bare loop's (≤ 1.5; measured as specified with ``--cpus``, which pins
  both to the same CPUs);
- the extraction step against ``trafilatura.extract`` (``bench/extraction.py``, ≤ 1.15 in CPU
  per page), news-please against Veille on the same feeds (``bench/peers.py``, also alone as
  ``python -m bench peers``: ≥ 5× the articles/s, body F1 not lower) and translation at real model
  size (``python -m bench.translate --real-size``: ≥ 3× argostranslate per article);
- the other benchmarks' figures (``bench/translate.py``, ``bench/dedup.py``,
  ``bench/alerts.py``) when those modules exist, else a line saying the figure is missing.

``profile`` writes py-spy summaries to ``bench/profiles/`` (see ``bench/profile.py``): a crawl
(``crawl.txt``: reactor thread, worker threads, extraction processes) and the stages alone
(``stages.txt``).
``--quick`` (400 articles, memory 100 vs 400, smaller samples, two index rounds, 100 extraction
pages, peers on 90 articles, translation on 160 sentences, the other benchmarks not run but
named) is meant to run in about two minutes on an idle 2-core machine, once news-please is
installed and the real-size model generated (the first run does both, under the bench's cache:
``$VEILLE_BENCH_CACHE``, default ``~/.cache/veille-bench``).
Every index the bench creates has a ``bench-<random>`` prefix and is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import yaml

from bench import extraction as bench_extraction
from bench import peers as bench_peers
from bench.corpus import build_corpus
from bench.profile import spy, write_summary
from bench.server import CorpusServer
from bench.stages import bare_extraction

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "bench" / "profiles"
# Other developers' benchmarks, run with their defaults: module and what it measures.
OTHER_BENCHES = {
    "translate": "translation (bench/translate.py)",
    "language": "language detection (bench/language.py)",
    "dedup": "dedupe and clusters (bench/dedup.py)",
    "cluster_batch": "cluster stage, one article at a time vs batches (bench/cluster_batch.py)",
    "alerts": "alert matching (bench/alerts.py)",
}


def es_url() -> str:
    if os.environ.get("VEILLE_ES_URL"):
        return os.environ["VEILLE_ES_URL"]
    started = subprocess.run(
        [str(ROOT / "scripts" / "es-local"), "start"],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    return started.stdout.strip().splitlines()[-1]


def es_process(url: str) -> psutil.Process | None:
    """The local Elasticsearch process listening on ``url``'s port (for its CPU time)."""
    port = urlsplit(url).port
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
            return psutil.Process(connection.pid) if connection.pid else None
    return None


def cpu_seconds(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    times = process.cpu_times()
    return times.user + times.system


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of process ``pid`` onto ``cpus`` (threads it starts later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except OSError:  # a thread that ended meanwhile
            continue


def write_config(
    folder: Path, count: int, seed: int, base_url: str, site_urls: dict[str, str] | None = None
) -> Path:
    """A config folder: one feed source per synthetic outlet, the shipped topic files.

    With ``site_urls`` (a server started with ``sites=True``), each outlet's one feed on its own
    site, as ``python -m bench peers`` gives news-please.
    """
    corpus = build_corpus(count, seed, base_url)
    folder.mkdir(parents=True, exist_ok=True)
    listed = corpus.site_sources(site_urls) if site_urls else corpus.sources(base_url)
    sources = {"sources": listed}
    (folder / "sources.yaml").write_text(yaml.safe_dump(sources), encoding="utf-8")
    shutil.copytree(ROOT / "config" / "topics", folder / "topics", dirs_exist_ok=True)
    return folder


def data_dir(folder: Path) -> Path:
    """A crawl's own data folder, whose saved gazetteer is kept in the bench's cache.

    A deployment keeps its data folder from one crawl to the next, so only its first crawl
    builds the places gazetteer (seconds of CPU, in a child of the crawl process); every crawl
    of the bench starting afresh would pay for it each time. (The saved file's name changes
    with the gazetteer's code and data, so a stale one is never loaded.)
    """
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    shared = bench_peers.cache_dir() / "gazetteer"
    shared.mkdir(parents=True, exist_ok=True)
    (data / "gazetteer").symlink_to(shared, target_is_directory=True)
    return data


def bench_env(url: str, prefix: str, config: Path, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILLE_")}
    env.update(
        VEILLE_ES_URL=url,
        VEILLE_INDEX_PREFIX=prefix,
        VEILLE_CONFIG=str(config),
        VEILLE_DATA_DIR=str(data),
        VEILLE_TRANSLATION="false",
        PYTHONPATH=str(ROOT),
    )
    return env


def crawl_options(stats_file: Path, extra: list[str]) -> list[str]:
    from crawler import settings

    sets = [
        "AUTOTHROTTLE_ENABLED=false",
        "DOWNLOAD_DELAY=0",
        # Every outlet is on 127.0.0.1, which Scrapy counts as one site.
        "CONCURRENT_REQUESTS_PER_DOMAIN=16",
        f"VEILLE_STATS_FILE={stats_file}",
    ]
    if hasattr(settings, "VEILLE_ALLOWED_NETWORKS"):
        sets.append("VEILLE_ALLOWED_NETWORKS=127.0.0.1/32")
    options = []
    for value in [*sets, *extra]:
        options += ["--set", value]
    return options


class ProcessTree:
    """A process and all its descendants, sampled every 50 ms: peak RSS sum and CPU time.

    Memory is each process's PSS (its private pages plus its share of pages shared with
    others), so workers forked from one server do not count their common pages twice; plain
    RSS where the system does not report PSS.

    CPU is each process's own user + system time at its last sample, summed over every process
    seen, so extraction workers forked by a forkserver (which the crawl never waits for, so
    ``RUSAGE_CHILDREN`` misses them) count too; a process's last 50 ms may be missed.
    """

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self.cpu: dict[tuple[int, float], float] = {}  # (pid, start time) → CPU seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            try:
                tree = [self.process, *self.process.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for process in tree:
                try:
                    with process.oneshot():
                        memory = process.memory_full_info()
                        total += getattr(memory, "pss", memory.rss)
                        times = process.cpu_times()
                        key = (process.pid, process.create_time())
                except psutil.NoSuchProcess:
                    continue
                self.cpu[key] = times.user + times.system
            self.peak = max(self.peak, total)

    def stop(self) -> tuple[int, float, float]:
        """Peak RSS in bytes, CPU seconds of the whole tree and of its root process alone."""
        self._stop.set()
        self._thread.join()
        root = self.cpu.get((self.process.pid, self.process.create_time()), 0.0)
        return self.peak, sum(self.cpu.values()), root


@dataclass
class CrawlRun:
    articles: int
    seconds: float
    wall_seconds: float
    peak_rss: int
    cpu_seconds: float = 0.0
    es_cpu_seconds: float = 0.0
    main_cpu_seconds: float = 0.0  # the crawl process alone (reactor, pipeline, ES client)
    stats: dict[str, Any] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)  # URL path → text, with keep_texts

    @property
    def pages(self) -> int:
        return int(self.stats.get("veille/pages_fetched", 0))

    @property
    def per_second(self) -> float:
        return self.pages / self.seconds

    @property
    def cpu_ms_per_article(self) -> float:
        """CPU time of the crawl's processes and of Elasticsearch, per article page."""
        return 1000 * (self.cpu_seconds + self.es_cpu_seconds) / max(self.pages, 1)


def delete_prefix(url: str, prefix: str) -> None:
    from veille.core.config import Environment
    from veille.core.es import delete_indices, make_client

    client = make_client(Environment(es_url=url, index_prefix=prefix))
    try:
        delete_indices(client, prefix)
    finally:
        client.close()


def stored_texts(url: str, prefix: str) -> dict[str, str]:
    """URL path → text of every article a crawl indexed under ``prefix``."""
    from elasticsearch.helpers import scan

    from veille.core.config import Environment
    from veille.core.es import IndexNames, make_client

    client = make_client(Environment(es_url=url, index_prefix=prefix))
    try:
        hits = scan(client, index=IndexNames(prefix).articles, _source=["url", "text"])
        return {urlsplit(hit["_source"]["url"]).path: hit["_source"]["text"] for hit in hits}
    finally:
        client.close()


def run_crawl(
    count: int,
    seed: int,
    url: str,
    work: Path,
    extra: list[str],
    profile: Path | None = None,
    cpus: set[int] | None = None,
    sites: bool = False,
    keep_texts: bool = False,
) -> CrawlRun:
    """A real ``veille crawl --all`` over ``count`` served articles, in a subprocess.

    With ``cpus``, the crawl and its extraction workers run on those CPUs only, and
    Elasticsearch and the corpus server on the others. With ``sites``, each outlet is a site of
    its own with one feed (``CorpusServer(sites=True)``). With ``keep_texts``, the run keeps the
    text of every article indexed (``CrawlRun.texts``).
    """
    prefix = f"bench-{uuid.uuid4().hex[:10]}"
    folder = work / prefix
    stats_file = folder / "stats.json"
    with CorpusServer(count, seed, sites=sites) as server:
        config = write_config(
            folder / "config", count, seed, server.base_url, server.site_urls or None
        )
        env = bench_env(url, prefix, config, data_dir(folder))
        command = [sys.executable, "-m", "veille.cli", "crawl", "--all", "--json"]
        command += crawl_options(stats_file, extra)
        if profile is not None:
            command = [*spy(folder / "crawl.raw"), *command]
        elasticsearch = es_process(url)
        everything = set(range(os.cpu_count() or 1))
        if cpus:
            for service in (elasticsearch.pid if elasticsearch else None, server.pid):
                if service is not None:
                    pin(service, everything - cpus)
        start = time.perf_counter()
        cpu_start, es_start = children_cpu(), cpu_seconds(elasticsearch)
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )  # fmt: skip
        tree = ProcessTree(process.pid)
        out, err = process.communicate(timeout=3600)
        wall = time.perf_counter() - start
        es_cpu = cpu_seconds(elasticsearch) - es_start
        rss, tree_cpu, main_cpu = tree.stop()
        if cpus and elasticsearch is not None:
            pin(elasticsearch.pid, everything)
        # The crawl process itself is waited for, so its final CPU time is exact there.
        cpu = max(tree_cpu, children_cpu() - cpu_start)
    try:
        if process.returncode != 0:
            raise RuntimeError(f"veille crawl failed ({process.returncode}):\n{out}\n{err[-3000:]}")
        stats = json.loads(stats_file.read_text(encoding="utf-8"))
        if profile is not None:
            title = f"veille crawl --all of {count} synthetic articles (python -m bench profile)"
            write_summary(folder / "crawl.raw", profile, title)
        texts = stored_texts(url, prefix) if keep_texts else {}
    finally:
        delete_prefix(url, prefix)
    seconds = float(stats["elapsed_time_seconds"])
    return CrawlRun(count, seconds, wall, rss, cpu, es_cpu, main_cpu, stats, texts)


def stage_times(
    count: int,
    seed: int,
    url: str,
    work: Path,
    sample: int,
    index_docs: int,
    rounds: int = 3,
    profile: Path | None = None,
) -> dict[str, Any]:
    prefix = f"bench-{uuid.uuid4().hex[:10]}"
    folder = work / prefix
    out = folder / "stages.json"
    with CorpusServer(count, seed) as server:
        config = write_config(folder / "config", count, seed, server.base_url)
        env = bench_env(url, prefix, config, folder / "data")
        command = [
            sys.executable, "-m", "bench.stages", "--base-url", server.base_url,
            "--count", str(count), "--seed", str(seed), "--sample", str(sample),
            "--index-docs", str(index_docs), "--rounds", str(rounds),
            "--prefix", prefix, "--out", str(out),
        ]  # fmt: skip
        elasticsearch = es_process(url)
        if elasticsearch is not None:
            command += ["--es-pid", str(elasticsearch.pid)]
        if profile is not None:
            command = [*spy(folder / "stages.raw"), *command]
        try:
            subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=1800)
        finally:
            delete_prefix(url, prefix)
    if profile is not None:
        title = f"each stage alone on {sample} articles, index goal on {index_docs} documents"
        write_summary(folder / "stages.raw", profile, f"python -m bench.stages: {title}")
    return json.loads(out.read_text(encoding="utf-8"))


def other_benches(quick: bool) -> dict[str, str]:
    """Each other developer's benchmark module's output (printed as it comes), or why not."""
    figures = {}
    for module, label in OTHER_BENCHES.items():
        command = [sys.executable, "-m", f"bench.{module}"]
        if not (ROOT / "bench" / f"{module}.py").exists():
            figures[label] = f"missing: bench/{module}.py does not exist yet"
        elif quick:
            figures[label] = f"not run with --quick: python {' '.join(command[1:])}"
        else:
            try:
                done = subprocess.run(
                    command, cwd=ROOT, capture_output=True, text=True, timeout=1800
                )
            except subprocess.TimeoutExpired as exc:
                figures[label] = f"missing: {' '.join(command[1:])} ran past {exc.timeout:.0f} s"
            else:
                if done.returncode != 0:
                    figures[label] = f"failed ({done.returncode}): {done.stderr.strip()[-500:]}"
                else:
                    figures[label] = f"$ python {' '.join(command[1:])}\n{done.stdout.strip()}"
        print(f"\n== {label}\n{figures[label]}", flush=True)
    return figures


def mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"


def print_report(report: dict[str, Any]) -> None:
    crawl, bare, goal = report["crawl"], report["bare_extraction"], report["index_goal"]
    print(f"\nVeille benchmark: {report['machine']}")
    print(f"corpus: {crawl['articles']} synthetic articles (fr/en/es, about half on topic)\n")
    print(f"{'stage (alone, 32 in flight)':30} {'articles':>8} {'passed':>7} {'ms/article':>11}")
    for row in report["stages"]:
        per = 1000 * row["seconds"] / max(row["entered"], 1)
        print(f"{row['stage']:30} {row['entered']:8d} {row['passed']:7d} {per:11.2f}")
    print(
        f"\nend-to-end crawl: {crawl['per_second']:.1f} articles/s, "
        f"{crawl['cpu_ms_per_article']:.1f} CPU ms/article "
        f"(crawl process {crawl['main_cpu_ms']:.1f}, extraction workers "
        f"{crawl['workers_cpu_ms']:.1f}, Elasticsearch {crawl['es_cpu_ms']:.1f}; "
        f"{crawl['pages']} pages in {crawl['seconds']:.1f} s, wall {crawl['wall_seconds']:.1f} s;"
        f" indexed {crawl['indexed']}; {crawl['processes']} extraction processes)"
    )
    print(
        f"crawl's own processes: {crawl['processes_cpu_ms']:.1f} CPU ms/article; a crawl of "
        f"{crawl['small_crawl_pages']} pages spent {crawl['small_crawl_cpu_seconds']:.2f} s "
        f"(start-up), the {crawl['pages']}-page crawl {crawl['beyond_small_cpu_ms']:.1f} ms per "
        "page beyond it"
    )
    print(
        f"bare trafilatura loop: {bare['per_second']:.1f} articles/s, "
        f"{bare['cpu_ms_per_article']:.1f} CPU ms/article "
        f"({bare['pages']} pages in {bare['seconds']:.1f} s, {bare['processes']} processes)"
    )
    print(
        f"index stage: {goal['stage_docs_per_s']:.0f} docs/s, "
        f"{goal['stage_cpu_ms_per_doc']:.2f} CPU ms/doc; bare helpers.bulk: "
        f"{goal['bulk_docs_per_s']:.0f} docs/s, {goal['bulk_cpu_ms_per_doc']:.2f} CPU ms/doc "
        f"({goal['docs']} documents; CPU includes Elasticsearch's)"
    )
    for size, run in sorted(report["memory"].items(), key=lambda kv: int(kv[0])):
        print(
            f"peak RSS, crawl of {size} articles: {mib(run['peak_rss'])} "
            f"({run['per_second']:.1f} articles/s)"
        )
    bench_extraction.print_report(report["extraction"])
    bench_peers.print_report(report["peers"])
    print_goals(report["goals"])


def print_goals(goals: list[tuple]) -> None:
    print(f"\n{'goal':66} {'target':>7} {'wall':>6} {'CPU':>6}  met")
    for name, target, wall, cpu, met in goals:
        wall_text = f"{wall:6.2f}" if wall is not None else "     -"
        cpu_text = f"{cpu:6.2f}" if cpu is not None else "     -"
        print(f"{name:66} {target:>7} {wall_text} {cpu_text}  {'yes' if met else 'NO'}")
    print(
        "wall: the ratio of the rates as measured (for F1, of the scores); CPU: the same from CPU "
        "time per article (crawl processes plus Elasticsearch where it takes part), steadier "
        "when other work shares the machine. A goal with a wall figure is met by it, else by CPU"
    )


def crawl_sets(args: argparse.Namespace) -> list[str]:
    """``--set`` values for the crawls; with ``--cpus``, one extraction process per CPU given,
    as the bare loop has."""
    extra = list(args.set or [])
    if args.cpus and not any(s.startswith("VEILLE_EXTRACT_PROCESSES=") for s in extra):
        extra.append(f"VEILLE_EXTRACT_PROCESSES={len(args.cpus)}")
    return extra


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    url = es_url()
    extra = crawl_sets(args)
    from veille.ops.crawl import crawl_settings

    cpus = args.cpus
    if cpus:  # the bench itself, Elasticsearch and the corpus server keep to the other CPUs
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)) - cpus)
    processes = crawl_settings(dict(s.split("=", 1) for s in extra)).getint(
        "VEILLE_EXTRACT_PROCESSES", os.cpu_count() or 1
    )
    everything = set(range(os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="veille-bench-") as tmp:
        work = Path(tmp)
        # A JVM that has just started compiles its hot paths during the first crawl: an
        # untimed crawl first, so the figures are those of an Elasticsearch that runs warm.
        print("warm-up crawl of 300 articles (not timed) …", file=sys.stderr)
        run_crawl(300, args.seed + 1, url, work, extra, cpus=cpus)
        print(f"crawl of {args.articles} articles …", file=sys.stderr)
        crawl = run_crawl(args.articles, args.seed, url, work, extra, cpus=cpus)
        # One article per outlet: what a crawl costs before it has anything to do (start-up).
        print("crawl of 9 articles (start-up) …", file=sys.stderr)
        startup = run_crawl(9, args.seed, url, work, extra, cpus=cpus)
        print("bare extraction loop …", file=sys.stderr)
        extracted, bare_seconds, bare_cpu = bare_extraction(
            args.articles, args.seed, max(processes, 1), cpus
        )
        print("stages alone …", file=sys.stderr)
        stages = stage_times(
            args.articles, args.seed, url, work, args.sample, args.index_docs, args.rounds
        )
        memory: dict[str, CrawlRun] = {}
        for size in args.memory:
            if size == args.articles:
                memory[str(size)] = crawl
                continue
            print(f"crawl of {size} articles (memory) …", file=sys.stderr)
            memory[str(size)] = run_crawl(size, args.seed, url, work, extra, cpus=cpus)
        if cpus:  # the rest compares peers side by side, each on every CPU
            os.sched_setaffinity(0, everything)
        print("extraction step vs trafilatura.extract …", file=sys.stderr)
        extraction = bench_extraction.run(args.extraction_pages, 2 if args.quick else 3)
        peers = bench_peers.measure(args.peer_articles, args.seed, url, list(args.set or []))
        print("translation at real model size …", file=sys.stderr)
        translation = real_size_translation(args.quick, work)

    bare_rate = extracted / bare_seconds
    bare_cpu_ms = 1000 * bare_cpu / extracted
    goal = stages["index_goal"]
    small, large = min(args.memory), max(args.memory)
    rss_ratio = memory[str(large)].peak_rss / memory[str(small)].peak_rss
    crawl_ratio = crawl.per_second / bare_rate
    crawl_cpu_ratio = bare_cpu_ms / crawl.cpu_ms_per_article
    index_ratio = goal["stage_docs_per_s"] / goal["bulk_docs_per_s"]
    index_cpu_ratio = goal["bulk_cpu_ms_per_doc"] / goal["stage_cpu_ms_per_doc"]
    crawl_cpu_ms = 1000 * crawl.cpu_seconds / max(crawl.pages, 1)
    beyond_ms = (
        1000 * (crawl.cpu_seconds - startup.cpu_seconds) / max(crawl.pages - startup.pages, 1)
    )
    lean_ratio = crawl_cpu_ms / bare_cpu_ms
    pinned = f"both on CPU {','.join(map(str, sorted(cpus)))}" if cpus else "not pinned: --cpus"
    return {
        "machine": f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
        + (
            f"; crawl and bare loop on CPU {','.join(map(str, sorted(cpus)))}, Elasticsearch, "
            "corpus server and bench on the others"
            if cpus
            else "; everything on every CPU"
        ),
        "crawl": {
            "articles": args.articles,
            "pages": crawl.pages,
            "seconds": crawl.seconds,
            "wall_seconds": crawl.wall_seconds,
            "per_second": crawl.per_second,
            "cpu_ms_per_article": crawl.cpu_ms_per_article,
            "es_cpu_seconds": crawl.es_cpu_seconds,
            "main_cpu_ms": 1000 * crawl.main_cpu_seconds / max(crawl.pages, 1),
            "workers_cpu_ms": 1000
            * (crawl.cpu_seconds - crawl.main_cpu_seconds)
            / max(crawl.pages, 1),
            "es_cpu_ms": 1000 * crawl.es_cpu_seconds / max(crawl.pages, 1),
            "indexed": int(crawl.stats.get("veille/indexed", 0)),
            "processes_cpu_ms": crawl_cpu_ms,
            "small_crawl_cpu_seconds": startup.cpu_seconds,
            "small_crawl_pages": startup.pages,
            "beyond_small_cpu_ms": beyond_ms,
            "peak_rss": crawl.peak_rss,
            "processes": processes,
            "stats": crawl.stats,
        },
        "bare_extraction": {
            "pages": extracted,
            "seconds": bare_seconds,
            "per_second": bare_rate,
            "cpu_ms_per_article": bare_cpu_ms,
            "processes": max(processes, 1),
        },
        "stages": stages["stages"],
        "index_goal": goal,
        "memory": {
            size: {"peak_rss": run.peak_rss, "per_second": run.per_second}
            for size, run in memory.items()
        },
        "goals": [
            (f"crawl of {args.articles} vs bare extraction, articles/s", ">= 0.80",
             crawl_ratio, crawl_cpu_ratio, crawl_ratio >= 0.8),
            ("index stage vs bare helpers.bulk, docs/s", ">= 0.80",
             index_ratio, index_cpu_ratio, index_ratio >= 0.8),
            (f"peak RSS, crawl of {large} vs {small} articles", "<= 1.50",
             rss_ratio, None, rss_ratio <= 1.5),
            (f"crawl processes' CPU per article vs bare loop ({pinned})", "<= 1.50",
             None, lean_ratio, lean_ratio <= 1.5),
            ("extraction step vs trafilatura.extract, CPU per page", f"<= {bench_extraction.GOAL}",
             None, extraction["ratio"], extraction["ratio"] <= bench_extraction.GOAL),
            *peers["goals"],
            *translation["goals"],
        ],
        "extraction": extraction,
        "peers": peers,
        "translation": translation,
    }  # fmt: skip


def real_size_translation(quick: bool, work: Path) -> dict[str, Any]:
    """``python -m bench.translate --real-size`` in its own process (argostranslate reads its
    package folder once per process); its output printed as it comes, its figures returned."""
    out = work / "translation.json"
    command = [sys.executable, "-m", "bench.translate", "--real-size", "--json", str(out)]
    subprocess.run([*command, *(["--quick"] if quick else [])], cwd=ROOT, check=True, timeout=3600)
    return json.loads(out.read_text(encoding="utf-8"))


def run_peers(args: argparse.Namespace) -> dict[str, Any]:
    report = bench_peers.measure(args.peer_articles, args.seed, es_url(), list(args.set or []))
    bench_peers.print_report(report)
    print_goals(report["goals"])
    return report


def run_profile(args: argparse.Namespace) -> None:
    """py-spy summaries of a crawl and of the stages alone, in bench/profiles/."""
    url = es_url()
    with tempfile.TemporaryDirectory(prefix="veille-bench-") as tmp:
        work = Path(tmp)
        crawl = PROFILES / "crawl.txt"
        extra = crawl_sets(args)
        run = run_crawl(args.articles, args.seed, url, work, extra, crawl, args.cpus)
        print(f"{crawl}: {run.pages} pages at {run.per_second:.1f} articles/s (under py-spy)")
        stages = PROFILES / "stages.txt"
        stage_times(
            args.articles, args.seed, url, work, args.sample, args.index_docs, profile=stages
        )
        print(f"{stages}: {args.sample} articles per stage")


def parse_cpus(parser: argparse.ArgumentParser, text: str | None) -> set[int] | None:
    """``0,2`` or ``0-3`` as a set of CPU numbers, leaving at least one CPU for the rest."""
    if not text:
        return None
    cpus: set[int] = set()
    try:
        for part in text.split(","):
            first, _, last = part.partition("-")
            cpus.update(range(int(first), int(last or first) + 1))
    except ValueError:
        parser.error(f"--cpus {text!r}: write CPU numbers like 0 or 0,1 or 0-3")
    available = os.sched_getaffinity(0)
    if not cpus < available:
        parser.error(
            f"--cpus {text!r}: choose some of CPUs {sorted(available)} and leave at least one "
            "for Elasticsearch and the corpus server"
        )
    return cpus


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["hostile"]:  # its own options (bench/hostile.py)
        from bench.hostile import main as hostile

        hostile(arguments[1:])
        return
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["all", "peers", "profile", "hostile"])
    parser.add_argument("--quick", action="store_true", help="small sizes: under two minutes")
    parser.add_argument("--articles", type=int, help="articles in the timed crawl (2000)")
    parser.add_argument("--memory", help="crawl sizes compared for memory (1000,10000)")
    parser.add_argument("--sample", type=int, help="articles per stage timing (300)")
    parser.add_argument("--index-docs", type=int, help="documents for the index goal (2000)")
    parser.add_argument(
        "--peer-articles", type=int, help="articles of the side-by-side crawls of peers (900)"
    )
    parser.add_argument("--extraction-pages", type=int, help="pages of the extraction goal (300)")
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--set", action="append", help="Scrapy setting for the crawls: NAME=VALUE")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--cpus",
        help="CPUs for the crawl and the bare loop, e.g. 0 or 0-3; Elasticsearch, the corpus "
        "server and the bench itself then run on the others",
    )
    args = parser.parse_args(argv)
    args.articles = args.articles or (400 if args.quick else 2000)
    memory = args.memory or ("100,400" if args.quick else "1000,10000")
    args.memory = [int(n) for n in memory.split(",")]
    args.sample = args.sample or (80 if args.quick else 300)
    args.index_docs = args.index_docs or (600 if args.quick else 2000)
    args.rounds = 2 if args.quick else 3
    args.peer_articles = args.peer_articles or (90 if args.quick else 900)
    args.extraction_pages = args.extraction_pages or (100 if args.quick else 300)
    args.cpus = parse_cpus(parser, args.cpus)
    if args.command == "profile":
        run_profile(args)
        return
    if args.command == "peers":
        report = run_peers(args)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        return
    report = run_all(args)
    print_report(report)
    sys.stdout.flush()
    report["others"] = other_benches(args.quick)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
