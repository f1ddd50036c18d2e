"""Relevance stage: does the article belong to one of its source's topics, and why?

In:  an Article with ``language``, ``title`` and ``text``; the topics configured for its source.
Out: ``topics`` (every topic one of whose rules matched) and ``relevance``: ``score`` (the
     deciding topic's matching rule weights, for ranking), ``topic``, ``rule`` (the deciding
     rule, ``<language>/<name>``), ``rules`` (that topic's matching rules) and ``matches`` (where
     the rule matched: field, character offsets, words).
Drops: ``off_topic`` when no rule matches, as :class:`OffTopic`, which carries the decision:
     while ``VEILLE_REJECTED_KEEP`` is not 0 the decision names the rule the article came
     closest to, and crawler/extensions/rejected.py keeps the article in ``<prefix>-rejected``.

The rules are compiled once per source and language and evaluated on the article's stem
indexes, here on the reactor thread (README: Relevance, for the cost per article).
"""

from __future__ import annotations

from typing import NoReturn, Self

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from pipelines.base import Stage
from veille.core.article import Article
from veille.core.config import Config, cached_config
from veille.core.rejected import KEEP_SETTING, keep_for
from veille.core.topics import Decision, TopicJudge


class OffTopic(DropItem):
    """An article no topic rule matched; ``decision`` says what the rules found."""

    def __init__(self, message: str, decision: Decision) -> None:
        super().__init__(message)
        self.decision = decision


class RelevanceStage(Stage):
    name = "relevance"

    def __init__(self, crawler: Crawler, config: Config, closest: bool) -> None:
        super().__init__(crawler)
        self.config = config
        self.judges: dict[str, TopicJudge] = {}
        self.closest = closest

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        # The closest rule costs a second pass over the rules of a dropped article (README:
        # Retroactive topics): paid only when dropped articles are kept.
        closest = bool(keep_for(settings.get(KEEP_SETTING)))
        return cls(crawler, cached_config(settings.get("VEILLE_CONFIG")), closest)

    def judge_for(self, source: str) -> TopicJudge:
        judge = self.judges.get(source)
        if judge is None:
            topics = self.config.topics_for(self.config.source(source))
            judge = self.judges[source] = TopicJudge(topics)
        return judge

    def process_item(self, article: Article) -> Article:
        judge = self.judge_for(article.source.name)
        decision = judge.judge(article.title, article.text, article.language, closest=self.closest)
        if not decision.relevant:
            self.reject(article, decision)
        article.topics = list(decision.topics)
        article.relevance = decision.relevance()
        return article

    def reject(self, article: Article, decision: Decision) -> NoReturn:
        """The one way out for an article no rule matched."""
        try:
            self.drop(article, "off_topic", decision.summary())
        except DropItem as dropped:
            raise OffTopic(str(dropped), decision) from None
