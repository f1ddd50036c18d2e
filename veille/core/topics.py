"""Topics as rules: does an article belong to a topic, by which rule, and where.

In:  topics (veille/core/config.py); an article's title, text and language.
Out: a :class:`Decision`: the topics the article belongs to, the deciding rule and the places
     it matched (``relevance`` as the article stores it), and, asked to ``explain``, every rule's
     result with what the article holds of each part. Nothing here needs a crawl: the relevance
     stage, ``veille topics test``/``eval`` and ``veille search --explain`` all call
     :meth:`TopicJudge.judge`.

An article belongs to a topic when one of the topic's rules for the article's language, or one
of its ``any_language`` rules, matches the title or the text (a NEAR within one of them). Each
rule is compiled once per language (its words analysed by that language's chain) and evaluated
on the article's two stem indexes; AND and OR stop at the first answer that settles them. The
topic with the most rule weight decides; its heaviest matching rule is the one reported, with
the places it matched. ``relevance.score`` adds up that topic's matching weights: it ranks,
never decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from veille.core.config import Topic
from veille.core.languages import FALLBACK, LANGUAGES
from veille.core.query import Document, Evidence, Query, to_elasticsearch
from veille.core.textmatch import StemIndex

MAX_MATCHES = 20
MAX_MATCH_TEXT = 300


@dataclass(frozen=True)
class CompiledRule:
    topic: str
    rule: str  # "<language>/<name>", "any/<name>" for any_language
    query: str
    weight: float
    compiled: Query


@dataclass(frozen=True)
class Match:
    """One place a rule matched: the field, character offsets in it, and the words there."""

    field: str
    start: int
    end: int
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "start": self.start, "end": self.end, "text": self.text}


@dataclass(frozen=True)
class RuleResult:
    topic: str
    rule: str
    query: str
    weight: float
    matched: bool
    matches: tuple[Match, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    closeness: float = 0.0


@dataclass(frozen=True)
class Decision:
    """What the rules say about one article."""

    language: str
    topics: tuple[str, ...]
    score: float
    best: RuleResult | None
    matched_rules: tuple[str, ...] = ()  # the deciding topic's matching rules
    closest: RuleResult | None = None  # nothing matched: the nearest rule (if asked for)
    results: tuple[RuleResult, ...] = field(default=())  # every rule, when explained

    @property
    def relevant(self) -> bool:
        return bool(self.topics)

    def relevance(self) -> dict[str, Any]:
        """The article's ``relevance`` field: score, deciding topic and rule, where it matched."""
        if self.best is None:
            return {}
        return {
            "score": self.score,
            "topic": self.best.topic,
            "rule": self.best.rule,
            "rules": list(self.matched_rules),
            "matches": [match.to_dict() for match in self.best.matches],
        }

    def summary(self) -> str:
        """One line: the deciding rule, or the closest one."""
        if self.best is not None:
            return f"{self.best.topic}: rule {self.best.rule} (score {self.score:g})"
        if self.closest is None:
            return "no topic rule matched"
        return f"no rule matched; closest {self.closest.topic}: {self.closest.rule}"


