"""``veille topics test`` and ``veille topics eval``: what the topic rules decide, and why.

In:  the topic files of the config folder; for ``test`` one page (a URL, fetched as a crawl
     fetches, or a file: a labelled ``.yaml`` article, an ``.html`` page, or text whose first
     line is the title); for ``eval`` a folder of labelled articles (default: the shipped set).
Out: ``test`` prints the decision and, for every rule, whether it matched and where (the words
     and their character offsets) or which of its parts the page holds; ``eval`` prints precision
     and recall per language and overall, then every misjudged article with the rule that fired
     or the one it came closest to. Lines fit 80 columns; ``--json`` for scripts. Exit status:
     1 when the page could not be read or (``eval``) an article is misjudged, 2 for bad
     arguments or configuration. ``eval --index`` and ``rescore`` judge the stored articles
     instead: see :mod:`veille.cli.rescore`.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from veille.cli import support as cli
from veille.core.config import Config, ConfigError, Topic
from veille.core.topics import Decision, RuleResult

WIDTH = 80
SHOWN_MATCHES = 3

app = typer.Typer(
    help="Topic rules: test a page, evaluate the labelled set, apply an edit to stored articles.",
    no_args_is_help=True,
)


def _wrap(text: str, indent: int) -> list[str]:
    pad = " " * indent
    return textwrap.wrap(text, WIDTH, initial_indent=pad, subsequent_indent=pad + "  ") or [pad]


def _quote(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return "«" + (flat if len(flat) <= limit else flat[: limit - 1] + "…") + "»"


def rule_lines(result: RuleResult, margin: int = 0) -> list[str]:
    """A rule's line and, under it, where it matched or what the page holds of it."""
    mark = "✓" if result.matched else "✗"
    weight = f"  (weight {result.weight:g})" if result.weight != 1 else ""
    lines = _wrap(f"{mark} {result.rule}{weight}", margin + 2)
    if result.matched:
        for match in result.matches[:SHOWN_MATCHES]:
            place = f"{match.field} {match.start}-{match.end}: {_quote(match.text)}"
            lines += _wrap(place, margin + 6)
        if len(result.matches) > SHOWN_MATCHES:
            more = f"and {len(result.matches) - SHOWN_MATCHES} more places"
            lines += _wrap(more, margin + 6)
        return lines
    for item in result.evidence:
        sign = "+" if item.found else "-"
        detail = item.detail or ("found" if item.found else "not found")
        lines += _wrap(f"{sign} {item.part}: {detail}", margin + 6)
    return lines


def decision_lines(decision: Decision, margin: int = 0) -> list[str]:
    """The verdict (on topic, by which rule; or the closest rule), then every rule."""
    if decision.best is not None:
        verdict = (
            f"ON TOPIC: {', '.join(decision.topics)} — rule {decision.best.rule} "
            f"(score {decision.score:g})"
        )
    else:
        verdict = "OFF TOPIC: no rule matched"
        if decision.closest is not None:
            verdict += f"; closest {decision.closest.topic} {decision.closest.rule}"
    lines = _wrap(verdict, margin)
    topic = None
    for result in decision.results:
        if result.topic != topic:
            topic = result.topic
            lines += _wrap(f"{topic}:", margin)
        lines += rule_lines(result, margin)
    return lines


def decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "language": decision.language,
        "topics": list(decision.topics),
        "relevance": decision.relevance(),
        "closest": decision.closest.rule if decision.closest else None,
        "rules": [
            {
                "topic": r.topic,
                "rule": r.rule,
                "query": r.query,
                "weight": r.weight,
                "matched": r.matched,
                "matches": [m.to_dict() for m in r.matches],
                "evidence": [asdict(e) for e in r.evidence],
            }
            for r in decision.results
        ],
    }


def _topics(config: Config, name: str | None) -> Sequence[Topic]:
    if name is None:
        return config.topics
    chosen = [topic for topic in config.topics if topic.name == name]
    if not chosen:
        known = ", ".join(topic.name for topic in config.topics)
        cli.fail(f"--topic {name!r}: no such topic (known: {known})", 2)
    return chosen


