"""What the retroactive-topic tests share: a few labelled articles served as news sites, config
folders with the shipped topic or an edit of it, articles stored as the crawl stores them."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from tests.support.relevance_site import build_sites, outlet_of, page_path
from tests.support.runner import ROOT
from veille.core.article import Article, SourceRef
from veille.core.config import load_config
from veille.core.topics import TopicJudge
from veille.core.urls import canonicalize, domain_of
from veille.ops.topic_eval import LABELLED_SET, Labelled, read_labelled

TOPIC_FILE = "overseas-police-stations.yaml"
# On topic, and kept by one shipped rule only: without that rule the topic misses them.
LYON = "fr/07-temoignage-lyon.yaml"  # fr/family-at-home
BOGOTA = "es/26-bogota-falun-gong-practicante-hostigamiento.yaml"  # es/dissidents-abroad
COMMONS = "en/31-commons-firs-enhanced-tier-china.yaml"  # en/police-outpost
# Kept by other rules, and articles no rule keeps.
ON_TOPIC = ["fr/03-grc-centres-rive-sud.yaml", "en/11-capel-street-office-closure.yaml"]
OFF_TOPIC = [
    "fr/04-cognac-antidumping.yaml",
    "fr/05-touristes-chinois-aubervilliers.yaml",
    "es/04-mexico-aranceles-importaciones-asia.yaml",
    "en/01-canola-tariff-retaliation.yaml",
]


def labelled(name: str) -> Labelled:
    return read_labelled(LABELLED_SET / name)


def labelled_subset(folder: Path, names: list[str]) -> Path:
    """A labelled set of only these articles (their paths under the shipped set)."""
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(LABELLED_SET / name, folder / name)
    return folder


def serve_subset(root: Path, names: list[str]) -> list[Labelled]:
    """The sites of :mod:`tests.support.relevance_site` for only these articles."""
    return build_sites(root / "sites", labelled_subset(root / "labelled", names))


def page_url(base_url: str, article: Labelled) -> str:
    return canonicalize(base_url + page_path(article))


def write_topic_config(
    folder: Path, sources: list[dict[str, Any]], without: tuple[str, ...] = ()
) -> Path:
    """A config folder with these sources and the shipped topic, less the rules ``without``
    names (``fr/family-at-home``): what an operator's edit of the topic file leaves."""
    (folder / "topics").mkdir(parents=True, exist_ok=True)
    (folder / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}), "utf-8")
    topic = yaml.safe_load((ROOT / "config" / "topics" / TOPIC_FILE).read_text("utf-8"))
    for rule in without:
        language, name = rule.split("/")
        del topic["languages"][language]["rules"][name]
    (folder / "topics" / TOPIC_FILE).write_text(
        yaml.safe_dump(topic, allow_unicode=True, sort_keys=False), "utf-8"
    )
    return folder


def relevance_sources(base_urls: dict[str, str]) -> list[dict[str, Any]]:
    """One feed source per relevance outlet (``relevance-fr``…), keyed by outlet name."""
    return [
        {"name": outlet, "type": "feed", "urls": [base + "/feed.xml"],
         "language": outlet.rsplit("-", 1)[1], "schedule": {"every": "1h"}}
        for outlet, base in base_urls.items()
    ]  # fmt: skip


def stored_article(
    article: Labelled, config: Path, first_seen_at: datetime, **fields: Any
) -> Article:
    """The Article the crawl would index for a labelled article, judged by ``config``'s topic
    (``relevance`` and ``topics`` as the relevance stage sets them, unless ``fields`` says)."""
    outlet = outlet_of(article)
    url = canonicalize(f"https://{outlet}.example.org{page_path(article)}")
    decision = TopicJudge(load_config(config).topics).judge(
        article.title, article.text, article.language
    )
    values: dict[str, Any] = {
        "topics": list(decision.topics),
        "relevance": decision.relevance(),
        "translation_status": "not_needed" if article.language == "en" else "pending",
        **fields,
    }
    return Article(
        url=url,
        canonical_url=url,
        urls=[url],
        source=SourceRef(outlet, domain_of(url)),
        title=article.title,
        text=article.text,
        language=article.language,
        first_seen_at=first_seen_at,
        **values,
    )


def example_sources(names: list[str]) -> list[dict[str, Any]]:
    """Sources for articles made by :func:`stored_article` (never crawled)."""
    outlets = sorted({outlet_of(labelled(name)) for name in names})
    return relevance_sources({o: f"https://{o}.example.org" for o in outlets})
