"""A tiny but genuine Argos Translate package, built offline for tests and benchmarks.

In: a destination folder and a language pair. Out: ``<from>_<to>.argosmodel``, a zip archive
laid out exactly as argostranslate expects::

    translate-fr_en-1_0/
        metadata.json          from_code, to_code, package_version, argos_version, names, ...
        sentencepiece.model    trained here on a few dozen fr/en/es news sentences
        model/                 a CTranslate2 Transformer: model.bin, config.json,
                               shared_vocabulary.json (the SentencePiece pieces)
        README.md

The CTranslate2 model has one encoder and one decoder layer, two heads, 32 dimensions and
random weights drawn from a seeded generator, saved as int8: it translates into deterministic
gibberish, but every code path (SentencePiece, CTranslate2 beam search, argostranslate's
package code) is the real one. Nothing is downloaded; neither torch nor a training framework
is needed.

Builds are cached: the same inputs reuse the archive already in ``dest_dir`` (the build key
is stored in ``metadata.json``), and the archive bytes are reproducible.

The pieces take a :class:`ModelShape`, so that ``bench/translate_model.py`` builds a package of
an Argos index model's size from them (``TINY`` is this module's).

Where argostranslate installs packages: ``argostranslate.settings`` reads ``ARGOS_PACKAGES_DIR``
(environment, then ``$XDG_CONFIG_HOME/argos-translate/settings.json``) once, when it is first
imported, into ``settings.package_data_dir`` (where ``install_from_path`` extracts archives) and
``settings.package_dirs`` (the list ``get_installed_packages`` scans). Setting the environment
variable after that import changes nothing, so :func:`use_package_dir` patches both attributes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from veille.core.languages import language_of

if TYPE_CHECKING:
    import pytest


@dataclass(frozen=True)
class ModelShape:
    """A Transformer's size: encoder and decoder layers each, heads, model and FFN widths."""

    layers: int
    heads: int
    d_model: int
    ffn_dim: int


BUILD_REVISION = "2"
D_MODEL = 32
FFN_DIM = 64
NUM_HEADS = 2
VOCAB_SIZE = 320
SEED = 20221204
MAX_POSITIONS = 1024
TINY = ModelShape(layers=1, heads=NUM_HEADS, d_model=D_MODEL, ffn_dim=FFN_DIM)
CLOCK_DIM = D_MODEL - 1
CLOCK_PERIOD = 8.0
EOS_CLOCK_WEIGHT = 4.0
EOS_BIAS = -4.0


# A few dozen lines about the first topic Veille ships with, in its three languages: enough
# for SentencePiece to learn pieces for the words our tests and benchmarks use.
TRAINING_SENTENCES = (
    "Safeguard Defenders a recensé 102 commissariats chinois dans 53 pays.",
    "La GRC enquête sur deux commissariats chinois à Montréal.",
    "Les centres communautaires de Brossard et de Montréal nient toute activité policière.",
    "Selon Safeguard Defenders, ces postes de police clandestins surveillent la diaspora.",
    "M. Trudeau a demandé des explications à l'ambassade de Chine.",
    "Le bureau de Fuzhou aurait ouvert des antennes « 110 Overseas » à l'étranger.",
    "Des militants ouïghours et tibétains disent avoir été menacés au Canada.",
    "La police néerlandaise a fermé deux postes à Amsterdam et à Rotterdam.",
    "Pékin affirme que ces bureaux aident les ressortissants à renouveler leur permis.",
    "Les pratiquants du Falun Gong dénoncent une répression transnationale.",
    "Le gouvernement du Québec a réclamé une enquête publique.",
    "Qui finance ces associations ? Personne ne veut répondre.",
    "Safeguard Defenders counted 102 Chinese police stations in 53 countries.",
    "The RCMP is investigating two Chinese police stations in Montreal.",
    "Community centres in Brossard and Montreal deny any police activity.",
    "According to Safeguard Defenders, the covert stations monitor the diaspora.",
    "Mr. Trudeau asked the Chinese embassy for an explanation.",
    "The Fuzhou bureau reportedly opened 110 Overseas service points abroad.",
    "Uyghur and Tibetan activists say they were threatened in Canada.",
    "Dutch police closed two stations in Amsterdam and Rotterdam.",
    "Beijing says the offices help citizens renew their driving licences.",
    "Falun Gong practitioners denounce transnational repression.",
    "The FBI arrested two men accused of running a station in New York.",
    "Who funds these associations? Nobody wants to answer.",
    "Safeguard Defenders identificó 102 comisarías chinas en 53 países.",
    "La policía española investiga comisarías chinas en Madrid y Barcelona.",
    "Según Safeguard Defenders, estas oficinas vigilan a la diáspora china.",
    "El Sr. Sánchez pidió explicaciones a la embajada de China.",
    "La oficina de Fuzhou habría abierto puntos « 110 Overseas » en el extranjero.",
    "Activistas uigures y tibetanos denuncian amenazas en Europa.",
    "Pekín asegura que las oficinas ayudan a renovar licencias de conducir.",
    "Los practicantes de Falun Gong denuncian una represión transnacional.",
    "¿Quién financia estas asociaciones? ¡Nadie quiere responder!",
    "La Guardia Civil registró un local en Valencia la semana pasada.",
    "Las autoridades de EE. UU. detuvieron a dos hombres en Nueva York.",
    "El Gobierno chino niega cualquier actividad policial en el extranjero.",
)


