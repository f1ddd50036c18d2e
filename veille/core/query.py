"""The query language of topics, alert rules and ``veille search``.

In:  a query such as ``("police station" OR commissariat) NEAR/8 (Chinese OR China) NOT tourism``.
Out: :func:`parse` gives the tree (or :class:`QuerySyntaxError`, saying where and what is
     wrong); :class:`Query`, the tree compiled for one language, tells whether an article's title
     and text match in Python, and where; :func:`to_elasticsearch` writes the same query for
     Elasticsearch (alerts, ``veille search``, Kibana).

| write | matches |
|---|---|
| ``station`` | the word, on its stem with accents folded: "stations", "Station" |
| ``"police station"`` | the words in this order, side by side (a stop word keeps its place) |
| ``a b`` or ``a AND b`` | both |
| ``a OR b`` or ``a | b`` | either |
| ``NOT a`` or ``-a`` | articles without a |
| ``( … )`` | grouping |
| ``a NEAR/n b`` | a and b at most n words apart, in either order, in one field (title or text) |
| ``@name`` | in a topic file, the group ``name`` of the rule's language: ``@china`` |

Each side of NEAR/n is a word, a phrase or an ( … OR … ) group of them.
Operators are in capitals (lower-case "or" is French for gold); NEAR/n binds tightest, then NOT,
AND, OR. Words match on the stems of the article's language (veille/core/textmatch.py).

Elasticsearch gets ``intervals`` queries: a word or phrase is a ``match`` rule (analysed with each
field's own analyzer, ordered, no gaps); NEAR/n is an ``all_of`` with ``max_gaps: n`` and
``ordered: false`` over ``match`` rules or an ``any_of`` of them. Python evaluates the same
intervals on the same analysis chain (veille/core/languages.py), and
tests/test_query_agreement.py holds the two decisions equal on every fixture article.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from veille.core.textmatch import Pattern, StemIndex, near, tokens

OPERATORS = ("AND", "OR", "NOT")
_NEAR = re.compile(r"NEAR/(\d+)")
_LOOKS_LIKE_NEAR = re.compile(r"(?i)near(/.*)?")
_SPECIAL = '()"|'


class QuerySyntaxError(ValueError):
    """A query that cannot be used; says at which character (1-based) and how to fix it."""

    def __init__(self, reason: str, position: int) -> None:
        self.reason = reason
        self.position = position
        super().__init__(f"at character {position}: {reason}")


# --- The tree ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """A word or a quoted phrase; ``position`` is where it starts in the query (1-based)."""

    text: str
    phrase: bool
    position: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return f'"{self.text}"' if self.phrase else self.text


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class AllOf:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Group:
    """A named part defined once in a topic file and used as ``@name``."""

    name: str
    child: Node


@dataclass(frozen=True)
class Near:
    """Two sides, each one or more terms (any of them), at most ``distance`` words apart;
    ``labels`` name a side that was written as a group."""

    left: tuple[Term, ...]
    right: tuple[Term, ...]
    distance: int
    position: int = field(default=0, compare=False)
    labels: tuple[str | None, str | None] = (None, None)

    def __str__(self) -> str:
        left = self.labels[0] or _side(self.left)
        right = self.labels[1] or _side(self.right)
        return f"{left} NEAR/{self.distance} {right}"


Node = Term | Not | AllOf | AnyOf | Near | Group


def _side(terms: tuple[Term, ...]) -> str:
    return str(terms[0]) if len(terms) == 1 else "(" + " OR ".join(map(str, terms)) + ")"


def terms_of(node: Node, positive: bool = True) -> list[Term]:
    """Every term of the tree, in order (with ``positive``, only those not under a NOT)."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Near):
        return [*node.left, *node.right]
    if isinstance(node, Not):
        return [] if positive else terms_of(node.child, positive)
    if isinstance(node, Group):
        return terms_of(node.child, positive)
    return [term for child in node.children for term in terms_of(child, positive)]


# --- Parsing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # word, phrase, group, (, ), AND, OR, NOT, NEAR
    text: str
    position: int
    distance: int = 0


