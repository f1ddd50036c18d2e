"""Story clusters: same-language copies and other-language versions of a story, via Elasticsearch.

In:  an :class:`~veille.article.Article` with ``language``, ``text``, ``first_seen_at`` and, once
     translated, ``translation[<pivot>]``; the articles index and the claims index
     (``<prefix>-clusters``); :class:`ClusterSettings`.
Out: the article's ``minhash`` (its text) and ``minhash_pivot`` (its pivot-language text)
     sketches, ``cluster_id`` on every article (a story seen once is its own cluster, named by
     its id), ``duplicate_of`` on a same-language copy of an earlier article (the first-seen
     one, the canonical); and an :class:`Assignment` saying what was found.

Look-up, one ``msearch`` per article: a query on the article's band terms among articles in
its language, and one on its pivot band terms among articles in other languages published
within the window. Same-language candidates are confirmed with the containment (shared
shingles over the smaller text) estimated from the two signatures, so a copy with a trimmed
ending or added paragraphs still counts (``duplicate_threshold``). Other-language candidates
are confirmed on their exact pivot word pairs, with the lower ``cross_language_threshold``,
since a machine translation shares few word pairs with an original. Versions this process
clustered lately (the last ``recent``, not searchable yet) are candidates too, so an English
story and its French version in the same crawl are linked.

Copies that nobody can see yet (still in another process's bulk buffer, or not refreshed) are
settled by claims: an article that found no earlier copy writes its sketch
(``article:<id>``) and creates one ``band:<term>`` document per band term with
``op_type=create``, which succeeds for exactly one claimant. When two copies claim at once,
both learn of each other from the bands they lost, and the one holding the smallest band term
they share stays canonical; the other becomes its duplicate. Both reach the same answer from
the same facts, so two crawler processes end with one canonical article.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from elasticsearch import Elasticsearch

from veille.article import Article, utcnow
from veille.minhash import (
    Scheme,
    Similarity,
    Sketch,
    containment,
    shingles,
    similarity,
    sketch,
    sketch_shingles,
)

# Same language: 4-word shingles, found at similarity ~0.29 (42 bands of 3 rows).
SAME_LANGUAGE = Scheme(shingle=4, bands=42, rows=3)
# Pivot texts: pairs of words of 5 letters or more (numbers kept), one band per permutation,
# so the query's score counts equal MinHash values (128 x the estimated Jaccard similarity).
PIVOT = Scheme(shingle=2, bands=128, rows=1, min_word_length=5)


@dataclass(frozen=True)
class ClusterSettings:
    """Thresholds and MinHash schemes; see ``crawler/settings.py`` for the crawl's values.

    ``candidates``: best-scoring hits confirmed per query. ``recent``: how many of this
    process's latest articles are remembered for cross-language links.
    """

    scheme: Scheme = SAME_LANGUAGE
    pivot_scheme: Scheme = PIVOT
    duplicate_threshold: float = 0.6
    cross_language_threshold: float = 0.18
    window: timedelta = timedelta(days=3)
    pivot: str = "en"
    candidates: int = 10
    recent: int = 1000


@dataclass(frozen=True)
class Assignment:
    """Where an article went: a new cluster, a copy of an earlier one, or a linked version."""

    kind: Literal["new", "duplicate", "cross_language"]
    cluster_id: str
    duplicate_of: str | None = None
    linked_to: str | None = None
    score: float = 0.0
    concurrent: bool = False


@dataclass(frozen=True)
class _Version:
    """An article that versions in other languages can join: its pivot-language word pairs."""

    id: str
    language: str | None
    cluster_id: str
    shingles: frozenset[bytes]


def pivot_text(article: Article, pivot: str) -> str | None:
    """The article's text in the pivot language: its own, or its translation once done."""
    if article.language == pivot:
        return article.text
    return (article.translation.get(pivot) or {}).get("text")


def _bands_query(field: str, bands: tuple[str, ...]) -> list[dict[str, Any]]:
    """One clause per band, each worth 1, so a candidate's score is the number of shared bands."""
    return [{"constant_score": {"filter": {"term": {field: term}}}} for term in bands]


