"""``veille alerts``: list the rules, try one, preview an email, run a pass.

In:  ``config/alerts.yaml`` (validated against ``sources.yaml``), the Elasticsearch cluster of
     ``VEILLE_ES_URL``, the SMTP server of ``VEILLE_SMTP_*`` (``send`` only).
Out: tables on stdout (``--json`` for scripts), an ``.eml``/``.html`` file (``preview``), emails
     (``send``). Exit status as ``veille``: 1 when an email could not be sent (it stays pending
     and is retried) or nothing is pending for ``preview``, 2 invalid configuration, 3
     Elasticsearch unreachable. Without ``alerts.yaml`` there are no rules: each command says
     so on stderr, and ``send`` exits 0 having done nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from alerts.delivery import next_digest
from alerts.digest import MARK_END, MARK_START
from alerts.rules import AlertRule, RuleSet, load_rules, missing_rules_note
from alerts.run import ensure_indices, run_alerts
from veille.article import utcnow
from veille.cli_support import client_or_exit, config_or_exit, env_or_exit, err, fail, out
from veille.languages import PIVOT
from veille.search import merge_marks

app = typer.Typer(help="Keyword email alerts (rules in config/alerts.yaml).", no_args_is_help=True)


def _rules() -> RuleSet:
    config = config_or_exit()
    rules = load_rules(config.directory, [source.name for source in config.sources])
    if rules.missing:
        err.print(escape(missing_rules_note(rules.path)), highlight=False)
    return rules


def _describe(rule: AlertRule) -> str:
    if rule.query is not None:
        return rule.query
    if rule.es_query is not None:
        return "es_query: " + json.dumps(rule.es_query, ensure_ascii=False)
    return "(by its filters)"


def _filters(rule: AlertRule) -> str:
    parts = [
        f"{label}: {', '.join(values)}"
        for label, values in (
            ("lang", rule.languages),
            ("country", rule.countries),
            ("source", rule.sources),
            ("action", rule.actions),
        )
        if values
    ]
    if rule.new_station:
        parts.append("new station")
    if rule.min_relevance is not None:
        parts.append(f"relevance ≥ {rule.min_relevance:g}")
    return "\n".join(parts) or "-"


@app.command(name="list")
def list_rules(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the enabled alert rules (validates alerts.yaml)."""

    rules = _rules()
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in rules.rules], indent=2))
        return
    table = Table(title=f"{len(rules.rules)} alert rules in {rules.path}", show_lines=True)
    for column in ("name", "query", "filters", "frequency", "recipients"):
        table.add_column(column, overflow="fold")
    for rule in rules.rules:
        table.add_row(
            escape(rule.name),
            escape(_describe(rule)),
            escape(_filters(rule)),
            rule.frequency_key,
            escape("\n".join(rule.recipients)),
        )
    out.print(table)


