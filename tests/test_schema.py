"""One Article schema: every field the code stores is mapped, with the right analyzers."""

from veille.core.article import STORED_FIELDS
from veille.core.es import load_template


def test_every_article_field_is_mapped():
    mapped = load_template("articles", "x")["template"]["mappings"]["properties"]
    missing = [name for name in STORED_FIELDS if name not in mapped]
    assert missing == []


def test_language_fields_use_language_analyzers():
    mapped = load_template("articles", "x")["template"]["mappings"]["properties"]
    for language in ("fr", "en", "es"):
        analyzer = f"veille_{language}"
        assert mapped[f"text_{language}"]["analyzer"] == analyzer
        assert mapped[f"title_{language}"]["analyzer"] == analyzer
        assert mapped["translation"]["properties"][language]["properties"]["text"]["analyzer"] == (
            analyzer
        )


def test_documents_travel_to_elasticsearch_and_back_unchanged(es, index_prefix):
    """The client's faster JSON encoding stores and returns what the standard library would."""
    import datetime

    import numpy as np
    from elasticsearch.serializer import JsonSerializer

    from veille.core.es import FastJsonSerializer, IndexNames, setup_indices

    setup_indices(es, index_prefix)
    index = IndexNames(index_prefix).articles
    when = datetime.datetime(2026, 11, 27, 8, 30, tzinfo=datetime.UTC)
    document = {
        "title": "Comisarías «de servicio» chinas: ¿qué sabemos?",
        "text": "Ligne 1\nLigne 2 — 12 % des « commissariats » 🚓",
        "published_at": when,
        "word_count": np.int64(412),
        "minhash": {"bands": ["00-ab", "01-cd"], "shingles": 10},
    }
    es.index(index=index, id="round-trip", document=document, refresh=True)
    stored = es.get(index=index, id="round-trip")["_source"]
    assert stored["title"] == document["title"] and stored["text"] == document["text"]
    assert stored["published_at"] == when.isoformat() and stored["word_count"] == 412
    found = es.msearch(searches=[{"index": index}, {"query": {"ids": {"values": ["round-trip"]}}}])
    assert found["responses"][0]["hits"]["hits"][0]["_source"] == stored
    # What orjson refuses (a lone surrogate) is encoded by the standard library, as before.
    odd = {"text": "broken \ud800 half", "n": 2**70}
    assert FastJsonSerializer().dumps(odd) == JsonSerializer().dumps(odd)


def test_an_index_from_an_earlier_mapping_is_named_with_what_to_do(es, index_prefix):
    """Relevance became an object and the language fields changed analyzers: an index made
    before cannot take the new mapping, and setup says so instead of a raw refusal."""
    import pytest

    from veille.core.es import MappingConflict, setup_indices

    prefix = f"{index_prefix}-old"  # the module's fixture deletes it with its own indices
    old = f"{prefix}-articles"
    es.indices.create(
        index=f"{old}-000001",
        aliases={old: {"is_write_index": True}},
        mappings={"properties": {"relevance": {"type": "float"}}},
    )
    with pytest.raises(MappingConflict) as caught:
        setup_indices(es, prefix)
    assert str(caught.value).startswith(f"{old}: its indices were created by an earlier Veille")
    assert "VEILLE_INDEX_PREFIX" in str(caught.value)
