"""Offline translation of articles into the pivot language, batched across many articles.

In: documents ``(language, title, text)``. Out, one per document, in order:

- :class:`TranslationResult` ``(title, text, model, confidence)``: translated into the pivot;
- ``None``: the document is already in the pivot language, nothing to do;
- :class:`MissingModel`: no installed Argos package for ``language → pivot``; index the
  article with ``translation_status: pending`` and translate it later;
- :class:`TranslationFailed`: the model could not be loaded or raised; ``reason`` says why.

Nothing is downloaded at translation time. argostranslate's high-level ``translate()`` splits
sentences with MiniSBD, which fetches an ONNX model on first use, so it is never called here.
Sentences are split by :func:`split_sentences`, a regex splitter written for this module with
each language's abbreviations from veille/core/languages.py, and only the installed package's own
pieces are used: its tokenizer (``pkg.tokenizer``, SentencePiece or BPE) and its CTranslate2
model directory.

How a call works: every title and text is cut into paragraphs (line breaks are kept), then
sentences, then glossary segments (:class:`Glossary`); the pieces to translate are looked up in
an LRU cache keyed by model id and a hash of the piece, the misses are tokenized, cut into
inputs of at most ``max_input_tokens`` tokens, and the inputs of *all* documents with the same
language pair go to one ``Translator.translate_batch`` call, which sorts and re-batches them
(``max_batch_size``, ``batch_type``). The outputs are put back in place, document by document.

The CTranslate2 translator of a language pair is loaded on first use and reused. An engine may
be called from several worker threads (CTranslate2 releases the GIL while it translates).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from veille.core.languages import PIVOT, abbreviations

logger = logging.getLogger(__name__)

# argostranslate's own value: a small bonus for longer hypotheses in beam search.
LENGTH_PENALTY = 0.2


@dataclass(frozen=True)
class TranslationSettings:
    """How the engine translates.

    - ``pivot``: language every article is translated into.
    - ``compute_type``: CTranslate2 weight type (``int8``, ``int8_float32``, ``float32``, ...).
    - ``beam_size``: beam search width (1 is greedy; argostranslate uses 4).
    - ``inter_threads`` / ``intra_threads``: CTranslate2 parallel translations / threads per
      translation (0 lets CTranslate2 choose).
    - ``max_batch_size`` / ``batch_type``: how CTranslate2 re-batches the inputs of one call,
      in ``tokens`` or ``examples``.
    - ``max_input_tokens``: no model input is longer; longer sentences are cut into chunks.
    - ``cache_size``: translated pieces kept in the LRU cache (0 disables it).
    - ``device``: ``cpu`` or ``cuda``.
    """

    pivot: str = PIVOT
    compute_type: str = "int8"
    beam_size: int = 2
    inter_threads: int = 1
    intra_threads: int = 0
    max_batch_size: int = 2048
    batch_type: str = "tokens"
    max_input_tokens: int = 250
    cache_size: int = 50_000
    device: str = "cpu"

    def __post_init__(self) -> None:
        minimums = {
            "beam_size": 1,
            "inter_threads": 1,
            "intra_threads": 0,
            "max_batch_size": 1,
            "max_input_tokens": 8,
            "cache_size": 0,
        }
        for name, minimum in minimums.items():
            value = getattr(self, name)
            if not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"translation.{name} is {value!r}: use an integer of at least {minimum}"
                )
        if self.batch_type not in ("tokens", "examples"):
            raise ValueError(
                f"translation.batch_type is {self.batch_type!r}: use 'tokens' or 'examples'"
            )
        if not re.fullmatch(r"[a-z]{2,3}", self.pivot):
            raise ValueError(
                f"translation.pivot is {self.pivot!r}: use a lowercase ISO 639 code such as 'en'"
            )


class SourceDocument(NamedTuple):
    """One article to translate; a plain ``(language, title, text)`` tuple works as well."""

    language: str
    title: str | None
    text: str | None


@dataclass(frozen=True)
class TranslationResult:
    """A translated article: ``model`` is e.g. ``argos:fr-en:1.0``, ``confidence`` in 0..1."""

    title: str
    text: str
    model: str
    confidence: float


@dataclass(frozen=True)
class MissingModel:
    """No installed model translates ``from_code`` into ``to_code``: translate it later."""

    from_code: str
    to_code: str


@dataclass(frozen=True)
class TranslationFailed:
    """The translation was attempted and failed; ``reason`` is for logs and stats."""

    reason: str


Outcome = TranslationResult | MissingModel | TranslationFailed | None


def outcome_fields(outcome: Outcome, pivot: str) -> dict[str, Any]:
    """The article fields a translation outcome sets, for the translate stage and for
    ``veille translate --pending`` alike."""
    if isinstance(outcome, TranslationResult):
        return {
            "translation": {pivot: {"title": outcome.title, "text": outcome.text}},
            "translation_status": "done",
            "translation_model": outcome.model,
            "translation_confidence": round(outcome.confidence, 4),
            "translation_error": None,
        }
    if isinstance(outcome, MissingModel):
        error = f"no {outcome.from_code}→{outcome.to_code} model installed"
        return {"translation_status": "pending", "translation_error": error}
    if isinstance(outcome, TranslationFailed):
        return {"translation_status": "failed", "translation_error": outcome.reason}
    return {"translation_status": "not_needed"}


@dataclass(frozen=True)
class TranslationStats:
    """Counters since the engine was created.

    ``cache_hits``/``cache_misses`` count the distinct pieces of each call (sentences, or the
    parts of a sentence between glossary terms; a piece repeated within one call counts once);
    ``model_calls`` counts ``translate_batch`` calls, ``model_inputs`` the token sequences sent
    to them, and ``longest_input_tokens`` the longest of those.
    """

    cache_hits: int = 0
    cache_misses: int = 0
    model_calls: int = 0
    model_inputs: int = 0
    longest_input_tokens: int = 0


class InstalledModel(NamedTuple):
    """An installed Argos translation package."""

    from_code: str
    to_code: str
    version: str
    path: Path

    @property
    def model_id(self) -> str:
        """The id stored with each translation, e.g. ``argos:fr-en:1.0``."""
        return f"argos:{self.from_code}-{self.to_code}:{self.version}"


class ModelInstallError(Exception):
    """A model file or the Argos index could not be used; the message says how to fix it."""


# ---------------------------------------------------------------------------------------------
# Sentences

# Words that end with a period without ending the sentence, before a number only, and words
# that make the number before them an ordinal: every language's, merged (veille/core/languages.py).
# Single capital letters (initials, "M." for Monsieur, "U.S.") are handled separately.
_ABBREVIATIONS, _NUMBER_ABBREVIATIONS, _AFTER_ORDINAL = abbreviations()
_SENTENCE_END = re.compile(r"[.!?…]+(?:[\s\u00a0\u202f]*[»”\"’)\]])*(?=\s)")
_WORD_BEFORE = re.compile(r"[^\W\d_]+$")
_NUMBER_BEFORE = re.compile(r"(?<![\w.])\d{1,2}$")
_WORD_AFTER = re.compile(r"[^\W\d_]+")
_OPENING = "«“\"‘'([¿¡—–-"


def split_sentences(text: str) -> list[str]:
    """Split one paragraph into sentences, offline, for every language of veille/core/languages.py.

    A sentence ends at ``.``, ``!``, ``?`` or ``…`` (with any closing quote or bracket after
    it) when whitespace and a capital, a digit, an opening quote or ``¿``/``¡`` follow; not after
    abbreviations such as "M.", "Mme", "Mr.", "Dr.", "Sr.", "Sra.", "p. ex.", "EE. UU.",
    "Dott.", "bzw.", nor after initials, nor in an ordinal such as "am 3. Oktober". French
    spacing before ``?``/``!``/``»`` is allowed. Returns the stripped sentences; an empty or
    blank text gives an empty list.
    """
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        following = text[match.end() :].lstrip()
        if not _starts_sentence(following) or _is_abbreviation(text, match, following):
            continue
        sentences.append(text[start : match.end()].strip())
        start = match.end()
    sentences.append(text[start:].strip())
    return [sentence for sentence in sentences if sentence]


def _starts_sentence(following: str) -> bool:
    if following[:1] in ("¿", "¡"):
        return True
    head = following.lstrip(_OPENING + " \u00a0\u202f")
    return bool(head) and (head[0].isupper() or head[0].isdigit())


def _is_abbreviation(text: str, match: re.Match[str], following: str) -> bool:
    if not match.group().startswith(".") or match.group().startswith(".."):
        return False
    word = _WORD_BEFORE.search(text, 0, match.start())
    if word is None:
        after = _WORD_AFTER.match(following)
        number = _NUMBER_BEFORE.search(text, 0, match.start())
        return bool(number and after and after.group().lower() in _AFTER_ORDINAL)
    word_text = word.group()
    lowered = word_text.lower()
    if len(word_text) == 1 and word_text.isupper():
        return True
    if lowered in _ABBREVIATIONS:
        return True
    return lowered in _NUMBER_ABBREVIATIONS and following[:1].isdigit()


# ---------------------------------------------------------------------------------------------
# Glossary


class Glossary:
    """Terms that must survive translation.

    ``keep`` terms (names, acronyms) come out exactly as they appear in the source;
    ``translate`` terms, per source language, come out as the given pivot-language text.
    Matching ignores case, requires word boundaries and accepts any run of whitespace inside
    a term; longer terms win over shorter ones.

    Placeholders do not survive a model reliably (a weak or small model mangles or drops them),
    so the sentence is cut at the terms: only the text between them goes to the model, and the
    protected text is put back verbatim between the translated parts.
    """

    def __init__(
        self,
        keep: Iterable[str] = (),
        translate: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self._keep = tuple(term.strip() for term in keep if term.strip())
        self._translate = {
            language.lower(): {_normalize_term(src): dst for src, dst in terms.items()}
            for language, terms in (translate or {}).items()
        }
        self._patterns: dict[str, re.Pattern[str] | None] = {}

    @classmethod
    def from_topics(cls, topics: Iterable[Any]) -> Glossary:
        """One glossary from every topic's ``glossary`` section (topic files)."""
        keep: list[str] = []
        translate: dict[str, dict[str, str]] = {}
        for topic in topics:
            keep.extend(topic.glossary.keep)
            for language, terms in topic.glossary.translate.items():
                translate.setdefault(language, {}).update(terms)
        return cls(keep=keep, translate=translate)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Glossary:
        """Build from ``{"keep": [...], "translate": {"fr": {"term": "target"}, ...}}``."""
        keep = data.get("keep", [])
        translate = data.get("translate", {})
        if not isinstance(keep, list) or not all(isinstance(t, str) for t in keep):
            raise ValueError("glossary.keep must be a list of terms (strings)")
        if not isinstance(translate, Mapping):
            raise ValueError("glossary.translate must map a language code to {term: target}")
        for language, terms in translate.items():
            if not isinstance(terms, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in terms.items()
            ):
                raise ValueError(
                    f"glossary.translate.{language} must map source terms to target terms"
                )
        unknown = set(data) - {"keep", "translate"}
        if unknown:
            raise ValueError(f"glossary has unknown keys {sorted(unknown)}: use keep, translate")
        return cls(keep=keep, translate=translate)

    def segments(self, sentence: str, language: str) -> list[tuple[str, str | None]]:
        """Cut ``sentence`` at glossary terms.

        Returns ``(source_text, protected)`` pairs that concatenate back to ``sentence``:
        ``protected`` is ``None`` for text to translate, else the text to output verbatim.
        """
        pattern = self._pattern(language)
        if pattern is None:
            return [(sentence, None)]
        targets = self._translate.get(language, {})
        segments: list[tuple[str, str | None]] = []
        position = 0
        for match in pattern.finditer(sentence):
            if match.start() > position:
                segments.append((sentence[position : match.start()], None))
            term = match.group()
            segments.append((term, targets.get(_normalize_term(term), term)))
            position = match.end()
        if position < len(sentence):
            segments.append((sentence[position:], None))
        return segments

    def _pattern(self, language: str) -> re.Pattern[str] | None:
        if language not in self._patterns:
            terms = {*self._keep, *self._translate.get(language, {})}
            if not terms:
                self._patterns[language] = None
            else:
                alternatives = sorted(terms, key=len, reverse=True)
                body = "|".join(r"\s+".join(map(re.escape, t.split())) for t in alternatives)
                self._patterns[language] = re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)
        return self._patterns[language]


