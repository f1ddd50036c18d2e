"""``veille stations``: the register of reported stations, from the command line.

In:  a reachable Elasticsearch (``<prefix>-stations``, ``<prefix>-articles``); for ``eval``, a
     folder of labelled articles (default ``tests/fixtures/stations``) and the config folder's
     topics.
Out: ``veille stations [--country X] [--json]`` prints the register, most reported first;
     ``rebuild`` builds it again from every article; ``update`` applies the articles indexed
     while it could not be updated; ``eval`` prints precision and recall of places, countries,
     authorities, actions and stations on the labelled articles, and the stations the trap
     articles would create. Exit status: 1 when ``eval`` misses a target (0.9 each, no station
     from a trap), 2 for bad arguments or configuration, 3 when Elasticsearch is unreachable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from veille.cli import support as cli

app = typer.Typer(
    help="The stations register: one entry per reported location.", invoke_without_command=True
)
TARGET = 0.9
DEFAULT_LABELLED = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "stations"


def _register() -> Any:
    from veille.core.es import IndexNames
    from veille.core.events import EventRules
    from veille.core.stations import Register

    config = cli.config_or_exit()
    env = cli.env_or_exit()
    client = cli.client_or_exit(env)
    order = EventRules.from_topics(config.topics).order
    return Register(client, IndexNames(env.index_prefix), order)


def _day(value: str | None) -> str:
    return (value or "")[:10]


@app.callback()
def list_command(
    ctx: typer.Context,
    country: Annotated[
        str | None, typer.Option("--country", help="Only this country (ISO code, e.g. IE).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document per line.")] = False,
) -> None:
    """Print the register, most reported first (or run a subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    if country and not (len(country) == 2 and country.isalpha()):
        cli.fail(f"--country {country!r}: use a two-letter ISO code, e.g. IE", 2)
    stations = _register().stations(country)
    if as_json:
        for station in stations:
            cli.out.print(json.dumps(station, ensure_ascii=False), highlight=False, soft_wrap=True)
        return
    if not stations:
        where = f" in {country.upper()}" if country else ""
        cli.out.print(f"No station reported{where} yet (`veille stations rebuild` reads the "
                      "articles again).")  # fmt: skip
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("location", overflow="fold", max_width=22)
    table.add_column("", max_width=2)
    table.add_column("reports", justify="right")
    table.add_column("first", no_wrap=True)
    table.add_column("latest", no_wrap=True)
    table.add_column("strongest action", overflow="fold", max_width=16)
    for station in stations:
        table.add_row(
            escape(station["name"] if station["kind"] == "city" else f"({station['name']})"),
            station["country"],
            str(station["reports_count"]),
            _day(station.get("first_reported_at")),
            _day(station.get("last_reported_at")),
            (station.get("strongest_action") or "").replace("_", " "),
        )
    cli.out.print(table)
    total = sum(s["reports_count"] for s in stations)
    places = f"{len(stations)} location" + ("s" if len(stations) != 1 else "")
    cli.out.print(f"{places}, {total} reports. `--json` gives the actions with dates, "
                  "authorities, articles and outlets.", highlight=False)  # fmt: skip


@app.command("rebuild")
def rebuild_command() -> None:
    """Build the register again from every article (swapped in when complete)."""
    done = _register().rebuild()
    cli.out.print(
        f"register rebuilt: {done['stations']} locations from {done['reports']} reports",
        highlight=False,
    )


@app.command("update")
def update_command() -> None:
    """Apply the articles indexed while the register could not be updated."""
    done = _register().apply_pending()
    cli.out.print(
        f"register updated from {done['articles']} pending articles "
        f"({done['with_new_stations']} added a location)",
        highlight=False,
    )


@app.command("eval")
def eval_command(
    folder: Annotated[
        Path, typer.Option("--labelled", help="Folder of labelled articles (<lang>/*.yaml).")
    ] = DEFAULT_LABELLED,
    as_json: Annotated[bool, typer.Option("--json", help="The figures as JSON.")] = False,
    errors: Annotated[
        bool, typer.Option("--errors", help="List what each article got wrong.")
    ] = False,
) -> None:
    """Precision and recall on labelled articles; exit 1 when a target is missed."""
    from veille.core.events import EventRules
    from veille.core.gazetteer import gazetteer
    from veille.ops.station_eval import evaluate, load_labelled

    if not folder.is_dir():
        cli.fail(f"--labelled {folder}: not a folder of labelled articles", 2)
    config = cli.config_or_exit()
    labelled = load_labelled(folder)
    if not labelled:
        cli.fail(f"--labelled {folder}: no <lang>/*.yaml article in it", 2)
    result = evaluate(labelled, EventRules.from_topics(config.topics), gazetteer())
    missed = [n for n, s in result.scores.items() if min(s.precision, s.recall) < TARGET]
    if as_json:
        cli.out.print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2), highlight=False)
    else:
        counts = result.counts
        table = Table(title=f"{counts['station']} station articles, {counts['trap']} traps",
                      box=None, header_style="bold")  # fmt: skip
        for column in ("", "precision", "recall", "found", "wrong", "missed"):
            table.add_column(column, justify="left" if not column else "right")
        for name, score in result.scores.items():
            table.add_row(name, f"{score.precision:.3f}", f"{score.recall:.3f}", str(score.tp),
                          str(score.fp), str(score.fn))  # fmt: skip
        cli.out.print(table)
        traps = result.trap_stations
        cli.out.print(f"stations created from trap articles: {traps} (target 0); "
                      f"target {TARGET} for each measure", highlight=False)  # fmt: skip
        for line in result.unknown:
            cli.err.print(f"unknown to the gazetteer: {escape(line)}", highlight=False)
        if errors:
            for article in result.articles:
                for measure, (unexpected, unfound) in article.wrong.items():
                    cli.out.print(f"{escape(Path(article.path).name)} {measure}: "
                                  f"+{unexpected} -{unfound}", highlight=False)  # fmt: skip
    if missed or result.trap_stations:
        raise typer.Exit(1)
