"""Which countries and cities an article names (core).

In:  an article's title and text, its language, its outlet's country, a
     :class:`veille.core.gazetteer.Gazetteer`.
Out: a :class:`PlaceReading`: the countries named (by name, abbreviation or nationality word),
     the cities named with their mentions, and every mention's place in the text (the stations
     rules of :mod:`veille.stations_rules` read them).

A city is found where a capitalised name of the gazetteer stands, the longest name first
("Santiago de Compostela" before "Santiago"), and kept only when it reads as a place:

- **ordinary words and other names.** Lower-case words are never places ("sens unique", "une
  victoria"). A name standing next to another capitalised word is part of a longer name
  ("Florence Adeyemi", "Greater Toronto Area", "Washington Post"). A single capitalised word at
  the start of a sentence may be an ordinary word ("Nice people", "Split between", "Reading from
  a slide"): there it counts only when the article names the same city elsewhere, or when it is
  a capital or a city of a million people ("Pekín niega…"). The language's most frequent words
  (jusText's lists: "Selon", "Como", "Para") are never places. In the title, only the cities the
  text also names count (English titles capitalise every word).
- **regions.** A name that is also a region of a country the article is about, with no city of
  that name there, is the region ("Victoria" in an Australian paper). A city that shares its
  name with its region (Quebec, New York, Córdoba) is the city after a preposition of place or
  in the dateline, the region otherwise ("the Mounties' Quebec division", "division du Québec").
- **ambiguous names** (Paris, Córdoba, Valencia, Victoria, London, Kingston), each mention on
  its own: a qualifier right after it decides ("Paris, Texas", "VALENCE (Espagne)", "Valencia,
  … del estado Carabobo, en Venezuela"); else the dateline's city when it bears that name, or a
  city named earlier by a longer name ("Santiago de Compostela", then "Santiago"); else the
  largest of the candidates in the countries the article is about (the outlet's, those it names,
  the dateline's); else the largest in the countries of its other places; else the candidate
  five times larger than any other; else the name is left out.
- **the dateline** (``BROSSARD —``, ``LONDON, Ont. —``) is a place like any other here; the
  stations rules know it is where the reporter stands.
- **capitals named by a word**: "la capitale argentine", "the capital of Chile", "la capital"
  (the country of the sentence) and "here in the capital" (the dateline's city) count as a
  mention of that capital.

Countries: names in the three languages (ISO's and CLDR's), abbreviations written as such
("U.K.", "EE.UU."), and nationality words ("néerlandais", "irlandesa", "Dutch") unless they
name a language ("French classes", "habla un español con acento", "en chinois").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from veille.core.gazetteer import Gazetteer, LanguageData, fold, gazetteer, name_key

_WORD = re.compile(r"[^\W\d_]+")
# A sentence ends at . ! ? … before a capital or an opening quote, at every new line, after a
# dateline's dash, and (for the rules that read clauses) at a semicolon.
_SENTENCE_END = re.compile(
    r"(?<=[.!?…])[\"»”’)]*\s+(?=[\"«“‘(¿¡—–-]*\s*[^\W\d_])|\n+|;\s+|\s[—–]\s"
)
_DATELINE = re.compile(
    r"^\s*(?P<city>[^\W\d_a-zà-ÿ][^\W\da-zà-ÿ]*(?:[\s'’.-]+[^\W\da-zà-ÿ]+)*)\s*"
    r"(?:\((?P<paren>[^)\n]{1,40})\)|,\s*(?P<comma>[^—–\n]{1,30}?))?\s*[—–]"
)
_JOINER = re.compile(r"^[ \-'’.]{1,3}$")
_LIST_GAP = re.compile(r"^(?:, ?| and | et | y | e |, and |, et |, y )$")
BIG_CITY = 1_000_000
SMALL_CITY = 100_000
LOCAL_DATELINE = 50_000
FAMOUS_RATIO = 20
NAMESAKE = 200_000
DOMINANT = 5.0
QUALIFIER_WORDS = 8


@dataclass(slots=True)
class Token:
    text: str
    start: int
    end: int
    sentence: int
    initial: bool
    key: str
    capitalized: bool


@dataclass
class Mention:
    """A place named in the text: a city (``city`` set) or a country (``city`` None)."""

    field: str
    start: int
    end: int
    sentence: int
    country: str
    city: int | None = None
    kind: str = "name"  # name | demonym | capital | dateline
    first_token: int = 0


@dataclass
class PlaceReading:
    """What :func:`read_places` found."""

    countries: list[str]
    cities: Counter[int]
    mentions: list[Mention]
    dateline_city: int | None
    # Each field's words and sentences, as the rules read them (events.py reads them too).
    tokens: dict[str, tuple[list[Token], list[tuple[int, int]]]] = field(default_factory=dict)

    def places(self, g: Gazetteer) -> list[dict[str, Any]]:
        """The article's ``places``: each city once, most mentioned first."""
        found = []
        for index, count in sorted(self.cities.items(), key=lambda item: (-item[1], item[0])):
            city = g.city(index)
            found.append(
                {
                    "name": city.name,
                    "country": city.country,
                    "geonameid": city.geonameid,
                    "location": {"lat": round(city.lat, 5), "lon": round(city.lon, 5)},
                    "mentions": count,
                }
            )
        return found


