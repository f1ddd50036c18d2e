"""The on-disk spool: documents that could not be indexed wait here, and nothing is lost.

In:  Elasticsearch article documents (with their ``_id``) that a bulk request could not store.
Out: one append-only JSON-lines file per crawl under ``<data>/spool/``, flushed and fsync'd on
     every write and locked (``flock``) while its crawl runs; :func:`replay` sends the waiting
     files back to Elasticsearch, oldest file first and in the order written, and deletes each
     file once all of it is stored. Documents Elasticsearch refuses for their content (mapping
     errors, status 400) go to ``<data>/spool/dead-letter.jsonl`` with the reason and time;
     :func:`dead_letters` reads them back for ``veille spool list``.

Replay is safe to run at any time and from several processes: a file still locked by a running
crawl is left for later, one replay runs at a time (``<data>/spool/.replay.lock``), and every
document is sent as a ``create`` under its own ``_id``, so a copy already indexed is counted as
``already_present`` and never stored twice. When Elasticsearch fails in the middle of a replay,
the documents not yet stored stay in their file, in order, and the replay stops there.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch
from elasticsearch.helpers import streaming_bulk

from veille.core.config import Environment

logger = logging.getLogger(__name__)

DEAD_LETTER = "dead-letter.jsonl"
REPLAY_LOCK = ".replay.lock"


def spool_dir(data_dir: Path) -> Path:
    return data_dir / "spool"


def fsync_dir(directory: Path) -> None:
    """Make a new file's name durable, not only its content."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_lines(handle: IO[str], records: list[dict[str, Any]]) -> None:
    for record in records:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


class Spool:
    """One crawl's spool file, created on first use and held locked until :meth:`close`."""

    def __init__(self, data_dir: Path, name: str) -> None:
        self.directory = spool_dir(data_dir)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        self.path = self.directory / f"{stamp}-{name}-{os.getpid()}.jsonl"
        self._handle: IO[str] | None = None
        # The index stage spools from several threads at once (two flushes when Elasticsearch
        # goes down): one creates the file, and their lines never interleave.
        self._writing = threading.Lock()

    def add(self, documents: list[dict[str, Any]]) -> None:
        """Keep documents for replay, in order; they are on disk when this returns."""
        with self._writing:
            if self._handle is None:
                # Locked before it gets its replayable name, so a replay never takes it half-made.
                self.directory.mkdir(parents=True, exist_ok=True)
                making = self.path.with_name(self.path.name + ".new")
                self._handle = making.open("a", encoding="utf-8")
                fcntl.flock(self._handle, fcntl.LOCK_EX)
                os.replace(making, self.path)
                fsync_dir(self.directory)
            _write_lines(self._handle, documents)

    def dead_letter(self, document: dict[str, Any], reason: str) -> None:
        """Keep a document Elasticsearch refused for its content, with the reason."""
        add_dead_letter(self.directory, document, reason)

    def close(self) -> None:
        """Release the file: from now on a replay may take it."""
        with self._writing:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


