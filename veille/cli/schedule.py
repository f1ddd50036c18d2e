"""The scheduler's commands: ``veille schedule``, ``jobs``, ``run-now`` and ``runs``.

In:  command-line options (the shared ones, ``--config``, come from :mod:`veille.cli`).
Out: the scheduler in the foreground, or tables (``--json`` for scripts) on stdout. Exit status
     as in :mod:`veille.cli.support`; ``run-now`` exits 1 when the crawl did not succeed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from veille.cli import support as cli

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from veille.core.config import Environment

app = typer.Typer()

STATUS_STYLE = {
    "success": "green",
    "no_feed": "bold red",
    "failed": "bold red",
    "timeout": "bold red",
    "stopped": "yellow",
}


def _crawls_index(env: Environment) -> tuple[Elasticsearch, str]:
    """A reachable client and the crawls alias, with the indices and their mappings up to date
    (a run record with a field the stored mapping lacks would be refused)."""
    from veille.core.es import IndexNames, setup_indices

    client = cli.client_or_exit(env)
    setup_indices(client, env.index_prefix)
    return client, IndexNames(env.index_prefix).crawls


SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Scrapy setting for every crawl: NAME=VALUE."),
]


@app.command()
def schedule(settings: SetOption = None) -> None:
    """Run the scheduler in the foreground: every enabled source on its own schedule.

    SIGTERM or Ctrl-C stops it cleanly; running crawls are stopped and recorded.
    """
    from veille.ops.scheduling import serve

    config = cli.config_or_exit()
    env = cli.env_or_exit()
    _crawls_index(env)
    serve(config, env, cli.parse_overrides(settings or []))


@app.command()
def jobs(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the scheduled jobs and their next run time (UTC), from the scheduler's job store."""
    from veille.ops.scheduling import jobstore_path, list_jobs

    env = cli.env_or_exit()
    found = list_jobs(env)
    if found is None:
        cli.fail(
            f"no job store at {jobstore_path(env)}: start the scheduler with `veille schedule`", 1
        )
    if as_json:
        print(json.dumps([job.as_dict() for job in found], indent=2))
        return
    table = Table(title=f"{len(found)} jobs in {jobstore_path(env)}")
    for column in ("job", "schedule", "next run (UTC)"):
        table.add_column(column)
    for job in found:
        schedule_text = job.name.partition(": ")[2]
        table.add_row(job.id, schedule_text, (job.next_run_time or "paused")[:19])
    cli.out.print(table)


@app.command(name="run-now")
def run_now(
    source: Annotated[str, typer.Argument(help="Source name (see `veille sources`).")],
    settings: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
) -> None:
    """Crawl one source now, as the scheduler would (subprocess, time limit), and record it.

    Exit status 1 when the run did not succeed: failed, timed out, or read none of the source's
    feeds (``no_feed``).
    """
    from veille.core.config import ConfigError
    from veille.ops.health import record_run
    from veille.ops.runs import CrawlNotStarted, RunSettings, run_crawl

    config = cli.config_or_exit()
    env = cli.env_or_exit()
    try:
        chosen = config.source(source)
    except ConfigError as exc:
        cli.fail(str(exc), 2)
    overrides = cli.parse_overrides(settings or [])
    run_settings = RunSettings.from_env()
    client, index = _crawls_index(env)
    try:
        run = run_crawl(config, chosen, env, run_settings, overrides, trigger="manual")
    except CrawlNotStarted as exc:
        cli.fail(f"{exc}; try again when that run ends", 1)
    except ValueError as exc:
        cli.fail(str(exc), 2)
    record_run(client, index, run, run_settings, env.data_dir)
    if as_json:
        print(json.dumps(run.document(), indent=2))
    else:
        cli.out.print(
            f"{run.source}: [{STATUS_STYLE[run.status]}]{run.status}[/] in {run.duration_s:.1f}s "
            f"(exit {run.exit_code}): {run.entries} entries, {run.extracted} extracted, "
            f"{run.indexed} indexed, {run.dropped_total} dropped"
            + (f"; flags: {', '.join(run.flags)}" if run.flags else "")
        )
        for problem in run.problems:  # each feed that could not be used, and why
            kind = problem["kind"].replace("_", " ")
            cli.out.print(f"  {escape(problem['url'])}: {kind}: {escape(problem['detail'])}")
        if run.reason and not run.problems:
            cli.out.print(f"  reason: {escape(run.reason)}")
    if run.status != "success":
        raise typer.Exit(1)


@app.command(name="runs")
def runs_command(
    source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Only runs that failed, timed out or read no feed.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the recorded crawl runs, newest first, with their stats and health flags."""
    from veille.ops.runs import list_runs

    env = cli.env_or_exit()
    client, index = _crawls_index(env)
    found = list_runs(client, index, source=source, failed_only=failed, limit=limit)
    if as_json:
        print(json.dumps(found, indent=2))
        return
    if not found:
        cli.err.print("no recorded run matches")
        return
    table = Table(title=f"{len(found)} crawl runs, newest first (times in UTC)")
    for column in ("started", "source", "status", "exit", "secs", "entries", "extracted",
                   "indexed", "dropped", "errors", "flags"):  # fmt: skip
        numeric = column not in ("started", "source", "status", "flags")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=numeric)
    for run in found:
        style = STATUS_STYLE.get(run["status"], "")
        table.add_row(
            run["started_at"][:16].replace("T", " "),
            escape(run["source"]),
            f"[{style}]{run['status']}[/]",
            "" if run["exit_code"] is None else str(run["exit_code"]),
            f"{run['duration_s']:.0f}",
            str(run["entries"]),
            str(run["extracted"]),
            str(run["indexed"]),
            str(run["dropped_total"]),
            str(run["errors"]),
            f"[bold yellow]{', '.join(run['flags'])}[/]" if run["flags"] else "",
        )
    # Piped output is not cut to 80 columns: scripts and logs get every column whole.
    console = cli.out if cli.out.is_terminal else Console(width=160)
    console.print(table)
