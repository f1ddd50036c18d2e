"""``veille sources --check``: each source's status, as the crawler would see it.

In:  the validated config and the sources to check.
Out: one :class:`SourceStatus` per source URL — reachable (an HTTP answer came back), parsed
     (a feed, sitemap or search answer that could be read), entries found — printed as a table
     or JSON, and an exit status: 0 when every enabled source is ``ok``, 1 otherwise.

The check runs the ``source_check`` spider (crawler/spiders/check.py) in this process, with the
crawl's own settings (robots.txt, the SSRF guard, User-Agent, timeouts), one retry, no
conditional requests and no item pipeline: it reads one answer per URL and stores nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from veille.core.config import Config, Source
from veille.ops.crawl import spider_items


@dataclass
class SourceStatus:
    source: str
    type: str
    url: str
    enabled: bool
    http_status: int | None
    reachable: bool
    parsed: bool
    entries: int
    detail: str

    @property
    def status(self) -> str:
        """``ok`` (read, with entries), ``empty`` (read, nothing listed) or ``failed``."""
        if not (self.reachable and self.parsed):
            return "failed"
        return "ok" if self.entries else "empty"


def check_sources(config: Config, sources: list[Source]) -> list[SourceStatus]:
    """Fetch and read every URL of ``sources`` once; blocks until done (one reactor per process)."""
    items = spider_items(
        config, "source_check",
        {"VEILLE_CONDITIONAL_REQUESTS": False, "VEILLE_RETRY_AFTER_MAX": 30},
        source=",".join(s.name for s in sources),
    )  # fmt: skip
    enabled = {s.name: s.enabled for s in sources}
    order = {s.name: i for i, s in enumerate(sources)}
    items.sort(key=lambda item: (order[item["source"]], item["url"]))
    return [SourceStatus(enabled=enabled[item["source"]], **item) for item in items]


def print_statuses(statuses: list[SourceStatus], console: Console, as_json: bool) -> None:
    if as_json:
        rows = [{**asdict(s), "status": s.status} for s in statuses]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"{len(statuses)} source URLs checked")
    for column in ("source", "type", "status", "HTTP", "entries", "detail", "url"):
        table.add_column(column, overflow="fold")
    colours = {"ok": "green", "empty": "yellow", "failed": "red"}
    for s in statuses:
        name = s.source + ("" if s.enabled else " (disabled)")
        table.add_row(
            escape(name), s.type, f"[{colours[s.status]}]{s.status}[/]",
            str(s.http_status or "-"), str(s.entries), escape(s.detail), escape(s.url),
        )  # fmt: skip
    console.print(table)
    failed = [s for s in statuses if s.status != "ok"]
    console.print(f"{len(statuses) - len(failed)} ok, {len(failed)} need a look")


def run_check(config: Config, console: Console, as_json: bool) -> int:
    """Check every configured source; the exit status (1 when an enabled source is not ok)."""
    statuses = check_sources(config, list(config.sources))
    print_statuses(statuses, console, as_json)
    return int(any(s.enabled and s.status != "ok" for s in statuses))
