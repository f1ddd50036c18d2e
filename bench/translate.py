"""Sentences per second: Veille's translation engine against argostranslate's per-article path.

    python -m bench.translate --sentences 1000

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
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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

    from veille.translation import split_sentences

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


def veille_engine(articles: list[str], **settings: int) -> Callable[[], object]:
    from veille.translation import TranslationEngine, TranslationSettings

    engine = TranslationEngine(TranslationSettings(**settings))
    if not engine.has_model("fr"):  # loads the CTranslate2 model
        raise SystemExit("no fr→en model installed")

    def run() -> object:
        engine.clear_cache()
        return engine.translate_documents([("fr", "", article) for article in articles])

    return run


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
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="veille-bench-") as workdir:
        # argostranslate reads its package folder once, when it is first imported.
        os.environ["ARGOS_PACKAGES_DIR"] = str(Path(workdir) / "packages")
        from tests.support.tiny_argos import build_tiny_model
        from veille.translation import install_model_file, split_sentences

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
