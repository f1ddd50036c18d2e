"""``veille review`` and ``veille serve``: analyst verdicts by hand and from alert emails.

In:  ``review``: an article (its URL, in any spelling that led to it, or its id), a verdict
     (``relevant`` or ``irrelevant``) and an optional note. ``serve``: ``--host``/``--port``
     (127.0.0.1:8080 by default) and ``VEILLE_FEEDBACK_SECRET`` (``VEILLE_FEEDBACK_*``, see
     :mod:`veille.core.feedback`).
Out: ``review`` records the verdict (:mod:`veille.core.verdicts`) and prints what it did; ``serve``
     answers the verdict links of alert emails in the foreground until SIGTERM or Ctrl-C
     (:mod:`veille.ops.serve`), logging one line per request. Exit status as in
     :mod:`veille.cli.support`: 1 no such article (or several), or the address is taken;
     2 invalid arguments or environment (``serve`` without ``VEILLE_FEEDBACK_SECRET``);
     3 Elasticsearch unreachable.
"""

from __future__ import annotations

import getpass
import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape

from veille.cli import support as cli

app = typer.Typer()


class Label(StrEnum):
    relevant = "relevant"
    irrelevant = "irrelevant"


def _operator() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


@app.command()
def review(
    article: Annotated[
        str,
        typer.Argument(
            metavar="ARTICLE",
            help="The article's URL (any spelling that led to it) or its id.",
            show_default=False,
        ),
    ],
    verdict: Annotated[
        Label, typer.Argument(metavar="VERDICT", help="What the article is.", show_default=False)
    ],
    note: Annotated[str | None, typer.Option("--note", help="Why, for whoever reads it.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Record a verdict: an irrelevant article leaves alerts and default views, kept."""
    from veille.core import verdicts
    from veille.core.article import utcnow

    try:
        verdicts.article_query(article)
    except ValueError as exc:
        cli.fail(str(exc), 2)
    env = cli.env_or_exit()
    client = cli.client_or_exit(env)
    names = verdicts.ensure_verdicts_index(client, env.index_prefix)
    try:
        found = verdicts.find_article(client, names.articles, article)
    except verdicts.ArticleNotFound as exc:
        cli.fail(f"{escape(str(exc))}; `veille search` finds articles and prints their ids", 1)
    given = verdicts.Verdict(verdict.value, utcnow(), "cli", note=note, by=_operator())
    verdicts.record_verdict(client, names, found, given)
    if as_json:
        print(json.dumps({"article_id": found.id, "url": found.url, "title": found.title,
                          "previous": found.verdict, "verdict": given.document()},
                         indent=2, ensure_ascii=False))  # fmt: skip
        return
    cli.out.print(f"[bold]{verdict.value}[/]: {escape(found.title)}", highlight=False)
    cli.out.print(f"  {escape(found.source)} · {escape(found.url)}", highlight=False)
    cli.out.print(f"  id {found.id}", highlight=False)
    if found.verdict:
        before = found.verdict
        at = str(before.get("at") or "?")[:16].replace("T", " ")
        cli.out.print(
            f"  replaces: {escape(str(before.get('label')))}, given {escape(at)} UTC "
            f"({'email link' if before.get('via') == 'email' else 'veille review'})",
            highlight=False,
        )
    if verdict is Label.irrelevant:
        cli.out.print(
            "  It leaves future alerts (what is still pending for it is cancelled, not sent)\n"
            "  and Kibana's default views. It is kept: the saved search "
            "\u201cJudged irrelevant\u201d\n  lists it.",
            highlight=False,
        )


@app.command()
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0: any free port).")
    ] = 8080,
) -> None:
    """Answer the "Not relevant"/"Relevant" links of alert emails (foreground; Ctrl-C stops)."""
    from veille.core.config import ConfigError
    from veille.core.feedback import FeedbackSettings
    from veille.core.verdicts import ensure_verdicts_index
    from veille.ops.scheduling import utc_logging
    from veille.ops.serve import FeedbackApp, FeedbackServer, run_server

    try:
        settings = FeedbackSettings.from_env(need_url=False)
    except ConfigError as exc:
        cli.fail(f"invalid environment: {exc}", 2)
    if settings is None:
        cli.fail(
            "VEILLE_FEEDBACK_SECRET is not set: it is the key that signs the links in alert "
            "emails, and the same value must be given to `veille alerts send` (the scheduler) "
            "and to `veille serve`. Generate one with `openssl rand -base64 32`.",
            2,
        )
    env = cli.env_or_exit()
    client = cli.client_or_exit(env)
    names = ensure_verdicts_index(client, env.index_prefix)
    try:
        server = FeedbackServer((host, port), FeedbackApp(client, names, settings))
    except OSError as exc:
        cli.fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 1)
    utc_logging()
    links = settings.base_url or f"{server.url} (VEILLE_FEEDBACK_URL is not set)"
    print(f"veille serve: listening on {server.url}; email links point to {links}", flush=True)
    run_server(server)
