"""One Article schema: every field the code stores is mapped, with the right analyzers."""

from dataclasses import fields

from veille.article import Article
from veille.es import load_template


def test_every_article_field_is_mapped():
    mapped = load_template("articles", "x")["template"]["mappings"]["properties"]
    missing = [f.name for f in fields(Article) if f.name not in mapped]
    assert missing == []


def test_language_fields_use_language_analyzers():
    mapped = load_template("articles", "x")["template"]["mappings"]["properties"]
    for language, analyzer in (("fr", "french"), ("en", "english"), ("es", "spanish")):
        assert mapped[f"text_{language}"]["analyzer"] == analyzer
        assert mapped[f"title_{language}"]["analyzer"] == analyzer
        assert mapped["translation"]["properties"][language]["properties"]["text"]["analyzer"] == (
            analyzer
        )
