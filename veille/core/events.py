"""Who acts and what happened where: authorities, actions and stations of an article (core).

In:  an article's title, text and language; what :func:`veille.core.places.read_places` found in it;
     the ``events`` of the topic files (:class:`veille.core.config.Events`), compiled once per
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
from itertools import pairwise
from typing import Any

from veille.core.config import ACTION_NAMES, Authority, Topic
from veille.core.gazetteer import Gazetteer, LanguageData
from veille.core.places import Mention, PlaceReading, Token, tokenize
from veille.core.query import Document, Query
from veille.core.textmatch import StemIndex

STATION_WORDS = 11
PREMISES_WORDS = 6
CUE_WORDS = 8
STATION_NEGATION_WORDS = 3
EMBASSY_WORDS = 6
MAX_EVIDENCE = 400
# Actions that are things done: a call or a question for them ("urged to close") is not one.
DEEDS = frozenset({"investigation", "closure", "arrest_or_charge", "expulsion"})
# Words that may join the places of a list ("in Madrid, Barcelona and Valencia").
LIST_WORDS = frozenset({"and", "et", "y", "e", "in", "a", "à", "en", "au", "aux", "de"})


def station_key(country: str, geonameid: int | None) -> str:
    """The register's ``_id`` of a location: ``IE-2964574`` (Dublin), or ``PT`` (a country)."""
    return f"{country}-{geonameid}" if geonameid else country


@dataclass
class LanguageEvents:
    """One language's compiled event queries."""

    station: Query | None = None
    premises: Query | None = None
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
                    from veille.core.query import parse

                    return Query(parse(text, groups), language, shared)

                compiled.station = query(spec.station)
                compiled.premises = query(spec.premises) if spec.premises else None
                compiled.actions.update({name: query(text) for name, text in spec.actions.items()})
                compiled.bodies.update({kind: query(text) for kind, text in spec.bodies.items()})
            for authority in events.authorities:
                _add_authority(rules, authority, topic)
        return rules


