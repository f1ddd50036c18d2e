"""Docker Compose's passwords: generated on the first start, kept in volumes, shown, changed.

In:  the folder the compose file mounts the password volumes under (``/run/secrets``), with one
     sub-folder per container user: ``elasticsearch/``, ``kibana/`` and ``veille/``; optional
     ``ELASTIC_PASSWORD``, ``KIBANA_SYSTEM_PASSWORD`` and ``VEILLE_FEEDBACK_SECRET`` (read once,
     on the first start, for an operator who wants to choose them); for ``change``,
     Elasticsearch at ``VEILLE_ES_URL``.
Out: ``init`` writes each secret that does not exist yet (32 random URL-safe characters) into
     ``veille/``, and copies each into the folder of every container that reads it, owned by
     that container's user with mode 0600 (the Elasticsearch image refuses a password file with
     any other mode than 0400 or 0600); ``show`` prints the passwords and how to change them;
     ``change USER`` gives USER a new password in Elasticsearch first, then in the files.

    python -m veille.ops.compose_passwords init|show|change USER [--folder DIR]

Elasticsearch reads ``elasticsearch/elastic_password`` (``ELASTIC_PASSWORD_FILE``) when it
first creates its security index, and its health check reads it at each check; Kibana reads
``kibana/kibana_system_password`` when it starts; Veille's containers read ``veille/``
(``VEILLE_ES_PASSWORD_FILE``, ``VEILLE_KIBANA_SYSTEM_PASSWORD_FILE``,
``VEILLE_FEEDBACK_SECRET_FILE``: the key of the verdict links, which is not a password and is
neither shown nor changed here, since changing it voids the links already sent).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_FOLDER = Path("/run/secrets")
# The canonical copies: Veille's setup and scheduler read them, and `show` prints them.
CANONICAL = "veille"


@dataclass(frozen=True)
class Secret:
    name: str  # for a password, the Elasticsearch user's name
    file_name: str
    initial_from: str  # the .env variable that may choose it before the first start
    readers: tuple[str, ...]  # the sub-folders (containers) that get a copy
    purpose: str


PASSWORDS = (
    Secret("elastic", "elastic_password", "ELASTIC_PASSWORD", ("elasticsearch", CANONICAL),
           "your login to Kibana"),
    Secret("kibana_system", "kibana_system_password", "KIBANA_SYSTEM_PASSWORD",
           ("kibana", CANONICAL), "Kibana's own; nobody types it"),
)  # fmt: skip
FEEDBACK_KEY = Secret("feedback", "feedback_secret", "VEILLE_FEEDBACK_SECRET", (CANONICAL,),
                      "signs the verdict links of alert emails")  # fmt: skip
SECRETS = (*PASSWORDS, FEEDBACK_KEY)
# The user id each container runs as: Elasticsearch's and Kibana's images run as 1000, ours as
# 10001 (the Dockerfile's useradd).
OWNERS = {"elasticsearch": 1000, "kibana": 1000, CANONICAL: 10001}


class PasswordError(Exception):
    """Something the operator must fix; the message says what and how."""


def _write(path: Path, value: str, owner: int | None) -> None:
    """``value`` into ``path`` atomically, mode 0600, owned by ``owner`` when given."""
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(value)
        file.flush()
        os.fsync(file.fileno())
    if owner is not None:
        os.chown(temporary, owner, owner)
    os.replace(temporary, path)


def _folder(root: Path, reader: str, owners: dict[str, int] | None) -> Path:
    folder = root / reader
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    if owners is not None:
        os.chown(folder, owners[reader], owners[reader])
    return folder


def read(root: Path, password: Secret) -> str | None:
    """The canonical copy of a secret, or None before the first ``init``."""
    path = root / CANONICAL / password.file_name
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
    except PermissionError:
        raise PasswordError(f"cannot read {path}: run this as root or as uid "
                            f"{OWNERS[CANONICAL]} (the veille user)") from None  # fmt: skip


def store(root: Path, password: Secret, value: str, owners: dict[str, int] | None) -> None:
    """``value`` in every reader's folder (the canonical copy last: it says the rest is done)."""
    for reader in sorted(password.readers, key=lambda name: name == CANONICAL):
        _write(_folder(root, reader, owners) / password.file_name, value, owners and owners[reader])


