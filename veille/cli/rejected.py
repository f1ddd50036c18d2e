"""``veille rejected prune``: forget the rejected articles kept longer than wanted.

In:  a reachable Elasticsearch with ``<prefix>-rejected`` (:mod:`veille.core.rejected`), and how
     long to keep them: ``--older-than``, else ``VEILLE_REJECTED_KEEP`` (default 30d; ``0``
     keeps none, so every record goes).
Out: the records of articles rejected longer ago than that, deleted, and a line saying how many.
     The scheduler runs it daily. Exit status: 1 when Elasticsearch failed during the prune (run it
     again: what is gone stays gone), 2 for a bad duration, 3 when Elasticsearch cannot be
     reached.
"""

from __future__ import annotations

from typing import Annotated

import typer

from veille.cli import support as cli
from veille.core.config import ConfigError

app = typer.Typer(help="Articles dropped as off topic, kept so an edited topic can apply to them.")


@app.command("prune")
def prune_command(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Delete the records of articles rejected longer ago than this: 30d, 36h "
            "(default $VEILLE_REJECTED_KEEP or 30d).",
        ),
    ] = None,
) -> None:
    """Delete the rejected articles older than --older-than; prints how many."""
    from veille.core.rejected import KEEP_SETTING, keep_for, prune_rejected
    from veille.ops.crawl import crawl_settings

    where = "--older-than" if older_than else KEEP_SETTING
    text = older_than or crawl_settings().get(KEEP_SETTING)
    try:
        keep = keep_for(text)
    except ConfigError as exc:
        cli.fail(f"{where}: {exc.message} ({exc.hint})", 2)
    done = cli.prune_index(
        lambda names: names.rejected, "rejected articles",
        lambda client, index: prune_rejected(client, index, keep),
    )  # fmt: skip
    if done is not None:
        index, deleted = done
        cli.out.print(f"deleted {deleted} rejected articles older than {text} from {index}")
