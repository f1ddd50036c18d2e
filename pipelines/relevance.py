"""Relevance stage: does the article belong to one of the source's topics, and how strongly?

In:  an Article with ``language``, ``title`` and ``text``; the topics configured for its source.
Out: ``topics`` (names of topics whose score reaches their ``min_score``), ``relevance`` (the best
     score) and ``matched_terms`` (the topic terms found, as written in the topic file).
Drops: ``off_topic`` when no topic reaches its threshold (an excluded phrase counts as zero).

A term scores its weight once, half as much again when it is in the title, and a little more for
each repeat (up to five); matching is on stems, so inflections count (see veille.textmatch).
"""

from __future__ import annotations

from dataclasses import dataclass

from scrapy.crawler import Crawler

from pipelines.base import Stage
from veille.article import Article
from veille.config import Topic, cached_config
from veille.textmatch import StemIndex

TITLE_BONUS = 0.5
REPEAT_BONUS = 0.1
MAX_REPEATS = 5


@dataclass(frozen=True)
class TopicScore:
    topic: str
    score: float
    matched_terms: tuple[str, ...]
    excluded_by: str | None = None

    def passes(self, threshold: float) -> bool:
        return self.excluded_by is None and self.score >= threshold


def score_topic(topic: Topic, language: str, title: StemIndex, text: StemIndex) -> TopicScore:
    """Score one article (its stem indexes) against one topic."""
    per_language = topic.languages.get(language)  # type: ignore[call-overload]
    terms = [*(per_language.terms if per_language else ()), *topic.any_language]
    for phrase in per_language.exclude if per_language else ():
        if title.count(phrase) or text.count(phrase):
            return TopicScore(topic.name, 0.0, (), excluded_by=phrase)
    score, matched = 0.0, []
    for term in terms:
        in_title, in_text = title.count(term.term), text.count(term.term)
        occurrences = in_title + in_text
        if not occurrences:
            continue
        repeats = min(occurrences - 1, MAX_REPEATS)
        bonus = (1 + TITLE_BONUS * bool(in_title)) * (1 + REPEAT_BONUS * repeats)
        score += term.weight * bonus
        matched.append(term.term)
    return TopicScore(topic.name, round(score, 3), tuple(matched))


class RelevanceStage(Stage):
    name = "relevance"

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.config = cached_config(crawler.settings.get("VEILLE_CONFIG"))

    def process_item(self, article: Article) -> Article:
        language = article.language or "en"
        title, text = StemIndex(article.title, language), StemIndex(article.text, language)
        source = self.config.source(article.source.name)
        topics = {t.name: t for t in self.config.topics_for(source)}
        scores = [score_topic(topic, language, title, text) for topic in topics.values()]
        passing = [s for s in scores if s.passes(topics[s.topic].min_score)]
        if not passing:
            best = max(scores, key=lambda s: s.score, default=None)
            detail = f"best score {best.score} for {best.topic}" if best else "no topic"
            if best and best.excluded_by:
                detail = f"{best.topic} excluded by {best.excluded_by!r}"
            self.drop(article, "off_topic", detail)
        article.topics = [s.topic for s in passing]
        article.relevance = max(s.score for s in passing)
        article.matched_terms = sorted({term for s in passing for term in s.matched_terms})
        return article
