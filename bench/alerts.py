"""Alert matching cost per article as the number of rules grows: 100, 1,000, 10,000 rules.

    VEILLE_ES_URL=$(scripts/es-local start) python -m bench.alerts [--articles 1000] [--repeat 2]

Builds ``--articles`` French and English articles about the shipped topic (each also names a few
people and places drawn from a list of 3,000 made-up names) and 10,000 keyword rules of the
shapes analysts write (``"Name One" OR (Name AND police)``, ``RCMP AND "Name" NOT Name``, …)
over the same names, so that each article matches a handful of rules, not all of them. For each
rule count the first N rules are synced into the percolator index (``alerts.percolator``) and
the articles are percolated in batches of ``--batch`` (as ``alerts.matching`` does); the table
gives the best of ``--repeat`` runs: milliseconds per article, matches found, and the ratio to
the 100-rule cost. Goal: at most 3x from 100 to 10,000 rules.

What is measured is the percolator of the cluster at ``VEILLE_ES_URL``. Elasticsearch's module
pre-selects candidate queries by the terms of the documents, so its cost grows slowly with the
rule count; the local node of ``scripts/es-local`` has a stand-in percolator
(``scripts/es/src/main/java/veille/es/LocalPercolatorPlugin.java``) that evaluates every query
for every batch, so there the cost grows with the rule count, and the goal can only be checked
against a cluster with the real module (``docker compose``).
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from alerts.percolator import percolate, sync_rules
from alerts.rules import AlertRule, RuleSet
from veille.core.article import Article, SourceRef
from veille.core.config import Environment
from veille.core.es import IndexNames, delete_indices, make_client, setup_indices

SIZES = (100, 1_000, 10_000)
SYLLABLES = ["ka", "lo", "mi", "ran", "te", "vo", "zu", "shen", "li", "ar", "do", "ne", "qi", "so"]
FRENCH = [
    "La GRC enquête sur un poste de police chinois clandestin à {place}.",
    "Selon Safeguard Defenders, {person} aurait été approché par des agents de Pékin.",
    "Le ministère de la Sécurité publique dément toute activité policière à {place}.",
    "Des militants dénoncent une répression transnationale visant {person}.",
]
ENGLISH = [
    "The RCMP is investigating a secret Chinese police station in {place}.",
    "According to Safeguard Defenders, {person} was approached by agents of Beijing.",
    "Officials in {place} deny any police activity by the Ministry of Public Security.",
    "Activists denounce transnational repression targeting {person}.",
]


def names(count: int, rng: random.Random) -> list[str]:
    made: set[str] = set()
    while len(made) < count:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        made.add(word.capitalize())
    return sorted(made)


def make_articles(count: int, people: list[str], rng: random.Random) -> list[dict]:
    documents = []
    for number in range(count):
        french = number % 2 == 0
        lines = FRENCH if french else ENGLISH
        text = " ".join(
            rng.choice(lines).format(
                place=rng.choice(people), person=f"{rng.choice(people)} {rng.choice(people)}"
            )
            for _ in range(8)
        )
        url = f"https://{'fr' if french else 'en'}.example.org/{number}"
        article = Article(
            url=url,
            canonical_url=url,
            source=SourceRef("bench", "example.org", "CA"),
            title=text.split(".")[0],
            text=text,
            language="fr" if french else "en",
            relevance={"score": 6.0},
            published_at=datetime(2025, 3, 1, tzinfo=UTC),
        )
        documents.append(article.to_document())
    return documents


def make_rules(count: int, people: list[str], rng: random.Random) -> list[AlertRule]:
    shapes = [
        '"{a} {b}" OR ({c} AND police)',
        'RCMP AND "{a} {b}" NOT {c}',
        '({a} OR {b}) AND ("police station" OR commissariat) AND {c}',
        '"{a} {b}"',
    ]
    rules = []
    for number in range(count):
        a, b, c = rng.sample(people, 3)
        rules.append(
            AlertRule(
                name=f"rule-{number:05d}",
                query=rng.choice(shapes).format(a=a, b=b, c=c),
                languages=rng.choice([[], ["fr"], ["en"], ["fr", "en"]]),
                recipients=[f"analyst{number % 50}@example.org"],
            )
        )
    return rules


def run(client, index: str, documents: list[dict], batch: int) -> tuple[float, int]:
    started = time.perf_counter()
    found = 0
    for start in range(0, len(documents), batch):
        found += sum(1 for _ in percolate(client, index, documents[start : start + batch]))
    return time.perf_counter() - started, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()

    rng = random.Random(options.seed)
    people = names(3000, rng)
    documents = make_articles(options.articles, people, rng)
    all_rules = make_rules(max(SIZES), people, rng)

    env = Environment.from_env()
    client = make_client(env, request_timeout=600)
    prefix = f"bench-alerts-{uuid.uuid4().hex[:6]}"
    info = client.info()["version"]
    print(
        f"cluster {env.es_url} (Elasticsearch {info['number']}); {options.articles} articles, "
        f"batches of {options.batch}, best of {options.repeat}"
    )
    print(f"{'rules':>7} {'ms/article':>11} {'matches':>8} {'vs 100':>7}")
    try:
        setup_indices(client, prefix)
        index = IndexNames(prefix).alerts
        baseline = None
        for size in SIZES:
            rules = RuleSet(Path("bench"), tuple(all_rules[:size]))
            sync_rules(client, index, rules, datetime.now(UTC))
            runs = [run(client, index, documents, options.batch) for _ in range(options.repeat)]
            seconds, found = min(runs)
            per_article = seconds / len(documents) * 1000
            baseline = baseline or per_article
            print(f"{size:>7} {per_article:>11.2f} {found:>8} {per_article / baseline:>6.1f}x")
    finally:
        delete_indices(client, prefix)
        client.close()


if __name__ == "__main__":
    main()
