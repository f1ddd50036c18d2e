"""Places, authorities, actions and stations read from articles: the traps the issue names, and
the shipped rules on the labelled set (tests/fixtures/stations) against their targets."""

from __future__ import annotations

import pytest
from scrapy.utils.test import get_crawler

from veille.article import Article, SourceRef
from veille.config import load_config
from veille.events import EventRules, read_events
from veille.gazetteer import gazetteer
from veille.places import read_places
from veille.station_commands import DEFAULT_LABELLED
from veille.station_eval import evaluate, load_labelled

TARGET = 0.9


@pytest.fixture(scope="module")
def g():
    return gazetteer()


@pytest.fixture(scope="module")
def rules():
    return EventRules.from_topics(load_config().topics)


def cities(g, title: str, text: str, language: str, outlet: str | None) -> set[tuple[str, str]]:
    reading = read_places(title, text, language, outlet, g)
    return {(g.city_name[c], g.city_country[c]) for c in reading.cities}


def stations(g, rules, text: str, language: str, outlet: str, title: str = "") -> set[str]:
    reading = read_places(title, text, language, outlet, g)
    return {
        s["name"] for s in read_events(title, text, language, reading, rules, g, outlet).stations
    }


def test_the_labelled_set_has_station_and_trap_articles_in_three_languages():
    labelled = load_labelled(DEFAULT_LABELLED)
    kinds = [item["kind"] for _, item in labelled]
    assert kinds.count("station") >= 20 and kinds.count("trap") >= 15
    assert {item["language"] for _, item in labelled} == {"fr", "en", "es"}


def test_the_shipped_rules_hold_their_targets_on_the_labelled_set(g, rules):
    result = evaluate(load_labelled(DEFAULT_LABELLED), rules, g)
    assert not result.unknown
    for name, score in result.scores.items():
        assert score.precision >= TARGET and score.recall >= TARGET, (name, score)
    assert result.trap_stations == 0


def test_paris_texas_and_paris_in_france_are_two_cities(g):
    text = ("She grew up in Paris, Texas, and spoke at a conference in Paris last month, "
            "where the United States and France sent envoys.")  # fmt: skip
    assert cities(g, "", text, "en", "US") == {("Paris", "US"), ("Paris", "FR")}


@pytest.mark.parametrize(
    ("language", "text", "outlet", "city"),
    [
        ("fr", "VALENCE (Espagne) — L'association de Valence reçoit.", "BE", ("Valencia", "ES")),
        ("fr", "VALENCE — Une conférence à Valence, préfecture de la Drôme, en France.", "FR",
         ("Valence", "FR")),
        ("es", "La tienda está en Valencia, la capital del estado Carabobo, en Venezuela.", "CO",
         ("Valencia", "VE")),
        ("es", "CÓRDOBA — En la Universidad Nacional de Córdoba, en la Argentina.", "AR",
         ("Córdoba", "AR")),
        ("fr", "KINGSTON (Ontario) — Une étudiante de Kingston témoigne.", "CA",
         ("Kingston", "CA")),
    ],
)  # fmt: skip
def test_an_ambiguous_name_is_the_city_its_qualifier_dateline_or_countries_say(
    g, language, text, outlet, city
):
    assert city in cities(g, "", text, language, outlet)


def test_ordinary_words_and_names_of_people_are_not_cities(g):
    text = ('READING — "Nice people, she said." Split between fear and anger, he kept posting. '
            "His flatmate, Florence Adeyemi, said so. Hope is not a strategy.")  # fmt: skip
    assert cities(g, "", text, "en", "GB") == {("Reading", "GB")}
    assert cities(g, "", "Les opérateurs comme Orange attendent.", "fr", "FR") == set()


def test_a_region_of_the_outlets_country_is_not_a_city_abroad(g):
    text = "A community leader from Victoria and a student from Perth, Western Australia, spoke."
    assert cities(g, "", text, "en", "AU") == {("Perth", "AU")}
    assert ("Victoria", "CA") in cities(g, "", "Calls rose in Victoria, B.C.", "en", "CA")


def test_nationality_words_name_countries_but_languages_do_not(g):
    assert read_places("", "They help with French classes.", "en", "CA", g).countries == []
    assert read_places("", "The French intelligence service visited.", "en", "CA", g).countries == [
        "FR"
    ]
    assert read_places("", "Habla un español con acento venezolano.", "es", "CO", g).countries == [
        "VE"
    ]
    assert read_places("", "Le gouvernement néerlandais a réagi.", "fr", "BE", g).countries == [
        "NL"
    ]