def _normalize_term(term: str) -> str:
    return " ".join(term.casefold().split())


# ---------------------------------------------------------------------------------------------
# Models on disk


def installed_models() -> list[InstalledModel]:
    """List the installed Argos translation packages, sorted by language pair and version.

    Reads the folders argostranslate installs into (``ARGOS_PACKAGES_DIR``, read once when
    ``argostranslate.settings`` is first imported). A folder without ``metadata.json`` is
    skipped with a warning instead of failing the whole listing as argostranslate's own
    ``get_installed_packages()`` does.
    """
    from argostranslate import settings as argos_settings
    from argostranslate.package import Package

    models = []
    for packages_dir in argos_settings.package_dirs:
        if not Path(packages_dir).is_dir():
            continue
        for folder in sorted(Path(packages_dir).iterdir()):
            if not folder.is_dir():
                continue
            if not (folder / "metadata.json").is_file():
                logger.warning("skipping %s: not an Argos package (no metadata.json)", folder)
                continue
            package = Package(folder)
            if package.type == "translate" and package.from_code and package.to_code:
                models.append(
                    InstalledModel(
                        package.from_code, package.to_code, package.package_version, folder
                    )
                )
    return sorted(models, key=lambda m: (m.from_code, m.to_code, _version_key(m.version)))


