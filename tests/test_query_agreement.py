"""Python and Elasticsearch read the query language alike, on every fixture article.

The relevance set (tests/fixtures/relevance) and the fixture sites' articles are indexed into a
real Elasticsearch; every topic rule and the shipped alert queries are evaluated by both, and the
Python analysis chain is compared token by token with ``_analyze``.
"""

from __future__ import annotations

import unicodedata

import pytest
import yaml
from elasticsearch.helpers import bulk

from alerts.rules import load_rules
from crawler.extraction import Extracted, extract_article
from tests.support.runner import ROOT, SITES
from veille.core.asciifolding import FOLDING
from veille.core.config import load_config
from veille.core.es import IndexNames, load_template, setup_indices
from veille.core.languages import LANGUAGES, analysis_settings
from veille.core.query import Query, to_elasticsearch
from veille.core.textmatch import StemIndex, analyze_spans
from veille.core.topics import TopicJudge, topic_query
from veille.ops.topic_eval import LABELLED_SET, load_labelled

README_QUERIES = [
    '(RCMP OR "Royal Canadian Mounted Police") AND ("police station" OR Montreal) NOT Toronto',
    '"police station" NEAR/5 (Chinese OR China)',
    '(commissariat OR "poste de police") NEAR/10 (chinois OR Pékin) -Toronto',
    '"comisaría china" | "estación de policía"',
]


def _site_articles() -> list[dict]:
    manifest = yaml.safe_load((SITES / "manifest.yaml").read_text(encoding="utf-8"))
    found = []
    for page in manifest["pages"]:
        if page["kind"] != "article":
            continue
        body = (SITES / page["outlet"] / page["path"].lstrip("/")).read_bytes()
        extracted = extract_article(body, "http://127.0.0.1" + page["path"])
        assert isinstance(extracted, Extracted), page["path"]
        found.append({"id": page["path"], "language": page["language"],
                      "title": extracted.title, "text": extracted.text})  # fmt: skip
    return found


def _fixture_articles() -> list[dict]:
    labelled = [
        {"id": str(a.path.relative_to(LABELLED_SET)), "language": a.language, "title": a.title,
         "text": a.text}
        for a in load_labelled(LABELLED_SET)
    ]  # fmt: skip
    return labelled + _site_articles()


@pytest.fixture(scope="module")
def articles() -> list[dict]:
    found = _fixture_articles()
    assert len(found) >= 120 + 15
    return found


@pytest.fixture(scope="module")
def index(es_url, index_prefix, articles):
    from veille.core.config import Environment
    from veille.core.es import make_client

    client = make_client(Environment(es_url=es_url, index_prefix=index_prefix))
    setup_indices(client, index_prefix)
    name = IndexNames(index_prefix).articles
    actions = [
        {"_index": name, "_id": a["id"], "language": a["language"], "title": a["title"],
         "text": a["text"], f"title_{a['language']}": a["title"],
         f"text_{a['language']}": a["text"]}
        for a in articles
    ]  # fmt: skip
    bulk(client, actions, refresh="wait_for")
    yield client, name
    client.close()


def _code_points(text: str, utf16_offset: int) -> int:
    return len(text.encode("utf-16-le")[: 2 * utf16_offset].decode("utf-16-le"))


def test_the_index_analyzers_are_the_python_table():
    for template in ("articles", "alerts"):
        analysis = load_template(template, "x")["template"]["settings"]["analysis"]
        expected = analysis_settings()
        assert analysis["analyzer"] == expected["analyzer"], template
        assert analysis["filter"] == expected["filter"], template


def test_python_tokens_and_positions_are_elasticsearchs(index, articles):
    client, name = index
    for article in articles:
        language = article["language"]
        for field in ("title", "text"):
            text = article[field]
            tokens = client.indices.analyze(index=name, analyzer=f"veille_{language}", text=text)
            expected = [
                (t["token"], t["position"], _code_points(text, t["start_offset"]),
                 _code_points(text, t["end_offset"]))
                for t in tokens["tokens"]
            ]  # fmt: skip
            ours = [
                (term, position, start, end)
                for position, (term, start, end) in enumerate(analyze_spans(text, language))
                if term is not None
            ]
            assert ours == expected, f"{article['id']} {field}"


