"""``python -m bench hostile``: each attack of a hostile publisher, before and after, in one run.

    python -m bench hostile [--before main] [--quick] [--json PATH]

The inputs are built by ``tests/support/hostile.py`` (nothing is stored). Each is measured twice,
by the revision ``--before`` (checked out in a temporary git worktree, see ``bench/compare.py``;
a revision from before this change, whose ``read_feed`` was in ``crawler/spiders/feeds.py``) and
by the working tree, alternately, in fresh processes:

- parse attacks: the input is parsed as each revision's crawl parses it. Before: the revision's
  own function (``read_feed``, ``parse_sitemap``, ``parse_gdelt``, ``extract_page``) called in
  the process, as its crawl called it on the reactor thread or in an extraction worker; the
  figure is that process's peak resident memory over what it held before, and its CPU time.
  After: the function run in an extraction worker under the parse limits (defaults of
  ``crawler/settings.py``); the figure is the worker's own measurement (peak memory the task
  added, CPU seconds). Before runs are stopped at ``--before-memory`` MiB of data and
  ``--before-seconds`` of CPU so as to spare the machine: their rows then say ``>``.
- crawl attacks: one ``veille crawl`` of a hostile source (bombs among good feeds and pages,
  served by ``tests.support.hostile.HostileServer``) by each revision: wall time, peak memory of
  the crawl's process tree (PSS, as ``python -m bench all``), ERROR lines and tracebacks in its
  log, and the counters of what it refused.

Each attack row gives, after, the ratio of its CPU time to that of the ordinary input of the same
kind and about the same size, measured in the same run. Figures vary with the machine's load;
compare rows of one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.__main__ import ProcessTree, es_url
from bench.compare import checkout
from crawler.limits import MIB
from tests.support import hostile
from tests.support.hostile import HostileServer, Route

ROOT = Path(__file__).resolve().parents[1]

# Run in a fresh process with the measured revision first on the path. Prints one JSON line.
_PROBE = r"""
import json, resource, signal, sys, time

side, kind, path, memory_mb, seconds = sys.argv[1:6]
body = open(path, "rb").read()


def resident():
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def outcome(value):
    problem = getattr(value, "problem", None) or getattr(value, "reason", None)
    return problem or type(value).__name__


class Stopped(BaseException):
    pass


def stop(signum, frame):
    raise Stopped


if kind == "feed" and side == "before":  # before this change, the feed spider held read_feed
    from crawler.spiders.feeds import read_feed
    call = (read_feed, body, "")
elif kind == "feed":
    from crawler.feeds import read_feed
    call = (read_feed, body, "")
elif kind == "gdelt":
    from crawler.discovery import parse_gdelt
    call = (parse_gdelt, body)
else:
    from crawler.extraction import ExtractionOptions
    from crawler.extraction_worker import extract_page
    call = (extract_page, body.decode("utf-8"), "http://127.0.0.1/page.html", ExtractionOptions())

if side == "after":  # in an extraction worker, under the parse limits, as the crawl does now
    from crawler.extraction import ExtractionOptions
    from crawler.extraction_pool import ExtractionPool
    from crawler.limits import ParseRefused

    pool = ExtractionPool(1, ExtractionOptions())
    pool.run_blocking(len, b"", size=0)  # the worker is up
    wall = time.perf_counter()
    try:
        value, usage = pool.run_blocking(*call, size=len(body))
        result = outcome(value)
    except ParseRefused as refused:
        usage, result = refused.usage, f"refused: {refused}"
    except Exception as exc:  # what the parser raises for input it will not read
        usage, result = None, f"raised {type(exc).__name__}: {exc}"
    wall = time.perf_counter() - wall
    pool.close()
    figures = {"memory_mb": usage.memory_mb if usage else 0.0,
               "cpu_s": usage.cpu_s if usage else 0.0}
