"""Retroactive topics: the topic files as they are now, over everything stored, and the edit
applied (``veille topics eval --index``, ``veille topics rescore``).

In:  the articles index (articles kept, those an earlier rescore marked ``off_topic``, analysts'
     verdicts on them), the rejected index (:mod:`veille.core.rejected`), the
     config (topics and each source's topics) and a date: articles first seen since then are
     judged again.
Out: a :class:`Plan`, which changes nothing: the rejected articles the rules now keep (``add``;
     those already kept under another address or with the same words are ``already_kept``),
     the kept articles they no longer keep (``remove``; those an analyst judged relevant stay,
     ``held``), the marked ones they keep again (``restore``), the kept ones they keep by
     another rule or score (``update``), and the precision and recall of the rules on every verdict,
     before and after the edit. :func:`apply_marks` applies what needs no pipeline: marks,
     their removal, the new ``relevance``, ``promoted`` on the rejected records already kept.
     :func:`promote` sends the ``add`` articles through the crawl's stages after relevance
     (``ITEM_PIPELINES`` from dedupe to index: crawler/spiders/rescore.py) and marks their
     rejected records ``promoted``.

Each article is judged as the relevance stage judges it: with its source's topics (all topics
when its source is no longer configured). Every change is keyed by the article's ``_id``, so a
second rescore finds nothing left to do: promoted articles are indexed (``create``) and their
records marked, marks and relevance are already what the rules say.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan, streaming_bulk

from pipelines.dedupe import indexed_duplicates
from veille.core.article import utcnow
from veille.core.config import Config, ConfigError, Topic
from veille.core.es import IndexNames
from veille.core.rejected import PROMOTED
from veille.core.topics import Decision, TopicJudge
from veille.ops.topic_eval import Scores

PAGE = 500
_COMMON = ["title", "text", "language", "source.name", "canonical_url", "first_seen_at",
           "content_hash"]  # fmt: skip
_KEPT = [*_COMMON, "topics", "relevance.topic", "relevance.rule", "relevance.rules",
         "relevance.score", "off_topic.at", "verdict.label"]  # fmt: skip
_RELEVANCE_KEYS = ("topic", "rule", "rules", "score")


@dataclass(frozen=True)
class Stored:
    """An article as stored, without its text: where it is and what was decided about it."""

    id: str
    index: str
    where: str  # "kept", "off_topic" or "rejected"
    title: str
    url: str
    language: str | None
    source: str
    first_seen_at: str | None
    content_hash: str | None
    topics: tuple[str, ...] = ()
    relevance: dict[str, Any] = field(default_factory=dict)
    verdict: str | None = None
    in_window: bool = True

    @classmethod
    def from_hit(cls, hit: dict[str, Any], where: str, in_window: bool = True) -> Stored:
        doc = hit["_source"]
        if where == "kept" and (doc.get("off_topic") or {}).get("at"):
            where = "off_topic"
        return cls(
            id=hit["_id"],
            index=hit["_index"],
            where=where,
            title=" ".join((doc.get("title") or "").split()),
            url=doc.get("canonical_url") or "",
            language=doc.get("language"),
            source=(doc.get("source") or {}).get("name") or "",
            first_seen_at=doc.get("first_seen_at"),
            content_hash=doc.get("content_hash"),
            topics=tuple(doc.get("topics") or ()),
            relevance=doc.get("relevance") or {},
            verdict=(doc.get("verdict") or {}).get("label"),
            in_window=in_window,
        )


@dataclass(frozen=True)
class Judged:
    article: Stored
    decision: Decision

    @property
    def id(self) -> str:
        return self.article.id

    @property
    def content_hash(self) -> str | None:
        return self.article.content_hash


@dataclass
class Plan:
    since: datetime
    topics: tuple[str, ...]
    stored: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("kept", "off_topic", "rejected"), 0))  # fmt: skip
    add: list[Judged] = field(default_factory=list)
    already_kept: list[tuple[Judged, str]] = field(default_factory=list)
    remove: list[Judged] = field(default_factory=list)
    held: list[Judged] = field(default_factory=list)
    restore: list[Judged] = field(default_factory=list)
    update: list[Judged] = field(default_factory=list)
    verdicts: list[Judged] = field(default_factory=list)
    unknown_sources: set[str] = field(default_factory=set)

    @property
    def changes(self) -> int:
        return sum(map(len, (self.add, self.already_kept, self.remove, self.restore,
                             self.update)))  # fmt: skip

    def verdict_scores(self, after: bool) -> Scores:
        """The rules against the analysts' verdicts: as stored (``after`` False: kept and not
        marked) or as the rules now decide."""
        judged = [j for j in self.verdicts if j.article.verdict in ("relevant", "irrelevant")]
        kept = [(j.decision.relevant if after else j.article.where == "kept") for j in judged]
        relevant = [j.article.verdict == "relevant" for j in judged]
        return Scores(
            len(judged),
            sum(relevant),
            sum(kept),
            sum(k and r for k, r in zip(kept, relevant, strict=True)),
        )


class SourceJudges:
    """One :class:`TopicJudge` per source, with the topics the relevance stage gives it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.judges: dict[str, TopicJudge] = {}
        self.unknown: set[str] = set()

    def topics(self, source: str) -> tuple[Topic, ...]:
        try:
            return self.config.topics_for(self.config.source(source))
        except ConfigError:
            self.unknown.add(source)
            return self.config.topics

    def judge(
        self, source: str, title: str, text: str, language: str | None, closest: bool
    ) -> Decision:
        judge = self.judges.get(source)
        if judge is None:
            judge = self.judges[source] = TopicJudge(self.topics(source))
        return judge.judge(title, text, language, closest=closest)


