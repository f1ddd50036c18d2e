"""Sentences per second: Veille's translation engine against argostranslate's per-article path.

    python -m bench.translate --sentences 1000
    python -m bench.translate --real-size [--quick] [--json FILE]

Both sides translate the same French articles (``--sentences`` distinct sentences, about ten per
article, in paragraphs) with the same installed package: the tiny random-weight model from
tests/support/tiny_argos.py unless ``--package`` names a real ``.argosmodel`` (fr → en).
Loading the models is not timed. Rows:

- ``argostranslate per article`` (the baseline): argostranslate's own ``PackageTranslation``
  called once per article through ``ITranslation.translate()``, with argostranslate's defaults
  (``ARGOS_BEAM_SIZE`` 4, ``ARGOS_BATCH_SIZE`` 32 *tokens*, ``ARGOS_INTER_THREADS`` 1, compute
  type "auto" = the type the model was saved in, int8 for Argos index packages and the tiny
  model) except ``intra_threads``, which each table sets alike for both sides. It translates
  paragraph by paragraph (``apply_packaged_translation``). The one change: its sentencizer is
  replaced by Veille's offline ``split_sentences``, because the default, MiniSBD, downloads an
  ONNX model on first use and this machine is offline. Both sides so split sentences alike.
- ``veille, beam 4``: the engine with argostranslate's beam, to separate batching from beam.
- ``veille, defaults``: the engine with ``TranslationSettings()`` (beam 2, int8, batches of
  2048 tokens). Sentences from all articles go to one ``translate_batch`` call.

One table per ``--intra-threads`` value (default ``0,1``): 0 is both libraries' default and
lets CTranslate2 pick its thread count; on a small machine with a tiny model those threads
cost more in synchronisation than they save, which flatters the engine's batching, so the
``1`` table is the fairer comparison there.

The cache does not help the engine here: every sentence is distinct and each run starts with an
empty cache. ``--repeat N`` keeps the best of N runs (the machine may be shared).

With the tiny model the figures measure the pipeline around a very cheap network (tokenizing,
batching, beam search bookkeeping, thread synchronisation); a real Argos model (6 layers, 512
dimensions) spends far more time in the network itself, so its ratio will differ.

``--real-size``: the same comparison with a package of the Argos index's size (``bench/
translate_model.py``: 6+6 layers, d_model 512, FFN 2048, 8 heads, 50,000 SentencePiece pieces,
int8, random weights; built once under the bench's cache), ``--per-article`` 40 sentences (about
500 words), each library's default threads (``intra_threads`` 0) on this machine's cores, and
one row per path: argostranslate per article, Veille's engine with its defaults (argostranslate
translates one article at a time, so ``--baseline-articles`` of them measure its rate: with
``--quick`` 2 articles of 20 sentences against Veille's 8). Random weights
do not end a sentence where a trained model would, so every ``translate_batch`` call of both
paths goes through :class:`PinnedLength`: each output is exactly as long, in pieces, as its
input (CTranslate2's ``min_decoding_length`` and ``max_decoding_length``). Prints sentences/s,
articles/s, CPU seconds per 1,000 articles (this process, every thread), the time a day's
on-topic inflow takes (``--daily-articles`` a day, ``--on-topic-share`` of them on the topic,
``--translated-share`` of those not in English: stated assumptions, see ``--help``), and the
goal: Veille's engine ≥ 3× argostranslate's per-article path.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

GOAL = 3.0

SUBJECTS = [
    "La GRC",
    "La police néerlandaise",
    "Safeguard Defenders",
    "Le gouvernement du Québec",
    "L'ambassade de Chine",
    "Un porte-parole du ministère",
    "Des militants ouïghours",
    "Les pratiquants du Falun Gong",
    "Le bureau de sécurité publique de Fuzhou",
    "M. Trudeau",
    "Une enquêtrice de la GRC",
    "Le FBI",
]
VERBS = [
    "affirme que",
    "a confirmé que",
    "dément que",
    "rappelle que",
    "estime que",
    "soutient que",
]
CLAIMS = [
    "deux commissariats chinois ont fermé à {city}",
    "{n} postes de police clandestins surveillent la diaspora à {city}",
    "des centres communautaires de {city} servent de relais à Pékin",
    "l'enquête ouverte à {city} durera encore {n} mois",
    "{n} ressortissants ont été approchés à {city} depuis janvier",
    "les associations de {city} ont reçu {n}000 dollars de subventions",
    "des dissidents tibétains de {city} ont reçu {n} appels menaçants",
    "le réseau compte {n} antennes en Europe, dont une à {city}",
]
CITIES = [
    "Montréal",
    "Toronto",
    "Vancouver",
    "Amsterdam",
    "Rotterdam",
    "Madrid",
    "Barcelone",
    "New York",
    "Londres",
    "Paris",
    "Dublin",
    "Prague",
]


def make_articles(sentences: int, per_article: int = 10, seed: int = 2022) -> list[str]:
    """Distinct French news sentences, ``per_article`` to an article, 3 or 4 to a paragraph."""
    rng = random.Random(seed)
    seen: set[str] = set()
    ordered: list[str] = []
    while len(ordered) < sentences:
        claim = rng.choice(CLAIMS).format(city=rng.choice(CITIES), n=rng.randint(2, 400))
        sentence = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {claim}."
        if sentence not in seen:
            seen.add(sentence)
            ordered.append(sentence)
    articles = []
    for start in range(0, sentences, per_article):
        body = ordered[start : start + per_article]
        paragraphs, position = [], 0
        while position < len(body):
            size = rng.choice((3, 4))
            paragraphs.append(" ".join(body[position : position + size]))
            position += size
        articles.append("\n\n".join(paragraphs))
    return articles


def time_it(run: Callable[[], object], repeat: int = 1) -> float:
    """Best wall-clock time of ``repeat`` runs, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def argos_per_article(articles: list[str], intra_threads: int) -> Callable[[], object]:
    """The baseline: argostranslate's PackageTranslation, one article at a time (see above)."""
    from argostranslate import package, sbd, settings
    from argostranslate import translate as argos_translate

    from veille.core.translation import split_sentences

    class OfflineSentencizer(sbd.ISentenceBoundaryDetectionModel):
        def split_sentences(self, text: str) -> list[str]:
            return split_sentences(text)

    pkg = next(p for p in package.get_installed_packages() if p.from_code == "fr")
    translation = argos_translate.PackageTranslation(
        argos_translate.Language(pkg.from_code, pkg.from_name),
        argos_translate.Language(pkg.to_code, pkg.to_name),
        pkg,
    )
    translation.sentencizer = OfflineSentencizer()
    settings.intra_threads = intra_threads  # what ARGOS_INTRA_THREADS sets
    translation.translate(articles[0].split("\n")[0])  # loads the CTranslate2 model
    return lambda: [translation.translate(article) for article in articles]


