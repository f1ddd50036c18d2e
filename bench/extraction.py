"""The extraction step against ``trafilatura.extract``: CPU time per page and body F1, same pages.

    python -m bench.extraction [--articles 300] [--repeat 3] [--before REV]

In:  ``--articles`` article pages of the bench corpus (``bench.corpus``), built in this process.
Out: one row per way of extracting: CPU ms per page, its ratio to ``trafilatura.extract``, the
     body F1 against the corpus's ground truth (mean over the pages) and the pages it kept.

- ``trafilatura.extract``: trafilatura's own entry point with its defaults (text only, no
  metadata, comments included): the goal's baseline.
- ``trafilatura.bare_extraction, with metadata``: the call the bare loop of ``python -m bench
  all`` makes (and the crawl made until it read the metadata itself): body and metadata, no
  comments.
- ``veille extraction step``: :func:`crawler.extraction_worker.extract_page`, what an extraction
  worker does with a page: parse, metadata, body, tidy, hash and language.
- with ``--before REV``: the same step at git revision ``REV`` (checked out in a temporary
  worktree and run there in a subprocess), for a before and after in one run.

Each page's time is the fastest of ``--repeat`` runs of each row, the rows taking turns page by
page, so a machine that other work slows down slows every row alike; CPU time of this process
(``time.process_time``), imports and the first pages excluded.

Body F1 is word-level: the extracted text and the ground truth (the subheading and paragraphs
the corpus wrote, ``Corpus.truth``) as multisets of lowercased words; precision is the share of
extracted words that are in the truth, recall the share of the truth's words extracted. A page a
row rejects counts as F1 0.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.corpus import build_corpus

ROOT = Path(__file__).resolve().parents[1]
BASE_URL = "http://127.0.0.1:1"
GOAL = 1.15
_WORD = re.compile(r"\w+")


def body_f1(extracted: str | None, truth: str) -> float:
    """Word-level F1 of ``extracted`` against ``truth`` (0 when nothing was extracted)."""
    found = Counter(word.lower() for word in _WORD.findall(extracted or ""))
    wanted = Counter(word.lower() for word in _WORD.findall(truth))
    common = sum((found & wanted).values())
    if not common:
        return 0.0
    precision, recall = common / sum(found.values()), common / sum(wanted.values())
    return 2 * precision * recall / (precision + recall)


def _trafilatura_extract(html: str, url: str) -> str | None:
    import trafilatura

    return trafilatura.extract(html, url=url)


def _bare_with_metadata(html: str, url: str) -> str | None:
    import trafilatura

    document = trafilatura.bare_extraction(
        html, url=url, with_metadata=True, include_comments=False
    )
    return document.text if document is not None else None


def _veille_step(html: str, url: str) -> str | None:
    from crawler.extraction import NotAnArticle
    from crawler.extraction_worker import extract_page

    result = extract_page(html, url)
    return None if isinstance(result, NotAnArticle) else result.text


ROWS: dict[str, Callable[[str, str], str | None]] = {
    "trafilatura.extract": _trafilatura_extract,
    "trafilatura.bare_extraction, with metadata": _bare_with_metadata,
    "veille extraction step": _veille_step,
}
BASELINE, VEILLE = "trafilatura.extract", "veille extraction step"


def measure(
    rows: dict[str, Callable[[str, str], str | None]], articles: int, repeat: int, seed: int = 2022
) -> dict[str, dict[str, float]]:
    """Per row: CPU ms per page (each page's fastest run), mean body F1, pages kept."""
    corpus = build_corpus(articles, seed, BASE_URL)
    pages = [(BASE_URL + path, html.decode("utf-8")) for path, html in corpus.article_pages()]
    for url, html in pages[:5]:  # lazy imports and first-use tables, not timed
        for run in rows.values():
            run(html, url)
    seconds, f1, kept = dict.fromkeys(rows, 0.0), dict.fromkeys(rows, 0.0), dict.fromkeys(rows, 0)
    for url, html in pages:
        best = dict.fromkeys(rows, float("inf"))
        texts: dict[str, str | None] = {}
        for _ in range(repeat):
            for name, run in rows.items():
                start = time.process_time()
                texts[name] = run(html, url)
                best[name] = min(best[name], time.process_time() - start)
        truth = corpus.truth[url.removeprefix(BASE_URL)]
        for name in rows:
            seconds[name] += best[name]
            f1[name] += body_f1(texts[name], truth)
            kept[name] += texts[name] is not None
    return {
        name: {
            "cpu_ms": 1000 * seconds[name] / len(pages),
            "f1": f1[name] / len(pages),
            "kept": kept[name],
            "pages": len(pages),
        }
        for name in rows
    }


# Run in REV's worktree: this revision's bench (corpus, rows) with REV's crawler and pipelines.
_AT_REVISION = """
import json, sys
sys.path.insert(0, sys.argv[1])
import bench.extraction as bench_extraction
sys.path.insert(0, sys.argv[2])
rows = {name: bench_extraction.ROWS[name] for name in (bench_extraction.BASELINE,
                                                        bench_extraction.VEILLE)}
print(json.dumps(bench_extraction.measure(rows, int(sys.argv[3]), int(sys.argv[4]))))
"""


def measure_at(revision: str, articles: int, repeat: int) -> dict[str, dict[str, float]]:
    """:func:`measure` of the baseline and Veille's step with the code of git ``revision``."""
    from bench.compare import checkout

    with tempfile.TemporaryDirectory(prefix="veille-extraction-") as folder:
        tree = checkout(revision, Path(folder))
        try:
            done = subprocess.run(
                [sys.executable, "-c", _AT_REVISION, str(ROOT), str(tree), str(articles),
                 str(repeat)],
                cwd=tree, capture_output=True, text=True, timeout=3600,
            )  # fmt: skip
        finally:
            if tree != ROOT:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"extraction at {revision} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(articles: int, repeat: int, before: str | None = None) -> dict[str, Any]:
    """The rows, the goal's ratio, and with ``before`` the same two rows at that revision."""
    rows = measure(ROWS, articles, repeat)
    report: dict[str, Any] = {
        "rows": rows,
        "ratio": rows[VEILLE]["cpu_ms"] / rows[BASELINE]["cpu_ms"],
    }
    if before:
        earlier = measure_at(before, articles, repeat)
        report["before"] = {
            "revision": before,
            "rows": earlier,
            "ratio": earlier[VEILLE]["cpu_ms"] / earlier[BASELINE]["cpu_ms"],
        }
    return report


def print_report(report: dict[str, Any]) -> None:
    rows = report["rows"]
    pages = next(iter(rows.values()))["pages"]
    print(f"\nextraction of {pages} bench pages, CPU ms per page (fastest of the repeats)")
    print(f"{'':44} {'CPU ms':>7} {'ratio':>6} {'body F1':>8} {'kept':>5}")
    baseline = rows[BASELINE]["cpu_ms"]
    for name, row in rows.items():
        print(
            f"{name:44} {row['cpu_ms']:7.2f} {row['cpu_ms'] / baseline:5.2f}x "
            f"{row['f1']:8.4f} {row['kept']:5d}"
        )
    before = report.get("before")
    if before:
        row, ratio = before["rows"][VEILLE], before["ratio"]
        print(
            f"{'veille extraction step at ' + before['revision']:44} {row['cpu_ms']:7.2f} "
            f"{ratio:5.2f}x {row['f1']:8.4f} {row['kept']:5d}  (against its own run's "
            f"trafilatura.extract, {before['rows'][BASELINE]['cpu_ms']:.2f} ms)"
        )
    met = "yes" if report["ratio"] <= GOAL else "NO"
    print(f"goal: veille extraction step <= {GOAL:.2f}x trafilatura.extract: {met}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.extraction", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--articles", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="runs per page and row")
    parser.add_argument("--before", metavar="REV", help="also measure Veille's step at REV")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    report = run(args.articles, args.repeat, args.before)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