def test_the_folding_table_is_elasticsearchs(index):
    """Every character of the Basic Multilingual Plane Lucene's ASCII folding changes, and only
    those, are in the table, folded the same way."""
    client, _ = index
    characters = [
        chr(code)
        for code in range(0x80, 0x10000)
        if not 0xD800 <= code < 0xE000
        and not chr(code).isspace()
        and unicodedata.category(chr(code)) not in ("Cn", "Zs", "Zl", "Zp", "Cc")
    ]
    for start in range(0, len(characters), 5000):
        chunk = characters[start : start + 5000]
        tokens = client.indices.analyze(
            tokenizer="whitespace", filter=["asciifolding"], text=" ".join("x" + c for c in chunk)
        )["tokens"]
        assert len(tokens) == len(chunk)
        for character, token in zip(chunk, tokens, strict=True):
            assert FOLDING.get(ord(character), character) == token["token"][1:], hex(ord(character))


def _elasticsearch_ids(client, name: str, node, language: str) -> set[str]:
    query = {
        "bool": {
            "filter": [{"term": {"language": language}}],
            "must": [to_elasticsearch(node, LANGUAGES[language].fields)],
        }
    }
    hits = client.search(index=name, query=query, size=1000, source=False)["hits"]["hits"]
    return {hit["_id"] for hit in hits}


def _python_ids(query: Query, articles: list[dict], language: str) -> set[str]:
    return {
        a["id"]
        for a in articles
        if a["language"] == language
        and query.matches(
            {"title": StemIndex(a["title"], language), "text": StemIndex(a["text"], language)}
        )
    }


def test_every_topic_rule_decides_alike_in_python_and_elasticsearch(index, articles):
    client, name = index
    judge = TopicJudge(load_config(ROOT / "config").topics)
    compared = 0
    for language in LANGUAGES:
        for rule in judge.rules(language):
            python = _python_ids(rule.compiled, articles, language)
            elastic = _elasticsearch_ids(client, name, rule.compiled.node, language)
            assert python == elastic, f"{rule.topic} {rule.rule}: {sorted(python ^ elastic)}"
            compared += bool(python)
    assert compared >= 20, "most rules match some fixture article"


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_alert_queries_decide_alike_in_python_and_elasticsearch(index, articles, language):
    client, name = index
    queries = README_QUERIES + [r.query for r in load_rules(ROOT / "config").rules if r.query]
    for text in queries:
        query = Query(text, language)
        python = _python_ids(query, articles, language)
        assert python == _elasticsearch_ids(client, name, query.node, language), text


def test_percolated_alert_rules_see_the_same_matches(index):
    """A rule stored in the percolator index matches the document its query finds by search."""
    client, name = index
    alerts = name.replace("-articles", "-alerts")
    query = to_elasticsearch('"police station" NEAR/5 (Chinese OR China)', ["text_en", "title_en"])
    client.index(index=alerts, id="near-rule", document={"query": query}, refresh=True)
    document = {"language": "en", "title_en": "Dublin", "text_en": "China's secret police station"}
    hits = client.search(
        index=alerts, query={"percolate": {"field": "query", "document": document}}
    )
    assert [hit["_id"] for hit in hits["hits"]["hits"]] == ["near-rule"]
    far = {**document, "text_en": "China. " + "Word " * 12 + "A police station."}
    hits = client.search(index=alerts, query={"percolate": {"field": "query", "document": far}})
    assert hits["hits"]["hits"] == []


def test_a_topic_compiled_to_elasticsearch_finds_what_the_judge_keeps(index, articles):
    """The whole topic as one query (for re-judging stored articles) keeps the same articles."""
    client, name = index
    topics = load_config(ROOT / "config").topics
    judge = TopicJudge(topics)
    kept = {a["id"] for a in articles if judge.judge(a["title"], a["text"], a["language"]).relevant}
    query = topic_query(topics[0])
    hits = client.search(index=name, query=query, size=1000, source=False)["hits"]["hits"]
    assert {hit["_id"] for hit in hits} == kept
    assert len(kept) >= 30
