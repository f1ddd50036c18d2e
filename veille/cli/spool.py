"""``veille spool list`` and ``veille spool replay``: the articles waiting on disk.

In:  the data folder (``VEILLE_DATA_DIR``) and, for ``replay``, a reachable Elasticsearch.
Out: ``list`` prints the spool files waiting for replay (documents, size, whether a running
     crawl still writes them) and the dead letters (time, URL, reason); ``replay`` sends the
     waiting files to the articles index in order and prints what it did. Rejected articles
     waiting for ``<prefix>-rejected`` (:mod:`veille.core.rejected`) are counted by ``list`` and
     replayed by ``replay`` too. ``--json`` for scripts. Exit status: ``replay`` exits 1 when
     documents are still waiting afterwards (Elasticsearch failed during the replay) and 3 when
     Elasticsearch cannot be reached.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from veille.cli import support as cli

app = typer.Typer(help="The on-disk spool of articles waiting for Elasticsearch.")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """List the spool files waiting for replay and the dead letters with their reasons."""
    from veille.core.rejected import spool_root
    from veille.core.spool import dead_letters, describe_pending

    env = cli.env_or_exit()
    files = describe_pending(env.data_dir)
    letters = dead_letters(env.data_dir)
    rejected = sum(f.documents for f in describe_pending(spool_root(env.data_dir)))
    if as_json:
        print(
            json.dumps(
                {
                    "pending": [
                        {**asdict(f), "path": str(f.path), "modified_at": f.modified_at.isoformat()}
                        for f in files
                    ],
                    "dead_letters": [asdict(letter) for letter in letters],
                    "rejected_pending": rejected,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    if files:
        table = Table(title=f"{sum(f.documents for f in files)} articles waiting for replay")
        for column in ("file", "articles", "bytes", "written", "state"):
            table.add_column(column)
        for f in files:
            table.add_row(
                f.path.name,
                str(f.documents),
                str(f.bytes),
                f.modified_at.isoformat(timespec="seconds"),
                "crawl running" if f.in_use else "waiting",
            )
        cli.out.print(table)
    else:
        cli.out.print(f"no article waiting in {env.data_dir / 'spool'}")
    if letters:
        table = Table(title=f"{len(letters)} dead letters (refused by Elasticsearch)")
        for column in ("at", "url", "reason"):
            table.add_column(column, overflow="fold")
        for letter in letters:
            table.add_row(letter.at[:19], escape(letter.url), escape(letter.reason))
        cli.out.print(table)
    else:
        cli.out.print("no dead letter")
    if rejected:
        where = spool_root(env.data_dir) / "spool"
        cli.out.print(f"{rejected} rejected articles waiting for replay in {where}")


@app.command("replay")
def replay_command(as_json: JsonOption = False) -> None:
    """Send the waiting articles to Elasticsearch, oldest first."""
    from veille.core.es import IndexNames, setup_indices
    from veille.core.rejected import replay_rejected
    from veille.core.spool import replay

    env = cli.env_or_exit()
    client = cli.client_or_exit(env)
    names = IndexNames(env.index_prefix)
    if not all(client.indices.exists_alias(name=i) for i in (names.articles, names.rejected)):
        setup_indices(client, env.index_prefix)
    report = replay(client, names.articles, env.data_dir)
    rejected = replay_rejected(client, names.rejected, env.data_dir)
    client.close()
    if as_json:
        print(json.dumps({**report.as_dict(), "rejected": rejected.as_dict()}, indent=2))
    elif report.busy:
        cli.err.print("another replay is running; nothing done")
    else:
        cli.out.print(
            f"replayed: {report.indexed} indexed, {report.already_present} already present, "
            f"{report.dead_letter + report.unreadable} dead letters, "
            f"{report.remaining} still waiting"
            + (
                f", {report.files_in_use} files left to running crawls"
                if report.files_in_use
                else ""
            )
        )
    if not as_json and (rejected.indexed or rejected.already_present or rejected.remaining):
        cli.out.print(
            f"rejected articles replayed: {rejected.indexed} kept, {rejected.already_present} "
            f"already kept, {rejected.remaining} still waiting"
        )
    if report.remaining or rejected.remaining:
        error = report.error or rejected.error or ""
        cli.err.print(f"[bold red]error:[/] replay stopped: {escape(error)}")
        raise typer.Exit(1)
