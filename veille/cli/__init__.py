"""``veille``: the command line for everything an operator does by hand.

Exit status: 0 success, 1 the work failed (a crawl error, nothing found where something was
required), 2 invalid configuration or arguments, 3 Elasticsearch unreachable.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from elasticsearch import ApiError
from rich.markup import escape
from rich.table import Table

from veille.cli.alerts import app as alerts_app
from veille.cli.clusters import app as clusters_app
from veille.cli.rejected import app as rejected_app
from veille.cli.schedule import app as schedule_app
from veille.cli.spool import app as spool_app
from veille.cli.stations import app as stations_app
from veille.cli.support import (
    client_or_exit,
    config_or_exit,
    env_or_exit,
    err,
    fail,
    out,
    parse_overrides,
    print_crawl_summary,
    print_hits,
)
from veille.cli.topics import app as topics_app
from veille.cli.verdicts import app as verdict_app
from veille.cli.worker import app as worker_app
from veille.core.config import ConfigError
from veille.core.languages import LANGUAGES, PIVOT

app = typer.Typer(
    help="Veille: multilingual news monitoring (crawl, translate, index, alert).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(schedule_app)
app.add_typer(alerts_app, name="alerts")
app.add_typer(spool_app, name="spool")
app.add_typer(clusters_app, name="clusters")
app.add_typer(stations_app, name="stations")
app.add_typer(topics_app, name="topics")
app.add_typer(worker_app)
app.add_typer(verdict_app)
app.add_typer(rejected_app, name="rejected")


@app.callback()
def main_options(
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Config folder (default: $VEILLE_CONFIG or ./config)."),
    ] = None,
) -> None:
    if config is not None:
        os.environ["VEILLE_CONFIG"] = str(config.resolve())


@app.command()
def setup(
    kibana: Annotated[
        bool,
        typer.Option("--kibana", help="Also import the Kibana data views, searches, dashboards."),
    ] = False,
) -> None:
    """Create or update the Elasticsearch index templates and aliases (idempotent)."""
    from veille.core.es import MappingConflict, setup_indices

    env = env_or_exit()
    client = client_or_exit(env)
    try:
        done = setup_indices(client, env.index_prefix)
    except MappingConflict as exc:
        fail(escape(str(exc)), 1)
    for alias, action in done.items():
        out.print(f"{alias}: {action}")
    if kibana:
        from veille.ops.kibana import KibanaError, setup_kibana

        try:
            for line in setup_kibana(env, client):
                out.print(escape(line))
        except (KibanaError, ApiError) as exc:
            fail(f"Kibana setup failed: {escape(str(exc))}", 1)


@app.command()
def sources(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Fetch each source once: reachable, parsed, entries.")
    ] = False,
) -> None:
    """List the configured sources (validates sources.yaml and the topic files)."""
    config = config_or_exit()
    if check:
        from veille.ops.source_check import run_check

        raise typer.Exit(run_check(config, out, as_json))
    if as_json:
        out.print_json(data=[s.model_dump(mode="json") for s in config.sources])
        return
    table = Table(title=f"{len(config.sources)} sources in {config.directory}")
    for column in ("name", "type", "lang", "country", "schedule", "topics", "urls"):
        table.add_column(column)
    for s in config.sources:
        schedule = (s.schedule.every and f"every {s.schedule.every}") or f"cron {s.schedule.cron}"
        table.add_row(
            s.name + ("" if s.enabled else " (disabled)"),
            s.type,
            s.language or "-",
            s.country or "-",
            schedule,
            ", ".join(s.topics or [t.name for t in config.topics]),
            "\n".join(s.url_strings),
        )
    out.print(table)
    out.print(f"topics: {', '.join(t.name for t in config.topics)}")


@app.command()
def crawl(
    source: Annotated[
        str | None, typer.Argument(help="Source name (see `veille sources`).")
    ] = None,
    all_sources: Annotated[bool, typer.Option("--all", help="Crawl every enabled source.")] = False,
    settings: Annotated[
        list[str] | None, typer.Option("--set", help="Scrapy setting for this run: NAME=VALUE.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Scrapy's log.")] = False,
) -> None:
    """Crawl one source or all of them now, with progress and a summary."""
    from veille.ops.crawl import run_crawls

    if (source is None) == (not all_sources):
        fail("name one SOURCE or pass --all", 2)
    config = config_or_exit()
    env_or_exit()
    try:
        chosen = (
            [s for s in config.sources if s.enabled]
            if all_sources
            else [config.source(source or "")]
        )
    except ConfigError as exc:
        fail(str(exc), 2)
    if not chosen:
        fail(f"no enabled source in {config.directory / 'sources.yaml'}", 2)
    overrides = parse_overrides(settings or [])
    overrides.setdefault("LOG_LEVEL", "INFO" if verbose else "WARNING")

    from rich.progress import Progress, SpinnerColumn, TextColumn

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err)
    line = progress.add_task("starting", total=None)

    def show(stats: dict[str, int]) -> None:
        dropped = sum(v for k, v in stats.items() if k.startswith("veille/dropped/"))
        progress.update(
            line,
            description=(
                f"fetched {stats.get('downloader/response_count', 0)} · "
                f"extracted {stats.get('veille/extracted', 0)} · "
                f"indexed {stats.get('veille/indexed', 0)} · dropped {dropped}"
            ),
        )

    try:
        with progress:
            summaries = run_crawls(config, chosen, overrides, on_progress=show)
    except ValueError as exc:
        fail(str(exc), 2)
    results = [s.as_dict() for s in summaries]
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        print_crawl_summary(results)
    if any(r["finish_reason"] != "finished" for r in results):
        raise typer.Exit(1)


@app.command(name="search")
def search_command(
    query: Annotated[
        str, typer.Argument(help='Words, "phrases", AND, OR (|), NOT (-word), NEAR/n, ( ).')
    ],
    lang: Annotated[str | None, typer.Option("--lang", help="Only this language.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="7d, 24h or 2025-03-01.")] = None,
    source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    collapse: Annotated[
        bool, typer.Option("--collapse", help="One result per story (copies and translations).")
    ] = False,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="Show why each result is on topic: each rule and where."),
    ] = False,
) -> None:
    """Search the indexed articles in any language; prints a table, best match first."""
    from veille.core.es import IndexNames
    from veille.core.query import QuerySyntaxError
    from veille.core.search import parse_since, search

    try:
        since_at = parse_since(since) if since else None
    except ValueError as exc:
        fail(str(exc), 2)
    env = env_or_exit()
    client = client_or_exit(env)
    try:
        hits = search(
            client, IndexNames(env.index_prefix).articles, query,
            language=lang, since=since_at, source=source, limit=limit, collapse=collapse,
            with_text=explain,
        )  # fmt: skip
    except QuerySyntaxError as exc:
        fail(f"query {query!r}: {exc}", 2)
    if explain:
        from veille.cli.topics import explain_hits

        explain_hits(hits, config_or_exit(), as_json)
        return
    if as_json:
        print(json.dumps([asdict(h) for h in hits], indent=2, ensure_ascii=False))
        return
    if not hits:
        err.print(f"no article matches {query!r}")
        return
    print_hits(f"{len(hits)} articles matching {query!r}", hits, "published", scored=True)


models_app = typer.Typer(help="Translation models (Argos packages), installed for offline use.")
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list() -> None:
    """List the installed translation models."""
    from veille.core.translation import installed_models

    models = installed_models()
    if not models:
        err.print("no translation model installed: `veille models install --all` (online) or "
                  "`veille models install --file PATH.argosmodel`")  # fmt: skip
        return
    table = Table(title="installed translation models")
    for column in ("from", "to", "version", "path"):
        table.add_column(column)
    for model in models:
        table.add_row(model.from_code, model.to_code, model.version, str(model.path))
    out.print(table)


@models_app.command("install")
def models_install(
    languages: Annotated[
        list[str] | None, typer.Argument(help="Source languages, e.g. fr es (online).")
    ] = None,
    every: Annotated[
        bool,
        typer.Option(
            "--all", help="Every language of veille/core/languages.py but the pivot (online)."
        ),
    ] = False,
    file: Annotated[
        list[Path] | None, typer.Option("--file", help="An .argosmodel file (offline).")
    ] = None,
    pivot: Annotated[str, typer.Option(help="Target language.")] = PIVOT,
) -> None:
    """Install models from the Argos package index (online) or from .argosmodel files."""
    from veille.core.translation import ModelInstallError, install_model_file, install_models

    if every:
        languages = [*(languages or []), *(code for code in LANGUAGES if code != pivot)]
    if not languages and not file:
        fail("name languages (veille models install fr es), say --all, or pass --file PATH", 2)
    try:
        for path in file or []:
            model = install_model_file(path)
            out.print(f"installed {model.from_code}→{model.to_code} {model.version} from {path}")
        if languages:
            with err.status("installing models…"):
                models = install_models(languages, pivot=pivot, progress_callback=err.print)
            for model in models:
                out.print(f"installed {model.from_code}→{model.to_code} {model.version}")
    except (ModelInstallError, OSError) as exc:
        fail(str(exc), 1)


@app.command()
def translate(
    pending: Annotated[
        bool, typer.Option("--pending", help="Translate articles indexed as pending.")
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Also retry articles whose translation failed.")
    ] = False,
) -> None:
    """Translate indexed articles that are still waiting for a translation."""
    from rich.progress import Progress

    from veille.core.es import IndexNames
    from veille.core.settings import translation_settings
    from veille.core.translation import Glossary, TranslationEngine
    from veille.ops.backfill import count_waiting, translate_pending
    from veille.ops.crawl import crawl_settings

    if not pending:
        fail("say what to translate: --pending", 2)
    config = config_or_exit()
    env = env_or_exit()
    client = client_or_exit(env)
    index = IndexNames(env.index_prefix).articles
    settings = crawl_settings()
    engine = TranslationEngine(translation_settings(settings), Glossary.from_topics(config.topics))
    statuses = ["pending", "failed"] if retry_failed else ["pending"]
    total = count_waiting(client, index, statuses)
    with Progress(console=err) as progress:
        task = progress.add_task("translating", total=total)
        report = translate_pending(
            client, index, engine, retry_failed=retry_failed,
            on_batch=lambda n: progress.advance(task, n),
        )  # fmt: skip
    out.print(
        f"translated {report.done} of {report.seen}; still pending (no model) "
        f"{report.still_pending}; failed {report.failed}"
    )
    if report.failed:
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] invalid configuration: {exc}", highlight=False)
        sys.exit(2)
