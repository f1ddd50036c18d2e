"""What an extraction worker process does: serve parse tasks, and extract pages.

In:  tasks from the crawl process's pool (``crawler/extraction_pool.py``) through a pipe: a
     function, its arguments and the input's size; for a page, its text, its URL and
     :class:`~crawler.extraction.ExtractionOptions`.
Out: for each task, the function's result (or the refusal of :func:`crawler.limits.bounded`, or
     the exception it raised), what it took (CPU seconds, peak memory added in MiB), and whether
     the worker retires after it. A worker's memory may grow by ``VEILLE_PARSE_MEMORY_MB`` from
     its start, whatever earlier parses left; one that kept more than a quarter of that after a
     task leaves, and the pool starts a fresh one.
     :func:`extract_page` returns what :func:`crawler.extraction.extract_article` returns; an
     ``Extracted`` comes back with its title and text already tidied
     (``pipelines.normalize.tidy``), its ``content_hash``, and its
     ``language``/``language_confidence`` from ``pipelines.language.detect_language`` on the
     first ``options.language_sample`` characters.

The crawl process runs Scrapy, the pipeline and the Elasticsearch calls under one GIL; the
text work that needs nothing but the page is done here instead, on the other cores. The
normalize and language stages keep what they find already done, and still do it for articles
that did not come through a worker.

Importing this module loads trafilatura and langdetect's profiles (about a second), so the
forkserver that forks the workers (``crawler/extraction_pool.py``) pays for it once per crawl
and every worker starts ready.

:func:`exit_with` is called first by each worker: a worker leaves as soon as the crawl process
that started it is gone, even when that process was killed with SIGKILL and could not stop its
pool, and even while a parse is under way. (The workers inherit the forkserver's keep-alive
pipe, so without it a killed crawl would leave the forkserver and every worker waiting forever.)
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import select
import threading
from multiprocessing.connection import Connection

from crawler.extraction import Extracted, ExtractionOptions, NotAnArticle, extract_article
from crawler.limits import (
    MIB,
    OutOfTime,
    ParseLimits,
    ParseRefused,
    bounded,
    cpu_time,
    data_size,
    resident_size,
)
from crawler.limits import prepare_process as prepare_limits
from pipelines.language import detect_language
from pipelines.normalize import content_hash, tidy


def extract_page(
    body: str, url: str, options: ExtractionOptions | None = None
) -> Extracted | NotAnArticle:
    """Extract one page, then tidy, hash and detect the language of what was extracted."""
    options = options or ExtractionOptions()
    result = extract_article(body, url, options)
    if isinstance(result, NotAnArticle):
        return result
    title, text = tidy(result.title), tidy(result.text)
    language, confidence = detect_language(title, text, options.language_sample)
    return dataclasses.replace(
        result,
        title=title,
        text=text,
        content_hash=content_hash(title, text),
        language=language,
        language_confidence=confidence,
    )


def _peak_resident() -> int:
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    """Start measuring the peak resident memory from now (Linux: ``clear_refs`` 5)."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


def _travels(error: object) -> bool:
    """Whether an exception comes back whole through a pipe: lxml's cannot be pickled,
    langdetect's cannot be unpickled."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return False
    return True


# A parse that fails after taking this share of its memory limit is refused as too_large.
NEAR_THE_CEILING = 0.75


def serve(conn: Connection, crawl_pid: int, limits: ParseLimits) -> None:
    """A worker's life: take tasks from ``conn`` and answer each, until the pool closes it."""
    exit_with(crawl_pid)
    prepare_limits()
    # The libraries' own warnings about one page (trafilatura's "recall retry failed") would reach
    # the crawl's log unformatted; the crawl logs each refusal once itself.
    logging.disable(logging.WARNING)
    started_at = data_size()
    ceiling = started_at + limits.memory_mb * MIB
    while True:
        try:
            func, args, size = conn.recv()
        except EOFError:
            return
        _reset_peak()
        start_cpu, start_memory = cpu_time(), resident_size()
        try:
            outcome: tuple[str, object] = ("ok", bounded(func, args, size, limits, ceiling))
        except ParseRefused as refused:
            outcome = ("refused", refused)
        except OutOfTime:  # the timer rang just as the parse ended
            outcome = ("refused", ParseRefused("too_slow", "stopped at its CPU limit"))
        except Exception as exc:
            outcome = ("raised", exc)
        usage = (cpu_time() - start_cpu, max(0, _peak_resident() - start_memory) / MIB)
        if outcome[0] == "raised" and usage[1] >= NEAR_THE_CEILING * limits.memory_mb:
            # C code that runs out of memory says so in its own words (libxml2: "unknown
            # error"); a parse that failed that close to its ceiling ran out of memory.
            detail = f"it needed more than {limits.memory_mb} MiB of memory ({outcome[1]!r})"
            outcome = ("refused", ParseRefused("too_large", detail))
        # What parses leave behind (caches, a fragmented heap) is room the next one lacks: past a
        # quarter of the limit, this worker hands over to a fresh one.
        retire = data_size() > started_at + limits.memory_mb * MIB // 4
        if outcome[0] == "raised" and not _travels(outcome[1]):
            error = outcome[1]
            outcome = ("raised", RuntimeError(f"{type(error).__name__}: {error}"))
        conn.send((outcome, usage, retire))
        if retire:
            return


def exit_with(crawl_pid: int) -> None:
    """In a worker: leave (``os._exit``) when process ``crawl_pid`` ends, however it ends."""
    try:
        handle = os.pidfd_open(crawl_pid)  # readable once the process has ended
    except (AttributeError, OSError):  # no pidfd here (old kernel): look every two seconds
        handle = None
    if handle is None and not _alive(crawl_pid):
        os._exit(1)
    threading.Thread(
        target=_watch, args=(crawl_pid, handle), name="exit-with-crawl", daemon=True
    ).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch(crawl_pid: int, handle: int | None) -> None:
    if handle is not None:
        select.select([handle], [], [])
    else:
        while _alive(crawl_pid):
            threading.Event().wait(2)
    os._exit(1)


# The forkserver imports this module before forking any worker: one small page through the
# whole path loads what trafilatura and langdetect otherwise load on a worker's first page
# (language profiles, the list of top-level domains, compiled expressions).
_FIRST_PAGE = (
    "<html><head><title>Veille</title></head><body><article><h1>Veille</h1>"
    + "<p>A first page, read once so that every table is loaded before the crawl.</p>" * 12
    + "</article></body></html>"
)
extract_page(_FIRST_PAGE, "https://www.example.org/news/first-page.html")
try:  # trafilatura's URL helpers (courlan) load this domain list on first use
    from tld import get_tld
except ImportError:  # a trafilatura release without it
    pass
else:
    get_tld("https://www.example.org/", fail_silently=True)