def _lex(text: str, groups: bool) -> list[_Token]:
    tokens: list[_Token] = []
    at = 0
    while at < len(text):
        char = text[at]
        if char.isspace():
            at += 1
        elif char == '"':
            close = text.find('"', at + 1)
            if close < 0:
                raise QuerySyntaxError(
                    f'unterminated quote at {text[at:]!r}; close the phrase with "', at + 1
                )
            words = " ".join(text[at + 1 : close].split())
            if not words:
                raise QuerySyntaxError('empty phrase ""; write words between the quotes', at + 1)
            tokens.append(_Token("phrase", words, at + 1))
            at = close + 1
        elif char in "()":
            tokens.append(_Token(char, char, at + 1))
            at += 1
        elif char == "|":
            tokens.append(_Token("OR", char, at + 1))
            at += 1
        elif char == "-" and at + 1 < len(text) and not text[at + 1].isspace():
            tokens.append(_Token("NOT", char, at + 1))
            at += 1
        else:
            end = at
            while end < len(text) and not text[end].isspace() and text[end] not in _SPECIAL:
                end += 1
            word = text[at:end]
            if groups and word.startswith("@"):
                tokens.append(_Token("group", word[1:], at + 1))
            else:
                tokens.append(_word(word, at + 1))
            at = end
    return tokens


def _word(word: str, position: int) -> _Token:
    if word in OPERATORS:
        return _Token(word, word, position)
    near_match = _NEAR.fullmatch(word)
    if near_match:
        return _Token("NEAR", word, position, int(near_match.group(1)))
    if word == "NEAR" or (_LOOKS_LIKE_NEAR.fullmatch(word) and "/" in word):
        raise QuerySyntaxError(
            f"{word!r}: write NEAR/n in capitals with the number of words, e.g. NEAR/5", position
        )
    return _Token("word", word, position)


class _Parser:
    def __init__(self, tokens: list[_Token], length: int, groups: Mapping[str, Node]) -> None:
        self.tokens = tokens
        self.at = 0
        self.end = length + 1
        self.groups = groups

    def peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def here(self) -> int:
        token = self.peek()
        return token.position if token else self.end

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def parse(self) -> Node:
        node = self.any_of()
        token = self.peek()
        if token is not None:
            raise QuerySyntaxError(
                f"unexpected {token.text!r}; check the parentheses", token.position
            )
        return node

    def any_of(self) -> Node:
        children = [self.all_of()]
        while (token := self.peek()) is not None and token.kind == "OR":
            self.take()
            children.append(self.all_of())
        return children[0] if len(children) == 1 else AnyOf(tuple(children))

    def all_of(self) -> Node:
        children = [self.unary()]
        while (token := self.peek()) is not None and token.kind not in ("OR", ")"):
            if token.kind == "AND":
                self.take()
            children.append(self.unary())
        return children[0] if len(children) == 1 else AllOf(tuple(children))

    def unary(self) -> Node:
        token = self.peek()
        if token is not None and token.kind == "NOT":
            self.take()
            return Not(self.unary())
        return self.near()

    def near(self) -> Node:
        left = self.primary()
        token = self.peek()
        if token is None or token.kind != "NEAR":
            return left
        self.take()
        after = self.peek()
        if after is not None and after.kind == "NOT":
            raise QuerySyntaxError(
                "NOT inside NEAR: each side of NEAR is a word, a phrase or an (… OR …) group; "
                "put the NOT outside, e.g. (a NEAR/5 b) NOT c",
                after.position,
            )
        right = self.primary()
        following = self.peek()
        if following is not None and following.kind == "NEAR":
            raise QuerySyntaxError(
                "one NEAR per pair: write (a NEAR/5 b) AND (b NEAR/5 c)", following.position
            )
        return Near(
            _near_side(left, token.position),
            _near_side(right, token.position),
            token.distance,
            token.position,
            (_label(left), _label(right)),
        )

    def primary(self) -> Node:
        token = self.peek()
        if token is None:
            raise QuerySyntaxError("the query ends where a word or phrase was expected", self.end)
        if token.kind in ("AND", "OR", "NEAR"):
            raise QuerySyntaxError(
                f"{token.text} needs a word, phrase or group on each side", token.position
            )
        if token.kind == ")":
            raise QuerySyntaxError("')' without a matching '('", token.position)
        if token.kind == "NOT":
            raise QuerySyntaxError("NOT needs a word, phrase or group after it", token.position)
        self.take()
        if token.kind == "(":
            node = self.any_of()
            if (closing := self.peek()) is None or closing.kind != ")":
                raise QuerySyntaxError("'(' is never closed; add ')'", token.position)
            self.take()
            return node
        if token.kind == "group":
            if token.text not in self.groups:
                known = ", ".join("@" + name for name in self.groups) or "none"
                raise QuerySyntaxError(
                    f"no group @{token.text} (groups defined so far: {known})", token.position
                )
            return Group(token.text, self.groups[token.text])
        return Term(token.text, token.kind == "phrase", token.position)


