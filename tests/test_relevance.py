"""Topic relevance: terms match across inflections in French, English and Spanish."""

from __future__ import annotations

import pytest

from pipelines.relevance import score_topic
from tests.support.runner import ROOT
from veille.config import load_config
from veille.textmatch import StemIndex


@pytest.fixture(scope="module")
def topic():
    return next(t for t in load_config(ROOT / "config").topics)


def score(topic, language: str, title: str, text: str):
    return score_topic(topic, language, StemIndex(title, language), StemIndex(text, language))


@pytest.mark.parametrize(
    ("language", "term", "text"),
    [
        ("fr", "commissariat chinois", "Deux commissariats chinois auraient opéré à Montréal."),
        ("es", "comisaría china", "Se investigan las comisarías chinas de Madrid."),
        ("en", "Chinese police station", "Two Chinese police stations were reported."),
        ("fr", "répression transnationale", "La répression transnationale inquiète Ottawa."),
    ],
)
def test_inflected_forms_match(topic, language, term, text):
    result = score(topic, language, "", text)
    assert term in result.matched_terms


def test_on_topic_article_passes(topic):
    result = score(
        topic,
        "fr",
        "La GRC enquête sur des postes de police chinois clandestins",
        "Selon Safeguard Defenders, des commissariats chinois opèrent à l'étranger. "
        "La Chine dément toute répression transnationale.",
    )
    assert result.passes(topic.min_score)
    assert {"Safeguard Defenders", "répression transnationale"} <= set(result.matched_terms)


def test_local_police_story_is_off_topic(topic):
    result = score(
        topic,
        "fr",
        "Le commissariat de quartier rouvre ses portes",
        "Le commissariat du quartier Rosemont accueille de nouveau le public après travaux.",
    )
    assert not result.passes(topic.min_score)


def test_excluded_phrase_vetoes(topic):
    result = score(
        topic,
        "fr",
        "Le Commissariat à l'énergie atomique et la Chine",
        "Safeguard Defenders n'a rien à voir avec le Commissariat à l'énergie atomique.",
    )
    assert result.excluded_by == "Commissariat à l'énergie atomique"
    assert not result.passes(topic.min_score)


def test_phrase_counts_follow_stems_and_word_boundaries():
    text = StemIndex(
        "Police stations, a police station; the stationary police. Police police police", "en"
    )
    assert text.count("police station") == 2  # plural and singular, not across "stationary"
    assert text.count("station") == 2
    assert text.count("police") == 6
    assert text.count("police police") == 3  # overlapping occurrences each count
    assert text.count("station police") == 0
    assert StemIndex("comisarías y comisaría", "es").count("comisaría") == 2
    assert StemIndex("", "fr").count("commissariat") == 0
