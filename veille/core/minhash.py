"""MinHash sketches of article texts, with their LSH bands as Elasticsearch keyword terms.

In:  a text (an article's body, or its pivot-language translation) and a :class:`Scheme`
     (shingle size in words, bands × rows = the number of MinHash permutations).
Out: a :class:`Sketch` — the MinHash signature, the number of distinct shingles, and
     one term per LSH band (``"<band>-<hash>"``). Two texts whose Jaccard similarity is ``s``
     share at least one band term with probability ``1 - (1 - s**rows)**bands``, so looking up
     near duplicates is one ``terms`` query on the stored band terms; :func:`similarity`
     then estimates Jaccard and containment from the two signatures to confirm a candidate
     (:func:`containment` computes it exactly from two shingle sets, for low similarities
     where the estimate is too noisy).

The signature is the one datasketch's ``MinHash`` computes (SHA-1 of each shingle, first four
bytes little-endian, then ``(a·h + b) mod (2^61 − 1)`` keeping the low 32 bits, the parameters
drawn from ``numpy.random.RandomState(seed)`` in its order): sketches stored by earlier
releases stay comparable. It is done here on whole shingle sets at once, without importing
datasketch, whose import alone costs a crawl about a second (it pulls in scipy).

Sketches travel in documents as :meth:`Sketch.to_document` (``bands``, ``signature`` as
base64 of little-endian uint32, ``shingles``) and come back with :meth:`Sketch.from_document`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

_WORDS = re.compile(r"\w+")


@dataclass(frozen=True)
class Scheme:
    """How texts are sketched. Sketches made with different schemes never share a band term.

    ``shingle``: words per shingle. ``min_word_length``: shorter words are left out before
    shingling (0 keeps every word; words with a digit are always kept). ``bands`` × ``rows``:
    the LSH banding; more rows make a band stricter, more bands make a match likelier.
    """

    shingle: int = 4
    bands: int = 42
    rows: int = 3
    min_word_length: int = 0
    seed: int = 1

    def __post_init__(self) -> None:
        for name in ("shingle", "bands", "rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"MinHash {name} must be 1 or more, not {getattr(self, name)}")

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows

    @property
    def candidate_threshold(self) -> float:
        """The similarity at which a pair shares a band term about half the time."""
        return (1 / self.bands) ** (1 / self.rows)

    def match_probability(self, similarity: float) -> float:
        """Probability that two texts with this Jaccard similarity share a band term."""
        return 1 - (1 - similarity**self.rows) ** self.bands


_MERSENNE_PRIME = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)


@lru_cache(maxsize=8)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``a`` and ``b`` of each permutation, drawn as datasketch draws them."""
    generator = np.random.RandomState(seed)
    pairs = [
        (
            generator.randint(1, _MERSENNE_PRIME, dtype=np.uint64),
            generator.randint(0, _MERSENNE_PRIME, dtype=np.uint64),
        )
        for _ in range(num_perm)
    ]
    a, b = np.array(pairs, dtype=np.uint64).T
    return a.copy(), b.copy()


def signature_of(found: set[bytes] | list[bytes], num_perm: int, seed: int) -> np.ndarray:
    """The MinHash signature (uint64 values below 2^32) of a non-empty set of shingles."""
    digests = b"".join([hashlib.sha1(shingle).digest() for shingle in found])
    # Each SHA-1 digest is five 32-bit words; the hash of a shingle is the first, little-endian.
    hashes = np.frombuffer(digests, dtype="<u4")[::5].astype(np.uint64)[:, np.newaxis]
    a, b = _permutations(num_perm, seed)
    # uint64 products wrap around exactly as datasketch's do.
    permuted = np.bitwise_and((hashes * a + b) % _MERSENNE_PRIME, _MAX_HASH)
    return permuted.min(axis=0)


def words(text: str, min_length: int = 0) -> list[str]:
    """The text's words, case-folded, without those shorter than ``min_length`` (digits kept)."""
    found = _WORDS.findall(text.casefold())
    if not min_length:
        return found
    return [w for w in found if len(w) >= min_length or any(c.isdigit() for c in w)]


def shingles(text: str, scheme: Scheme) -> set[bytes]:
    """The distinct runs of ``scheme.shingle`` consecutive words (one run for shorter texts)."""
    found = words(text, scheme.min_word_length)
    size = scheme.shingle
    if len(found) <= size:
        return {" ".join(found).encode("utf-8")} if found else set()
    return {" ".join(found[i : i + size]).encode("utf-8") for i in range(len(found) - size + 1)}


@dataclass(frozen=True, eq=False)
class Sketch:
    """A text's MinHash signature, its shingle count and its LSH band terms."""

    signature: np.ndarray
    shingles: int
    bands: tuple[str, ...]

    def to_document(self) -> dict[str, Any]:
        packed = self.signature.astype("<u4").tobytes()
        return {
            "bands": list(self.bands),
            "signature": base64.b64encode(packed).decode("ascii"),
            "shingles": self.shingles,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any] | None) -> Sketch | None:
        """The sketch stored in a document, or None when the document has none."""
        if not doc or not doc.get("signature"):
            return None
        raw = base64.b64decode(doc["signature"])
        signature = np.frombuffer(raw, dtype="<u4").astype(np.uint64)
        return cls(signature, int(doc.get("shingles", 0)), tuple(doc.get("bands", ())))


def band_terms(signature: np.ndarray, scheme: Scheme) -> tuple[str, ...]:
    """One keyword term per band: the band number and a hash of its rows and the scheme."""
    salt = f"{scheme.shingle}/{scheme.rows}/{scheme.min_word_length}/{scheme.seed}".encode()
    values = signature.astype("<u4")
    terms = []
    for band in range(scheme.bands):
        rows = values[band * scheme.rows : (band + 1) * scheme.rows].tobytes()
        digest = hashlib.blake2b(salt + rows, digest_size=8).hexdigest()
        terms.append(f"{band:02d}-{digest}")
    return tuple(terms)


def sketch(text: str, scheme: Scheme) -> Sketch | None:
    """The text's sketch, or None when it has no words to compare."""
    return sketch_shingles(shingles(text, scheme), scheme)


def sketch_shingles(found: set[bytes], scheme: Scheme) -> Sketch | None:
    """The sketch of a shingle set made with :func:`shingles` and the same scheme."""
    if not found:
        return None
    signature = signature_of(found, scheme.num_perm, scheme.seed)
    return Sketch(signature, len(found), band_terms(signature, scheme))


def containment(a: set[bytes], b: set[bytes]) -> float:
    """Exact share of the smaller shingle set found in the other (0 when either is empty)."""
    if not a or not b:
        return 0.0
    return round(len(a & b) / min(len(a), len(b)), 4)


@dataclass(frozen=True)
class Similarity:
    """Estimated Jaccard similarity and containment (shared shingles over the smaller text)."""

    jaccard: float
    containment: float


def similarity(a: Sketch, b: Sketch) -> Similarity:
    """Estimate both measures from two signatures of the same scheme (zero if schemes differ)."""
    if a.signature.shape != b.signature.shape or not a.shingles or not b.shingles:
        return Similarity(0.0, 0.0)
    jaccard = float(np.mean(a.signature == b.signature))
    shared = jaccard * (a.shingles + b.shingles) / (1 + jaccard)
    containment = min(1.0, shared / min(a.shingles, b.shingles))
    return Similarity(round(jaccard, 4), round(containment, 4))