def add_dead_letter(directory: Path, document: Any, reason: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    record = {"at": datetime.now(UTC).isoformat(), "reason": reason, "document": document}
    with (directory / DEAD_LETTER).open("a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        _write_lines(handle, [record])


def pending(data_dir: Path) -> list[Path]:
    """Spool files waiting for replay, oldest first (names start with their creation time)."""
    directory = spool_dir(data_dir)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.jsonl") if p.name != DEAD_LETTER)


@dataclass(frozen=True)
class SpoolFile:
    path: Path
    documents: int
    bytes: int
    in_use: bool
    modified_at: datetime


def _locked_elsewhere(path: Path) -> bool:
    with path.open("r", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def describe_pending(data_dir: Path) -> list[SpoolFile]:
    """The waiting spool files with their document counts; ``in_use``: a crawl writes it now."""
    files = []
    for path in pending(data_dir):
        stat = path.stat()
        files.append(
            SpoolFile(
                path=path,
                documents=_count_lines(path),
                bytes=stat.st_size,
                in_use=_locked_elsewhere(path),
                modified_at=datetime.fromtimestamp(stat.st_mtime, UTC),
            )
        )
    return files


@dataclass(frozen=True)
class DeadLetter:
    at: str
    reason: str
    url: str
    id: str


def dead_letters(data_dir: Path) -> list[DeadLetter]:
    """Documents Elasticsearch refused for their content, oldest first."""
    path = spool_dir(data_dir) / DEAD_LETTER
    if not path.is_file():
        return []
    found = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        document = record.get("document")
        document = document if isinstance(document, dict) else {}
        found.append(
            DeadLetter(
                at=str(record.get("at", "")),
                reason=str(record.get("reason", "")),
                url=str(document.get("canonical_url") or document.get("url") or ""),
                id=str(document.get("_id", "")),
            )
        )
    return found


@dataclass
class ReplayReport:
    """What a replay did. ``remaining``: documents still waiting because Elasticsearch failed."""

    files_done: int = 0
    files_in_use: int = 0
    indexed: int = 0
    already_present: int = 0
    dead_letter: int = 0
    unreadable: int = 0
    remaining: int = 0
    busy: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def _replay_lock(directory: Path) -> Iterator[bool]:
    """True while this process holds the replay lock; False if another replay runs."""
    with (directory / REPLAY_LOCK).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def _read(path: Path, report: ReplayReport) -> list[dict[str, Any]]:
    """The documents of a spool file; a line cut short by a crash goes to the dead letters."""
    documents = []
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                document = json.loads(line)
                if not isinstance(document, dict) or "_id" not in document:
                    raise ValueError("not a spooled document")
            except ValueError as exc:
                report.unreadable += 1
                add_dead_letter(
                    path.parent,
                    {"raw": line[:2000]},
                    f"unreadable line {number} of {path.name}: {exc}",
                )
                continue
            documents.append(document)
    return documents


def _rewrite(path: Path, documents: list[dict[str, Any]]) -> None:
    """Replace the file by the documents still waiting, atomically."""
    partial = path.with_name(path.name + ".part")
    with partial.open("w", encoding="utf-8") as handle:
        _write_lines(handle, documents)
    os.replace(partial, path)
    fsync_dir(path.parent)


def _send(
    client: Elasticsearch,
    index: str,
    documents: list[dict[str, Any]],
    directory: Path,
    report: ReplayReport,
) -> list[dict[str, Any]]:
    """Store documents in order; returns those Elasticsearch did not take, still in order."""
    actions = (
        {
            "_op_type": "create",
            "_index": index,
            "_id": document["_id"],
            "_source": {k: v for k, v in document.items() if k != "_id"},
        }
        for document in documents
    )
    results = streaming_bulk(
        client,
        actions,
        chunk_size=500,
        max_retries=3,
        initial_backoff=1,
        raise_on_error=False,
        raise_on_exception=False,
    )
    waiting = []
    for (ok, result), document in zip(results, documents, strict=True):
        outcome = result["create"]
        status = outcome.get("status")
        if ok:
            report.indexed += 1
        elif status == 409:
            report.already_present += 1
        elif status == 400:
            report.dead_letter += 1
            add_dead_letter(directory, document, str(outcome.get("error")))
        else:
            waiting.append(document)
            report.error = report.error or str(outcome.get("error") or outcome.get("exception"))
    return waiting


def store(
    client: Elasticsearch,
    index: str,
    documents: list[dict[str, Any]],
    spool: Spool,
    on_outage: Callable[[Exception], None] | None = None,
) -> ReplayReport:
    """Send documents (with their ``_id``) as ``create``s now; what Elasticsearch did not take
    waits in ``spool``, in order (``remaining``), and what it refused goes to the dead letters.
    Never raises for Elasticsearch being down: ``on_outage`` hears of it."""
    report = ReplayReport()
    try:
        waiting = _send(client, index, documents, spool.directory, report)
    except (ApiError, TransportError) as exc:
        waiting, report.error = documents, str(exc)
        if on_outage is not None:
            on_outage(exc)
    if waiting:
        spool.add(waiting)
        report.remaining = len(waiting)
    return report


def replay(client: Elasticsearch, index: str, data_dir: Path) -> ReplayReport:
    """Send the waiting spool files to ``index``, oldest first; see the module docstring."""
    report = ReplayReport()
    directory = spool_dir(data_dir)
    if not pending(data_dir):
        return report
    with _replay_lock(directory) as held:
        if not held:
            report.busy = True
            return report
        files = pending(data_dir)
        for position, path in enumerate(files):
            with path.open("r", encoding="utf-8") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    report.files_in_use += 1
                    continue
                documents = _read(path, report)
                try:
                    waiting = (
                        _send(client, index, documents, directory, report) if documents else []
                    )
                except (ApiError, TransportError) as exc:
                    waiting, report.error = documents, str(exc)
                if waiting:
                    _rewrite(path, waiting)
                    later = sum(_count_lines(f) for f in files[position + 1 :])
                    report.remaining = len(waiting) + later
                    logger.error(
                        "spool replay stopped at %s: Elasticsearch did not take %d documents (%s); "
                        "they stay in the spool",
                        path.name,
                        len(waiting),
                        report.error,
                    )
                    return report
                path.unlink()
                report.files_done += 1
    return report


def replay_spool(env: Environment | None = None) -> ReplayReport:
    """Replay the spool of the configured data folder into the articles index (for the scheduler).

    Never raises for Elasticsearch being down: the report says what is still waiting.
    """
    from veille.core.es import IndexNames, make_client

    env = env or Environment.from_env()
    client = make_client(env)
    try:
        return replay(client, IndexNames(env.index_prefix).articles, env.data_dir)
    finally:
        client.close()