class PinnedLength:
    """A CTranslate2 translator whose every output is as long as its input, in pieces.

    Wraps ``ctranslate2.Translator`` for the real-size model (random weights never end a
    sentence on their own). A ``translate_batch`` call is split by input length, and each group
    is decoded with ``min_decoding_length = max_decoding_length =`` that length. CTranslate2
    itself sorts a call's inputs by length before it cuts batches, so the split costs the
    batched path little; it makes its batches smaller, never larger.
    """

    def __init__(self, translator: Any) -> None:
        self._translator = translator

    def __getattr__(self, name: str) -> Any:
        return getattr(self._translator, name)

    def translate_batch(self, source: list[list[str]], **options: Any) -> list[Any]:
        groups: dict[int, list[int]] = {}
        for number, tokens in enumerate(source):
            groups.setdefault(len(tokens), []).append(number)
        prefix = options.pop("target_prefix", None)
        results: list[Any] = [None] * len(source)
        for length, numbers in groups.items():
            outputs = self._translator.translate_batch(
                [source[n] for n in numbers],
                target_prefix=[prefix[n] for n in numbers] if prefix else None,
                **{**options, "min_decoding_length": length, "max_decoding_length": length},
            )
            for number, output in zip(numbers, outputs, strict=True):
                results[number] = output
        return results