def _hits(
    client: Elasticsearch, index: str, query: dict[str, Any], fields: list[str]
) -> Iterator[dict[str, Any]]:
    if client.indices.exists_alias(name=index):
        yield from scan(client, index=index, query={"query": query}, _source=fields, size=PAGE)


def _count(client: Elasticsearch, index: str, query: dict[str, Any]) -> int:
    if not client.indices.exists_alias(name=index):
        return 0
    return client.count(index=index, query=query)["count"]


def _queries(since: datetime) -> dict[str, tuple[str, dict[str, Any], list[str]]]:
    """What is read: ``(index role, query, fields)`` per part."""
    recent = {"range": {"first_seen_at": {"gte": since.isoformat()}}}
    return {
        "kept": ("articles", recent, _KEPT),
        "judged": (
            "articles",
            {"bool": {"filter": [{"exists": {"field": "verdict.label"}}], "must_not": [recent]}},
            _KEPT,
        ),
        "rejected": ("rejected", {"bool": {"filter": [recent], "must_not": [PROMOTED]}}, _COMMON),
    }


def count_stored(client: Elasticsearch, names: IndexNames, since: datetime) -> int:
    """How many articles :func:`plan_rescore` will judge (for a progress bar)."""
    return sum(
        _count(client, getattr(names, role), query) for role, query, _ in _queries(since).values()
    )


def _read(
    client: Elasticsearch, names: IndexNames, since: datetime
) -> Iterator[tuple[Stored, str]]:
    """Each stored article with its text."""
    for part, (role, query, fields) in _queries(since).items():
        where = "rejected" if role == "rejected" else "kept"
        for hit in _hits(client, getattr(names, role), query, fields):
            text = hit["_source"].get("text") or ""
            yield Stored.from_hit(hit, where, in_window=part != "judged"), text


def _new_relevance(stored: Stored, decision: Decision) -> bool:
    """Whether the rules now keep the article by another rule, topic or score than stored."""
    now = decision.relevance()
    if tuple(decision.topics) != stored.topics:
        return True
    return any(now.get(key) != stored.relevance.get(key) for key in _RELEVANCE_KEYS)


