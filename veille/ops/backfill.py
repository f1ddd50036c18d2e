"""Translation backfill: articles indexed as ``pending`` get their translation later.

In:  the articles alias, a :class:`veille.core.translation.TranslationEngine`.
Out: each ``pending`` (and, when asked, ``failed``) article whose language now has a model is
     updated in place with ``translation.<pivot>``, ``translation_status``,
     ``translation_model``, ``translation_confidence`` and ``minhash_pivot``, the sketch of its
     translation that the cluster stage would have stored (:mod:`veille.core.clusters`), so articles
     crawled later link to it as a version in another language; the original text is untouched.
     The article itself keeps its ``cluster_id``: no look-up is made for it.

Articles are read in pages sorted by canonical URL (``search_after``), translated a batch at a time
(one CTranslate2 call per batch), and written back with bulk partial updates. Articles whose
model is still missing stay ``pending`` and are counted, never lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import streaming_bulk

from veille.core.clusters import ClusterSettings
from veille.core.minhash import sketch
from veille.core.settings import cluster_settings
from veille.core.translation import (
    MissingModel,
    TranslationEngine,
    TranslationFailed,
    outcome_fields,
)
from veille.ops.crawl import crawl_settings

FIELDS = ["language", "title", "text"]


@dataclass
class BackfillReport:
    seen: int = 0
    done: int = 0
    still_pending: int = 0
    failed: int = 0


def _waiting(
    client: Elasticsearch, index: str, statuses: list[str], page: int
) -> Iterator[list[dict[str, Any]]]:
    after: list[Any] | None = None
    while True:
        response = client.search(
            index=index,
            size=page,
            query={"terms": {"translation_status": statuses}},
            sort=[{"canonical_url": "asc"}],
            source=FIELDS,
            search_after=after,
        )
        hits = response["hits"]["hits"]
        if not hits:
            return
        yield hits
        after = hits[-1]["sort"]


def count_waiting(client: Elasticsearch, index: str, statuses: list[str]) -> int:
    query = {"terms": {"translation_status": statuses}}
    return client.count(index=index, query=query)["count"]


def translate_pending(
    client: Elasticsearch,
    index: str,
    engine: TranslationEngine,
    *,
    retry_failed: bool = False,
    batch: int = 32,
    on_batch: Callable[[int], None] | None = None,
    clusters: ClusterSettings | None = None,
) -> BackfillReport:
    """Translate every waiting article that a model can now translate; see module docstring.

    ``clusters`` gives the pivot MinHash scheme; the crawl's settings when None.
    """
    statuses = ["pending", "failed"] if retry_failed else ["pending"]
    pivot = engine.settings.pivot
    scheme = (clusters or cluster_settings(crawl_settings())).pivot_scheme
    report = BackfillReport()
    for hits in _waiting(client, index, statuses, batch):
        docs = [(h["_source"].get("language", ""), h["_source"]["title"], h["_source"]["text"])
                for h in hits]  # fmt: skip
        outcomes = engine.translate_documents(docs)
        actions = []
        for hit, outcome in zip(hits, outcomes, strict=True):
            report.seen += 1
            if isinstance(outcome, MissingModel):
                report.still_pending += 1
                continue
            update = outcome_fields(outcome, pivot)
            if isinstance(outcome, TranslationFailed):
                report.failed += 1
            elif outcome is not None:
                report.done += 1
                pivot_sketch = sketch(outcome.text, scheme)
                update["minhash_pivot"] = pivot_sketch.to_document() if pivot_sketch else {}
            actions.append(
                {"_op_type": "update", "_index": hit["_index"], "_id": hit["_id"], "doc": update}
            )
        for ok, result in streaming_bulk(client, actions, raise_on_error=False, max_retries=3):
            if not ok:
                raise RuntimeError(f"could not update article {result['update']['_id']}: {result}")
        if on_batch:
            on_batch(len(hits))
    client.indices.refresh(index=index)
    return report
