"""Places and events per article, and the memory the gazetteer adds to a crawl process.

    python -m bench.places
    python -m bench.places --repeat 5 --floors 15000 5000 1000

Time: the labelled stations set (``tests/fixtures/stations``: 42 articles in French, English and
Spanish, 300 to 500 words each) read ``--repeat`` times by ``veille.core.places.read_places`` and
``veille.core.events.read_events`` with the shipped topic, against the relevance judge
(``veille.core.topics.TopicJudge``), which every article already pays, on the same texts. CPU time
(``time.process_time``) in rounds that alternate the sides; the best round counts (the machine
may be shared). Building the gazetteer is not timed here.

Memory: for each population floor, a fresh Python process imports the crawl's modules, measures
its unique memory (USS, psutil), gets the gazetteer, collects garbage and measures again; the
difference is what each crawl process pays. It gets it as a crawl does, loaded from the file
built on first use (``veille.core.gazetteer.gazetteer``), and, for the baseline, built in-process
from GeoNames' JSON; with the time each takes and how many cities and names it holds. The
shipped floor is ``VEILLE_GAZETTEER_MIN_POPULATION`` (crawler/settings.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from veille.cli.stations import DEFAULT_LABELLED
from veille.core.config import load_config
from veille.core.events import EventRules, read_events
from veille.core.gazetteer import gazetteer
from veille.core.places import read_places
from veille.core.topics import TopicJudge
from veille.ops.station_eval import load_labelled

TARGET_MS = 2.0

_MEASURE = """
import gc, json, time, psutil
from pathlib import Path
import crawler.settings, pipelines.places, veille.core.events, veille.core.places
from veille.core.gazetteer import _saved_or_built, build
process = psutil.Process()
gc.collect()
before = process.memory_full_info().uss
started = time.perf_counter()
g = build({floor}) if {built_here} else _saved_or_built({floor}, Path({directory!r}))
seconds = time.perf_counter() - started
gc.collect()
after = process.memory_full_info().uss
print(json.dumps({{"before": before, "after": after, "seconds": seconds,
                  "cities": len(g.city_name), "names": len(g.names)}}))
"""


def _best(rounds: list[float], count: int) -> float:
    return min(rounds) / count * 1000


def time_articles(repeat: int) -> dict[str, float]:
    config = load_config()
    rules = EventRules.from_topics(config.topics)
    judge = TopicJudge(config.topics)
    g = gazetteer()
    items = [item for _, item in load_labelled(DEFAULT_LABELLED)]

    def places() -> None:
        for item in items:
            read_places(item["title"], item["text"], item["language"], item["outlet_country"], g)

    def both() -> None:
        for item in items:
            lang, country = item["language"], item["outlet_country"]
            reading = read_places(item["title"], item["text"], lang, country, g)
            read_events(item["title"], item["text"], lang, reading, rules, g, country)

    def relevance() -> None:
        for item in items:
            judge.judge(item["title"], item["text"], item["language"])

    sides: dict[str, Callable[[], None]] = {"relevance": relevance, "places": places, "both": both}
    for side in sides.values():  # warm the stem caches and compiled queries
        side()
    rounds: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeat):
        for name, side in sides.items():
            started = time.process_time()
            side()
            rounds[name].append(time.process_time() - started)
    return {name: _best(values, len(items)) for name, values in rounds.items()} | {
        "articles": len(items)
    }


def measure_memory(floor: int, directory: str, built_here: bool) -> dict[str, float]:
    code = _MEASURE.format(floor=floor, directory=directory, built_here=built_here)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--floors", type=int, nargs="+", default=[15000, 5000, 1000])
    args = parser.parse_args(argv)
    from crawler import settings

    shipped = settings.VEILLE_GAZETTEER_MIN_POPULATION
    times = time_articles(args.repeat)
    print(
        f"{times['articles']} labelled articles, best of {args.repeat} rounds, CPU ms per article"
    )
    print(f"  relevance judge (baseline)        {times['relevance']:6.2f}")
    print(f"  places                            {times['places']:6.2f}")
    print(f"  places, authorities, actions, stations {times['both']:6.2f}"
          f"   ({times['both'] / times['relevance']:.2f}× the judge; target ≤ {TARGET_MS} ms: "
          f"{'met' if times['both'] <= TARGET_MS else 'not met'})")  # fmt: skip
    print("gazetteer per crawl process (fresh process, USS): loaded from its saved file, as the")
    print("crawl loads it, against built in the process from GeoNames' JSON (the baseline)")
    print("  floor     cities   names   process    loaded        built here     loaded/built")
    with tempfile.TemporaryDirectory() as directory:
        for floor in args.floors:
            measure_memory(floor, directory, built_here=False)  # the first one builds and saves
            m = measure_memory(floor, directory, built_here=False)
            b = measure_memory(floor, directory, built_here=True)
            loaded, built = ((x["after"] - x["before"]) / 2**20 for x in (m, b))
            mark = "  (shipped)" if floor == shipped else ""
            print(f"  {floor:>6}  {m['cities']:>8}  {m['names']:>7}  {m['before'] / 2**20:5.1f} MiB"
                  f"  {loaded:5.1f} MiB {m['seconds']:4.1f} s"
                  f"  {built:5.1f} MiB {b['seconds']:4.1f} s"
                  f"  {loaded / built:6.2f}{mark}")  # fmt: skip


if __name__ == "__main__":
    main()