def plan_rescore(
    client: Elasticsearch,
    names: IndexNames,
    config: Config,
    since: datetime,
    on_article: Callable[[], None] | None = None,
) -> Plan:
    """Judge every stored article of the window (and every judged one) with the topic files as
    they are now; see the module docstring. Nothing is written."""
    judges = SourceJudges(config)
    plan = Plan(since, tuple(topic.name for topic in config.topics))
    candidates: list[Judged] = []
    for stored, text in _read(client, names, since):
        kept = stored.where != "rejected"
        decision = judges.judge(stored.source, stored.title, text, stored.language, kept)
        judged = Judged(stored, decision)
        if stored.verdict:
            plan.verdicts.append(judged)
        if on_article:
            on_article()
        if not stored.in_window:
            continue
        plan.stored[stored.where] += 1
        if stored.where == "rejected":
            if decision.relevant:
                candidates.append(judged)
        elif stored.where == "off_topic":
            if decision.relevant:
                plan.restore.append(judged)
        elif not decision.relevant:
            (plan.held if stored.verdict == "relevant" else plan.remove).append(judged)
        elif _new_relevance(stored, decision):
            plan.update.append(judged)
    _split_candidates(client, names, candidates, plan)
    plan.unknown_sources = judges.unknown
    return plan


def _split_candidates(
    client: Elasticsearch, names: IndexNames, candidates: list[Judged], plan: Plan
) -> None:
    """Rejected articles the rules now keep: new ones to ``add``, and those the dedupe stage
    would drop (``already_kept``: the address or the words are indexed, or an earlier candidate
    has the same words)."""
    seen_hashes: set[str] = set()
    for start in range(0, len(candidates), PAGE):
        batch = candidates[start : start + PAGE]
        # Judged has the two attributes the dedupe stage's look-up reads: id and content_hash.
        reasons = indexed_duplicates(client, names.articles, batch)  # type: ignore[arg-type]
        for judged, reason in zip(batch, reasons, strict=True):
            if reason is None and judged.content_hash in seen_hashes:
                reason = "duplicate_content"
            if reason:
                plan.already_kept.append((judged, reason))
            else:
                plan.add.append(judged)
            if judged.content_hash:
                seen_hashes.add(judged.content_hash)


@dataclass
class MarkReport:
    marked: int = 0
    restored: int = 0
    relevance_updated: int = 0
    already_kept: int = 0


def _kept_by(decision: Decision) -> dict[str, Any]:
    return {"topics": list(decision.topics), "relevance": decision.relevance()}


def _update(stored: Stored, change: dict[str, Any]) -> dict[str, Any]:
    return {"_op_type": "update", "_index": stored.index, "_id": stored.id, "doc": change}


def promoted_record(at: datetime, outcome: str) -> dict[str, Any]:
    """The partial update of a rejected record once rescore settled it."""
    return {"promoted": {"at": at.isoformat(), "outcome": outcome}}


def apply_marks(client: Elasticsearch, names: IndexNames, plan: Plan, now: datetime) -> MarkReport:
    """Mark the articles the rules no longer keep, unmark those they keep again, store the new
    ``relevance`` of those kept by another rule, and record the rejected articles already kept
    as settled. Partial updates, in bulk; a failed one raises."""
    actions: list[dict[str, Any]] = []
    for judged in plan.remove:
        closest = judged.decision.closest
        off_topic = {"at": now.isoformat(), "closest": closest.rule if closest else None}
        actions.append(_update(judged.article, {"off_topic": off_topic}))
    for judged in plan.restore:
        actions.append(_update(judged.article, {**_kept_by(judged.decision), "off_topic": None}))
    for judged in plan.update:
        actions.append(_update(judged.article, _kept_by(judged.decision)))
    for judged, reason in plan.already_kept:
        actions.append(_update(judged.article, promoted_record(now, reason)))
    _bulk(client, actions)
    for index in (names.articles, names.rejected):
        if client.indices.exists_alias(name=index):
            client.indices.refresh(index=index)
    return MarkReport(len(plan.remove), len(plan.restore), len(plan.update),
                      len(plan.already_kept))  # fmt: skip


