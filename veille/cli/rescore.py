"""``veille topics eval --index`` and ``veille topics rescore``: an edited topic, over the past.

In:  the topic files as they are now, the articles and rejected indices, ``--since`` (articles
     first seen since then; default ``VEILLE_REJECTED_KEEP``, the time rejected articles are kept).
Out: ``eval --index`` prints what the edit would add, remove, restore and update (counts, then
     up to ``--limit`` articles of each) and the rules' precision and recall on the analysts'
     verdicts before and after the edit, and changes nothing. ``rescore`` prints the same, then
     applies it (:mod:`veille.ops.rescore`) and prints what it did. Lines fit 80 columns; ``--json``
     for scripts. Exit status: 1 when Elasticsearch failed during the rescore or promoted
     articles could not all be stored (see ``veille spool list``; run the rescore again, it
     redoes only what is left), 2 for bad arguments or configuration, 3 when Elasticsearch
     cannot be reached.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import asdict
from datetime import datetime
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError
from rich.markup import escape
from rich.progress import Progress

from veille.cli import support as cli
from veille.core.article import utcnow
from veille.core.es import IndexNames, MappingConflict, setup_indices
from veille.ops.rescore import (
    Judged,
    MarkReport,
    Plan,
    PromotionReport,
    apply_marks,
    count_stored,
    plan_rescore,
    promote,
)
from veille.ops.topic_eval import Scores

DEFAULT_SINCE = "30d"
WIDTH = 80


def _wrap(text: str, indent: int, hang: int = 2) -> list[str]:
    """``text`` in lines of 80 columns from column ``indent``, the next lines ``hang`` further
    in; rule names (``en/pushed-to-return``) are never cut at their hyphens."""
    return textwrap.wrap(
        text, WIDTH, initial_indent=" " * indent, subsequent_indent=" " * (indent + hang),
        break_on_hyphens=False,
    ) or [""]  # fmt: skip


def _since(text: str | None) -> tuple[datetime, str]:
    """The window's start and how to name it: ``--since``, else ``VEILLE_REJECTED_KEEP``."""
    from veille.core.config import ConfigError
    from veille.core.rejected import KEEP_SETTING, keep_for
    from veille.core.search import parse_since
    from veille.ops.crawl import crawl_settings

    if text is None:
        setting = crawl_settings().get(KEEP_SETTING)
        try:
            text = setting.strip() if keep_for(setting) else DEFAULT_SINCE
        except ConfigError as exc:
            cli.fail(f"invalid environment: {exc}", 2)
    try:
        return parse_since(text), text
    except ValueError as exc:
        cli.fail(str(exc), 2)


def _item(judged: Judged, reason: str | None = None) -> dict[str, Any]:
    stored, decision = judged.article, judged.decision
    return {
        "id": stored.id,
        "url": stored.url,
        "title": stored.title,
        "language": stored.language,
        "source": stored.source,
        "first_seen_at": stored.first_seen_at,
        "rule": decision.best.rule if decision.best else None,
        "closest": decision.closest.rule if decision.closest else None,
        "was": stored.relevance.get("rule"),
        "verdict": stored.verdict,
        **({"reason": reason} if reason else {}),
    }


def _scores(scores: Scores) -> dict[str, Any]:
    return {**asdict(scores), "precision": scores.precision, "recall": scores.recall}


def plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "since": plan.since.isoformat(),
        "topics": list(plan.topics),
        "stored": plan.stored,
        "add": [_item(j) for j in plan.add],
        "already_kept": [_item(j, reason) for j, reason in plan.already_kept],
        "remove": [_item(j) for j in plan.remove],
        "held": [_item(j) for j in plan.held],
        "restore": [_item(j) for j in plan.restore],
        "update": [_item(j) for j in plan.update],
        "verdicts": {
            "before": _scores(plan.verdict_scores(after=False)),
            "after": _scores(plan.verdict_scores(after=True)),
        },
        "unknown_sources": sorted(plan.unknown_sources),
    }


def _article_lines(sign: str, judged: Judged, detail: str) -> list[str]:
    stored = judged.article
    day = (stored.first_seen_at or "")[:10]
    lines = _wrap(f"{sign} {day} {stored.language or '?'} {stored.source} · {detail}", 2)
    return lines + _wrap(stored.title, 4, hang=0)


def _why(judged: Judged, kind: str) -> str:
    decision, stored = judged.decision, judged.article
    if kind in ("add", "restore"):
        return f"rule {decision.best.rule}" if decision.best else ""
    if kind == "update":
        was, now = stored.relevance.get("rule") or "?", decision.best.rule if decision.best else "?"
        if was != now:
            return f"was {was}, now {now}"
        return f"{now}, score {stored.relevance.get('score', 0):g} → {decision.score:g}"
    closest = f", closest now {decision.closest.rule}" if decision.closest else ""
    return f"was {stored.relevance.get('rule') or '?'}{closest}"


