"""The speed-ups change nothing a user sees: same languages, same stems, same indexed articles."""

from __future__ import annotations

import json

import lxml.html
import pytest
from langdetect import detect_langs

from bench.corpus import build_corpus
from crawler.extraction import NotAnArticle, extract_article
from pipelines.language import detect_language
from tests.support.articles import fixture_articles, fixture_pages
from tests.support.runner import FAST_CRAWL, clean_env, run_veille, write_config
from veille.core.es import IndexNames
from veille.core.languages import LANGUAGES
from veille.core.textmatch import _term, analyze, tokens


def test_fast_language_detection_gives_langdetect_own_answers():
    articles = fixture_articles()
    articles += [("Breve", "Le commissariat chinois de Montréal a fermé."), ("x", "the")]
    assert len(articles) > 10
    for sample in (40, 600, 2000):
        for title, text in articles:
            expected = detect_langs(f"{title}\n{text[:sample]}")[0]
            assert detect_language(title, text, sample) == (
                expected.lang,
                round(expected.prob, 4),
            )


def test_cached_terms_are_the_analysis_chain_terms():
    text = "Les commissariats chinois ouverts à Montréal; las comisarías; police stations"
    for language in LANGUAGES.values():
        expected = [_term(token.lower(), language) for token, _, _ in tokens(text)]
        assert analyze(text, language.code) == expected, language.code
        assert analyze(text, language.code) == expected  # second time from the cache


def test_synthetic_corpus_is_news_sized_deterministic_and_in_three_languages():
    corpus = build_corpus(60, seed=7, base_url="http://127.0.0.1:9")
    again = build_corpus(60, seed=7, base_url="http://127.0.0.1:9")
    assert corpus.pages == again.pages
    for spec, (path, html) in zip(corpus.articles, corpus.article_pages(), strict=True):
        assert 30_000 <= len(html) <= 90_000, path
        assert lxml.html.fromstring(html).get("lang") == spec.language
        result = extract_article(html, "http://127.0.0.1:9" + path)
        assert not isinstance(result, NotAnArticle), path
        assert result.title == spec.title
        assert 400 <= result.word_count <= 1000
        assert detect_language(result.title, result.text)[0] == spec.language
    assert {spec.language for spec in corpus.articles} == {"fr", "en", "es"}
    assert 0.3 < sum(spec.on_topic for spec in corpus.articles) / 60 < 0.7