def install_model_file(path: Path | str) -> InstalledModel:
    """Install an ``.argosmodel`` file offline with argostranslate's ``install_from_path``."""
    from argostranslate import package
    from argostranslate import settings as argos_settings

    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        raise ModelInstallError(f"{path}: not an .argosmodel file (a zip archive); check the path")
    with zipfile.ZipFile(path) as archive:
        roots = {
            name.split("/")[0]
            for name in archive.namelist()
            if name.count("/") == 1 and name.endswith("/metadata.json")
        }
    if len(roots) != 1:
        raise ModelInstallError(
            f"{path}: an Argos package holds exactly one folder with metadata.json, model/ and "
            f"its tokenizer; found {len(roots)}. Re-download or re-export the package"
        )
    package.install_from_path(path)
    folder = Path(argos_settings.package_data_dir) / roots.pop()
    for model in installed_models():
        if model.path == folder:
            return model
    raise ModelInstallError(f"{path}: installed into {folder} but it is not a translation package")


def install_models(
    codes: Iterable[str],
    pivot: str = PIVOT,
    progress_callback: Callable[[str], None] | None = None,
) -> list[InstalledModel]:
    """Download ``code → pivot`` models from the Argos index and install them (needs network).

    ``progress_callback`` receives one human-readable line per step.
    """
    from argostranslate import package
    from argostranslate import settings as argos_settings

    report = progress_callback or (lambda message: None)
    report(f"updating the Argos package index from {argos_settings.remote_package_index}")
    package.update_package_index()
    # update_package_index() logs and swallows errors, and get_available_packages() then
    # recurses forever when no index was ever saved: check for the file ourselves.
    if not Path(argos_settings.local_package_index).is_file():
        raise ModelInstallError(
            f"could not download {argos_settings.remote_package_index}; check the network, "
            "or install a downloaded file: veille models install --file PATH.argosmodel"
        )
    available = [p for p in package.get_available_packages() if p.type == "translate"]
    installed = []
    for code in codes:
        from_code = _language_code(code)
        candidates = [p for p in available if p.from_code == from_code and p.to_code == pivot]
        if not candidates:
            pairs = sorted({f"{p.from_code}→{p.to_code}" for p in available if p.to_code == pivot})
            raise ModelInstallError(
                f"the Argos index has no {from_code}→{pivot} model; it has {', '.join(pairs)}"
            )
        best = max(candidates, key=lambda p: _version_key(p.package_version))
        report(f"downloading {from_code}→{pivot} {best.package_version}")
        model = install_model_file(best.download())
        report(f"installed {model.model_id} in {model.path}")
        installed.append(model)
    return installed


