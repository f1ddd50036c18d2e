"""``veille clusters prune``: delete the story-cluster claims nobody needs any more.

In:  a reachable Elasticsearch with the claims index (``<prefix>-clusters``), and how old a claim
     must be to go: ``--older-than``, else ``VEILLE_CLAIMS_KEEP``, else ``7d``.
Out: those claims deleted (band terms, then article records; see
     :func:`veille.core.clusters.prune_claims`) and a line saying how many. A claim only settles
     copies handled before the first one is searchable (bulk buffer, refresh, spool), so keep
     longer than an article may wait in the spool. Exit status: 1 when Elasticsearch failed
     during the prune (run it again: what is gone stays gone), 2 for a bad duration or
     one under 1h, 3 when Elasticsearch cannot be reached.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Annotated

import typer

from veille.cli import support as cli
from veille.core.config import parse_duration

# Shorter than this, a claim could go while its article still waits in a bulk buffer.
SHORTEST_KEEP = timedelta(hours=1)

app = typer.Typer(help="Story clusters: the claims that settle copies handled at once.")


@app.command("prune")
def prune_command(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Delete claims made longer ago than this: 7d, 36h (default $VEILLE_CLAIMS_KEEP "
            "or 7d).",
        ),
    ] = None,
) -> None:
    """Delete the claims older than --older-than; prints how many."""
    from veille.core.clusters import prune_claims

    where = "--older-than" if older_than else "VEILLE_CLAIMS_KEEP"
    text = older_than or os.environ.get("VEILLE_CLAIMS_KEEP") or "7d"
    try:
        keep = parse_duration(text)
    except ValueError as exc:
        cli.fail(f"{where}: {exc}", 2)
    if keep < SHORTEST_KEEP:
        cli.fail(f"{where}: {text} would delete the claims of articles not searchable yet; "
                 "keep them 1h or more", 2)  # fmt: skip
    done = cli.prune_index(
        lambda names: names.clusters, "claims",
        lambda client, index: prune_claims(client, index, keep),
    )  # fmt: skip
    if done is not None:
        claims, deleted = done
        cli.out.print(
            f"deleted {deleted['band']} band claims and {deleted['article']} article records "
            f"older than {text} from {claims}"
        )
