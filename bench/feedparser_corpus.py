"""feedparser's own test corpus through Veille's feed reading: nothing crashes, nothing changes.

    version=$(pip show feedparser | sed -n 's/^Version: //p')
    pip download --no-binary :all: --no-deps "feedparser==$version" && tar xzf feedparser-*.tar.gz
    python -m bench.feedparser_corpus feedparser-*/tests

The corpus (about 2,250 feeds, well-formed and not, in many encodings) comes with feedparser's
source distribution; it is not stored here, and nothing is downloaded at run time: give its
folder. For each file it compares:

- ``feedparser.parse`` alone (the call ``read_feed`` made before the entity check) and
  :func:`crawler.feeds.parse_feed` (the check, then ``feedparser.parse``): the same entries, feed,
  version and ``bozo`` flag, or the file is listed;
- :func:`crawler.feeds.read_feed` run in an extraction worker under the default parse limits, as
  a crawl runs it: no exception and no refusal at the limits, or the file is listed.

Prints the counts and every file that differs; exit status 1 if any does.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import feedparser

from crawler.extraction import ExtractionOptions
from crawler.extraction_pool import ExtractionPool
from crawler.feeds import FeedRefused, parse_feed, read_feed
from crawler.limits import ParseRefused

SKIPPED_SUFFIXES = (".py", ".pyc")


def same(before: dict, after: dict) -> bool:
    return all(before.get(key) == after.get(key) for key in ("entries", "feed", "version", "bozo"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.feedparser_corpus",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("corpus", type=Path, help="feedparser's tests/ folder")
    args = parser.parse_args(argv)
    files = sorted(p for p in args.corpus.rglob("*") if p.is_file()
                   and not p.name.endswith(SKIPPED_SUFFIXES))  # fmt: skip
    if not files:
        raise SystemExit(f"no file under {args.corpus}")
    differ: list[str] = []
    crashed: list[str] = []
    refused: list[str] = []
    entries = 0
    started = time.perf_counter()
    pool = ExtractionPool(2, ExtractionOptions())
    try:
        for path in files:
            data = path.read_bytes()
            # The call read_feed made before the entity check, with no Content-Type known.
            before = feedparser.parse(io.BytesIO(data), response_headers={"content-type": ""})
            try:
                after = parse_feed(data)
            except FeedRefused as exc:
                differ.append(f"{path}: refused: {exc}")
                continue
            if not same(before, after):
                differ.append(f"{path}: another result")
            entries += len(after.entries)
            try:
                pool.run_blocking(read_feed, data, "", size=len(data))
            except ParseRefused as exc:
                refused.append(f"{path}: {exc}")
            except Exception as exc:
                crashed.append(f"{path}: {type(exc).__name__}: {exc}")
    finally:
        pool.close()
    seconds = time.perf_counter() - started
    print(f"{len(files)} files, {entries} entries, {seconds:.0f} s")
    print(f"different from feedparser alone: {len(differ)}")
    print(f"crashed in a worker: {len(crashed)}")
    print(f"refused at the parse limits: {len(refused)}")
    for line in [*differ, *crashed, *refused]:
        print(f"  {line}")
    if differ or crashed or refused:
        sys.exit(1)


if __name__ == "__main__":
    main()