def _version_key(version: str) -> tuple[int, Any]:
    import packaging.version

    try:
        return (1, packaging.version.parse(version))
    except packaging.version.InvalidVersion:
        return (0, version)


def _language_code(language: str | None) -> str:
    """``"fr-CA"``, ``"FR"``, ``"fr_FR"`` → ``"fr"``."""
    return re.split(r"[-_]", (language or "").strip().lower(), maxsplit=1)[0]


# ---------------------------------------------------------------------------------------------
# The engine


@dataclass(frozen=True)
class _Piece:
    """A stretch of source text that goes to the model, identified by its hash."""

    digest: bytes
    text: str


@dataclass(frozen=True)
class _Translated:
    text: str
    log_prob: float  # sum of the token log probabilities of all its outputs
    tokens: int  # output tokens, end of sentence included


class _LoadedModel:
    def __init__(self, model: InstalledModel, settings: TranslationSettings) -> None:
        import ctranslate2
        from argostranslate.package import Package

        package = Package(model.path)
        if getattr(package, "tokenizer", None) is None:
            raise ModelInstallError(f"{model.path}: no sentencepiece.model or bpe.model")
        self.model_id = model.model_id
        self.tokenizer = package.tokenizer
        self.target_prefix = package.target_prefix or None
        self.translator = ctranslate2.Translator(
            str(model.path / "model"),
            device=settings.device,
            compute_type=settings.compute_type,
            inter_threads=settings.inter_threads,
            intra_threads=settings.intra_threads,
        )


