"""Helpers for tests that use Veille as a user does: a config folder, the command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from tests.support.fixture_server import FixtureSites

ROOT = Path(__file__).resolve().parents[2]
SITES = ROOT / "tests" / "fixtures" / "sites"
# Politeness off for our own fixture sites on 127.0.0.1, so tests run fast; the SSRF guard
# refuses loopback addresses unless told, so the fixture sites' address is allowed explicitly.
FAST_CRAWL = [
    "--set", "AUTOTHROTTLE_ENABLED=false",
    "--set", "DOWNLOAD_DELAY=0",
    "--set", "CONCURRENT_REQUESTS_PER_DOMAIN=8",
    "--set", "VEILLE_BULK_INTERVAL=0.2",
    "--set", "VEILLE_ALLOWED_NETWORKS=127.0.0.1/32",
]  # fmt: skip


def write_config(folder: Path, sites: FixtureSites, outlets: list[str] | None = None) -> Path:
    """A config folder with one feed source per fixture outlet and the shipped topic files."""
    manifest = sites.manifest["outlets"]
    sources = []
    for name in outlets or list(manifest):
        outlet = manifest[name]
        sources.append(
            {
                "name": name,
                "type": "feed",
                "urls": [sites.base_url(name) + outlet["feed"]],
                "language": outlet["language"],
                "country": outlet["country"],
                "schedule": {"every": "1h"},
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sources.yaml").write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
    shutil.copytree(ROOT / "config" / "topics", folder / "topics", dirs_exist_ok=True)
    return folder


def run_veille(
    *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the ``veille`` command line in a subprocess (each crawl needs its own reactor)."""
    return subprocess.run(
        [sys.executable, "-m", "veille.cli", *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout,
    )  # fmt: skip


# One places gazetteer for every test's data folder: its files are named by what they are built
# from, and building one costs seconds of CPU that a hundred crawls would each pay again.
GAZETTEER_DIR = Path(tempfile.gettempdir()) / f"veille-test-gazetteer-{os.getuid()}"


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without any ``VEILLE_*`` variable, plus ``values`` (and the
    tests' shared gazetteer cache unless ``values`` names one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEILLE_")}
    env["VEILLE_GAZETTEER_DIR"] = str(GAZETTEER_DIR)
    env.update(values)
    return env
