"""Docker Compose's generated passwords (veille/ops/compose_passwords.py), run on a folder here.

No Docker engine runs on our machines: the passwords service's script is run as the container
runs it, on a temporary folder laid out like its volume mounts (``elasticsearch/``, ``kibana/``,
``veille/``). ``change`` is run against the local Elasticsearch node, which has no security
API: it must refuse and leave every file as it was.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.runner import ROOT, clean_env
from veille.core.config import ConfigError, Environment
from veille.ops.compose_passwords import OWNERS, PASSWORDS, init

READERS = {
    "elastic_password": ("elasticsearch", "veille"),
    "kibana_system_password": ("kibana", "veille"),
    "feedback_secret": ("veille",),
}


def passwords_command(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m veille.ops.compose_passwords`` as the compose file runs it."""
    return subprocess.run(
        [sys.executable, "-m", "veille.ops.compose_passwords", "--folder", str(folder), *args],
        capture_output=True, text=True, cwd=ROOT, env=clean_env(**env), timeout=120,
    )  # fmt: skip


def copies(folder: Path) -> dict[str, str]:
    """Every password file under ``folder``: relative path → content."""
    return {
        str(path.relative_to(folder)): path.read_text()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_first_start_generates_each_password_once_and_copies_it_to_each_reader(tmp_path):
    created = passwords_command(tmp_path, "init")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == (
        "created: elastic_password, kibana_system_password, feedback_secret"
    )
    first = copies(tmp_path)

    assert sorted(first) == sorted(
        f"{reader}/{name}" for name, readers in READERS.items() for reader in readers
    )
    for name, readers in READERS.items():
        [value] = {first[f"{reader}/{name}"] for reader in readers}
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", value), "32 random URL-safe characters"
    assert len({first[f"veille/{name}"] for name in READERS}) == len(READERS)
    # the Elasticsearch image refuses a password file that others could read (0400 or 0600)
    for path in tmp_path.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o600 if path.is_file() else 0o700), path
        # the container user that reads it owns it (when run as root, as the compose file does)
        reader = path.relative_to(tmp_path).parts[0]
        assert path.stat().st_uid == (OWNERS[reader] if os.geteuid() == 0 else os.geteuid())

    again = passwords_command(tmp_path, "init")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "passwords: kept from an earlier start"
    assert copies(tmp_path) == first


def test_a_lost_copy_is_restored_from_veilles_and_a_chosen_password_is_used_once(tmp_path):
    init(tmp_path, owners=None)
    kept = copies(tmp_path)
    (tmp_path / "kibana" / "kibana_system_password").unlink()
    init(tmp_path, owners=None)
    assert copies(tmp_path) == kept

    chosen = tmp_path / "chosen"
    created = passwords_command(chosen, "init", ELASTIC_PASSWORD="my-own-elastic-pw")
    assert created.returncode == 0, created.stderr
    assert (chosen / "elasticsearch" / "elastic_password").read_text() == "my-own-elastic-pw"
    later = passwords_command(chosen, "init", ELASTIC_PASSWORD="changed-in-env-later")
    assert (chosen / "veille" / "elastic_password").read_text() == "my-own-elastic-pw", later


def test_setup_prints_the_passwords_and_how_to_change_them(tmp_path):
    before = passwords_command(tmp_path, "show")
    assert before.returncode == 1
    assert "no elastic password" in before.stderr and "docker compose up -d" in before.stderr

    init(tmp_path, owners=None)
    shown = passwords_command(tmp_path, "show")

    assert shown.returncode == 0, shown.stderr
    for password in PASSWORDS:
        value = (tmp_path / "veille" / password.file_name).read_text()
        assert re.search(rf"^  {password.name} +{re.escape(value)}  \w", shown.stdout, re.M)
    # the key of the verdict links is not a password anyone types: it is not shown
    assert (tmp_path / "veille" / "feedback_secret").read_text() not in shown.stdout
    assert "docker compose run --rm passwords change elastic" in shown.stdout
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80


def test_a_change_that_elasticsearch_refuses_changes_no_file(tmp_path, es_url):
    init(tmp_path, owners=None)
    kept = copies(tmp_path)

    # the local node has no security API (no X-Pack): it cannot change a password
    refused = passwords_command(tmp_path, "change", "elastic", VEILLE_ES_URL=es_url)

    assert refused.returncode == 1
    assert "did not change the elastic password" in refused.stderr
    assert "nothing was changed" in refused.stderr
    assert copies(tmp_path) == kept
    assert kept["veille/elastic_password"] not in refused.stdout + refused.stderr


def test_the_owners_are_the_users_the_images_run_as():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"useradd --uid {OWNERS['veille']} " in dockerfile
    assert OWNERS["elasticsearch"] == OWNERS["kibana"] == 1000  # both Elastic images' user


def test_veille_reads_its_passwords_from_the_files_compose_names(tmp_path, monkeypatch):
    secret = tmp_path / "elastic_password"
    secret.write_text("from-a-file\n")
    monkeypatch.delenv("VEILLE_ES_PASSWORD", raising=False)
    monkeypatch.setenv("VEILLE_ES_PASSWORD_FILE", str(secret))
    assert Environment.from_env().es_password == "from-a-file"

    monkeypatch.setenv("VEILLE_ES_PASSWORD", "from-the-variable")
    with pytest.raises(ConfigError, match="both VEILLE_ES_PASSWORD and VEILLE_ES_PASSWORD_FILE"):
        Environment.from_env()

    monkeypatch.delenv("VEILLE_ES_PASSWORD")
    monkeypatch.setenv("VEILLE_ES_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError) as error:
        Environment.from_env()
    assert "VEILLE_ES_PASSWORD_FILE" in str(error.value) and "missing" in str(error.value)


def test_the_verdict_links_are_signed_with_the_generated_key(tmp_path, monkeypatch):
    from veille.core.feedback import FeedbackSettings

    init(tmp_path, owners=None)
    monkeypatch.delenv("VEILLE_FEEDBACK_SECRET", raising=False)
    monkeypatch.setenv("VEILLE_FEEDBACK_SECRET_FILE", str(tmp_path / "veille" / "feedback_secret"))
    monkeypatch.setenv("VEILLE_FEEDBACK_URL", "http://localhost:8080")
    settings = FeedbackSettings.from_env(need_url=True)
    assert settings is not None
    assert settings.secret == (tmp_path / "veille" / "feedback_secret").read_bytes()
