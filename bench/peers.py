"""Veille against a peer crawler, side by side: news-please's own RSS crawler on the same feeds.

    python -m bench peers [--quick] [--articles N] [--json FILE]

In:  a local Elasticsearch (for Veille), as for ``python -m bench all``; PyPI the first time,
     to install news-please.
Out: for each crawler, one row: articles it stored, the seconds it took, articles/s, CPU ms per
     article, peak memory and the body F1 of what it stored against the corpus's ground truth;
     then the goals (Veille's articles/s ≥ 5× news-please's, its F1 not lower).

news-please (``NEWS_PLEASE``, the Scrapy-based news crawler users pick for this job) is
installed in a virtual environment of its own under the bench's cache
(``$VEILLE_BENCH_CACHE``, default ``~/.cache/veille-bench``), since its pins clash with ours
(elasticsearch 9 among them); the install happens once, later runs reuse it.

The corpus (``bench.corpus``) is served by ``bench.server`` with ``sites=True``: each of the nine
outlets is a site of its own on its own port of 127.0.0.1, whose home page announces one RSS
feed listing all the outlet's articles. news-please's RSS mode starts from a site's home page and
reads the feed announced there, one site per crawler process; Veille reads the same nine feed
URLs. Both crawlers run one after the other against the same server process.

- news-please runs as a user runs it: its ``news-please -c DIR`` command, with its own shipped
  ``config.cfg`` copied by the bench and four changes: the working directory is a temporary
  folder; its crawler is ``RssCrawler`` for each site; it stores JSON files only (its default also
  writes every page's HTML, which would only slow it down); ``CONCURRENT_REQUESTS_PER_DOMAIN``
  is 16 instead of 4, as the bench sets for Veille (every outlet is on 127.0.0.1, which Scrapy
  counts as one domain). Its heuristics, extractors and everything else are its defaults. Its
  launcher checks every ten seconds whether its crawlers are done; the bench stops it once they
  are, and its time ends with its last crawler process.
- Veille runs ``veille crawl --all`` as ``python -m bench all`` does (``bench.__main__.run_crawl``:
  translation off, politeness off, loopback allowed, after an untimed crawl of 90 other
  articles): fetch, extract, language, topic, duplicates, clusters, places, and the index in
  Elasticsearch. It stores only the articles on the topic; news-please stores every article.

Articles/s: article pages fetched and stored (news-please) or extracted (Veille) over the time
from the command's start to the end of its last crawling process, start-up included for both.
CPU: every process of the crawler's tree, summed (``bench.__main__.ProcessTree``); for Veille the
Elasticsearch JVM's CPU is shown apart. Peak memory: the largest sum of the tree's PSS. Body F1:
``bench.extraction.body_f1`` of each stored article's text against the corpus's truth, averaged
over the articles stored.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

from bench.corpus import build_corpus
from bench.extraction import body_f1
from bench.server import CorpusServer

NEWS_PLEASE = "news-please==1.6.16"
GOAL_RATE = 5.0


def cache_dir() -> Path:
    """Where the bench keeps what it installs or generates (news-please, the translation model)."""
    explicit = os.environ.get("VEILLE_BENCH_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "veille-bench"


def news_please_venv(cache: Path) -> Path:
    """news-please's virtual environment under ``cache``, created and installed if missing."""
    venv = cache / NEWS_PLEASE.replace("==", "-")
    marker = venv / ".installed"
    if marker.is_file():
        return venv
    print(f"installing {NEWS_PLEASE} into {venv} (once) …", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    done = subprocess.run([*pip, "-q", NEWS_PLEASE], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(
            f"could not install {NEWS_PLEASE} into {venv} (PyPI must be reachable the first "
            f"time):\n{done.stderr[-2000:]}"
        )
    marker.write_text(NEWS_PLEASE + "\n", encoding="utf-8")
    return venv


# news-please's shipped config.cfg lines the bench changes (see the module docstring).
_CONFIG_CHANGES = [
    (r"(?m)^working_path = .*$", "working_path = {work}/"),
    (r"(?m)^CONCURRENT_REQUESTS_PER_DOMAIN=\d+$", "CONCURRENT_REQUESTS_PER_DOMAIN=16"),
    (r"\n\s*'newsplease\.pipeline\.pipelines\.HtmlFileStorage':\s*\d+,", ""),
]


def write_news_please_config(venv: Path, folder: Path, work: Path, sites: list[str]) -> Path:
    """news-please's own config.cfg with the bench's changes, and a site list of ``sites``."""
    shipped = sorted(venv.glob("lib/python*/site-packages/newsplease/config/config.cfg"))
    if not shipped:
        raise SystemExit(f"{venv}: no newsplease/config/config.cfg; delete {venv} to reinstall")
    text = shipped[0].read_text(encoding="utf-8")
    for pattern, replacement in _CONFIG_CHANGES:
        text, count = re.subn(pattern, replacement.format(work=work), text)
        if count != 1:
            raise SystemExit(
                f"{shipped[0]}: expected one line matching {pattern!r}, found {count}; "
                f"news-please's config changed: update bench/peers.py"
            )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.cfg").write_text(text, encoding="utf-8")
    site_list = {"base_urls": [{"url": site, "crawler": "RssCrawler"} for site in sites]}
    (folder / "sitelist.hjson").write_text(json.dumps(site_list, indent=2), encoding="utf-8")
    return folder


def run_news_please(venv: Path, sites: list[str], work: Path) -> dict[str, Any]:
    """news-please's RSS crawl of ``sites``; what it stored, its time, CPU and peak memory."""
    from bench.__main__ import ProcessTree

    config = write_news_please_config(venv, work / "config", work / "repo", sites)
    log = work / "news-please.log"
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(
            [str(venv / "bin" / "news-please"), "-c", str(config)],
            cwd=work, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        tree = ProcessTree(process.pid)
        launcher = psutil.Process(process.pid)
        crawled = False
        end = start
        while process.poll() is None:
            try:
                crawlers = launcher.children(recursive=True)
            except psutil.NoSuchProcess:
                break
            if crawlers:
                crawled, end = True, time.perf_counter()
            elif crawled:  # its crawlers are done; the launcher only sleeps till it looks again
                process.kill()
                break
            time.sleep(0.05)
        process.wait()
        if not crawled:
            end = time.perf_counter()
    peak, cpu, _ = tree.stop()
    stored = {}
    for path in (work / "repo" / "data").rglob("*.json"):
        article = json.loads(path.read_text(encoding="utf-8"))
        stored[urlsplit(article["url"]).path] = article.get("maintext") or ""
    if not stored:
        raise SystemExit(f"news-please stored nothing; its log: {log}\n{log.read_text()[-3000:]}")
    return {"stored": stored, "seconds": end - start, "cpu_seconds": cpu, "peak_rss": peak}


def run_veille(count: int, seed: int, url: str, work: Path, extra: list[str]) -> dict[str, Any]:
    from bench.__main__ import run_crawl

    run = run_crawl(count, seed, url, work, extra, sites=True, keep_texts=True)
    return {
        "stored": run.texts,
        "pages": run.pages,
        "seconds": run.wall_seconds,
        "crawl_seconds": run.seconds,
        "cpu_seconds": run.cpu_seconds,
        "es_cpu_seconds": run.es_cpu_seconds,
        "peak_rss": run.peak_rss,
    }


def measure(count: int, seed: int, url: str, extra: list[str]) -> dict[str, Any]:
    """Both crawlers over the same ``count``-article corpus, news-please first."""
    venv = news_please_venv(cache_dir())
    corpus = build_corpus(count, seed)
    with tempfile.TemporaryDirectory(prefix="veille-peers-") as tmp:
        with CorpusServer(count, seed, sites=True) as server:
            sites = [site + "/" for site in server.site_urls.values()]
            print(f"news-please, RSS mode, {count} articles …", file=sys.stderr)
            peer = run_news_please(venv, sites, Path(tmp) / "news-please")
        # Untimed, as in python -m bench all: Elasticsearch's JVM warm, the gazetteer saved.
        print("veille warm-up crawl of 90 articles (not timed) …", file=sys.stderr)
        run_veille(90, seed + 1, url, Path(tmp) / "veille", extra)
        print(f"veille crawl --all, {count} articles …", file=sys.stderr)
        veille = run_veille(count, seed, url, Path(tmp) / "veille", extra)
    rows = {"news-please": peer, "veille": veille}
    for row in rows.values():
        stored = row.pop("stored")
        row["articles"] = len(stored)
        row["f1"] = sum(body_f1(text, corpus.truth[path]) for path, text in stored.items()) / max(
            len(stored), 1
        )
    # news-please stores every page it fetches; Veille extracts every page and stores those on
    # the topic, so its rate counts the pages it fetched and extracted.
    peer["pages"] = peer["articles"]
    for row in rows.values():
        row["per_second"] = row["pages"] / row["seconds"]
        row["cpu_ms"] = 1000 * row["cpu_seconds"] / max(row["pages"], 1)
    veille["es_cpu_ms"] = 1000 * veille["es_cpu_seconds"] / max(veille["pages"], 1)
    rate = veille["per_second"] / peer["per_second"]
    cpu = peer["cpu_ms"] / (veille["cpu_ms"] + veille["es_cpu_ms"])
    f1 = veille["f1"] / peer["f1"] if peer["f1"] else float("inf")
    return {
        "articles": count,
        "crawlers": rows,
        "goals": [
            ("Veille vs news-please, articles/s (same feeds)", f">= {GOAL_RATE:.2f}", rate, cpu,
             rate >= GOAL_RATE),
            ("Veille vs news-please, body F1 of what each stored", ">= 1.00", f1, None,
             f1 >= 1.0),
        ],
    }  # fmt: skip


def print_report(report: dict[str, Any]) -> None:
    rows = report["crawlers"]
    print(f"\npeers: {report['articles']} articles, nine feeds, one per outlet")
    print(
        f"{'crawler':12} {'pages':>6} {'stored':>6} {'seconds':>8} {'articles/s':>10} "
        f"{'CPU ms/art':>10} {'+ES':>5} {'peak MiB':>8} {'body F1':>8}"
    )
    for name, row in rows.items():
        es = f"{row['es_cpu_ms']:5.1f}" if "es_cpu_ms" in row else "    -"
        print(
            f"{name:12} {row['pages']:6d} {row['articles']:6d} {row['seconds']:8.1f} "
            f"{row['per_second']:10.1f} {row['cpu_ms']:10.1f} {es} "
            f"{row['peak_rss'] / 2**20:8.0f} {row['f1']:8.4f}"
        )
    print(
        "seconds: from the command's start to the end of its last crawling process; CPU: the "
        "crawler's processes (+ES: Elasticsearch's, Veille only)"
    )
