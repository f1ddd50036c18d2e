"""The on-disk spool: articles Elasticsearch could not take wait on disk and are replayed in order.

Real Elasticsearch (the shared node); the spool files are written by
:class:`~veille.core.spool.Spool` exactly as the index stage writes them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.runner import ROOT, clean_env, run_veille
from veille.core.article import article_id
from veille.core.config import Environment
from veille.core.es import IndexNames, make_client, setup_indices
from veille.core.spool import Spool, pending, replay


def _document(url: str, title: str, **extra) -> dict:
    return {
        "_id": article_id(url),
        "url": url,
        "canonical_url": url,
        "urls": [url],
        "source": {"name": "le-veilleur", "domain": "127.0.0.1", "type": "feed"},
        "title": title,
        "text": f"{title}. Les commissariats chinois à l'étranger font l'objet d'une enquête.",
        "language": "fr",
        "first_seen_at": "2025-03-04T09:00:00+00:00",
        **extra,
    }


@pytest.fixture
def workspace(tmp_path: Path, es_url: str, index_prefix: str, request) -> dict:
    prefix = f"{index_prefix}-{request.node.name.removeprefix('test_')[:24].replace('_', '-')}"
    env = Environment(es_url=es_url, index_prefix=prefix, data_dir=tmp_path / "data")
    client = make_client(env)
    setup_indices(client, prefix)
    yield {
        "env": env,
        "client": client,
        "index": IndexNames(prefix).articles,
        "cli_env": clean_env(
            VEILLE_ES_URL=es_url, VEILLE_INDEX_PREFIX=prefix, VEILLE_DATA_DIR=str(env.data_dir)
        ),
    }
    client.close()


def _stored(client, index: str) -> dict[str, dict]:
    client.indices.refresh(index=index)
    hits = client.search(index=index, size=100, query={"match_all": {}})["hits"]["hits"]
    return {hit["_source"]["url"]: hit["_source"] for hit in hits}


def test_spooled_articles_are_replayed_oldest_first_and_the_files_removed(workspace):
    data_dir = workspace["env"].data_dir
    first, second = Spool(data_dir, "feeds"), Spool(data_dir, "feeds")
    first.add([_document("http://127.0.0.1/a.html", "Première version")])
    first.close()
    second.add([_document("http://127.0.0.1/a.html", "Seconde version")])
    second.add([_document("http://127.0.0.1/b.html", "Autre article")])
    second.close()

    report = replay(workspace["client"], workspace["index"], data_dir)

    assert (report.indexed, report.already_present, report.remaining) == (2, 1, 0)
    stored = _stored(workspace["client"], workspace["index"])
    assert set(stored) == {"http://127.0.0.1/a.html", "http://127.0.0.1/b.html"}
    # the older copy of an article wins, as it would have if Elasticsearch had been up
    assert stored["http://127.0.0.1/a.html"]["title"] == "Première version"
    assert pending(data_dir) == []


def test_replay_while_elasticsearch_is_down_keeps_every_article_in_order(workspace):
    data_dir = workspace["env"].data_dir
    spool = Spool(data_dir, "feeds")
    documents = [_document(f"http://127.0.0.1/{n}.html", f"Article {n}") for n in range(5)]
    spool.add(documents)
    spool.close()
    down = make_client(Environment(es_url="http://127.0.0.1:9", index_prefix="x"), max_retries=0)

    report = replay(down, workspace["index"], data_dir)

    assert report.remaining == 5 and report.indexed == 0 and report.error
    kept = [json.loads(line) for line in pending(data_dir)[0].read_text().splitlines()]
    assert kept == documents
    again = replay(workspace["client"], workspace["index"], data_dir)
    assert (again.indexed, again.remaining) == (5, 0)
    assert len(_stored(workspace["client"], workspace["index"])) == 5


def test_a_spool_file_still_written_by_a_running_crawl_is_left_alone(workspace):
    data_dir = workspace["env"].data_dir
    running = Spool(data_dir, "feeds")
    running.add([_document("http://127.0.0.1/live.html", "En cours")])
    finished = Spool(data_dir, "feeds")
    finished.add([_document("http://127.0.0.1/done.html", "Terminé")])
    finished.close()

    report = replay(workspace["client"], workspace["index"], data_dir)

    assert (report.files_done, report.files_in_use, report.indexed) == (1, 1, 1)
    assert pending(data_dir) == [running.path]
    running.close()
    assert replay(workspace["client"], workspace["index"], data_dir).indexed == 1


def test_mapping_errors_and_a_line_cut_by_a_crash_go_to_the_dead_letters(workspace):
    data_dir = workspace["env"].data_dir
    spool = Spool(data_dir, "feeds")
    bad_date = _document("http://127.0.0.1/bad.html", "Date impossible", published_at="hier soir")
    spool.add([_document("http://127.0.0.1/good.html", "Bon article"), bad_date])
    spool.close()
    with spool.path.open("a", encoding="utf-8") as handle:
        handle.write('{"_id": "cut-short-by-a-kill", "url": "http://127.0.0.1/cu')

    report = replay(workspace["client"], workspace["index"], data_dir)
    assert (report.indexed, report.dead_letter, report.unreadable) == (1, 1, 1)

    listed = run_veille("spool", "list", "--json", env=workspace["cli_env"])
    assert listed.returncode == 0, listed.stderr
    shown = json.loads(listed.stdout)
    assert shown["pending"] == []
    reasons = {letter["url"]: letter["reason"] for letter in shown["dead_letters"]}
    assert "published_at" in reasons["http://127.0.0.1/bad.html"]
    assert any("unreadable line 3" in reason for reason in reasons.values())
    table = run_veille("spool", "list", env=workspace["cli_env"])
    assert "2 dead letters" in table.stdout and "bad.html" in table.stdout


def test_veille_spool_replay_indexes_the_waiting_articles_and_says_so(workspace):
    data_dir = workspace["env"].data_dir
    spool = Spool(data_dir, "feeds")
    spool.add([_document(f"http://127.0.0.1/{n}.html", f"Article {n}") for n in range(3)])
    spool.close()
    listed = run_veille("spool", "list", env=workspace["cli_env"])
    assert "3 articles waiting for replay" in listed.stdout

    replayed = run_veille("spool", "replay", env=workspace["cli_env"])

    assert replayed.returncode == 0, replayed.stderr
    assert "replayed: 3 indexed, 0 already present" in replayed.stdout
    assert len(_stored(workspace["client"], workspace["index"])) == 3
    assert "no article waiting" in run_veille("spool", "list", env=workspace["cli_env"]).stdout


def test_veille_spool_replay_exits_3_when_elasticsearch_is_unreachable(workspace):
    spool = Spool(workspace["env"].data_dir, "feeds")
    spool.add([_document("http://127.0.0.1/x.html", "En attente")])
    spool.close()
    result = run_veille(
        "spool", "replay", env={**workspace["cli_env"], "VEILLE_ES_URL": "http://127.0.0.1:9"}
    )
    assert result.returncode == 3
    assert len(pending(workspace["env"].data_dir)) == 1


def test_a_spool_write_is_on_disk_before_the_process_dies(tmp_path: Path):
    """A process killed right after ``add`` returns still leaves the whole document behind."""
    script = (
        "import os, signal, sys; from pathlib import Path; from veille.core.spool import Spool; "
        "s = Spool(Path(sys.argv[1]), 'feeds'); "
        "s.add([{'_id': 'a', 'title': 'x' * 100000}]); os.kill(os.getpid(), signal.SIGKILL)"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, check=False)
    [path] = pending(tmp_path)
    assert json.loads(path.read_text())["title"] == "x" * 100000


def test_threads_spooling_at_once_when_elasticsearch_goes_down_lose_nothing(tmp_path: Path):
    """Two index flushes meet the outage together: one file, every article in it, whole lines."""
    import threading

    spool = Spool(tmp_path, "feeds")
    start = threading.Barrier(8)

    def flush(n: int) -> None:
        start.wait()
        spool.add([{"_id": f"{n}-{k}", "title": "x" * 5000} for k in range(20)])

    threads = [threading.Thread(target=flush, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spool.close()
    [path] = pending(tmp_path)
    kept = [json.loads(line)["_id"] for line in path.read_text(encoding="utf-8").splitlines()]
    assert sorted(kept) == sorted(f"{n}-{k}" for n in range(8) for k in range(20))