class StoryClusters:
    """Assigns articles to story clusters against one articles index and one claims index."""

    def __init__(
        self,
        client: Elasticsearch,
        articles_index: str,
        claims_index: str,
        settings: ClusterSettings | None = None,
    ) -> None:
        self.client = client
        self.articles = articles_index
        self.claims = claims_index
        self.settings = settings or ClusterSettings()
        self._recent: deque[tuple[_Version, datetime]] = deque(maxlen=self.settings.recent)
        self._lock = threading.Lock()

    def sketch(self, article: Article) -> tuple[Sketch | None, set[bytes]]:
        """Compute and store the article's sketches; returns its own and its pivot shingles."""
        own = sketch(article.text, self.settings.scheme)
        text = pivot_text(article, self.settings.pivot)
        pivot_shingles = shingles(text, self.settings.pivot_scheme) if text else set()
        pivot = sketch_shingles(pivot_shingles, self.settings.pivot_scheme)
        article.minhash = own.to_document() if own else {}
        article.minhash_pivot = pivot.to_document() if pivot else {}
        return own, pivot_shingles

    def lookup(self, article: Article) -> Assignment:
        """Sketch the article and find where it belongs among indexed articles; writes nothing."""
        own, pivot_shingles = self.sketch(article)
        return self._find(article, own, pivot_shingles)

    def assign(self, article: Article) -> Assignment:
        """Sketch the article, find its cluster, and set ``cluster_id``/``duplicate_of``."""
        own, pivot_shingles = self.sketch(article)
        assignment = self._find(article, own, pivot_shingles)
        if assignment.kind != "duplicate" and own is not None:
            assignment = self._claim(article, own, assignment)
        article.cluster_id = assignment.cluster_id
        article.duplicate_of = assignment.duplicate_of
        if pivot_shingles:
            version = _Version(
                article.id, article.language, assignment.cluster_id, frozenset(pivot_shingles)
            )
            with self._lock:
                self._recent.append((version, article.published_at or article.first_seen_at))
        return assignment

    # --- look-up in the articles index ----------------------------------------------------

    def _copies_query(self, article: Article, own: Sketch) -> dict[str, Any]:
        """Articles in the same language sharing a band term, most shared bands first."""
        return {
            "bool": {
                "should": _bands_query("minhash.bands", own.bands),
                "minimum_should_match": 1,
                "filter": [{"term": {"language": article.language}}],
                "must_not": [{"ids": {"values": [article.id]}}],
            }
        }

    def _versions_query(self, article: Article, bands: list[str]) -> dict[str, Any]:
        """Articles in other languages within the window sharing a pivot band term."""
        return {
            "bool": {
                "should": _bands_query("minhash_pivot.bands", bands),
                "minimum_should_match": 1,
                "filter": [self._window(article)],
                "must_not": [{"term": {"language": article.language}}],
            }
        }

    def _body(self, query: dict[str, Any], source: list[str]) -> dict[str, Any]:
        return {
            "query": query,
            "size": self.settings.candidates,
            "_source": source,
            "sort": ["_score", {"first_seen_at": "asc"}],
        }

    def _window(self, article: Article) -> dict[str, Any]:
        """Published within the window of this article (first seen, when no date is known)."""
        when: datetime = article.published_at or article.first_seen_at
        span = {
            "gte": (when - self.settings.window).isoformat(),
            "lte": (when + self.settings.window).isoformat(),
        }
        undated = {
            "bool": {
                "must_not": {"exists": {"field": "published_at"}},
                "filter": {"range": {"first_seen_at": span}},
            }
        }
        return {"bool": {"should": [{"range": {"published_at": span}}, undated]}}

    def _find(self, article: Article, own: Sketch | None, pivot: set[bytes]) -> Assignment:
        searches: list[Any] = []
        if own is not None:
            source = ["cluster_id", "duplicate_of", "minhash"]
            searches += [
                {"index": self.articles},
                self._body(self._copies_query(article, own), source),
            ]
        pivot_bands = list(article.minhash_pivot.get("bands", ()))
        if pivot_bands:
            source = ["language", "cluster_id", "text", f"translation.{self.settings.pivot}.text"]
            query = self._versions_query(article, pivot_bands)
            searches += [{"index": self.articles}, self._body(query, source)]
        if not searches:
            return Assignment("new", article.id)
        responses = self.client.msearch(searches=searches)["responses"]
        for response in responses:
            if "error" in response and response.get("status") != 404:
                raise RuntimeError(f"cluster look-up failed: {response['error']}")
        hits = [r.get("hits", {}).get("hits", []) for r in responses]
        if own is not None:
            copy = self._best_copy(own, hits.pop(0))
            if copy:
                hit, score = copy
                canonical = hit["_source"].get("duplicate_of") or hit["_id"]
                cluster = hit["_source"].get("cluster_id") or canonical
                return Assignment("duplicate", cluster, canonical, hit["_id"], score)
        if pivot_bands:
            candidates = [*self._indexed_versions(hits.pop(0)), *self._recent_versions(article)]
            version = self._best_version(pivot, candidates)
            if version:
                other, score = version
                return Assignment("cross_language", other.cluster_id, None, other.id, score)
        return Assignment("new", article.id)

    def _best_copy(
        self, mine: Sketch, hits: list[dict[str, Any]]
    ) -> tuple[dict[str, Any], float] | None:
        """The same-language candidate whose estimated containment is highest and high enough."""
        scored: list[tuple[Similarity, dict[str, Any]]] = []
        for hit in hits:
            theirs = Sketch.from_document(hit["_source"].get("minhash"))
            if theirs is not None:
                scored.append((similarity(mine, theirs), hit))
        passing = [p for p in scored if p[0].containment >= self.settings.duplicate_threshold]
        if not passing:
            return None
        best, hit = max(passing, key=lambda pair: (pair[0].containment, pair[0].jaccard))
        return hit, best.containment

    def _indexed_versions(self, hits: list[dict[str, Any]]) -> list[_Version]:
        pivot, scheme = self.settings.pivot, self.settings.pivot_scheme
        versions = []
        for hit in hits:
            doc = hit["_source"]
            text = doc.get("text") if doc.get("language") == pivot else None
            text = text or (doc.get("translation", {}).get(pivot) or {}).get("text") or ""
            cluster = doc.get("cluster_id") or hit["_id"]
            versions.append(
                _Version(
                    hit["_id"], doc.get("language"), cluster, frozenset(shingles(text, scheme))
                )
            )
        return versions

    def _recent_versions(self, article: Article) -> list[_Version]:
        """Articles this process clustered lately, in other languages, within the window.

        They may not be searchable yet (the index stage sends articles in bulk), and two
        versions of a story often arrive in the same crawl.
        """
        when = article.published_at or article.first_seen_at
        with self._lock:
            recent = list(self._recent)
        return [
            version
            for version, seen in recent
            if version.language != article.language
            and version.id != article.id
            and abs(seen - when) <= self.settings.window
        ]

    def _best_version(
        self, mine: set[bytes], candidates: list[_Version]
    ) -> tuple[_Version, float] | None:
        """The other-language version whose pivot text shares most of this one's word pairs.

        Machine translations share few word pairs with an original, where the MinHash estimate
        is noisy, so candidates are confirmed on their exact pivot shingles.
        """
        best: tuple[_Version, float] | None = None
        for version in candidates:
            score = containment(mine, set(version.shingles))
            if score >= self.settings.cross_language_threshold and (not best or score > best[1]):
                best = (version, score)
        return best

    # --- claims: copies that are not searchable yet ---------------------------------------

    def _claim(self, article: Article, own: Sketch, found: Assignment) -> Assignment:
        """Claim the article's band terms; yield to a concurrent copy that holds the first one."""
        now = utcnow().isoformat()
        record = {
            "kind": "article",
            "article_id": article.id,
            "canonical_id": article.id,
            "cluster_id": found.cluster_id,
            "language": article.language,
            "claimed_at": now,
            "minhash": own.to_document(),
        }
        operations: list[dict[str, Any]] = [
            {"index": {"_index": self.claims, "_id": f"article:{article.id}"}},
            record,
        ]
        for term in own.bands:
            operations += [
                {"create": {"_index": self.claims, "_id": f"band:{term}"}},
                {"kind": "band", "article_id": article.id, "claimed_at": now},
            ]
        # require_alias: never let a missing claims index be created without its mapping.
        items = self.client.bulk(operations=operations, require_alias=True)["items"]
        if items[0]["index"]["status"] >= 300:
            raise RuntimeError(f"cluster claim refused: {items[0]['index'].get('error')}")
        lost = []
        for term, item in zip(own.bands, items[1:], strict=True):
            status = item["create"]["status"]
            if status == 409:
                lost.append(term)
            elif status >= 300:
                raise RuntimeError(f"band claim refused: {item['create'].get('error')}")
        if not lost:
            return found
        holders = self._holders(lost)
        rival = self._rival(article, own, holders)
        if rival is None:
            return found
        canonical = rival.get("canonical_id") or rival["article_id"]
        cluster = rival.get("cluster_id") or canonical
        record.update(canonical_id=canonical, cluster_id=cluster)
        self.client.index(
            index=self.claims, id=f"article:{article.id}", document=record, require_alias=True
        )
        score = similarity(own, Sketch.from_document(rival["minhash"]) or own).containment
        return Assignment("duplicate", cluster, canonical, rival["article_id"], score, True)

    def _holders(self, terms: list[str]) -> dict[str, str]:
        """Band term → id of the article holding its claim."""
        docs = self.client.mget(index=self.claims, ids=[f"band:{t}" for t in terms])["docs"]
        return {
            doc["_id"].removeprefix("band:"): doc["_source"]["article_id"]
            for doc in docs
            if doc.get("found")
        }

    def _rival(
        self, article: Article, own: Sketch, holders: dict[str, str]
    ) -> dict[str, Any] | None:
        """The similar claimant this article must yield to, if any.

        For each similar claimant, look at the band terms both sketches share and that one of
        the two holds: the holder of the smallest such term is canonical. The claimant sees the
        same holders, so it decides the same way.
        """
        others = sorted({h for h in holders.values() if h != article.id})
        if not others:
            return None
        docs = self.client.mget(index=self.claims, ids=[f"article:{h}" for h in others])["docs"]
        mine = set(own.bands)
        yield_to: list[tuple[str, dict[str, Any]]] = []
        for doc in docs:
            rival = doc.get("_source") if doc.get("found") else None
            if not rival or rival.get("language") != article.language:
                continue
            theirs = Sketch.from_document(rival.get("minhash"))
            if theirs is None:
                continue
            if similarity(own, theirs).containment < self.settings.duplicate_threshold:
                continue
            held = sorted(
                term
                for term in mine & set(theirs.bands)
                if holders.get(term, article.id) in (article.id, rival["article_id"])
            )
            if held and holders.get(held[0]) == rival["article_id"]:
                yield_to.append((held[0], rival))
        return min(yield_to, key=lambda pair: pair[0])[1] if yield_to else None
