"""Milliseconds per article: Veille's language detection against langdetect's own.

    python -m bench.language
    python -m bench.language --articles 300 --repeat 5

Both sides read the same texts: the title and the first 600 characters (the language stage's
default sample) of ``--articles`` synthetic articles (``bench.corpus``, French, English and
Spanish), extracted from their pages as the crawl extracts them. Loading the profiles and
extracting the pages are not timed; CPU time (``time.process_time``) is, in rounds that
alternate the sides, and the best round of ``--repeat`` counts (the machine may be shared).
Rows:

- ``langdetect``: ``detect_langs`` (seeded, as the stage seeds it), the baseline;
- ``veille, new words``: ``pipelines.language.detect_language`` with its cache of words' n-grams
  emptied before the round, so every word is cut into n-grams once, as for a crawl's new words;
- ``veille``: the same with the cache kept from the round before, as in a long crawl (the
  generated articles draw on a small vocabulary, so nearly every word is then cached).

The bench also checks that both sides give the same ``(language, probability)`` for every text.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from langdetect import detect_langs

from bench.corpus import build_corpus
from crawler.extraction import NotAnArticle, extract_article
from pipelines.language import DEFAULT_SAMPLE, _factory, detect_language, warm_up

BASE_URL = "http://127.0.0.1:1"


def article_texts(count: int) -> list[tuple[str, str]]:
    """``(title, text)`` of the generated articles, as extracted from their pages."""
    found = []
    for path, html in build_corpus(count, seed=1, base_url=BASE_URL).article_pages():
        result = extract_article(html, BASE_URL + path)
        if not isinstance(result, NotAnArticle):
            found.append((result.title, result.text))
    return found


def langdetect_answer(title: str, text: str) -> tuple[str, float]:
    best = detect_langs(f"{title}\n{text[:DEFAULT_SAMPLE]}")[0]
    return best.lang, round(best.prob, 4)


def veille_answer(title: str, text: str) -> tuple[str, float]:
    return detect_language(title, text, DEFAULT_SAMPLE)


def ms_per_article(detect: Callable, articles: list[tuple[str, str]]) -> float:
    started = time.process_time()
    for title, text in articles:
        detect(title, text)
    return (time.process_time() - started) * 1000 / len(articles)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best counts")
    args = parser.parse_args(argv)

    articles = article_texts(args.articles)
    warm_up()
    langdetect_answer("Veille", "loads langdetect's own profiles")
    same = sum(langdetect_answer(*a) == veille_answer(*a) for a in articles)

    best = {"langdetect": float("inf"), "veille, new words": float("inf"), "veille": float("inf")}
    for _ in range(args.repeat):
        best["langdetect"] = min(best["langdetect"], ms_per_article(langdetect_answer, articles))
        _factory().word_rows.cache_clear()
        for name in ("veille, new words", "veille"):
            best[name] = min(best[name], ms_per_article(veille_answer, articles))

    print(f"{len(articles)} articles, title + {DEFAULT_SAMPLE} characters, best of {args.repeat}")
    print(f"same (language, probability) as langdetect: {same}/{len(articles)}")
    print(f"{'':18} {'ms/article':>10} {'ratio':>6}")
    for name, ms in best.items():
        print(f"{name:18} {ms:10.3f} {best['langdetect'] / ms:5.1f}x")


if __name__ == "__main__":
    main()