def pin_output_lengths() -> None:
    """Make every ``ctranslate2.Translator`` created from now on a :class:`PinnedLength`.

    Both argostranslate and Veille's engine create theirs as ``ctranslate2.Translator(...)``.
    """
    import ctranslate2

    plain = ctranslate2.Translator
    ctranslate2.Translator = lambda *args, **kwargs: PinnedLength(plain(*args, **kwargs))


def veille_engine(articles: list[str], **settings: int) -> Callable[[], object]:
    from veille.core.translation import TranslationEngine, TranslationSettings

    engine = TranslationEngine(TranslationSettings(**settings))
    if not engine.has_model("fr"):  # loads the CTranslate2 model
        raise SystemExit("no fr→en model installed")

    def run() -> object:
        engine.clear_cache()
        return engine.translate_documents([("fr", "", article) for article in articles])

    return run


def cpu_timed(run: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds (this process, every thread) of one run."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def real_size(args: argparse.Namespace) -> dict[str, Any]:
    """The real-size comparison (see the module docstring); figures and the goal."""
    from bench.translate_model import real_size_package

    # argostranslate reads its package folder once, when it is first imported.
    os.environ["ARGOS_PACKAGES_DIR"] = str(real_size_package())
    pin_output_lengths()
    from argostranslate.package import Package

    from veille.core.translation import installed_models, split_sentences

    model = next(m for m in installed_models() if m.from_code == "fr")
    articles = make_articles(args.sentences, args.per_article)
    sentences = [s for a in articles for p in a.split("\n") for s in split_sentences(p)]
    tokenizer = Package(model.path).tokenizer
    pieces = sum(len(tokenizer.encode(sentence)) for sentence in sentences)
    words = sum(len(sentence.split()) for sentence in sentences)
    # argostranslate translates one article at a time, so its rate does not depend on how many
    # articles it is given: --baseline-articles of them are enough to measure it.
    baseline = articles[: args.baseline_articles or len(articles)]
    runs = {
        "argostranslate per article": (baseline, argos_per_article(baseline, 0)),
        "veille engine, defaults": (articles, veille_engine(articles)),
    }
    rows = {}
    for name, (given, run) in runs.items():
        wall, cpu = cpu_timed(run)
        count = sum(len(split_sentences(p)) for a in given for p in a.split("\n"))
        rows[name] = {
            "articles": len(given),
            "seconds": wall,
            "sentences_per_s": count / wall,
            "articles_per_s": len(given) / wall,
            "cpu_s_per_1000_articles": 1000 * cpu / len(given),
        }
    veille, plain = rows["veille engine, defaults"], rows["argostranslate per article"]
    translated = args.daily_articles * args.on_topic_share * args.translated_share
    ratio = veille["sentences_per_s"] / plain["sentences_per_s"]
    cpu_ratio = plain["cpu_s_per_1000_articles"] / veille["cpu_s_per_1000_articles"]
    return {
        "model": f"{model.model_id} (random weights, {model.path})",
        "cpus": os.cpu_count(),
        "articles": len(articles),
        "sentences": len(sentences),
        "pieces_per_sentence": pieces / len(sentences),
        "pieces_per_word": pieces / words,
        "rows": rows,
        "daily": {
            "articles": args.daily_articles,
            "on_topic_share": args.on_topic_share,
            "translated_share": args.translated_share,
            "translated": translated,
            "seconds": {name: translated / row["articles_per_s"] for name, row in rows.items()},
        },
        "goals": [
            ("translation at real model size vs argostranslate per article", f">= {GOAL:.2f}",
             ratio, cpu_ratio, ratio >= GOAL),
        ],
    }  # fmt: skip


def print_real_size(report: dict[str, Any]) -> None:
    print(f"\nmodel: {report['model']}")
    print(
        f"{report['sentences']} sentences in {report['articles']} articles, "
        f"{report['pieces_per_sentence']:.1f} pieces per sentence "
        f"({report['pieces_per_word']:.2f} per word), outputs pinned to the input's length, "
        f"{report['cpus']} CPUs"
    )
    print(
        f"{'':28} {'articles':>8} {'sentences/s':>11} {'articles/s':>10} "
        f"{'CPU s per 1,000 articles':>25}"
    )
    for name, row in report["rows"].items():
        print(
            f"{name:28} {row['articles']:8d} {row['sentences_per_s']:11.1f} "
            f"{row['articles_per_s']:10.2f} {row['cpu_s_per_1000_articles']:25.0f}"
        )
    daily = report["daily"]
    print(
        f"a day's inflow: {daily['articles']:,} articles, {daily['on_topic_share']:.0%} on the "
        f"topic, {daily['translated_share']:.0%} of those to translate = "
        f"{daily['translated']:,.0f} articles:"
    )
    for name, seconds in daily["seconds"].items():
        print(f"  {name:26} {seconds / 60:8.1f} minutes")
    for name, target, wall, cpu, met in report["goals"]:
        print(f"goal: {name} {target}: {wall:.2f}x (CPU {cpu:.2f}x) {'yes' if met else 'NO'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--per-article", type=int, default=10)
    parser.add_argument("--package", type=Path, help="a real fr→en .argosmodel to use instead")
    parser.add_argument(
        "--intra-threads",
        default="0,1",
        help="CTranslate2 threads per translation, for both sides; one table each (0: default)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the best counts")
    parser.add_argument(
        "--real-size", action="store_true", help="a model of the Argos index's size (see above)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="with --real-size: 160 sentences, 20 to an article, the baseline on 2 articles",
    )
    parser.add_argument(
        "--baseline-articles", type=int, help="with --real-size: argostranslate's share (all)"
    )
    parser.add_argument(
        "--daily-articles", type=int, default=4400,
        help="articles crawled a day (assumed: the 44 shipped sources at 100 new articles each)",
    )  # fmt: skip
    parser.add_argument(
        "--on-topic-share", type=float, default=0.5,
        help="share of them on the topic (the bench corpus's half: far above a real topic's)",
    )  # fmt: skip
    parser.add_argument(
        "--translated-share", type=float, default=2 / 3,
        help="share of on-topic articles not in the pivot language (French and Spanish: 2 of 3)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="with --real-size: also write the figures here")
    args = parser.parse_args(argv)

    if args.real_size:
        if args.sentences == parser.get_default("sentences"):
            args.sentences = 160 if args.quick else 400
        if args.per_article == parser.get_default("per_article"):
            args.per_article = 20 if args.quick else 40
        if args.quick and args.baseline_articles is None:
            args.baseline_articles = 2
        report = real_size(args)
        print_real_size(report)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
        return

    with tempfile.TemporaryDirectory(prefix="veille-bench-") as workdir:
        # argostranslate reads its package folder once, when it is first imported.
        os.environ["ARGOS_PACKAGES_DIR"] = str(Path(workdir) / "packages")
        from tests.support.tiny_argos import build_tiny_model
        from veille.core.translation import install_model_file, split_sentences

        model_file = args.package or build_tiny_model(Path(workdir), "fr", "en")
        model = install_model_file(model_file)
        articles = make_articles(args.sentences, args.per_article)
        counted = sum(len(split_sentences(p)) for a in articles for p in a.split("\n"))
        assert counted == args.sentences, (counted, args.sentences)

        print(f"model: {model.model_id} ({model_file if args.package else 'tiny random weights'})")
        print(
            f"{args.sentences} sentences in {len(articles)} articles, {os.cpu_count()} CPUs, "
            f"best of {args.repeat}"
        )
        for intra in (int(value) for value in args.intra_threads.split(",")):
            runs = [
                ("argostranslate per article", argos_per_article(articles, intra)),
                ("veille, beam 4", veille_engine(articles, beam_size=4, intra_threads=intra)),
                ("veille, defaults", veille_engine(articles, intra_threads=intra)),
            ]
            timings = [(name, time_it(run, args.repeat)) for name, run in runs]
            baseline = args.sentences / timings[0][1]
            print(f"\nintra_threads={intra}" + (" (CTranslate2 default)" if intra == 0 else ""))
            print(f"{'':28} {'seconds':>8} {'sentences/s':>12} {'ratio':>6}")
            for name, seconds in timings:
                rate = args.sentences / seconds
                print(f"{name:28} {seconds:8.2f} {rate:12.1f} {rate / baseline:5.1f}x")


if __name__ == "__main__":
    main()