def _add_authority(rules: EventRules, authority: Authority, topic: Topic) -> None:
    from veille.core.query import parse

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
    def of(cls, text: str, tokenized: tuple[list[Token], list[tuple[int, int]]] | None) -> _Field:
        tokens, spans = tokenized or tokenize(text)
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
        found: list[_Hit] = []
        if not query.matches(self.index):  # word look-ups: most queries stop here
            return found
        for hit in query.hits(self.index):
            start, end = self.index[hit.field].offsets(hit.first, hit.last)
            words = self.fields[hit.field]
            first, last = words.word(start), words.word(max(start, end - 1))
            # A NEAR may reach into the next sentence; words there say nothing of this one.
            if words.tokens[first].sentence == words.tokens[last].sentence:
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

    def negated(self, hit: _Hit, other: int | None = None, deed: bool = True) -> bool:
        """A negation (or, for a deed, a call or a question) before the hit. With ``other`` (a
        place's word): a negation just before the station words or between them and the
        place ("no such outpost", "ninguna en México"), or a denial or question word before
        the two or between them ("asked whether … existed in London")."""
        if self.data is None:
            return False
        data = self.data
        kinds = (data.negation, data.hypothetical) if deed else (data.negation,)
        if other is None:
            return self._cue(hit.field, hit.first - CUE_WORDS, hit.first - 1, kinds)
        first, last = min(hit.first, other), max(hit.last, other)
        just_before = self._words_back(hit.field, first, STATION_NEGATION_WORDS)
        return self._cue(hit.field, just_before, last, (data.negation,)) or self._cue(
            hit.field, first - CUE_WORDS, last, (data.hypothetical, data.denial)
        )

    def _words_back(self, field_name: str, first: int, count: int) -> int:
        """The word ``count`` words before word ``first``, not counting the letter a
        contraction leaves ("don't": "don", "t")."""
        tokens = self.fields[field_name].tokens
        number = first
        while count and number > 0:
            number -= 1
            count -= len(tokens[number].text) > 1
        return number

    # --- actions -----------------------------------------------------------------------------

    def actions(self, compiled: LanguageEvents) -> tuple[list[str], list[dict[str, str]], dict]:
        found: dict[str, list[_Hit]] = {}
        for name, query in compiled.actions.items():
            deed = name in DEEDS
            kept = [hit for hit in self.hits(query) if not self.negated(hit, deed=deed)]
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
        names = set()
        taken: set[tuple[str, int]] = set()  # words of the bodies named by their own name
        for name, query in compiled.authorities:
            hits = self.hits(query)
            if hits:
                names.add(name)
            taken |= {(h.field, w) for h in hits for w in range(h.first, h.last + 1)}
        earlier: dict[str, str] = {}
        for kind, query in compiled.bodies.items():
            countries = self.rules.by_kind.get(kind, {})
            for hit in sorted(self.hits(query), key=lambda h: (h.field != "title", h.first)):
                # "Parlement européen" is its own body, not a national parliament.
                if any((hit.field, w) in taken for w in range(hit.first, hit.last + 1)):
                    continue
                country = self.country_of(hit, earlier.get(kind))
                if country:
                    earlier[kind] = country
                if country in countries:
                    names.add(countries[country])
        return sorted(names)

    def country_of(self, hit: _Hit, earlier: str | None) -> str | None:
        """The country a passage is about: a place inside or right next to it ("China's
        foreign ministry", "Ministerio … neerlandés"), else the nearest before it in its
        sentence, else the one this kind of body was about before, else the dateline's, else
        the outlet's."""
        words = self.fields[hit.field]
        before: tuple[int, str] | None = None
        for mention in self.reading.mentions:
            if mention.field != hit.field or mention.kind == "dateline":
                continue
            first, last = words.word(mention.start), words.word(max(mention.start, mention.end - 1))
            if words.tokens[first].sentence != hit.sentence:
                continue
            if hit.first - 2 <= first and last <= hit.last + 2:
                return mention.country
            if last < hit.first and (before is None or last > before[0]):
                before = (last, mention.country)
        if before is not None:
            return before[1]
        if earlier:
            return earlier
        if self.reading.dateline_city is not None:
            return self.g.city_country[self.reading.dateline_city]
        return self.outlet

    # --- stations ----------------------------------------------------------------------------

    def station_hits(
        self, compiled: LanguageEvents
    ) -> dict[tuple[str, int], list[tuple[_Hit, int]]]:
        """Station words by sentence, each with how far a place may be from it."""
        found: dict[tuple[str, int], list[tuple[_Hit, int]]] = {}
        for hit in self.hits(compiled.station) if compiled.station else ():
            if not self._other_word(hit):
                found.setdefault((hit.field, hit.sentence), []).append((hit, STATION_WORDS))
        if not found or not compiled.premises:
            return found  # plain words name a station only in an article about stations
        for hit in self.hits(compiled.premises):
            if not self._someone_s(hit) and not self._other_word(hit):
                found.setdefault((hit.field, hit.sentence), []).append((hit, PREMISES_WORDS))
        return found

    def _other_word(self, hit: _Hit) -> bool:
        """A word that shares the premises word's stem but not its meaning ("officers")."""
        words = self.fields[hit.field].tokens[hit.first : hit.last + 1]
        return bool(self.data) and any(t.key in self.data.not_premises for t in words)

    def _someone_s(self, hit: _Hit) -> bool:
        """ "l'oficina de Naciones Unidas", "the office of the Prime Minister": an
        institution's own office."""
        if self.data is None:
            return False
        tokens = self.fields[hit.field].tokens
        after = tokens[hit.last + 1 : hit.last + 4]
        after = [
            t for t in after if t.sentence == hit.sentence and t.key not in {"la", "the", "l", "el"}
        ]
        return (
            len(after) >= 2
            and after[0].key in self.data.of
            and after[1].capitalized
            and not any(
                m.field == hit.field and m.start <= after[1].start < m.end
                for m in self.reading.mentions
            )
        )

    def stations(
        self, compiled: LanguageEvents, actions: dict[str, list[_Hit]]
    ) -> list[dict[str, Any]]:
        by_sentence = self.station_hits(compiled)
        if not by_sentence:
            return []
        cities: dict[int, set[tuple[str, int]]] = {}  # city → sentences reporting it
        countries: dict[str, set[tuple[str, int]]] = {}
        listed: list[tuple[Mention, int, int]] = []
        for mention in self.reading.mentions:
            words = self.fields[mention.field]
            if mention.kind == "dateline" or mention.country == self.rules.origin:
                continue
            if mention.city is None and (
                mention.field == "title" or not self._country_place(mention)
            ):
                continue
            first = words.word(mention.start)
            last = words.word(max(mention.start, mention.end - 1))
            sentence = (mention.field, words.tokens[first].sentence)
            listed.append((mention, first, last))
            hits = by_sentence.get(sentence, ())
            if not any(self._reports(hit, reach, first, last) for hit, reach in hits):
                continue
            if self._at_seat(mention.field, first, last):
                continue
            if mention.city is not None:
                cities.setdefault(mention.city, set()).add(sentence)
            else:
                countries.setdefault(mention.country, set()).add(sentence)
        self._continued(by_sentence, listed, cities)
        self._lists(listed, cities)
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

    def _country_place(self, mention: Mention) -> bool:
        """A country named as a place: by its name, right after "in", "en", "au"."""
        if mention.kind != "name" or self.data is None:
            return False
        words = self.fields[mention.field]
        first = words.word(mention.start)
        if first == 0:
            return False
        before = words.tokens[first - 1]
        articles = {"le", "la", "les", "l", "el"}
        if before.key in articles and first >= 2:
            before = words.tokens[first - 2]
        return before.key in self.data.country_in

    def _reports(self, hit: _Hit, reach: int, first: int, last: int) -> bool:
        apart = max(0, first - hit.last, hit.first - last)
        return apart <= reach and not self.negated(hit, first if first < hit.first else last)

    def _at_seat(self, field_name: str, first: int, last: int) -> bool:
        """An embassy's or a group's seat: "l'ambassade de Chine à Ottawa", "con sede en
        Madrid", "a Spain-based organisation"."""
        if self.data is None:
            return False
        tokens = self.fields[field_name].tokens
        if last + 1 < len(tokens) and tokens[last + 1].key in self.data.embassy:
            return True
        return self._cue(field_name, first - EMBASSY_WORDS, first - 1, (self.data.embassy,))

    def _lists(self, listed: list[tuple[Mention, int, int]], cities: dict[int, set]) -> None:
        """Cities listed with a station city of the same sentence ("à Rome, à Florence, à
        Venise et à Prato"; "Francfort, en Allemagne, Budapest") are reported with it."""
        ordered = sorted(
            (m for m in listed if m[0].city is not None), key=lambda m: (m[0].field, m[1])
        )
        countries = {
            (m.field, n) for m, first, last in listed if m.city is None
            for n in range(first, last + 1)
        }  # fmt: skip
        changed = True
        while changed:
            changed = False
            for (a, _, a_last), (b, b_first, _) in pairwise(ordered):
                if a.field != b.field or a.sentence != b.sentence:
                    continue
                sentence = (a.field, a.sentence)
                a_here = sentence in cities.get(a.city, ())  # type: ignore[arg-type]
                b_here = sentence in cities.get(b.city, ())  # type: ignore[arg-type]
                if a_here == b_here:
                    continue
                words = self.fields[a.field]
                between = [
                    token
                    for number, token in enumerate(words.tokens[a_last + 1 : b_first], a_last + 1)
                    if (a.field, number) not in countries
                ]
                gap = words.text[words.tokens[a_last].end : words.tokens[b_first].start]
                if (
                    len(between) <= 2
                    and all(t.key in LIST_WORDS for t in between)
                    and ("," in gap or between)
                ):
                    target = b if a_here else a
                    cities.setdefault(target.city, set()).add(sentence)  # type: ignore[arg-type]
                    changed = True

    def _continued(
        self,
        by_sentence: dict[tuple[str, int], list[tuple[_Hit, int]]],
        listed: list[tuple[Mention, int, int]],
        cities: dict[int, set],
    ) -> None:
        """A list of cities right after a station sentence goes on with it ("… des « stations
        de police à l'étranger ». L'Espagne en compterait davantage : plusieurs à Madrid, au
        moins une à Barcelone et une ici, à Valence.")."""
        reporting = {
            sentence for sentence, hits in by_sentence.items()
            if any(not self.negated(hit) for hit, _ in hits)
        }  # fmt: skip
        by_next: dict[tuple[str, int], list[Mention]] = {}
        for mention, _, _ in listed:
            if (
                mention.city is not None
                and mention.kind == "name"
                and (mention.field, mention.sentence - 1) in reporting
            ):
                by_next.setdefault((mention.field, mention.sentence), []).append(mention)
        for sentence, mentions in by_next.items():
            if sentence in by_sentence or len({m.city for m in mentions}) < 2:
                continue
            words = self.fields[sentence[0]]
            first = words.word(mentions[0].start)
            last = words.word(mentions[-1].start)
            between = [t for t in words.tokens[first:last] if not t.capitalized]
            if len(between) <= 4 * len(mentions):
                for mention in mentions:
                    cities.setdefault(mention.city, set()).add(sentence)  # type: ignore[arg-type]

    def _pointed_at_dateline(
        self, by_sentence: dict[tuple[str, int], list[tuple[_Hit, int]]], cities: dict[int, set]
    ) -> None:
        """ "here in the capital", "this suburb": a station sentence about the dateline's city."""
        city = self.reading.dateline_city
        data = self.data
        if city is None or data is None or city in cities:
            return
        if self.g.city_country[city] == self.rules.origin:
            return
        words = self.fields["text"]
        for (field_name, sentence), hits in by_sentence.items():
            if field_name != "text":
                continue
            numbers = [n for n, t in enumerate(words.tokens) if t.sentence == sentence]
            for n in numbers:
                for size in (1, 2):
                    phrase = " ".join(t.key for t in words.tokens[n : n + size])
                    if phrase in data.here and any(not self.negated(hit, n) for hit, _ in hits):
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
    fields = {
        name: _Field.of(value or "", reading.tokens.get(name))
        for name, value in (("title", title), ("text", text))
    }
    index: Document = {name: StemIndex(f.text, language) for name, f in fields.items()}
    reader = _Reader(fields, index, g.language(language), rules, reading, outlet_country, g)
    actions, evidence, hits = reader.actions(compiled)
    return ArticleEvents(
        authorities=reader.authorities(compiled),
        actions=actions,
        evidence=evidence,
        stations=reader.stations(compiled, hits),
    )