def _read_file(path: Path) -> tuple[str, str, str | None]:
    """``(title, text, language or None)`` of a labelled YAML article, an HTML page or text."""
    from crawler.extraction import NotAnArticle, extract_article
    from veille.ops.topic_eval import read_labelled

    if not path.is_file():
        cli.fail(f"{path}: no such file (give a URL or a .yaml, .html or text file)", 2)
    if path.suffix in (".yaml", ".yml"):
        try:
            article = read_labelled(path)
        except ConfigError as exc:
            cli.fail(str(exc), 2)
        return article.title, article.text, article.language
    body = path.read_bytes()
    if path.suffix in (".html", ".htm"):
        extracted = extract_article(body, path.resolve().as_uri())
        if isinstance(extracted, NotAnArticle):
            cli.fail(f"{path}: not an article page ({extracted.reason})", 1)
        return extracted.title, extracted.text, None
    title, _, text = body.decode("utf-8", "replace").strip().partition("\n")
    return title.strip(), text.strip(), None


def _fetch(url: str, config: Config) -> tuple[str, str, str]:
    """``(final URL, title, text)`` of a page fetched through the crawl's middlewares."""
    from veille.ops.crawl import spider_items

    items = spider_items(config, "page", {}, url=url)
    if not items or items[0]["detail"]:
        cli.fail(f"{url}: {items[0]['detail'] if items else 'nothing came back'}", 1)
    return items[0]["url"], items[0]["title"], items[0]["text"]


def _shown_rule(decision: Decision) -> str | None:
    """The rule that fired, else the one the article came closest to."""
    shown = decision.best or decision.closest
    return shown.rule if shown else None


