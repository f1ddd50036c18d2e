"""Our language detection is langdetect's: the same n-grams, the same random draws, the same
probabilities to the last bit, so the same ``(language, probability)`` on any text."""

from __future__ import annotations

import multiprocessing
import random

import numpy as np
from langdetect import DetectorFactory, detector_factory
from langdetect.detector import Detector
from langdetect.lang_detect_exception import LangDetectException

from bench.corpus import build_corpus
from crawler.extraction import NotAnArticle, extract_article
from pipelines.language import _cleaned, _Draws, _factory, detect_language, warm_up
from tests.support.articles import fixture_articles

ODD_TEXTS = [
    "",
    "   ",
    "2024 12 31 15:30 +33 1 23 45 67 89",
    "...!?;:—«»",
    "Montréal",
    "Le commissariat chinois the police station la comisaría",
    "À Ærø, Œuvre, ÇA VA? çà et là: naïve façade, Größe, smørrebrød, ¿qué? ¡sí! 50 € ½ ° ×",
    "L'ONU et l'OTAN: la NASA, le FBI, PARIS ET MADRID, EU, UE, USA — AbCdE fGhIj",
    "“Quoted” ‘text’ – with… general punctuation • and ‰ ‹signs›",
    "東京都 北京 臺灣 中国 서울 カタカナ ひらがな ㄅㄆㄇ 漢字",
    "Tie\u0301ng Vi\u00ea\u0323t co\u0301 da\u0302\u0301u, ạ ế ỗ ự",
    "Știri din România: țară, școală, Ș Ț",
    "فارسی یک ی مرحبا بالعالم",
    "Привет мир, Україна, Γειά σου Κόσμε, שלום, नमस्ते",
    "Москва — столица России, крупнейший по численности населения город страны.",
    "Москва (Moscow, Moskau) — столица России, крупнейший по численности населения город",
    "Write to press@example.org or see https://example.org/a?b=c#d and www.example.org",
    "a  b   c\t\td\n\ne\u00a0f",
    "som",  # a trial of this one reaches langdetect's iteration limit
    "e",
    "Hola hello bonjour ciao hallo olá",
]


def _generated_articles(count: int) -> list[tuple[str, str]]:
    base_url = "http://127.0.0.1:1"
    found = []
    for path, html in build_corpus(count, 1, base_url).article_pages():
        result = extract_article(html, base_url + path)
        assert not isinstance(result, NotAnArticle), path
        found.append((result.title, result.text))
    return found


def _langdetect(text: str) -> Detector:
    """langdetect's own detector with ``text`` appended, from its own profiles."""
    detector_factory.init_factory()
    detector = detector_factory._factory.create()
    detector.append(text)
    return detector


def test_ngrams_are_the_ones_langdetect_extracts():
    detector = _factory()
    gram_of_row = list(detector.rows)
    long_text = " ".join(text for _, text in _generated_articles(20))
    assert len(long_text) > 10_000  # langdetect reads the first 10,000 characters
    for text in [*ODD_TEXTS, long_text]:
        theirs = _langdetect(text)
        theirs.cleaning_text()
        ours = detector.ngram_rows(_cleaned(text))
        assert [gram_of_row[row] for row in ours] == theirs._extract_ngrams(), text[:60]


def test_random_draws_are_the_seeded_generators():
    for n in (1, 2, 3, 7, 1000, 1024, 1025, 30_000):
        generator = random.Random(DetectorFactory.seed)
        draws = _Draws(n)
        for used in (1, 40, 17, 1001, 25, 1001, 1001):  # past the first words scanned
            assert draws.gauss() == generator.gauss(0.0, 1.0)
            looked_ahead = draws.below(max(used, 40)).tolist()
            assert looked_ahead[:used] == [generator.choice(range(n)) for _ in range(used)], n
            draws.keep(used)


def test_answers_are_langdetects_on_articles_and_odd_texts():
    articles = fixture_articles() + _generated_articles(60)
    assert len(articles) > 70
    cases = [(title, text, sample) for title, text in articles for sample in (40, 600, 2000)]
    cases += [("", text, 600) for text in ODD_TEXTS] + [("Titre", "", 600), ("", "", 600)]
    long_text = " ".join(text for _, text in articles)
    cases.append(("A long one", long_text, len(long_text)))
    detector = _factory()
    languages = set()
    for title, text, sample in cases:
        sampled = f"{title}\n{text[:sample]}"
        theirs = _langdetect(sampled)
        try:
            best = theirs.get_probabilities()
        except LangDetectException:  # no n-gram at all
            assert detect_language(title, text, sample) == ("und", 0.0), sampled
            continue
        expected = (best[0].lang, round(best[0].prob, 4)) if best else ("und", 0.0)
        assert detect_language(title, text, sample) == expected, sampled[:80]
        ours = detector.probabilities(detector.ngram_rows(_cleaned(sampled)))
        assert np.array_equal(ours, theirs.langprob), sampled[:80]
        languages.add(expected[0])
    assert {"fr", "en", "es", "ja", "ru"} <= languages


def test_a_worker_process_warmed_up_at_start_gives_the_same_answers():
    articles = fixture_articles()[:5] + [("", text) for text in ODD_TEXTS]
    with multiprocessing.get_context("spawn").Pool(1, initializer=warm_up) as pool:
        in_worker = pool.starmap(detect_language, articles)
    assert in_worker == [detect_language(title, text) for title, text in articles]