def build_tiny_model(dest_dir: Path, from_code: str = "fr", to_code: str = "en") -> Path:
    """Build (or reuse) ``dest_dir/<from_code>_<to_code>.argosmodel`` and return its path."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    archive = dest_dir / f"{from_code}_{to_code}.argosmodel"
    key = _build_key(from_code, to_code)
    if archive.exists() and _archive_build_key(archive) == key:
        return archive

    sp_model = _train_sentencepiece()
    pieces = piece_list(sp_model)
    model_files = _model_files(_random_transformer_spec(pieces), dest_dir)
    metadata = {
        "package_version": "1.0",
        "argos_version": "1.9",
        "from_code": from_code,
        "from_name": language_of(from_code).name,
        "to_code": to_code,
        "to_name": language_of(to_code).name,
        "type": "translate",
        "links": [],
        "veille_build_key": key,
    }
    root = f"translate-{from_code}_{to_code}-1_0"
    members = {
        f"{root}/metadata.json": json.dumps(metadata, indent=2, sort_keys=True).encode(),
        f"{root}/README.md": b"Tiny random-weight model built by Veille's tests. Gibberish.\n",
        f"{root}/sentencepiece.model": sp_model,
        **{f"{root}/model/{name}": data for name, data in model_files.items()},
    }
    partial = archive.with_name(f".{archive.name}.{os.getpid()}.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(2022, 12, 4, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, members[name])
    partial.replace(archive)
    return archive


def install_tiny_model(path: Path) -> None:
    """Install a built archive with argostranslate's own ``package.install_from_path``."""
    from argostranslate import package

    package.install_from_path(Path(path))


def use_package_dir(monkeypatch: pytest.MonkeyPatch, packages_dir: Path) -> Path:
    """Point argostranslate (already imported or not) at ``packages_dir`` for one test."""
    from argostranslate import settings

    packages_dir = Path(packages_dir)
    packages_dir.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("ARGOS_PACKAGES_DIR", str(packages_dir))
    monkeypatch.setattr(settings, "package_data_dir", packages_dir)
    monkeypatch.setattr(settings, "package_dirs", [packages_dir])
    return packages_dir


def _build_key(from_code: str, to_code: str) -> str:
    parts = [
        BUILD_REVISION,
        from_code,
        to_code,
        D_MODEL,
        FFN_DIM,
        NUM_HEADS,
        VOCAB_SIZE,
        SEED,
        MAX_POSITIONS,
        CLOCK_PERIOD,
        EOS_CLOCK_WEIGHT,
        EOS_BIAS,
    ]
    blob = json.dumps([*parts, TRAINING_SENTENCES], ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()


def _archive_build_key(archive: Path) -> str | None:
    try:
        with zipfile.ZipFile(archive) as zf:
            name = next(n for n in zf.namelist() if n.endswith("/metadata.json"))
            return json.loads(zf.read(name)).get("veille_build_key")
    except (zipfile.BadZipFile, StopIteration, KeyError, ValueError):
        return None


def _train_sentencepiece() -> bytes:
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TRAINING_SENTENCES),
        model_writer=model,
        model_type="unigram",
        vocab_size=VOCAB_SIZE,
        hard_vocab_limit=False,
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


def piece_list(sp_model: bytes) -> list[str]:
    """A SentencePiece model's pieces, in id order (CTranslate2's vocabulary)."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_proto=sp_model)
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    missing = {"<unk>", "<s>", "</s>"} - set(pieces)
    if missing:
        raise RuntimeError(f"SentencePiece vocabulary lacks {sorted(missing)}")
    return pieces


def convert_ctranslate2_model(spec, output: Path) -> None:
    """Save a model spec into the folder ``output`` through CTranslate2's converter, as int8."""
    from ctranslate2.converters import Converter

    class RandomTransformerConverter(Converter):
        def _load(self):
            return spec

    # Quantized to int8 like the packages on the Argos index (argos-train converts with
    # --quantization int8), so argostranslate's default compute type "auto" runs int8 too.
    RandomTransformerConverter().convert(str(output), quantization="int8")


