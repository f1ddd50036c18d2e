"""Arrows one way: every module's imports, read from its source, go down the layers only.

The layers, bottom up (README, "Architecture"):

- ``veille.core``: the schema, configuration, Elasticsearch access, text, clusters, translation,
  spool, mail; shared by everything above;
- ``pipelines`` (the stages) and ``alerts``, each on the core alone;
- ``crawler`` (spiders, middlewares, extensions, extraction), which runs the stages;
- ``veille.ops`` (crawl runs, scheduling, health, workers, Kibana, backfill, rescoring);
- ``veille.cli``, every ``veille …`` command.

Imports inside functions count the same as those at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("veille", "pipelines", "alerts", "crawler")

# Which layers each layer may import (its own included).
ALLOWED = {
    "veille.core": {"veille.core"},
    "pipelines": {"veille.core", "pipelines"},
    "alerts": {"veille.core", "alerts"},
    "crawler": {"veille.core", "pipelines", "crawler"},
    "veille.ops": {"veille.core", "pipelines", "alerts", "crawler", "veille.ops"},
    "veille.cli": {"veille.core", "pipelines", "alerts", "crawler", "veille.ops", "veille.cli"},
    "veille": set(),
}


def layer_of(module: str) -> str:
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    raise AssertionError(f"{module} belongs to no layer: add it to ALLOWED in {__file__}")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imported(module: str, path: Path) -> list[tuple[str, int]]:
    """Every project module ``module`` imports, wherever the import statement is."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names.append((base, node.lineno))
            # ``from veille import ops`` imports the package veille.ops
            names += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return [(name, line) for name, line in names if name.split(".")[0] in PACKAGES]


def upward_imports() -> list[str]:
    found = modules()
    wrong = []
    for module, path in found.items():
        layer = layer_of(module)
        for name, line in imported(module, path):
            if name not in found:  # ``from veille.core.config import Source``: the module
                continue
            target = layer_of(name)
            if target not in ALLOWED[layer]:
                where = path.relative_to(ROOT)
                wrong.append(f"{where}:{line}: {layer} imports {name} ({target})")
    return wrong


def test_every_import_goes_down_the_layers():
    assert upward_imports() == []


def test_an_upward_import_inside_a_function_is_found(tmp_path, monkeypatch):
    """The check reads imports wherever they are, not only at the top of a module."""
    core = tmp_path / "veille" / "core"
    ops = tmp_path / "veille" / "ops"
    for folder in (core, ops, tmp_path / "pipelines", tmp_path / "alerts", tmp_path / "crawler"):
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("")
    (tmp_path / "veille" / "__init__.py").write_text("")
    (ops / "runs.py").write_text("RUNS = 1\n")
    (core / "config.py").write_text("def load():\n    from veille.ops.runs import RUNS\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert upward_imports() == [
        "veille/core/config.py:2: veille.core imports veille.ops.runs (veille.ops)"
    ]
