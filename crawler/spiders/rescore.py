"""Rescore spider: rejected articles an edited topic now keeps, sent through the rest of the
pipeline (``veille topics rescore``, :func:`veille.ops.rescore.promote`).

Arguments (in the process that runs it, not from the command line): ``promotions``, a mapping
of article ``_id`` to the ``(topics, relevance)`` the rules now give it, and ``promoted_at``.
Out: one :class:`~veille.core.article.Article` per id still in ``<prefix>-rejected``, rebuilt
from its record as the relevance stage saw it, with ``topics``, ``relevance`` and
``promoted_at`` set. The crawl runs only the stages ``ITEM_PIPELINES`` puts after relevance
(dedupe to index), so each article is dropped or stored exactly as if the rules had kept it
when it was crawled. Nothing is fetched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from functools import partial
from typing import Any

import scrapy

from veille.core.article import Article
from veille.core.crawl_resources import crawl_elasticsearch
from veille.core.threads import in_thread

PAGE = 100


class RescoreSpider(scrapy.Spider):
    name = "rescore"

    def __init__(
        self,
        promotions: dict[str, tuple[list[str], dict[str, Any]]] | None = None,
        promoted_at: datetime | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.promotions = promotions or {}
        self.promoted_at = promoted_at

    async def start(self) -> AsyncIterator[Any]:
        es = crawl_elasticsearch(self.crawler)
        ids = list(self.promotions)
        for first in range(0, len(ids), PAGE):
            page = ids[first : first + PAGE]
            found = await in_thread(partial(es.client.mget, index=es.names.rejected, ids=page))
            for record in found["docs"]:
                if record.get("found"):
                    yield self.article(record["_id"], record["_source"])

    def article(self, article_id: str, record: dict[str, Any]) -> Article:
        article = Article.from_document(record)
        article.topics, article.relevance = self.promotions[article_id]
        article.promoted_at = self.promoted_at
        return article
