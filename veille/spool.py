"""The on-disk spool: documents that could not be indexed wait here, nothing is lost.

In:  Elasticsearch documents (with their ``_id``) that a bulk request could not store.
Out: append-only JSON-lines files under ``<data>/spool/``, flushed and fsync'd on every write,
     read back in order by :func:`pending` for replay; documents Elasticsearch refused for their
     content go to ``<data>/spool/dead-letter.jsonl`` with the reason.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEAD_LETTER = "dead-letter.jsonl"


class Spool:
    def __init__(self, data_dir: Path, name: str) -> None:
        self.directory = data_dir / "spool"
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        self.path = self.directory / f"{stamp}-{name}-{os.getpid()}.jsonl"

    def _append(self, path: Path, records: list[dict[str, Any]]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def add(self, documents: list[dict[str, Any]]) -> None:
        """Keep documents for replay, in order."""
        self._append(self.path, documents)

    def dead_letter(self, document: dict[str, Any], reason: str) -> None:
        """Keep a document Elasticsearch refused for its content, with the reason."""
        self._append(self.directory / DEAD_LETTER, [{"reason": reason, "document": document}])


def pending(data_dir: Path) -> Iterator[Path]:
    """Spool files waiting for replay, oldest first."""
    directory = data_dir / "spool"
    if directory.is_dir():
        yield from sorted(p for p in directory.glob("*.jsonl") if p.name != DEAD_LETTER)