def _bulk(client: Elasticsearch, actions: list[dict[str, Any]]) -> None:
    failed = [
        result
        for ok, result in streaming_bulk(
            client, actions, raise_on_error=False, max_retries=3, initial_backoff=1
        )
        if not ok
    ]
    if failed:
        first = failed[0]["update"]
        raise RuntimeError(
            f"{len(failed)} of {len(actions)} updates failed, e.g. {first['_id']}: "
            f"{first.get('error')}; run the rescore again"
        )


@dataclass
class PromotionReport:
    """What the stages after relevance did with the promoted articles."""

    sent: int = 0
    outcomes: dict[str, str] = field(default_factory=dict)  # _id: "indexed" or a drop reason
    stats: dict[str, Any] = field(default_factory=dict)
    finish_reason: str = ""

    def value(self, key: str) -> int:
        return int(self.stats.get(f"veille/{key}", 0) or 0)

    @property
    def dropped(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes.values():
            if outcome != "indexed":
                counts[outcome] = counts.get(outcome, 0) + 1
        return counts


def promote(
    config: Config,
    names: IndexNames,
    client: Elasticsearch,
    add: list[Judged],
    now: datetime | None = None,
    overrides: dict[str, str] | None = None,
) -> PromotionReport:
    """Send the ``add`` articles through the crawl's stages after relevance, in this process
    (its one Twisted reactor), then mark their rejected records ``promoted``."""
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess

    from pipelines.base import drop_reason
    from veille.ops.crawl import crawl_settings

    now = now or utcnow()
    report = PromotionReport(sent=len(add))
    if not add:
        return report
    settings = crawl_settings({"VEILLE_CONFIG": str(config.directory), **(overrides or {})})
    settings.set("ITEM_PIPELINES", stages_after_relevance(settings), priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler("rescore")

    def scraped(item: Any) -> None:
        report.outcomes[item.id] = "indexed"

    def dropped(item: Any, exception: BaseException) -> None:
        report.outcomes[item.id] = drop_reason(exception)

    crawler.signals.connect(scraped, signal=signals.item_scraped, weak=False)
    crawler.signals.connect(dropped, signal=signals.item_dropped, weak=False)
    promotions = {
        judged.id: (list(judged.decision.topics), judged.decision.relevance()) for judged in add
    }
    process.crawl(crawler, promotions=promotions, promoted_at=now)
    process.start()
    report.stats = dict(crawler.stats.get_stats()) if crawler.stats else {}
    report.finish_reason = str(report.stats.get("finish_reason", ""))
    by_id = {judged.id: judged.article for judged in add}
    _bulk(
        client,
        [_update(by_id[id_], promoted_record(now, outcome)) for id_, outcome in
         report.outcomes.items()],
    )  # fmt: skip
    client.indices.refresh(index=names.rejected)
    return report


RELEVANCE_STAGE = "pipelines.relevance.RelevanceStage"


def stages_after_relevance(settings: Any) -> dict[str, int]:
    """The crawl's ``ITEM_PIPELINES`` after the relevance stage, in their order."""
    stages = {path: order for path, order in settings.getdict("ITEM_PIPELINES").items()
              if order is not None}  # fmt: skip
    if RELEVANCE_STAGE not in stages:
        raise ConfigError(
            "crawler/settings.py (or --set)", "ITEM_PIPELINES", f"{RELEVANCE_STAGE} is missing",
            "rescore runs the stages after it; put it back",
        )  # fmt: skip
    after = stages[RELEVANCE_STAGE]
    return {path: order for path, order in stages.items() if order > after}
