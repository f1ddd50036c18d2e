"""Alert queries: an analyst's keywords compiled into an Elasticsearch query.

In:  keywords such as ``"police station" AND (China OR Chinese) NOT "Chinese checkers"``:
     words, "quoted phrases", ``AND``, ``OR``, ``NOT`` (upper case; a space between two terms
     means AND), parentheses; and a rule's filters (languages, countries, sources, relevance).
Out: an Elasticsearch query (a plain dict) usable both as a percolator query and as a search.

Every word or phrase is matched as a phrase over the fields ``veille search`` uses
(:data:`veille.search.SEARCH_FIELDS`): the original title and text, the per-language copies
analysed with the french/english/spanish analyzers (so "station" finds "stations"), and the
translations ``translation.<lang>.*``, so an English keyword finds a French article through its
English translation. Operators in lower case are ordinary words ("or" is French for gold).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from veille.search import SEARCH_FIELDS

KEYWORD_FIELDS = [field.split("^")[0] for field in SEARCH_FIELDS]
OPERATORS = ("AND", "OR", "NOT")

_TOKEN = re.compile(r'"([^"]*)("?)|(\()|(\))|([^\s()"]+)')


class QuerySyntaxError(ValueError):
    """A keyword query that cannot be compiled; the message says where and how to fix it."""


@dataclass(frozen=True)
class Term:
    text: str
    phrase: bool


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class AllOf:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Node, ...]


Node = Term | Not | AllOf | AnyOf


def _tokens(text: str) -> list[str]:
    """Words, ``(``, ``)``, and phrases (marked by a leading ``"``, spaces normalised)."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(text):
        phrase, closed, *others = match.groups()
        if phrase is None:
            tokens.append(next(token for token in others if token))
            continue
        if not closed:
            raise QuerySyntaxError(
                f'unterminated quote at {match.group(0)!r}; close the phrase with "'
            )
        words = " ".join(phrase.split())
        if not words:
            raise QuerySyntaxError('empty phrase ""; write words between the quotes')
        tokens.append('"' + words)
    return tokens


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def parse(self) -> Node:
        node = self.any_of()
        if self.peek() is not None:
            raise QuerySyntaxError(f"unexpected {self.peek()!r}; check the parentheses")
        return node

    def any_of(self) -> Node:
        children = [self.all_of()]
        while self.peek() == "OR":
            self.take()
            children.append(self.all_of())
        return children[0] if len(children) == 1 else AnyOf(tuple(children))

    def all_of(self) -> Node:
        children = [self.unary()]
        while self.peek() not in (None, "OR", ")"):
            if self.peek() == "AND":
                self.take()
            children.append(self.unary())
        return children[0] if len(children) == 1 else AllOf(tuple(children))

    def unary(self) -> Node:
        token = self.peek()
        if token is None:
            raise QuerySyntaxError("the query ends where a word or phrase was expected")
        if token == "NOT":
            self.take()
            return Not(self.unary())
        if token in ("AND", "OR"):
            raise QuerySyntaxError(f"{token} needs a word, phrase or group on each side")
        if token == ")":
            raise QuerySyntaxError("')' without a matching '('")
        self.take()
        if token == "(":
            node = self.any_of()
            if self.peek() != ")":
                raise QuerySyntaxError("'(' is never closed; add ')'")
            self.take()
            return node
        if token.startswith('"'):
            return Term(token[1:], phrase=True)
        return Term(token, phrase=False)


def _requires_a_term(node: Node) -> bool:
    """Whether every match must contain some word: a query of only NOTs matches everything."""
    if isinstance(node, Term):
        return True
    if isinstance(node, Not):
        return False
    if isinstance(node, AllOf):
        return any(_requires_a_term(child) for child in node.children)
    return all(_requires_a_term(child) for child in node.children)


def parse_keywords(text: str) -> Node:
    """Parse a keyword query; :class:`QuerySyntaxError` says what is wrong."""
    tokens = _tokens(text)
    if not tokens:
        raise QuerySyntaxError("the query is empty; write at least one word or phrase")
    node = _Parser(tokens).parse()
    if not _requires_a_term(node):
        raise QuerySyntaxError(
            "the query only excludes; add a word or phrase that must match (NOT alone "
            "would match every article)"
        )
    return node


def _to_es(node: Node) -> dict[str, Any]:
    if isinstance(node, Term):
        return {"multi_match": {"query": node.text, "type": "phrase", "fields": KEYWORD_FIELDS}}
    if isinstance(node, Not):
        return {"bool": {"must_not": [_to_es(node.child)]}}
    if isinstance(node, AnyOf):
        return {"bool": {"should": [_to_es(c) for c in node.children], "minimum_should_match": 1}}
    must = [_to_es(c) for c in node.children if not isinstance(c, Not)]
    must_not = [_to_es(c.child) for c in node.children if isinstance(c, Not)]
    return {"bool": {"must": must, "must_not": must_not}}


def compile_keywords(text: str) -> dict[str, Any]:
    """The Elasticsearch query for a keyword query (see the module docstring for the syntax)."""
    return _to_es(parse_keywords(text))


def with_filters(
    query: dict[str, Any],
    *,
    languages: list[str] | tuple[str, ...] = (),
    countries: list[str] | tuple[str, ...] = (),
    sources: list[str] | tuple[str, ...] = (),
    min_relevance: float | None = None,
) -> dict[str, Any]:
    """``query`` restricted to articles in these languages, countries and sources.

    A country matches an article that mentions it (``countries``) or whose source is based
    there (``source.country``).
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
        filters.append({"range": {"relevance": {"gte": min_relevance}}})
    if not filters:
        return query
    return {"bool": {"must": [query], "filter": filters}}
