"""Shared test fixtures: a real Elasticsearch, our fixture news sites, a config pointing at them.

Elasticsearch: ``VEILLE_ES_URL`` when set (``scripts/test`` sets it), otherwise the local node
from ``scripts/es-local start`` is started (or reused). Each test module gets its own index
prefix, so tests never see each other's articles.
"""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from tests.support.runner import ROOT, SITES


@pytest.fixture(scope="session")
def es_url() -> str:
    url = os.environ.get("VEILLE_ES_URL")
    if not url:
        started = subprocess.run(
            [str(ROOT / "scripts" / "es-local"), "start"],
            capture_output=True, text=True, check=True, timeout=600,
        )  # fmt: skip
        url = started.stdout.strip().splitlines()[-1]
    return url


@pytest.fixture
def es(es_url: str, index_prefix: str):
    from veille.core.config import Environment
    from veille.core.es import make_client

    client = make_client(Environment(es_url=es_url, index_prefix=index_prefix))
    yield client
    client.close()


@pytest.fixture(scope="module")
def index_prefix(es_url: str):
    """A fresh index prefix for one test module; its indices are deleted afterwards."""
    from veille.core.config import Environment
    from veille.core.es import delete_indices, make_client

    prefix = f"vt-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = make_client(Environment(es_url=es_url, index_prefix=prefix))
    delete_indices(client, prefix)
    client.close()


@pytest.fixture(scope="session")
def sites():
    from tests.support.fixture_server import FixtureSites

    with FixtureSites(SITES) as running:
        yield running