@pytest.mark.slow
def test_extraction_in_worker_processes_indexes_what_in_process_extraction_indexes(
    sites, es_url, tmp_path
):
    from veille.core.config import Environment
    from veille.core.es import delete_indices, make_client

    indexed = {}
    for processes in ("0", "2"):
        prefix = f"vt-perf-{processes}-{tmp_path.name[-8:]}".lower()
        env = clean_env(
            VEILLE_ES_URL=es_url,
            VEILLE_INDEX_PREFIX=prefix,
            VEILLE_DATA_DIR=str(tmp_path / processes / "data"),
            VEILLE_CONFIG=str(write_config(tmp_path / processes / "config", sites)),
            VEILLE_TRANSLATION="false",
        )
        client = make_client(Environment(es_url=es_url, index_prefix=prefix))
        try:
            done = run_veille(
                "crawl", "--all", "--json", *FAST_CRAWL,
                "--set", f"VEILLE_EXTRACT_PROCESSES={processes}", env=env,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            summary = json.loads(done.stdout)[0]
            # A bulk request refused by a busy Elasticsearch sends its articles to the spool:
            # compared here is what each crawl stored, once the spool is replayed.
            replayed = run_veille("spool", "replay", env=env)
            assert replayed.returncode == 0, replayed.stderr
            index = IndexNames(prefix).articles
            client.indices.refresh(index=index)
            hits = client.search(index=index, size=500, query={"match_all": {}})["hits"]["hits"]
            indexed[processes] = {
                hit["_source"]["canonical_url"]: (
                    hit["_source"]["title"],
                    hit["_source"]["text"],
                    hit["_source"]["language"],
                )
                for hit in hits
            }
            assert summary["extracted"] > 0
            assert summary["indexed"] + summary["spooled"] == len(hits)
        finally:
            delete_indices(client, prefix)
            client.close()
    assert indexed["0"] and indexed["0"] == indexed["2"]


def test_worker_text_work_is_what_the_normalize_and_language_stages_do():
    from crawler.extraction_worker import extract_page
    from pipelines.normalize import content_hash, tidy

    compared = 0
    for path in fixture_pages():
        body = path.read_bytes().decode("utf-8", "replace")
        url = f"http://127.0.0.1/{path}"
        plain, worked = extract_article(body, url), extract_page(body, url)
        if isinstance(plain, NotAnArticle):
            assert worked == plain
            continue
        title, text = tidy(plain.title), tidy(plain.text)
        assert (worked.title, worked.text) == (title, text)
        assert worked.content_hash == content_hash(title, text)
        assert (worked.language, worked.language_confidence) == detect_language(title, text)
        compared += 1
    assert compared > 10


MAIN_SCRIPT = """
import sys
from pathlib import Path

# Top-level code: runs again in any process that re-imports this file as its main module.
with open(sys.argv[1] if __name__ == "__main__" else {marker!r}, "a") as marker:
    marker.write(__name__ + "\\n")

if __name__ == "__main__":
    import asyncio
    from crawler.extraction import ExtractionOptions
    from crawler.extraction_pool import ExtractionPool

    first = ExtractionPool.shared(2, ExtractionOptions())
    second = ExtractionPool.shared(2, ExtractionOptions())
    assert first is second
    page = Path(sys.argv[2]).read_text(encoding="utf-8")
    result, _ = first.run_blocking(
        __import__("crawler.extraction_worker").extraction_worker.extract_page,
        page, "http://127.0.0.1/a.html", size=len(page),
    )
    first.close()
    print("open after one close:", bool(first.worker_pids()))
    second.close()
    print("open after both:", bool(first.worker_pids()))
    print("language:", result.language)
"""


def test_extraction_workers_start_ready_without_the_crawl_main_module(tmp_path):
    import subprocess
    import sys

    from tests.support.runner import ROOT

    marker = tmp_path / "imports.txt"
    script = tmp_path / "crawl_main.py"
    script.write_text(MAIN_SCRIPT.format(marker=str(marker)), encoding="utf-8")
    page = next(
        path
        for path in fixture_pages()
        if not isinstance(extract_article(path.read_bytes(), "http://127.0.0.1/"), NotAnArticle)
    )
    done = subprocess.run(
        [sys.executable, str(script), str(marker), str(page)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**clean_env(), "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "open after one close: True" in done.stdout
    assert "open after both: False" in done.stdout
    assert "language: " in done.stdout and "language: None" not in done.stdout
    # Only the crawl process itself ran the main module: no worker re-imported it.
    assert marker.read_text(encoding="utf-8").splitlines() == ["__main__"]


def test_extraction_keeps_trafilaturas_own_metadata_and_body():
    """One parse, and only the metadata work whose result is stored: the same fields as
    trafilatura's full ``bare_extraction(with_metadata=True)`` on the same page."""
    import trafilatura

    from crawler.extraction import _metadata, parse_datetime

    base_url = "http://127.0.0.1:9"
    pages = [(f"http://127.0.0.1/{path}", path.read_bytes()) for path in fixture_pages()]
    pages += [
        (base_url + path, html)
        for path, html in build_corpus(30, seed=11, base_url=base_url).article_pages()
    ]
    compared = 0
    for url, body in pages:
        result = extract_article(body, url)
        if isinstance(result, NotAnArticle):
            continue
        tree = lxml.html.fromstring(body)
        own = _metadata(tree, url)  # the page's own canonical URL, time and JSON-LD authors
        full = trafilatura.bare_extraction(
            tree, url=url, with_metadata=True, include_comments=False
        )
        title = full.title.strip()
        text = full.text.strip().removeprefix(title).lstrip()
        assert (result.title, result.text) == (title, text), url
        assert result.description == (full.description or None), url
        assert result.site_name == (full.sitename or None), url
        assert result.image == (full.image or None), url
        authors = [a.strip() for a in (full.author or "").split(";") if a.strip()]
        assert result.authors == (own.get("authors") or authors), url
        assert result.published_at == (own.get("published_at") or parse_datetime(full.date)), url
        compared += 1
    assert compared > 40


def test_outlets_served_as_sites_announce_one_feed_of_all_their_articles():
    import re
    import urllib.request

    from bench.server import CorpusServer

    corpus = build_corpus(45, seed=3)
    with CorpusServer(45, seed=3, sites=True) as server:
        site = server.site_urls["el-atalaya"]
        home = urllib.request.urlopen(site + "/", timeout=10).read().decode()
        assert 'type="application/rss+xml"' in home and 'href="/feed.xml"' in home
        feed = urllib.request.urlopen(site + "/feed.xml", timeout=10).read().decode()
        links = re.findall(r"<link>([^<]+\.html)</link>", feed)
        mine = [spec.path for spec in corpus.articles if spec.outlet == "el-atalaya"]
        assert links == [site + path for path in mine]
        page = urllib.request.urlopen(links[0], timeout=10).read()
        assert page == corpus.pages[mine[0]][1]


def test_body_f1_rewards_the_article_body_and_penalises_the_page_around_it():
    from bench.extraction import body_f1

    corpus = build_corpus(12, seed=5, base_url="http://127.0.0.1:9")
    for path, html in corpus.article_pages():
        truth = corpus.truth[path]
        extracted = extract_article(html, "http://127.0.0.1:9" + path)
        assert body_f1(extracted.text, truth) > 0.99
        whole_page = lxml.html.fromstring(html).text_content()
        assert body_f1(whole_page, truth) < 0.8
    assert body_f1(None, "Un texte.") == 0.0


def test_pinned_length_translator_outputs_as_many_pieces_as_it_reads(tmp_path):
    import zipfile

    import ctranslate2
    import sentencepiece as spm

    from bench.translate import PinnedLength
    from tests.support.tiny_argos import build_tiny_model

    archive = build_tiny_model(tmp_path)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path / "package")
    folder = next((tmp_path / "package").iterdir())
    pieces = spm.SentencePieceProcessor(model_file=str(folder / "sentencepiece.model"))
    translator = PinnedLength(ctranslate2.Translator(str(folder / "model")))
    sentences = [
        "La GRC enquête sur deux commissariats chinois à Montréal.",
        "Qui finance ces associations ?",
        "Les pratiquants du Falun Gong dénoncent une répression transnationale.",
        "Qui finance ces associations ?",
    ]
    source = [pieces.encode(s, out_type=str) for s in sentences]
    results = translator.translate_batch(source, beam_size=2, return_scores=True)
    assert [len(r.hypotheses[0]) for r in results] == [len(tokens) for tokens in source]
    assert results[1].hypotheses == results[3].hypotheses