class TranslationEngine:
    """Translates batches of articles into ``settings.pivot`` with installed Argos models."""

    def __init__(
        self, settings: TranslationSettings | None = None, glossary: Glossary | None = None
    ) -> None:
        self.settings = settings or TranslationSettings()
        self.glossary = glossary or Glossary()
        self._models: dict[str, _LoadedModel] = {}
        self._load_lock = threading.Lock()
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, bytes], _Translated] = OrderedDict()
        self._stats = TranslationStats()

    @property
    def stats(self) -> TranslationStats:
        """A snapshot of the counters."""
        with self._lock:
            return self._stats

    def clear_cache(self) -> None:
        """Forget every cached translation; the counters are kept."""
        with self._lock:
            self._cache.clear()

    def needs_translation(self, language: str | None) -> bool:
        """Whether a document in ``language`` must be translated (it is not the pivot)."""
        return _language_code(language) != self.settings.pivot

    def has_model(self, language: str | None) -> bool:
        """Whether an installed model translates ``language`` into the pivot (loads it)."""
        return self._model(_language_code(language)) is not None

    def translate_document(self, language: str, title: str | None, text: str | None) -> Outcome:
        """Translate one article; see :meth:`translate_documents`."""
        return self.translate_documents([(language, title, text)])[0]

    def translate_documents(
        self, docs: Sequence[SourceDocument | tuple[str, str | None, str | None]]
    ) -> list[Outcome]:
        """Translate many ``(language, title, text)`` documents; one outcome per document.

        Documents are grouped by language (``fr-CA`` counts as ``fr``); each group's sentences
        go to the model in one call. A ``None`` title or text comes back as ``""``; a document
        without a language gets :class:`MissingModel`. The inputs are not modified. See the
        module docstring for the outcomes.
        """
        outcomes: list[Outcome] = [None] * len(docs)
        groups: dict[str, list[int]] = {}
        for index, (language, _title, _text) in enumerate(docs):
            if self.needs_translation(language):
                groups.setdefault(_language_code(language), []).append(index)
        for from_code, indices in groups.items():
            try:
                model = self._model(from_code)
            except Exception as exc:
                logger.exception("cannot load the %s→%s model", from_code, self.settings.pivot)
                failure = TranslationFailed(f"cannot load the {from_code} model: {exc}")
                for index in indices:
                    outcomes[index] = failure
                continue
            if model is None:
                for index in indices:
                    outcomes[index] = MissingModel(from_code, self.settings.pivot)
                continue
            group = [(docs[i][1] or "", docs[i][2] or "") for i in indices]
            for index, outcome in zip(
                indices, self._translate_group(model, from_code, group), strict=True
            ):
                outcomes[index] = outcome
        return outcomes

    def _translate_group(
        self, model: _LoadedModel, language: str, docs: list[tuple[str, str]]
    ) -> list[TranslationResult | TranslationFailed]:
        """Translate the documents of one language pair together; isolate a failing one."""
        try:
            return self._translate_together(model, language, docs)
        except Exception as exc:
            if len(docs) == 1:
                logger.exception("translation with %s failed", model.model_id)
                return [TranslationFailed(f"{model.model_id}: {type(exc).__name__}: {exc}")]
        return [self._translate_group(model, language, [doc])[0] for doc in docs]

    def _translate_together(
        self, model: _LoadedModel, language: str, docs: list[tuple[str, str]]
    ) -> list[TranslationResult]:
        layouts = [
            (self._layout(title, language), self._layout(text, language)) for title, text in docs
        ]
        pieces = {
            part.digest: part
            for title_parts, text_parts in layouts
            for part in (*title_parts, *text_parts)
            if isinstance(part, _Piece)
        }
        translated = self._translate_pieces(model, list(pieces.values()))
        results = []
        for title_parts, text_parts in layouts:
            used = [
                translated[p.digest] for p in (*title_parts, *text_parts) if isinstance(p, _Piece)
            ]
            tokens = sum(t.tokens for t in used)
            confidence = math.exp(sum(t.log_prob for t in used) / tokens) if tokens else 1.0
            results.append(
                TranslationResult(
                    title=_render(title_parts, translated),
                    text=_render(text_parts, translated),
                    model=model.model_id,
                    confidence=confidence,
                )
            )
        return results

    def _layout(self, text: str, language: str) -> list[str | _Piece]:
        """Cut a field into verbatim strings and pieces to translate, in reading order."""
        parts: list[str | _Piece] = []
        for line_number, line in enumerate(text.split("\n")):
            if line_number:
                parts.append("\n")
            stripped = line.strip()
            parts.append(line[: len(line) - len(line.lstrip())])
            for sentence_number, sentence in enumerate(split_sentences(stripped)):
                if sentence_number:
                    parts.append(" ")
                segments = self.glossary.segments(sentence, language)
                for number, (source, protected) in enumerate(segments):
                    if protected is not None:
                        parts.append(protected)
                    else:
                        after_term, before_term = number > 0, number < len(segments) - 1
                        parts.extend(_piece_parts(source, after_term, before_term))
            parts.append(line[len(line.rstrip()) :] if stripped else "")
        return parts

    def _translate_pieces(
        self, model: _LoadedModel, pieces: list[_Piece]
    ) -> dict[bytes, _Translated]:
        """Translate unique pieces: cached ones from the cache, the others in one model call."""
        translated: dict[bytes, _Translated] = {}
        missing: list[_Piece] = []
        with self._lock:
            for piece in pieces:
                hit = self._cache.get((model.model_id, piece.digest))
                if hit is None:
                    missing.append(piece)
                else:
                    self._cache.move_to_end((model.model_id, piece.digest))
                    translated[piece.digest] = hit
            self._stats = replace(
                self._stats,
                cache_hits=self._stats.cache_hits + len(pieces) - len(missing),
                cache_misses=self._stats.cache_misses + len(missing),
            )
        if not missing:
            return translated

        inputs: list[list[str]] = []
        owners: list[int] = []
        limit = self.settings.max_input_tokens
        for number, piece in enumerate(missing):
            for chunk in _chunks(model.tokenizer.encode(piece.text), limit):
                inputs.append(chunk)
                owners.append(number)
        outputs = self._run_model(model, inputs)

        chunk_outputs: list[list[tuple[str, float, int]]] = [[] for _ in missing]
        for owner, output in zip(owners, outputs, strict=True):
            chunk_outputs[owner].append(output)
        with self._lock:
            for piece, chunks in zip(missing, chunk_outputs, strict=True):
                result = _Translated(
                    text=" ".join(text for text, _, _ in chunks if text),
                    log_prob=sum(log_prob for _, log_prob, _ in chunks),
                    tokens=sum(tokens for _, _, tokens in chunks),
                )
                translated[piece.digest] = result
                if self.settings.cache_size:
                    self._cache[(model.model_id, piece.digest)] = result
            while len(self._cache) > self.settings.cache_size:
                self._cache.popitem(last=False)
        return translated

    def _run_model(
        self, model: _LoadedModel, inputs: list[list[str]]
    ) -> list[tuple[str, float, int]]:
        """One ``translate_batch`` call; returns ``(text, log_prob_sum, token_count)`` each."""
        settings = self.settings
        prefix = [[model.target_prefix]] * len(inputs) if model.target_prefix else None
        results = model.translator.translate_batch(
            inputs,
            target_prefix=prefix,
            beam_size=settings.beam_size,
            length_penalty=LENGTH_PENALTY,
            max_batch_size=settings.max_batch_size,
            batch_type=settings.batch_type,
            max_input_length=0,
            max_decoding_length=2 * settings.max_input_tokens,
            replace_unknowns=True,
            return_scores=True,
        )
        with self._lock:
            self._stats = replace(
                self._stats,
                model_calls=self._stats.model_calls + 1,
                model_inputs=self._stats.model_inputs + len(inputs),
                longest_input_tokens=max(
                    self._stats.longest_input_tokens, max(map(len, inputs), default=0)
                ),
            )
        outputs = []
        for result in results:
            tokens = result.hypotheses[0]
            if model.target_prefix and tokens[:1] == [model.target_prefix]:
                tokens = tokens[1:]
            # CTranslate2's score is the log probability of the hypothesis and its end token
            # divided by length ** length_penalty.
            length = len(result.hypotheses[0]) + 1
            log_prob = result.scores[0] * length**LENGTH_PENALTY
            outputs.append((model.tokenizer.decode(tokens).strip(), log_prob, length))
        return outputs

    def _model(self, from_code: str) -> _LoadedModel | None:
        """The loaded model for ``from_code → pivot``; ``None`` while none is installed.

        A missing model is looked for again on the next call, so a model installed while the
        process runs is picked up.
        """
        with self._load_lock:
            if from_code not in self._models:
                loaded = self._load(from_code)
                if loaded is None:
                    return None
                self._models[from_code] = loaded
            return self._models[from_code]

    def _load(self, from_code: str) -> _LoadedModel | None:
        candidates = [
            m
            for m in installed_models()
            if m.from_code == from_code and m.to_code == self.settings.pivot
        ]
        if not candidates:
            return None
        newest = max(candidates, key=lambda m: _version_key(m.version))
        logger.info("loading %s from %s", newest.model_id, newest.path)
        return _LoadedModel(newest, self.settings)


