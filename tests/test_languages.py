"""The language registry (veille/core/languages.py) is the only place that knows a language.

Two proofs: a copy of the project with one more registry entry (Portuguese) gets that language
everywhere — mappings, search fields, config checks, discovery, the crawl's language list — and a
real Elasticsearch accepts its index templates; and no code outside the registry (and the place
and event readers, which have per-language data files of their own) names a language.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys

from tests.support.runner import ROOT
from veille.core.config import Environment
from veille.core.es import delete_indices, load_template, make_client, setup_indices
from veille.core.languages import LANGUAGES

# Code that reads places and events per language from data of its own (inflection rules, list
# words, veille/core/places_data/<code>.yaml). A language without such data gets no places or
# events.
PLACE_AND_EVENT_READERS = {
    "veille/core/gazetteer.py",
    "veille/core/places.py",
    "veille/core/events.py",
}
CODE_FOLDERS = ("veille", "crawler", "pipelines", "alerts")

PORTUGUESE = """
LANGUAGES["pt"] = Language(
    "pt",
    "Portuguese",
    "Portuguese",
    "_portuguese_",
    _words("a o os as de do da dos das em no na nos nas um uma e que para com por"),
    google_country="PT",
    abbreviations=_words("exmo exma"),
)
"""

PROBE = r"""
import json
from alerts.query import KEYWORD_FIELDS
from crawler.settings import VEILLE_LANGUAGES
from veille.core.article import Article, SourceRef
from veille.core.config import Environment, load_config
from crawler.discovery import google_edition, search_url
from veille.core.es import load_template, make_client, setup_indices, delete_indices
from veille.core.search import HIGHLIGHT_FIELDS, SEARCH_FIELDS
from veille.core.textmatch import analyze
from veille.core.translation import split_sentences
from datetime import timedelta
import sys

articles = load_template("articles", "x")["template"]
alerts = load_template("alerts", "x")["template"]
article = Article(url="https://e.pt/a", canonical_url="https://e.pt/a", title="Esquadras",
                  text="As esquadras chinesas", source=SourceRef(name="s", domain="e.pt"),
                  language="pt")
config = load_config(sys.argv[1])
client = make_client(Environment(es_url=sys.argv[2], index_prefix=sys.argv[3]))
try:
    created = setup_indices(client, sys.argv[3])
    tokens = client.indices.analyze(index=sys.argv[3] + "-articles", analyzer="veille_pt",
                                    text="As esquadras chinesas")["tokens"]
finally:
    delete_indices(client, sys.argv[3])