@app.command("test")
def test_command(
    target: Annotated[str, typer.Argument(help="A URL, or a .yaml, .html or text file.")],
    topic: Annotated[str | None, typer.Option("--topic", help="Only this topic.")] = None,
    lang: Annotated[
        str | None, typer.Option("--lang", help="The page's language (default: detected).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Judge one page with the topic rules: each rule, matched or not, and where."""
    from pipelines.language import detect_language
    from veille.core.topics import TopicJudge

    config = cli.config_or_exit()
    topics = _topics(config, topic)
    if target.startswith(("http://", "https://")):
        where, title, text = _fetch(target, config)
        language = None
    else:
        title, text, language = _read_file(Path(target))
        where = target
    language = lang or language or detect_language(title, text)[0]
    decision = TopicJudge(topics).judge(title, text, language, explain=True)
    if as_json:
        print(json.dumps({"page": where, "title": title, **decision_json(decision)}, indent=2,
                         ensure_ascii=False))  # fmt: skip
        return
    words = len(text.split())
    lines = _wrap(title, 0) + _wrap(f"{where} · {language} · {words} words", 0) + [""]
    print("\n".join(lines + decision_lines(decision)))


SinceOption = typer.Option(
    "--since",
    help="Articles first seen since: 30d, 2025-03-01 (default $VEILLE_REJECTED_KEEP, 30d).",
)
LimitOption = typer.Option("--limit", "-n", min=0, help="Articles listed per kind of change.")


@app.command("eval")
def eval_command(
    folder: Annotated[
        Path | None,
        typer.Argument(help="Labelled articles (default: tests/fixtures/relevance)."),
    ] = None,
    topic: Annotated[str | None, typer.Option("--topic", help="Only this topic.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    index: Annotated[
        bool,
        typer.Option(
            "--index",
            help="Judge the stored articles instead (kept, rejected, judged by analysts): what "
            "the topic files as they are now would change; nothing is changed.",
        ),
    ] = False,
    since: Annotated[str | None, SinceOption] = None,
    limit: Annotated[int, LimitOption] = 20,
) -> None:
    """Precision and recall of the topic rules on a labelled set, and every misjudged article;
    with --index, what they would change in the stored articles."""
    from veille.ops.topic_eval import LABELLED_SET, evaluate

    if index:
        from veille.cli import rescore as rescore_cli

        if folder is not None or topic is not None:
            cli.fail("--index judges the stored articles with every topic: leave out DIR and "
                     "--topic", 2)  # fmt: skip
        rescore_cli.run(apply=False, since=since, limit=limit, as_json=as_json)
        return
    if since is not None:
        cli.fail("--since goes with --index", 2)
    config = cli.config_or_exit()
    topics = _topics(config, topic)
    folder = folder or LABELLED_SET
    if not folder.is_dir():
        cli.fail(f"{folder}: no such folder of labelled articles", 2)
    try:
        evaluation = evaluate(topics, folder)
    except ConfigError as exc:
        cli.fail(str(exc), 2)
    rows = [(language, evaluation.scores(language)) for language in evaluation.languages]
    rows.append(("all", evaluation.scores()))
    misses = evaluation.misses
    if as_json:
        report = {
            "folder": str(folder),
            "topics": [t.name for t in topics],
            "scores": {
                name: {**asdict(s), "precision": s.precision, "recall": s.recall}
                for name, s in rows
            },
            "misses": [
                {
                    "file": str(o.article.path.relative_to(folder)),
                    "title": o.article.title,
                    "relevant": o.article.relevant,
                    "kept": o.kept,
                    "rule": _shown_rule(o.decision),
                }
                for o in misses
            ],
        }
        print(json.dumps(report, indent=2, ensure_ascii=False))
        raise typer.Exit(1 if misses else 0)
    total = evaluation.scores()
    shown = Path(os.path.relpath(folder)) if folder.is_relative_to(Path.cwd()) else folder
    names = ", ".join(topic.name for topic in topics)
    lines = _wrap(f"{shown}: {total.articles} labelled articles, topics {names}", 0)
    lines += ["", f"{'language':<10}{'articles':>9}{'on topic':>10}{'kept':>6}"
                  f"{'precision':>11}{'recall':>8}"]  # fmt: skip
    for name, s in rows:
        lines.append(
            f"{name:<10}{s.articles:>9}{s.relevant:>10}{s.kept:>6}"
            f"{s.precision:>11.2f}{s.recall:>8.2f}"
        )
    lines.append("")
    lines.append(f"{len(misses)} misjudged" + (":" if misses else "."))
    for outcome in misses:
        article, decision = outcome.article, outcome.decision
        label = "kept, not on topic" if outcome.kept else "missed, on topic"
        lines += _wrap(f"{label}: {article.path.relative_to(folder)}", 2)
        lines += _wrap(_quote(article.title, 70), 4)
        if decision.best is not None:
            fired = decision.best
            where = "; ".join(f"{m.field} {_quote(m.text, 40)}" for m in fired.matches[:2])
            lines += _wrap(f"rule {fired.rule} matched: {where}", 4)
        elif decision.closest is not None:
            closest = decision.closest
            lines += _wrap(f"closest rule {closest.rule}:", 4)
            for item in closest.evidence:
                sign = "+" if item.found else "-"
                lines += _wrap(f"{sign} {item.part}: {item.detail or 'not found'}", 6)
    print("\n".join(lines))
    raise typer.Exit(1 if misses else 0)


@app.command("rescore")
def rescore_command(
    since: Annotated[str | None, SinceOption] = None,
    limit: Annotated[int, LimitOption] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Apply the topic files as they are now to the stored articles: rejected ones a rule keeps
    go through the rest of the pipeline, kept ones no rule keeps are marked off topic."""
    from veille.cli import rescore as rescore_cli

    rescore_cli.run(apply=True, since=since, limit=limit, as_json=as_json)


def explain_hits(hits: Sequence[Any], config: Config, as_json: bool) -> None:
    """``veille search --explain``: for each result, the rule stored when it was crawled and
    what the topic files say of it now, rule by rule (as ``veille topics test`` prints it)."""
    from veille.core.topics import TopicJudge

    judge = TopicJudge(config.topics)
    reports = []
    lines: list[str] = []
    for number, hit in enumerate(hits, 1):
        decision = judge.judge(hit.title, hit.text or "", hit.language, explain=True)
        stored = hit.relevance or {}
        if as_json:
            summary = {key: value for key, value in asdict(hit).items() if key != "text"}
            reports.append({**summary, "now": decision_json(decision)})
            continue
        lines += _wrap(f"{number}. {hit.title}", 0)
        lines += _wrap(f"{hit.source} · {(hit.published_at or '')[:10]} · {hit.url}", 3)
        if stored.get("rule"):
            kept = f"indexed by {stored.get('topic')} rule {stored['rule']}"
            lines += _wrap(f"{kept} (score {stored.get('score', 0):g})", 3)
        lines += [*decision_lines(decision, margin=3), ""]
    if as_json:
        print(json.dumps(reports, indent=2, ensure_ascii=False))
    elif not hits:
        cli.err.print("no article matches")
    else:
        print("\n".join(lines).rstrip())
