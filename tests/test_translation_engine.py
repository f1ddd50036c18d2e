"""The offline translation engine, run on a tiny but genuine Argos package.

The package is built by tests/support/tiny_argos.py (random CTranslate2 weights, a real
SentencePiece model) and installed by argostranslate's own package code into a folder of the
test's own; its translations are gibberish, but deterministic and produced by the real code.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from argostranslate import package as argos_package

from tests.support.tiny_argos import build_tiny_model, install_tiny_model, use_package_dir
from veille.core.translation import (
    Glossary,
    InstalledModel,
    MissingModel,
    ModelInstallError,
    SourceDocument,
    TranslationEngine,
    TranslationFailed,
    TranslationResult,
    TranslationSettings,
    install_model_file,
    installed_models,
    split_sentences,
)

GLOSSARY = {
    "keep": ["Safeguard Defenders", "110 Overseas", "Fuzhou", "RCMP", "GRC"],
    "translate": {
        "fr": {"commissariats chinois": "Chinese police stations"},
        "es": {"comisarías chinas": "Chinese police stations"},
    },
}

FRENCH_ARTICLE = SourceDocument(
    language="fr",
    title="La GRC enquête sur des commissariats chinois à Montréal",
    text=(
        "La GRC enquête sur deux centres communautaires de Montréal. "
        "M. Trudeau a demandé des explications à l'ambassade de Chine.\n\n"
        "Selon Safeguard Defenders, 102 postes de police clandestins surveillent la diaspora. "
        "Qui finance ces associations ? Personne ne veut répondre."
    ),
)


@pytest.fixture(scope="session")
def tiny_model_file(request: pytest.FixtureRequest, tmp_path_factory) -> Path:
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("veille-tiny-argos") if cache else tmp_path_factory.mktemp("argos")
    return build_tiny_model(folder, "fr", "en")


@pytest.fixture
def packages_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_file: Path) -> Path:
    folder = use_package_dir(monkeypatch, tmp_path / "argos-packages")
    install_tiny_model(tiny_model_file)
    return folder


@pytest.fixture
def engine(packages_dir: Path) -> TranslationEngine:
    return TranslationEngine(TranslationSettings(), Glossary.from_dict(GLOSSARY))


def test_tiny_model_is_installed_by_argostranslate_and_listed(packages_dir: Path) -> None:
    folder = packages_dir / "translate-fr_en-1_0"

    assert installed_models() == [InstalledModel("fr", "en", "1.0", folder)]
    assert installed_models()[0].model_id == "argos:fr-en:1.0"
    argos_packages = argos_package.get_installed_packages()
    assert [(p.from_code, p.to_code) for p in argos_packages] == [("fr", "en")]
    assert (folder / "model" / "model.bin").is_file()
    assert (folder / "sentencepiece.model").is_file()


def test_tiny_model_build_is_cached_and_reproducible(tiny_model_file: Path, tmp_path) -> None:
    built_at = tiny_model_file.stat().st_mtime_ns

    assert build_tiny_model(tiny_model_file.parent) == tiny_model_file
    assert tiny_model_file.stat().st_mtime_ns == built_at
    assert build_tiny_model(tmp_path).read_bytes() == tiny_model_file.read_bytes()


def test_install_model_file_installs_offline_and_rejects_other_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_file: Path
) -> None:
    folder = use_package_dir(monkeypatch, tmp_path / "argos-packages")
    not_a_model = tmp_path / "notes.argosmodel"
    not_a_model.write_text("not a zip")

    model = install_model_file(tiny_model_file)

    assert model == InstalledModel("fr", "en", "1.0", folder / "translate-fr_en-1_0")
    with pytest.raises(ModelInstallError, match=r"not an \.argosmodel file"):
        install_model_file(not_a_model)


def test_french_article_is_translated_deterministically_and_kept_intact(
    engine: TranslationEngine, packages_dir: Path
) -> None:
    original = tuple(FRENCH_ARTICLE)

    [first] = engine.translate_documents([FRENCH_ARTICLE])
    [second] = TranslationEngine(engine.settings, engine.glossary).translate_documents(
        [FRENCH_ARTICLE]
    )

    assert isinstance(first, TranslationResult)
    assert first == second
    assert first.title.strip() and first.text.strip()
    assert first.text != FRENCH_ARTICLE.text
    assert first.model == "argos:fr-en:1.0"
    assert 0.0 < first.confidence <= 1.0
    assert first.text.count("\n\n") == 1  # paragraph break kept
    assert tuple(FRENCH_ARTICLE) == original


def test_english_article_needs_no_translation(engine: TranslationEngine) -> None:
    assert not engine.needs_translation("en")
    assert not engine.needs_translation("EN-gb")
    assert engine.needs_translation("fr-CA")
    assert engine.translate_documents([("en", "RCMP probe", "Police stations.")]) == [None]


def test_glossary_terms_survive_translation(engine: TranslationEngine) -> None:
    doc = (
        "fr",
        "Fuzhou et les COMMISSARIATS  CHINOIS",
        "Selon Safeguard Defenders, les commissariats chinois de Montréal sont liés à Fuzhou.",
    )

    [result] = engine.translate_documents([doc])

    assert isinstance(result, TranslationResult)
    assert "Safeguard Defenders" in result.text
    assert "Chinese police stations" in result.text
    assert "commissariats" not in result.text
    assert result.text.count("Fuzhou") == 1
    assert result.title.startswith("Fuzhou ")
    assert result.title.endswith(" Chinese police stations")


def test_language_without_model_is_reported_missing(engine: TranslationEngine) -> None:
    docs = [
        ("es", "Comisarías chinas en Madrid", "La policía investiga."),
        FRENCH_ARTICLE,
    ]

    missing, translated = engine.translate_documents(docs)

    assert missing == MissingModel(from_code="es", to_code="en")
    assert isinstance(translated, TranslationResult)
    assert not engine.has_model("es")


def test_model_installed_while_running_is_picked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_file: Path
) -> None:
    use_package_dir(monkeypatch, tmp_path / "argos-packages")
    engine = TranslationEngine()

    assert engine.translate_documents([FRENCH_ARTICLE]) == [MissingModel("fr", "en")]
    install_model_file(tiny_model_file)
    assert isinstance(engine.translate_document(*FRENCH_ARTICLE), TranslationResult)


def test_repeated_sentences_are_served_from_the_cache(engine: TranslationEngine) -> None:
    [first] = engine.translate_documents([FRENCH_ARTICLE])
    after_first = engine.stats
    [second] = engine.translate_documents([FRENCH_ARTICLE])
    after_second = engine.stats

    assert first == second
    assert after_first.cache_hits == 0
    assert after_first.cache_misses > 0
    assert after_second.cache_hits == after_first.cache_misses
    assert after_second.cache_misses == after_first.cache_misses
    assert after_second.model_calls == after_first.model_calls == 1


def test_sentences_of_many_articles_go_to_the_model_in_one_call(
    engine: TranslationEngine,
) -> None:
    docs = [
        ("fr", f"Article {n}", f"Le poste numéro {n} a fermé. La GRC enquête à Montréal.")
        for n in range(25)
    ]

    results = engine.translate_documents(docs)

    assert all(isinstance(r, TranslationResult) for r in results)
    assert engine.stats.model_calls == 1
    assert engine.stats.model_inputs == 25 + 25 + 2  # titles, first sentences, "La" and the rest


def test_very_long_sentence_is_cut_to_the_input_limit(packages_dir: Path) -> None:
    engine = TranslationEngine(TranslationSettings(max_input_tokens=40))
    words = "la police enquête sur les postes clandestins de la diaspora, à Montréal"
    sentence = " ".join([words] * 40) + "."

    [result] = engine.translate_documents([("fr", "", sentence)])

    assert isinstance(result, TranslationResult)
    assert result.text
    assert engine.stats.model_inputs > 1
    assert engine.stats.longest_input_tokens <= 40


def test_translation_runs_with_the_network_blocked(
    packages_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args, **kwargs):
        raise OSError("network access attempted during translation")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(OSError, match="network access attempted"):
        socket.create_connection(("127.0.0.1", 9))

    engine = TranslationEngine(glossary=Glossary.from_dict(GLOSSARY))
    [result] = engine.translate_documents([FRENCH_ARTICLE])

    assert isinstance(result, TranslationResult)
    assert "Safeguard Defenders" in result.text


def test_engine_can_be_shared_by_worker_threads(engine: TranslationEngine) -> None:
    docs = [("fr", f"Titre {n}", f"{FRENCH_ARTICLE.text} Poste {n}.") for n in range(6)]
    expected = TranslationEngine(engine.settings, engine.glossary).translate_documents(docs)
    results: dict[int, list] = {}

    def work(n: int) -> None:
        results[n] = engine.translate_documents(docs)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(results[n] == expected for n in range(4))


def test_broken_model_gives_a_failure_with_a_reason(packages_dir: Path) -> None:
    (packages_dir / "translate-fr_en-1_0" / "model" / "model.bin").write_bytes(b"broken")

    [result] = TranslationEngine().translate_documents([FRENCH_ARTICLE])

    assert isinstance(result, TranslationFailed)
    assert "fr" in result.reason


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        (
            "M. Trudeau a parlé. Mme Joly aussi, p. ex. à Ottawa. La GRC enquête.",
            ["M. Trudeau a parlé.", "Mme Joly aussi, p. ex. à Ottawa.", "La GRC enquête."],
        ),
        (
            'Mr. Smith met Dr. Jones in the U.S. Capitol. He said "It\'s over." Then he left.',
            [
                "Mr. Smith met Dr. Jones in the U.S. Capitol.",
                'He said "It\'s over."',
                "Then he left.",
            ],
        ),
        (
            "El Sr. Sánchez habló. ¿Quién paga? ¡Nadie! Dijo que no. Luego se fue.",
            ["El Sr. Sánchez habló.", "¿Quién paga?", "¡Nadie!", "Dijo que no.", "Luego se fue."],
        ),
        (
            "« C'est grave. » Il a ajouté : « Pourquoi\u00a0? » Voir l'art. 5 du code.",
            ["« C'est grave. »", "Il a ajouté : « Pourquoi\u00a0? »", "Voir l'art. 5 du code."],
        ),
        (
            "Il sig. Rossi e il dott. Bianchi sono a Prato. La questura tace. "
            "Vedi art. 3 del testo.",
            [
                "Il sig. Rossi e il dott. Bianchi sono a Prato.",
                "La questura tace.",
                "Vedi art. 3 del testo.",
            ],
        ),
        (
            "Am 3. Oktober schloss sie. Dr. Weber bzw. Prof. Lang, z. B. in Berlin. "
            "Es waren 3. Dann nicht.",
            [
                "Am 3. Oktober schloss sie.",
                "Dr. Weber bzw. Prof. Lang, z. B. in Berlin.",
                "Es waren 3.",
                "Dann nicht.",
            ],
        ),
        ("   ", []),
    ],
)
def test_sentences_are_split_offline_in_every_language(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences
