"""docker-compose.yml, .env.example and the Dockerfile agree, and Compose itself accepts them.

No Docker engine runs here. Debian's ``docker-compose`` (a real Compose implementation) resolves
and validates the file without one (``docker-compose config``); ``scripts/test`` installs it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.runner import ROOT, clean_env

COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
# ${NAME}, ${NAME:-default}, ${NAME:?error}; not $${NAME}, which Compose leaves to the container.
COMPOSE_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")


def documented_variables() -> dict[str, str]:
    """Each ``NAME=value`` line of .env.example and the comment lines just above it."""
    documented, comment = {}, []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            comment.append(line.lstrip("# "))
        elif "=" in line:
            name = line.split("=", 1)[0].strip()
            documented[name] = " ".join(comment).strip()
        else:
            comment = []
    return documented


def compose_config(env_file: Path) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` with ``env_file`` alone (this shell's own values left out)."""
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is missing: apt-get install -y docker-compose (scripts/test)"
    return subprocess.run(
        [compose, "--project-directory", str(ROOT), "-f", str(COMPOSE),
         "--env-file", str(env_file), "config"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={k: v for k, v in clean_env().items() if k not in documented_variables()},
    )  # fmt: skip


@pytest.fixture
def no_env_file(tmp_path: Path) -> Path:
    """A fresh clone has no .env: an empty one stands for it (a developer's .env is not read)."""
    path = tmp_path / ".env"
    path.write_text("", encoding="utf-8")
    return path


def test_every_variable_the_compose_file_uses_is_documented_in_env_example():
    used = set(COMPOSE_VARIABLE.findall(COMPOSE.read_text(encoding="utf-8")))
    documented = documented_variables()

    assert used, "the compose file reads no variable: the pattern is wrong"
    assert sorted(used - documented.keys()) == []
    assert sorted(name for name in used if not documented[name]) == [], "no comment above"
    assert sorted(documented.keys() - used) == [], "documented but not used by the compose file"


def test_no_secret_is_committed_in_env_example():
    documented = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert documented["ELASTIC_PASSWORD"] == ""
    assert documented["KIBANA_SYSTEM_PASSWORD"] == ""
    assert documented["VEILLE_SMTP_PASSWORD"] == ""
    assert documented["VEILLE_FEEDBACK_SECRET"] == ""
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in ignored, "the build context must not carry the local secrets"


def _mounts(service: dict) -> list[tuple[str, str]]:
    """(volume, folder in the container) of each volume a resolved service mounts."""
    return [(str(m).split(":")[0], str(m).split(":")[1]) for m in service.get("volumes", [])]


def _reads_only_mounted_files(service: dict) -> list[str]:
    """Password files the service reads (``*_FILE`` variables, paths in its command) that no
    volume of the service holds."""
    command = " ".join(service.get("command") or [])
    wanted = [v for k, v in service.get("environment", {}).items() if k.endswith("_FILE") and v]
    wanted += re.findall(r"/run/secrets/[\w/.-]+", command)
    folders = [folder for _, folder in _mounts(service)]
    return [path for path in wanted if not any(path.startswith(f + "/") for f in folders)]


def test_compose_file_validates_with_docker_compose_and_no_env_file(no_env_file):
    result = compose_config(no_env_file)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]

    core = {"passwords", "elasticsearch", "kibana", "mailpit", "setup", "scheduler", "serve"}
    distributed = {
        name for name, svc in services.items() if "distributed" in svc.get("profiles", [])
    }
    assert set(services) - distributed == core, "plain `docker compose up -d` starts these"
    assert distributed == {"redis", "worker"}, "--profile distributed adds Redis and workers"
    es, kibana = services["elasticsearch"], services["kibana"]
    es_version = es["image"].rsplit(":", 1)[1]
    assert re.fullmatch(r"8\.\d+\.\d+", es_version), es["image"]
    assert kibana["image"] == f"docker.elastic.co/kibana/kibana:{es_version}"
    assert re.fullmatch(r"axllent/mailpit:v\d+\.\d+\.\d+", services["mailpit"]["image"])

    # Security on, with the passwords the passwords service generates before anything starts.
    passwords = services["passwords"]
    assert passwords["entrypoint"] == ["python", "-m", "veille.ops.compose_passwords"]
    assert passwords["command"] == ["init"] and passwords["restart"] == "no"
    assert passwords["user"] == "0", "it gives each copy to the user of the container reading it"
    assert es["depends_on"]["passwords"]["condition"] == "service_completed_successfully"
    assert es["environment"]["xpack.security.enabled"] == "true"
    assert es["environment"]["ELASTIC_PASSWORD_FILE"] == (
        "/run/secrets/elasticsearch/elastic_password"
    )
    assert "ELASTIC_PASSWORD" not in es["environment"], "the image refuses both"
    assert "$$(cat" in " ".join(es["healthcheck"]["test"]), "the health check reads the file"
    assert kibana["environment"]["ELASTICSEARCH_USERNAME"] == "kibana_system"
    assert "ELASTICSEARCH_PASSWORD" not in kibana["environment"]
    assert kibana["command"][-1].endswith("exec /usr/local/bin/kibana-docker")
    for name, service in services.items():
        assert _reads_only_mounted_files(service) == [], f"{name} reads a file it cannot see"
    # each password volume is written by the passwords service, read-only everywhere else
    for name, service in services.items():
        for mount in service.get("volumes", []) if name != "passwords" else []:
            assert not mount.split(":")[0].endswith("-passwords") or mount.endswith(":ro"), name
    assert {v for v, _ in _mounts(kibana)} & {"es-passwords", "veille-passwords"} == set()
    # the .env choices reach the passwords service only, for the first start
    chosen = {"ELASTIC_PASSWORD", "KIBANA_SYSTEM_PASSWORD", "VEILLE_FEEDBACK_SECRET"}
    for name, service in services.items():
        assert name == "passwords" or not chosen & set(service.get("environment", {})), name

    setup = services["setup"]
    assert setup["command"][-1] == (
        "veille setup --kibana && python -m veille.ops.compose_passwords show"
    )
    assert setup["environment"]["VEILLE_KIBANA_SYSTEM_PASSWORD_FILE"].startswith(
        "/run/secrets/veille/"
    )
    assert setup["depends_on"]["elasticsearch"]["condition"] == "service_healthy"
    assert setup["restart"] == "no"

    scheduler = services["scheduler"]
    assert scheduler["command"] == ["veille", "schedule"]
    assert scheduler["restart"] == "unless-stopped"
    assert scheduler["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert scheduler["environment"]["VEILLE_SMTP_HOST"] == "mailpit"
    assert scheduler["environment"]["VEILLE_ES_PASSWORD_FILE"] == (
        "/run/secrets/veille/elastic_password"
    )
    assert "veille-data:/app/data:rw" in scheduler["volumes"]

    serve = services["serve"]
    assert serve["command"] == ["veille", "serve", "--host", "0.0.0.0", "--port", "8080"]
    assert serve["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert serve["ports"] == ["127.0.0.1:8080:8080/tcp"]
    # The scheduler signs the links with the key serve checks them with: the generated one.
    for name in ("scheduler", "serve"):
        environment = services[name]["environment"]
        assert environment["VEILLE_FEEDBACK_SECRET_FILE"] == "/run/secrets/veille/feedback_secret"
        assert "VEILLE_FEEDBACK_SECRET" not in environment
        assert environment["VEILLE_FEEDBACK_URL"] == "http://localhost:8080"

    for name in ("elasticsearch", "kibana", "mailpit", "serve"):
        assert services[name]["healthcheck"]["test"], f"{name} has no health check"
    assert "esdata:/usr/share/elasticsearch/data:rw" in es["volumes"]
    assert set(config["volumes"]) == {
        "esdata", "kibanadata", "veille-data", "es-passwords", "kibana-passwords",
        "veille-passwords",
    }  # fmt: skip
    for service in services.values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{port} is published beyond this machine"


def test_a_copy_of_env_example_starts_unedited_and_passwords_chosen_there_reach_the_first_start(
    tmp_path,
):
    unedited = compose_config(ENV_EXAMPLE)
    assert unedited.returncode == 0, unedited.stderr

    chosen = tmp_path / ".env"
    chosen.write_text(
        ENV_EXAMPLE.read_text(encoding="utf-8").replace(
            "\nELASTIC_PASSWORD=\n", "\nELASTIC_PASSWORD=elastic-pw-123\n"
        ),
        encoding="utf-8",
    )
    result = compose_config(chosen)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert services["passwords"]["environment"]["ELASTIC_PASSWORD"] == "elastic-pw-123"


def test_build_arguments_of_the_compose_file_are_declared_by_the_dockerfile():
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    declared = set(re.findall(r"^ARG (\w+)", DOCKERFILE.read_text(encoding="utf-8"), re.M))

    passed = set(compose["x-veille"]["build"]["args"])

    assert passed and passed <= declared
