"""Microseconds per article for the relevance stage's judgement, rules against the weighted sum.

    python -m bench.relevance [--articles 300] [--repeat 5]

The rules side is what the relevance stage does for each article: :meth:`TopicJudge.judge` on
its title and text (both analysed, every rule of the article's language evaluated, and for a
kept article the places the deciding rule matched), with the shipped topic and with ten topics
(the shipped one under ten names), and the analysis alone (the two stem indexes every judgement
starts with). "rules + closest" is the judgement while dropped articles are kept
(``VEILLE_REJECTED_KEEP``, the default): for an article no rule keeps, the rule it came closest
to, stored with it in ``<prefix>-rejected``; only articles no rule keeps pay for it, so it is
also measured on those alone. The baseline, measured in the same run on the same articles, is
the weighted sum the stage computed before rules (bench/fixtures/weighted-topic.yaml, the topic
file of that time, and its scorer below), with one topic and with ten.

Texts are ``--articles`` synthetic articles (``bench.corpus``, about half on topic), extracted as
the crawl does, then the labelled relevance set (tests/fixtures/relevance). CPU time
(``time.process_time``) is measured in rounds alternating the sides; the best of ``--repeat``
rounds counts. Both sides keep their stem caches warm, as a crawl does.
"""

from __future__ import annotations

import argparse
import re
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import snowballstemmer
import yaml

from bench.corpus import build_corpus
from crawler.extraction import NotAnArticle, extract_article
from veille.core.config import load_config
from veille.core.textmatch import StemIndex
from veille.core.topics import TopicJudge
from veille.ops.topic_eval import LABELLED_SET, load_labelled

ROOT = Path(__file__).resolve().parent.parent
WEIGHTED_TOPIC = Path(__file__).resolve().parent / "fixtures" / "weighted-topic.yaml"

# --- The weighted sum, as the relevance stage computed it before rules ----------------------
_WORD = re.compile(r"\w+")
_NAMES = {"fr": "french", "en": "english", "es": "spanish"}
_STEMMERS = {code: snowballstemmer.stemmer(name) for code, name in _NAMES.items()}
_STEMS: dict[str, dict[str, str]] = defaultdict(dict)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _stems(text: str, language: str) -> list[str]:
    words = _WORD.findall(text.casefold())
    known = _STEMS[language]
    for word in set(words).difference(known):
        known[word] = _fold(_STEMMERS[language].stemWord(word))
    return list(map(known.__getitem__, words))


class _WeightedIndex:
    def __init__(self, text: str, language: str) -> None:
        self.language = language
        self.sequence = _stems(text, language)
        self.positions: dict[str, list[int]] = defaultdict(list)
        for position, stem in enumerate(self.sequence):
            self.positions[stem].append(position)

    def count(self, phrase: str) -> int:
        wanted = _stems(phrase, self.language)
        first, rest = wanted[0], wanted[1:]
        return sum(
            1
            for start in self.positions.get(first, ())
            if self.sequence[start + 1 : start + 1 + len(rest)] == rest
        )


def weighted_keep(topics: list[dict], title: str, text: str, language: str) -> bool:
    """Whether one topic's weighted sum reaches its min_score (the old stage's decision)."""
    titles, texts = _WeightedIndex(title, language), _WeightedIndex(text, language)
    kept = False
    for topic in topics:
        per_language = topic["languages"].get(language, {})
        if any(titles.count(p) or texts.count(p) for p in per_language.get("exclude", ())):
            continue
        score = 0.0
        for term in [*per_language.get("terms", ()), *topic["any_language"]]:
            in_title, in_text = titles.count(term["term"]), texts.count(term["term"])
            if in_title + in_text:
                repeats = min(in_title + in_text - 1, 5)
                score += term["weight"] * (1 + 0.5 * bool(in_title)) * (1 + 0.1 * repeats)
        kept = kept or score >= topic["min_score"]
    return kept


# --- Measuring ------------------------------------------------------------------------------


def best(work: Callable[[], None], repeat: int) -> float:
    rounds = []
    for _ in range(repeat):
        start = time.process_time()
        work()
        rounds.append(time.process_time() - start)
    return min(rounds)


def _articles(count: int) -> list[tuple[str, str, str]]:
    corpus = build_corpus(count, 2022, "http://127.0.0.1:1")
    found = []
    for spec, (path, body) in zip(corpus.articles, corpus.article_pages(), strict=True):
        result = extract_article(body, "http://127.0.0.1:1" + path)
        if not isinstance(result, NotAnArticle):
            found.append((result.title, result.text, spec.language))
    found += [(a.title, a.text, a.language) for a in load_labelled(LABELLED_SET)]
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.relevance")
    parser.add_argument("--articles", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    articles = _articles(args.articles)
    shipped = load_config(ROOT / "config").topics
    ten = [t.model_copy(update={"name": f"{t.name}-{n}"}) for n in range(10) for t in shipped]
    weighted = yaml.safe_load(WEIGHTED_TOPIC.read_text(encoding="utf-8"))
    weighted_ten = [weighted] * 10
    judges = {"rules, shipped topic": TopicJudge(shipped), "rules, 10 topics": TopicJudge(ten)}

    shipped_judge = judges["rules, shipped topic"]
    dropped = [article for article in articles if not shipped_judge.judge(*article).relevant]

    def rules(
        judge: TopicJudge, closest: bool = False, chosen: list[tuple[str, str, str]] = articles
    ) -> Callable[[], None]:
        return lambda: [
            judge.judge(title, text, language, closest=closest) for title, text, language in chosen
        ]

    def sums(topics: list[dict]) -> Callable[[], None]:
        return lambda: [weighted_keep(topics, *article) for article in articles]

    def analysis() -> None:
        for title, text, language in articles:
            StemIndex(title, language), StemIndex(text, language)

    sides = {
        "analysis alone (rules' share)": analysis,
        "weighted sum, shipped topic": sums([weighted]),
        "weighted sum, 10 topics": sums(weighted_ten),
        **{name: rules(judge) for name, judge in judges.items()},
        "rules + closest, shipped topic": rules(shipped_judge, closest=True),
    }
    # Only an article no rule keeps pays for the closest rule: measured on those alone too.
    on_dropped = {
        "rules + closest, dropped only": rules(shipped_judge, closest=True, chosen=dropped),
        "rules, dropped only": rules(shipped_judge, chosen=dropped),
    }
    for work in (*sides.values(), *on_dropped.values()):  # warm the caches, compile the rules
        work()
    seconds = {name: best(work, args.repeat) for name, work in sides.items()}
    seconds_dropped = {name: best(work, args.repeat) for name, work in on_dropped.items()}
    kept = len(articles) - len(dropped)
    print(f"{len(articles)} articles ({kept} on topic by the rules), best of {args.repeat} rounds")
    for name, spent in seconds.items():
        print(f"  {name:<30} {spent / len(articles) * 1e6:8.0f} µs per article")
    for name, spent in seconds_dropped.items():
        print(f"  {name:<30} {spent / len(dropped) * 1e6:8.0f} µs per dropped article")
    for count in ("shipped topic", "10 topics"):
        ratio = seconds[f"rules, {count}"] / seconds[f"weighted sum, {count}"]
        print(f"  rules / weighted sum, {count:<14} {ratio:8.2f}")
    ratio = seconds["rules + closest, shipped topic"] / seconds["rules, shipped topic"]
    print(f"  rules + closest / rules, shipped    {ratio:8.2f}")
    closest, plain = seconds_dropped.values()
    print(f"  rules + closest / rules, dropped    {closest / plain:8.2f}")


if __name__ == "__main__":
    main()
