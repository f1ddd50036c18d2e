"""Topic rules against a labelled set: precision, recall, and every miss explained.

In:  a folder of labelled articles, one YAML file each (``language``, ``relevant``, ``title``,
     ``text``; ``category``, ``outlet``, ``published`` and ``why`` for the reader), in any
     sub-folders (the shipped set has ``fr/``, ``en/``, ``es/``); the topics to judge with.
Out: :class:`Evaluation`: per language and overall, how many articles, how many relevant, how
     many kept, precision and recall; and each miss (a relevant article dropped, an irrelevant
     one kept) with the rule that fired or the rule it came closest to.

A file that cannot be read or lacks a field is an error naming the file and the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from veille.core.config import ConfigError, Topic
from veille.core.topics import Decision, TopicJudge

LABELLED_SET = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "relevance"
REQUIRED = {"language": str, "relevant": bool, "title": str, "text": str}


@dataclass(frozen=True)
class Labelled:
    path: Path
    language: str
    relevant: bool
    title: str
    text: str
    category: str = ""
    published: str = ""


@dataclass(frozen=True)
class Outcome:
    article: Labelled
    decision: Decision

    @property
    def kept(self) -> bool:
        return self.decision.relevant

    @property
    def correct(self) -> bool:
        return self.kept == self.article.relevant


@dataclass(frozen=True)
class Scores:
    articles: int
    relevant: int
    kept: int
    true_positives: int

    @property
    def precision(self) -> float:
        """Share of kept articles that are relevant (1.0 when nothing was kept)."""
        return self.true_positives / self.kept if self.kept else 1.0

    @property
    def recall(self) -> float:
        """Share of relevant articles kept (1.0 when there are none)."""
        return self.true_positives / self.relevant if self.relevant else 1.0


@dataclass(frozen=True)
class Evaluation:
    folder: Path
    outcomes: tuple[Outcome, ...]

    def scores(self, language: str | None = None) -> Scores:
        chosen = [o for o in self.outcomes if language in (None, o.article.language)]
        return Scores(
            len(chosen),
            sum(o.article.relevant for o in chosen),
            sum(o.kept for o in chosen),
            sum(o.kept and o.article.relevant for o in chosen),
        )

    @property
    def languages(self) -> list[str]:
        return sorted({o.article.language for o in self.outcomes})

    @property
    def misses(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.correct]


def read_labelled(path: Path) -> Labelled:
    """One labelled article file; a ConfigError names the file and the field that is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(path, "(file)", f"not a readable YAML file: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(path, "(top level)", "expected a mapping of fields")
    for key, kind in REQUIRED.items():
        if not isinstance(data.get(key), kind):
            raise ConfigError(path, key, f"missing or not a {kind.__name__}", "add it")
    return Labelled(
        path,
        data["language"],
        data["relevant"],
        data["title"],
        data["text"],
        str(data.get("category") or ""),
        str(data.get("published") or ""),
    )


def load_labelled(folder: Path) -> list[Labelled]:
    """Every ``*.yaml`` under ``folder``, in path order."""
    return [read_labelled(path) for path in sorted(folder.rglob("*.yaml"))]


def evaluate(topics: Sequence[Topic], folder: Path = LABELLED_SET) -> Evaluation:
    """Judge every labelled article of ``folder`` with ``topics`` (relevant: any topic keeps it)."""
    judge = TopicJudge(topics)
    outcomes = []
    for article in load_labelled(folder):
        decision = judge.judge(article.title, article.text, article.language)
        if decision.relevant != article.relevant:  # a miss: keep what explains it
            decision = judge.judge(article.title, article.text, article.language, explain=True)
        outcomes.append(Outcome(article, decision))
    return Evaluation(folder, tuple(outcomes))
