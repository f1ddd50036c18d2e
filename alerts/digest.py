"""A digest: the notifications owed to one recipient in one frequency, as stories to show.

In:  claimed :class:`alerts.notifications.Notification` objects (one recipient, one frequency),
     the rules, and the articles index.
Out: a :class:`Digest`: one :class:`Story` per story (a cluster of copies, or one article),
     with the original and translated titles, source, date, language, a snippet with the
     matched terms between :data:`MARK_START` and :data:`MARK_END`, the link, the rules that
     matched it, and the other outlets that carried it ("also in").
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch

from alerts.notifications import Notification
from alerts.rules import RuleSet
from veille.core.languages import LANGUAGES, PIVOT
from veille.core.search import merge_marks

MARK_START = "\ue000"
MARK_END = "\ue001"
SNIPPET_CHARS = 240
ALSO_IN_SHOWN = 3
_SNIPPET_FIELDS = (*(f"text_{code}" for code in LANGUAGES), "text", "translation", "description")


@dataclass(frozen=True)
class Story:
    article_id: str
    title: str
    translated_title: str | None
    source: str
    date: str
    language: str
    snippet: str
    url: str
    rules: tuple[str, ...]
    also_in: tuple[str, ...] = ()
    also_in_more: int = 0


@dataclass(frozen=True)
class Digest:
    recipient: str
    frequency: str
    stories: tuple[Story, ...]
    notifications: tuple[Notification, ...] = field(default=(), repr=False)

    @property
    def rule_counts(self) -> dict[str, int]:
        """Stories per rule, most first."""
        counts: dict[str, int] = defaultdict(int)
        for story in self.stories:
            for rule in story.rules:
                counts[rule] += 1
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _snippet(highlight: dict[str, list[str]], document: dict[str, Any]) -> str:
    def rank(name: str) -> int:
        return next(
            (i for i, prefix in enumerate(_SNIPPET_FIELDS) if name.startswith(prefix)),
            len(_SNIPPET_FIELDS),
        )

    if highlight:
        marked = _line(" … ".join(highlight[min(highlight, key=rank)]))
        return merge_marks(marked, MARK_START, MARK_END)
    text = _line(document.get("description") or document.get("text"))
    return text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else "")


def _line(text: str | None) -> str:
    """Titles and names on one line, whatever line breaks the page had."""
    return " ".join((text or "").split())


def _label(document: dict[str, Any]) -> str:
    return _line(document.get("site_name") or document.get("source", {}).get("name", ""))


def _copies(
    client: Elasticsearch, index: str, clusters: set[str]
) -> dict[str, list[dict[str, Any]]]:
    if not clusters:
        return {}
    response = client.search(
        index=index,
        query={"terms": {"cluster_id": sorted(clusters)}},
        size=1000,
        source=["cluster_id", "site_name", "source.name", "first_seen_at"],
        sort=[{"first_seen_at": "asc"}],
    )
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for hit in response["hits"]["hits"]:
        found[hit["_source"]["cluster_id"]].append({"_id": hit["_id"], **hit["_source"]})
    return found


def build_digest(
    client: Elasticsearch,
    articles_index: str,
    rules: RuleSet,
    notes: list[Notification],
    pivot: str = PIVOT,
) -> Digest:
    """Fetch the articles behind ``notes`` with highlights and group them into stories."""
    by_story: dict[str, list[Notification]] = defaultdict(list)
    for note in notes:
        by_story[note.cluster_id or note.article_id].append(note)
    ids = sorted({group[0].article_id for group in by_story.values()})
    queries = [rule.search_query() for name in {n.rule for n in notes} if (rule := rules.get(name))]
    response = client.search(
        index=articles_index,
        query={"bool": {"filter": [{"ids": {"values": ids}}], "should": queries}},
        size=len(ids),
        highlight={
            "fields": {
                name: {} for name in ("text_*", "text", "translation.*.text", "description")
            },
            "fragment_size": SNIPPET_CHARS,
            "number_of_fragments": 1,
            "pre_tags": [MARK_START],
            "post_tags": [MARK_END],
        },
    )
    found = {hit["_id"]: hit for hit in response["hits"]["hits"]}
    copies = _copies(client, articles_index, {n.cluster_id for n in notes if n.cluster_id})
    stories = []
    for group in by_story.values():
        hit = found.get(group[0].article_id)
        if hit is None:  # the article was deleted from the index since it matched
            continue
        doc = hit["_source"]
        label = _label(doc)
        others = list(
            dict.fromkeys(
                _label(copy)
                for copy in copies.get(group[0].cluster_id or "", [])
                if copy["_id"] != hit["_id"] and _label(copy) != label
            )
        )
        stories.append(
            Story(
                article_id=hit["_id"],
                title=_line(doc.get("title")),
                translated_title=_line(doc.get("translation", {}).get(pivot, {}).get("title"))
                or None,
                source=label,
                date=(doc.get("published_at") or doc.get("first_seen_at") or "")[:16].replace(
                    "T", " "
                ),
                language=doc.get("language") or "?",
                snippet=_snippet(hit.get("highlight", {}), doc),
                url=doc.get("canonical_url") or doc.get("url", ""),
                rules=tuple(sorted({note.rule for note in group})),
                also_in=tuple(others[:ALSO_IN_SHOWN]),
                also_in_more=max(len(others) - ALSO_IN_SHOWN, 0),
            )
        )
    return Digest(notes[0].recipient, notes[0].frequency, tuple(stories), tuple(notes))