@app.command(name="test")
def test_rule(
    rule_name: Annotated[str, typer.Argument(metavar="RULE", help="Rule name (see `list`).")],
    since: Annotated[str | None, typer.Option("--since", help="7d, 24h or 2025-03-01.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show which indexed articles RULE matches (newest first), with the matched terms."""
    from veille.search import parse_since

    rule = _rules().require(rule_name)
    try:
        since_at = parse_since(since) if since else None
    except ValueError as exc:
        fail(str(exc), 2)
    env = env_or_exit()
    client = client_or_exit(env)
    names = ensure_indices(client, env.index_prefix)
    query = rule.search_query()
    if since_at:
        query = {
            "bool": {
                "must": [query],
                "filter": [{"range": {"first_seen_at": {"gte": since_at.isoformat()}}}],
            }
        }
    response = client.search(
        index=names.articles,
        query=query,
        size=limit,
        sort=[{"first_seen_at": "desc"}],
        highlight={
            "fields": {"text_*": {}, "text": {}, "translation.*.text": {}, "title*": {}},
            "fragment_size": 160,
            "number_of_fragments": 1,
            "pre_tags": [MARK_START],
            "post_tags": [MARK_END],
        },
        source_excludes=["text", "text_*", "title_*"],
        track_total_hits=True,
    )
    total = response["hits"]["total"]["value"]
    rows = [
        {
            "id": hit["_id"],
            "first_seen_at": hit["_source"].get("first_seen_at"),
            "language": hit["_source"].get("language"),
            "source": hit["_source"].get("source", {}).get("name"),
            "title": hit["_source"].get("title"),
            "translated_title": hit["_source"].get("translation", {}).get(PIVOT, {}).get("title"),
            "url": hit["_source"].get("canonical_url"),
            "matched": " … ".join(
                merge_marks(fragment, MARK_START, MARK_END)
                .replace(MARK_START, "«")
                .replace(MARK_END, "»")
                for fragments in hit.get("highlight", {}).values()
                for fragment in fragments[:1]
            ),
        }
        for hit in response["hits"]["hits"]
    ]
    if as_json:
        print(json.dumps({"rule": rule.name, "total": total, "articles": rows}, indent=2))
        return
    if not rows:
        err.print(f"rule {rule.name!r} matches no indexed article")
        return
    table = Table(title=f"rule {rule.name!r}: {total} articles match", show_lines=True)
    for column in ("seen", "lang", "source", "title / matched", "url"):
        table.add_column(column, overflow="fold")
    for row in rows:
        translated = (
            f"\n[dim]{escape(row['translated_title'])}[/]" if row["translated_title"] else ""
        )
        table.add_row(
            (row["first_seen_at"] or "")[:16],
            row["language"] or "",
            escape(row["source"] or ""),
            f"[bold]{escape(row['title'] or '')}[/]{translated}\n{escape(row['matched'])}",
            escape(row["url"] or ""),
        )
    out.print(table)


@app.command()
def preview(
    recipient: Annotated[str, typer.Argument(help="Email address of a recipient.")],
    output: Annotated[
        Path, typer.Option("--out", "-o", help="File to write: .eml (whole email) or .html.")
    ] = Path("alert-preview.eml"),
) -> None:
    """Render the next email RECIPIENT will get to a file (matches new articles, sends nothing)."""
    from alerts.matching import match_new_articles
    from alerts.percolator import sync_rules

    rules = _rules()
    env = env_or_exit()
    client = client_or_exit(env)
    now = utcnow()
    names = ensure_indices(client, env.index_prefix)
    sync_rules(client, names.alerts, rules, now)
    match_new_articles(client, names, rules, now)
    found = next_digest(client, names, rules, recipient, now)
    if found is None:
        fail(f"nothing pending for {recipient}", 1)
    digest, message = found
    if output.suffix.lower() in (".html", ".htm"):
        html = message.get_body(preferencelist=("html",))
        output.write_text(html.get_content() if html else "", encoding="utf-8")
    else:
        output.write_bytes(bytes(message))
    out.print(f"{escape(message['Subject'])}")
    out.print(f"{len(digest.stories)} stories, due from {digest.notifications[0].due_at}; "
              f"written to {escape(str(output))}")  # fmt: skip


@app.command()
def send(
    retry_now: Annotated[
        bool, typer.Option("--retry-now", help="Retry failed emails now, ignoring the backoff.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Sync the rules, match new articles, send every due email (what the scheduler runs).

    Without alerts.yaml there is nothing to do: what Elasticsearch holds (rules, pending
    emails) is left as it is until the file is back.
    """
    rules = _rules()
    if rules.missing:
        return
    env = env_or_exit()
    client = client_or_exit(env)
    report = run_alerts(client, env.index_prefix, rules, utcnow(), retry_now=retry_now)
    if as_json:
        print(json.dumps(asdict(report), indent=2, default=str))
    else:
        sync, match, delivery = report.rules, report.matching, report.delivery
        reasons = (
            (delivery.judged_irrelevant, "judged irrelevant"),
            (delivery.off_topic, "off topic after a topic edit"),
        )
        why = ", ".join(f"{count} {reason}" for count, reason in reasons if count)
        out.print(
            f"rules: {sync.added} added, {sync.changed} changed, {sync.removed} removed, "
            f"{sync.unchanged} unchanged\n"
            f"articles: {match.articles} checked, {match.created} new notifications, "
            f"{match.already_notified} already notified\n"
            f"emails: {delivery.emails_sent} sent ({delivery.notifications_sent} notifications), "
            f"{delivery.emails_failed} failed, {delivery.cancelled} cancelled"
            f"{f' ({why})' if why else ''}, "
            f"{delivery.reconciled} settled after a crash"
        )
    if report.delivery.emails_failed:
        err.print(
            f"[bold red]error:[/] {escape(report.delivery.errors[0])}; "
            f"{report.delivery.notifications_left_pending} notifications stay pending, "
            f"retried after {report.delivery.next_retry_at:%Y-%m-%d %H:%M:%S} UTC",
            highlight=False,
        )
        raise typer.Exit(1)