def test_places_carry_coordinates_and_how_often_they_are_named(g):
    reading = read_places("", "In Dublin, a Dublin office closed. Dublin again.", "en", "IE", g)
    (dublin,) = reading.places(g)
    assert dublin["name"] == "Dublin" and dublin["country"] == "IE" and dublin["mentions"] == 3
    assert (
        abs(dublin["location"]["lat"] - 53.33) < 0.1 and abs(dublin["location"]["lon"] + 6.25) < 0.1
    )


def test_a_passing_mention_or_the_dateline_creates_no_station(g, rules):
    text = ("GENEVA — Beijing said the reports of Chinese police stations were fabrications. "
            "In Washington, the State Department disagreed.")  # fmt: skip
    assert stations(g, rules, text, "en", "US") == set()


def test_a_station_is_where_the_station_words_place_it(g, rules):
    text = ("DUBLIN — The government ordered a Chinese police outpost in Cork to close, and "
            "researchers listed offices in Madrid, Barcelona and Valencia.")  # fmt: skip
    assert stations(g, rules, text, "en", "IE") == {"Cork", "Madrid", "Barcelona", "Valencia"}


def test_no_station_where_the_article_says_there_is_none(g, rules):
    for text, language in [
        ("The embassy said there were no Chinese police stations anywhere in Canada.", "en"),
        ("She asked whether the so-called Chinese police stations existed in London.", "en"),
        ("Fedpol n'a identifié aucune antenne policière chinoise en Suisse.", "fr"),
        ("El informe cita comisarías chinas en 53 naciones, pero no menciona ninguna en México.",
         "es"),
    ]:  # fmt: skip
        assert stations(g, rules, text, language, "GB") == set(), text


def test_actions_keep_their_sentence_and_a_negation_undoes_one(g, rules):
    text = ("The RCMP opened an investigation into a Chinese police outpost in Toronto. "
            "No arrests have been made.")  # fmt: skip
    reading = read_places("", text, "en", "CA", g)
    events = read_events("", text, "en", reading, rules, g, "CA")
    assert events.actions == ["reported", "investigation"]
    assert events.authorities == ["RCMP"]
    evidence = {e["action"]: e["sentence"] for e in events.evidence}
    assert evidence["investigation"].startswith("The RCMP opened an investigation")
    (toronto,) = events.stations
    assert toronto["actions"] == ["reported", "investigation"]


def test_a_generic_body_is_the_one_of_the_country_the_sentence_is_about(g, rules):
    text = ("China's foreign ministry dismissed the vote. In the Netherlands, the Dutch foreign "
            "ministry ordered both offices shut.")  # fmt: skip
    reading = read_places("", text, "en", "BE", g)
    events = read_events("", text, "en", reading, rules, g, "BE")
    assert {"Chinese Ministry of Foreign Affairs", "Dutch Ministry of Foreign Affairs"} <= set(
        events.authorities
    )


def test_the_pivot_translation_is_a_second_chance_for_places():
    from pipelines.places import PlacesStage

    crawler = get_crawler(settings_dict={"VEILLE_GAZETTEER_MIN_POPULATION": 5000,
                                         "VEILLE_PIVOT": "en"})  # fmt: skip
    stage = PlacesStage.from_crawler(crawler)
    article = Article(
        url="https://example.org/a", canonical_url="https://example.org/a",
        source=SourceRef("outlet", "example.org", "DE"), title="Ein Büro", text="Nichts hier.",
        language="de",
        translation={"en": {"title": "An office",
                            "text": "A Chinese police outpost in Rotterdam."}},
    )  # fmt: skip
    stage.process_item(article)
    assert [p["name"] for p in article.places] == ["Rotterdam"]
    assert crawler.stats.get_value("veille/places/from_translation") == 1


def test_the_gazetteer_cache_is_under_the_data_folder_unless_named(tmp_path, monkeypatch):
    from veille.config import Environment

    monkeypatch.setenv("VEILLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("VEILLE_GAZETTEER_DIR", raising=False)
    assert Environment.from_env().gazetteer_dir == tmp_path / "data" / "gazetteer"
    monkeypatch.setenv("VEILLE_GAZETTEER_DIR", str(tmp_path / "shared"))
    assert Environment.from_env().gazetteer_dir == tmp_path / "shared"
