"""Extraction workers never outlive their crawl.

A crawl process killed with SIGKILL (by hand, by the OOM killer, a worker container's stop) cannot
stop its extraction pool. The workers and their forkserver must still go, instead of each killed
crawl leaving some 350 MB of idle processes behind for good.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.support.runner import ROOT, clean_env

CRAWL = """
import json, multiprocessing.forkserver, os, signal
from crawler.extraction import ExtractionOptions
from crawler.extraction_pool import ExtractionPool
from crawler.extraction_worker import extract_page

pool = ExtractionPool(2, ExtractionOptions(min_words=5))
page = "<html><head><title>Postes de police</title></head><body><article><h1>Postes</h1>"
page += "<p>Un article sur les postes de police chinois a l'etranger, lu par un worker.</p>" * 8
page += "</article></body></html>"
result, _ = pool.run_blocking(extract_page, page, "https://example.org/a", pool.options,
                              size=len(page))
print(json.dumps({
    "title": result.title,
    "workers": pool.worker_pids(),
    "forkserver": multiprocessing.forkserver._forkserver._forkserver_pid,
}), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def running(pid: int) -> bool:
    """Whether the process exists and has not ended (a zombie waiting to be reaped has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def test_workers_and_forkserver_leave_when_the_crawl_process_is_killed():
    killed = subprocess.run(
        [sys.executable, "-c", CRAWL], cwd=ROOT, env=clean_env(PYTHONPATH=str(ROOT)),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    started = json.loads(killed.stdout.strip().splitlines()[-1])
    assert started["title"] == "Postes"  # the workers worked while the crawl lived
    processes = [*started["workers"], started["forkserver"]]
    assert len(processes) == 3 and all(processes)
    deadline = time.monotonic() + 20
    while any(running(pid) for pid in processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [pid for pid in processes if running(pid)] == []
