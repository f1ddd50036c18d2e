"""Topic relevance: rules decide, broad words never decide alone, and each decision says why."""

from __future__ import annotations

import pytest

from tests.support.runner import ROOT
from veille.core.config import load_config
from veille.core.topics import TopicJudge


@pytest.fixture(scope="module")
def judge() -> TopicJudge:
    return TopicJudge(load_config(ROOT / "config").topics)


@pytest.mark.parametrize(
    ("language", "text", "rule"),
    [
        ("fr", "Deux commissariats chinois auraient opéré à Montréal.", "fr/station-names"),
        ("es", "Se investigan las comisarías chinas de Madrid.", "es/station-names"),
        ("en", "Two Chinese police stations were reported in Toronto.", "en/station-names"),
        ("fr", "Le rapport « 110 Overseas » a été publié mardi.", "any/110-overseas"),
        ("es", "Según Safeguard Defenders, hay nueve en España.", "any/safeguard-defenders"),
    ],
)
def test_a_strong_name_or_phrase_alone_decides_in_any_inflection(judge, language, text, rule):
    decision = judge.judge("", text, language)
    assert decision.relevant
    assert rule in decision.matched_rules


@pytest.mark.parametrize(
    ("language", "title", "text"),
    [
        (
            "en",
            "Beijing hits canola with tariffs as Shanghai police target e-bikes",
            "China raised tariffs on Canadian canola on Tuesday. In Shanghai, Chinese police "
            "began a three-month campaign against e-bike riders, and health officials said the "
            "outbreak in Guangdong was under control. A Chinese investor bought the port.",
        ),
        (
            "fr",
            "Pékin frappe le cognac, la police chinoise traque les vélos électriques",
            "La Chine impose des droits antidumping sur le cognac. À Shanghai, la police "
            "chinoise lance une campagne contre les livreurs, et les autorités sanitaires de "
            "Pékin assurent que l'épidémie de pneumonie est maîtrisée. Un groupe chinois "
            "rachète un château du Médoc.",
        ),
        (
            "es",
            "Pekín sube los aranceles y la policía china multa a los ciclistas",
            "China anunció aranceles al acero chileno. En Shanghái, la policía china multa a "
            "miles de repartidores, y las autoridades sanitarias de Pekín dicen que el brote de "
            "chikungunya está controlado. Una empresa china inaugura el puerto de Chancay.",
        ),
    ],
)
def test_a_china_story_not_about_repression_abroad_does_not_match(judge, language, title, text):
    decision = judge.judge(title, text, language)
    assert not decision.relevant, decision.summary()


def test_broad_words_count_only_next_to_the_words_that_make_the_topic(judge):
    """Chinese police abroad on a joint patrol, a police station nearby: not the topic. The
    same station called secret, run for Chinese police: the topic."""
    patrol = (
        "Chinese police officers patrolled Dubrovnik's old town with Croatian colleagues this "
        "summer, helping tourists. Lost passports were handled at the central police station."
    )
    assert not judge.judge("Joint patrols", patrol, "en").relevant
    secret = "Investigators say the office was a secret police station run for Chinese police."
    decision = judge.judge("Dublin", secret, "en")
    assert decision.relevant and decision.best.rule == "en/hidden-station"


def test_a_decision_says_which_rule_matched_and_where(judge):
    title = "Un Tibétain de Vevey témoigne"
    text = (
        "Il vit en Suisse depuis 2009. Sa sœur a été convoquée par la police à Lhassa après "
        "une manifestation à Genève. L'ambassade de Chine dément toute pression sur la diaspora."
    )
    decision = judge.judge(title, text, "fr")
    relevance = decision.relevance()
    assert relevance["topic"] == "overseas-police-stations"
    assert relevance["rule"] == decision.best.rule and relevance["rule"] in relevance["rules"]
    assert relevance["score"] >= 1
    fields = {"title": title, "text": text}
    for match in relevance["matches"]:
        assert fields[match["field"]][match["start"] : match["end"]] == match["text"]
    assert any("sœur a été convoquée" in match["text"] for match in relevance["matches"])


def test_an_off_topic_decision_names_the_rule_it_came_closest_to(judge):
    text = (
        "Chinese students in Lyon say they were harassed. The university opened an inquiry and "
        "the mayor condemned the insults shouted at them near the campus."
    )
    assert judge.judge("Students", text, "en").closest is None  # the crawl does not ask
    decision = judge.judge("Students", text, "en", closest=True)
    assert not decision.relevant
    assert decision.closest is not None and decision.closest.closeness > 0
    assert "closest" in decision.summary()
    explained = judge.judge("Students", text, "en", explain=True)
    assert any(item.found for item in explained.closest.evidence)