class TopicJudge:
    """The rules of some topics, compiled per language on first use."""

    def __init__(self, topics: Sequence[Topic]) -> None:
        self.topics = tuple(topics)
        self._rules: dict[str, list[CompiledRule]] = {}

    def rules(self, language: str) -> list[CompiledRule]:
        """The rules that apply to an article in ``language``, topic by topic, in file order."""
        compiled = self._rules.get(language)
        if compiled is None:
            # A topic's rules share their common parts (a group used by five rules is looked
            # for once per article); topics do not, as topics rarely have parts in common.
            compiled = self._rules[language] = [
                CompiledRule(topic.name, f"{key}/{name}", rule.query, rule.weight, query)
                for topic in self.topics
                for key, name, rule, query in _topic_rules(topic, language, {})
            ]
        return compiled

    def judge(
        self,
        title: str,
        text: str,
        language: str | None,
        explain: bool = False,
        closest: bool = False,
    ) -> Decision:
        """Which topics the article belongs to, by which rule. With ``explain``, every rule's
        result and the evidence for each part of it; with ``explain`` or ``closest``, for an
        article no rule matched, the rule it came closest to (a second pass over the rules, so
        the crawl, which drops most articles, does without)."""
        language = language or FALLBACK
        doc: Document = {"title": StemIndex(title, language), "text": StemIndex(text, language)}
        rules = self.rules(language)
        matched = [rule for rule in rules if rule.compiled.matches(doc)]
        weights: dict[str, float] = {}
        for rule in matched:
            weights[rule.topic] = weights.get(rule.topic, 0.0) + rule.weight
        topics = tuple(topic.name for topic in self.topics if topic.name in weights)
        results = (
            tuple(_result(rule, doc, rule in matched, True) for rule in rules) if explain else ()
        )
        if not matched:
            nearest = None
            if explain or closest:
                nearness = [(rule.compiled.closeness(doc), rule) for rule in rules]
                best, rule = max(nearness, key=lambda pair: pair[0], default=(0.0, None))
                nearest = _result(rule, doc, False, explain) if rule and best else None
            return Decision(language, (), 0.0, None, closest=nearest, results=results)
        deciding = max(topics, key=lambda name: weights[name])
        best = max((rule for rule in matched if rule.topic == deciding), key=lambda r: r.weight)
        return Decision(
            language,
            topics,
            round(weights[deciding], 3),
            _result(best, doc, True, explain),
            tuple(rule.rule for rule in matched if rule.topic == deciding),
            results=results,
        )


def topic_query(topic: Topic) -> dict[str, Any]:
    """An Elasticsearch query for the articles ``topic`` keeps: in each language, one of its
    rules for that language or for any language on the article's ``title_<lang>`` and
    ``text_<lang>`` (the fields analysed as the judge analyses them)."""
    languages = []
    for code, language in LANGUAGES.items():
        per_language = topic.languages.get(code)  # type: ignore[call-overload]
        entries = [(code, rule) for rule in per_language.rules.values()] if per_language else []
        entries += [("any", rule) for rule in topic.any_language.values()]
        rules = [
            to_elasticsearch(topic.rule_query(key, rule), language.fields) for key, rule in entries
        ]
        if rules:
            languages.append(
                {
                    "bool": {
                        "filter": [{"term": {"language": code}}],
                        "should": rules,
                        "minimum_should_match": 1,
                    }
                }
            )
    return {"bool": {"should": languages, "minimum_should_match": 1}}


def _topic_rules(
    topic: Topic, language: str, shared: dict[tuple, Any]
) -> list[tuple[str, str, Any, Query]]:
    per_language = topic.languages.get(language)  # type: ignore[call-overload]
    entries = (
        [(language, name, rule) for name, rule in per_language.rules.items()]
        if per_language
        else []
    )
    entries += [("any", name, rule) for name, rule in topic.any_language.items()]
    return [
        (key, name, rule, Query(topic.rule_query(key, rule), language, shared))
        for key, name, rule in entries
    ]


def _result(rule: CompiledRule, doc: Document, matched: bool, explain: bool) -> RuleResult:
    query = rule.compiled
    matches: tuple[Match, ...] = ()
    if matched:
        places = query.hits(doc)[:MAX_MATCHES]
        matches = tuple(_match(doc, hit.field, hit.first, hit.last) for hit in places)
    return RuleResult(
        rule.topic,
        rule.rule,
        rule.query,
        rule.weight,
        matched,
        matches,
        tuple(query.evidence(doc)) if explain else (),
        1.0 if matched else query.closeness(doc),
    )


def _match(doc: Document, name: str, first: int, last: int) -> Match:
    index = doc[name]
    start, end = index.offsets(first, last)
    return Match(name, start, end, index.text[start:end][:MAX_MATCH_TEXT])
