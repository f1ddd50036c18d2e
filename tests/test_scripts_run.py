"""``./scripts/run``: the monitor in one command, started as a user starts it, on a fixture outlet.

The script runs in its own session with ``VEILLE_CONFIG`` naming a config folder of one fixture
outlet and ``VEILLE_ALLOWED_NETWORKS`` letting its crawls reach 127.0.0.1. ``VEILLE_VENV`` points
it at the environment running these tests, where Veille is installed, so nothing is installed
or downloaded. Every process it starts inherits a marker in its environment: "nothing left
running" is checked on all of them, though crawls, tasks and the Elasticsearch node each start
a session of their own.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.fixture_server import FixtureSites
from tests.support.runner import ROOT, clean_env, write_config
from veille.core.config import Environment
from veille.core.es import delete_indices, make_client
from veille.core.urls import canonicalize

pytestmark = pytest.mark.slow

OUTLET = "northern-ledger"
MARKER = "VEILLE_TEST_MONITOR"
VEILLE = str(Path(sys.prefix) / "bin" / "veille")


def marked_processes(marker: str) -> dict[int, str]:
    """Live processes whose environment holds ``MARKER=marker``: pid → command line."""
    needle = f"{MARKER}={marker}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):  # gone meanwhile
            continue
        if state not in ("Z", "X"):  # a zombie has ended; only its parent has to reap it
            found[int(entry.name)] = command
    return found


class Monitor:
    """``./scripts/run`` in its own session and process group; its output in one file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.marker = uuid.uuid4().hex
        self.env = {**env, MARKER: self.marker}
        self.log = log

    def start(self, *args: str) -> Monitor:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(ROOT / "scripts" / "run"), *args], cwd=ROOT, env=self.env, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until(self, what: str, condition: Callable[[], Any], timeout: float = 240) -> Any:
        deadline = time.monotonic() + timeout
        while not (result := condition()):
            if self.process.poll() is not None:
                pytest.fail(f"scripts/run exited ({self.process.returncode}):\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what}:\n{self.output()}")
            time.sleep(0.5)
        return result

    def started(self) -> bool:
        return "scheduler started" in self.output()

    def es_url(self) -> str | None:
        found = re.search(r"^  Elasticsearch  (http://\S+)$", self.output(), re.M)
        return found.group(1) if found else None

    def processes(self) -> dict[int, str]:
        return marked_processes(self.marker)

    def stop(self, signum: signal.Signals) -> int:
        """SIGTERM to the script; SIGINT to its whole process group, as Ctrl-C does."""
        if signum == signal.SIGINT:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        return self.process.wait(timeout=180)

    def kill_leftovers(self) -> None:
        """After a failed test: nothing of it may outlive the test."""
        if self.process.poll() is None:
            self.process.kill()
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def monitor_env(tmp_path: Path, sites: FixtureSites, es_url: str) -> Iterator[dict[str, str]]:
    """One fixture outlet, crawled as soon as the scheduler starts (no jitter), then hourly."""
    config = write_config(tmp_path / "config", sites, [OUTLET])
    sources = yaml.safe_load((config / "sources.yaml").read_text())
    sources["sources"][0]["schedule"] = {"every": "1h", "jitter": "0s"}
    (config / "sources.yaml").write_text(yaml.safe_dump(sources))
    prefix = f"vt-{uuid.uuid4().hex[:10]}"
    yield clean_env(
        VEILLE_CONFIG=str(config), VEILLE_ALLOWED_NETWORKS="127.0.0.1/32",
        VEILLE_DATA_DIR=str(tmp_path / "data"), VEILLE_INDEX_PREFIX=prefix,
        VEILLE_VENV=sys.prefix,
    )  # fmt: skip
    shared = make_client(Environment(es_url=es_url, index_prefix=prefix))
    delete_indices(shared, prefix)
    shared.close()


def watch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """One of the commands the banner lists "to watch it", as a user types it."""
    done = subprocess.run(
        [VEILLE, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done


def test_run_crawls_on_schedule_on_the_node_it_started_and_sigterm_stops_both(
    monitor_env, sites, tmp_path
):
    # Its own node (VEILLE_ES_URL unset), in a folder of its own; the launcher the shared node
    # compiled is reused, so no Maven run.
    es_home = tmp_path / "es"
    if (ROOT / ".es-local" / "build").is_dir():
        shutil.copytree(ROOT / ".es-local" / "build", es_home / "build")
    env = {**monitor_env, "VEILLE_ES_HOME": str(es_home),
           "VEILLE_ES_JAVA_OPTS": "-Xms256m -Xmx512m"}  # fmt: skip
    monitor = Monitor(env, tmp_path / "run.log").start()
    try:
        url = monitor.wait_until("the banner", monitor.es_url)
        # the banner's own commands, with its exports
        watched = {**env, "VEILLE_ES_URL": url}

        def first_run() -> list[dict]:
            runs = yaml.safe_load(watch(watched, "runs", "--json").stdout)
            return [run for run in runs if run["source"] == OUTLET]

        [run] = monitor.wait_until("the first scheduled crawl to be recorded", first_run)
        found = yaml.safe_load(watch(watched, "search", "police", "-n", "50", "--json").stdout)
        running = monitor.processes()
        assert monitor.stop(signal.SIGTERM) == 0, monitor.output()
        left = monitor.processes()
    finally:
        monitor.kill_leftovers()

    wanted = {
        canonicalize(sites.url(OUTLET, page["path"]))
        for page in sites.pages(OUTLET, kind="article", on_topic=True)
    }
    assert (run["status"], run["trigger"], run["indexed"]) == ("success", "schedule", len(wanted))
    assert {hit["url"] for hit in found} == wanted
    assert [cmd for cmd in running.values() if "veille.es.LocalNode" in cmd], "its node"
    assert [cmd for cmd in running.values() if f"{VEILLE} schedule" in cmd], "its scheduler"
    assert left == {}, "still running after SIGTERM"
    output = monitor.output()
    # the scheduler first, then the node it started
    assert output.index("scheduler stopped") < output.index("es-local: stopping pid")
    assert not (es_home / "es.pid").exists()
    # a config folder without alerts.yaml: said once, and the alerts task does not fail
    assert output.count("no alert rules:") == 1
    assert "task alerts-send done" in output and "ERROR" not in output


def test_ctrl_c_stops_it_and_a_second_run_reuses_the_jobs_and_leaves_a_given_node_up(
    monitor_env, es, es_url, tmp_path
):
    env = {**monitor_env, "VEILLE_ES_URL": es_url}
    first = Monitor(env, tmp_path / "first.log").start()
    try:
        first.wait_until("the scheduler", first.started)
        assert first.stop(signal.SIGINT) == 0, first.output()
        assert first.processes() == {}
    finally:
        first.kill_leftovers()

    # the same config folder, named by --config this time
    config = env.pop("VEILLE_CONFIG")
    second = Monitor(env, tmp_path / "second.log").start("--config", config)
    try:
        second.wait_until("the scheduler", second.started)
        assert second.stop(signal.SIGTERM) == 0, second.output()
        assert second.processes() == {}
    finally:
        second.kill_leftovers()

    assert "jobs added: crawl:northern-ledger" in first.output()
    output = second.output()
    assert f"  config         {config}\n" in output
    assert "Python packages up to date" in output
    assert "(VEILLE_ES_URL: neither started nor stopped here)" in output
    assert "jobs kept: crawl:northern-ledger" in output
    assert "es-local" not in output
    assert es.info()["version"]["number"].startswith("8.")
