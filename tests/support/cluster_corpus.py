"""The labelled story-cluster corpus (``tests/fixtures/clusters/corpus.yaml``) as Articles.

In:  the corpus file: originals, copies described by their edits, pivot translations.
Out: :class:`Labelled` articles in publication order, each with its ``story`` (the cluster it
     belongs in) and ``group`` (its same-language copy group: the original's name), built fresh
     on every call because clustering fills in the articles' fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import yaml

from veille.core.article import Article, SourceRef

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "clusters" / "corpus.yaml"


@dataclass(frozen=True)
class Labelled:
    name: str
    story: str
    group: str
    article: Article


def _edited(original: dict[str, Any], copy: dict[str, Any], suffix: str = "") -> dict[str, Any]:
    """Title and paragraphs of a copy: the original's, trimmed, with paragraphs added around."""
    text = original["text"][: copy.get("keep", len(original["text"]))]
    return {
        "title": copy.get(f"title{suffix}", original["title"]),
        "text": [*copy.get(f"before{suffix}", []), *text, *copy.get(f"after{suffix}", [])],
    }


def _expand(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_name: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if "copy_of" in entry:
            original = by_name[entry["copy_of"]]
            entry = {
                **{k: original[k] for k in ("story", "language", "group")},
                **entry,
                **_edited(original, entry),
            }
            if "pivot" in original:
                entry["pivot"] = _edited(original["pivot"], entry | {"title": None}, "_pivot")
        else:
            entry = {**entry, "group": entry["id"]}
        by_name[entry["id"]] = entry
    return sorted(by_name.values(), key=lambda e: e["published_at"])


def _article(entry: dict[str, Any]) -> Article:
    url = f"https://{entry['outlet']}.example/{entry['id']}"
    published = datetime.fromisoformat(entry["published_at"])
    article = Article(
        url=url,
        canonical_url=url,
        source=SourceRef(name=entry["outlet"], domain=f"{entry['outlet']}.example"),
        title=entry["title"],
        text="\n\n".join(entry["text"]),
        language=entry["language"],
        published_at=published,
        first_seen_at=published,
        translation_status="not_needed",
    )
    if "pivot" in entry:
        pivot = entry["pivot"]
        title = pivot["title"] or entry["title"]
        article.translation = {"en": {"title": title, "text": "\n\n".join(pivot["text"])}}
        article.translation_status = "done"
    return article


def load_corpus(path: Path = CORPUS) -> list[Labelled]:
    entries = _expand(yaml.safe_load(path.read_text(encoding="utf-8"))["articles"])
    return [Labelled(e["id"], e["story"], e["group"], _article(e)) for e in entries]


def pairs(items: list[Labelled], key: Any) -> set[frozenset[str]]:
    """Unordered pairs of article names for which ``key(a) == key(b)`` (None never pairs)."""
    return {
        frozenset((a.name, b.name))
        for a, b in combinations(items, 2)
        if key(a) is not None and key(a) == key(b)
    }