else:  # in this process, as the revision before did, within the bench's own safety limits
    start_memory, start_cpu = resident(), cpu()
    limit = int(memory_mb) * 2**20 + start_memory
    resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.RLIM_INFINITY))
    signal.signal(signal.SIGPROF, stop)
    signal.setitimer(signal.ITIMER_PROF, float(seconds))
    wall = time.perf_counter()
    try:
        result = outcome(call[0](*call[1:]))
    except Stopped:
        result = f"> {seconds} s of CPU: stopped by the bench"
    except MemoryError:
        result = f"> {memory_mb} MiB: stopped by the bench"
    except BaseException as exc:
        result = f"raised {type(exc).__name__}: {exc}"
    wall = time.perf_counter() - wall
    signal.setitimer(signal.ITIMER_PROF, 0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    figures = {"memory_mb": max(0, peak - start_memory) / 2**20, "cpu_s": cpu() - start_cpu}
print(json.dumps({**figures, "wall_s": wall, "result": str(result)[:160]}))
"""


@dataclass
class Attack:
    name: str
    kind: str  # feed, gdelt, page
    build: Callable[[], bytes | str]
    baseline: str | None = None  # the ordinary input of the same kind and size


def attacks(quick: bool) -> list[Attack]:
    """The attacks, each after the ordinary input it is compared with; ``quick``: the ones that
    take long before this change at a quarter of their size."""
    scale = 4 if quick else 1
    storm_feed, storm_page, table = MIB // scale, 33_000 // scale, 260_000 // scale
    return [
        Attack("ordinary feed, 150 KB", "feed", lambda: hostile.ordinary_feed(150_000)),
        Attack("entity bomb feed, 10,000 references", "feed",
               lambda: hostile.entity_bomb_feed(10_000 // scale), "ordinary feed, 150 KB"),
        Attack("billion laughs feed", "feed", hostile.billion_laughs_feed),
        Attack("external entity feed (/etc/passwd)", "feed", hostile.external_entity_feed),
        Attack("ordinary feed, storm size", "feed", lambda: hostile.ordinary_feed(storm_feed)),
        Attack("comment storm feed", "feed", lambda: hostile.comment_storm_feed(storm_feed),
               "ordinary feed, storm size"),
        Attack("ordinary page, span storm size", "page",
               lambda: hostile.ordinary_page(len(hostile.span_storm_page(storm_page)))),
        Attack("span storm page", "page", lambda: hostile.span_storm_page(storm_page),
               "ordinary page, span storm size"),
        Attack("ordinary page, table size", "page",
               lambda: hostile.ordinary_page(len(hostile.table_page(table)))),
        Attack("table page", "page", lambda: hostile.table_page(table),
               "ordinary page, table size"),
        Attack("JSON-LD nested 100,000 deep", "page", hostile.deep_json_ld_page),
        Attack("GDELT answer nested 100,000 deep", "gdelt", hostile.deep_gdelt_json),
    ]  # fmt: skip


def probe(
    tree: Path, side: str, attack: Attack, body_file: Path, memory_mb: int, seconds: int
) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, side, attack.kind, str(body_file), str(memory_mb),
         str(seconds)],
        cwd=tree, env=env, capture_output=True, text=True, timeout=seconds * 4 + 120,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        ended = f"the process ended ({done.returncode}): {done.stderr[-200:]}"
        return {"memory_mb": 0.0, "cpu_s": 0.0, "wall_s": 0.0, "result": ended}
    return json.loads(lines[-1])


# --- The crawl ---------------------------------------------------------------------------


def hostile_site(site: HostileServer, quick: bool) -> list[str]:
    """Routes of a hostile source on ``site``; returns its feed URLs."""
    html = {"Content-Type": "text/html; charset=utf-8"}
    site.routes.update({
        "/good.html": Route(hostile.article_page().encode(), headers=html),
        "/endless.html": Route(hostile.endless, headers=html),
        "/gzip.html": Route(hostile.gzip_bomb(16 * MIB),
                            headers={**html, "Content-Encoding": "gzip"}),
        "/brotli.html": Route(hostile.brotli_bomb(16 * MIB),
                              headers={**html, "Content-Encoding": "br"}),
        "/script.html": Route(status=302, headers={"Location": "javascript:alert(1)"}),
        "/spans.html": Route(hostile.span_storm_page(8_000 if quick else 20_000).encode(),
                             headers=html),
        "/bomb.xml": Route(hostile.entity_bomb_feed(2_000 if quick else 10_000)),
        "/gzip.xml": Route(hostile.gzip_bomb(16 * MIB), headers={"Content-Encoding": "gzip"}),
        "/endless.xml": Route(hostile.endless),
    })  # fmt: skip
    pages = ["/good.html", "/endless.html", "/gzip.html", "/brotli.html", "/script.html",
             "/spans.html"]  # fmt: skip
    site.routes["/feed.xml"] = Route(hostile.feed_of([site.url(p) for p in pages]))
    return [site.url(p) for p in ("/feed.xml", "/bomb.xml", "/gzip.xml", "/endless.xml")]


COUNTERS = ("veille/dropped/too_large", "veille/dropped/bad_scheme", "veille/dropped/too_slow",
            "veille/feeds/malformed", "veille/feeds/failed", "veille/indexed")  # fmt: skip


def crawl(tree: Path, feeds: list[str], work: Path, url: str) -> dict[str, Any]:
    """One ``veille crawl`` of the hostile source by ``tree``'s code."""
    config = work / "config"
    config.mkdir(parents=True, exist_ok=True)
    source = {"name": "hostile-herald", "type": "feed", "language": "en", "urls": feeds}
    (config / "sources.yaml").write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
    if not (config / "topics").exists():
        (config / "topics").symlink_to(ROOT / "config" / "topics")
    stats_file, log_file = work / "stats.json", work / "crawl.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILLE_")}
    env.update(VEILLE_ES_URL=url, VEILLE_INDEX_PREFIX=f"bench-{uuid.uuid4().hex[:8]}",
               VEILLE_CONFIG=str(config), VEILLE_DATA_DIR=str(work / "data"),
               VEILLE_TRANSLATION="false", PYTHONPATH=str(tree))  # fmt: skip
    sets = ["AUTOTHROTTLE_ENABLED=false", "DOWNLOAD_DELAY=0", "RETRY_TIMES=0",
            "VEILLE_ALLOWED_NETWORKS=127.0.0.1/32", f"VEILLE_STATS_FILE={stats_file}"]  # fmt: skip
    command = [sys.executable, "-m", "veille.cli", "crawl", "--all", "--json", "-v"]
    for setting in sets:
        command += ["--set", setting]
    started = time.perf_counter()
    with log_file.open("wb") as log:
        process = subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.DEVNULL,
                                   stderr=log)  # fmt: skip
        watch = ProcessTree(process.pid)
        process.wait(timeout=1800)
        peak, cpu, _ = watch.stop()
    wall = time.perf_counter() - started
    subprocess.run(
        [sys.executable, "-c", _DROP_INDICES], cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}
    )
    text = log_file.read_text(encoding="utf-8", errors="replace")
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_mb": peak / MIB,
        "errors": len(re.findall(r"\] ERROR:", text)),
        "tracebacks": text.count("Traceback"),
        **{key.removeprefix("veille/"): int(stats.get(key, 0) or 0) for key in COUNTERS},
    }