def plan_lines(plan: Plan, since_text: str, limit: int, applied: bool) -> list[str]:
    stored = plan.stored
    lines = _wrap(
        f"Stored since {plan.since:%Y-%m-%d} ({since_text}): {stored['kept']} kept, "
        f"{stored['off_topic']} marked off topic, {stored['rejected']} rejected; topics "
        f"{', '.join(plan.topics)}",
        0,
    )
    if plan.unknown_sources:
        gone = ", ".join(sorted(plan.unknown_sources))
        lines += _wrap(f"judged with every topic, their source is no longer configured: {gone}", 0)
    rows = [
        ("add", len(plan.add), "rejected articles a rule now keeps"),
        ("settle", len(plan.already_kept), "rejected articles a rule keeps that are kept already"),
        ("remove", len(plan.remove),
         "kept articles no rule keeps now: marked off topic, not deleted"),
        ("restore", len(plan.restore), "articles marked off topic that a rule keeps again"),
        ("update", len(plan.update),
         "kept articles whose rule or score changes: relevance updated"),
        ("hold", len(plan.held), "judged relevant by analysts, no rule keeps them: kept"),
    ]  # fmt: skip
    lines += ["", "The topic files as they are now " + ("change:" if applied else "would:")]
    for name, count, what in rows:
        lines += _wrap(f"{name:<8}{count:>6}  {what}", 2, hang=16)
    before, after = plan.verdict_scores(after=False), plan.verdict_scores(after=True)
    lines += ["", *_wrap(f"Analysts' verdicts ({before.articles} articles, any date):", 0)]
    lines.append(f"{'':<10}{'judged':>8}{'relevant':>10}{'kept':>6}{'precision':>11}{'recall':>8}")
    for name, s in (("before", before), ("after", after)):
        lines.append(
            f"{name:<10}{s.articles:>8}{s.relevant:>10}{s.kept:>6}"
            f"{s.precision:>11.2f}{s.recall:>8.2f}"
        )
    lists = [
        ("add", "+", plan.add),
        ("remove", "-", plan.remove),
        ("restore", "+", plan.restore),
        ("update", "~", plan.update),
        ("hold", "=", plan.held),
    ]
    for name, sign, items in lists:
        if not items:
            continue
        lines += ["", f"{name}:"]
        for judged in items[:limit]:
            lines += _article_lines(sign, judged, _why(judged, name))
        if len(items) > limit:
            lines += _wrap(f"… and {len(items) - limit} more (--limit, or --json for all)", 2)
    return lines


def _applied_lines(marks: MarkReport, promoted: PromotionReport) -> list[str]:
    spooled = promoted.value("spooled")
    stored = sum(outcome == "indexed" for outcome in promoted.outcomes.values())
    dropped = ", ".join(f"{count} {reason}" for reason, count in sorted(promoted.dropped.items()))
    lines = ["", "Applied:"]
    lines += _wrap(
        f"promoted {promoted.sent} rejected articles through the stages after relevance: "
        f"{stored} stored"
        + (f" ({spooled} waiting in the spool for Elasticsearch)" if spooled else "")
        + (f"; dropped: {dropped}" if dropped else ""),
        2,
    )
    lines += _wrap(
        f"marked {marks.marked} off topic, restored {marks.restored}, relevance updated on "
        f"{marks.relevance_updated}, settled {marks.already_kept}",
        2,
    )
    return lines


def run(*, apply: bool, since: str | None, limit: int, as_json: bool) -> None:
    """Judge what is stored; with ``apply``, change it. Prints as the module docstring says."""
    start, since_text = _since(since)
    config = cli.config_or_exit()
    env = cli.env_or_exit()
    client = cli.client_or_exit(env)
    names = IndexNames(env.index_prefix)
    total = count_stored(client, names, start)
    with Progress(console=cli.err, transient=True) as progress:
        task = progress.add_task("judging stored articles", total=total)
        plan = plan_rescore(client, names, config, start, lambda: progress.advance(task))
    if not apply:
        if as_json:
            print(json.dumps(plan_json(plan), indent=2, ensure_ascii=False))
        else:
            print("\n".join(plan_lines(plan, since_text, limit, applied=False)))
        return
    if not as_json:
        print("\n".join(plan_lines(plan, since_text, limit, applied=True)), flush=True)
    now = utcnow()
    try:
        # The mappings as this version writes them (off_topic, promoted_at), on indices an
        # earlier version made.
        setup_indices(client, env.index_prefix)
        marks = apply_marks(client, names, plan, now)
        promoted = promote(config, names, client, plan.add, now, {"LOG_LEVEL": "WARNING"})
    except (ApiError, TransportError, MappingConflict, RuntimeError) as exc:
        cli.fail(f"rescore stopped, run it again: {escape(str(exc))}", 1)
    if as_json:
        report = {
            **plan_json(plan),
            "applied": {
                **asdict(marks),
                "promoted": {
                    "sent": promoted.sent,
                    "stored": sum(o == "indexed" for o in promoted.outcomes.values()),
                    "spooled": promoted.value("spooled"),
                    "dead_letter": promoted.value("dead_letter"),
                    "dropped": promoted.dropped,
                    "finish_reason": promoted.finish_reason,
                },
            },
        }
        print(json.dumps(report, indent=2, ensure_ascii=False))
    elif plan.changes:
        print("\n".join(_applied_lines(marks, promoted)))
    else:
        print("\nNothing to change.")
    if promoted.finish_reason not in ("", "finished") or promoted.value("dead_letter"):
        cli.fail(
            escape(
                f"the promotion crawl ended with {promoted.finish_reason or 'an error'} and "
                f"{promoted.value('dead_letter')} refused articles: see `veille spool list`, "
                "then run the rescore again"
            ),
            1,
        )
