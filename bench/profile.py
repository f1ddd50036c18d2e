"""Profiles of a crawl and of the stages alone, as text summaries under ``bench/profiles/``.

    python -m bench profile [--articles N]   (writes crawl.txt and stages.txt)

In:  a command to profile (a ``veille crawl`` or ``python -m bench.stages`` subprocess).
Out: ``bench/profiles/<name>.txt``: py-spy samples (100 per second, GIL holders only, every thread
     of every process of the tree) summed per part of the work: the crawl process's reactor
     thread, its worker threads (Elasticsearch calls, ``in_thread`` work), the extraction worker
     processes; for each part the functions with the most samples, inclusive (the function and
     what it calls) and self (the function's own code).

py-spy sees threads and child processes, which pyinstrument does not. Samples are taken only
from the thread that holds its process's GIL (``--gil``), and samples of threads blocked in a
wait (``WAITING``) are left out, so a count is a process's Python CPU time, not time spent
waiting for Elasticsearch or for the GIL (in a crawl the reactor thread and the threads running
Elasticsearch calls take turns with one GIL).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
_SITE = re.compile(r".*/(site-packages|python3\.\d+)/")
_PROCESS = re.compile(r'process \d+:"[^"]*";?')
# py-spy counts some blocked threads as active; a sample whose innermost frame is one of these
# is a thread waiting (for a lock, a queue, a socket, the selector), not working.
WAITING = (
    "Condition.wait", "Queue.get", "SocketIO.readinto", "_PollLikeSelector.select",
    "EpollSelector.select", "Event.wait", "Thread.join", "_wait_for_tstate_lock", "select",
    "poll", "Connection._recv", "Connection._poll", "wait",
)  # fmt: skip
PROJECT = ("veille/", "crawler/", "pipelines/", "bench/", "alerts/")


def _frame_name(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = _SITE.sub("", match["file"]).removeprefix(str(Path.cwd()) + "/")
    return f"{match['function']} ({path})"


def _part(processes: list[str], frames: list[str]) -> str:
    """Which part of the work a sample belongs to."""
    command = processes[-1] if processes else ""
    if "spawn_main" in command or "forkserver" in command:
        return "extraction worker processes"
    if "resource_tracker" in command:
        return "multiprocessing resource tracker"
    if len(processes) > 1:
        return f"child process: {command[:80]}"
    if any("_bootstrap (" in frame and "threading.py" in frame for frame in frames):
        return "main process, worker threads (Elasticsearch calls, in_thread work)"
    return "main process, reactor thread"


def summarize(raw: str, title: str, top: int = 30) -> str:
    """A text summary of py-spy's ``--format raw`` output (collapsed stacks and counts)."""
    totals: Counter[str] = Counter()
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    own: dict[str, Counter[str]] = defaultdict(Counter)
    waiting = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        processes = [p.split(":", 1)[1].rstrip(";").strip('"') for p in _PROCESS.findall(stack)]
        parts = _PROCESS.sub("", stack).split(";")
        frames = [p for p in parts if p and not p.startswith("thread ")]
        names = [_frame_name(frame) for frame in frames]
        if names and names[-1].split(" (")[0] in WAITING:
            waiting += count
            continue
        part = _part(processes, frames)
        totals[part] += count
        for name in set(names):
            inclusive[part][name] += count
        if names:
            own[part][names[-1]] += count
    everything = sum(totals.values()) or 1
    lines = [
        title,
        f"{everything} samples at 100/s (one sample = 10 ms holding a process's GIL); "
        f"{waiting} more samples of threads waiting (locks, queues, sockets) left out",
        "",
    ]
    for part, samples in totals.most_common():
        lines.append(f"== {part}: {samples} samples, {100 * samples / everything:.1f}% of all")
        lines.append(f"   inclusive (the function and what it calls), top {top}:")
        for name, count in inclusive[part].most_common(top):
            lines.append(f"   {100 * count / everything:6.1f}%  {count:7d}  {name}")
        lines.append("   self (the function's own code), top 15:")
        for name, count in own[part].most_common(15):
            lines.append(f"   {100 * count / everything:6.1f}%  {count:7d}  {name}")
        lines.append("")
    return "\n".join(lines)


def spy(raw: Path) -> list[str]:
    """The py-spy prefix for a command whose profile goes to ``raw``."""
    return [
        "py-spy", "record", "--subprocesses", "--threads", "--gil", "--rate", "100",
        "--format", "raw", "--output", str(raw), "--",
    ]  # fmt: skip


def write_summary(raw: Path, output: Path, title: str, top: int = 60) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(summarize(raw.read_text(encoding="utf-8"), title, top), encoding="utf-8")