def sentence_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.start() > start:
            spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def tokenize(text: str) -> tuple[list[Token], list[tuple[int, int]]]:
    """Word tokens with their sentence and whether they open it."""
    spans = sentence_spans(text)
    tokens: list[Token] = []
    folded, append = _FOLDED, tokens.append
    if len(folded) > FOLD_CACHE_SIZE:
        folded.clear()
    for number, (start, end) in enumerate(spans):
        first = True
        for word in _WORD.finditer(text, start, end):
            key = folded.get(word[0])
            if key is None:
                key = folded[word[0]] = fold(word[0])
            append(
                Token(word[0], word.start(), word.end(), number, first, key, word[0][0].isupper())
            )
            first = False
    return tokens, spans


# Word → folded word, filled as words are met; emptied when full, so it never grows with a crawl.
_FOLDED: dict[str, str] = {}
FOLD_CACHE_SIZE = 50_000


class _Reader:
    """One article's reading; the rules of the module docstring, in order."""

    def __init__(self, g: Gazetteer, data: LanguageData | None, outlet_country: str | None) -> None:
        self.g = g
        self.data = data
        self.outlet = outlet_country
        self.mentions: list[Mention] = []
        self.named: list[tuple[str, str, int, str]] = []  # (country, kind, position, field)

    # --- finding names ---------------------------------------------------------------------

    def _joined(self, text: str, tokens: list[Token], i: int, n: int) -> bool:
        """Whether tokens i..i+n-1 are written as one name: adjacent, capitalised at both ends,
        connecting words between."""
        connectors = self.data.connectors if self.data else frozenset()
        last = tokens[i + n - 1]
        if last.sentence != tokens[i].sentence or not last.capitalized:
            return False
        for j in range(i + 1, i + n):
            if not _JOINER.match(text[tokens[j - 1].end : tokens[j].start]):
                return False
            if j < i + n - 1 and not (tokens[j].capitalized or tokens[j].key in connectors):
                return False
        return True

    def names(self, text: str, tokens: list[Token]) -> list[tuple[int, int, str]]:
        """``(first token, token count, key)`` of every gazetteer name, longest first."""
        found = []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if not token.capitalized:
                i += 1
                continue
            for n in range(min(self.g.max_words, len(tokens) - i), 0, -1):
                if n > 1 and not self._joined(text, tokens, i, n):
                    continue
                key = " ".join(t.key for t in tokens[i : i + n])
                if key not in self.g.names or not self._acceptable(text, tokens, i, n, key):
                    continue
                found.append((i, n, key))
                i += n - 1
                break
            i += 1
        return found

    def _acceptable(self, text: str, tokens: list[Token], i: int, n: int, key: str) -> bool:
        if key in self.g.exact_surfaces:
            surface = text[tokens[i].start : tokens[i + n - 1].end + 1].replace(" ", "")
            exact = {s.replace(" ", "") for s in self.g.exact_surfaces[key]}
            return surface in exact or surface.rstrip(".,;:") in exact
        stopwords = self.data.stopwords if self.data else frozenset()
        return not (n == 1 and (len(key) < 3 or key in stopwords))

    def demonyms(self, tokens: list[Token], taken: set[int]) -> list[tuple[int, int, str]]:
        """``(first token, token count, country)`` of nationality words naming a country."""
        if not self.data:
            return []
        demonyms, starts = self.data.demonyms, self.data.demonym_starts
        found = []
        i = 0
        while i < len(tokens):
            key = tokens[i].key
            if i in taken or (key not in demonyms and key not in starts):
                i += 1
                continue
            for n in (2, 1):
                if i + n > len(tokens) or (n == 2 and (key not in starts or i + 1 in taken)):
                    continue
                words = f"{key} {tokens[i + 1].key}" if n == 2 else key
                code = demonyms.get(words)
                if code is None or self._names_language(tokens, i, n, words):
                    continue
                found.append((i, n, code))
                i += n - 1
                break
            i += 1
        return found

    def _names_language(self, tokens: list[Token], i: int, n: int, key: str) -> bool:
        data = self.data
        assert data is not None
        if key not in data.language_names:
            return False
        before = tokens[i - 1].key if i > 0 else ""
        after = tokens[i + n].key if i + n < len(tokens) else ""
        if data.code == "en":
            return after in data.language_after or before in data.language_before
        # French and Spanish write nationality adjectives in lower case; the masculine
        # singular after an article or "en" is the language ("en chinois", "un español").
        return not tokens[i].capitalized and before in data.language_before

    # --- reading -----------------------------------------------------------------------------

    def read(self, title: str, text: str) -> PlaceReading:
        g = self.g
        fields = {"title": title or "", "text": text or ""}
        tokenized = {name: tokenize(value) for name, value in fields.items()}
        dateline = self._dateline(fields["text"], tokenized["text"][0])
        candidates: list[tuple[str, int, int, str]] = []  # field, first token, n, key
        for name, (tokens, _) in tokenized.items():
            found = self.names(fields[name], tokens)
            taken = {j for i, n, _ in found for j in range(i, i + n)}
            for i, n, key in found:
                code = g.country_of_key(key)
                if code:
                    self.named.append((code, "name", tokens[i].start, name))
                    self._country(name, tokens, i, n, code, "name")
                else:
                    candidates.append((name, i, n, key))
            for i, n, code in self.demonyms(tokens, taken):
                self.named.append((code, "demonym", tokens[i].start, name))
                self._country(name, tokens, i, n, code, "demonym")
        context = {code for code, *_ in self.named}
        if self.outlet:
            context.add(self.outlet)
        dateline_city = None
        if dateline is not None:
            dateline_city = self._resolve_dateline(dateline, context)
            if dateline_city is not None:
                context.add(g.city_country[dateline_city])
        self._cities(fields, tokenized, candidates, context, dateline, dateline_city)
        self._capitals(fields, tokenized, dateline_city)
        counted = Counter(m.city for m in self.mentions if m.city is not None)
        countries = sorted({code for code, *_ in self.named})
        return PlaceReading(
            countries=countries,
            cities=counted,
            mentions=sorted(self.mentions, key=lambda m: (m.field != "title", m.start)),
            dateline_city=dateline_city,
            tokens=tokenized,
        )

    def _country(
        self, field_name: str, tokens: list[Token], i: int, n: int, code: str, kind: str
    ) -> None:
        self.mentions.append(
            Mention(
                field_name,
                tokens[i].start,
                tokens[i + n - 1].end,
                tokens[i].sentence,
                code,
                kind=kind,
                first_token=i,
            )
        )

    def _dateline(self, text: str, tokens: list[Token]) -> tuple[int, int, str, str] | None:
        """``(first token, token count, key, qualifier)`` of the text's dateline."""
        match = _DATELINE.match(text)
        if not match:
            return None
        key = name_key(match.group("city"))
        if not self.g.cities_named(key):
            return None
        n = len(key.split())
        qualifier = match.group("paren") or match.group("comma") or ""
        return 0, n, key, qualifier

    def _qualifier_country(self, phrase: str) -> str | None:
        """The country a short phrase names: a country, region or nationality word in it."""
        return self._qualifier_in(tokenize(phrase)[0])

    def _qualifier_in(self, tokens: list[Token]) -> str | None:
        for i in range(len(tokens)):
            for n in range(min(4, len(tokens) - i), 0, -1):
                key = " ".join(t.key for t in tokens[i : i + n])
                code = self.g.country_of_key(key)
                if code:
                    return code
                regions = self.g.subdivisions_named(key)
                if regions and tokens[i].capitalized:
                    return regions[0].split("-")[0]
                if self.data and key in self.data.demonyms:
                    return self.data.demonyms[key]
                if self.data and key in self.data.region_abbreviations and tokens[i].capitalized:
                    return self.data.region_abbreviations[key]
        return None

    def _largest(self, cities: Iterable[int], countries: set[str] | None = None) -> int | None:
        chosen = [c for c in cities if countries is None or self.g.city_country[c] in countries]
        if not chosen:
            return None
        return max(chosen, key=lambda c: (self.g.city_population[c], -c))

    def _resolve_dateline(
        self, dateline: tuple[int, int, str, str], context: set[str]
    ) -> int | None:
        _, _, key, qualifier = dateline
        cities = self.g.cities_named(key)
        code = self._qualifier_country(qualifier) if qualifier else None
        if code:
            chosen = self._largest(cities, {code})
            if chosen is not None:
                return chosen
        # A dateline without a region names a city its readers know: the outlet's own if it is
        # a real city, else the best known one ("GENEVA —" in an American paper).
        if self.outlet:
            local = self._largest(cities, {self.outlet})
            if local is not None and self.g.city_population[local] >= LOCAL_DATELINE:
                return local
        return self._dominant(cities) or self._by_context(cities, context, set())

    def _dominant(self, cities: list[int]) -> int | None:
        """The candidate five times larger than any in another country, if there is one."""
        g = self.g
        by_country: dict[str, int] = {}
        for city in cities:
            country = g.city_country[city]
            by_country[country] = max(by_country.get(country, 0), g.city_population[city])
        ranked = sorted(by_country.values(), reverse=True)
        if ranked and (len(ranked) == 1 or ranked[0] >= DOMINANT * ranked[1]):
            return self._largest(cities)
        return None

    def _by_context(self, cities: list[int], context: set[str], around: set[str]) -> int | None:
        g = self.g
        chosen = self._largest(cities, context)
        famous = self._largest(cities)
        # A small namesake at home does not beat a famous city ("Madrid", Colombia).
        if (
            chosen is not None
            and famous is not None
            and self._prominent(famous)
            and g.city_population[chosen] < NAMESAKE
            and g.city_population[famous] >= FAMOUS_RATIO * g.city_population[chosen]
        ):
            chosen = famous
        if chosen is None:
            chosen = self._largest(cities, around)
        return chosen if chosen is not None else self._dominant(cities)

    def _qualifier_after(self, text: str, tokens: list[Token], last: int) -> str | None:
        """A qualifier right after a name: "(Ontario)", ", Texas", ", en Colombie-Britannique"."""
        end = tokens[last].end
        rest = text[end : end + 3]
        if not rest.startswith((" (", "(", ",")):
            return None
        sentence = tokens[last].sentence
        following = [
            t for t in tokens[last + 1 : last + 1 + QUALIFIER_WORDS] if t.sentence == sentence
        ]
        if not following:
            return None
        stop = text.find(")", end) if "(" in rest else -1
        if stop != -1:
            following = [t for t in following if t.end <= stop]
        return self._qualifier_in(following)

    def _cities(
        self,
        fields: dict[str, str],
        tokenized: dict[str, tuple[list[Token], list[tuple[int, int]]]],
        candidates: list[tuple[str, int, int, str]],
        context: set[str],
        dateline: tuple[int, int, str, str] | None,
        dateline_city: int | None,
    ) -> None:
        g = self.g
        kept: list[tuple[str, int, int, str]] = []
        for field_name, i, n, key in candidates:
            tokens = tokenized[field_name][0]
            if not g.cities_named(key):
                continue
            if not self._dateline_at(field_name, i, dateline) and (
                self._part_of_longer_name(fields[field_name], tokens, i, n)
                or self._feature(tokens, i)
            ):
                continue
            kept.append((field_name, i, n, key))
        # Countries of the names that can only be one country: the second ring of context.
        around = set()
        for field_name, i, _, key in kept:
            countries = {g.city_country[c] for c in g.cities_named(key)}
            if len(countries) == 1 and not tokenized[field_name][0][i].initial:
                around |= countries
        longer: list[int] = [] if dateline_city is None else [dateline_city]
        resolved: list[tuple[str, int, int, int, bool]] = []  # field, i, n, city, placed
        parts: list[tuple[str, int, int, int]] = []  # field, i, n, the city it is part of
        unsettled: list[tuple[str, int, int, str]] = []
        for field_name, i, n, key in sorted(kept, key=lambda k: -k[2]):
            tokens = tokenized[field_name][0]
            placed = self._dateline_at(field_name, i, dateline)
            city: int | None = dateline_city
            if not placed:
                city, placed = self._resolve(
                    fields[field_name], tokens, i, n, key, context, around, longer
                )
                if city in g.districts:
                    parts.append((field_name, i, n, g.districts[city]))
                    continue
                if city is None:
                    unsettled.append((field_name, i, n, key))
                    continue
                if self._is_region(tokens, i, key, city):
                    continue
            if city is None:
                continue
            placed = placed or self._after_preposition(tokens, i)
            if n > 1:
                longer.append(city)
            resolved.append((field_name, i, n, city, placed))
        resolved += self._listed_with(fields, tokenized, unsettled, resolved)
        # "Manhattan's Chinatown" in a story datelined NEW YORK: the part names the city named.
        named = {city for _, _, _, city, _ in resolved}
        resolved += [(f, i, n, city, True) for f, i, n, city in parts if city in named]
        firm = set()  # cities named at least once in a way that only a place is named
        for field_name, i, n, city, placed in resolved:
            initial = n == 1 and tokenized[field_name][0][i].initial
            dateline_here = self._dateline_at(field_name, i, dateline)
            if dateline_here or (
                field_name == "text" and not initial and (placed or not self._small(city))
            ):
                firm.add(city)
        title_case = _title_case(fields["title"])
        for field_name, i, n, city, _ in resolved:
            tokens = tokenized[field_name][0]
            if city not in firm and not self._prominent(city):
                continue
            if (
                field_name == "title"
                and title_case
                and not any(r[3] == city and r[0] == "text" for r in resolved)
            ):
                continue
            kind = "dateline" if self._dateline_at(field_name, i, dateline) else "name"
            self.mentions.append(
                Mention(
                    field_name,
                    tokens[i].start,
                    tokens[i + n - 1].end,
                    tokens[i].sentence,
                    g.city_country[city],
                    city,
                    kind,
                    i,
                )
            )

    def _listed_with(
        self,
        fields: dict[str, str],
        tokenized: dict[str, tuple[list[Token], list[tuple[int, int]]]],
        unsettled: list[tuple[str, int, int, str]],
        resolved: list[tuple[str, int, int, int, bool]],
    ) -> list[tuple[str, int, int, int, bool]]:
        """Names left open that stand in a list with a settled city take its country ("offices
        in Madrid, Barcelona and Valencia")."""
        g = self.g
        ends = {(f, i): c for f, i, _, c, _ in resolved} | {
            (f, i + n - 1): c for f, i, n, c, _ in resolved
        }
        settled: list[tuple[str, int, int, int, bool]] = []
        for _ in range(len(unsettled)):  # each round may settle the next one of a list
            for item in list(unsettled):
                field_name, i, n, key = item
                tokens, text = tokenized[field_name][0], fields[field_name]
                neighbours = [
                    ends.get((field_name, j))
                    for j in (i - 1, i - 2)
                    if j >= 0 and _LIST_GAP.match(text[tokens[j].end : tokens[i].start])
                ]
                last = i + n - 1
                neighbours += [
                    ends.get((field_name, j))
                    for j in (last + 1, last + 2)
                    if j < len(tokens) and _LIST_GAP.match(text[tokens[last].end : tokens[j].start])
                ]
                for neighbour in neighbours:
                    if neighbour is None:
                        continue
                    city = self._largest(g.cities_named(key), {g.city_country[neighbour]})
                    if city is not None and city not in g.districts:
                        settled.append((field_name, i, n, city, True))
                        ends[(field_name, i)] = ends[(field_name, last)] = city
                        unsettled.remove(item)
                        break
        return settled

    @staticmethod
    def _dateline_at(field_name: str, i: int, dateline: tuple[int, int, str, str] | None) -> bool:
        return field_name == "text" and dateline is not None and i == 0

    def _small(self, city: int) -> bool:
        return self.g.city_population[city] < SMALL_CITY

    def _prominent(self, city: int) -> bool:
        g = self.g
        return g.city_population[city] >= BIG_CITY or g.capitals.get(g.city_country[city]) == city

    def _feature(self, tokens: list[Token], i: int) -> bool:
        """After "rivière", "barrio de", "county of": a river, a district, a county."""
        data = self.data
        if data is None or i == 0:
            return False
        before = [t.key for t in tokens[max(0, i - 2) : i] if t.sentence == tokens[i].sentence]
        if before and before[-1] in data.not_city_before:
            return True
        return len(before) == 2 and before[-1] in data.of and before[0] in data.not_city_before

    def _part_of_longer_name(self, text: str, tokens: list[Token], i: int, n: int) -> bool:
        """A capitalised word right before or after: "Florence Adeyemi", "Greater Toronto",
        "Latour-Maubourg" (a word opening the sentence counts unless it is a small word)."""
        stopwords = self.data.stopwords if self.data else frozenset()
        connectors = self.data.connectors if self.data else frozenset()
        after = i + n
        if after < len(tokens):
            nxt = tokens[after]
            if (
                nxt.sentence == tokens[i].sentence
                and nxt.capitalized
                and nxt.key not in connectors
                and text[tokens[after - 1].end : nxt.start] in (" ", "-")
            ):
                return True
        if i > 0:
            prev = tokens[i - 1]
            if (
                prev.sentence == tokens[i].sentence
                and prev.capitalized
                and not (prev.initial and prev.key in stopwords)
                and text[prev.end : tokens[i].start] in (" ", "-")
            ):
                return True
        return False

    def _resolve(
        self,
        text: str,
        tokens: list[Token],
        i: int,
        n: int,
        key: str,
        context: set[str],
        around: set[str],
        longer: list[int],
    ) -> tuple[int | None, bool]:
        """The city a name stands for here, and whether a qualifier placed it."""
        g = self.g
        cities = g.cities_named(key)
        qualifier = self._qualifier_after(text, tokens, i + n - 1)
        if qualifier:
            chosen = self._largest(cities, {qualifier})
            if chosen is not None:
                return chosen, True
        for earlier in longer:
            if earlier in cities:
                return earlier, False
        countries = {g.city_country[c] for c in cities}
        for region in g.subdivisions_named(key):
            country = region.split("-")[0]
            if region in g.first_level and country in context and country not in countries:
                return None, False
        return self._by_context(cities, context, around), False

    def _is_region(self, tokens: list[Token], i: int, key: str, city: int) -> bool:
        """A city sharing its name with its own first-level region, named without a
        preposition of place: the region ("the Quebec division", "du Québec")."""
        g = self.g
        data = self.data
        prev = tokens[i - 1] if i > 0 and tokens[i - 1].sentence == tokens[i].sentence else None
        if data and prev and not prev.capitalized and prev.key in data.region_articles:
            return True
        country = g.city_country[city]
        shared = any(
            region in g.first_level and region.startswith(country + "-")
            for region in g.subdivisions_named(key)
        )
        if not shared or g.capitals.get(country) == city:
            return False
        if self._small(city):
            return True  # "living in California": the state, not its small namesake
        return not self._after_preposition(tokens, i)

    def _after_preposition(self, tokens: list[Token], i: int) -> bool:
        """A preposition of place before the name, or before the list the name ends
        ("in Madrid, Barcelona and Valencia")."""
        data = self.data
        if data is None:
            return False
        j = i - 1
        while j >= 0 and tokens[j].sentence == tokens[i].sentence:
            word = tokens[j].key
            if word in data.locative and (tokens[j].initial or not tokens[j].capitalized):
                # "Departamento de Justicia": "de" inside a proper name places nothing.
                return not (
                    word in data.of
                    and j > 0
                    and tokens[j - 1].capitalized
                    and not tokens[j - 1].initial
                    and tokens[j - 1].sentence == tokens[i].sentence
                )
            if word in {"and", "et", "y", "e", "or", "ou", "o"} or tokens[j].capitalized:
                j -= 1
                continue
            return False
        return False

    def _capitals(
        self,
        fields: dict[str, str],
        tokenized: dict[str, tuple[list[Token], list[tuple[int, int]]]],
        dateline_city: int | None,
    ) -> None:
        """Mentions of a capital by the word: "la capitale argentine", "here in the capital"."""
        data = self.data
        if data is None or not data.capital_words:
            return
        g = self.g
        for field_name, (tokens, _) in tokenized.items():
            text = fields[field_name]
            for i, token in enumerate(tokens):
                if token.key not in data.capital_words or token.capitalized or i == 0:
                    continue
                if tokens[i - 1].key not in data.capital_determiners:
                    continue
                # "Santiago, la capitale chilienne": an apposition describes the name before it.
                if text[: tokens[i - 1].start].rstrip().endswith(","):
                    continue
                code = self._capital_country(tokens, i, dateline_city, field_name)
                city = g.capitals.get(code) if code else None
                if city is None:
                    continue
                self.mentions.append(
                    Mention(
                        field_name,
                        tokens[i - 1].start,
                        token.end,
                        token.sentence,
                        code or "",
                        city,
                        "capital",
                        i,
                    )
                )

    def _capital_country(
        self, tokens: list[Token], i: int, dateline_city: int | None, field_name: str
    ) -> str | None:
        data = self.data
        assert data is not None
        g = self.g
        sentence = tokens[i].sentence
        if i >= 3 and any(t.key in data.here for t in tokens[max(0, i - 3) : i - 1]):
            return g.city_country[dateline_city] if dateline_city is not None else None
        following = tokens[i + 1 : i + 4]
        if following and following[0].key in data.demonyms:
            return data.demonyms[following[0].key]
        if len(following) >= 2 and following[0].key in data.of:
            for n in (3, 2, 1):
                key = " ".join(t.key for t in following[1 : 1 + n])
                code = g.country_of_key(key)
                if code:
                    return code
        position = tokens[i].start
        in_sentence = [
            (abs(start - position), code)
            for code, kind, start, where in self.named
            if kind == "name"
            and where == field_name
            and any(t.start == start and t.sentence == sentence for t in tokens)
        ]
        if in_sentence:
            return min(in_sentence)[1]
        if (
            dateline_city is not None
            and g.capitals.get(g.city_country[dateline_city]) == dateline_city
        ):
            return g.city_country[dateline_city]
        return None


def _title_case(title: str) -> bool:
    """Whether a title capitalises its words ("China and Western Envoys Clash at U.N.")."""
    words = [w for w in _WORD.findall(title) if len(w) > 3]
    return len(words) >= 3 and sum(w[0].isupper() for w in words) > 0.6 * len(words)


def read_places(
    title: str,
    text: str,
    language: str | None,
    outlet_country: str | None,
    g: Gazetteer | None = None,
) -> PlaceReading:
    """The countries and cities an article names (see the module docstring for the rules)."""
    g = g or gazetteer()
    return _Reader(g, g.language(language), outlet_country).read(title, text)