def _near_side(node: Node, position: int) -> tuple[Term, ...]:
    """The terms of one side of NEAR: a term, or an OR of terms (nested ORs flattened)."""
    if isinstance(node, Term):
        return (node,)
    if isinstance(node, Group):
        return _near_side(node.child, position)
    if isinstance(node, AnyOf):
        return tuple(term for child in node.children for term in _near_side(child, position))
    what = {Not: "NOT", AllOf: "AND", Near: "NEAR"}[type(node)]
    raise QuerySyntaxError(
        f"{what} inside NEAR: each side of NEAR is a word, a phrase or an (… OR …) group of "
        "them; write (a NEAR/5 c) AND (b NEAR/5 c) instead of (a AND b) NEAR/5 c",
        position,
    )


def _label(node: Node) -> str | None:
    return "@" + node.name if isinstance(node, Group) else None


def _requires_a_term(node: Node) -> bool:
    """Whether every match must contain some word: a query of only NOTs matches everything."""
    if isinstance(node, Term | Near):
        return True
    if isinstance(node, Not):
        return False
    if isinstance(node, Group):
        return _requires_a_term(node.child)
    if isinstance(node, AllOf):
        return any(_requires_a_term(child) for child in node.children)
    return all(_requires_a_term(child) for child in node.children)


def parse(text: str, groups: Mapping[str, Node] | None = None) -> Node:
    """The tree of a query; :class:`QuerySyntaxError` says where and what is wrong.

    With ``groups`` (a topic's, by name), ``@name`` stands for that group; without, a word
    starting with ``@`` is a word like any other.
    """
    tokens = _lex(text, groups is not None)
    if not tokens:
        raise QuerySyntaxError("the query is empty; write at least one word or phrase", 1)
    node = _Parser(tokens, len(text), groups or {}).parse()
    if not _requires_a_term(node):
        raise QuerySyntaxError(
            "the query only excludes; add a word or phrase that must match (NOT alone "
            "would match every article)",
            1,
        )
    return node


# --- Python evaluation -------------------------------------------------------------------------

Document = Mapping[str, StemIndex]  # field name ("title", "text") → its stem index


@dataclass(frozen=True)
class Hit:
    """Where a query matched: a field and the first and last positions of the words;
    ``near``: the window of a NEAR (both sides and the words between)."""

    field: str
    first: int
    last: int
    near: bool = False


@dataclass(frozen=True)
class Evidence:
    """One part of a query and what the article holds of it (for explanations of misses)."""

    part: str
    found: bool
    detail: str = ""


class _Compiled:
    def test(self, doc: Document) -> bool:
        raise NotImplementedError

    def hits(self, doc: Document) -> list[Hit]:
        """Where the positive parts matched (only meaningful when :meth:`test` is true)."""
        raise NotImplementedError

    def evidence(self, doc: Document) -> list[Evidence]:
        raise NotImplementedError

    def closeness(self, doc: Document) -> float:
        """1 when it matches, else how much of it the article holds (0 to 1)."""
        return float(self.test(doc))


