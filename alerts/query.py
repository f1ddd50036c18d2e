"""Alert queries: an analyst's keywords compiled into an Elasticsearch query.

In:  keywords in the query language of veille/core/query.py (words, "phrases", AND, OR, NOT,
     parentheses, NEAR/n), and a rule's filters (languages, countries, sources, relevance).
Out: an Elasticsearch query (a plain dict) usable both as a percolator query and as a search.

Every word, phrase or NEAR is matched on the fields ``veille search`` uses
(:data:`veille.core.search.SEARCH_FIELDS`): the original title and text, the per-language copies
analysed with the ``veille_<code>`` analyzers of veille/core/languages.py (so "station" finds
"stations"), and the translations ``translation.<lang>.*``, so an English keyword finds a French
article through its English translation.
"""

from __future__ import annotations

from typing import Any

from veille.core.query import QuerySyntaxError, to_elasticsearch
from veille.core.search import SEARCH_FIELDS

__all__ = ["KEYWORD_FIELDS", "QuerySyntaxError", "compile_keywords", "with_filters"]

KEYWORD_FIELDS = list(SEARCH_FIELDS)


def compile_keywords(text: str) -> dict[str, Any]:
    """The Elasticsearch query for a keyword query (see veille/core/query.py for the syntax)."""
    return to_elasticsearch(text, KEYWORD_FIELDS)


def with_filters(
    query: dict[str, Any],
    *,
    languages: list[str] | tuple[str, ...] = (),
    countries: list[str] | tuple[str, ...] = (),
    sources: list[str] | tuple[str, ...] = (),
    min_relevance: float | None = None,
    actions: list[str] | tuple[str, ...] = (),
    new_station: bool = False,
) -> dict[str, Any]:
    """``query`` restricted to articles in these languages, countries and sources.

    A country matches an article that mentions it (``countries``) or whose source is based
    there (``source.country``); ``min_relevance`` is the lowest ``relevance.score`` kept;
    ``actions``, articles reporting one of them; ``new_station``, articles that added a location
    to the stations register (``new_stations``).
    """
    filters: list[dict[str, Any]] = []
    if languages:
        filters.append({"terms": {"language": list(languages)}})
    if countries:
        filters.append(
            {
                "bool": {
                    "should": [
                        {"terms": {"countries": list(countries)}},
                        {"terms": {"source.country": list(countries)}},
                    ],
                    "minimum_should_match": 1,
                }
            }
        )
    if sources:
        filters.append({"terms": {"source.name": list(sources)}})
    if min_relevance is not None:
        filters.append({"range": {"relevance.score": {"gte": min_relevance}}})
    if actions:
        filters.append({"terms": {"actions": list(actions)}})
    if new_station:
        filters.append({"exists": {"field": "new_stations"}})
    if not filters:
        return query
    return {"bool": {"must": [query], "filter": filters}}
