"""The same crawl at two or more commits (or settings), run alternately: before and after figures.

    python -m bench.compare 0a4b911 HEAD                       # two commits, 2 rounds
    python -m bench.compare HEAD HEAD@VEILLE_GC_FREEZE=false   # one commit, a setting changed
    python -m bench.compare d670b0c HEAD --rounds 3 --articles 2000

A variant is a git revision (``.`` for the working tree), optionally followed by ``@NAME=VALUE``
Scrapy settings for its crawls. Each revision is checked out in a temporary git worktree, and
its own ``bench.__main__.run_crawl`` (the crawl part of ``python -m bench all``: the generated
corpus served on 127.0.0.1, a real ``veille crawl --all``, translation off) runs there, so the
code measured is that revision's. Variants alternate within each round, so a machine that slows
down or speeds up affects them alike. Prints each crawl's articles/s, CPU ms per page (all the
crawl's processes and Elasticsearch), the crawl process's and Elasticsearch's share and the
peak memory, then each variant's median rate against the first variant's.

Needs ``VEILLE_ES_URL`` (or starts ``scripts/es-local``), like ``python -m bench all``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run in each revision's worktree, with that worktree first on the path: its own run_crawl.
_ONE_CRAWL = """
import json, sys, tempfile
from pathlib import Path
from bench.__main__ import es_url, run_crawl
count, seed, extra = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
with tempfile.TemporaryDirectory() as work:
    run = run_crawl(count, seed, es_url(), Path(work), extra)
pages = max(run.pages, 1)
print(json.dumps({
    "per_second": run.per_second,
    "cpu_ms": run.cpu_ms_per_article,
    "main_ms": 1000 * run.main_cpu_seconds / pages,
    "es_ms": 1000 * run.es_cpu_seconds / pages,
    "peak_mib": run.peak_rss / 2**20,
    "indexed": int(run.stats.get("veille/indexed", 0)),
}))
"""


def parse_variant(text: str) -> tuple[str, list[str]]:
    revision, *settings = text.split("@")
    for setting in settings:
        if "=" not in setting:
            raise SystemExit(
                f"variant {text!r}: write REV@NAME=VALUE, e.g. HEAD@VEILLE_GC_FREEZE=false"
            )
    return revision, settings


def checkout(revision: str, folder: Path) -> Path:
    """A worktree of ``revision`` under ``folder`` (the working tree itself for ``.``)."""
    if revision == ".":
        return ROOT
    target = folder / revision.replace("/", "_")
    if not target.exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(target), revision],
            cwd=ROOT, check=True,
        )  # fmt: skip
    return target


def crawl(tree: Path, count: int, seed: int, settings: list[str], url: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "VEILLE_ES_URL": url}
    done = subprocess.run(
        [sys.executable, "-c", _ONE_CRAWL, str(count), str(seed), *settings],
        cwd=tree, env=env, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"crawl in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare", description=__doc__.split("\n")[0]
    )
    parser.add_argument("variants", nargs="+", help="REV or REV@NAME=VALUE[@NAME=VALUE]")
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2022)
    args = parser.parse_args(argv)
    variants = [(text, *parse_variant(text)) for text in args.variants]

    from bench.__main__ import es_url

    url = es_url()
    results: dict[str, list[dict]] = {text: [] for text, _, _ in variants}
    with tempfile.TemporaryDirectory(prefix="veille-compare-") as tmp:
        trees = {revision: checkout(revision, Path(tmp)) for _, revision, _ in variants}
        try:
            for round_number in range(1, args.rounds + 1):
                for text, revision, settings in variants:
                    print(f"round {round_number}: {text} …", file=sys.stderr)
                    results[text].append(
                        crawl(trees[revision], args.articles, args.seed, settings, url)
                    )
        finally:
            for tree in trees.values():
                if tree != ROOT:
                    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)

    print(f"\n{args.articles}-article crawl, {args.rounds} rounds, variants run alternately")
    print(f"{'variant':40} {'articles/s':>10} {'CPU ms/page':>11} {'crawl proc':>10} "
          f"{'ES':>6} {'peak MiB':>8}")  # fmt: skip
    for text, runs in results.items():
        for run in runs:
            print(f"{text:40} {run['per_second']:10.1f} {run['cpu_ms']:11.1f} "
                  f"{run['main_ms']:10.1f} {run['es_ms']:6.1f} {run['peak_mib']:8.0f}")  # fmt: skip
    first = statistics.median(r["per_second"] for r in results[variants[0][0]])
    print()
    for text, runs in results.items():
        rate = statistics.median(r["per_second"] for r in runs)
        cpu = statistics.median(r["cpu_ms"] for r in runs)
        print(f"{text:40} median {rate:6.1f} articles/s, {cpu:5.1f} CPU ms/page, "
              f"{rate / first:.2f}x the first")  # fmt: skip


if __name__ == "__main__":
    main()
