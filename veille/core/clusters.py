"""Story clusters: same-language copies and other-language versions of a story, via Elasticsearch.

In:  an :class:`~veille.core.article.Article` with ``language``, ``text``, ``first_seen_at``
     and, once translated, ``translation[<pivot>]``; the articles index and the claims index
     (``<prefix>-clusters``); :class:`ClusterSettings`.
Out: the article's ``minhash`` (its text) and ``minhash_pivot`` (its pivot-language text)
     sketches, ``cluster_id`` on every article (a story seen once is its own cluster, named by
     its id), ``duplicate_of`` on a same-language copy of an earlier article (the first-seen
     one, the canonical); and an :class:`Assignment` saying what was found.

Look-up, one ``msearch`` for a batch of articles (:meth:`StoryClusters.assign_batch`; the
crawl's cluster stage gathers articles arriving close together): per article, a query on its
band terms among articles in its language, and one on its pivot band terms among articles in
other languages published within the window. Same-language candidates are confirmed with the
containment (shared shingles over the smaller text) estimated from the two signatures, so a
copy with a trimmed ending or added paragraphs still counts (``duplicate_threshold``).
Other-language candidates are confirmed on their exact pivot word pairs, with the lower
``cross_language_threshold``, since a machine translation shares few word pairs with an
original. Versions this process clustered lately (the last ``recent``, not searchable yet) and
the earlier articles of the same batch are candidates too, so an English story and its French
version in the same crawl are linked.

Copies that nobody can see yet (still in another process's bulk buffer, not refreshed, or
earlier in the same batch) are settled by claims: an article that found no earlier copy writes
its sketch (``article:<id>``) and creates one ``band:<term>`` document per band term with
``op_type=create``, which succeeds for exactly one claimant. A batch's claims go in one bulk,
in arrival order, so of two copies in one batch the earlier wins every band term both claim.
When two copies claim at once, both learn of each other from the bands they lost, and the one
holding the smallest band term they share stays canonical; the other becomes its duplicate and
rewrites its claim record to name the canonical. Both reach the same answer from the same
facts, so two crawler processes end with one canonical article. A batch decides its articles in
arrival order, each seeing the earlier ones as settled, so it ends as if they had come one
after another.

Claims matter only while an article is not searchable yet; after that, look-ups find it in the
articles index. :func:`prune_claims` (``veille clusters prune``, a daily scheduler task) deletes
claims older than a cutoff: band terms first, then the article records, so a band term left
standing always has its holder's record.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Set
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch

from veille.core import languages
from veille.core.article import Article, utcnow
from veille.core.es import delete_matching
from veille.core.minhash import (
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
    pivot: str = languages.PIVOT
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


@dataclass(eq=False)
class _Entry:
    """One article of a batch on its way: sketches, what the look-up found, its claims, and
    its ``result`` or the ``failure`` that stopped it."""

    article: Article
    own: Sketch | None
    pivot: frozenset[bytes]
    found: Assignment | None = None
    linked: _Entry | None = None  # the earlier article of the batch it joined as a version
    record: dict[str, Any] | None = None  # its claim record, as written (then as settled)
    lost: list[str] = field(default_factory=list)  # band terms another article holds
    result: Assignment | None = None
    failure: Exception | None = None

    @property
    def when(self) -> datetime:
        return self.article.published_at or self.article.first_seen_at

    def version(self, cluster_id: str) -> _Version:
        return _Version(self.article.id, self.article.language, cluster_id, self.pivot)


@dataclass
class _Rivals:
    """Who holds the band terms a batch lost, and claim records by article id (None: none)."""

    records: dict[str, dict[str, Any] | None]
    holders: dict[str, str] = field(default_factory=dict)


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

    def _entry(self, article: Article) -> _Entry:
        own, pivot_shingles = self.sketch(article)
        return _Entry(article, own, frozenset(pivot_shingles))

    def lookup(self, article: Article) -> Assignment:
        """Sketch the article and find where it belongs among indexed articles; writes nothing."""
        entry = self._entry(article)
        self._look_up([entry])
        if entry.failure is not None:
            raise entry.failure
        assert entry.found is not None
        return entry.found

    def assign(self, article: Article) -> Assignment:
        """Sketch the article, find its cluster, and set ``cluster_id``/``duplicate_of``."""
        outcome = self.assign_batch([article])[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def assign_batch(self, articles: list[Article]) -> list[Assignment | Exception]:
        """Assign articles that arrived together, as if one came after the other, in order.

        One ``msearch`` for every look-up, one ``bulk`` for every claim, at most one ``mget``
        of band holders and one of rival claimants, and one ``bulk`` of corrected claim records
        when some article yielded. An article sees the earlier ones of its batch as versions in
        other languages; a same-language copy of an earlier one loses the band claims that one
        made first in the same bulk, and yields to it. Returns one outcome per article, in
        order: its :class:`Assignment`, or the Elasticsearch error that stopped it (its
        sketches are set; ``cluster_id`` and ``duplicate_of`` are not).
        """
        entries = [self._entry(article) for article in articles]
        self._look_up(entries)
        claimants = [
            entry
            for entry in entries
            if entry.found and entry.found.kind != "duplicate" and entry.own is not None
        ]
        self._claim(claimants)
        self._settle(entries, claimants)
        outcomes: list[Assignment | Exception] = []
        versions = []
        for entry in entries:
            if entry.failure is not None:
                outcomes.append(entry.failure)
                continue
            assert entry.result is not None
            article, assignment = entry.article, entry.result
            article.cluster_id = assignment.cluster_id
            article.duplicate_of = assignment.duplicate_of
            if entry.pivot:
                versions.append((entry.version(assignment.cluster_id), entry.when))
            outcomes.append(assignment)
        with self._lock:
            self._recent.extend(versions)
        return outcomes

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

    def _searches(self, entry: _Entry) -> list[tuple[str, dict[str, Any]]]:
        """The entry's searches: ``copies`` when it has a sketch, ``versions`` when pivot bands."""
        article, searches = entry.article, []
        if entry.own is not None:
            source = ["cluster_id", "duplicate_of", "minhash"]
            searches.append(("copies", self._body(self._copies_query(article, entry.own), source)))
        pivot_bands = list(article.minhash_pivot.get("bands", ()))
        if pivot_bands:
            source = ["language", "cluster_id", "text", f"translation.{self.settings.pivot}.text"]
            query = self._versions_query(article, pivot_bands)
            searches.append(("versions", self._body(query, source)))
        return searches

    def _look_up(self, entries: list[_Entry]) -> None:
        """One ``msearch`` for every entry's searches, then each entry's ``found``, in order."""
        lines: list[dict[str, Any]] = []
        owners: list[tuple[_Entry, str]] = []
        for entry in entries:
            for kind, body in self._searches(entry):
                lines += [{"index": self.articles}, body]
                owners.append((entry, kind))
        hits: dict[_Entry, dict[str, list[dict[str, Any]]]] = {entry: {} for entry in entries}
        if lines:
            try:
                responses = self.client.msearch(searches=lines)["responses"]
            except (ApiError, TransportError) as exc:
                for entry, _ in owners:
                    entry.failure = exc
            else:
                for (entry, kind), response in zip(owners, responses, strict=True):
                    if "error" in response and response.get("status") != 404:
                        failure = RuntimeError(f"cluster look-up failed: {response['error']}")
                        entry.failure = entry.failure or failure
                    hits[entry][kind] = response.get("hits", {}).get("hits", [])
        for number, entry in enumerate(entries):
            if entry.failure is None:
                found = hits[entry]
                entry.found = self._decide(
                    entry, found.get("copies", []), found.get("versions", []), entries[:number]
                )

    def _decide(
        self,
        entry: _Entry,
        copies: list[dict[str, Any]],
        versions: list[dict[str, Any]],
        earlier: list[_Entry],
    ) -> Assignment:
        """A copy among the hits, else a version among hits, recent and earlier entries."""
        article = entry.article
        if entry.own is not None:
            copy = self._best_copy(entry.own, copies)
            if copy:
                hit, score = copy
                canonical = hit["_source"].get("duplicate_of") or hit["_id"]
                cluster = hit["_source"].get("cluster_id") or canonical
                return Assignment("duplicate", cluster, canonical, hit["_id"], score)
        if article.minhash_pivot.get("bands"):
            batch = [
                (other.version(other.found.cluster_id), other)
                for other in earlier
                if other.found and other.pivot
            ]
            with self._lock:
                recent = list(self._recent)
            near = [(version, other.when) for version, other in batch]
            candidates = [
                *self._indexed_versions(versions),
                *self._joinable(article, [*recent, *near]),
            ]
            best = self._best_version(entry.pivot, candidates)
            if best:
                version, score = best
                entry.linked = next((other for v, other in batch if v is version), None)
                return Assignment("cross_language", version.cluster_id, None, version.id, score)
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

    def _joinable(
        self, article: Article, versions: list[tuple[_Version, datetime]]
    ) -> list[_Version]:
        """Of versions (each with when it was published, or seen), those of other articles, in
        other languages, within the window: versions this process clustered lately (they may
        not be searchable yet, as the index stage sends articles in bulk, and two versions of a
        story often arrive in the same crawl) and the earlier ones of the batch."""
        when = article.published_at or article.first_seen_at
        own, language, window = article.id, article.language, self.settings.window
        return [
            version
            for version, seen in versions
            if version.language != language and version.id != own and abs(seen - when) <= window
        ]

    def _best_version(
        self, mine: Set[bytes], candidates: list[_Version]
    ) -> tuple[_Version, float] | None:
        """The other-language version whose pivot text shares most of this one's word pairs.

        Machine translations share few word pairs with an original, where the MinHash estimate
        is noisy, so candidates are confirmed on their exact pivot shingles.
        """
        best: tuple[_Version, float] | None = None
        for version in candidates:
            score = containment(mine, version.shingles)
            if score >= self.settings.cross_language_threshold and (not best or score > best[1]):
                best = (version, score)
        return best

    # --- claims: copies that are not searchable yet ---------------------------------------

    def _claim(self, claimants: list[_Entry]) -> None:
        """One bulk: each claimant's record and band claims, in order, so an earlier claimant of
        the batch wins a band term both claim. Sets each claimant's ``record`` and ``lost``."""
        if not claimants:
            return
        now = utcnow().isoformat()
        operations: list[dict[str, Any]] = []
        for entry in claimants:
            assert entry.own is not None and entry.found is not None
            article = entry.article
            entry.record = {
                "kind": "article",
                "article_id": article.id,
                "canonical_id": article.id,
                "cluster_id": entry.found.cluster_id,
                "language": article.language,
                "claimed_at": now,
                "minhash": entry.own.to_document(),
            }
            operations += [
                {"index": {"_index": self.claims, "_id": f"article:{article.id}"}},
                entry.record,
            ]
            for term in entry.own.bands:
                operations += [
                    {"create": {"_index": self.claims, "_id": f"band:{term}"}},
                    {"kind": "band", "article_id": article.id, "claimed_at": now},
                ]
        try:
            # require_alias: never let a missing claims index be created without its mapping.
            items = iter(self.client.bulk(operations=operations, require_alias=True)["items"])
        except (ApiError, TransportError) as exc:
            for entry in claimants:
                entry.failure, entry.record = exc, None
            return
        for entry in claimants:
            assert entry.own is not None
            written = next(items)["index"]
            if written["status"] >= 300:
                entry.failure = RuntimeError(f"cluster claim refused: {written.get('error')}")
                entry.record = None
            for term in entry.own.bands:
                claim = next(items)["create"]
                if claim["status"] == 409:
                    entry.lost.append(term)
                elif claim["status"] >= 300 and entry.failure is None:
                    entry.failure = RuntimeError(f"band claim refused: {claim.get('error')}")

    def _settle(self, entries: list[_Entry], claimants: list[_Entry]) -> None:
        """Each entry's ``result``, in order: its look-up, its link to an earlier entry resolved,
        and for a claimant that lost band terms, the rival it yields to, if any."""
        rivals = self._rivals(claimants)
        corrected: list[_Entry] = []
        for entry in entries:
            if entry.failure is not None or entry.found is None:
                continue
            found = entry.found
            if entry.linked is not None:
                linked = entry.linked.result
                cluster = linked.cluster_id if linked else entry.linked.article.id
                found = replace(found, cluster_id=cluster)
            record = entry.record
            if record is not None:
                assert entry.own is not None
                holders = {t: rivals.holders[t] for t in entry.lost if t in rivals.holders}
                rival = self._rival(entry.article, entry.own, holders, rivals.records)
                before = (record["canonical_id"], record["cluster_id"])
                if rival is not None:
                    canonical = rival.get("canonical_id") or rival["article_id"]
                    cluster = rival.get("cluster_id") or canonical
                    theirs = Sketch.from_document(rival["minhash"]) or entry.own
                    score = similarity(entry.own, theirs).containment
                    found = Assignment(
                        "duplicate", cluster, canonical, rival["article_id"], score, True
                    )
                record.update(canonical_id=found.duplicate_of or entry.article.id)
                record.update(cluster_id=found.cluster_id)
                if (record["canonical_id"], record["cluster_id"]) != before:
                    corrected.append(entry)
            entry.result = found
        self._correct(corrected)

    def _rivals(self, claimants: list[_Entry]) -> _Rivals:
        """Who holds the band terms the claimants lost, and those holders' claim records: the
        batch's own from memory (as settled so far), the others from one ``mget``."""
        rivals = _Rivals(records={e.article.id: e.record for e in claimants if e.failure is None})
        losers = [e for e in claimants if e.lost and e.failure is None]
        if not losers:
            return rivals
        try:
            rivals.holders = self._holders(sorted({t for e in losers for t in e.lost}))
            outside = sorted(
                {holder for holder in rivals.holders.values() if holder not in rivals.records}
            )
            rivals.records.update(self._records(outside))
        except (ApiError, TransportError) as exc:
            for entry in losers:
                entry.failure = exc
        return rivals

    def _holders(self, terms: list[str]) -> dict[str, str]:
        """Band term → id of the article holding its claim."""
        docs = self.client.mget(index=self.claims, ids=[f"band:{t}" for t in terms])["docs"]
        return {
            doc["_id"].removeprefix("band:"): doc["_source"]["article_id"]
            for doc in docs
            if doc.get("found")
        }

    def _records(self, ids: list[str]) -> dict[str, dict[str, Any] | None]:
        """Claim records of articles, by id (None where there is none)."""
        if not ids:
            return {}
        docs = self.client.mget(index=self.claims, ids=[f"article:{i}" for i in ids])["docs"]
        return {
            doc["_id"].removeprefix("article:"): doc["_source"] if doc.get("found") else None
            for doc in docs
        }

    def _rival(
        self,
        article: Article,
        own: Sketch,
        holders: dict[str, str],
        records: dict[str, dict[str, Any] | None],
    ) -> dict[str, Any] | None:
        """The similar claimant this article must yield to, if any.

        For each similar claimant, look at the band terms both sketches share and that one of
        the two holds: the holder of the smallest such term is canonical. The claimant sees the
        same holders, so it decides the same way.
        """
        mine = set(own.bands)
        yield_to: list[tuple[str, dict[str, Any]]] = []
        for other in sorted({h for h in holders.values() if h != article.id}):
            rival = records.get(other)
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

    def _correct(self, corrected: list[_Entry]) -> None:
        """One bulk rewriting the claim records whose canonical or cluster changed."""
        if not corrected:
            return
        operations: list[dict[str, Any]] = []
        for entry in corrected:
            operations += [
                {"index": {"_index": self.claims, "_id": f"article:{entry.article.id}"}},
                entry.record,
            ]
        try:
            items = self.client.bulk(operations=operations, require_alias=True)["items"]
        except (ApiError, TransportError) as exc:
            for entry in corrected:
                entry.failure = exc
            return
        for entry, item in zip(corrected, items, strict=True):
            if item["index"]["status"] >= 300:
                entry.failure = RuntimeError(f"cluster claim refused: {item['index'].get('error')}")


# --- pruning: claims nobody needs any more ------------------------------------------------


def prune_claims(
    client: Elasticsearch, claims_index: str, older_than: timedelta, page_size: int = 1000
) -> dict[str, int]:
    """Delete the claims made more than ``older_than`` ago; returns how many, by ``kind``.

    Band terms go first, then the article records: a record's ``claimed_at`` is never older
    than the band terms it holds, so every band term still standing keeps its holder's record,
    and a record is only ever read as the holder of a band term. Each kind is deleted a page at
    a time by :func:`veille.core.es.delete_matching`, which leaves a claim made again meanwhile (two
    pruners at once) and counts only what it deleted.
    """
    cutoff = (utcnow() - older_than).isoformat()
    deleted = {}
    for kind in ("band", "article"):
        old = [{"term": {"kind": kind}}, {"range": {"claimed_at": {"lt": cutoff}}}]
        query = {"bool": {"filter": old}}
        deleted[kind] = delete_matching(client, claims_index, query, page_size)
    return deleted