def _piece_parts(source: str, after_term: bool, before_term: bool) -> list[str | _Piece]:
    """Split a segment into verbatim edges and the piece the model translates.

    Whitespace at the edges is always kept verbatim; so is punctuation that touches a glossary
    term (the ", " after a name, the "« " before one), which a model may drop. A segment
    without letters or digits is kept verbatim as a whole.
    """
    if not any(character.isalnum() for character in source):
        return [source]
    start, end = 0, len(source)
    while source[start].isspace() or (after_term and not source[start].isalnum()):
        start += 1
    while source[end - 1].isspace() or (before_term and not source[end - 1].isalnum()):
        end -= 1
    core = source[start:end]
    digest = hashlib.blake2b(core.encode(), digest_size=16).digest()
    return [source[:start], _Piece(digest, core), source[end:]]


def _chunks(tokens: list[str], limit: int) -> list[list[str]]:
    """Cut a token sequence into inputs of at most ``limit`` tokens.

    Prefers to cut after a clause mark (``,`` ``;`` ``:``), then before a word start
    (SentencePiece ``▁``), in the second half of each window; else cuts at the limit.
    """
    chunks = []
    while len(tokens) > limit:
        window = range(limit, limit // 2, -1)
        cut = next((i for i in window if tokens[i - 1].lstrip("▁") in (",", ";", ":")), None)
        if cut is None:
            cut = next((i for i in window if tokens[i].startswith("▁")), limit)
        chunks.append(tokens[:cut])
        tokens = tokens[cut:]
    if tokens:
        chunks.append(tokens)
    return chunks


def _render(parts: list[str | _Piece], translated: Mapping[bytes, _Translated]) -> str:
    return "".join(p if isinstance(p, str) else translated[p.digest].text for p in parts)
