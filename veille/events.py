"""Who acts and what happened where: authorities, actions and stations of an article (core).

In:  an article's title, text and language; what :func:`veille.places.read_places` found in it;
     the ``events`` of the topic files (:class:`veille.config.Events`), compiled once per
     language by :meth:`EventRules.from_topics` with the topic's groups (``@china``…).
Out: :class:`ArticleEvents`:

- ``authorities``: the bodies the topic lists that the article names. A generic body ("the
  foreign ministry", "la Cancillería", "Parliament") is the one of the country the passage is
  about: a country, nationality word or city right next to it ("China's foreign ministry",
  "ministère néerlandais des Affaires étrangères"), else the nearest in its sentence ("In
  Beijing, a foreign ministry spokesperson"), else the outlet's country.
- ``actions`` (``reported``, ``investigation``, ``closure``, ``arrest_or_charge``,
  ``expulsion``, ``denial``, ``legislation``): an action's query matched somewhere it is not
  negated, with the matched sentence kept as evidence. A negation, or a word making it a question
  ("whether", "si"), among the few words before the match undoes it: "No arrests have been
  made", "aucune accusation n'a été déposée", "no ha presentado cargos".
- ``stations``: the locations the article reports a station at. A place is one when it stands in
  a sentence with the topic's station words, at most :data:`STATION_WORDS` words from them, and
  none of these holds:

  - it is the dateline (where the reporter stands) — the dateline's city is a station only when
    a station sentence points at it ("here in the capital", "this suburb");
  - it is in the topic's ``origin`` country (the police the stations answer to, a relative's
    home: Fuzhou, Wenzhou);
  - an embassy or consulate word stands just before it ("the Chinese Embassy in Ottawa");
  - a negation, a denial or a question word stands before it or between it and the station
    words ("no Chinese police stations anywhere in Canada", "a rejeté … en territorio
    mexicano", "asked whether … existed in London").

  A country is a location only when the article reports no station in one of its cities
  (Portugal, South Africa, "un punto de servicio … en Colombia"). A passing mention — "Beijing
  said", a conference in Geneva, an NGO based in Madrid — has no station words next to it and
  creates nothing. Each location carries ``reported`` and the actions matched in sentences that
  name it (every action of the article when it reports a single location).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from veille.config import ACTION_NAMES, Authority, Topic
from veille.gazetteer import Gazetteer, LanguageData
from veille.places import Mention, PlaceReading, Token, tokenize
from veille.query import Document, Query
from veille.textmatch import StemIndex

STATION_WORDS = 15
CUE_WORDS = 8
EMBASSY_WORDS = 6
NEXT_TO = 3
MAX_EVIDENCE = 400


def station_key(country: str, geonameid: int | None) -> str:
    """The register's ``_id`` of a location: ``IE-2964574`` (Dublin), or ``PT`` (a country)."""
    return f"{country}-{geonameid}" if geonameid else country


@dataclass
class LanguageEvents:
    """One language's compiled event queries."""

    station: Query | None = None
    actions: dict[str, Query] = field(default_factory=dict)
    authorities: list[tuple[str, Query]] = field(default_factory=list)
    bodies: dict[str, Query] = field(default_factory=dict)


@dataclass
class EventRules:
    """Every topic's event rules: the actions' order, the origin country, per language."""

    order: tuple[str, ...] = ACTION_NAMES
    origin: str | None = None
    languages: dict[str, LanguageEvents] = field(default_factory=dict)
    # kind of generic body → country → the authority's name
    by_kind: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def from_topics(cls, topics: Iterable[Topic]) -> EventRules:
        rules = cls()
        for topic in topics:
            events = topic.events
            if events is None:
                continue
            rules.order = tuple(events.actions)
            rules.origin = events.origin or rules.origin
            for language, spec in events.languages.items():
                shared: dict[tuple, Any] = {}
                groups = topic.groups(language)
                compiled = rules.languages.setdefault(language, LanguageEvents())

                def query(text: str, language: str = language, groups: Any = groups,
                          shared: dict = shared) -> Query:  # fmt: skip
                    from veille.query import parse

                    return Query(parse(text, groups), language, shared)

                compiled.station = query(spec.station)
                compiled.actions.update({name: query(text) for name, text in spec.actions.items()})
                compiled.bodies.update({kind: query(text) for kind, text in spec.bodies.items()})
            for authority in events.authorities:
                _add_authority(rules, authority, topic)
        return rules


def _add_authority(rules: EventRules, authority: Authority, topic: Topic) -> None:
    from veille.query import parse

    if authority.kind and authority.country:
        rules.by_kind.setdefault(authority.kind, {})[authority.country] = authority.name
    for language, names in authority.names.items():
        if names:
            compiled = rules.languages.setdefault(language, LanguageEvents())
            node = parse(authority.query(language), topic.groups(language))
            compiled.authorities.append((authority.name, Query(node, language)))


@dataclass
class ArticleEvents:
    authorities: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    evidence: list[dict[str, str]] = field(default_factory=list)
    stations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Field:
    """One field's words (the places tokenizer's) and sentences, to measure distances."""

    text: str
    tokens: list[Token]
    spans: list[tuple[int, int]]
    starts: list[int]

    @classmethod
    def of(cls, text: str) -> _Field:
        tokens, spans = tokenize(text)
        return cls(text, tokens, spans, [t.start for t in tokens])

    def word(self, offset: int) -> int:
        """The number of the word at (or before) a character offset."""
        return max(0, bisect_right(self.starts, offset) - 1)

    def sentence_text(self, number: int) -> str:
        start, end = self.spans[number]
        return self.text[start:end].strip()[:MAX_EVIDENCE]


@dataclass(frozen=True)
class _Hit:
    field: str
    first: int  # word numbers
    last: int
    sentence: int


class _Reader:
    def __init__(
        self,
        fields: dict[str, _Field],
        index: Document,
        data: LanguageData | None,
        rules: EventRules,
        reading: PlaceReading,
        outlet: str | None,
        g: Gazetteer,
    ) -> None:
        self.fields = fields
        self.index = index
        self.data = data
        self.rules = rules
        self.reading = reading
        self.outlet = outlet
        self.g = g

    def hits(self, query: Query) -> list[_Hit]:
        found = []
        for hit in query.hits(self.index):
            start, end = self.index[hit.field].offsets(hit.first, hit.last)
            words = self.fields[hit.field]
            first, last = words.word(start), words.word(max(start, end - 1))
            found.append(_Hit(hit.field, first, last, words.tokens[first].sentence))
        return found

    def _cue(self, field_name: str, first: int, last: int, kinds: Sequence[frozenset[str]]) -> bool:
        """Whether a cue word stands in words ``first``..``last`` (clipped to the sentence of
        ``last``)."""
        tokens = self.fields[field_name].tokens
        sentence = tokens[last].sentence
        for token in tokens[max(0, first) : last + 1]:
            if token.sentence == sentence and any(token.key in kind for kind in kinds):
                return True
        return False

    def negated(self, hit: _Hit, other: int | None = None) -> bool:
        """A negation or question word before the hit (or between it and word ``other``)."""
        if self.data is None:
            return False
        kinds = (self.data.negation, self.data.hypothetical)
        if other is None:
            return self._cue(hit.field, hit.first - CUE_WORDS, hit.first - 1, kinds)
        first = min(hit.first, other) - CUE_WORDS
        last = max(hit.last, other)
        return self._cue(hit.field, first, last, (*kinds, self.data.denial))

    # --- actions -----------------------------------------------------------------------------

    def actions(self, compiled: LanguageEvents) -> tuple[list[str], list[dict[str, str]], dict]:
        found: dict[str, list[_Hit]] = {}
        for name, query in compiled.actions.items():
            kept = [hit for hit in self.hits(query) if not self.negated(hit)]
            if kept:
                found[name] = kept
        rank = {name: number for number, name in enumerate(self.rules.order)}
        names = sorted(found, key=lambda name: rank.get(name, len(rank)))
        evidence = []
        for name in names:
            hit = found[name][0]
            sentence = self.fields[hit.field].sentence_text(hit.sentence)
            evidence.append({"action": name, "rule": name, "sentence": sentence})
        return names, evidence, found

    # --- authorities -------------------------------------------------------------------------

    def authorities(self, compiled: LanguageEvents) -> list[str]:
        names = {name for name, query in compiled.authorities if query.hits(self.index)}
        for kind, query in compiled.bodies.items():
            countries = self.rules.by_kind.get(kind, {})
            for hit in self.hits(query):
                country = self.country_of(hit)
                if country in countries:
                    names.add(countries[country])
        return sorted(names)

    def country_of(self, hit: _Hit) -> str | None:
        """The country a passage is about: a place right next to it, else the nearest in its
        sentence, else the outlet's."""
        words = self.fields[hit.field]
        nearest: tuple[int, str] | None = None
        for mention in self.reading.mentions:
            if mention.field != hit.field or mention.kind == "dateline":
                continue
            first, last = words.word(mention.start), words.word(max(mention.start, mention.end - 1))
            if words.tokens[first].sentence != hit.sentence:
                continue
            apart = max(0, first - hit.last, hit.first - last)
            if nearest is None or apart < nearest[0]:
                nearest = (apart, mention.country)
        if nearest is not None:
            return nearest[1]
        return self.outlet

    # --- stations ----------------------------------------------------------------------------

    def stations(
        self, compiled: LanguageEvents, actions: dict[str, list[_Hit]]
    ) -> list[dict[str, Any]]:
        if compiled.station is None:
            return []
        hits = self.hits(compiled.station)
        if not hits:
            return []
        by_sentence: dict[tuple[str, int], list[_Hit]] = {}
        for hit in hits:
            by_sentence.setdefault((hit.field, hit.sentence), []).append(hit)
        cities: dict[int, set[tuple[str, int]]] = {}  # city → sentences reporting it
        countries: dict[str, set[tuple[str, int]]] = {}
        for mention in self.reading.mentions:
            words = self.fields[mention.field]
            if mention.kind == "dateline" or mention.country == self.rules.origin:
                continue
            first = words.word(mention.start)
            last = words.word(max(mention.start, mention.end - 1))
            sentence = (mention.field, words.tokens[first].sentence)
            if not any(self._reports(hit, first, last) for hit in by_sentence.get(sentence, ())):
                continue
            if self._at_embassy(mention.field, first):
                continue
            if mention.city is not None:
                cities.setdefault(mention.city, set()).add(sentence)
            else:
                countries.setdefault(mention.country, set()).add(sentence)
        self._pointed_at_dateline(by_sentence, cities)
        in_city_countries = {self.g.city_country[city] for city in cities}
        countries = {c: s for c, s in countries.items() if c not in in_city_countries}
        single = len(cities) + len(countries) == 1
        found = []
        for city, sentences in sorted(cities.items()):
            place = self.g.city(city)
            found.append(
                {
                    "key": station_key(place.country, place.geonameid),
                    "kind": "city",
                    "name": place.name,
                    "country": place.country,
                    "geonameid": place.geonameid,
                    "location": {"lat": round(place.lat, 5), "lon": round(place.lon, 5)},
                    "actions": self._station_actions(sentences, actions, single),
                }
            )
        for country, sentences in sorted(countries.items()):
            found.append(
                {
                    "key": station_key(country, None),
                    "kind": "country",
                    "name": self.g.country_name(country),
                    "country": country,
                    "actions": self._station_actions(sentences, actions, single),
                }
            )
        return found

    def _reports(self, hit: _Hit, first: int, last: int) -> bool:
        apart = max(0, first - hit.last, hit.first - last)
        return apart <= STATION_WORDS and not self.negated(
            hit, first if first < hit.first else last
        )

    def _at_embassy(self, field_name: str, first: int) -> bool:
        if self.data is None:
            return False
        return self._cue(field_name, first - EMBASSY_WORDS, first - 1, (self.data.embassy,))

    def _pointed_at_dateline(
        self, by_sentence: dict[tuple[str, int], list[_Hit]], cities: dict[int, set]
    ) -> None:
        """"here in the capital", "this suburb": a station sentence about the dateline's city."""
        city = self.reading.dateline_city
        if city is None or self.data is None or city in cities or self.rules.origin == (
            self.g.city_country[city]
        ):
            return
        words = self.fields["text"]
        for (field_name, sentence), hits in by_sentence.items():
            if field_name != "text":
                continue
            tokens = [t for t in words.tokens if t.sentence == sentence]
            for position, token in enumerate(tokens):
                for size in (1, 2):
                    phrase = " ".join(t.key for t in tokens[position : position + size])
                    if phrase not in self.data.here:
                        continue
                    number = words.tokens.index(token)
                    if any(self._reports(hit, number, number) for hit in hits):
                        cities.setdefault(city, set()).add((field_name, sentence))

    def _station_actions(
        self, sentences: set[tuple[str, int]], actions: dict[str, list[_Hit]], single: bool
    ) -> list[str]:
        rank = {name: number for number, name in enumerate(self.rules.order)}
        names = {"reported"}
        for name, hits in actions.items():
            if single or any((hit.field, hit.sentence) in sentences for hit in hits):
                names.add(name)
        return sorted(names, key=lambda name: rank.get(name, len(rank)))


def read_events(
    title: str,
    text: str,
    language: str | None,
    reading: PlaceReading,
    rules: EventRules,
    g: Gazetteer,
    outlet_country: str | None = None,
) -> ArticleEvents:
    """What the article reports, by the topics' event rules (see the module docstring)."""
    compiled = rules.languages.get(language or "")
    if compiled is None:
        return ArticleEvents()
    fields = {"title": _Field.of(title or ""), "text": _Field.of(text or "")}
    index: Document = {name: StemIndex(f.text, language) for name, f in fields.items()}
    reader = _Reader(fields, index, g.language(language), rules, reading, outlet_country, g)
    actions, evidence, hits = reader.actions(compiled)
    return ArticleEvents(
        authorities=reader.authorities(compiled),
        actions=actions,
        evidence=evidence,
        stations=reader.stations(compiled, hits),
    )