class _Words(_Compiled):
    """Any of some words and phrases, analysed once: one-word alternatives are looked up as a set
    of stems, phrases position by position."""

    def __init__(self, terms: Sequence[Term], language: str) -> None:
        self.terms = tuple(terms)
        self.patterns = [Pattern.of(term.text, language) for term in self.terms]
        self.stems = frozenset(p.terms[0] for p in self.patterns if len(p.terms) == 1)
        phrases = {p.key: p for p in self.patterns if len(p.terms) > 1}
        self.phrases = list(phrases.values())

    def occurrences(self, index: StemIndex) -> list[tuple[int, int]]:
        """Every ``(first, last)`` place of any alternative in one field, in order."""
        found = index.memo.get(self)
        if found is None:
            positions = index.positions
            found = [(at, at) for stem in self.stems for at in positions.get(stem, ())]
            for phrase in self.phrases:
                found += index.find(phrase)
            found.sort()
            index.memo[self] = found
        return found

    def test(self, doc: Document) -> bool:
        for index in doc.values():
            positions = index.positions
            if not positions.keys().isdisjoint(self.stems):
                return True
            for phrase in self.phrases:
                if phrase.terms[0] in positions and index.find(phrase):
                    return True
        return False

    def hits(self, doc: Document) -> list[Hit]:
        return [
            Hit(field, first, last)
            for field, index in doc.items()
            for first, last in self.occurrences(index)
        ]

    def alternatives(self, doc: Document) -> list[Evidence]:
        """One line per alternative (alternatives with the same stems once): where it is."""
        found, seen = [], set()
        for term, pattern in zip(self.terms, self.patterns, strict=True):
            if pattern.key in seen:
                continue
            seen.add(pattern.key)
            counts = {field: len(index.find(pattern)) for field, index in doc.items()}
            where = ", ".join(f"{field} ×{n}" for field, n in counts.items() if n)
            found.append(Evidence(str(term), bool(where), where))
        return found

    def evidence(self, doc: Document) -> list[Evidence]:
        items = self.alternatives(doc)
        if any(item.found for item in items):
            return [item for item in items if item.found]
        if len(items) > 2:
            part = f"{items[0].part} OR {items[1].part} OR … ({len(items)} alternatives)"
            return [Evidence(part, False, "none found")]
        return items


class _Near(_Compiled):
    def __init__(self, node: Near, left: _Words, right: _Words) -> None:
        self.node = node
        self.left = left
        self.right = right

    def windows(self, index: StemIndex, limit: int | None = None) -> list[tuple[int, int]]:
        left = self.left.occurrences(index)
        if not left:
            return []
        return near(left, self.right.occurrences(index), self.node.distance, limit)

    def test(self, doc: Document) -> bool:
        if not (self.left.test(doc) and self.right.test(doc)):  # the cheap part first
            return False
        for index in doc.values():
            found = index.memo.get(self)
            if found is None:
                found = index.memo[self] = bool(self.windows(index, limit=1))
            if found:
                return True
        return False

    def hits(self, doc: Document) -> list[Hit]:
        return [
            Hit(field, first, last, near=True)
            for field, index in doc.items()
            for first, last in sorted(set(self.windows(index)))
        ]

    def closeness(self, doc: Document) -> float:
        if self.test(doc):
            return 1.0
        left, right = self.left.test(doc), self.right.test(doc)
        return 0.5 if left and right else 0.25 if left or right else 0.0

    def evidence(self, doc: Document) -> list[Evidence]:
        if self.test(doc):
            where = ", ".join(field for field, index in doc.items() if self.windows(index, 1))
            return [Evidence(str(self.node), True, where)]
        closest: int | None = None
        sides = [False, False]
        for index in doc.values():
            left, right = self.left.occurrences(index), self.right.occurrences(index)
            sides = [sides[0] or bool(left), sides[1] or bool(right)]
            for first, last in left:
                for other_first, other_last in right:
                    apart = max(first, other_first) - min(last, other_last) - 1
                    closest = apart if closest is None else min(closest, apart)
        if closest is not None:
            detail = f"both sides found, {closest} words apart at the closest"
        elif any(sides):
            label = self.node.labels[1] if sides[0] else self.node.labels[0]
            missing = self.node.right if sides[0] else self.node.left
            detail = f"{label or _side(missing)} not found"
        else:
            detail = "neither side found"
        return [Evidence(str(self.node), False, detail)]


class _Not(_Compiled):
    def __init__(self, child: _Compiled) -> None:
        self.child = child

    def test(self, doc: Document) -> bool:
        return not self.child.test(doc)

    def hits(self, doc: Document) -> list[Hit]:
        return []

    def evidence(self, doc: Document) -> list[Evidence]:
        if self.test(doc):
            return []
        return [
            Evidence("NOT " + item.part, False, "excluded: " + item.detail)
            for item in self.child.evidence(doc)
            if item.found
        ]