def init(root: Path, owners: dict[str, int] | None = OWNERS) -> list[str]:
    """Generate the secrets that do not exist yet, and bring every copy up to date.

    Returns the files created by this call. ``owners`` None leaves the files owned by whoever
    runs this.
    """
    created = []
    for secret in SECRETS:
        value = read(root, secret)
        if value is None:
            value = os.environ.get(secret.initial_from) or secrets.token_urlsafe(24)
            created.append(secret.file_name)
        store(root, secret, value, owners)
    return created


def describe(root: Path) -> str:
    """What ``show`` prints: each password, what it is for, and how to change one."""
    width = max(len(p.name) for p in PASSWORDS)
    lines = ["Passwords (generated on the first start, kept in Docker volumes):"]
    for password in PASSWORDS:
        value = read(root, password)
        if value is None:
            raise PasswordError(
                f"no {password.name} password in {root / CANONICAL}: run "
                "`docker compose up -d` (its passwords service creates them)"
            )
        lines.append(f"  {password.name:<{width}}  {value}  {password.purpose}")
    lines += [
        "To change one: docker compose run --rm passwords change elastic",
        "(or kibana_system), then restart what it names.",
    ]
    return "\n".join(lines)


RESTART = {
    "elastic": "docker compose restart scheduler serve (and worker, if you run workers)",
    "kibana_system": "docker compose restart kibana",
}


def change(root: Path, user: str, owners: dict[str, int] | None = OWNERS) -> str:
    """A new random password for ``user``, set in Elasticsearch, then written to the files."""
    from elastic_transport import TransportError
    from elasticsearch import ApiError

    from veille.core.config import Environment
    from veille.core.es import make_client

    chosen = {password.name: password for password in PASSWORDS}[user]
    elastic = read(root, PASSWORDS[0])
    if elastic is None:
        raise PasswordError(f"no elastic password in {root / CANONICAL}: start the stack first")
    env = Environment.from_env()
    value = secrets.token_urlsafe(24)
    as_elastic = dataclasses.replace(env, es_user="elastic", es_password=elastic, es_api_key=None)
    client = make_client(as_elastic, max_retries=1)
    try:
        client.security.change_password(username=user, password=value)
    except (ApiError, TransportError) as exc:
        raise PasswordError(
            f"Elasticsearch at {env.es_url} did not change the {user} password "
            f"({exc.__class__.__name__}: {exc}); nothing was changed. Is it running, with "
            "security on?"
        ) from None
    finally:
        client.close()
    store(root, chosen, value, owners)
    return f"{user}: new password {value}\nnow: {RESTART[user]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m veille.ops.compose_passwords",
        description="Docker Compose's generated passwords.",
    )
    parser.add_argument(
        "--folder", type=Path, default=DEFAULT_FOLDER,
        help=f"where the password volumes are mounted (default {DEFAULT_FOLDER})",
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init", help="create the missing passwords, copy each where it is read")
    commands.add_parser("show", help="print the passwords and how to change them")
    changing = commands.add_parser("change", help="a new password for USER")
    changing.add_argument("user", metavar="USER", choices=[p.name for p in PASSWORDS])
    args = parser.parse_args(argv)
    owners = OWNERS if os.geteuid() == 0 else None
    try:
        if args.command == "init":
            created = init(args.folder, owners)
            print(f"created: {', '.join(created)}" if created
                  else "passwords: kept from an earlier start")  # fmt: skip
        elif args.command == "show":
            print(describe(args.folder))
        else:
            print(change(args.folder, args.user, owners))
    except (PasswordError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
