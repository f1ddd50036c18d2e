"""A French article translated later by the backfill gets its pivot sketch, so later articles in
other languages link to it.

Real Elasticsearch, the tiny genuine Argos model (tests/support/tiny_argos.py, gibberish but
deterministic translations), ``StoryClusters`` as the crawl's cluster stage runs it, and
``translate_pending`` as ``veille translate --pending`` runs it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.tiny_argos import build_tiny_model, install_tiny_model, use_package_dir
from tests.test_clusters import fresh_prefix
from veille.core.article import Article, SourceRef, utcnow
from veille.core.clusters import Assignment, ClusterSettings, StoryClusters
from veille.core.es import IndexNames
from veille.core.translation import TranslationEngine
from veille.ops.backfill import translate_pending

pytestmark = pytest.mark.slow

FRENCH_TEXT = (
    "La Gendarmerie royale enquête sur deux centres communautaires de Montréal soupçonnés "
    "d'abriter des commissariats clandestins. Selon l'organisation Safeguard Defenders, "
    "cent deux postes surveillent la diaspora chinoise dans plusieurs pays occidentaux.\n\n"
    "Les responsables des associations affirment organiser seulement des activités "
    "culturelles et refusent toute collaboration avec les autorités policières de Pékin."
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("argos-build"))


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model: Path) -> TranslationEngine:
    use_package_dir(monkeypatch, tmp_path / "argos-packages")
    install_tiny_model(tiny_model)
    return TranslationEngine()


def _article(name: str, language: str, title: str, text: str) -> Article:
    url = f"https://{name}.example/montreal-stations"
    return Article(
        url=url, canonical_url=url, source=SourceRef(name, f"{name}.example"), title=title,
        text=text, language=language, published_at=utcnow(),
    )  # fmt: skip


def _crawl(es, names: IndexNames, article: Article) -> Assignment:
    """Cluster and index one article as the crawl does."""
    found = StoryClusters(es, names.articles, names.clusters).assign(article)
    es.index(index=names.articles, id=article.id, document=article.to_document(), refresh=True)
    return found


def test_backfilled_article_is_sketched_and_a_later_english_version_links_to_it(
    es, index_prefix, engine
):
    names = IndexNames(fresh_prefix(es, index_prefix))
    french = _article("le-veilleur", "fr", "Des commissariats chinois à Montréal", FRENCH_TEXT)
    french.translation_status = "pending"
    _crawl(es, names, french)
    assert not es.get(index=names.articles, id=french.id)["_source"]["minhash_pivot"]

    report = translate_pending(es, names.articles, engine, clusters=ClusterSettings())

    assert report.done == 1
    doc = es.get(index=names.articles, id=french.id)["_source"]
    assert doc["translation_status"] == "done"
    translated = replace(french, translation=doc["translation"])
    StoryClusters(es, names.articles, names.clusters).sketch(translated)
    assert translated.minhash_pivot["bands"], "the translation has words to sketch"
    assert doc["minhash_pivot"] == translated.minhash_pivot
    assert doc["cluster_id"] == french.id, "the backfill assigns no cluster"

    text = doc["translation"]["en"]["text"]
    english = _article("northern-ledger", "en", "Chinese police stations in Montreal", text)
    found = _crawl(es, names, english)

    assert (found.kind, found.linked_to) == ("cross_language", french.id)
    linked = es.get(index=names.articles, id=english.id)["_source"]
    assert linked["cluster_id"] == french.id
    assert linked.get("duplicate_of") is None
