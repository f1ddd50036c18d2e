"""The query language: what a query means, what a broken one says, how Python evaluates it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veille.core.query import (
    AllOf,
    AnyOf,
    Near,
    Not,
    Query,
    QuerySyntaxError,
    Term,
    parse,
    problems,
    to_elasticsearch,
)
from veille.core.textmatch import _COMMON_TEXT, _COMMON_TOKEN, _TOKEN, StemIndex


def doc(text: str, language: str = "en", title: str = "") -> dict[str, StemIndex]:
    return {"title": StemIndex(title, language), "text": StemIndex(text, language)}


def matches(query: str, text: str, language: str = "en", title: str = "") -> bool:
    return Query(query, language).matches(doc(text, language, title))


def test_near_binds_tighter_than_not_and_and_than_or():
    node = parse("a OR b c NEAR/3 d NOT e")
    assert isinstance(node, AnyOf)
    first, second = node.children
    assert first == Term("a", False, 1)
    assert isinstance(second, AllOf)
    b, near, exclusion = second.children
    assert b.text == "b" and isinstance(near, Near) and near.distance == 3
    assert [t.text for t in near.left] == ["c"] and [t.text for t in near.right] == ["d"]
    assert isinstance(exclusion, Not)
    _, exclusion = parse("x NOT a NEAR/2 b").children
    assert isinstance(exclusion, Not) and isinstance(exclusion.child, Near)


def test_near_sides_are_words_phrases_or_groups_of_them():
    node = parse('("police station" OR commissariat) NEAR/8 (Chinese OR China)')
    assert isinstance(node, Near)
    assert [str(t) for t in node.left] == ['"police station"', "commissariat"]
    assert str(node) == '("police station" OR commissariat) NEAR/8 (Chinese OR China)'


def test_minus_and_bar_are_not_and_or():
    assert parse("police -china") == parse("police NOT china")
    assert parse("police | station") == parse("police OR station")
    assert parse("Saint-Denis") == Term("Saint-Denis", False, 1)


@pytest.mark.parametrize(
    ("query", "position", "says"),
    [
        ('"police station AND RCMP', 1, "unterminated quote"),
        ("police NEAR/5 NOT china", 15, "NOT inside NEAR"),
        ("(a AND b) NEAR/5 c", 11, "AND inside NEAR"),
        ("a NEAR/5 b NEAR/5 c", 12, "one NEAR per pair"),
        ("police near/5 china", 8, "write NEAR/n in capitals"),
        ("police NEAR china", 8, "write NEAR/n in capitals"),
        ("NOT china", 1, "only excludes"),
        ("(police OR china", 1, "never closed"),
        ("police OR", 10, "ends where a word"),
        ("", 1, "empty"),
    ],
)
def test_a_broken_query_says_where_and_what(query, position, says):
    with pytest.raises(QuerySyntaxError) as caught:
        parse(query)
    assert caught.value.position == position
    assert says in caught.value.reason
    assert str(caught.value).startswith(f"at character {position}: ")


def test_groups_stand_for_their_query_only_when_given():
    groups = {"china": parse("China OR Chinese")}
    node = parse("police NEAR/5 @china", groups)
    assert isinstance(node, Near) and str(node) == "police NEAR/5 @china"
    assert [t.text for t in node.right] == ["China", "Chinese"]
    with pytest.raises(QuerySyntaxError, match="no group @chine"):
        parse("@chine", groups)
    assert parse("@SafeguardDefend") == Term("@SafeguardDefend", False, 1)


def test_words_match_on_stems_with_accents_folded():
    assert matches("station", "Two Chinese police stations.")
    assert matches("comisaría", "Las comisarías chinas.", "es")
    assert matches('"répression transnationale"', "La répression transnationale.", "fr")
    assert matches("Pekín", "Una delegación de Pekin llegó.", "es")
    assert not matches("station", "The stationary car.")


def test_a_phrase_keeps_its_stop_words_places():
    assert matches('"poste de police"', "Les postes de police chinois.", "fr")
    assert matches('"poste de police"', "Le poste, la police.", "fr")  # any stop word fits
    assert not matches('"poste de police"', "Le poste de la police.", "fr")
    assert matches('"the police station"', "They met at a police station.")


def test_near_counts_the_words_between_in_either_order_within_one_field():
    text = "police x x station and, later, station y y y y police"
    assert matches("police NEAR/2 station", text)
    assert matches("station NEAR/2 police", "station y police")
    assert not matches("police NEAR/1 station", "police x x station")
    assert not matches("police NEAR/5 station", "station", title="police")
    assert matches("police AND station", "station", title="police")


def test_not_excludes_the_article():
    assert not matches('police NOT "Chinese checkers"', "Police played Chinese checkers.")
    assert matches('police NOT "Chinese checkers"', "Police played chess.")


def test_hits_say_where_the_positive_parts_matched():
    index = doc("The office, a secret police station, closed. No tourist came.")
    query = Query('(secret NEAR/2 "police station") NOT tourism', "en")
    (hit,) = query.hits(index)
    start, end = index["text"].offsets(hit.first, hit.last)
    assert index["text"].text[start:end] == "secret police station"


def test_evidence_of_a_miss_says_what_was_found_and_how_far():
    index = doc("The police said it. Many paragraphs later, far away, the station.")
    (near,) = Query("police NEAR/3 station", "en").evidence(index)
    assert not near.found and "words apart" in near.detail


def test_a_phrase_of_stop_words_and_one_word_is_reported():
    assert problems(parse('"à l\'étranger" OR police'), "fr") == [
        (
            1,
            "\"à l'étranger\" is the one word 'etrang' to the index: its other words are stop "
            "words, which are not indexed; write that word alone or a longer phrase",
        )
    ]
    assert problems(parse('"the"'), "en")[0][1].startswith('"the" holds only stop words')
    assert "on both sides of NEAR" in problems(parse("police NEAR/3 police"), "en")[0][1]


def test_elasticsearch_gets_intervals_over_every_field():
    query = to_elasticsearch('"police station" NEAR/4 (China OR Chinese)', {"title": 3, "text": 1})
    title, text = query["bool"]["should"]
    assert title == {
        "intervals": {
            "title": {
                "all_of": {
                    "intervals": [
                        {"match": {"query": "police station", "max_gaps": 0, "ordered": True}},
                        {
                            "any_of": {
                                "intervals": [
                                    {"match": {"query": "China", "max_gaps": 0, "ordered": True}},
                                    {
                                        "match": {
                                            "query": "Chinese",
                                            "max_gaps": 0,
                                            "ordered": True,
                                        }
                                    },
                                ]
                            }
                        },
                    ],
                    "max_gaps": 4,
                    "ordered": False,
                },
                "boost": 3,
            }
        }
    }
    assert "boost" not in text["intervals"]["text"]
    assert to_elasticsearch("a -b", ["text"]) == {
        "bool": {
            "must": [
                {"intervals": {"text": {"match": {"query": "a", "max_gaps": 0, "ordered": True}}}}
            ],
            "must_not": [
                {"intervals": {"text": {"match": {"query": "b", "max_gaps": 0, "ordered": True}}}}
            ],
        }
    }


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="aZé Ç9_0'’‘‚.:·,;-–—«»“”„…€°§¿¡£ \u00a0\u2009œßĳ", max_size=40))
def test_the_fast_tokenizer_of_common_text_agrees_with_the_full_one(text):
    """Latin text takes a faster pattern; it must cut every such text as the full one does."""
    assert _COMMON_TEXT.fullmatch(text)
    assert _COMMON_TOKEN.findall(text) == _TOKEN.findall(text)
