"""Distributed mode's commands: ``veille worker``, ``veille push`` and ``veille queue``.

In:  ``VEILLE_REDIS_URL`` (required: these commands exist for distributed mode), the config
     folder, the environment, command-line options (``--config`` comes from :mod:`veille.cli`).
Out: a crawler worker in the foreground until SIGTERM or Ctrl-C (or ``--max-idle``), with its
     summary at the end; feed URLs queued for the workers; the queue's state as a table or JSON.
     Exit status as in :mod:`veille.cli.support`; 3 also when Redis cannot be reached.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from veille.cli import support as cli

app = typer.Typer()


def _redis():
    """A reachable Redis client for ``VEILLE_REDIS_URL``, or exit with the reason."""
    import redis

    from veille.core.config import ConfigError
    from veille.core.distributed import connect, redis_url

    try:
        url = redis_url()
    except ConfigError as exc:
        cli.fail(f"invalid environment: {exc}", 2)
    if url is None:
        cli.fail(
            "distributed mode is off: set VEILLE_REDIS_URL (e.g. redis://127.0.0.1:6379/0) "
            "to the Redis shared by the scheduler and the workers",
            2,
        )
    client = connect(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        cli.fail(f"cannot reach Redis at {url}: {exc}", 3)
    return client


@app.command()
def worker(
    settings: Annotated[
        list[str] | None, typer.Option("--set", help="Scrapy setting for this worker: NAME=VALUE.")
    ] = None,
    max_idle: Annotated[
        float,
        typer.Option("--max-idle", min=0, help="Stop after this many seconds without work."),
    ] = 0,
) -> None:
    """Run a crawler worker: crawl the feeds pushed into Redis, sharing the queue with the others.

    Stops on SIGTERM or Ctrl-C (pages in flight are finished), or with --max-idle.
    """
    from veille.ops.worker import run_worker

    config = cli.config_or_exit()
    env = cli.env_or_exit()
    _redis().close()
    cli.client_or_exit(env).close()
    overrides = cli.parse_overrides(settings or [])
    if max_idle:
        overrides["VEILLE_WORKER_MAX_IDLE"] = str(max_idle)
    summary = run_worker(config, overrides)
    cli.print_crawl_summary([summary.as_dict()])
    if summary.finish_reason not in ("finished", "shutdown"):
        raise typer.Exit(1)


@app.command()
def push(
    source: Annotated[
        str | None, typer.Argument(help="Source name (see `veille sources`).")
    ] = None,
    all_sources: Annotated[bool, typer.Option("--all", help="Every enabled source.")] = False,
) -> None:
    """Queue sources for the workers now, as the scheduler does on each source's schedule."""
    from veille.core.config import ConfigError
    from veille.core.distributed import RedisKeys, push_sources

    if (source is None) == (not all_sources):
        cli.fail("name one SOURCE or pass --all", 2)
    config = cli.config_or_exit()
    env = cli.env_or_exit()
    try:
        chosen = (
            [s for s in config.sources if s.enabled and s.type == "feed"]
            if all_sources
            else [config.source(source or "")]
        )
    except ConfigError as exc:
        cli.fail(str(exc), 2)
    wrong = [s.name for s in chosen if s.type != "feed"]
    if wrong:
        cli.fail(f"workers read feed sources only; not {', '.join(wrong)}", 2)
    client = _redis()
    added = push_sources(client, RedisKeys(env.index_prefix), chosen)
    total = sum(len(s.urls) for s in chosen)
    cli.out.print(
        f"queued {total} feed URLs of {len(chosen)} sources ({total - added} were still waiting)"
    )


@app.command(name="queue")
def queue_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the distributed queue: feeds waiting, article pages queued, live workers."""
    from veille.core.distributed import RedisKeys, queue_status

    env = cli.env_or_exit()
    status = queue_status(_redis(), RedisKeys(env.index_prefix))
    if as_json:
        print(json.dumps(status, indent=2))
        return
    cli.out.print(
        f"feeds waiting: {status['feeds_waiting']} · "
        f"article pages queued: {status['requests_queued']} · "
        f"live workers: {len(status['workers'])}"
    )
    if status["workers"]:
        table = Table(title="live workers (heartbeat every few seconds)")
        for column in ("worker", "since", "last seen", "feeds", "pages", "indexed", "spooled"):
            table.add_column(column, justify="left" if column == "worker" else "right")
        for w in status["workers"]:
            table.add_row(
                escape(w["worker"]), w["started_at"][:19], w["seen_at"][11:19],
                str(w["feeds_read"]), str(w["pages_fetched"]), str(w["indexed"]),
                str(w["spooled"]),
            )  # fmt: skip
        cli.out.print(table)