def _model_files(spec, scratch_dir: Path) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(dir=scratch_dir, prefix=".ct2-") as work_dir:
        output = Path(work_dir) / "model"
        convert_ctranslate2_model(spec, output)
        return {p.name: p.read_bytes() for p in sorted(output.iterdir())}


def _random_transformer_spec(pieces: list[str]):
    spec = random_transformer_spec(pieces, TINY, np.random.default_rng(SEED))
    spec.decoder.position_encodings.encodings = _decoder_position_encodings()
    _add_length_clock(spec.decoder, pieces.index("</s>"))
    return spec


def random_transformer_spec(pieces: list[str], shape: ModelShape, rng: np.random.Generator):
    """A Transformer of ``shape`` with random weights from ``rng``, vocabulary ``pieces``."""
    from ctranslate2.specs import TransformerSpec

    vocab, width = len(pieces), shape.d_model
    spec = TransformerSpec.from_config(shape.layers, shape.heads)

    spec.encoder.embeddings[0].weight = _normal(rng, vocab, width)
    _set_norm(spec.encoder.layer_norm, width)
    for layer in spec.encoder.layer:
        _set_self_attention(rng, layer.self_attention, width)
        _set_ffn(rng, layer.ffn, width, shape.ffn_dim)

    decoder = spec.decoder
    decoder.embeddings.weight = _normal(rng, vocab, width)
    _set_norm(decoder.layer_norm, width)
    for layer in decoder.layer:
        _set_self_attention(rng, layer.self_attention, width)
        _set_norm(layer.attention.layer_norm, width)
        _set_linear(rng, layer.attention.linear[0], width, width)
        _set_linear(rng, layer.attention.linear[1], 2 * width, width)
        _set_linear(rng, layer.attention.linear[2], width, width)
        _set_ffn(rng, layer.ffn, width, shape.ffn_dim)
    _set_linear(rng, decoder.projection, vocab, width)

    spec.register_source_vocabulary(pieces)
    spec.register_target_vocabulary(pieces)
    return spec


def _decoder_position_encodings() -> np.ndarray:
    """Sinusoidal encodings whose last dimension is a ramp: the decoder's length clock."""
    positions = np.arange(MAX_POSITIONS, dtype=np.float32)[:, None]
    rates = 1.0 / 10000 ** (np.arange(0, D_MODEL, 2, dtype=np.float32) / D_MODEL)
    encodings = np.zeros((MAX_POSITIONS, D_MODEL), dtype=np.float32)
    encodings[:, 0::2] = np.sin(positions * rates)
    encodings[:, 1::2] = np.cos(positions * rates)
    encodings[:, CLOCK_DIM] = positions[:, 0] / CLOCK_PERIOD
    return encodings


def _add_length_clock(decoder, eos_id: int) -> None:
    """Make ``</s>`` more likely as the output grows, so outputs have sentence lengths.

    Random weights alone give a constant end-of-sentence probability: most outputs stop after
    a token or two and a few run to CTranslate2's max_decoding_length. Here only the position
    ramp writes the clock dimension of the residual stream, and only ``</s>`` reads it.
    """
    decoder.embeddings.weight[:, CLOCK_DIM] = 0.0
    for layer in decoder.layer:
        for writer in (
            layer.self_attention.linear[1],
            layer.attention.linear[2],
            layer.ffn.linear_1,
        ):
            writer.weight[CLOCK_DIM, :] = 0.0
            writer.bias[CLOCK_DIM] = 0.0
    decoder.projection.weight[eos_id, :] = 0.0
    decoder.projection.weight[eos_id, CLOCK_DIM] = EOS_CLOCK_WEIGHT
    decoder.projection.bias[eos_id] = EOS_BIAS


def _normal(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.normal(0.0, 1.0 / np.sqrt(shape[-1]), size=shape).astype(np.float32)


def _set_norm(spec, width: int) -> None:
    spec.gamma = np.ones(width, dtype=np.float32)
    spec.beta = np.zeros(width, dtype=np.float32)


def _set_linear(rng: np.random.Generator, spec, out_dim: int, in_dim: int) -> None:
    spec.weight = _normal(rng, out_dim, in_dim)
    spec.bias = np.zeros(out_dim, dtype=np.float32)


def _set_self_attention(rng: np.random.Generator, spec, width: int) -> None:
    _set_norm(spec.layer_norm, width)
    _set_linear(rng, spec.linear[0], 3 * width, width)
    _set_linear(rng, spec.linear[1], width, width)


def _set_ffn(rng: np.random.Generator, spec, width: int, ffn_dim: int) -> None:
    _set_norm(spec.layer_norm, width)
    _set_linear(rng, spec.linear_0, ffn_dim, width)
    _set_linear(rng, spec.linear_1, width, ffn_dim)
