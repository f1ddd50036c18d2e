"""The stations register ``<prefix>-stations``: one document per reported location (operations).

In:  article documents carrying ``stations`` (what :mod:`veille.core.events` found each one reports:
     a city, or a country when no city is named, with the actions seen there) and the topic's
     action order (weakest first).
Out: one register document per location, keyed ``<country>`` or ``<country>-<geonameid>``,
     holding every report (article, outlet, language, date, actions, authorities, evidence) and
     what follows from them: first and latest report, the strongest action and the history of
     actions with dates, the authorities involved, the articles, outlets and languages, the
     coordinates.

A register document is a function of its set of reports, and a report is keyed by its article:
applying an article twice changes nothing (the document is not even written again), applying
articles in any order gives the same documents, and :func:`rebuild` (every article again, into a
fresh index swapped in behind the alias) gives the register that updates built. Updates are
read-modify-write with ``if_seq_no``/``if_primary_term`` and ``create`` for a new location, so
crawl processes updating the same location at once retry instead of losing a report (the local
node has no scripted updates). A location is *new* for the articles of the batch that created
its document: they get it in ``new_stations``, which alert rules with ``new_station: true``
match.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError
from elasticsearch.helpers import scan, streaming_bulk

from veille.core.config import ACTION_NAMES
from veille.core.es import IndexNames, load_template

# The actions, weakest first (as the topic files list them), when a topic does not order
# its own.
DEFAULT_ACTIONS = ACTION_NAMES
CONFLICT_RETRIES = 5
PENDING = "pending"
REGISTERED = "registered"


class RegisterConflict(RuntimeError):
    """Locations kept changing under an update (other writers); applying again is safe."""


@dataclass(frozen=True)
class Report:
    """One article's report of one location."""

    station: dict[str, Any]  # key, kind, name, country, geonameid, location
    article_id: str
    url: str
    title: str
    outlet: str
    outlet_country: str | None
    language: str | None
    at: str  # ISO date: published_at, else first_seen_at
    actions: tuple[str, ...]
    authorities: tuple[str, ...]
    evidence: tuple[dict[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "article_id": self.article_id,
            "url": self.url,
            "title": self.title,
            "outlet": self.outlet,
            "outlet_country": self.outlet_country,
            "language": self.language,
            "at": self.at,
            "actions": list(self.actions),
            "authorities": list(self.authorities),
            "evidence": list(self.evidence),
        }


def reports_of(article_id: str, doc: Mapping[str, Any]) -> list[Report]:
    """The reports an article document makes, one per location in its ``stations``."""
    source = doc.get("source") or {}
    at = doc.get("published_at") or doc.get("first_seen_at") or ""
    reports = []
    for station in doc.get("stations") or ():
        evidence = tuple(
            {"action": e["action"], "sentence": e["sentence"]}
            for e in doc.get("action_evidence") or ()
            if e.get("action") in station.get("actions", ())
        )
        reports.append(
            Report(
                station={
                    key: station[key]
                    for key in ("key", "kind", "name", "country", "geonameid", "location")
                    if station.get(key) is not None
                },
                article_id=article_id,
                url=doc.get("url", ""),
                title=doc.get("title", ""),
                outlet=source.get("name", ""),
                outlet_country=source.get("country"),
                language=doc.get("language"),
                at=at,
                actions=tuple(sorted(station.get("actions", ()))),
                authorities=tuple(sorted(doc.get("authorities") or ())),
                evidence=evidence,
            )
        )
    return reports


def station_document(
    station: Mapping[str, Any], reports: Iterable[Mapping[str, Any]], order: Sequence[str]
) -> dict[str, Any]:
    """The register document of a location from all its reports (as stored dictionaries)."""
    rank = {action: number for number, action in enumerate(order, start=1)}
    ordered = sorted(reports, key=lambda r: (r["at"], r["article_id"]))
    history = sorted(
        {(r["at"], action, r["article_id"]) for r in ordered for action in r["actions"]}
    )
    actions = {action for r in ordered for action in r["actions"]}
    strongest = max(actions, key=lambda a: rank.get(a, 0), default=None)
    doc: dict[str, Any] = {
        **{key: station[key] for key in ("key", "kind", "name", "country") if key in station},
        "first_reported_at": ordered[0]["at"] if ordered else None,
        "last_reported_at": ordered[-1]["at"] if ordered else None,
        "reports_count": len(ordered),
        "strongest_action": strongest,
        "strongest_rank": rank.get(strongest, 0) if strongest else 0,
        "actions": sorted(actions, key=lambda a: rank.get(a, 0)),
        "action_history": [{"at": at, "action": a, "article_id": i} for at, a, i in history],
        "authorities": sorted({name for r in ordered for name in r["authorities"]}),
        "articles": [r["article_id"] for r in ordered],
        "outlets": sorted({r["outlet"] for r in ordered if r["outlet"]}),
        "languages": sorted({r["language"] for r in ordered if r["language"]}),
        "first_article": {"id": ordered[0]["article_id"], "url": ordered[0]["url"],
                          "title": ordered[0]["title"]} if ordered else None,
        "reports": ordered,
    }  # fmt: skip
    if station.get("geonameid"):
        doc["geonameid"] = station["geonameid"]
    if station.get("location"):
        doc["location"] = station["location"]
    return doc


def _grouped(articles: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, list[Report]]:
    by_station: dict[str, list[Report]] = defaultdict(list)
    for article_id, doc in articles:
        for report in reports_of(article_id, doc):
            by_station[report.station["key"]].append(report)
    return by_station


class Register:
    """The register of one index prefix."""

    def __init__(
        self, client: Elasticsearch, names: IndexNames, order: Sequence[str] = DEFAULT_ACTIONS
    ) -> None:
        self.client = client
        self.names = names
        self.index = names.stations
        self.order = tuple(order)

    def apply(self, articles: Sequence[tuple[str, Mapping[str, Any]]]) -> list[list[str]]:
        """Add the articles' reports to the register; for each article, the keys of the
        locations it made new (in input order). Raises on an Elasticsearch failure, after which
        applying the same articles again is safe."""
        by_station = _grouped(articles)
        created: set[str] = set()
        pending = dict(by_station)
        for _ in range(CONFLICT_RETRIES):
            if not pending:
                break
            pending = self._write(pending, created)
        if pending:
            raise RegisterConflict(f"{len(pending)} register locations kept changing meanwhile")
        return [
            sorted(
                station["key"]
                for station in doc.get("stations") or ()
                if station.get("key") in created
            )
            for _, doc in articles
        ]

    def _write(
        self, pending: dict[str, list[Report]], created: set[str]
    ) -> dict[str, list[Report]]:
        """One read-modify-write round; returns the locations to try again (changed meanwhile)."""
        found = self.client.mget(index=self.index, ids=list(pending))["docs"]
        actions = []
        for item in found:
            key = item["_id"]
            reports = {r["article_id"]: r for r in (item.get("_source") or {}).get("reports", [])}
            before = dict(reports)
            for report in pending[key]:
                reports[report.article_id] = report.to_dict()
            if item.get("found") and reports == before:
                continue  # nothing new: applied already
            doc = station_document(pending[key][0].station, reports.values(), self.order)
            if item.get("found"):
                actions.append(
                    {"_op_type": "index", "_id": key, "_source": doc,
                     "if_seq_no": item["_seq_no"], "if_primary_term": item["_primary_term"]}
                )  # fmt: skip
            else:
                actions.append({"_op_type": "create", "_id": key, "_source": doc})
        retry: dict[str, list[Report]] = {}
        for ok, result in streaming_bulk(
            self.client, actions, index=self.index, raise_on_error=False, max_retries=3,
            refresh="wait_for",
        ):  # fmt: skip
            op, outcome = next(iter(result.items()))
            if ok:
                if op == "create":
                    created.add(outcome["_id"])
            elif outcome.get("status") == 409:
                retry[outcome["_id"]] = pending[outcome["_id"]]
            else:
                raise RuntimeError(f"register update refused: {outcome.get('error')}")
        return retry

    def stations(self, country: str | None = None, size: int = 10_000) -> list[dict[str, Any]]:
        """Register documents, most reported first (``country``: of that country only)."""
        query: dict[str, Any] = {"match_all": {}}
        if country:
            query = {"term": {"country": country.upper()}}
        try:
            hits = self.client.search(
                index=self.index,
                query=query,
                size=size,
                sort=[{"reports_count": "desc"}, {"last_reported_at": "desc"}, {"key": "asc"}],
                source_excludes=["reports"],
            )["hits"]["hits"]
        except NotFoundError:
            return []
        return [hit["_source"] for hit in hits]

    def rebuild(self, now: datetime | None = None) -> dict[str, int]:
        """The register again from every article, in a fresh index swapped in behind the
        alias (readers see the old one until the swap); the old indices are deleted."""
        now = now or datetime.now(UTC)
        by_station = _grouped(articles_with_stations(self.client, self.names.articles))
        # Not "<alias>-*": an index the template matches would join the alias at once.
        fresh = f"{self.index}.{now.strftime('%Y%m%d%H%M%S%f')}"
        template = load_template("stations", self.names.prefix)["template"]
        self.client.indices.create(
            index=fresh, mappings=template["mappings"], settings=template["settings"]
        )
        docs = (
            {"_op_type": "create", "_index": fresh, "_id": key,
             "_source": station_document(reports[0].station, [r.to_dict() for r in reports],
                                         self.order)}
            for key, reports in by_station.items()
        )  # fmt: skip
        written = 0
        for ok, _ in streaming_bulk(self.client, docs, raise_on_error=True, max_retries=3):
            written += ok
        self.client.indices.refresh(index=fresh)
        old = list(self.client.indices.get_alias(name=self.index, ignore_unavailable=True))
        self.client.indices.update_aliases(
            actions=[
                *({"remove": {"index": name, "alias": self.index}} for name in old),
                {"add": {"index": fresh, "alias": self.index, "is_write_index": True}},
            ]
        )
        if old:
            self.client.indices.delete(index=",".join(old))
        reports = sum(len(r) for r in by_station.values())
        return {"stations": written, "reports": reports}

    def apply_pending(self, batch: int = 200) -> dict[str, int]:
        """Apply the articles indexed while the register could not be updated
        (``stations_status: pending``), then mark them registered."""
        done = new = 0
        while True:
            hits = self.client.search(
                index=self.names.articles,
                query={"term": {"stations_status": PENDING}},
                size=batch,
                source_includes=_REPORT_FIELDS,
            )["hits"]["hits"]
            if not hits:
                break
            articles = [(hit["_id"], hit["_source"]) for hit in hits]
            created = self.apply(articles)
            updates = (
                {"_op_type": "update", "_index": hit["_index"], "_id": hit["_id"],
                 "doc": {"stations_status": REGISTERED,
                         **({"new_stations": keys} if keys else {})}}
                for hit, keys in zip(hits, created, strict=True)
            )  # fmt: skip
            for _ in streaming_bulk(self.client, updates, raise_on_error=True, refresh="wait_for"):
                pass
            done += len(hits)
            new += sum(bool(keys) for keys in created)
        return {"articles": done, "with_new_stations": new}


_REPORT_FIELDS = [
    "url", "title", "source", "language", "published_at", "first_seen_at", "stations",
    "authorities", "action_evidence",
]  # fmt: skip


def articles_with_stations(
    client: Elasticsearch, index: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every article that reports a location, as ``(id, document)``."""
    client.indices.refresh(index=index)
    for hit in scan(
        client,
        index=index,
        query={"query": {"exists": {"field": "stations.key"}}},
        _source_includes=_REPORT_FIELDS,
        size=500,
    ):
        yield hit["_id"], hit["_source"]
