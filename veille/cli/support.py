"""What every ``veille`` command shares: consoles, failing with an exit status, and getting the
configuration, environment and Elasticsearch client or exiting with a clear message.

Exit status: 0 success, 1 the work failed, 2 invalid configuration or arguments,
3 a service (Elasticsearch, Redis) unreachable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, NoReturn, TypeVar

import typer
from elastic_transport import ConnectionError as ESConnectionError
from elastic_transport import TransportError
from elasticsearch import ApiError
from elasticsearch.helpers import BulkIndexError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from veille.core.config import Config, ConfigError, Environment, load_config

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from veille.core.es import IndexNames
    from veille.core.search import Hit

T = TypeVar("T")
out = Console()
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, status: int) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(status)


def config_or_exit() -> Config:
    try:
        return load_config()
    except ConfigError as exc:
        fail(f"invalid configuration: {exc}", 2)


def env_or_exit() -> Environment:
    try:
        return Environment.from_env()
    except ConfigError as exc:
        fail(f"invalid environment: {exc}", 2)


def client_or_exit(env: Environment) -> Elasticsearch:
    from veille.core.es import make_client

    client = make_client(env, max_retries=1)
    try:
        client.info()
    except (ESConnectionError, TransportError, ApiError) as exc:
        fail(
            f"cannot reach Elasticsearch at {env.es_url} ({exc.__class__.__name__}). "
            "Start one with `scripts/es-local start` and set VEILLE_ES_URL to the URL it prints.",
            3,
        )
    return client


def prune_index(
    index_of: Callable[[IndexNames], str], what: str, prune: Callable[[Elasticsearch, str], T]
) -> tuple[str, T] | None:
    """Run ``prune(client, index)`` on one index of the deployment (``veille clusters prune``,
    ``veille rejected prune``); None, with a line saying so, when the index does not exist yet.
    An Elasticsearch failure during the prune exits with status 1 (running it again is safe)."""
    from veille.core.es import IndexNames

    env = env_or_exit()
    client = client_or_exit(env)
    index = index_of(IndexNames(env.index_prefix))
    try:
        if not client.indices.exists_alias(name=index):
            out.print(f"no {what} index {index}: nothing to prune")
            return None
        return index, prune(client, index)
    except (ApiError, TransportError, BulkIndexError) as exc:
        fail(f"prune stopped, run it again: {escape(str(exc))}", 1)
    finally:
        client.close()


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            fail(f"--set {pair!r}: write NAME=VALUE, e.g. --set DOWNLOAD_DELAY=2", 2)
        overrides[name] = value
    return overrides


def print_crawl_summary(results: list[dict]) -> None:
    for result in results:
        table = Table(title=f"{result['spider']}: {', '.join(result['sources'])}")
        table.add_column("")
        table.add_column("count", justify="right")
        always = ("responses", "already_indexed_skipped", "extracted", "indexed", "errors")
        for key, value in result.items():
            if isinstance(value, int) and (value or key in always):
                table.add_row(key.replace("_", " "), str(value))
        for reason, count in sorted(result["dropped"].items()):
            table.add_row(f"dropped: {reason}", str(count))
        out.print(table)


def print_hits(
    title: str, hits: Sequence[Hit], when: Literal["published", "seen"], scored: bool
) -> None:
    """Articles as one table (``veille search``, ``veille alerts test``): the date, language and
    source, then the title with its translation, the matched words and the link; the score
    when the hits are ranked by it."""
    table = Table(title=title, show_lines=True)
    for column in (when, "lang", "source", "title / snippet", *(["score"] if scored else [])):
        table.add_column(column, overflow="fold")
    for hit in hits:
        translated = f"\n[dim]{escape(hit.translated_title)}[/]" if hit.translated_title else ""
        if hit.cluster_articles and hit.cluster_articles > 1:
            translated += f"\n[dim]story: {hit.cluster_articles} matching articles[/]"
        date = (
            (hit.published_at or "")[:10] if when == "published" else (hit.first_seen_at or "")[:16]
        )
        cells = [
            date,
            hit.language or "",
            escape(hit.source),
            f"[bold]{escape(hit.title)}[/]{translated}\n{escape(hit.snippet)}\n"
            f"[blue]{escape(hit.url)}[/]",
        ]
        table.add_row(*cells, *([f"{hit.score:.1f}"] if scored else []))
    out.print(table)
