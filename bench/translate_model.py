"""A fr→en Argos package of the Argos index's size, with random weights, for capacity figures.

    python -m bench.translate_model      (builds it once under the bench's cache; prints where)

In:  local text only: the relevance set's articles (``tests/fixtures/relevance``, about 220 KB of
     French, English and Spanish news) train the SentencePiece model.
Out: an installed package folder, ``<cache>/argos-fr_en-base/packages/translate-fr_en-1_0``
     (``bench.peers.cache_dir``), laid out as argostranslate installs one: ``metadata.json``,
     ``sentencepiece.model``, ``model/`` (CTranslate2). Point ``ARGOS_PACKAGES_DIR`` at its
     ``packages`` folder. About 130 MB; built in a minute or so, then reused.

The shape is that of argos-train's recipe (its ``config.yml``), which made the packages on the
Argos index: a base Transformer, 6 encoder and 6 decoder layers, d_model 512, FFN 2048, 8 heads,
one vocabulary of 50,000 SentencePiece pieces shared by source and target (separate encoder and
decoder embeddings and output projection), saved as int8. The weights are random (seeded), built
by ``tests/support/tiny_argos.py``'s ``random_transformer_spec``.

The SentencePiece model learns what the relevance set supports (about 7,400 pieces); filler
pieces that no text contains, scored below every learned piece, bring it to 50,000. Text is so
cut by the learned pieces, while the embeddings and the projection onto the vocabulary (the
largest matrix a decoding step multiplies) have their real size. A model trained on millions of
sentences would cut French news into fewer pieces than these (``bench.translate`` prints pieces
per word): the figures measured with it err on the slow side.

Random weights do not end a sentence at a sentence's length; ``bench.translate`` pins each
output's length to its input's.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import yaml

from bench.peers import cache_dir
from tests.support.tiny_argos import (
    ModelShape,
    convert_ctranslate2_model,
    piece_list,
    random_transformer_spec,
)
from veille.core.languages import LANGUAGES

ROOT = Path(__file__).resolve().parents[1]
BASE = ModelShape(layers=6, heads=8, d_model=512, ffn_dim=2048)
VOCAB_SIZE = 50_000
SEED = 20250106
BUILD_REVISION = "1"
PACKAGE = "translate-fr_en-1_0"


def training_lines() -> list[str]:
    """Titles and paragraphs of the relevance set's articles, in a stable order."""
    lines = []
    for path in sorted((ROOT / "tests" / "fixtures" / "relevance").glob("*/*.yaml")):
        article = yaml.safe_load(path.read_text(encoding="utf-8"))
        lines.append(article["title"])
        lines += [line.strip() for line in article["text"].split("\n") if line.strip()]
    return lines


def sentencepiece_model(lines: list[str], size: int) -> bytes:
    """A unigram model trained on ``lines``, filled up to ``size`` pieces (see above)."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    trained = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=trained,
        model_type="unigram",
        vocab_size=size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    model = sentencepiece_model_pb2.ModelProto()
    model.ParseFromString(trained.getvalue())
    lowest = min(piece.score for piece in model.pieces)
    for number in range(size - len(model.pieces)):
        filler = model.pieces.add()
        filler.piece = f"\u2af7filler{number:05d}\u2af8"  # ⫷…⫸: no text contains them
        filler.score = lowest - 10.0
        filler.type = sentencepiece_model_pb2.ModelProto.SentencePiece.NORMAL
    return model.SerializeToString()


def build_key(lines: list[str]) -> str:
    parts = [BUILD_REVISION, BASE.__dict__, VOCAB_SIZE, SEED, lines]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()


def real_size_package(cache: Path | None = None) -> Path:
    """The ``packages`` folder holding the package, built if missing or out of date."""
    folder = (cache or cache_dir()) / "argos-fr_en-base"
    packages = folder / "packages"
    lines = training_lines()
    key = build_key(lines)
    metadata_file = packages / PACKAGE / "metadata.json"
    if metadata_file.is_file() and json.loads(metadata_file.read_text())["veille_build_key"] == key:
        return packages
    partial = folder / ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    target = partial / PACKAGE
    target.mkdir(parents=True)
    sp_model = sentencepiece_model(lines, VOCAB_SIZE)
    (target / "sentencepiece.model").write_bytes(sp_model)
    spec = random_transformer_spec(piece_list(sp_model), BASE, np.random.default_rng(SEED))
    convert_ctranslate2_model(spec, target / "model")
    metadata = {
        "package_version": "1.0",
        "argos_version": "1.9",
        "from_code": "fr",
        "from_name": LANGUAGES["fr"].name,
        "to_code": "en",
        "to_name": LANGUAGES["en"].name,
        "type": "translate",
        "links": [],
        "veille_build_key": key,
    }
    (target / "metadata.json").write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    shutil.rmtree(packages, ignore_errors=True)
    partial.rename(packages)
    return packages


if __name__ == "__main__":
    print(real_size_package())
