"""Precision and recall of places, countries, authorities, actions and stations on a labelled set.

In:  a folder of labelled articles (``tests/fixtures/stations/<lang>/*.yaml``: ``language``,
     ``kind`` (``station`` or ``trap``), ``outlet``, ``outlet_country``, ``published``,
     ``title``, ``text`` and ``expected``: ``countries``, ``places`` (``{name, country}``),
     ``authorities``, ``actions``, ``stations`` (``{name, country}`` or ``{country}``)); the
     topics' event rules and the gazetteer.
Out: an :class:`Evaluation`: per measure the true and false positives and false negatives summed
     over the articles (micro-averaged), the stations the trap articles would create, and what
     each article got wrong. ``veille stations eval`` prints it.

Places and stations are compared as gazetteer cities: an expected ``{name: Pékin, country: CN}``
is the largest city of that country the name ``Pékin`` stands for, so an expected spelling the
gazetteer does not know is reported (``unknown``) rather than silently counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from veille.core.events import EventRules, read_events, station_key
from veille.core.gazetteer import Gazetteer, name_key
from veille.core.places import read_places

MEASURES = ("places", "countries", "authorities", "actions", "stations")


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass
class ArticleResult:
    path: str
    kind: str
    wrong: dict[str, tuple[list[str], list[str]]]  # measure → (unexpected, missed)
    trap_stations: list[str] = field(default_factory=list)


@dataclass
class Evaluation:
    scores: dict[str, Score]
    articles: list[ArticleResult]
    unknown: list[str]

    @property
    def trap_stations(self) -> int:
        return sum(len(a.trap_stations) for a in self.articles if a.kind == "trap")

    @property
    def counts(self) -> dict[str, int]:
        kinds = [a.kind for a in self.articles]
        return {"station": kinds.count("station"), "trap": kinds.count("trap")}

    def to_dict(self) -> dict[str, Any]:
        return {
            "articles": self.counts,
            "scores": {
                name: {"precision": round(s.precision, 3), "recall": round(s.recall, 3),
                       "tp": s.tp, "fp": s.fp, "fn": s.fn}
                for name, s in self.scores.items()
            },
            "stations_from_traps": self.trap_stations,
            "unknown": self.unknown,
            "errors": [
                {"article": a.path, **{m: {"unexpected": u, "missed": x}
                                       for m, (u, x) in a.wrong.items()}}
                for a in self.articles if a.wrong
            ],
        }  # fmt: skip


def load_labelled(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, yaml.safe_load(path.read_text(encoding="utf-8")))
            for path in sorted(folder.glob("*/*.yaml"))]  # fmt: skip


def _city(g: Gazetteer, name: str, country: str) -> int | None:
    found = [c for c in g.cities_named(name_key(name)) if g.city_country[c] == country]
    return max(found, key=lambda c: g.city_population[c]) if found else None


def _label(g: Gazetteer, key: str) -> str:
    country, _, geonameid = key.partition("-")
    if not geonameid:
        return key
    for index, gid in enumerate(g.city_geonameid):
        if str(gid) == geonameid:
            return f"{g.city_name[index]} ({country})"
    return key


def evaluate(
    labelled: Iterable[tuple[Path, dict[str, Any]]], rules: EventRules, g: Gazetteer
) -> Evaluation:
    scores = {name: Score() for name in MEASURES}
    results, unknown = [], []
    for path, item in labelled:
        expected = item.get("expected") or {}
        language, country = item.get("language"), item.get("outlet_country")
        reading = read_places(item["title"], item["text"], language, country, g)
        events = read_events(item["title"], item["text"], language, reading, rules, g, country)
        got: dict[str, set[str]] = {
            "places": {station_key(g.city_country[c], g.city_geonameid[c]) for c in reading.cities},
            "countries": set(reading.countries),
            "authorities": set(events.authorities),
            "actions": set(events.actions),
            "stations": {s["key"] for s in events.stations},
        }
        wanted: dict[str, set[str]] = {
            "countries": set(expected.get("countries") or ()),
            "authorities": set(expected.get("authorities") or ()),
            "actions": set(expected.get("actions") or ()),
        }
        for measure in ("places", "stations"):
            wanted[measure] = set()
            for place in expected.get(measure) or ():
                if "name" not in place:
                    wanted[measure].add(place["country"])
                    continue
                city = _city(g, place["name"], place["country"])
                if city is None:
                    unknown.append(f"{path}: {place['name']} ({place['country']})")
                    wanted[measure].add(f"{place['country']}:{place['name']}")
                else:
                    wanted[measure].add(station_key(place["country"], g.city_geonameid[city]))
        wrong = {}
        for measure in MEASURES:
            score = scores[measure]
            score.tp += len(got[measure] & wanted[measure])
            score.fp += len(got[measure] - wanted[measure])
            score.fn += len(wanted[measure] - got[measure])
            if got[measure] != wanted[measure]:
                label = (lambda k: _label(g, k)) if measure in ("places", "stations") else str
                wrong[measure] = (
                    sorted(map(label, got[measure] - wanted[measure])),
                    sorted(map(label, wanted[measure] - got[measure])),
                )
        trap = sorted(got["stations"]) if item.get("kind") == "trap" else []
        results.append(ArticleResult(str(path), item.get("kind", "station"), wrong, trap))
    return Evaluation(scores, results, unknown)