class _AllOf(_Compiled):
    def __init__(self, children: list[_Compiled]) -> None:
        self.children = children
        # Looking words up is cheaper than measuring distances: tested, an AND tries its words
        # first and is often settled before any NEAR (the order changes no answer).
        self.cheap_first = sorted(children, key=lambda child: isinstance(child, _Near | _AllOf))

    def test(self, doc: Document) -> bool:
        return all(child.test(doc) for child in self.cheap_first)

    def hits(self, doc: Document) -> list[Hit]:
        return [hit for child in self.children for hit in child.hits(doc)]

    def evidence(self, doc: Document) -> list[Evidence]:
        return [item for child in self.children for item in child.evidence(doc)]

    def closeness(self, doc: Document) -> float:
        return sum(child.closeness(doc) for child in self.children) / len(self.children)


class _AnyOf(_AllOf):
    def test(self, doc: Document) -> bool:
        return any(child.test(doc) for child in self.cheap_first)

    def hits(self, doc: Document) -> list[Hit]:
        return [hit for child in self.children if child.test(doc) for hit in child.hits(doc)]

    def evidence(self, doc: Document) -> list[Evidence]:
        items = super().evidence(doc)
        if any(item.found for item in items):
            return [item for item in items if item.found]
        if len(items) > 2:
            part = f"{items[0].part} OR {items[1].part} OR … ({len(items)} alternatives)"
            return [Evidence(part, False, "none found")]
        return items

    def closeness(self, doc: Document) -> float:
        return max(child.closeness(doc) for child in self.children)


class _Group(_Compiled):
    """A group evaluates as its query; its evidence is one line: which of its words were found."""

    def __init__(self, name: str, child: _Compiled) -> None:
        self.name = name
        self.child = child

    def test(self, doc: Document) -> bool:
        return self.child.test(doc)

    def hits(self, doc: Document) -> list[Hit]:
        return self.child.hits(doc)

    def closeness(self, doc: Document) -> float:
        return self.child.closeness(doc)

    def evidence(self, doc: Document) -> list[Evidence]:
        found = self.test(doc)
        if isinstance(self.child, _Words):
            parts = [item for item in self.child.alternatives(doc) if item.found]
        else:
            parts = [item for item in self.child.evidence(doc) if item.found]
        detail = "; ".join(f"{item.part} ({item.detail})" for item in parts[:3])
        if len(parts) > 3:
            detail += f"; {len(parts) - 3} more"
        return [Evidence("@" + self.name, found, detail or "none of its words")]