print(json.dumps({
    "mapped": articles["mappings"]["properties"]["text_pt"],
    "translation": articles["mappings"]["properties"]["translation"]["properties"]["pt"],
    "analyzer": "veille_pt" in articles["settings"]["analysis"]["analyzer"],
    "alerts_mapped": alerts["mappings"]["properties"]["title_pt"],
    "search": "title_pt" in SEARCH_FIELDS and "translation.pt.text" in SEARCH_FIELDS,
    "keywords": "text_pt" in KEYWORD_FIELDS,
    "highlight": "text_pt" in HIGHLIGHT_FIELDS,
    "document": article.to_document().get("text_pt"),
    "crawl_languages": VEILLE_LANGUAGES,
    "topic_languages": sorted(config.topics[0].languages),
    "source_language": config.sources[0].language,
    "google": google_edition("pt", None),
    "gdelt": search_url("https://api.gdeltproject.org/api/v2/doc/doc", "x", "pt", None,
                        timedelta(hours=1)),
    "python_terms": analyze("As esquadras chinesas", "pt"),
    "index_terms": [token["token"] for token in tokens],
    "sentences": split_sentences("O Exmo. Senhor falou. Depois saiu."),
    "registry": __import__("veille.core.languages").core.languages.__file__,
}))
"""


def test_a_new_language_needs_only_its_registry_entry(tmp_path, es_url):
    copy = tmp_path / "project"
    for folder in (*CODE_FOLDERS, "index_config"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
    registry = copy / "veille" / "core" / "languages.py"
    registry.write_text(registry.read_text(encoding="utf-8") + PORTUGUESE, encoding="utf-8")
    config = tmp_path / "config"
    (config / "topics").mkdir(parents=True)
    (config / "sources.yaml").write_text(
        "sources:\n  - {name: publico, urls: 'https://e.pt/rss', language: pt}\n", "utf-8"
    )
    (config / "topics" / "t.yaml").write_text(
        "name: t\ntitle: T\nlanguages:\n  pt: {rules: {station: '\"esquadra chinesa\"'}}\n",
        "utf-8",
    )
    prefix = f"vt-pt-{tmp_path.name[-8:].lower()}"
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(config), es_url, prefix],
        capture_output=True, text=True, cwd=copy, timeout=300, check=False,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert found["registry"] == str(registry), "the copy is the project that ran"
    assert found["mapped"] == {"type": "text", "analyzer": "veille_pt"}
    assert found["translation"]["properties"]["text"]["analyzer"] == "veille_pt"
    assert found["analyzer"] and found["alerts_mapped"]["analyzer"] == "veille_pt"
    assert found["search"] and found["keywords"] and found["highlight"]
    assert found["document"] == "As esquadras chinesas"
    assert "pt" in found["crawl_languages"]
    assert found["topic_languages"] == ["pt"] and found["source_language"] == "pt"
    assert found["google"] == {"hl": "pt", "gl": "PT", "ceid": "PT:pt"}
    assert found["gdelt"].endswith("sourcelang:portuguese")
    assert found["python_terms"] == [None, *found["index_terms"]], "Python analyses as the index"
    assert found["sentences"] == ["O Exmo. Senhor falou.", "Depois saiu."]


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.add(id(value))
    return found


def _language_words() -> re.Pattern[str]:
    codes = "|".join(LANGUAGES)
    names = "|".join(
        name for language in LANGUAGES.values() for name in (language.name, language.gdelt)
    )
    return re.compile(
        rf"^(?:{codes}|{names})$|(?:title|text)_(?:{codes})\b|translation\.(?:{codes})\b"
        rf"|\b(?:{'|'.join(language.name for language in LANGUAGES.values())})\b"
    )


def test_no_code_outside_the_registry_names_a_language():
    """Strings in code (docstrings and comments aside), the index templates, the Kibana objects
    and the Dockerfile name no language code, language name or per-language field."""
    words = _language_words()
    named = []
    for folder in CODE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            where = str(path.relative_to(ROOT))
            if where == "veille/core/languages.py" or where in PLACE_AND_EVENT_READERS:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = _docstrings(tree)
            named += [
                f"{where}:{node.lineno}: {node.value!r}"
                for node in ast.walk(tree)
                if isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and words.search(node.value)
            ]
    quoted = re.compile(
        rf"\"(?:{'|'.join(LANGUAGES)})\"|(?:title|text)_(?:{'|'.join(LANGUAGES)})\b"
    )
    templates = [
        *(ROOT / "index_config").rglob("*.json"),
        *(ROOT / "index_config").rglob("*.ndjson"),
    ]
    for path in sorted([*templates, ROOT / "Dockerfile"]):
        text = path.read_text(encoding="utf-8")
        named += [f"{path.relative_to(ROOT)}: {m.group()!r}" for m in quoted.finditer(text)]
        named += [
            f"{path.relative_to(ROOT)}: {m.group()!r}"
            for m in re.finditer(rf"translation\.(?:{'|'.join(LANGUAGES)})\.", text)
        ]
    assert named == [], "ask veille/core/languages.py instead"


def test_the_image_installs_a_model_for_every_language_but_the_pivot():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"veille models install --all\b", dockerfile)
    help_text = subprocess.run(
        [sys.executable, "-m", "veille.cli", "models", "install", "--help"],
        capture_output=True, text=True, cwd=ROOT, check=True, env={"COLUMNS": "100", "PATH": ""},
    ).stdout  # fmt: skip
    assert "--all" in help_text and "veille/core/languages.py" in help_text


def test_setup_gives_existing_indices_a_new_languages_analyzers(es_url, tmp_path):
    """Indices created before Italian and German were added take their analyzers and fields at
    the next ``veille setup``, keep their articles, and find Italian by its stem."""
    prefix = f"vt-up-{tmp_path.name[-8:].lower()}"
    client = make_client(Environment(es_url=es_url, index_prefix=prefix))
    try:
        for name in ("articles", "alerts"):
            body = load_template(name, prefix)
            _without_italian_and_german(body["template"])
            alias = f"{prefix}-{name}"
            client.indices.put_index_template(name=alias, **body)
            client.indices.create(
                index=f"{alias}-000001", aliases={alias: {"is_write_index": True}}
            )
        articles = f"{prefix}-articles"
        client.index(index=articles, id="fr", document={"language": "fr", "title_fr": "Les postes"})

        assert setup_indices(client, prefix)[articles] == "updated"

        client.index(index=articles, id="it", refresh=True,
                     document={"language": "it", "text_it": "I commissariati cinesi"})  # fmt: skip
        found = client.search(index=articles, query={"match": {"text_it": "commissariato"}})
        assert [hit["_id"] for hit in found["hits"]["hits"]] == ["it"]
        assert client.count(index=articles)["count"] == 2, "the earlier article is kept"
        alerts = client.indices.get_mapping(index=f"{prefix}-alerts")
        assert all("title_de" in m["mappings"]["properties"] for m in alerts.values())
    finally:
        delete_indices(client, prefix)
        client.close()


def _without_italian_and_german(template: dict) -> None:
    """A template as Veille wrote it before Italian and German were in the registry."""
    analysis = template["settings"]["analysis"]
    for section in ("analyzer", "filter"):
        analysis[section] = {
            name: spec
            for name, spec in analysis[section].items()
            if not name.startswith(("veille_it", "veille_de"))
        }
    properties = template["mappings"]["properties"]
    for code in ("it", "de"):
        properties.pop(f"title_{code}")
        properties.pop(f"text_{code}")
        properties["translation"]["properties"].pop(code)