_DROP_INDICES = """
from veille.core.config import Environment
from veille.core.es import delete_indices, make_client
env = Environment.from_env()
client = make_client(env)
delete_indices(client, env.index_prefix)
"""


# --- Report --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench hostile",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--before", default="main", help="the revision to compare (main)")
    parser.add_argument("--quick", action="store_true", help="smaller attacks (a minute or two)")
    parser.add_argument("--before-memory", type=int, default=6144,
                        help="MiB of data a before run may take (6144)")  # fmt: skip
    parser.add_argument("--before-seconds", type=int, default=120,
                        help="CPU seconds a before run may take (120)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    url = es_url()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="veille-hostile-") as tmp:
        work = Path(tmp)
        before = checkout(args.before, work / "trees")
        try:
            for attack in attacks(args.quick):
                body = attack.build()
                body_file = work / "body"
                body_file.write_bytes(body if isinstance(body, bytes) else body.encode())
                print(f"{attack.name} …", file=sys.stderr)
                figures = {
                    side: probe(tree, side, attack, body_file, args.before_memory,
                                args.before_seconds)
                    for side, tree in (("before", before), ("after", ROOT))
                }  # fmt: skip
                rows.append({"attack": attack.name, "size": len(body),
                             "baseline": attack.baseline, **figures})  # fmt: skip
            with HostileServer() as site:
                feeds = hostile_site(site, args.quick)
                crawls = {}
                for side, tree in (("before", before), ("after", ROOT)):
                    print(f"crawl of the hostile source, {side} …", file=sys.stderr)
                    crawls[side] = crawl(tree, feeds, work / f"crawl-{side}", url)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT)
    print_report(rows, crawls, args.before)
    if args.json:
        args.json.write_text(json.dumps({"parses": rows, "crawls": crawls}, indent=2))


def print_report(rows: list[dict[str, Any]], crawls: dict[str, Any], before: str) -> None:
    by_name = {row["attack"]: row for row in rows}
    print(f"\nParse attacks, before ({before}) and after. MiB: peak memory the parse added")
    print(f"{'input':34} {'bytes':>9}  {'before MiB':>10} {'CPU s':>6}  {'after MiB':>9} "
          f"{'CPU s':>6} {'x ord.':>6}")  # fmt: skip
    for row in rows:
        b, a = row["before"], row["after"]
        base = by_name.get(row["baseline"] or "")
        ratio = f"{a['cpu_s'] / max(base['after']['cpu_s'], 1e-3):6.1f}" if base else ""
        print(f"{row['attack'][:34]:34} {row['size']:9,}  {b['memory_mb']:10.1f} {b['cpu_s']:6.2f}"
              f"  {a['memory_mb']:9.1f} {a['cpu_s']:6.2f} {ratio:>6}")  # fmt: skip
    print("\nOutcomes")
    for row in rows:
        print(f"  {row['attack']}\n    before: {row['before']['result']}\n"
              f"    after:  {row['after']['result']}")  # fmt: skip
    print("\nCrawl of a hostile source (bombs among good feeds and pages), one veille crawl each")
    print(f"{'':28} {'before':>10} {'after':>10}")
    for key in crawls["after"]:
        values = [crawls[side][key] for side in ("before", "after")]
        shown = [f"{v:10.1f}" if isinstance(v, float) else f"{v:10}" for v in values]
        print(f"{key:28} {' '.join(shown)}")