def _only_terms(node: Node) -> list[Term] | None:
    """The terms of a word, a phrase or an OR of them (groups included), else None."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Group):
        return _only_terms(node.child)
    if isinstance(node, AnyOf):
        parts = [_only_terms(child) for child in node.children]
        if all(part is not None for part in parts):
            return [term for part in parts for term in part or ()]
    return None


def _words(terms: Sequence[Term], language: str, shared: dict[tuple, Any]) -> _Words:
    key = ("words", *(str(term) for term in terms))
    if key not in shared:
        shared[key] = _Words(terms, language)
    return shared[key]


def _compile(node: Node, language: str, shared: dict[tuple, Any]) -> _Compiled:
    """The evaluator of ``node``; parts written alike (the same words, the same NEAR) are one
    object in ``shared``, so what one rule found in an article another does not look for."""
    if isinstance(node, Group):
        return _Group(node.name, _compile(node.child, language, shared))
    terms = _only_terms(node)
    if terms is not None:
        return _words(terms, language, shared)
    if isinstance(node, Near):
        left = _words(node.left, language, shared)
        right = _words(node.right, language, shared)
        key = ("near", id(left), id(right), node.distance)
        if key not in shared:
            shared[key] = _Near(node, left, right)
        return shared[key]
    if isinstance(node, Not):
        return _Not(_compile(node.child, language, shared))
    children = [_compile(child, language, shared) for child in node.children]
    return _AllOf(children) if isinstance(node, AllOf) else _AnyOf(children)


class Query:
    """A query compiled for one language: its words analysed once, evaluated on stem indexes."""

    def __init__(
        self, query: str | Node, language: str, shared: dict[tuple, Any] | None = None
    ) -> None:
        """``shared``: one dict for queries compiled together (a topic's rules), so that the
        parts they have in common are evaluated once per article."""
        self.node = parse(query) if isinstance(query, str) else query
        self.language = language
        self.root = _compile(self.node, language, {} if shared is None else shared)

    def matches(self, doc: Document) -> bool:
        return self.root.test(doc)

    def hits(self, doc: Document) -> list[Hit]:
        """Where it matched, each place once: the NEAR windows first (the passages that made
        the match), then the words, each in field order then reading order."""
        order = {field: rank for rank, field in enumerate(doc)}
        unique = set(self.root.hits(doc))
        return sorted(unique, key=lambda h: (not h.near, order[h.field], h.first, h.last))

    def evidence(self, doc: Document) -> list[Evidence]:
        """For each part of the query: found or not, and where or why."""
        return self.root.evidence(doc)

    def closeness(self, doc: Document) -> float:
        """1 when it matches, else the share of its parts found (a NEAR whose sides are both
        there but too far apart counts half); ranks the rules an article came closest to."""
        return self.root.closeness(doc)


def problems(node: Node, language: str) -> list[tuple[int, str]]:
    """Parts that do not do what they say in ``language``, as ``(position, message)``: a word or
    phrase made only of stop words (the index does not keep them) or of stop words and one word
    (it is that word alone), the same word on both sides of NEAR (one occurrence would satisfy
    both)."""
    found = []
    for term in terms_of(node, positive=False):
        kept = Pattern.of(term.text, language).terms
        if not kept:
            found.append(
                (term.position, f"{term} holds only stop words, which are not indexed; remove it")
            )
        elif len(kept) == 1 and len(tokens(term.text)) > 1:
            found.append(
                (
                    term.position,
                    f"{term} is the one word {kept[0]!r} to the index: its other words are stop "
                    "words, which are not indexed; write that word alone or a longer phrase",
                )
            )
    for near_node in _nears(node):
        left = {Pattern.of(t.text, language).key for t in near_node.left}
        shared = [t for t in near_node.right if Pattern.of(t.text, language).key in left]
        if shared:
            found.append(
                (
                    near_node.position,
                    f"{shared[0]} is on both sides of NEAR: one occurrence would satisfy both",
                )
            )
    return found


def _nears(node: Node) -> list[Near]:
    if isinstance(node, Near):
        return [node]
    if isinstance(node, Term):
        return []
    if isinstance(node, Not | Group):
        return _nears(node.child)
    return [found for child in node.children for found in _nears(child)]


# --- Elasticsearch -----------------------------------------------------------------------------


def _match(term: Term) -> dict[str, Any]:
    return {"match": {"query": term.text, "max_gaps": 0, "ordered": True}}


def _rule(terms: tuple[Term, ...]) -> dict[str, Any]:
    if len(terms) == 1:
        return _match(terms[0])
    return {"any_of": {"intervals": [_match(term) for term in terms]}}


def _intervals(rule: dict[str, Any], fields: Mapping[str, float]) -> dict[str, Any]:
    queries = [
        {"intervals": {field: {**rule, "boost": boost} if boost != 1 else rule}}
        for field, boost in fields.items()
    ]
    if len(queries) == 1:
        return queries[0]
    return {"bool": {"should": queries, "minimum_should_match": 1}}


def to_elasticsearch(
    query: str | Node, fields: Sequence[str] | Mapping[str, float]
) -> dict[str, Any]:
    """The Elasticsearch query for ``query`` over ``fields`` (names, or names with boosts).

    A word, a phrase or a NEAR matches when it matches in one of the fields; AND, OR and NOT
    combine those at the article level, as :class:`Query` does.
    """
    node = parse(query) if isinstance(query, str) else query
    boosts = fields if isinstance(fields, Mapping) else dict.fromkeys(fields, 1.0)
    return _to_es(node, boosts)


def _to_es(node: Node, fields: Mapping[str, float]) -> dict[str, Any]:
    if isinstance(node, Term):
        return _intervals(_match(node), fields)
    if isinstance(node, Near):
        sides = [_rule(node.left), _rule(node.right)]
        rule = {"all_of": {"intervals": sides, "max_gaps": node.distance, "ordered": False}}
        return _intervals(rule, fields)
    if isinstance(node, Not):
        return {"bool": {"must_not": [_to_es(node.child, fields)]}}
    if isinstance(node, Group):
        return _to_es(node.child, fields)
    if isinstance(node, AnyOf):
        should = [_to_es(child, fields) for child in node.children]
        return {"bool": {"should": should, "minimum_should_match": 1}}
    must = [_to_es(child, fields) for child in node.children if not isinstance(child, Not)]
    must_not = [_to_es(child.child, fields) for child in node.children if isinstance(child, Not)]
    return {"bool": {"must": must, "must_not": must_not}}
